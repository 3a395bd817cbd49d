"""The robustness and selection-stability metrics' computations: they re-explain copies of images.

Each takes the run's context and one method's result and returns ``(N,)`` values (NaN off the sample
of images). One perturbation family's copies are drawn, explained and run through the model once per
method (:func:`perturbed_sample`, cached) and shared by every metric that reads them: max and avg
sensitivity and the selection stability under noise read the sensitivity copies; RIS, ROS and RRS the
stability copies; the local Lipschitz estimate its own. The settings of the group are read from
``max_sensitivity`` (``samples``, ``images``, ``batch_size``, ``budget_seconds``); the seed count of
``selection_jaccard_seed`` from its own entry.

Which methods are scored is the run's choice (setting ``methods``, default every method), so the
table is the same on any machine. As a guard only, a method whose copies would take longer than
``budget_seconds`` per family (estimated from its own seconds per image in this run, so it depends on
the machine) is not scored, with that estimate and the setting to change in the reason — never
silently on fewer samples, since a maximum over fewer samples is a different number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.evaluate import robustness, stability

if TYPE_CHECKING:
    from qxai.evaluate.runner import EvalContext, MethodResult

#: the metric whose settings the robustness and stability metrics read
LEAD = "max_sensitivity"
#: which perturbation family each robustness metric reads
FAMILY = {
    "max_sensitivity": "sensitivity", "avg_sensitivity": "sensitivity", "local_lipschitz": "lipschitz",
    "relative_input_stability": "stability", "relative_output_stability": "stability",
    "relative_representation_stability": "stability", "selection_jaccard_noise": "sensitivity",
}  # fmt: skip


def sample_rows(ctx: EvalContext) -> np.ndarray:
    """The images the group re-explains: ``images`` of them, evenly spread over the run's order."""
    k = int(ctx.setting(LEAD, "images"))
    if k < 1:
        raise QxaiError(f"{LEAD}.images must be ≥ 1, got {k}")
    return ctx.sample_rows(k)


def chosen(ctx: EvalContext, r: MethodResult) -> str | None:
    """Applies unless the run names the methods to score (setting ``methods``) and ``r``'s is not one."""
    names = [n.strip() for n in str(ctx.setting(LEAD, "methods")).split(",") if n.strip()]
    if names and r.name not in names:
        return f"not among {LEAD}.methods ({', '.join(names)}): the run scores robustness for those only"
    return None


def _check_budget(ctx: EvalContext, r: MethodResult, copies: int, what: str) -> None:
    budget = float(ctx.setting(LEAD, "budget_seconds"))
    per_image = float(np.mean(r.seconds)) if r.seconds is not None and len(r.seconds) else 0.0
    estimate = copies * per_image
    if estimate > budget:
        raise QxaiError(
            f"{what} of {r.name} would take about {estimate:.0f} s ({copies} explanations at "
            f"{per_image * 1e3:.1f} ms); lower {LEAD}.samples or {LEAD}.images, or raise "
            f"{LEAD}.budget_seconds (now {budget:g})"
        )


def _collecting(explainer: Any) -> tuple[Callable[[torch.Tensor, torch.Tensor], np.ndarray], dict[str, list]]:
    """``explain(x, t) -> maps`` that also appends each call's map sets (``selected``, or
    ``channel_weights``) to the returned dict's lists, in call order."""
    collected: dict[str, list[Any]] = {"selected": [], "channel_weights": []}

    def explain(x: torch.Tensor, t: torch.Tensor) -> np.ndarray:
        exp = explainer.explain(x, t)
        for key, values in collected.items():
            if key in exp.extras:
                values.extend(list(exp.extras[key]))
        return exp.saliency

    return explain, collected


def perturbed_sample(ctx: EvalContext, r: MethodResult, family: str) -> robustness.PerturbedSample:
    """The ``family`` copies of the sample images, explained by ``r``'s method (once per run)."""

    def run() -> robustness.PerturbedSample:
        rows = sample_rows(ctx)
        samples = int(ctx.setting(LEAD, "samples"))
        _check_budget(ctx, r, samples * len(rows), f"the {family} copies")
        explain, collected = _collecting(ctx.explainer(r.name))
        assert r.saliency is not None
        return robustness.perturb_and_explain(
            ctx.model, explain, torch.as_tensor(np.asarray(ctx.images[rows])), ctx.targets[rows],
            r.saliency[rows], robustness.FAMILIES[family], samples=samples, seed=ctx.seed,
            ids=ctx.image_ids[rows], batch_size=int(ctx.setting(LEAD, "batch_size")),
            hidden=family == "stability", outputs=family == "stability",
            extras=lambda: {k: v for k, v in collected.items() if v},
        )  # fmt: skip

    return ctx.cached(("perturbed", r.name, family), run)


