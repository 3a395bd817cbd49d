"""The four analysis steps of :func:`qxai.pipeline.analyze.analyze`: each reads the typed
:class:`~qxai.pipeline.analyze.AnalysisContext`, adds its part to the document (JSON-able data,
headline numbers in ``summary``), its arrays and its figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from qxai.analysis import figures
from qxai.analysis.mutual_info import fdr_significant, mutual_information_matrix
from qxai.analysis.similarity import similarity_matrices
from qxai.analysis.spectrum import top_k_share_interval
from qxai.errors import QxaiError

if TYPE_CHECKING:
    from qxai.pipeline.analyze import AnalysisContext

Step = Callable[["AnalysisContext"], None]
#: widest layer whose top-k share gets a bootstrap interval (each resample is a min(N, D)² eigensolve)
MAX_BOOTSTRAP_WIDTH = 1024


def spectrum_step(ctx: AnalysisContext) -> None:
    k, resamples = ctx.settings.top_k, ctx.settings.bootstrap
    ctx.doc["spectra"] = {}
    for name, s in ctx.spectra.items():
        x = ctx.acts.matrix(name)
        entry = {**s.summary(k), "explained_variance_ratio": s.explained_variance_ratio[:64]}
        if resamples and min(x.shape) <= MAX_BOOTSTRAP_WIDTH:
            interval = top_k_share_interval(x, k, resamples=resamples, seed=ctx.settings.seed)
            entry[f"top{k}_share_interval"] = None if interval is None else list(interval)
        elif resamples:
            entry[f"top{k}_share_interval"] = None
            ctx.note(
                f"layer '{name}' is {x.shape[1]} wide: no bootstrap interval (limit {MAX_BOOTSTRAP_WIDTH})"
            )
        ctx.doc["spectra"][name] = entry
        ctx.arrays[f"singular_values/{name}"] = s.singular_values
        ctx.summary[f"{name} top{k} share"] = s.top_k_share(k)
        ctx.summary[f"{name} entropy"] = s.entropy
        ctx.summary[f"{name} effective rank"] = s.effective_rank
    ctx.doc["spectra_interval"] = {
        "method": "basic bootstrap over samples",
        "resamples": resamples,
        "level": 0.95,
    }
    ctx.figure(
        "spectra.png",
        "Layer spectra",
        f"Explained-variance ratio of each layer's principal components and their cumulative share; the "
        f"dashed line marks the top {k}.",
        figures.spectra_figure(ctx.spectra, k),
    )
    ctx.figure(
        "entropy.png",
        "Entropy per layer",
        "Von Neumann entropy and purity of ρ = C / tr C (C: covariance of the layer's activations), and the "
        "Roy–Vetterli effective rank: higher entropy = variance spread over more directions.",
        figures.entropy_figure(ctx.spectra),
    )


def similarity_step(ctx: AnalysisContext) -> None:
    acts = ctx.acts
    names = [n for n in acts.features if acts.kinds[n] != "attention"]
    if len(names) < 2:
        ctx.note("similarity needs two layers or more; skipped")
        return
    m = similarity_matrices({n: acts.matrix(n) for n in names})
    ctx.doc["similarity"] = {
        "layers": names,
        "cosine_gram": m["cosine"],
        "cka_debiased": m["cka"],
        "constant_layers": m["constant_layers"],
        "definition": "cosine = RV coefficient of centred N×N Gram matrices; CKA = debiased "
        "linear CKA (U-centred Grams)",
    }
    ctx.arrays["similarity/cosine"], ctx.arrays["similarity/cka"] = m["cosine"], m["cka"]
    if ctx.controls:
        from qxai.analysis.controls import compare_similarity

        ctx.doc["similarity"]["controls"] = {
            name: compare_similarity(
                [acts.matrix(n) for n in names], [c.matrix(n) for n in names], labels=_labels(ctx),
                resamples=ctx.settings.control_resamples, seed=ctx.settings.seed,
            )
            for name, c in ctx.controls.items()
        }  # fmt: skip
    off = ~np.eye(len(names), dtype=bool)
    lo = np.unravel_index(np.where(off, m["cka"], np.inf).argmin(), m["cka"].shape)
    ctx.summary["least similar layers (CKA)"] = f"{names[lo[0]]} – {names[lo[1]]}: {m['cka'][lo]:.3f}"
    ctx.figure(
        "similarity.png",
        "Similarity between layers",
        "Left: cosine between the layers' centred Gram matrices (RV coefficient; 0 = orthogonal). Right: "
        "debiased linear CKA. Both compare layers of different widths on the same inputs.",
        figures.similarity_figure(names, m["cosine"], m["cka"]),
    )


def _labels(ctx: AnalysisContext) -> np.ndarray | None:
    """The inputs' classes for a stratified bootstrap (None when unknown)."""
    labels = ctx.subject.labels.numpy()
    return None if (labels < 0).any() else labels


