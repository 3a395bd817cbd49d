"""Class disentanglement, the authors' way (SPEC §1), and a method-independent silhouette score.

For each class ``c``, ``p_c(k)`` is the normalised histogram of how often map ``k`` is selected over
that class's images; the overlap of two classes is the Bhattacharyya coefficient
``BC = Σ_k sqrt(p_c(k) p_c'(k))``. A diagonal BC matrix means perfectly disentangled classes.

>>> p = class_histograms([[0], [0], [1]], [0, 0, 1], num_maps=2, num_classes=2)
>>> bhattacharyya_matrix(p).tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_histograms(
    selections: Sequence[Sequence[int]], labels: Sequence[int] | np.ndarray, num_maps: int, num_classes: int
) -> np.ndarray:
    """``(num_classes, num_maps)`` normalised histograms of selected map indices per class.

    A class none of whose images selected anything gets a row of NaN (its overlap is undefined).
    """
    counts = np.zeros((num_classes, num_maps))
    for sel, c in zip(selections, np.asarray(labels), strict=True):
        np.add.at(counts[int(c)], np.asarray(list(sel), dtype=int), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)


def bhattacharyya_matrix(histograms: np.ndarray) -> np.ndarray:
    """``(C, C)`` Bhattacharyya coefficients between the rows of ``histograms`` ``(C, K)``."""
    root = np.sqrt(histograms)
    return root @ root.T


def off_diagonal_summary(matrix: np.ndarray) -> tuple[float, float]:
    """(mean, max) of the off-diagonal entries, ignoring NaN (classes without selections).

    >>> off_diagonal_summary(np.array([[1.0, 0.2], [0.2, 1.0]]))
    (0.2, 0.2)
    """
    c = len(matrix)
    off = matrix[~np.eye(c, dtype=bool)]
    off = off[np.isfinite(off)]
    if off.size == 0:
        return float("nan"), float("nan")
    return float(off.mean()), float(off.max())


def activated_maps(channel_weights: np.ndarray, sizes: Sequence[int] | None = None) -> list[list[int]]:
    """A CAM's "activated maps" per image from its ``(B, N_f)`` channel weights.

    ``sizes`` None: maps with positive weight. Otherwise the top ``sizes[b]`` maps by weight that
    are also positive (so the set size matches the QA selection of the same image when it can).

    >>> activated_maps(np.array([[0.5, -1.0, 2.0]]))
    [[0, 2]]
    >>> activated_maps(np.array([[0.5, -1.0, 2.0]]), sizes=[1])
    [[2]]
    """
    out: list[list[int]] = []
    for b, w in enumerate(np.asarray(channel_weights)):
        positive = np.flatnonzero(w > 0)
        if sizes is not None:
            # stable sort on -w: ties keep the lower index, so the result is deterministic
            ranked = positive[np.argsort(-w[positive], kind="stable")]
            positive = np.sort(ranked[: int(sizes[b])])
        out.append(positive.tolist())
    return out


def overlap_scores(
    selections: Sequence[Sequence[int]], labels: Sequence[int] | np.ndarray, num_maps: int, num_classes: int
) -> tuple[float, float, np.ndarray]:
    """(mean off-diagonal BC, max off-diagonal BC, the ``(C, C)`` matrix) for per-image selections."""
    matrix = bhattacharyya_matrix(class_histograms(selections, labels, num_maps, num_classes))
    mean, worst = off_diagonal_summary(matrix)
    return mean, worst, matrix


def saliency_silhouette(saliency: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Silhouette (sklearn, euclidean) of ``(N, H, W)`` maps grouped by ``labels``; NaN if undefined.

    >>> maps = np.stack([np.eye(3)] * 3 + [np.ones((3, 3))] * 3)
    >>> round(saliency_silhouette(maps, [0, 0, 0, 1, 1, 1]), 3)
    1.0
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    n_classes = len(np.unique(labels))
    if n_classes < 2 or n_classes >= len(labels):
        return float("nan")
    return float(silhouette_score(np.asarray(saliency).reshape(len(labels), -1), labels))
