"""Scores of map selections against designated maps known by construction (the planted benchmark).

For image ``i`` with target ``c``, a method's set ``S_i`` (size-matched: ``|S_i| = |S_QA,i|``) and
the model's designated maps ``D(c)`` in groups of interchangeable maps ``G_1 … G_m`` (a map and its
copies; singletons without copies, :class:`qxai.models.planted.MapTruth`), of which the image's
truth ``D_i`` keeps the groups with a map active on it (a designated map that is zero on the image
detects a part the image does not show, and zeroing it changes nothing):

* ``precision`` = ``|S ∩ D_i| / |S|`` — every copy is a designated map (NaN for an empty set);
* ``recall`` = ``#{j : S ∩ G_j ≠ ∅, G_j ⊆ D_i} / m_i`` — the share of the image's evidence the set
  covers, a copy standing for its group (so picking both copies of one map does not count twice);
  NaN where no designated map is active.

>>> from qxai.models.planted import MapTruth
>>> truth = MapTruth("maps", {0: ((0, 12), (1,)), 1: ((2,), (3,))})
>>> planted_scores([[0, 12], [2, 5]], np.array([0, 1]), truth)
{'precision': array([1. , 0.5]), 'recall': array([0.5, 0.5])}
>>> shows_one = np.ones((2, 16), dtype=bool); shows_one[1, 3] = False  # image 1 lacks map 3's part
>>> planted_scores([[0, 12], [2, 3]], np.array([0, 1]), truth, shows_one)
{'precision': array([1. , 0.5]), 'recall': array([0.5, 1. ])}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from qxai.models.planted import MapTruth


def planted_scores(
    sets: Sequence[Sequence[int]], targets: np.ndarray, truth: MapTruth, active: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-image ``precision`` and ``recall`` ``(N,)`` of ``sets`` against ``truth`` (see the module
    docstring); ``targets`` ``(N,)`` are the explained classes, ``active`` ``(N, N_f)`` bool which
    maps are not zero on each image (None: every map, the class's whole ``D(c)``)."""
    precision = np.full(len(sets), np.nan)
    recall = np.full(len(sets), np.nan)
    for i, chosen in enumerate(sets):
        target = int(targets[i])
        groups = truth.groups.get(target, ()) if active is None else truth.on_image(target, active[i])
        picked = {int(k) for k in chosen}
        if picked and groups:
            precision[i] = len(picked & {k for g in groups for k in g}) / len(picked)
        if groups:
            recall[i] = sum(bool(picked & set(g)) for g in groups) / len(groups)
    return {"precision": precision, "recall": recall}