def robustness_metric(name: str) -> Callable[[EvalContext, MethodResult], np.ndarray]:
    """The compute function of robustness metric ``name`` (a key of :data:`FAMILY`)."""
    score = {
        "max_sensitivity": lambda s: robustness.sensitivity(s, "max"),
        "avg_sensitivity": lambda s: robustness.sensitivity(s, "mean"),
        "local_lipschitz": robustness.local_lipschitz,
        "relative_input_stability": robustness.relative_input_stability,
        "relative_output_stability": robustness.relative_output_stability,
        "relative_representation_stability": robustness.relative_representation_stability,
    }[name]

    def compute(ctx: EvalContext, r: MethodResult) -> np.ndarray:
        sample = perturbed_sample(ctx, r, FAMILY[name])
        rows = sample_rows(ctx)
        if name == "relative_input_stability" and sample.flipped is not None:
            r.details["robustness_flipped_share"] = float(sample.flipped.mean())
        return ctx.spread(rows, score(sample))

    return compute


def _sized(extras: dict[str, Any] | None, sizes: list[int], copies: int) -> list[list[int]]:
    """The copies' map sets: a selection as it is, channel weights as the top ``sizes[b]``."""
    extras = extras or {}
    if "selected" in extras:
        return [list(s) for s in extras["selected"]]
    if "channel_weights" not in extras:
        raise QxaiError("the re-explanations carry no selection or channel weights")
    return stability.top_k_sets(np.asarray(extras["channel_weights"]), sizes * copies)


def _reference_sets(ctx: EvalContext, r: MethodResult, rows: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """The method's sets on the sample images (size-matched to QA) and those sizes."""
    sizes = ctx.reference_sizes()
    assert sizes is not None
    chosen = [sizes[i] for i in rows]
    sets = r.selections(ctx, sizes)
    assert sets is not None
    return [sorted(sets[i]) for i in rows], chosen


def selection_under_noise(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    """Per sample image, the mean Jaccard of its set with its sets on the max-sensitivity copies."""
    rows = sample_rows(ctx)
    sample = perturbed_sample(ctx, r, "sensitivity")
    ref, sizes = _reference_sets(ctx, r, rows)
    copies = sample.explanations.shape[0]
    sets = _sized(sample.extras, sizes, copies)
    b = len(rows)
    return ctx.spread(rows, stability.mean_jaccard(ref, [sets[s * b : (s + 1) * b] for s in range(copies)]))


def selection_across_seeds(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    """Per sample image, the mean Jaccard of its set with the sets the method gives with ``seeds``
    other seeds (``seed + 1 … seed + seeds``)."""
    def run() -> np.ndarray:
        rows = sample_rows(ctx)
        ref, sizes = _reference_sets(ctx, r, rows)
        x, t = torch.as_tensor(np.asarray(ctx.images[rows])), ctx.targets[rows]
        count = int(ctx.setting("selection_jaccard_seed", "seeds"))
        _check_budget(ctx, r, count * len(rows), "the re-solves")
        others = []
        for offset in range(1, count + 1):
            explain, collected = _collecting(ctx.explainer(r.name, seed=ctx.seed + offset))
            for s in range(0, len(x), ctx.settings.batch_size):
                explain(x[s : s + ctx.settings.batch_size], t[s : s + ctx.settings.batch_size])
            others.append(_sized({k: v for k, v in collected.items() if v}, sizes, 1))
        return ctx.spread(rows, stability.mean_jaccard(ref, others))

    return ctx.cached(("seeds", r.name), run)


def selection_across_reads(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    """Per sample image, how far the solver's reads agree with its best read (QA-style explainers)."""
    from qxai.anneal.samplers import sample_many

    rows = sample_rows(ctx)
    explainer = ctx.explainer(r.name)
    if not hasattr(explainer, "build_qubos"):
        raise QxaiError(f"{r.name} builds no QUBOs, so it has no solver reads to compare")
    batch = explainer.build_qubos(torch.as_tensor(np.asarray(ctx.images[rows])), ctx.targets[rows])
    bqms = [bqm for bqm, _kept in batch.qubos]
    # an image above the solver's size limit is not solved in the run either (flagged there)
    over = explainer._over_limit(bqms)  # the explainer's own rule, not a copy
    solvable = [i for i, o in enumerate(over) if not o]
    values = np.full(len(rows), np.nan)
    for i, ss in zip(solvable, sample_many(explainer.sampler, [bqms[i] for i in solvable], seed=ctx.seed),
                     strict=True):  # fmt: skip
        values[i] = stability.read_agreement(ss)
    return ctx.spread(rows, values)


def has_reads(ctx: EvalContext, r: MethodResult) -> str | None:
    """Applies to explainers that build QUBOs and sample them (reads exist)."""
    if "selected" not in r.extras:
        return "the method has no solver whose reads could differ"
    return chosen(ctx, r)


__all__ = [
    "FAMILY", "LEAD", "chosen", "has_reads", "perturbed_sample", "robustness_metric", "sample_rows",
    "selection_across_reads", "selection_across_seeds", "selection_under_noise",
]  # fmt: skip
