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
    """A CAM's map sets per image from its ``(B, N_f)`` channel weights.

    ``sizes`` None: the "activated maps", those with positive weight (set-size-confounded: their
    count differs from method to method). Otherwise exactly the top ``sizes[b]`` maps by weight,
    positive or not, so that every method's set has the size of the QA selection of that image.

    >>> activated_maps(np.array([[0.5, -1.0, 2.0]]))
    [[0, 2]]
    >>> w = np.array([[0.5, -1.0, 2.0]])
    >>> activated_maps(w, sizes=[1]), activated_maps(w, [3])
    ([[2]], [[0, 1, 2]])
    """
    out: list[list[int]] = []
    for b, w in enumerate(np.asarray(channel_weights)):
        if sizes is None:
            out.append(np.flatnonzero(w > 0).tolist())
            continue
        # stable sort on -w: ties keep the lower index, so the result is deterministic
        ranked = np.argsort(-w, kind="stable")
        out.append(np.sort(ranked[: int(sizes[b])]).tolist())
    return out


def selection_matrix(selections: Sequence[Sequence[int]], num_maps: int) -> np.ndarray:
    """``(N, num_maps)`` 0/1 float matrix: row ``i`` marks the maps selected for image ``i``.

    >>> selection_matrix([[0, 2], []], 3).tolist()
    [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    out = np.zeros((len(selections), num_maps))
    for i, sel in enumerate(selections):
        out[i, np.asarray(list(sel), dtype=int)] = 1.0
    return out


def overlap_from_matrix(selected: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, float]:
    """(mean, max) off-diagonal BC from a :func:`selection_matrix` and labels — one matrix product,
    so bootstrap resamples of a few hundred images cost microseconds.

    >>> overlap_from_matrix(selection_matrix([[0], [0], [1]], 2), np.array([0, 0, 1]), 2)
    (0.0, 0.0)
    """
    onehot = np.zeros((len(labels), num_classes))
    onehot[np.arange(len(labels)), np.asarray(labels, dtype=int)] = 1.0
    counts = onehot.T @ selected
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        hist = np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)
    return off_diagonal_summary(bhattacharyya_matrix(hist))


def overlap_scores(
    selections: Sequence[Sequence[int]], labels: Sequence[int] | np.ndarray, num_maps: int, num_classes: int
) -> tuple[float, float, np.ndarray]:
    """(mean off-diagonal BC, max off-diagonal BC, the ``(C, C)`` matrix) for per-image selections."""
    matrix = bhattacharyya_matrix(class_histograms(selections, labels, num_maps, num_classes))
    mean, worst = off_diagonal_summary(matrix)
    return mean, worst, matrix


def pairwise_distances(saliency: np.ndarray) -> np.ndarray:
    """``(N, N)`` euclidean distances between the flattened ``(N, H, W)`` maps (computed once; the
    bootstrap of the silhouette re-uses it)."""
    from sklearn.metrics import pairwise_distances as pd

    flat = np.asarray(saliency, dtype=np.float64).reshape(len(saliency), -1)
    return pd(flat, metric="euclidean")


def silhouette_precomputed(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a precomputed ``(n, n)`` distance matrix; NaN when undefined.

    The same definition as sklearn's ``silhouette_score(..., metric="precomputed")`` (a sample alone
    in its class scores 0), computed with two matrix products so that a thousand bootstrap
    resamples cost well under a second. Duplicated images (a resample) have distance 0 to their
    copy, as they should.

    >>> d = np.array([[0.0, 1.0, 4.0, 4.0], [1.0, 0.0, 4.0, 4.0], [4.0, 4.0, 0.0, 1.0], [4.0, 4.0, 1.0, 0.0]])
    >>> silhouette_precomputed(d, np.array([0, 0, 1, 1]))
    0.75
    """
    labels = np.asarray(labels)
    classes, codes = np.unique(labels, return_inverse=True)
    n = len(labels)
    if len(classes) < 2 or len(classes) >= n:
        return float("nan")
    onehot = np.zeros((n, len(classes)))
    onehot[np.arange(n), codes] = 1.0
    sizes = onehot.sum(axis=0)
    sums = np.asarray(distances, dtype=np.float64) @ onehot  # (n, C): total distance to each class
    own = sizes[codes]
    a = np.where(own > 1, sums[np.arange(n), codes] / np.maximum(own - 1, 1), 0.0)
    means = sums / sizes
    means[np.arange(n), codes] = np.inf
    b = means.min(axis=1)
    denom = np.maximum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where((own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1), 0.0)
    return float(s.mean())


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
