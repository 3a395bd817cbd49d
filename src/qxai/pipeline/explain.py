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
from pathlib import Path
from typing import Any

import numpy as np

from qxai.errors import QxaiError
from qxai.explain.qa import QAFeatureMapExplainer
from qxai.io import write_figure, write_json, write_npz
from qxai.pipeline.common import batches, load_model_and_data, select_correct_per_class
from qxai.progress import track

#: Images per class shown in the picture grid (the npz and json hold all of them).
GRID_PER_CLASS = 2


def run_explain(
    checkpoint: str | os.PathLike[str],
    dataset: str | None = None,
    layer: str | None = None,
    solver: str = "batch-sa",
    beta: float = 0.7,
    per_class: int = 20,
    seed: int = 0,
    out: str | os.PathLike[str] = Path("runs/explain"),
    batch_size: int = 64,
    *,
    normalise: str = "max",
    penalty: tuple[float, int] | None = None,
    ground_truth: str = "auto",
    solver_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Explain ``per_class`` correctly classified test images per class; returns the summary dict.

    >>> summary = run_explain("runs/model.pt", per_class=2, out="runs/explain")  # doctest: +SKIP
    >>> summary["images"], sorted(p.name for p in Path("runs/explain").iterdir())  # doctest: +SKIP
    (20, ['explanations.json', 'qa_grid.png', 'saliency.npz'])
    """
    if batch_size < 1:
        raise QxaiError(f"--batch-size must be at least 1, got {batch_size}")
    out = Path(out)
    md = load_model_and_data(str(checkpoint), dataset, layer)
    explainer = QAFeatureMapExplainer(
        md.model, md.layer, solver=solver, beta=beta, normalise=normalise, penalty=penalty, seed=seed,
        solver_options=solver_options, ground_truth=ground_truth,
    )  # fmt: skip
    data = select_correct_per_class(md.model, md.split.test, per_class, seed)

    records: list[dict[str, Any]] = []
    saliency, weights, chosen, targets = [], [], [], []
    for images, labels in track(batches(data, batch_size), "explaining (QA feature maps)"):
        exp = explainer.explain(images)  # the predicted class, which is the label here
        ex = exp.extras
        start = len(records)
        for i in range(len(exp)):
            records.append({
                "index": int(data.indices[start + i]), "label": int(labels[i]),
                "label_name": md.class_names[int(labels[i])], "target": int(exp.targets[i]),
                "selected": ex["selected"][i], "energy": ex["energy"][i],
                "ground_energy": ex["ground_energy"][i],
                "num_variables": ex["num_variables"][i], "solver": ex["solver"],
                "seconds": exp.seconds / len(exp), "solver_seconds": ex["solver_seconds"][i],
            })  # fmt: skip
        mask = np.zeros(ex["channel_weights"].shape, dtype=bool)
        for i, sel in enumerate(ex["selected"]):
            mask[i, sel] = True
        saliency.append(exp.saliency)
        weights.append(ex["channel_weights"])
        chosen.append(mask)
        targets.append(exp.targets)

    maps = np.concatenate(saliency)
    write_npz(
        out / "saliency.npz", saliency=maps, indices=data.indices.numpy(), labels=data.labels.numpy(),
        targets=np.concatenate(targets), channel_weights=np.concatenate(weights),
        selected=np.concatenate(chosen),
    )  # fmt: skip
    grid_rows = _grid_rows(data.labels.numpy(), GRID_PER_CLASS)
    write_figure(out / "qa_grid.png", _grid_figure(data.images.numpy(), maps, records, grid_rows))
    summary = _summary(records, solver)
    figure = {
        "file": "qa_grid.png",
        "title": "QA-fGradCAM explanations",
        "caption": (
            f"Up to {GRID_PER_CLASS} correctly classified test images per class, each beside its "
            f"QA-fGradCAM map (Σ over the selected maps S of ReLU(α_k A^k)) at layer '{md.layer}'; "
            f"solver {solver}, β = {beta}."
        ),
    }
    write_json(out / "explanations.json", {
        "method": "qa", "checkpoint": str(checkpoint), "dataset": data.name or md.config.get("dataset"),
        "layer": md.layer, "num_maps": int(np.concatenate(weights).shape[1]), "class_names": md.class_names,
        "solver": solver, "beta": beta, "normalise": normalise, "penalty": list(penalty) if penalty else None,
        "seed": seed, "per_class": per_class, "solver_options": _jsonable(solver_options or {}),
        "images": records, "figures": [figure], "summary": summary,
    })  # fmt: skip
    return {**summary, "out": str(out)}


def _summary(records: list[dict[str, Any]], solver: str) -> dict[str, Any]:
    """Flat headline numbers: counts, mean sizes, how often the solver hit the known optimum."""
    known = [r for r in records if r["ground_energy"] is not None]
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
        "ground_state_known": len(known),
        "optimal_rate": float(np.mean(optimal)) if known else float("nan"),
        "seconds_per_image": float(np.mean([r["seconds"] for r in records])),
        "solver_seconds_per_image": float(np.mean([r["solver_seconds"] for r in records])),
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

