"""The ``evaluate`` stage: explain the same images with every method and score them.

Writes into ``out``: ``metrics.json`` (``{method: {metric: value}}`` with the method names as given,
a failed method as ``{"error": …}``, plus ``"metric_info"`` (direction and definition of each),
``"figures"``, ``"summary"`` and ``"config"`` — the keys the report reserves), ``details.json``
(per-method extras such as the IG completeness gap), ``metrics.csv``, ``saliency.npz`` (the
maps, ``(N, H, W)`` per method) and the figures ``overlap.png``, ``curves.png``, ``examples.png``.

>>> summary = run_evaluate("runs/model.pt", methods=["qa", "gradcam"], per_class=2,
...                        out="runs/evaluate")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qxai.evaluate import EvalSettings, Evaluation, evaluate_methods
from qxai.evaluate import figures as figs
from qxai.explain.registry import parse_methods
from qxai.io import write_figure, write_json, write_npz, write_text
from qxai.pipeline.common import load_model_and_data, select_correct_per_class
from qxai.seeding import numpy_rng, seed_everything

DEFAULT_METHODS = ("qa", "gradcam", "gradcam++", "ig", "shap", "lime", "lrp")


def run_evaluate(
    checkpoint: str | os.PathLike[str], dataset: str | None = None,
    methods: list[str] | tuple[str, ...] | str = DEFAULT_METHODS, per_class: int = 20, seed: int = 0,
    out: str | os.PathLike[str] = "runs/evaluate", layer: str | None = None, *,
    metrics: list[str] | str | None = None, solver: str = "batch-sa", lime_samples: int = 200,
    ig_steps: int = 32, shap_samples: int = 16, steps: int = 20, keep: float = 0.2,
    sanity_images: int = 32, randomisation: str = "full", batch_size: int = 32, fill: str = "zero",
) -> dict[str, Any]:  # fmt: skip
    """Score ``methods`` on ``per_class`` correctly classified test images per class.

    The cost knobs: ``per_class``, ``lime_samples``, ``ig_steps``, ``shap_samples``, ``steps``
    (deletion/insertion points), ``sanity_images`` and ``metrics`` (names or groups, None = all).
    ``fill``: what deleted pixels become in deletion and keep_top_drop (``zero``, ``blur``, ``mean``);
    insertion always starts from a blurred copy.
    Returns the flat summary plus ``out``.
    """
    names = parse_methods(methods)
    settings = EvalSettings(batch_size=batch_size, steps=steps, keep=keep, deletion_fill=fill,
                            randomisation=randomisation, sanity_images=sanity_images)  # fmt: skip
    seed_everything(seed)
    md = load_model_and_data(str(checkpoint), dataset, layer)
    data = select_correct_per_class(md.model, md.split.test, per_class, seed)
    background = _background(md.split.train.images, 16, seed)
    # LIME switches segments off with the same substrate that deletion uses
    lime_base = 0.0 if fill == "zero" else fill
    options = {
        "qa": {"solver": solver}, "ig": {"steps": ig_steps},
        "lime": {"samples": lime_samples, "baseline": lime_base},
        "shap": {"samples": shap_samples, "baselines": background},
    }  # fmt: skip
    ev = evaluate_methods(
        md.model, md.layer, data.images, data.labels, names, masks=data.masks, metrics=metrics,
        options=options, seed=seed, settings=settings, num_classes=len(md.class_names),
    )  # fmt: skip
    out = Path(out)
    figures = _write_figures(ev, data.images.numpy(), data.labels.numpy(), md.class_names, out)
    summary = _summary(ev, len(data), md.class_names)
    table = ev.table()
    doc: dict[str, Any] = {
        name: ({"error": r.error} if r.error else table[name]) for name, r in ev.methods.items()
    }
    doc.update({
        "metric_info": {m.name: {"direction": m.direction, "definition": m.definition, "group": m.group}
                    for m in ev.metrics},
        "figures": figures, "summary": summary,
        "config": {
            "checkpoint": str(checkpoint), "dataset": data.name or md.config.get("dataset"),
            "layer": md.layer,
            "methods": names, "per_class": per_class, "seed": seed, "solver": solver,
            "lime_samples": lime_samples, "ig_steps": ig_steps, "shap_samples": shap_samples, "steps": steps,
            "keep": keep, "fill": fill, "sanity_images": sanity_images, "randomisation": randomisation,
            "masks": data.masks is not None, "class_names": md.class_names,
        },
    })  # fmt: skip
    write_json(out / "metrics.json", doc)
    write_json(out / "details.json", {n: r.details for n, r in ev.methods.items() if r.error is None})
    write_text(out / "metrics.csv", _csv(ev))
    maps = {_key(n): r.saliency for n, r in ev.methods.items() if r.saliency is not None}
    write_npz(out / "saliency.npz", labels=data.labels.numpy(), indices=data.indices.numpy(), **maps)
    return {**summary, "out": str(out)}


def _key(name: str) -> str:
    """An npz-safe array name for a method (``gradcam++`` → ``gradcam_pp``)."""
    return name.replace("++", "_pp")


def _background(train: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` training images drawn with ``seed``: GradientShap's baseline distribution."""
    rows = numpy_rng(seed, "shap-background").choice(len(train), size=min(count, len(train)), replace=False)
    return train[torch.as_tensor(np.sort(rows))]


