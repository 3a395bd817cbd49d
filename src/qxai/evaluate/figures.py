"""Figures of an evaluation: overlap matrices, deletion/insertion curves, an example grid, robustness.

Each function returns a matplotlib Figure (the caller saves it with :func:`qxai.io.write_figure`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qxai.evaluate.runner import Evaluation


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def overlap_figure(ev: Evaluation, class_names: list[str]) -> Any | None:
    """The Bhattacharyya matrices side by side: top row size-matched (top-k, k = |S_QA|), bottom row
    each method's own sets (activated maps, set-size-confounded). None when no method has a matrix."""
    panels = [(n, r.matrices) for n, r in ev.methods.items() if r.error is None and r.matrices]
    if not panels:
        return None
    plt = _plt()
    rows = 2 if any("overlap_activated" in m for _, m in panels) else 1
    fig, axes = plt.subplots(rows, len(panels), figsize=(3.4 * len(panels), 3.2 * rows), squeeze=False)
    ticks = [c[:6] for c in class_names]
    for j, (name, mats) in enumerate(panels):
        for i, key in enumerate(["overlap", "overlap_activated"][:rows]):
            ax = axes[i, j]
            if key not in mats:
                ax.axis("off")
                continue
            m = mats[key]
            ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
            off = m[~np.eye(len(m), dtype=bool)]
            label = "size-matched" if key == "overlap" else "own sets"
            ax.set_title(f"{name} ({label})\nmean off-diag {np.nanmean(off):.3f}", fontsize=9)
            ax.set_xticks(range(len(m)), ticks, rotation=90, fontsize=6)
            ax.set_yticks(range(len(m)), ticks, fontsize=6)
    fig.tight_layout()
    return fig


