"""Selection stability: does a method pick the same feature maps again? (No library measures it.)

For a method that selects maps — QA's selection, or a CAM's top-k channels with k = |S_QA| of the
image — the Jaccard index ``|A ∩ B| / |A ∪ B|`` between its set on an image and its set

- on small perturbations of the image (the max-sensitivity copies, :mod:`qxai.evaluate.robustness`),
- with other solver seeds (a deterministic method scores 1 by construction), and
- over the reads of one solve: each read's set against the lowest-energy read's (QA only; a solver
  that returns one read leaves it undefined).

Two empty sets have no Jaccard index (NaN: nothing was selected to compare).

>>> jaccard([1, 2, 3], [2, 3, 4]), jaccard([], [1])
(0.5, 0.0)
>>> import dimod
>>> ss = dimod.SampleSet.from_samples([{0: 1, 1: 1}, {0: 1, 1: 0}], "BINARY", [-2.0, -1.0],
...                                   num_occurrences=[3, 1])
>>> round(read_agreement(ss), 4)  # two more reads of the best set, one with half of it
0.8333
"""

from __future__ import annotations

from collections.abc import Sequence

import dimod
import numpy as np

from qxai.evaluate.statistics import column_reduce


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """``|a ∩ b| / |a ∪ b|``; NaN when both are empty."""
    sa, sb = set(int(v) for v in a), set(int(v) for v in b)
    union = len(sa | sb)
    return float("nan") if union == 0 else len(sa & sb) / union


def mean_jaccard(reference: Sequence[Sequence[int]], others: Sequence[Sequence[Sequence[int]]]) -> np.ndarray:
    """``(B,)``: image ``b``'s mean Jaccard index between ``reference[b]`` and each ``others[s][b]``
    (NaN where every pair is empty)."""
    values = np.array([[jaccard(ref, row[b]) for b, ref in enumerate(reference)] for row in others])
    return column_reduce(values, np.nanmean)


def top_k_sets(weights: np.ndarray, sizes: Sequence[int]) -> list[list[int]]:
    """Row ``b``'s ``sizes[b]`` largest weights (ties to the lower index, as the size-matched
    references break them), sorted."""
    from qxai.evaluate.disentangle import activated_maps

    return [sorted(s) for s in activated_maps(np.asarray(weights), list(sizes))]


def read_agreement(sampleset: dimod.SampleSet) -> float:
    """Mean Jaccard index between every read's selection and the lowest-energy read's, over all reads
    but that one (weighted by ``num_occurrences``); NaN with a single read or an empty best set."""
    record = sampleset.record
    counts = record.num_occurrences.astype(int) if "num_occurrences" in record.dtype.names else np.ones(
        len(record), int)  # fmt: skip
    total = int(counts.sum())
    if total < 2:
        return float("nan")
    labels = list(sampleset.variables)
    sets = [[labels[j] for j in np.flatnonzero(row > 0)] for row in record.sample]
    best = int(np.argmin(record.energy))
    if not sets[best]:
        return float("nan")  # the explanation itself is empty: nothing to agree on
    scores = np.array([jaccard(sets[best], s) for s in sets])
    weights = counts.astype(float)
    weights[best] -= 1  # the reference read itself is not compared with itself
    return float((scores * weights).sum() / weights.sum())


__all__ = ["jaccard", "mean_jaccard", "read_agreement", "top_k_sets"]
