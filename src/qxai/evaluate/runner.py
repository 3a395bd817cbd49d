"""Explain the same images with every method, then score each with every chosen metric.

Two phases: every method explains all images first (a method that cannot be built or fails is
kept with its error and skipped; the others go on), then every metric of the registry
(:mod:`qxai.evaluate.metrics`) that applies to a method's explanation is computed, with a 95 %
bootstrap interval, and the map-selecting method (the one whose explanation carries a
``selected`` set, i.e. QA) is compared with every other method by a paired bootstrap test. The
set-size-matched overlap also gets its reference rows (:mod:`qxai.evaluate.references`).

>>> import torch
>>> torch.manual_seed(0) and None
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
...                           torch.nn.Linear(4 * 6 * 6, 2))
>>> ev = evaluate_methods(net, "1", torch.rand(4, 1, 6, 6), torch.tensor([0, 0, 1, 1]), ["gradcam"],
...                       metrics=["deletion_auc", "seconds_per_image"])
>>> sorted(ev.table()["gradcam"])
['deletion_auc', 'seconds_per_image']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.evaluate import disentangle, faithfulness, references, sanity
from qxai.evaluate.cost import PeakMemory
from qxai.evaluate.metrics import Metric, select_metrics
from qxai.evaluate.statistics import (
    MIN_VALUES,
    RESAMPLES,
    Verdict,
    bootstrap_interval,
    bootstrap_statistic,
    finite_mean,
    paired_test,
    verdict,
)  # fmt: skip
from qxai.explain.base import Explainer
from qxai.explain.quality import diagnose, image_flags, selection_unit
from qxai.explain.registry import get_explainer, parse_methods
from qxai.models.planted import MapTruth
from qxai.progress import make_progress

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class EvalSettings:
    """The knobs that set the cost (and the statistics) of an evaluation.

    ``steps``: deletion/insertion curve points − 1; ``keep``: the fraction kept by keep_top_drop;
    ``randomisation``: ``full`` or ``cascading``; ``sanity_images``: how many images (evenly spread)
    the sanity checks re-explain; ``batch_size``: images per explainer call; ``resamples``:
    bootstrap resamples of every interval and paired test; ``null_draws``: label shuffles of the
    permutation null and draws of the random-k reference; ``silhouette_images``: the silhouette's
    distance matrix is quadratic in N, so above this many images it uses a seeded sample of them;
    ``metric_settings``: values of the metrics' own settings (read with :meth:`EvalContext.setting`).
    """

    batch_size: int = 32
    steps: int = 20
    keep: float = 0.2
    deletion_fill: str = "zero"
    insertion_fill: str = "blur"
    randomisation: str = "full"
    sanity_images: int = 32
    resamples: int = RESAMPLES
    null_draws: int = 200
    silhouette_images: int = 1000
    #: values of the metrics' own settings (``Metric.settings``), ``{metric: {key: value}}``
    metric_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("deletion_fill", "insertion_fill"):
            if getattr(self, name) not in faithfulness.SUBSTRATES:
                choices = ", ".join(faithfulness.SUBSTRATES)
                raise QxaiError(f"{name} must be one of {choices}, got '{getattr(self, name)}'")
        if self.randomisation not in sanity.RANDOMISATION_MODES:
            choices = ", ".join(sanity.RANDOMISATION_MODES)
            raise QxaiError(f"randomisation must be one of {choices}, got '{self.randomisation}'")
        if self.batch_size < 1 or self.steps < 1 or self.sanity_images < 1 or not 0 < self.keep <= 1:
            raise QxaiError("batch_size, steps and sanity_images must be ≥ 1 and keep in (0, 1]")
        if self.silhouette_images < 10:
            raise QxaiError(f"silhouette_images must be ≥ 10, got {self.silhouette_images}")
        if self.resamples < 100 or self.null_draws < 20:
            raise QxaiError(
                f"resamples ({self.resamples}) must be ≥ 100 and null_draws ({self.null_draws}) ≥ 20; "
                "the defaults are 1000 and 200"
            )


@dataclass
class MethodResult:
    """Everything measured for one method (``error`` set when it was skipped)."""

    name: str
    error: str | None = None
    saliency: np.ndarray | None = None  # (N, H, W)
    extras: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    seconds: np.ndarray | None = None  # (N,) per-image share of its batch's wall time
    peak_memory_mb: float = float("nan")
    scores: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_image: dict[str, np.ndarray] = field(default_factory=dict)
    statistics: dict[str, Statistic] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)  # mean curves, (steps + 1,)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)  # (C, C) overlap matrices
    details: dict[str, Any] = field(default_factory=dict)
    degenerate: list[dict[str, Any]] = field(default_factory=list)  # qxai.explain.quality.diagnose
    blank: str | None = None  # why every explanation of this method is degenerate (then no verdicts)
    undefined: dict[str, str] = field(default_factory=dict)  # metric → on how many images NaN, and why

    def selections(self, ctx: EvalContext, sizes: Sequence[int] | None = None) -> list[list[int]] | None:
        """The map set of each image: a QUBO selection as it is (it *is* the reference size), or a
        CAM's maps from its channel weights (``sizes``: exactly the top ``sizes[i]``; None: every map
        with positive weight). None when the explanation selects no maps."""
        if "selected" in self.extras:
            return [list(s) for s in self.extras["selected"]]
        weights = self.extras.get("channel_weights")
        if weights is None:
            return None
        return disentangle.activated_maps(np.asarray(weights), sizes)


@dataclass
class EvalContext:
    """What a metric's ``compute`` may read: the model, the images, the settings, every result."""

    model: torch.nn.Module
    layer: str
    images: torch.Tensor  # in a sharded run's phase 2: a lazy view, decoding only the rows it is asked for
    targets: torch.Tensor
    masks: np.ndarray | None
    settings: EvalSettings
    seed: int
    num_classes: int
    options: dict[str, dict[str, Any]]
    results: dict[str, MethodResult]
    ids: np.ndarray | None = None
    #: phase 1 of a sharded run: the images are one shard's, so nothing may be computed over "all" of them
    sharded: bool = False
    #: the designated maps the model declares (``qxai.models.planted.MapTruth``), for the planted metrics
    map_truth: MapTruth | None = None
    _cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.targets.numpy()

    @property
    def image_ids(self) -> np.ndarray:
        """``(N,)`` the images' data-set indices (per-image random draws are keyed by them)."""
        return np.arange(len(self.targets)) if self.ids is None else np.asarray(self.ids)

    def setting(self, metric: str, key: str) -> Any:
        """The value of setting ``key`` of metric ``metric``: the run's (``--metric-option``), else
        the default the metric's entry declares (``Metric.settings``)."""
        from qxai.evaluate.metrics import METRICS

        given = self.settings.metric_settings.get(metric, {})
        return given[key] if key in given else METRICS[metric].settings[key]

    def reference(self) -> MethodResult | None:
        """The map-selecting method every other is size-matched to (the first with ``selected``)."""
        return next((r for r in self.results.values() if r.error is None and "selected" in r.extras), None)

    def reference_sizes(self) -> list[int] | None:
        ref = self.reference()
        return None if ref is None else [len(s) for s in ref.extras["selected"]]

    def num_maps(self) -> int:
        for r in self.results.values():
            if r.error is None and r.extras.get("channel_weights") is not None:
                return int(np.asarray(r.extras["channel_weights"]).shape[1])
        sets = [s for r in self.results.values() if r.error is None for s in r.extras.get("selected", [])]
        return 1 + max((max(s, default=0) for s in sets), default=0)

    def sanity_rows(self) -> np.ndarray:
        return self.sample_rows(self.settings.sanity_images)

    def sample_rows(self, count: int) -> np.ndarray:
        """``count`` image positions evenly spread over the run's order (all of them when fewer)."""
        n = len(self.targets)
        return np.unique(np.linspace(0, n - 1, min(n, count)).round().astype(int))

    def spread(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``(N,)`` with ``values`` at ``rows`` and NaN elsewhere (metrics on a subset of images)."""
        out = np.full(len(self.targets), np.nan)
        out[rows] = values
        return out

    def explainer(
        self, name: str, model: torch.nn.Module | None = None, seed: int | None = None
    ) -> Explainer:
        """Method ``name`` rebuilt with the run's options for ``model`` (default: the run's) and ``seed``
        (default: the run's), to re-explain images (sanity, robustness, stability).

        An exact-optimum check (QA's ``ground_truth``) is switched off: it measures the solver, not
        the method, and a re-explanation needs only the maps and the selection."""
        model = self.model if model is None else model
        seed = self.seed if seed is None else seed
        explainer = get_explainer(name, model, self.layer, seed=seed, **self.options.get(name, {}))
        if hasattr(explainer, "ground_truth"):
            explainer.ground_truth = "never"
        return explainer

    def explain_with(self, name: str, model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> np.ndarray:
        """Maps of method ``name`` (same options and seed) for another model or other targets."""
        return explain_all(self.explainer(name, model), x, t, self.settings.batch_size, warm_up=False)[0]

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Share one expensive computation between metrics (e.g. the sanity re-explanations)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


@dataclass
class Evaluation:
    """The result of :func:`evaluate_methods`."""

    methods: dict[str, MethodResult]
    metrics: list[Metric]
    targets: np.ndarray
    references: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    paired: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def ok(self) -> dict[str, MethodResult]:
        return {n: r for n, r in self.methods.items() if r.error is None}

    def table(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: value}}`` for the chosen metrics (NaN where a metric does not apply)."""
        return {
            name: {m.name: float(r.scores.get(m.name, np.nan)) for m in self.metrics}
            for name, r in self.ok().items()
        }  # fmt: skip

    def interval_table(self) -> dict[str, dict[str, list[float]]]:
        """``{method: {metric: [low, high]}}`` where an interval exists."""
        return {
            name: {k: [float(v[0]), float(v[1])] for k, v in r.intervals.items() if np.isfinite(v[0])}
            for name, r in self.ok().items()
        }  # fmt: skip

    def usable(self) -> dict[str, MethodResult]:
        """The methods that ran and gave at least one meaningful explanation."""
        return {n: r for n, r in self.ok().items() if r.blank is None}

    def verdicts(self) -> dict[str, Verdict]:
        """Best-or-tie per metric: a best only where its interval separates from the others'.

        Methods whose every explanation is degenerate take no part; a metric is "not testable" when
        every method with a value is such a method, or when no method has the :data:`MIN_VALUES`
        values an interval needs (a best named from two images would be noise)."""
        out: dict[str, Verdict] = {}
        usable = self.usable()
        for m in self.metrics:
            scored = {n for n, r in self.ok().items() if np.isfinite(r.scores.get(m.name, np.nan))}
            values = {n: r.scores.get(m.name, np.nan) for n, r in usable.items()}
            intervals = {n: r.intervals.get(m.name, (np.nan, np.nan)) for n, r in usable.items()}
            counts = [self._count(r, m) for n, r in usable.items() if n in scored]
            reasons = sorted(
                {r.not_applicable[m.name] for r in self.ok().values() if m.name in r.not_applicable}
            )
            if not scored and reasons:
                # nothing to compare: say why rather than leave the column empty
                out[m.name] = Verdict(None, None, (), True, untestable="; ".join(reasons))
            elif scored and not scored & set(usable):
                out[m.name] = Verdict(None, None, (), True, untestable="every method's maps are degenerate")
            elif m.direction != "none" and m.level != "run" and counts and max(counts) < MIN_VALUES:
                why = f"fewer than {MIN_VALUES} images with a value ({max(counts)})"
                out[m.name] = Verdict(None, None, (), True, untestable=why)
            else:
                out[m.name] = verdict(values, intervals, m.direction)
        return out

    def _count(self, r: MethodResult, m: Metric) -> int:
        """How many images a method's value of metric ``m`` rests on."""
        if m.level == "image" and m.name in r.per_image:
            return int(np.isfinite(r.per_image[m.name]).sum())
        return len(self.targets)

    def best(self) -> dict[str, str]:
        """``{metric: "method"}``, ``{metric: "tie: a, b"}`` or ``{metric: "not testable: why"}``
        (diagnostics and empty metrics left out)."""
        return {k: v.label for k, v in self.verdicts().items() if v.leader is not None or v.untestable}


def explain_all(
    explainer: Explainer, images: torch.Tensor, targets: torch.Tensor, batch_size: int, warm_up: bool = True
) -> tuple[np.ndarray, dict[str, Any], np.ndarray, float]:
    """Explain ``images`` in batches: ``(saliency (N, H, W), extras, seconds per image (N,), peak MiB)``.

    Per-image extras (lists or arrays whose length is the batch size) are concatenated over the
    batches; other extras (the solver's name, say) are kept from the first batch. The batches are
    the images at positions ``[s, s + batch_size)``, each a fresh allocation: a shard that is a whole
    number of batches is explained by exactly the forwards of a one-pass run (docs/reproducibility.md).
    """
    maps: list[np.ndarray] = []
    extras: dict[str, list[Any]] = {}
    constants: dict[str, Any] = {}
    seconds: list[np.ndarray] = []
    # warm-up on one image: lazy imports and JIT compilation are not the method's per-image cost
    if warm_up:
        explainer.explain(images[:1], targets[:1])
    with PeakMemory() as peak:
        for s in range(0, len(images), batch_size):
            x = images[s : s + batch_size].clone()
            exp = explainer.explain(x, targets[s : s + batch_size])
            if not np.all(np.isfinite(exp.saliency)):
                raise QxaiError(
                    f"{exp.method} produced non-finite maps; the model's outputs or gradients are NaN or "
                    "infinite — check the model and its inputs"
                )
            maps.append(exp.saliency)
            seconds.append(np.full(len(x), exp.seconds / max(len(x), 1)))
            for key, value in exp.extras.items():
                if isinstance(value, list | np.ndarray) and len(value) == len(x):
                    extras.setdefault(key, []).extend(list(value))
                else:
                    constants.setdefault(key, value)
    merged: dict[str, Any] = dict(constants)
    for key, values in extras.items():
        merged[key] = values if key == "selected" else stack_values(values)
    return np.concatenate(maps), merged, np.concatenate(seconds), peak.peak_mb


def stack_values(values: list[Any]) -> Any:
    """An array when the per-image values stack into one, else the list (ragged or None-valued)."""
    try:
        arr = np.asarray(values)
    except ValueError:
        return values
    return values if arr.dtype == object else arr


def evaluate_methods(
    model: torch.nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor,
    methods: Sequence[str] | str, *, masks: torch.Tensor | np.ndarray | None = None,
    metrics: Sequence[str] | str | None = None, options: dict[str, dict[str, Any]] | None = None,
    seed: int = 0, settings: EvalSettings | None = None, num_classes: int | None = None,
    ids: np.ndarray | None = None, map_truth: MapTruth | None = None,
) -> Evaluation:  # fmt: skip
    """Explain ``images`` ``(N, C, H, W)`` for ``targets`` ``(N,)`` with each method and score it.

    ``options``: per-method constructor options (``{"ig": {"steps": 16}}``); ``masks`` ``(N, H, W)``
    enable the localisation metrics; ``metrics``: names or groups (None = all); ``ids`` ``(N,)``:
    the images' data-set indices, which key their per-image random draws (default ``0..N-1``).
    ``map_truth``: the designated maps the model declares (the planted metrics; None: not applicable).
    The two phases, :func:`explain_and_score` and :func:`finish_evaluation`, are also run apart by
    a sharded evaluation (:mod:`qxai.evaluate.shards`), with the same results.
    """
    names = parse_methods(methods)
    chosen = select_metrics(metrics)
    settings = settings or EvalSettings()
    targets = torch.as_tensor(targets, dtype=torch.long)
    ctx = EvalContext(
        model, layer, images, targets, None if masks is None else np.asarray(masks), settings, seed,
        num_classes or int(targets.max()) + 1, dict(options or {}), {}, ids, map_truth=map_truth,
    )  # fmt: skip
    explain_and_score(ctx, names, chosen)
    return finish_evaluation(ctx, chosen)


def explain_and_score(ctx: EvalContext, names: Sequence[str], chosen: list[Metric]) -> None:
    """Phase 1 for the images of ``ctx`` (all of them, or one shard): every method explains them,
    then every per-shard metric (:attr:`Metric.per_shard`) gets its per-image values."""
    with make_progress() as bar:
        task = bar.add_task("evaluate", total=2 * len(names))
        for name in names:
            bar.update(task, description=f"explain {name}")
            ctx.results[name] = _explain_method(ctx, name)
            bar.advance(task)
        for name, result in ctx.results.items():
            bar.update(task, description=f"score {name}")
            if result.error is None:
                _score(ctx, result, [m for m in chosen if m.per_shard])
            bar.advance(task)


def finish_evaluation(ctx: EvalContext, chosen: list[Metric]) -> Evaluation:
    """Phase 2 on every image (``ctx.results`` merged over the shards): the sample, set and run
    metrics, every interval, the paired tests, the overlap references and the diagnostics."""
    for result in ctx.results.values():
        if result.error is not None:
            continue
        _quality(ctx, result)
        extras = result.extras
        if "delta" in extras:
            result.details["ig_mean_abs_delta"] = float(np.mean(np.abs(np.asarray(extras["delta"], float))))
        if "ground_seconds" in extras:
            result.details["exact_check_seconds_per_image"] = float(np.mean(extras["ground_seconds"]))
        _score(ctx, result, [m for m in chosen if not m.per_shard])
        _intervals(ctx, result, chosen)
    ev = Evaluation(ctx.results, chosen, ctx.targets.numpy())
    _compare(ctx, ev, chosen)
    return ev


def _quality(ctx: EvalContext, r: MethodResult) -> None:
    """Count the method's empty and degenerate explanations (:mod:`qxai.explain.quality`); a method
    with no meaningful explanation at all is ``blank`` and takes no part in verdicts or tests."""
    assert r.saliency is not None
    unit = selection_unit(r.extras)
    reads_layer = unit == "map" and ("channel_weights" in r.extras or "selected" in r.extras)
    flags = image_flags(r.extras, r.saliency)
    r.degenerate = diagnose(flags, layer=ctx.layer if reads_layer else None, unit=unit)
    if flags and all(f is not None for f in flags):
        r.blank = f"{r.name}: {r.degenerate[0]['sentence']}"


def _explain_method(ctx: EvalContext, name: str) -> MethodResult:
    result = MethodResult(name)
    try:
        explainer = get_explainer(name, ctx.model, ctx.layer, seed=ctx.seed, **ctx.options.get(name, {}))
        result.properties["sign_ambiguous"] = bool(getattr(explainer, "sign_ambiguous", False))
        sal, extras, seconds, peak = explain_all(explainer, ctx.images, ctx.targets, ctx.settings.batch_size)
        result.saliency, result.extras, result.seconds, result.peak_memory_mb = sal, extras, seconds, peak
    except Exception as err:  # a failing method is reported and skipped, never fatal
        result.error = _one_line(err)
        result.saliency = None
    return result


def _one_line(err: Exception) -> str:
    text = str(err) if isinstance(err, QxaiError) else f"{type(err).__name__}: {err}"
    return text.splitlines()[0] if text else type(err).__name__


def _score(ctx: EvalContext, r: MethodResult, chosen: list[Metric]) -> None:
    """Compute ``chosen`` for ``r``: per-image values into ``r.per_image``, a set metric's statistic
    into ``r.statistics``, a run metric's value into ``r.scores``; a metric that does not apply (or
    raises a :class:`QxaiError`) gets its reason in ``r.not_applicable``."""
    for metric in chosen:
        reason = metric.applies(ctx, r)
        if reason is not None:
            r.not_applicable[metric.name] = reason
            continue
        try:
            value = metric.compute(ctx, r)  # type: ignore[misc]
        except QxaiError as err:  # a metric this method cannot support is recorded, not fatal
            r.not_applicable[metric.name] = str(err).splitlines()[0]
            continue
        if metric.level == "image":
            values = np.asarray(value, dtype=np.float64)
            r.per_image[metric.name] = values
            _note_undefined(r, metric, values)
        elif metric.level == "set":
            r.statistics[metric.name] = value
        else:
            r.scores[metric.name] = float(value)


def _note_undefined(r: MethodResult, metric: Metric, values: np.ndarray) -> None:
    """Say on how many images a per-image metric is undefined (NaN) and why; undefined on every
    image, the metric does not apply to the method, with that reason. Sample metrics (sanity) are
    NaN off their sample by design and are not counted."""
    missing = ~np.isfinite(values)
    if metric.sample or not missing.any():
        return
    cause = f": {metric.nan_cause}" if metric.nan_cause else ""
    if missing.all():
        r.not_applicable[metric.name] = f"undefined on every image{cause}"
    else:
        r.undefined[metric.name] = f"undefined on {int(missing.sum())} of {len(values)} images{cause}"


def _intervals(ctx: EvalContext, r: MethodResult, chosen: list[Metric]) -> None:
    """Every score and its 95 % bootstrap interval, from the values over all images."""
    n, seed, resamples = len(ctx.targets), ctx.seed, ctx.settings.resamples
    for metric in chosen:
        name = metric.name
        if name in r.not_applicable:
            r.per_image.pop(name, None)
            continue
        if metric.level == "image" and name in r.per_image:
            values = r.per_image[name]
            r.statistics[name] = _mean_statistic(values)
            r.scores[name] = finite_mean(values)
            r.intervals[name] = bootstrap_interval(values, seed=seed, resamples=resamples)
        elif metric.level == "set" and name in r.statistics:
            r.scores[name] = float(r.statistics[name](np.arange(n)))
            r.intervals[name] = bootstrap_statistic(r.statistics[name], n, seed=seed, resamples=resamples)
        elif metric.level == "run" and name in r.scores:
            r.intervals[name] = (float("nan"), float("nan"))


def _mean_statistic(values: np.ndarray) -> Statistic:
    return lambda idx: finite_mean(values, idx)


def _compare(ctx: EvalContext, ev: Evaluation, chosen: list[Metric]) -> None:
    """Paired tests of the reference (QA) against every other method, the overlap references and the
    diagnostics."""
    ref = ctx.reference()
    if ref is None or ref.blank is not None:
        return
    n = len(ctx.targets)
    for other in ev.usable().values():
        if other is ref:
            continue
        rows: dict[str, dict[str, Any]] = {}
        for m in chosen:
            if m.name in ref.statistics and m.name in other.statistics and m.direction != "none":
                test = paired_test(ref.statistics[m.name], other.statistics[m.name], n, seed=ctx.seed,
                                   resamples=ctx.settings.resamples)  # fmt: skip
                rows[m.name] = test.to_dict()
        if rows:
            ev.paired[other.name] = rows
    if any(m.name.startswith("overlap") for m in chosen):
        ev.references = references.overlap_references(ctx, ref, ev)
    if any(m.name in ref.per_image for m in chosen if m.name in references.CAUSAL_METRICS):
        ev.references["causal"] = references.causal_references(ctx, ref)
    ev.diagnostics = references.diagnostics(ctx, ref, ev)


__all__ = [
    "EvalContext", "EvalSettings", "Evaluation", "MethodResult", "evaluate_methods", "explain_all",
    "explain_and_score", "finish_evaluation", "stack_values",
]  # fmt: skip
