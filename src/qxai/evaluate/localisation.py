"""Localisation against ground-truth masks (e.g. the parasites of the ``cells`` data set).

>>> sal = np.array([[[0.0, 1.0], [0.2, 0.0]]])
>>> mask = np.array([[[False, True], [False, False]]])
>>> pointing_game(sal, mask).tolist(), relevance_mass(sal, mask).round(3).tolist()
([1.0], [0.833])
"""

from __future__ import annotations

import numpy as np

from qxai.errors import QxaiError


def _check(saliency: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sal = np.asarray(saliency, dtype=np.float64)
    m = np.asarray(masks).astype(bool)
    if sal.shape != m.shape:
        raise QxaiError(f"masks have shape {m.shape}, saliency {sal.shape}; give one H×W mask per image")
    return sal.reshape(len(sal), -1), m.reshape(len(m), -1)


def pointing_game(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(N,)`` 1.0 when a pixel of maximal saliency lies inside the mask, else 0.0.

    NaN for an empty mask (nothing to point at). A constant map points nowhere and scores 0 — unlike
    quantus, which would count every pixel as the maximum and score a blank map as a hit.
    """
    sal, m = _check(saliency, masks)
    is_max = sal == sal.max(axis=1, keepdims=True)
    hit = np.any(is_max & m, axis=1).astype(float)
    hit[np.ptp(sal, axis=1) == 0] = 0.0
    hit[m.sum(axis=1) == 0] = np.nan
    return hit


def relevance_mass(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(N,)`` share of the total saliency inside the mask (Arras et al. 2022); NaN when the map is
    zero everywhere or the mask is empty."""
    sal, m = _check(saliency, masks)
    total = sal.sum(axis=1)
    inside = (sal * m).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)
    out[m.sum(axis=1) == 0] = np.nan
    return out