def curves_figure(ev: Evaluation) -> Any | None:
    """Mean deletion (left) and insertion (right) curves of every method."""
    have = {n: r.curves for n, r in ev.methods.items() if r.error is None and r.curves}
    if not have:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("deletion", "insertion"), strict=True):
        for name, curves in have.items():
            if key in curves:
                y = curves[key]
                auc = np.trapezoid(y, np.linspace(0, 1, len(y)))
                ax.plot(np.linspace(0, 1, len(y)), y, label=f"{name} ({auc:.3f})")
        ax.set_xlabel("fraction of pixels " + ("deleted" if key == "deletion" else "inserted"))
        ax.set_ylabel("target-class probability")
        ax.set_title(f"{key} ({'lower' if key == 'deletion' else 'higher'} AUC is better)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def example_grid(ev: Evaluation, images: np.ndarray, labels: np.ndarray, class_names: list[str],
                 per_class: int = 1) -> Any | None:  # fmt: skip
    """One row per example image (``per_class`` of each class): the image, then every method's map."""
    methods = [(n, r.saliency) for n, r in ev.methods.items() if r.error is None and r.saliency is not None]
    if not methods:
        return None
    rows = [int(i) for c in np.unique(labels) for i in np.flatnonzero(labels == c)[:per_class]]
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 1 + len(methods), figsize=(1.5 * (1 + len(methods)), 1.5 * len(rows)),
                             squeeze=False)  # fmt: skip
    for i, row in enumerate(rows):
        img = np.asarray(images[row]).transpose(1, 2, 0)
        axes[i, 0].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        axes[i, 0].set_ylabel(class_names[int(labels[row])][:10], fontsize=7)
        for j, (name, sal) in enumerate(methods, start=1):
            axes[i, j].imshow(sal[row], cmap="jet", vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> Any:
    """The confusion matrix of ``predicted`` against ``labels`` (both ``(N,)`` class indices),
    counts written in the cells, rows the true class."""
    from sklearn.metrics import confusion_matrix

    plt = _plt()
    matrix = confusion_matrix(labels, predicted, labels=range(len(class_names)))
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    for (i, j), v in np.ndenumerate(matrix):
        colour = "white" if v > matrix.max() / 2 else "black"
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def planted_figure(
    images: np.ndarray, masks: np.ndarray, designated: list[set[int]], choices: dict[str, list[list[int]]],
    saliency: dict[str, np.ndarray], titles: list[str],
) -> Any:
    """One row per planted image: the image, its evidence mask, then each method's saliency map with
    its selected (or top-k) maps printed beneath, designated ones marked ✓ and the others ✗.

    ``images`` ``(R, H, W)``, ``masks`` ``(R, H, W)``, ``designated[r]`` the image's designated maps,
    ``choices[method][r]`` its map set, ``saliency[method]`` ``(R, H, W)``, ``titles[r]`` a label.
    """
    plt = _plt()
    methods = list(saliency)
    rows, cols = len(images), 2 + len(methods)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.4 * rows), squeeze=False)
    for r in range(rows):
        axes[r, 0].imshow(images[r], cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(titles[r], fontsize=8)
        axes[r, 1].imshow(images[r], cmap="gray", vmin=0, vmax=1)
        axes[r, 1].imshow(np.ma.masked_where(~masks[r].astype(bool), masks[r]), cmap="autumn", alpha=0.55)
        axes[r, 1].set_title(f"mask; designated {sorted(designated[r])}", fontsize=7)
        for j, name in enumerate(methods, start=2):
            ax = axes[r, j]
            ax.imshow(saliency[name][r], cmap="jet")
            chosen = choices.get(name, [None] * rows)[r]
            if chosen is None:
                label = "(pixels; no map set)"
            else:
                marks = " ".join(f"{k}{'✓' if k in designated[r] else '✗'}" for k in sorted(chosen))
                label = marks or "(empty)"
            ax.set_title(name, fontsize=8)
            ax.set_xlabel(label, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("planted benchmark: truth by construction (✓ = a designated map of the class)", fontsize=9)
    fig.tight_layout()
    return fig


#: the robustness picture's panels: the metrics of the robustness and stability groups
ROBUSTNESS_PANELS = ("max_sensitivity", "avg_sensitivity", "local_lipschitz", "relative_input_stability",
                     "relative_output_stability", "relative_representation_stability",
                     "selection_jaccard_noise", "selection_jaccard_seed",
                     "selection_jaccard_reads")  # fmt: skip


def robustness_figure(ev: Evaluation) -> Any | None:
    """One panel per robustness or stability metric: each method's mean and 95 % interval (log scale
    for the relative stabilities, whose values span decades). None when no method has one."""
    panels = [m for m in ROBUSTNESS_PANELS
              if any(np.isfinite(r.scores.get(m, np.nan)) for r in ev.usable().values())]  # fmt: skip
    if not panels:
        return None
    plt = _plt()
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    height = 0.5 + (0.32 * len(ev.methods) + 0.8) * rows
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, height), squeeze=False)
    info = {m.name: m for m in ev.metrics}
    for ax, name in zip(axes.flat, panels, strict=False):
        have = [(n, r.scores[name], r.intervals.get(name, (np.nan, np.nan))) for n, r in ev.usable().items()
                if np.isfinite(r.scores.get(name, np.nan))]  # fmt: skip
        y = np.arange(len(have))
        values = np.array([v for _, v, _ in have])
        lo = np.array([iv[0] for _, _, iv in have])
        hi = np.array([iv[1] for _, _, iv in have])
        err = np.vstack([np.where(np.isfinite(lo), values - lo, 0),
                         np.where(np.isfinite(hi), hi - values, 0)])
        ax.errorbar(values, y, xerr=np.clip(err, 0, None), fmt="o", color="#2a5599", ecolor="#889", capsize=3)
        ax.set_yticks(y, [n for n, _, _ in have], fontsize=8)
        ax.invert_yaxis()
        if name.startswith("relative_") and (values > 0).all():
            ax.set_xscale("log")
        direction = info[name].direction if name in info else "lower"
        ax.set_title(f"{name}\n({direction} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
