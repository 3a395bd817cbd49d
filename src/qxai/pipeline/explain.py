"""The ``explain`` stage: QA feature-map selection for correctly classified test images.

Writes into ``out``:

* ``explanations.json`` — the settings, one record per image (dataset index, label, target,
  selected maps, energy, ground-state energy when known, d, solver, seconds), a ``figures`` list
  and a flat ``summary``;
* ``saliency.npz`` — ``saliency`` (B, H, W) QA-fGradCAM maps, ``indices`` (B,) dataset indices,
  ``labels``, ``targets`` (B,), ``channel_weights`` (B, N) raw α, ``selected`` (B, N) bool;
* ``qa_grid.png`` — a few images per class beside their QA-fGradCAM overlays.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qxai.anneal.qubo import QuboOptions
from qxai.errors import QxaiError
from qxai.explain.qa import GROUND_TRUTH_MODES, QAFeatureMapExplainer
from qxai.pipeline.common import batches, load_model_and_data, select_correct_per_class
from qxai.pipeline.stage import Figure, write_stage
from qxai.progress import track

#: Images per class shown in the picture grid (the npz and json hold all of them).
GRID_PER_CLASS = 2


@dataclass(frozen=True)
class ExplainSettings:
    """What ``qxai explain`` does, validated before any model work (defaults written once here).

    ``solver``/``solver_options``: the QUBO solver by name and its options; ``qubo``: the QUBO
    settings; ``ground_truth``: exact-optimum check (auto | always | never); ``per_class``: correctly
    classified test images per class; ``batch_size``: images per forward/backward pass.
    """

    dataset: str | None = None
    layer: str | None = None
    solver: str = "batch-sa"
    solver_options: dict[str, Any] = field(default_factory=dict)
    qubo: QuboOptions = field(default_factory=QuboOptions)
    ground_truth: str = "auto"
    per_class: int = 20
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise QxaiError(f"--per-class must be at least 1, got {self.per_class}")
        if self.batch_size < 1:
            raise QxaiError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.seed < 0:
            raise QxaiError(f"--seed must be ≥ 0, got {self.seed}")
        if self.ground_truth not in GROUND_TRUTH_MODES:
            raise QxaiError(
                f"--ground-truth must be one of {', '.join(GROUND_TRUTH_MODES)}, got '{self.ground_truth}'"
            )
        from qxai.anneal.samplers import get_sampler

        get_sampler(self.solver, **self.solver_options)  # unknown names and bad options fail now

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["qubo"] = self.qubo.to_dict()
        out["solver_options"] = _jsonable(self.solver_options)
        return out


def run_explain(
    out: str | os.PathLike[str], *, model: str | os.PathLike[str], settings: ExplainSettings | None = None
) -> dict[str, Any]:
    """Explain ``per_class`` correctly classified test images per class; returns the
    ``explanations.json`` document.

    >>> doc = run_explain("runs/explain", model="runs/model.pt",
    ...                   settings=ExplainSettings(per_class=2))  # doctest: +SKIP
    >>> doc["summary"]["images"], doc["qubo"]["beta"]  # doctest: +SKIP
    (20, 0.7)
    """
    settings = settings or ExplainSettings()
    out = Path(out)
    md = load_model_and_data(str(model), settings.dataset, settings.layer)
    explainer = QAFeatureMapExplainer(
        md.model, md.layer, solver=settings.solver, qubo=settings.qubo, seed=settings.seed,
        solver_options=settings.solver_options, ground_truth=settings.ground_truth,
    )  # fmt: skip
    data = select_correct_per_class(md.model, md.split.test, settings.per_class, settings.seed)

    records: list[dict[str, Any]] = []
    saliency, weights, chosen, targets = [], [], [], []
    for images, labels in track(batches(data, settings.batch_size), "explaining (QA feature maps)"):
        exp = explainer.explain(images)  # the predicted class, which is the label here
        ex = exp.extras
        start = len(records)
        for i in range(len(exp)):
            records.append({
                "index": int(data.indices[start + i]), "label": int(labels[i]),
                "label_name": md.class_names[int(labels[i])], "target": int(exp.targets[i]),
                "selected": ex["selected"][i], "energy": ex["energy"][i],
                "ground_energy": ex["ground_energy"][i],
                **{key: ex[key][i] for key in ("ground_certified", "ground_gap") if key in ex},
                "num_variables": ex["num_variables"][i], "dead_maps": ex["dead_maps"][i],
                "solver": ex["solver"], "seconds": exp.seconds / len(exp),
                "solver_seconds": ex["solver_seconds"][i], "ground_seconds": ex["ground_seconds"][i],
            })  # fmt: skip
        mask = np.zeros(ex["channel_weights"].shape, dtype=bool)
        for i, sel in enumerate(ex["selected"]):
            mask[i, sel] = True
        saliency.append(exp.saliency)
        weights.append(ex["channel_weights"])
        chosen.append(mask)
        targets.append(exp.targets)

    maps = np.concatenate(saliency)
    grid_rows = _grid_rows(data.labels.numpy(), GRID_PER_CLASS)
    figure = Figure(
        "qa_grid.png", "QA-fGradCAM explanations",
        f"Up to {GRID_PER_CLASS} correctly classified test images per class, each beside its QA-fGradCAM map "
        f"(Σ over the selected maps S of ReLU(α_k A^k)) at layer '{md.layer}'; solver {settings.solver}, "
        f"β = {settings.qubo.beta}.",
    )  # fmt: skip
    doc = {
        "method": "qa", "checkpoint": str(model), "dataset": data.name or md.config.get("dataset"),
        "layer": md.layer, "num_maps": int(np.concatenate(weights).shape[1]), "class_names": md.class_names,
        "solver": settings.solver, "qubo": settings.qubo.to_dict(), "settings": settings.to_dict(),
        "images": records, "summary": _summary(records, settings.solver),
    }  # fmt: skip
    return write_stage(
        out, "explanations.json", doc,
        arrays={"saliency.npz": {
            "saliency": maps, "indices": data.indices.numpy(), "labels": data.labels.numpy(),
            "targets": np.concatenate(targets), "channel_weights": np.concatenate(weights),
            "selected": np.concatenate(chosen),
        }},
        figures=[(figure, _grid_figure(data.images.numpy(), maps, records, grid_rows))],
    )  # fmt: skip


def _summary(records: list[dict[str, Any]], solver: str) -> dict[str, Any]:
    """Flat headline numbers: counts, mean sizes, and how often the solver hit the optimum.

    ``optimal_rate`` is over every image whose optimum is known (enumerated, or certified by a
    solver that proves optimality); images whose optimum is not certified are counted, never
    silently skipped.
    """
    known = [r for r in records if r["ground_energy"] is not None and r.get("ground_certified", True)]
    optimal = [
        abs(r["energy"] - r["ground_energy"]) <= 1e-9 * max(1.0, abs(r["ground_energy"])) for r in known
    ]
    return {
        "images": len(records),
        "solver": solver,
        "mean_selected": float(np.mean([len(r["selected"]) for r in records])),
        "mean_variables": float(np.mean([r["num_variables"] for r in records])),
        "max_variables": int(max(r["num_variables"] for r in records)),
        "empty_selections": sum(not r["selected"] for r in records),
        "dead_maps_per_image": float(np.mean([r["dead_maps"] for r in records])),
        "ground_state_known": len(known),
        "share_certified": len(known) / len(records),
        "optimal_rate": float(np.mean(optimal)) if known else float("nan"),
        "not_certified": len(records) - len(known),
        "seconds_per_image": float(np.mean([r["seconds"] for r in records])),
        "solver_seconds_per_image": float(np.mean([r["solver_seconds"] for r in records])),
        "exact_check_seconds_per_image": float(np.mean([r["ground_seconds"] for r in records])),
    }


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    """Solver options as JSON values (objects such as a mock child sampler become their repr)."""
    return {k: v if isinstance(v, int | float | str | bool | None) else repr(v) for k, v in options.items()}


def _grid_rows(labels: np.ndarray, per_class: int) -> list[int]:
    """Positions of the first ``per_class`` images of every class, in class order."""
    return [int(r) for c in np.unique(labels) for r in np.flatnonzero(labels == c)[:per_class]]


def _grid_figure(images: np.ndarray, maps: np.ndarray, records: list[dict[str, Any]], rows: list[int]) -> Any:
    """Pairs (image | overlay), four pairs per row, the selected maps in each overlay's title."""
    from matplotlib.figure import Figure

    pairs_per_row = 4
    n_rows = max(1, -(-len(rows) // pairs_per_row))
    fig = Figure(figsize=(2 * pairs_per_row * 1.6, n_rows * 1.9))
    axes = fig.subplots(n_rows, 2 * pairs_per_row, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for slot, row in enumerate(rows):
        ax_img, ax_map = axes[
            slot // pairs_per_row, 2 * (slot % pairs_per_row) : 2 * (slot % pairs_per_row) + 2
        ]
        picture = _displayable(images[row])
        rec = records[row]
        ax_img.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax_img.set_title(f"#{rec['index']} {rec['label_name']}", fontsize=7)
        ax_map.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax_map.imshow(maps[row], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
        ax_map.set_title(_selection_label(rec["selected"]), fontsize=6)
    fig.tight_layout()
    return fig


def _displayable(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] → ``(H, W)`` for one channel, ``(H, W, 3)`` otherwise."""
    if image.shape[0] == 1:
        return image[0]
    return np.clip(np.moveaxis(image[:3], 0, -1), 0.0, 1.0)


def _selection_label(selected: list[int], shown: int = 6) -> str:
    """``S={1, 4, 9}``, or ``|S|=24: 1, 3, 4, …`` when the list would not fit over a thumbnail.

    >>> _selection_label([1, 4, 9]), _selection_label(list(range(10)))
    ('S={1, 4, 9}', '|S|=10: 0, 1, 2, 3, 4, 5, …')
    """
    if len(selected) <= shown:
        return "S={" + ", ".join(map(str, selected)) + "}"
    return f"|S|={len(selected)}: " + ", ".join(map(str, selected[:shown])) + ", …"
