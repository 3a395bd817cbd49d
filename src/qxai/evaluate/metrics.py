"""The metric registry: every score is one :class:`Metric` entry that carries its own code.

A metric has a name, a group, a direction (``higher``/``lower`` is better, or ``none`` for a
diagnostic that never declares a best), a one-line definition, a ``level`` and two functions:

- ``applies(ctx, result) -> str | None``: None when the metric applies to this method's
  explanation, otherwise the one-line reason it does not (decided from what the explanation
  carries — a map selection, channel weights, masks — never from the method's name);
- ``compute(ctx, result)``: for ``level="image"`` the ``(N,)`` per-image values (NaN where
  undefined); for ``level="set"`` a statistic ``f(indices) -> float`` of a subset of the images
  (overlap and silhouette are properties of a set, so intervals re-compute them on resamples); for
  ``level="run"`` one float (a single measurement, no interval).

Per-image metrics are computed shard by shard in a sharded run (``qxai evaluate --all``); set and
run metrics, and per-image metrics marked ``sample=True`` (the sanity checks, which re-explain a
fixed sample of the images), are computed once every image is explained, on the merged records.

Adding a metric is one :func:`register_metric` call (docs/ARCHITECTURE.md shows one).

>>> METRICS["deletion_auc"].direction
'lower'
>>> [m.name for m in select_metrics(["localisation"])]
['pointing_game', 'relevance_mass']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qxai.errors import QxaiError, unknown_name
from qxai.evaluate import causal, disentangle, faithfulness, localisation, reexplain, sanity
from qxai.evaluate.statistics import column_reduce
from qxai.seeding import numpy_rng

if TYPE_CHECKING:
    import torch

    from qxai.evaluate.runner import EvalContext, MethodResult

Applies = Callable[["EvalContext", "MethodResult"], "str | None"]
LEVELS = ("image", "set", "run")
DIRECTIONS = ("higher", "lower", "none")


def _always(ctx: EvalContext, r: MethodResult) -> str | None:
    return None


@dataclass(frozen=True)
class Metric:
    """A score of one explanation method over a set of images (see the module docstring)."""

    name: str
    group: str
    direction: str
    definition: str
    level: str = "image"
    compute: Callable[[EvalContext, MethodResult], Any] | None = field(default=None, compare=False)
    applies: Applies = field(default=_always, compare=False)
    sample: bool = False
    #: why the metric can be undefined (NaN) on an image, said when it is
    nan_cause: str = ""
    #: its settings and their defaults; ``compute`` reads one with ``ctx.setting(name, key)`` and
    #: ``qxai evaluate --metric-option NAME.KEY=VALUE`` sets it
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: computed only when asked for by name or group (``--metrics robustness``), never by default:
    #: robustness re-explains hundreds of copies of every sampled image
    opt_in: bool = False

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise QxaiError(
                f"metric {self.name}: direction must be one of {DIRECTIONS}, got {self.direction!r}"
            )
        if self.level not in LEVELS:
            raise QxaiError(f"metric {self.name}: level must be one of {LEVELS}, got {self.level!r}")

    @property
    def per_shard(self) -> bool:
        """Whether the metric is computed on each shard's images alone (per-image, whole set)."""
        return self.level == "image" and not self.sample

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` in this metric's direction."""
        if self.direction == "none":
            return False
        return a > b if self.direction == "higher" else a < b


# --------------------------------------------------------------------------- applicability


def _selects_maps(ctx: EvalContext, r: MethodResult) -> str | None:
    if r.selections(ctx) is None:
        return "the method selects no feature maps (no selection, no channel weights)"
    return None


def _needs_reference(ctx: EvalContext, r: MethodResult) -> str | None:
    return None if ctx.reference_sizes() is not None else "needs 'qa' in the same run: k = |S_QA| per image"


def _size_matched(ctx: EvalContext, r: MethodResult) -> str | None:
    return _selects_maps(ctx, r) or _needs_reference(ctx, r)


def _size_matched_chosen(ctx: EvalContext, r: MethodResult) -> str | None:
    return _size_matched(ctx, r) or reexplain.chosen(ctx, r)


def _two_classes(ctx: EvalContext, r: MethodResult) -> str | None:
    present = len(np.unique(ctx.labels))
    if present < 2:
        return f"the images cover {present} class: separating classes needs two or more"
    return None


def _size_matched_classes(ctx: EvalContext, r: MethodResult) -> str | None:
    return _two_classes(ctx, r) or _size_matched(ctx, r)


def _selects_maps_classes(ctx: EvalContext, r: MethodResult) -> str | None:
    return _two_classes(ctx, r) or _selects_maps(ctx, r)


def _has_masks(ctx: EvalContext, r: MethodResult) -> str | None:
    return None if ctx.masks is not None else "the data set has no ground-truth masks"


def _sanity_applies(ctx: EvalContext, r: MethodResult) -> str | None:
    if r.properties.get("sign_ambiguous"):
        return (
            "the method's map sign is arbitrary (a principal component), so rank correlations "
            "between two of its maps are not comparable"
        )
    return None


def _class_sensitivity_applies(ctx: EvalContext, r: MethodResult) -> str | None:
    if ctx.num_classes < 3:
        return (
            "two-class data: the runner-up is the only other class, whose positive-part map is "
            "the complement of the target's, so |ρ| does not measure class sensitivity"
        )
    return _sanity_applies(ctx, r)


# --------------------------------------------------------------------------- disentanglement


def _overlap_stat(
    ctx: EvalContext, sets: Sequence[Sequence[int]], which: str
) -> Callable[[np.ndarray], float]:
    selected = disentangle.selection_matrix(sets, ctx.num_maps())
    labels = ctx.labels
    pick = 0 if which == "mean" else 1

    def stat(idx: np.ndarray) -> float:
        return disentangle.overlap_from_matrix(selected[idx], labels[idx], ctx.num_classes)[pick]

    return stat


def _sized_sets(ctx: EvalContext, r: MethodResult) -> list[list[int]]:
    return r.selections(ctx, sizes=ctx.reference_sizes())  # type: ignore[return-value]


def _overlap_sized(which: str) -> Callable[[EvalContext, MethodResult], Callable[[np.ndarray], float]]:
    def compute(ctx: EvalContext, r: MethodResult) -> Callable[[np.ndarray], float]:
        sets = _sized_sets(ctx, r)
        r.matrices.setdefault("overlap", disentangle.overlap_scores(sets, ctx.labels, ctx.num_maps(),
                                                                     ctx.num_classes)[2])  # fmt: skip
        return _overlap_stat(ctx, sets, which)

    return compute


def _overlap_activated(which: str) -> Callable[[EvalContext, MethodResult], Callable[[np.ndarray], float]]:
    def compute(ctx: EvalContext, r: MethodResult) -> Callable[[np.ndarray], float]:
        sets = r.selections(ctx)
        assert sets is not None
        r.matrices.setdefault("overlap_activated", disentangle.overlap_scores(
            sets, ctx.labels, ctx.num_maps(), ctx.num_classes)[2])  # fmt: skip
        r.details["mean_selected_maps"] = float(np.mean([len(s) for s in sets]))
        return _overlap_stat(ctx, sets, which)

    return compute


def _silhouette(ctx: EvalContext, r: MethodResult) -> Callable[[np.ndarray], float]:
    """On every image, or on a seeded sample of ``silhouette_images`` of them when there are more
    (the distance matrix is quadratic in N); a resample keeps the sampled images it contains."""
    assert r.saliency is not None
    n, cap = len(ctx.labels), ctx.settings.silhouette_images
    sample = np.arange(n) if n <= cap else np.sort(numpy_rng(ctx.seed, "silhouette").choice(n, cap, False))
    distances = disentangle.pairwise_distances(np.asarray(r.saliency[sample]))
    where = np.full(n, -1)
    where[sample] = np.arange(len(sample))
    labels = ctx.labels[sample]

    def stat(idx: np.ndarray) -> float:
        kept = where[idx]
        kept = kept[kept >= 0]
        return disentangle.silhouette_precomputed(distances[np.ix_(kept, kept)], labels[kept])

    return stat


# --------------------------------------------------------------------------- faithfulness


def _curve(mode: str) -> Callable[[EvalContext, MethodResult], np.ndarray]:
    def compute(ctx: EvalContext, r: MethodResult) -> np.ndarray:
        st = ctx.settings
        fill = st.deletion_fill if mode == "deletion" else st.insertion_fill
        curves = faithfulness.perturbation_curves(
            ctx.model, ctx.images, ctx.targets, r.saliency, mode=mode, steps=st.steps, fill=fill,
            seed=ctx.seed, ids=ctx.image_ids, batch_size=st.batch_size,
        )  # fmt: skip
        r.curves[mode] = curves.mean(axis=0)
        return faithfulness.curve_auc(curves)

    return compute


def _keep_top_drop(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    st = ctx.settings
    return faithfulness.keep_top_drop(
        ctx.model, ctx.images, ctx.targets, r.saliency, keep=st.keep, fill=st.deletion_fill, seed=ctx.seed,
        ids=ctx.image_ids, batch_size=st.batch_size,
    )  # fmt: skip


# --------------------------------------------------------------------------- localisation


def _pointing(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    return localisation.pointing_game(r.saliency, ctx.masks, seed=ctx.seed, ids=ctx.image_ids)


def _mass(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    return localisation.relevance_mass(r.saliency, ctx.masks)


# --------------------------------------------------------------------------- sanity


def _randomisation(ctx: EvalContext, r: MethodResult) -> tuple[np.ndarray, np.ndarray]:
    """Per image: mean |ρ| over the randomisation stages (NaN when blank) and the blank share."""

    def run() -> tuple[np.ndarray, np.ndarray]:
        rows = ctx.sanity_rows()
        x, t = ctx.images[rows], ctx.targets[rows]
        trained = r.saliency[rows]  # type: ignore[index]
        rhos, blanks = [], []
        for stage in sanity.randomisation_stages(ctx.model, ctx.settings.randomisation):
            rand_model = sanity.randomised_copy(ctx.model, stage, ctx.seed)
            maps = ctx.explain_with(r.name, rand_model, x, t)
            rho, blank = sanity.abs_spearman(trained, maps)
            rhos.append(rho)
            blanks.append(blank)
        with np.errstate(invalid="ignore"):
            rho_rows = column_reduce(np.stack(rhos), np.nanmean)
        r.details["randomisation_stages"] = [
            float(np.nanmean(x)) if np.isfinite(x).any() else None for x in rhos
        ]
        return ctx.spread(rows, rho_rows), ctx.spread(rows, np.mean(np.stack(blanks), axis=0))

    return ctx.cached(("randomisation", r.name), run)


def _class_sensitivity(ctx: EvalContext, r: MethodResult) -> tuple[np.ndarray, np.ndarray]:
    def run() -> tuple[np.ndarray, np.ndarray]:
        rows = ctx.sanity_rows()
        x, t = ctx.images[rows], ctx.targets[rows]
        other = sanity.runner_up_classes(ctx.model, x, t)
        maps = ctx.explain_with(r.name, ctx.model, x, other)
        rho, blank = sanity.abs_spearman(r.saliency[rows], maps)  # type: ignore[index]
        return ctx.spread(rows, rho), ctx.spread(rows, blank)

    return ctx.cached(("class_sensitivity", r.name), run)


# --------------------------------------------------------------------------- causal ground truth


def causal_baseline(ctx: EvalContext) -> torch.Tensor | None:
    """What replaces a removed map in the causal metrics (setting ``causal_share.baseline``): None for
    ``zero``, the maps' mean over the evaluated images for ``mean`` (computed once per run)."""
    kind = ctx.setting("causal_share", "baseline")
    if kind == "zero":
        return None
    if kind != "mean":
        raise QxaiError(f"causal_share.baseline must be 'zero' or 'mean', got {kind!r}")
    if ctx.sharded:
        raise QxaiError(
            "causal_share.baseline=mean needs every image in one pass (a shard sees only its own); "
            "use baseline=zero with --all, or evaluate in memory"
        )
    return ctx.cached(("causal baseline",), lambda: causal.layer_mean(ctx.model, ctx.layer, ctx.images,
                                                                    ctx.settings.batch_size))  # fmt: skip


def causal_oracle(ctx: EvalContext, i: int, k: int) -> causal.Oracle:
    """The causal map oracle of image ``i`` at size ``k``, computed once per run and shared by every
    method and metric."""
    import torch

    limit = int(ctx.setting("causal_share", "max_subsets"))
    memory = float(ctx.setting("causal_share", "memory_mb"))
    baseline = causal_baseline(ctx)

    def run() -> causal.Oracle:
        image = torch.as_tensor(np.asarray(ctx.images[i : i + 1]))
        return causal.map_oracle(ctx.model, ctx.layer, image, int(ctx.targets[i]), k, baseline=baseline,
                                 max_subsets=limit, memory_mb=memory)  # fmt: skip

    return ctx.cached(("causal", i, k, limit, memory), run)


def causal_set_scores(ctx: EvalContext, i: int, chosen: Sequence[int], key: Any) -> dict[str, float]:
    """``share``, ``precision``, ``drop_share`` of the set ``chosen`` of image ``i`` (cached by ``key``)."""
    import torch

    def run() -> dict[str, float]:
        image = torch.as_tensor(np.asarray(ctx.images[i : i + 1]))
        oracle = causal_oracle(ctx, i, len(chosen))
        target, baseline = int(ctx.targets[i]), causal_baseline(ctx)
        return causal.set_scores(ctx.model, ctx.layer, image, target, chosen, oracle, baseline=baseline)

    return ctx.cached(("causal scores", key, i, int(ctx.setting("causal_share", "max_subsets"))), run)


def _causal(which: str) -> Callable[[EvalContext, MethodResult], np.ndarray]:
    """Per image, the method's size-matched set scored against the causal map oracle of the same
    size (:mod:`qxai.evaluate.causal`); the oracle of an image and size is computed once per run."""

    def compute(ctx: EvalContext, r: MethodResult) -> np.ndarray:
        sets = _sized_sets(ctx, r)
        values = np.full(len(sets), np.nan)
        searched: dict[str, int] = {}
        random_share = []
        for i, chosen in enumerate(sets):
            if not chosen:
                continue  # an empty selection has no set to score (reported as degenerate elsewhere)
            oracle = causal_oracle(ctx, i, len(chosen))
            values[i] = causal_set_scores(ctx, i, chosen, r.name)[which]
            label = "exact" if oracle.exact else "approximate"
            searched[label] = searched.get(label, 0) + 1
            random_share.append(oracle.keep_random_share)
        r.details["causal_oracle"] = searched
        r.details["causal_baseline"] = str(ctx.setting("causal_share", "baseline"))
        if which == "share" and random_share:
            finite = np.isfinite(random_share).any()  # NaN where the oracle was not exact
            r.details["causal_share_random_k"] = float(np.nanmean(random_share)) if finite else None
        return values

    return compute


def _pixel_drop_share(ctx: EvalContext, r: MethodResult) -> np.ndarray:
    """The logit drop when the method's top ``remove`` of pixels are removed, over the largest drop
    that zeroing any k = |S_QA| maps gives: the map oracle as a ceiling to read deletion against."""
    sizes = ctx.reference_sizes() or []
    remove = float(ctx.setting("pixel_drop_share", "remove"))
    drop = faithfulness.top_removal_logit_drop(
        ctx.model, ctx.images, ctx.targets, r.saliency, remove=remove,
        fill=ctx.settings.deletion_fill, seed=ctx.seed, ids=ctx.image_ids, batch_size=ctx.settings.batch_size,
    )  # fmt: skip
    values = np.full(len(drop), np.nan)
    for i, k in enumerate(sizes):
        if not k:
            continue
        oracle = causal_oracle(ctx, i, k)
        if oracle.drop_best > oracle.floor:
            values[i] = drop[i] / oracle.drop_best
    return values


_CAUSAL_NAN = (
    "no set of k maps raises the target logit above keeping none (or the method selected no map), "
    "so there is nothing to share"
)

# --------------------------------------------------------------------------- planted benchmark


def _has_map_truth(ctx: EvalContext, r: MethodResult) -> str | None:
    truth = ctx.map_truth
    if truth is None:
        return "the model declares no designated maps (the planted benchmark's does: --arch planted-cnn)"
    if truth.layer != ctx.layer:
        return f"the designated maps are of layer '{truth.layer}', this run explains '{ctx.layer}'"
    return _size_matched(ctx, r)


def _planted(which: str) -> Callable[[EvalContext, MethodResult], np.ndarray]:
    """Per image, the method's size-matched set scored against the model's designated maps."""

    def compute(ctx: EvalContext, r: MethodResult) -> np.ndarray:
        from qxai.evaluate.planted import planted_scores

        assert ctx.map_truth is not None
        # the image's truth: the designated maps active on it (a part it does not show is no evidence)
        active = ctx.cached(("active maps",), lambda: causal.active_maps(
            ctx.model, ctx.layer, ctx.images, ctx.settings.batch_size))  # fmt: skip
        return planted_scores(_sized_sets(ctx, r), ctx.labels, ctx.map_truth, active)[which]

    return compute


# --------------------------------------------------------------------------- the catalogue

_SIZE_NOTE = "k = |S_QA| of the same image for every method, so set size cannot decide the ranking"
_MODEL_NAN = (
    "the model's output is NaN or infinite on the perturbed image (pixels replaced by the "
    "fill); check the model on such inputs or choose another --fill"
)
_ROBUST_NAN = "the image's own explanation is all zero, so there is no relative change"
_FLIP_NAN = "a perturbed copy changed the predicted class (Quantus scores such an image NaN)"
_EMPTY_SETS = "the method selected no map on the image and on its copies"
_ALL: list[Metric] = [
    Metric("overlap_mean", "disentanglement", "lower",
           "mean off-diagonal Bhattacharyya coefficient between the per-class histograms of each "
           f"method's top-k maps (QA: its selection; CAMs: top-k by channel weight), {_SIZE_NOTE}",
           "set", _overlap_sized("mean"), _size_matched_classes),
    Metric("overlap_max", "disentanglement", "lower",
           "largest off-diagonal Bhattacharyya coefficient of the same size-matched matrix (worst pair)",
           "set", _overlap_sized("max"), _size_matched_classes),
    Metric("overlap_activated_mean", "disentanglement", "lower",
           "as overlap_mean with each method's own sets (QA: selection; CAMs: every map with weight > 0); "
           "confounded by set size: smaller sets overlap less whatever they contain",
           "set", _overlap_activated("mean"), _selects_maps_classes),
    Metric("overlap_activated_max", "disentanglement", "lower",
           "largest off-diagonal coefficient of the activated-set matrix (set-size-confounded)",
           "set", _overlap_activated("max"), _selects_maps_classes),
    Metric("silhouette", "disentanglement", "higher",
           "silhouette score (euclidean) of the flattened saliency maps grouped by class (on a seeded "
           "sample of silhouette_images maps when there are more)", "set",
           _silhouette, _two_classes),
    Metric("deletion_auc", "faithfulness", "lower",
           "area under the target-class probability as the most salient pixels are removed first",
           "image", _curve("deletion"), nan_cause=_MODEL_NAN),
    Metric("insertion_auc", "faithfulness", "higher",
           "area under the target-class probability as the most salient pixels are restored first "
           "onto a blurred copy", "image", _curve("insertion"), nan_cause=_MODEL_NAN),
    Metric("keep_top_drop", "faithfulness", "lower",
           "drop (%) of the target-class probability when only the top x% of pixels are kept: "
           "max(0, p − p_kept) / p per image", "image", _keep_top_drop, nan_cause=_MODEL_NAN),
    Metric("causal_share", "causal", "higher",
           "share of the best achievable target logit that the method's k maps keep when every other map "
           "of the layer is zeroed: (z(S) − z(∅)) / (z(S*) − z(∅)), S* the best k maps found by exact "
           "enumeration up to max_subsets subsets (else beam search, labelled), the masked copies in "
           f"batches within memory_mb MiB; {_SIZE_NOTE}",
           "image", _causal("share"), _size_matched, nan_cause=_CAUSAL_NAN,
           settings={"max_subsets": causal.MAX_SUBSETS, "baseline": "zero", "memory_mb": causal.MEMORY_MB}),
    Metric("causal_precision", "causal", "higher",
           "|S ∩ S*| / k: how many of the method's maps are among the k maps the prediction relies on most",
           "image", _causal("precision"), _size_matched, nan_cause=_CAUSAL_NAN),
    Metric("causal_drop_share", "causal", "higher",
           "drop of the target logit when the method's k maps are zeroed, over the largest drop any k maps "
           "give", "image", _causal("drop_share"), _size_matched, nan_cause=_CAUSAL_NAN),
    Metric("pixel_drop_share", "causal", "higher",
           "drop of the target logit when the top `remove` share of pixels (by the method's saliency) is "
           "replaced by the deletion fill, over the largest drop zeroing any k = |S_QA| maps gives: the "
           "maps' best as the ceiling deletion is read against (above 1: the pixels remove more than any "
           "k maps)", "image", _pixel_drop_share, _needs_reference,
           nan_cause="no k maps lower the target logit, so there is no ceiling", settings={"remove": 0.2}),
    Metric("pointing_game", "localisation", "higher",
           "fraction of images whose saliency maximum (ties broken at random from the seed) lies inside "
           "the ground-truth mask", "image", _pointing, _has_masks,
           nan_cause="the image's mask is empty"),
    Metric("relevance_mass", "localisation", "higher",
           "share of the total saliency inside the ground-truth mask (a blank map scores 0)",
           "image", _mass, _has_masks, nan_cause="the image's mask is empty"),
    Metric("planted_precision", "planted", "higher",
           "|S ∩ D_i| / |S|: the share of the method's k maps that are designated maps of the target class "
           "active on the image (known by construction: a designated map that is zero on the image detects "
           f"a part the image does not show; every copy counts), {_SIZE_NOTE}", "image",
           _planted("precision"), _has_map_truth,
           nan_cause="the method selected no map on the image, or no designated map is active on it"),
    Metric("planted_recall", "planted", "higher",
           "share of the image's active designated map groups (a map and its copies) that the method's k "
           "maps hit; at most k / #groups", "image", _planted("recall"), _has_map_truth,
           nan_cause="no designated map of the target class is active on the image"),
    Metric("max_sensitivity", "robustness", "lower",
           "max over `samples` copies x_s = x + U(−0.2, 0.2) of ‖e(x) − e(x_s)‖₂ / ‖e(x)‖₂ (Yeh et al. 2019; "
           "Quantus' MaxSensitivity defaults); a copy whose prediction changed is kept. Settings of the "
           "robustness and stability groups: samples (copies per image), images (evenly spread sample), "
           "methods (comma list; empty: all), batch_size, budget_seconds (a guard per method and noise "
           "family, else not scored)", "image", reexplain.robustness_metric("max_sensitivity"),
           reexplain.chosen, sample=True, opt_in=True, nan_cause=_ROBUST_NAN,
           settings={"samples": 200, "images": 16, "methods": "", "batch_size": 128, "budget_seconds": 60.0}),
    Metric("avg_sensitivity", "robustness", "lower",
           "mean over the same copies of ‖e(x) − e(x_s)‖₂ / ‖e(x)‖₂ (Quantus' AvgSensitivity)", "image",
           reexplain.robustness_metric("avg_sensitivity"), reexplain.chosen,
           sample=True, opt_in=True, nan_cause=_ROBUST_NAN),
    Metric("local_lipschitz", "robustness", "lower",
           "max over copies x_s = x + N(0, 0.1²) of ‖ê(x) − ê(x_s)‖₂ / (‖x − x_s‖₂ + 1e−10), ê = e / max|e| "
           "per image (Alvarez-Melis & Jaakkola 2018; Quantus' LocalLipschitzEstimate)", "image",
           reexplain.robustness_metric("local_lipschitz"), reexplain.chosen, sample=True, opt_in=True),
    Metric("relative_input_stability", "robustness", "lower",
           "max over copies x_s = x + U(0.02, 0.2) of ‖(e(x) − e(x_s)) ⊘ e(x)‖₂ / ‖(x − x_s) ⊘ x‖₂, "
           "zeros in a divisor → 1e−6 (Agarwal et al. 2022; Quantus' RelativeInputStability)", "image",
           reexplain.robustness_metric("relative_input_stability"), reexplain.chosen,
           sample=True, opt_in=True, nan_cause=_FLIP_NAN),
    Metric("relative_output_stability", "robustness", "lower",
           "as relative_input_stability over ‖z(x) − z(x_s)‖₂, the change of the logits (Quantus' ROS)",
           "image", reexplain.robustness_metric("relative_output_stability"), reexplain.chosen,
           sample=True, opt_in=True, nan_cause=_FLIP_NAN),
    Metric("relative_representation_stability", "robustness", "lower",
           "as relative_input_stability over ‖(h(x) − h(x_s)) ⊘ h(x)‖₂, h every hidden module's output "
           "(Quantus' RRS with no layer named)", "image",
           reexplain.robustness_metric("relative_representation_stability"), reexplain.chosen,
           sample=True, opt_in=True, nan_cause=_FLIP_NAN),
    Metric("selection_jaccard_noise", "stability", "higher",
           "mean Jaccard index between the method's maps on the image and on each max_sensitivity copy "
           f"(QA: its selection; CAMs: top-k by channel weight), {_SIZE_NOTE}", "image",
           reexplain.selection_under_noise, _size_matched_chosen,
           sample=True, opt_in=True, nan_cause=_EMPTY_SETS),
    Metric("selection_jaccard_seed", "stability", "higher",
           "mean Jaccard index between the method's maps with the run's seed and with `seeds` other seeds "
           "(a deterministic method scores 1)", "image", reexplain.selection_across_seeds,
           _size_matched_chosen, sample=True, opt_in=True, nan_cause=_EMPTY_SETS, settings={"seeds": 4}),
    Metric("selection_jaccard_reads", "stability", "higher",
           "mean Jaccard index between each solver read's selection and the lowest-energy read's (over "
           "the other reads of one solve)", "image", reexplain.selection_across_reads, reexplain.has_reads,
           sample=True, opt_in=True,
           nan_cause="the solver returned one read, or the best read selects no map"),
    Metric("randomisation_abs_spearman", "sanity", "lower",
           "|Spearman ρ| between maps of the trained and the parameter-randomised model (Adebayo et al.); "
           "blank maps are left out and counted in randomisation_blank_share",
           "image", lambda c, r: _randomisation(c, r)[0], _sanity_applies, sample=True),
    Metric("randomisation_blank_share", "sanity", "none",
           "share of randomised-model maps (or trained maps) that are constant: no ranking to correlate",
           "image", lambda c, r: _randomisation(c, r)[1], _sanity_applies, sample=True),
    Metric("class_sensitivity_abs_spearman", "sanity", "lower",
           "|Spearman ρ| between the maps for the target and the runner-up class (maps for different "
           "targets must differ); blank maps left out", "image", lambda c, r: _class_sensitivity(c, r)[0],
           _class_sensitivity_applies, sample=True),
    Metric("class_sensitivity_blank_share", "sanity", "none",
           "share of class-sensitivity map pairs in which a map is constant", "image",
           lambda c, r: _class_sensitivity(c, r)[1], _class_sensitivity_applies, sample=True),
    Metric("seconds_per_image", "cost", "lower",
           "wall time of the explainer per image (QA without its exact-optimum check)", "image",
           lambda c, r: r.seconds),
    Metric("peak_memory_mb", "cost", "lower",
           "peak growth of the process's resident memory while explaining (MiB, one measurement)", "run",
           lambda c, r: r.peak_memory_mb),
]  # fmt: skip

METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (one entry; its name must be new) and return it.

    >>> m = register_metric(Metric("doc_example", "cost", "lower", "zero", "run", lambda c, r: 0.0))
    >>> "doc_example" in METRICS
    True
    >>> unregister_metric("doc_example")
    """
    if metric.compute is None:
        raise QxaiError(f"metric {metric.name} has no compute function; give compute=fn")
    if metric.name in METRICS:
        raise QxaiError(f"a metric named {metric.name!r} is already registered; choose another name")
    METRICS[metric.name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a metric added with :func:`register_metric` (tests and plug-ins clean up with it)."""
    METRICS.pop(name, None)


for _metric in _ALL:
    register_metric(_metric)


def groups() -> tuple[str, ...]:
    """The metric groups, in registry order."""
    return tuple(dict.fromkeys(m.group for m in METRICS.values()))


GROUPS = groups()


def select_metrics(names: Iterable[str] | str | None = None) -> list[Metric]:
    """Metrics by name or group (``"faithfulness"``); None means every metric that is not
    :attr:`Metric.opt_in` (the robustness and stability groups). Unknown names are errors.

    >>> [m.name for m in select_metrics("insertion_auc,cost")]
    ['insertion_auc', 'seconds_per_image', 'peak_memory_mb']
    """
    if names is None:
        return [m for m in METRICS.values() if not m.opt_in]
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    chosen: list[str] = []
    all_groups = groups()
    for item in items:
        if item in all_groups:
            chosen.extend(m.name for m in METRICS.values() if m.group == item)
        elif item in METRICS:
            chosen.append(item)
        else:
            raise unknown_name("metric", item, [*METRICS, *all_groups])
    return [METRICS[n] for n in dict.fromkeys(chosen)]


def metric_help() -> str:
    """One line for the CLI: the groups and their metrics."""
    return "; ".join(f"{g}: {', '.join(m.name for m in METRICS.values() if m.group == g)}" for g in groups())


__all__ = [
    "GROUPS", "METRICS", "Metric", "metric_help", "register_metric", "select_metrics", "unregister_metric",
]  # fmt: skip
