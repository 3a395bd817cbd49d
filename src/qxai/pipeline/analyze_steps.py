"""The four steps of ``run_analyze``: each reads the shared context, adds its part to the result
(JSON-able data, figures, headline numbers in ``result["summary"]``) and its arrays to ``arrays``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qxai.analysis import figures
from qxai.analysis.mutual_info import mutual_information_matrix
from qxai.analysis.similarity import similarity_matrices
from qxai.errors import QxaiError
from qxai.io import write_figure

Step = Callable[[dict[str, Any], dict[str, Any], dict[str, np.ndarray]], None]


def _write(out: Path, name: str, fig: Any, title: str, caption: str, result: dict[str, Any]) -> None:
    write_figure(out / name, fig)
    result["figures"].append({"file": name, "title": title, "caption": caption})


def spectrum_step(ctx: dict[str, Any], result: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    spectra, k = ctx["spectra"], ctx["top_k"]
    result["spectra"] = {}
    for name, s in spectra.items():
        result["spectra"][name] = {
            **s.summary(k),
            "explained_variance_ratio": s.explained_variance_ratio[:64],
        }
        arrays[f"singular_values/{name}"] = s.singular_values
        result["summary"][f"{name} top{k} share"] = s.top_k_share(k)
        result["summary"][f"{name} entropy"] = s.entropy
        result["summary"][f"{name} effective rank"] = s.effective_rank
    _write(
        ctx["out"],
        "spectra.png",
        figures.spectra_figure(spectra, k),
        "Layer spectra",
        f"Explained-variance ratio of each layer's principal components and their cumulative share; the "
        f"dashed line marks the top {k}.",
        result,
    )
    _write(
        ctx["out"],
        "entropy.png",
        figures.entropy_figure(spectra),
        "Entropy per layer",
        "Von Neumann entropy and purity of ρ = C / tr C (C: covariance of the layer's activations), and the "
        "Roy–Vetterli effective rank: higher entropy = variance spread over more directions.",
        result,
    )


def similarity_step(ctx: dict[str, Any], result: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    acts = ctx["acts"]
    names = [n for n in acts.features if acts.kinds[n] != "attention"]
    if len(names) < 2:
        result["notes"].append("similarity needs two layers or more; skipped")
        return
    m = similarity_matrices({n: acts.matrix(n) for n in names})
    result["similarity"] = {
        "layers": names,
        "cosine_gram": m["cosine"],
        "cka_debiased": m["cka"],
        "constant_layers": m["constant_layers"],
        "definition": "cosine = RV coefficient of centred N×N Gram matrices; CKA = debiased "
        "linear CKA (U-centred Grams)",
    }
    arrays["similarity/cosine"], arrays["similarity/cka"] = m["cosine"], m["cka"]
    off = ~np.eye(len(names), dtype=bool)
    lo = np.unravel_index(np.where(off, m["cka"], np.inf).argmin(), m["cka"].shape)
    result["summary"]["least similar layers (CKA)"] = f"{names[lo[0]]} – {names[lo[1]]}: {m['cka'][lo]:.3f}"
    _write(
        ctx["out"],
        "similarity.png",
        figures.similarity_figure(names, m["cosine"], m["cka"]),
        "Similarity between layers",
        "Left: cosine between the layers' centred Gram matrices (RV coefficient; 0 = orthogonal). Right: "
        "debiased linear CKA. Both compare layers of different widths on the same inputs.",
        result,
    )


def mi_step(ctx: dict[str, Any], result: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from scipy.stats import false_discovery_control

    acts, (a, b) = ctx["acts"], ctx["mi_layers"]
    x, y = acts.matrix(a), acts.matrix(b)
    if x.shape[1] * y.shape[1] > 4_000_000:
        raise QxaiError(
            f"{x.shape[1]}×{y.shape[1]} MI pairs are too many; pool spatial maps or pick smaller layers"
        )
    r = mutual_information_matrix(
        x, y, method=ctx["mi_method"], permutations=ctx["mi_permutations"], seed=ctx["seed"]
    )
    unit = "map" if acts.kinds[a] == "conv" else "unit"
    top = r.top_pairs(ctx["mi_top"], (a, b))
    entry: dict[str, Any] = {
        "layers": [a, b],
        "method": r.method,
        "unit": "nats",
        "permutations": r.permutations,
        "top_pairs": top,
        "constant_x": r.constant_x,
        "constant_y": r.constant_y,
        "mean_mi": float(r.mi.mean()),
    }
    arrays["mi/values"] = r.mi
    if r.pvalues is not None:
        arrays["mi/pvalues"] = r.pvalues
        q = false_discovery_control(r.pvalues.ravel())
        entry["significant_pairs_fdr_0.05"] = int((q < 0.05).sum())
        result["summary"]["MI pairs significant (FDR 5%)"] = int((q < 0.05).sum())
    result["mutual_information"] = entry
    best = top[0]
    result["summary"]["MI top pair"] = f"{a} {unit} {best[a]} – {b} {unit} {best[b]}"
    result["summary"]["MI top value (nats)"] = best["mi"]
    _write(
        ctx["out"],
        "mutual_information.png",
        figures.mi_figure(r.mi, (a, b), top[:10], unit),
        f"Mutual information {a} × {b}",
        f"MI ({r.method}, nats) between every {unit} of {a} and of {b} over {acts.samples} inputs; the top "
        f"pairs are circled" + (f", p-values from {r.permutations} permutations." if r.permutations else "."),
        result,
    )


def ig_step(ctx: dict[str, Any], result: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from qxai.analysis.attribution import embedding_integrated_gradients, integrated_gradients

    s, n = ctx["subject"], ctx["ig_examples"]
    if n < 1:
        return
    rows = torch.arange(min(n, len(s.inputs)))
    inputs = s.inputs[rows]
    if s.kind == "transformer":
        r = embedding_integrated_gradients(
            s.model, s.model.embedding, inputs, s.mask[rows], steps=ctx["ig_steps"]
        )
    else:
        r = integrated_gradients(s.model, inputs, steps=ctx["ig_steps"])
    titles = [
        f"true {s.class_names[int(s.labels[i])]} / target {s.class_names[int(t)]}"
        for i, t in zip(rows.tolist(), r.targets, strict=True)
    ]
    if s.kind == "image":
        fig = figures.ig_images_figure(inputs.numpy(), r.attributions, titles)
    elif s.kind == "lstm":
        fig = figures.ig_sequence_figure(inputs[..., 0].numpy(), r.attributions.sum(-1), titles)
    else:
        lengths = s.mask[rows].sum(1).tolist()
        tokens = [[str(int(t)) for t in seq[:length]] for seq, length in zip(inputs, lengths, strict=True)]
        fig = figures.ig_tokens_figure(tokens, r.attributions, titles)
    arrays["ig/attributions"] = r.attributions
    result["integrated_gradients"] = {
        "examples": len(rows),
        "steps": ctx["ig_steps"],
        "targets": r.targets,
        "delta": r.delta,
        "relative_delta": r.relative_delta,
        "logit_gap": r.gap,
        "baseline": "zeros" if s.kind != "transformer" else "[PAD] ids (first token kept)",
    }
    result["summary"].update(r.summary())
    _write(
        ctx["out"],
        "integrated_gradients.png",
        fig,
        "Integrated Gradients",
        f"IG attributions ({ctx['ig_steps']} steps) of the target logit; completeness gap "
        f"max |Σ IG − (F(x) − F(x'))| = {np.abs(r.delta).max():.2e}.",
        result,
    )


STEPS: dict[str, Step] = {
    "spectrum": spectrum_step,
    "similarity": similarity_step,
    "mi": mi_step,
    "ig": ig_step,
}
