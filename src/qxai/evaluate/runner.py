"""Run every method on the same images and score it with every chosen metric.

A method that cannot be built or fails while explaining is kept with its error and skipped; the
others go on. QA runs first when present, because the CAMs' top-k disentanglement uses the size of
its selection for each image.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.evaluate import disentangle, faithfulness, localisation, sanity
from qxai.evaluate.cost import PeakMemory
from qxai.evaluate.metrics import Metric, select_metrics
from qxai.explain.base import Explainer
from qxai.explain.registry import get_explainer, parse_methods
from qxai.progress import make_progress


@dataclass
class EvalSettings:
    """The knobs that set the cost of an evaluation.

    ``steps``: deletion/insertion curve points − 1; ``keep``: the fraction kept by keep_top_drop;
    ``randomisation``: ``full`` or ``cascading``; ``sanity_images``: how many images (evenly spread)
    the sanity checks re-explain; ``batch_size``: images per explainer call.
    """

    batch_size: int = 32
    steps: int = 20
    keep: float = 0.2
    deletion_fill: str = "zero"
    insertion_fill: str = "blur"
    randomisation: str = "full"
    sanity_images: int = 32

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


@dataclass
class MethodResult:
    """Everything measured for one method (``error`` set when it was skipped)."""

    name: str
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    saliency: np.ndarray | None = None  # (N, H, W)
    extras: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)  # mean curves, (steps + 1,)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)  # (C, C) overlap matrices
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    """The result of :func:`evaluate_methods`: one :class:`MethodResult` per method, in order."""

    methods: dict[str, MethodResult]
    metrics: list[Metric]
    targets: np.ndarray

    def table(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: value}}`` for the chosen metrics (NaN where a metric does not apply)."""
        return {
            name: {m.name: float(r.scores.get(m.name, np.nan)) for m in self.metrics}
            for name, r in self.methods.items() if r.error is None
        }  # fmt: skip

    def best(self) -> dict[str, str]:
        """The best method per metric (finite values only; ties go to the first listed)."""
        out: dict[str, str] = {}
        for m in self.metrics:
            values = [(n, s[m.name]) for n, s in self.table().items() if np.isfinite(s[m.name])]
            if values:
                pick = values[0]
                for cand in values[1:]:
                    pick = cand if m.better(cand[1], pick[1]) else pick
                out[m.name] = pick[0]
        return out


def explain_all(
    explainer: Explainer, images: torch.Tensor, targets: torch.Tensor, batch_size: int, warm_up: bool = True
) -> tuple[np.ndarray, dict[str, Any], float, float]:
    """Explain ``images`` in batches: ``(saliency (N, H, W), extras, seconds per image, peak MiB)``."""
    maps: list[np.ndarray] = []
    extras: dict[str, list[Any]] = {}
    seconds = 0.0
    # warm-up on one image: lazy imports and JIT compilation are not the method's per-image cost
    if warm_up:
        explainer.explain(images[:1], targets[:1])
    with PeakMemory() as peak:
        for s in range(0, len(images), batch_size):
            exp = explainer.explain(images[s : s + batch_size], targets[s : s + batch_size])
            maps.append(exp.saliency)
            seconds += exp.seconds
            for key in ("selected", "channel_weights", "delta"):
                if key in exp.extras:
                    extras.setdefault(key, []).extend(list(exp.extras[key]))
    merged = {k: (np.asarray(v) if k != "selected" else v) for k, v in extras.items()}
    return np.concatenate(maps), merged, seconds / max(len(images), 1), peak.peak_mb


def _nanmean(values: Any) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _sanity_rows(n: int, count: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, count)).round().astype(int))


def evaluate_methods(
    model: torch.nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor,
    methods: Sequence[str] | str, *, masks: torch.Tensor | np.ndarray | None = None,
    metrics: Sequence[str] | str | None = None, options: dict[str, dict[str, Any]] | None = None,
    seed: int = 0, settings: EvalSettings | None = None, num_classes: int | None = None,
) -> Evaluation:  # fmt: skip
    """Explain ``images`` ``(N, C, H, W)`` for ``targets`` ``(N,)`` with each method and score it.

    ``options``: per-method constructor options (``{"ig": {"steps": 16}}``); ``masks`` ``(N, H, W)``
    enable the localisation metrics; ``metrics``: names or groups (None = all).
    """
    names = parse_methods(methods)
    chosen = select_metrics(metrics)
    settings = settings or EvalSettings()
    options = options or {}
    targets = torch.as_tensor(targets, dtype=torch.long)
    n_classes = num_classes or int(targets.max()) + 1
    order = sorted(names, key=lambda n: n != "qa")  # QA first; the others keep their order
    results: dict[str, MethodResult] = {}
    wanted = {m.name for m in chosen}
    with make_progress() as bar:
        task = bar.add_task("evaluate", total=len(order))
        for name in order:
            bar.update(task, description=f"evaluate {name}")
            result = MethodResult(name)
            try:
                explainer = get_explainer(name, model, layer, seed=seed, **options.get(name, {}))
                sal, extras, per_image, peak = explain_all(explainer, images, targets, settings.batch_size)
                result.saliency, result.extras = sal, extras
                result.scores.update({"seconds_per_image": per_image, "peak_memory_mb": peak})
                qa = results.get("qa")
                _score(result, model, layer, images, targets, masks, wanted, settings, seed,
                       options.get(name, {}), n_classes, qa if qa and qa.error is None else None)  # fmt: skip
            except Exception as err:  # a failing method is reported and skipped, never fatal
                result.error = (
                    str(err).splitlines()[0] if isinstance(err, QxaiError) else f"{type(err).__name__}: {err}"
                )
                result.saliency = None
            results[name] = result
            bar.advance(task)
    return Evaluation({n: results[n] for n in names}, chosen, targets.numpy())


