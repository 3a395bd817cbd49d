"""The metric catalogue: every score has a name, a direction and a one-line definition.

>>> METRICS["deletion_auc"].direction
'lower'
>>> [m.name for m in select_metrics(["localisation"])]
['pointing_game', 'relevance_mass']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qxai.errors import unknown_name


@dataclass(frozen=True)
class Metric:
    """A score of one explanation method over a set of images."""

    name: str
    group: str
    direction: str  # "higher" or "lower" is better
    definition: str

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` in this metric's direction."""
        return a > b if self.direction == "higher" else a < b


_ALL = [
    Metric("overlap_mean", "disentanglement", "lower",
           "mean off-diagonal Bhattacharyya coefficient between the per-class histograms of selected "
           "(QA) or activated (CAM: channel weight > 0) feature maps (SPEC §1)"),
    Metric("overlap_max", "disentanglement", "lower",
           "largest off-diagonal Bhattacharyya coefficient of the same matrix (the worst class pair)"),
    Metric("overlap_topk_mean", "disentanglement", "lower",
           "as overlap_mean, with CAM sets cut to the top-k maps by weight, k = |S_QA| of the same image"),
    Metric("overlap_topk_max", "disentanglement", "lower",
           "largest off-diagonal Bhattacharyya coefficient of the top-k matrix"),
    Metric("silhouette", "disentanglement", "higher",
           "silhouette score (sklearn, euclidean) of the flattened saliency maps grouped by class"),
    Metric("deletion_auc", "faithfulness", "lower",
           "area under the target-class probability as the most salient pixels are set to 0 first"),
    Metric("insertion_auc", "faithfulness", "higher",
           "area under the target-class probability as the most salient pixels are restored first "
           "onto a blurred copy"),
    Metric("keep_top_drop", "faithfulness", "lower",
           "average drop (%) of the target-class probability when only the top x% of pixels are kept "
           "(the rest set to 0): mean of max(0, p − p_kept) / p"),
    Metric("pointing_game", "localisation", "higher",
           "fraction of images whose saliency maximum lies inside the ground-truth mask"),
    Metric("relevance_mass", "localisation", "higher",
           "mean share of the total saliency that falls inside the ground-truth mask"),
    Metric("randomisation_spearman", "sanity", "lower",
           "mean Spearman rank correlation between maps of the trained and the parameter-randomised "
           "model (the explanation must change)"),
    Metric("class_sensitivity_spearman", "sanity", "lower",
           "mean Spearman rank correlation between the maps for the true and the runner-up class "
           "(maps for different targets must differ)"),
    Metric("seconds_per_image", "cost", "lower", "wall time of the explainer per image"),
    Metric("peak_memory_mb", "cost", "lower",
           "peak growth of the process's resident memory while explaining (MiB, sampled every 2 ms)"),
]  # fmt: skip

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
GROUPS = tuple(dict.fromkeys(m.group for m in _ALL))


def select_metrics(names: Iterable[str] | str | None = None) -> list[Metric]:
    """Metrics by name or group (``"faithfulness"``); None means all. Unknown names are errors.

    >>> [m.name for m in select_metrics("insertion_auc,cost")]
    ['insertion_auc', 'seconds_per_image', 'peak_memory_mb']
    """
    if names is None:
        return list(_ALL)
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    chosen: list[str] = []
    for item in items:
        if item in GROUPS:
            chosen.extend(m.name for m in _ALL if m.group == item)
        elif item in METRICS:
            chosen.append(item)
        else:
            raise unknown_name("metric", item, [*METRICS, *GROUPS])
    return [METRICS[n] for n in dict.fromkeys(chosen)]