def mi_step(ctx: AnalysisContext) -> None:
    settings, acts = ctx.settings, ctx.acts
    if ctx.mi_layers is None:
        ctx.note(
            "mutual information compares two layers; fewer were captured (pass --mi-layers A,B); skipped"
        )
        return
    a, b = ctx.mi_layers
    x, y = acts.matrix(a), acts.matrix(b)
    if x.shape[1] * y.shape[1] > 4_000_000:
        raise QxaiError(
            f"{x.shape[1]}×{y.shape[1]} MI pairs are too many; pool spatial maps or pick smaller layers"
        )
    r = mutual_information_matrix(
        x, y, method=settings.mi_method, permutations=settings.mi_permutations, seed=settings.seed
    )
    unit = "map" if acts.kinds[a] == "conv" else "unit"
    top = r.top_pairs(settings.mi_top, (a, b))
    # the false-discovery control runs on p-values valid at this N: the analytic null where its
    # asymptotics hold, else the permutation test, else none (significance is then not testable)
    if r.analytic_invalid is None:
        tested, tested_on = r.analytic_pvalues, "analytic p-values (Benjamini–Hochberg)"
    elif r.pvalues is not None:
        tested, tested_on = r.pvalues, f"permutation p-values (Benjamini–Hochberg; {r.analytic_invalid})"
    else:
        tested, tested_on = None, f"not testable: {r.analytic_invalid}; add --mi-permutations"
    significant = fdr_significant(tested, settings.fdr) if tested is not None else np.zeros_like(r.mi, bool)
    entry: dict = {
        "layers": [a, b],
        "method": r.method,
        "unit": "nats",
        "samples": r.samples,
        "permutations": r.permutations,
        "top_pairs": top,
        "constant_x": r.constant_x,
        "constant_y": r.constant_y,
        "mean_mi": float(r.mi.mean()),
        "pairs": int(r.mi.size),
        "analytic_null": f"2N·MI ~ chi2(df={r.df}) under independence",
        "df": r.df,
        "fdr_level": settings.fdr,
        "fdr_on": tested_on,
        "analytic_null_valid": r.analytic_invalid is None,
        "significant_pairs": int(significant.sum()) if tested is not None else None,
        "ceiling_nats": float(np.log(r.samples)),
        "pairs_at_ceiling": r.at_ceiling,
    }
    if r.at_ceiling:
        ctx.note(
            f"{r.at_ceiling} MI pairs reached ln N = {np.log(r.samples):.3g} nats, the most {r.samples} "
            "samples can show, and were capped there; use more --samples"
        )
    for pair in top:
        pair["significant"] = bool(significant[pair[a], pair[b]])
    ctx.arrays["mi/values"] = r.mi
    ctx.arrays["mi/pvalues_analytic"] = r.analytic_pvalues
    if tested is None:
        ctx.summary["MI pairs significant"] = tested_on
    else:
        on = "analytic" if r.analytic_invalid is None else "permutation"
        ctx.summary[f"MI pairs significant (BH on {on} p)"] = int(significant.sum())
    if r.pvalues is not None:
        ctx.arrays["mi/pvalues"] = r.pvalues
        entry["significant_pairs_permutation"] = int(fdr_significant(r.pvalues, settings.fdr).sum())
        entry["permutation_p_floor"] = 1.0 / (1 + r.permutations)
    if ctx.controls and r.analytic_invalid is None:
        from qxai.analysis.controls import compare_mi

        entry["controls"] = {
            name: compare_mi(
                (x, y), (c.matrix(a), c.matrix(b)), labels=_labels(ctx), method=settings.mi_method,
                fdr=settings.fdr, resamples=settings.control_resamples, seed=settings.seed,
            )
            for name, c in ctx.controls.items()
        }  # fmt: skip
        for name, c in entry["controls"].items():
            ctx.summary[f"MI pairs significant, {name} control"] = c["control"]
    elif ctx.controls:
        entry["controls_skipped"] = f"the control comparison needs the analytic null ({r.analytic_invalid})"
    ctx.doc["mutual_information"] = entry
    best = top[0]
    ctx.summary["MI top pair"] = f"{a} {unit} {best[a]} – {b} {unit} {best[b]}"
    ctx.summary["MI top value (nats)"] = best["mi"]
    ctx.figure(
        "mutual_information.png",
        f"Mutual information {a} × {b}",
        f"MI ({r.method}, nats) between every {unit} of {a} and of {b} over {acts.samples} inputs; the top "
        f"pairs are circled. p χ²: analytic null 2N·MI ~ χ²({r.df}); {int(significant.sum())} of {r.mi.size} "
        f"pairs significant after Benjamini–Hochberg at {settings.fdr:g} on {tested_on.split(' (')[0]}"
        + (
            f"; p perm: {r.permutations} permutations (floor {1 / (1 + r.permutations):.3g})."
            if r.permutations
            else "."
        ),
        figures.mi_figure(r.mi, (a, b), top[:10], unit),
    )