def _score(
    r: MethodResult, model: torch.nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor,
    masks: Any, wanted: set[str], st: EvalSettings, seed: int, opts: dict[str, Any], n_classes: int,
    qa: MethodResult | None,
) -> None:  # fmt: skip
    sal, labels = r.saliency, targets.numpy()
    assert sal is not None
    if "delta" in r.extras:
        r.details["ig_mean_abs_delta"] = float(np.mean(np.abs(r.extras["delta"])))
    if wanted & {"overlap_mean", "overlap_max", "overlap_topk_mean", "overlap_topk_max"}:
        _disentanglement(r, labels, n_classes, qa)
    if "silhouette" in wanted:
        r.scores["silhouette"] = disentangle.saliency_silhouette(sal, labels)
    common = {"seed": seed}
    if "deletion_auc" in wanted:
        curves = faithfulness.perturbation_curves(
            model, images, targets, sal, mode="deletion", steps=st.steps, fill=st.deletion_fill, **common
        )
        r.scores["deletion_auc"] = float(faithfulness.curve_auc(curves).mean())
        r.curves["deletion"] = curves.mean(axis=0)
    if "insertion_auc" in wanted:
        curves = faithfulness.perturbation_curves(
            model, images, targets, sal, mode="insertion", steps=st.steps, fill=st.insertion_fill, **common
        )
        r.scores["insertion_auc"] = float(faithfulness.curve_auc(curves).mean())
        r.curves["insertion"] = curves.mean(axis=0)
    if "keep_top_drop" in wanted:
        drop = faithfulness.keep_top_drop(
            model, images, targets, sal, keep=st.keep, fill=st.deletion_fill, **common
        )
        r.scores["keep_top_drop"] = float(drop.mean())
    if masks is not None and wanted & {"pointing_game", "relevance_mass"}:
        m = np.asarray(masks)
        r.scores["pointing_game"] = _nanmean(localisation.pointing_game(sal, m))
        r.scores["relevance_mass"] = _nanmean(localisation.relevance_mass(sal, m))
    if wanted & {"randomisation_spearman", "class_sensitivity_spearman"}:
        _sanity(r, model, layer, images, targets, wanted, st, seed, opts)


def _disentanglement(r: MethodResult, labels: np.ndarray, n_classes: int, qa: MethodResult | None) -> None:
    weights = r.extras.get("channel_weights")
    if r.name == "qa":
        sets = r.extras["selected"]
        topk = sets  # QA's own selection is the reference size
    elif weights is not None and r.name in ("gradcam", "gradcam++"):
        sets = disentangle.activated_maps(weights)
        sizes = [len(s) for s in qa.extras["selected"]] if qa is not None else None
        topk = disentangle.activated_maps(weights, sizes) if sizes is not None else None
        if topk is None:
            r.details["overlap_topk"] = "needs 'qa' in the same run (k = |S_QA| per image)"
    else:
        return  # no map selection: only the silhouette applies
    num_maps = (
        int(np.asarray(weights).shape[1]) if weights is not None else 1 + max(max(s, default=0) for s in sets)
    )
    mean, worst, matrix = disentangle.overlap_scores(sets, labels, num_maps, n_classes)
    r.scores.update({"overlap_mean": mean, "overlap_max": worst})
    r.matrices["overlap"] = matrix
    r.details["mean_selected_maps"] = float(np.mean([len(s) for s in sets]))
    if topk is not None:
        mean, worst, matrix = disentangle.overlap_scores(topk, labels, num_maps, n_classes)
        r.scores.update({"overlap_topk_mean": mean, "overlap_topk_max": worst})
        r.matrices["overlap_topk"] = matrix


def _sanity(
    r: MethodResult, model: torch.nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor,
    wanted: set[str], st: EvalSettings, seed: int, opts: dict[str, Any],
) -> None:  # fmt: skip
    rows = _sanity_rows(len(images), st.sanity_images)
    x, t = images[rows], targets[rows]
    trained = r.saliency[rows]  # type: ignore[index]
    if "randomisation_spearman" in wanted:
        per_stage = []
        for stage in sanity.randomisation_stages(model, st.randomisation):
            rand_model = sanity.randomised_copy(model, stage, seed)
            explainer = get_explainer(r.name, rand_model, layer, seed=seed, **opts)
            rand_maps, *_ = explain_all(explainer, x, t, st.batch_size, warm_up=False)
            per_stage.append(_nanmean(sanity.rowwise_spearman(trained, rand_maps)))
        r.scores["randomisation_spearman"] = _nanmean(per_stage)
        r.details["randomisation_stages"] = per_stage
    if "class_sensitivity_spearman" in wanted:
        other = sanity.runner_up_classes(model.eval(), x, t)
        explainer = get_explainer(r.name, model, layer, seed=seed, **opts)
        other_maps, *_ = explain_all(explainer, x, other, st.batch_size, warm_up=False)
        r.scores["class_sensitivity_spearman"] = _nanmean(sanity.rowwise_spearman(trained, other_maps))