def _summary(ev: Evaluation, images: int, class_names: list[str]) -> dict[str, Any]:
    ok = [n for n, r in ev.methods.items() if r.error is None]
    summary: dict[str, Any] = {
        "images": images, "classes": len(class_names), "methods_ok": len(ok),
        "methods_failed": len(ev.methods) - len(ok),
    }  # fmt: skip
    for metric, method in ev.best().items():
        summary[f"best {metric}"] = method
    table = ev.table()
    for key in ("overlap_mean", "overlap_topk_mean", "deletion_auc", "insertion_auc"):
        for name in ("qa", "gradcam", "gradcam++"):
            value = table.get(name, {}).get(key, float("nan"))
            if np.isfinite(value):
                summary[f"{name} {key}"] = round(float(value), 4)
    return summary


def _csv(ev: Evaluation) -> str:
    buf = io.StringIO()
    names = [m.name for m in ev.metrics]
    writer = csv.writer(buf)
    writer.writerow(["method", *names, "error"])
    table = ev.table()
    for name, r in ev.methods.items():
        row = table.get(name, {})
        writer.writerow([name, *(_fmt(row.get(n)) for n in names), r.error or ""])
    return buf.getvalue()


def _fmt(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.6g}"


def _write_figures(ev: Evaluation, images: np.ndarray, labels: np.ndarray, class_names: list[str],
                   out: Path) -> list[dict[str, str]]:  # fmt: skip
    made: list[dict[str, str]] = []
    fig = figs.overlap_figure(ev, class_names)
    if fig is not None:
        write_figure(out / "overlap.png", fig)
        made.append(
            {
                "file": "overlap.png",
                "title": "Class overlap of the selected / activated maps",
                "caption": "Bhattacharyya coefficient between the per-class histograms of selected (QA) or "
                "activated (CAM: channel weight > 0; bottom row: top-k with k = |S_QA|) maps. "
                "A diagonal matrix is perfect disentanglement; lower off-diagonal is better.",
            }
        )
    fig = figs.curves_figure(ev)
    if fig is not None:
        write_figure(out / "curves.png", fig)
        made.append(
            {
                "file": "curves.png",
                "title": "Deletion and insertion curves",
                "caption": "Mean target-class probability as the most salient pixels are deleted (set to 0) "
                "or inserted (onto a blurred copy); AUC in the legend.",
            }
        )
    fig = figs.example_grid(ev, images, labels, class_names)
    if fig is not None:
        write_figure(out / "examples.png", fig)
        made.append(
            {
                "file": "examples.png",
                "title": "Every method on the same images",
                "caption": "One correctly classified test image per class and each method's map "
                "(min–max normalised, jet colour map).",
            }
        )
    return made  # fmt: skip