def _title(s, i: int, target: int) -> str:
    name = s.class_names[target] if 0 <= target < len(s.class_names) else str(target)
    label = int(s.labels[i])
    true = s.class_names[label] if 0 <= label < len(s.class_names) else None
    return f"true {true} / target {name}" if true is not None else f"target {name}"


def ig_step(ctx: AnalysisContext) -> None:
    from qxai.analysis.attribution import embedding_integrated_gradients, integrated_gradients, pad_baseline

    s, n, steps = ctx.subject, ctx.settings.ig_examples, ctx.settings.ig_steps
    if n < 1:
        return
    if not s.has_head:
        ctx.note("Integrated Gradients skipped: the model has no classification head, so no target logit")
        ctx.doc["integrated_gradients"] = {"skipped": "no classification head"}
        return
    rows = torch.arange(min(n, len(s.inputs)))
    inputs = s.inputs[rows]
    if s.kind == "transformer":
        mask = s.mask[rows] if s.mask is not None else torch.ones_like(inputs)
        keep = s.special_ids or tuple(inputs[:, :1].unique().tolist())
        base = pad_baseline(inputs, mask, pad_id=s.pad_id, keep=keep)
        r = embedding_integrated_gradients(
            s.model, s.model.embedding, inputs, mask, baseline_ids=base, steps=steps
        )
    else:
        r = integrated_gradients(s.model, inputs, steps=steps)
    titles = [_title(s, i, int(t)) for i, t in zip(rows.tolist(), r.targets, strict=True)]
    if s.kind == "image":
        fig = figures.ig_images_figure(inputs.numpy(), r.attributions, titles)
    elif s.kind == "lstm":
        fig = figures.ig_sequence_figure(inputs[..., 0].numpy(), r.attributions.sum(-1), titles)
    else:
        lengths = mask.sum(1).tolist()
        if s.tokens is not None:
            tokens = [list(s.tokens[i]) for i in rows.tolist()]
        else:
            tokens = [
                [str(int(t)) for t in seq[:length]] for seq, length in zip(inputs, lengths, strict=True)
            ]
        fig = figures.ig_tokens_figure(tokens, r.attributions, titles)
    ctx.arrays["ig/attributions"] = r.attributions
    ctx.doc["integrated_gradients"] = {
        "examples": len(rows),
        "steps": steps,
        "targets": r.targets,
        "delta": r.delta,
        "relative_delta": r.relative_delta,
        "logit_gap": r.gap,
        "baseline": "zeros" if s.kind != "transformer" else f"pad id {s.pad_id}, special tokens kept",
    }
    ctx.summary.update(r.summary())
    ctx.figure(
        "integrated_gradients.png",
        "Integrated Gradients",
        f"IG attributions ({steps} steps) of the target logit; completeness gap "
        f"max |Σ IG − (F(x) − F(x'))| = {np.abs(r.delta).max():.2e}.",
        fig,
    )


STEPS: dict[str, Step] = {
    "spectrum": spectrum_step,
    "similarity": similarity_step,
    "mi": mi_step,
    "ig": ig_step,
}
