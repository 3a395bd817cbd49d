"""Localisation against ground-truth masks (e.g. the parasites of the ``cells`` data set).

>>> sal = np.array([[[0.0, 1.0], [0.2, 0.0]]])
>>> mask = np.array([[[False, True], [False, False]]])
>>> pointing_game(sal, mask).tolist(), relevance_mass(sal, mask).round(3).tolist()
([1.0], [0.833])
>>> relevance_mass(np.zeros((1, 2, 2)), mask).tolist()
[0.0]
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


def pointing_game(
    saliency: np.ndarray, masks: np.ndarray, seed: int = 0, ids: np.ndarray | None = None
) -> np.ndarray:
    """``(N,)`` 1.0 when the pixel of maximal saliency lies inside the mask, else 0.0.

    Ties for the maximum are broken at random (seeded): a plateau map points at one of its tied
    pixels, not at all of them, so a flat or blank map scores like random pointing (its expected
    hit rate is the mask's share of the image) instead of being rewarded for covering the mask.
    NaN for an empty mask (nothing to point at). Image ``i``'s draws come from ``(seed, ids[i])``
    (``ids``: data-set indices, default ``0..N-1``), so shards score like one pass.
    """
    from qxai.seeding import per_item_uniform

    sal, m = _check(saliency, masks)
    is_max = sal == sal.max(axis=1, keepdims=True)
    noise = per_item_uniform(seed, "pointing-ties", np.arange(len(sal)) if ids is None else ids, sal.shape[1])
    pick = np.argmax(np.where(is_max, noise, -1.0), axis=1)
    hit = m[np.arange(len(m)), pick].astype(float)
    hit[m.sum(axis=1) == 0] = np.nan
    return hit


def relevance_mass(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(N,)`` share of the total saliency inside the mask (Arras et al. 2022).

    A map that is zero everywhere puts no relevance inside the mask and scores 0 (leaving it out
    would reward a method that goes blank on hard images); NaN only for an empty mask.
    """
    sal, m = _check(saliency, masks)
    total = sal.sum(axis=1)
    inside = (sal * m).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)
    out[m.sum(axis=1) == 0] = np.nan
    return out
