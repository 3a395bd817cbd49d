"""Pictures of QA explanations: each image beside its QA-fGradCAM overlay, the selected maps in the
title. Returns matplotlib figures; the stage that writes them owns the file (``write_stage``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def grid_figure(images: np.ndarray, maps: np.ndarray, records: list[dict[str, Any]], rows: list[int]) -> Any:
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
        picture = displayable(images[row])
        rec = records[row]
        ax_img.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax_img.set_title(f"#{rec['index']} {rec['label_name']}", fontsize=7)
        ax_map.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax_map.imshow(maps[row], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
        ax_map.set_title(selection_label(rec["selected"]), fontsize=6)
    fig.tight_layout()
    return fig


def displayable(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] → ``(H, W)`` for one channel, ``(H, W, 3)`` otherwise."""
    if image.shape[0] == 1:
        return image[0]
    return np.clip(np.moveaxis(image[:3], 0, -1), 0.0, 1.0)


def selection_label(selected: list[int], shown: int = 6) -> str:
    """``S={1, 4, 9}``, or ``|S|=24: 1, 3, 4, …`` when the list would not fit over a thumbnail.

    >>> selection_label([1, 4, 9]), selection_label(list(range(10)))
    ('S={1, 4, 9}', '|S|=10: 0, 1, 2, 3, 4, 5, …')
    """
    if len(selected) <= shown:
        return "S={" + ", ".join(map(str, selected)) + "}"
    return f"|S|={len(selected)}: " + ", ".join(map(str, selected[:shown])) + ", …"
