"""Reference points for the class-overlap score, and diagnostics that say what the numbers mean.

The mean off-diagonal Bhattacharyya overlap of a selection depends on more than how well it
separates classes: on set size, and on whether the selection varies per image at all. Three
reference rows are computed by the same code on the QA selection sizes:

- **permutation null**: QA's own sets with the class labels shuffled (``null_draws`` times) — the
  overlap of a selection that carries no class information; each method is also reported relative
  to its mean;
- **random k**: ``|S_QA|`` maps drawn uniformly at random per image;
- **class prototype**: every image of a class gets that class's most frequent QA set — a selection
  with no per-image information at all. A method that does not beat it is not using the image.

Diagnostics: the within-class spread of the Grad-CAM weights α (when a Linear layer sits straight
on the explained maps, α is the same for every image of a class, so d, the linear term and
GradCAM's activated set are fixed per class and only J varies), how often QA's set equals each
CAM's top-|S| set, and the dead maps left out of the QUBO.

>>> from qxai.evaluate.disentangle import selection_matrix
>>> sel = selection_matrix([[0], [0], [1], [1]], 2)
>>> round(permutation_null(sel, np.array([0, 0, 1, 1]), 2, draws=50, seed=0)["mean"], 2) > 0.0
True
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qxai.evaluate.causal import gradient_activation_sets
from qxai.evaluate.claims import class_mean_alpha_r
from qxai.evaluate.disentangle import overlap_from_matrix, selection_matrix
from qxai.evaluate.statistics import bootstrap_statistic
from qxai.seeding import numpy_rng

if TYPE_CHECKING:
    from qxai.evaluate.runner import EvalContext, Evaluation, MethodResult

#: Relative within-class spread of α below which α counts as constant per class.
CONSTANT_ALPHA_RTOL = 1e-6


def _spread(values: np.ndarray) -> dict[str, Any]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)), "interval": [float(lo), float(hi)],
            "draws": int(values.size)}  # fmt: skip


def permutation_null(selected: np.ndarray, labels: np.ndarray, num_classes: int, *, draws: int, seed: int
                     ) -> dict[str, Any]:  # fmt: skip
    """Overlap of ``selected`` ``(N, M)`` with shuffled labels: mean, sd and the 95 % range."""
    rng = numpy_rng(seed, "permutation-null")
    values = np.array([overlap_from_matrix(selected, rng.permutation(labels), num_classes)[0]
                       for _ in range(draws)])  # fmt: skip
    return _spread(values)


def random_k(sizes: list[int], num_maps: int, labels: np.ndarray, num_classes: int, *, draws: int, seed: int
             ) -> dict[str, Any]:  # fmt: skip
    """Overlap of ``sizes[i]`` maps drawn uniformly per image (``draws`` times)."""
    rng = numpy_rng(seed, "random-k")
    k = np.asarray(sizes)[:, None]
    values = []
    for _ in range(draws):
        ranks = np.argsort(np.argsort(rng.random((len(sizes), num_maps)), axis=1), axis=1)
        values.append(overlap_from_matrix((ranks < k).astype(float), labels, num_classes)[0])
    return _spread(np.array(values))


def class_prototypes(selections: list[list[int]], labels: np.ndarray) -> list[list[int]]:
    """Every image's set replaced by its class's most frequent set (ties: the smallest set, then
    the lexicographically first, so the result is deterministic)."""
    proto: dict[int, tuple[int, ...]] = {}
    for c in np.unique(labels):
        counts = Counter(tuple(sorted(s)) for s, y in zip(selections, labels, strict=True) if y == c)
        top = max(counts.values())
        proto[int(c)] = min((s for s, n in counts.items() if n == top), key=lambda s: (len(s), s))
    return [list(proto[int(y)]) for y in labels]


def overlap_references(ctx: EvalContext, ref: MethodResult, ev: Evaluation) -> dict[str, Any]:
    """The three reference rows for the size-matched overlap, and every method relative to the null."""
    labels, c, m = ctx.labels, ctx.num_classes, ctx.num_maps()
    sets = ref.selections(ctx)
    assert sets is not None
    draws, seed = ctx.settings.null_draws, ctx.seed
    selected = selection_matrix(sets, m)
    null = permutation_null(selected, labels, c, draws=draws, seed=seed)
    rand = random_k([len(s) for s in sets], m, labels, c, draws=draws, seed=seed)
    proto_sel = selection_matrix(class_prototypes(sets, labels), m)

    def proto_stat(idx: np.ndarray) -> float:
        return overlap_from_matrix(proto_sel[idx], labels[idx], c)[0]

    full = np.arange(len(labels))
    proto = {
        "mean": proto_stat(full),
        "interval": list(
            bootstrap_statistic(proto_stat, len(labels), seed=seed, resamples=ctx.settings.resamples)
        ),
    }
    relative = {
        name: r.scores["overlap_mean"] / null["mean"]
        for name, r in ev.ok().items()
        if np.isfinite(r.scores.get("overlap_mean", np.nan)) and null["mean"] > 0
    }  # fmt: skip
    return {
        "permutation_null": null, "random_k": rand, "class_prototype": proto, "relative_to_null": relative,
        "note": (
            "all three use the QA selection sizes; lower overlap is better; a method at or above the "
            "class prototype uses no per-image information beyond the class"
        ),
    }  # fmt: skip


def alpha_within_class(weights: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """How much the Grad-CAM weights ``(N, M)`` vary between images of the same class.

    ``relative_spread``: the largest within-class range of any map's α over the mean |α|.

    >>> alpha_within_class(np.array([[1.0, -2.0], [1.0, -2.0], [3.0, 0.5]]), np.array([0, 0, 1]))["constant"]
    True
    """
    w = np.asarray(weights, dtype=np.float64)
    scale = float(np.mean(np.abs(w))) or 1.0
    spread = max((float(np.ptp(w[labels == c], axis=0).max()) for c in np.unique(labels)), default=0.0)
    rel = spread / scale
    constant = rel <= CONSTANT_ALPHA_RTOL
    out: dict[str, Any] = {"max_spread": spread, "mean_abs_alpha": scale, "relative_spread": rel,
                           "constant": bool(constant),
                           "class_mean_min_r": class_mean_alpha_r(w, labels)}  # fmt: skip
    if constant:
        out["sentence"] = (
            f"α is the same for every image of a class here (relative spread {rel:.1e}): d, the QUBO's "
            "linear term and GradCAM's activated set are fixed per class, and only the redundancy J "
            "varies per image — typical when a Linear layer sits straight on the explained maps. A layer "
            "with a non-linearity between it and the logits gives per-image α (reduced-cnn: --layer "
            "reduce.0; the demo keeps the paper's layer, reduce, to compare with the paper)."
        )
    return out


def diagnostics(ctx: EvalContext, ref: MethodResult, ev: Evaluation) -> dict[str, Any]:
    """α's within-class spread, agreement of QA with each CAM's top-|S| set, and dead maps."""
    out: dict[str, Any] = {"reference_method": ref.name}
    labels = ctx.labels
    weights = ref.extras.get("channel_weights")
    if weights is not None:
        out["alpha_within_class"] = alpha_within_class(np.asarray(weights), labels)
    sets = [tuple(sorted(s)) for s in (ref.selections(ctx) or [])]
    sizes = [len(s) for s in sets]
    same: dict[str, float] = {}
    for name, r in ev.ok().items():
        if r is ref or r.extras.get("channel_weights") is None:
            continue
        theirs = r.selections(ctx, sizes=sizes) or []
        same[name] = float(np.mean([tuple(sorted(t)) == s for t, s in zip(theirs, sets, strict=True)]))
    if same:
        out["same_set_as_topk"] = same
    if "dead_maps" in ref.extras:
        dead = np.asarray(ref.extras["dead_maps"], dtype=float)
        out["dead_maps"] = {
            "dropped_per_image": float(dead.mean()), "images_with_dead_maps": float(np.mean(dead > 0)),
            "note": "maps with α > 0 but (near-)zero activation are not QUBO variables",
        }  # fmt: skip
    out["mean_set_size"] = float(np.mean(sizes)) if sizes else float("nan")
    return out


# --------------------------------------------------------------------------- causal reference rows

#: the reference selections every method's causal scores are read against (all of size |S_QA|)
CAUSAL_REFERENCES = {
    "random_k": "k maps drawn uniformly at random (exact expectation over all C(N, k) sets)",
    "class_prototype": "the k maps QA selects most often for images of the same class (no per-image "
    "information)",
    "gradient_x_activation": "the k maps with the largest Σ (∂z/∂A)·A (first-order contribution; exact for a "
    "linear head)",
}
CAUSAL_METRICS = ("causal_share", "causal_precision", "causal_drop_share")


def prototype_top_k(selections: list[list[int]], labels: np.ndarray, num_maps: int) -> list[list[int]]:
    """Per image the ``len(selections[i])`` maps selected most often in its class (ties: lower index),
    a size-matched class prototype.

    >>> prototype_top_k([[0, 1], [1], [2, 3]], np.array([0, 0, 1]), 4)
    [[0, 1], [1], [2, 3]]
    """
    sel = selection_matrix(selections, num_maps)
    out = []
    for s, y in zip(selections, labels, strict=True):
        counts = sel[labels == y].sum(axis=0)
        order = np.lexsort((np.arange(num_maps), -counts))  # most frequent first, then lower index
        out.append(sorted(int(j) for j in order[: len(s)]))
    return out


def causal_references(ctx: EvalContext, ref: MethodResult) -> dict[str, Any]:
    """The three causal reference selections scored like a method (mean and 95 % interval of each
    causal metric) and QA's paired difference against each, on the images QA selected a map for.

    Random k uses the exact expectation from the oracle's enumeration (precision ``k/N``); where
    the oracle is a beam search it has no expectation, and those images are left out of its row.
    """
    from qxai.evaluate.metrics import causal_oracle, causal_set_scores
    from qxai.evaluate.statistics import bootstrap_interval, finite_mean, paired_test

    sets = ref.selections(ctx) or []
    n, m = len(sets), ctx.num_maps()
    sizes = [len(s) for s in sets]
    rows = [i for i, k in enumerate(sizes) if k]
    values = {name: {metric: np.full(n, np.nan) for metric in CAUSAL_METRICS} for name in CAUSAL_REFERENCES}
    proto = prototype_top_k(sets, ctx.labels, m)
    batch = ctx.settings.batch_size
    for s in range(0, len(rows), batch):
        part = rows[s : s + batch]
        images = torch.as_tensor(np.asarray(ctx.images[part]))
        ks = [sizes[i] for i in part]
        taylor = gradient_activation_sets(ctx.model, ctx.layer, images, ctx.targets[part], ks)
        for i, chosen_g in zip(part, taylor, strict=True):
            oracle = causal_oracle(ctx, i, sizes[i])
            rand = values["random_k"]
            rand["causal_share"][i] = oracle.keep_random_share
            rand["causal_drop_share"][i] = oracle.drop_random_share
            rand["causal_precision"][i] = sizes[i] / oracle.n if oracle.exact else np.nan
            for name, chosen in (("class_prototype", proto[i]), ("gradient_x_activation", chosen_g)):
                if sorted(chosen) == sorted(sets[i]):
                    # the same set as QA's scores what QA's scored: taken from QA, so the paired
                    # difference is exactly 0 here on every route, not float32 rounding between routes
                    for metric in CAUSAL_METRICS:
                        values[name][metric][i] = ref.per_image.get(metric, np.full(n, np.nan))[i]
                    continue
                scores = causal_set_scores(ctx, i, chosen, ("reference", name))
                for metric in CAUSAL_METRICS:
                    values[name][metric][i] = scores[metric.removeprefix("causal_")]
    out: dict[str, Any] = {}
    seed, resamples = ctx.seed, ctx.settings.resamples
    for name, per_metric in values.items():
        row: dict[str, Any] = {"definition": CAUSAL_REFERENCES[name]}
        for metric, v in per_metric.items():
            qa = ref.per_image.get(metric)
            if qa is None:
                continue
            entry: dict[str, Any] = {"mean": finite_mean(v), "interval": list(bootstrap_interval(
                v, seed=seed, resamples=resamples))}  # fmt: skip
            both = np.isfinite(qa) & np.isfinite(v)
            test = paired_test(lambda idx, a=np.where(both, qa, np.nan): finite_mean(a, idx),
                               lambda idx, b=np.where(both, v, np.nan): finite_mean(b, idx), n, seed=seed,
                               resamples=resamples)  # fmt: skip
            entry["qa_minus"] = test.to_dict()
            row[metric] = entry
        out[name] = row
    return out
