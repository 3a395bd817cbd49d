"""Controls for the MI and similarity claims: the same analysis on a network or on inputs that hold no
learned structure, and a paired bootstrap of the difference.

A claim such as "identifiable high-MI feature-map pairs" says something about *training* only if a
network that learned nothing does not show it too. Two controls, analysed on the same images:

* **random network** (:func:`random_network`): a copy of the model with every parameter drawn anew
  from its layer's own initialiser (``reset_parameters``), seeded from the run seed; parameters of
  modules without an initialiser are shuffled in place (same values, no learned arrangement);
* **shuffled input** (:func:`shuffled_inputs`): the trained model on inputs whose positions (image
  pixels, sequence steps) are permuted independently per input — the intensity statistics stay,
  the spatial / temporal structure goes. Not meaningful for token ids (Transformers), so not run there.

:func:`compare_mi` and :func:`compare_similarity` resample the images — with replacement, within
each class, so every class keeps its count — and recompute the statistic of the trained model and of
the control *on the same resampled images*; the percentile interval of ``trained − control`` says
whether they differ (a difference whose interval contains 0 is a tie).

>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=(300, 4))
>>> trained = (a, a + 0.1 * rng.normal(size=(300, 4)))
>>> control = (a, rng.normal(size=(300, 4)))
>>> c = compare_mi(trained, control, resamples=50)
>>> c["trained"] > c["control"] and c["difference_interval"][0] > 0
True
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from qxai.analysis.mutual_info import copula_normal, fdr_significant, mutual_information_matrix
from qxai.seeding import numpy_rng

#: Resamples of every control interval (each is one MI matrix per network, a few ms at N = 1000).
RESAMPLES = 200
#: Two-sided level of the control intervals.
LEVEL = 0.95
#: The controls, by the name their rows use.
CONTROLS = ("random network", "shuffled input")


def random_network(model: nn.Module, seed: int) -> tuple[nn.Module, list[str]]:
    """A copy of ``model`` with freshly initialised parameters (seeded), in eval mode, and the names of
    the modules whose parameters were shuffled because they have no ``reset_parameters``.

    >>> net = nn.Sequential(nn.Linear(3, 2))
    >>> fresh, shuffled = random_network(net, 0)
    >>> bool(torch.equal(fresh[0].weight, net[0].weight)), shuffled
    (False, [])
    """
    fresh = copy.deepcopy(model)
    reset: set[int] = set()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for module in fresh.modules():
            init = getattr(module, "reset_parameters", None)
            if callable(init):
                init()
                reset.update(id(p) for p in module.parameters(recurse=False))
        gen = torch.Generator().manual_seed(int(seed) + 1)
        shuffled = []
        for name, module in fresh.named_modules():
            own = [p for p in module.parameters(recurse=False) if id(p) not in reset]
            with torch.no_grad():
                for p in own:
                    flat = p.data.reshape(-1)
                    flat.copy_(flat[torch.randperm(flat.numel(), generator=gen)])
            if own:
                shuffled.append(name or type(module).__name__)
    fresh.eval()
    return fresh, shuffled


def shuffled_inputs(inputs: torch.Tensor, kind: str, seed: int) -> torch.Tensor | None:
    """``inputs`` with their positions permuted independently per input (images: the H×W pixels, the
    same permutation for every channel; sequences ``(N, T, F)``: the time steps); None for a kind where
    shuffling is not meaningful (token ids).

    >>> x = torch.arange(8.0).reshape(2, 1, 2, 2)
    >>> y = shuffled_inputs(x, "image", 0)
    >>> sorted(y[0].flatten().tolist()) == sorted(x[0].flatten().tolist())
    True
    """
    if kind not in ("image", "lstm"):
        return None
    rng = numpy_rng(seed, "analysis-shuffled-input")
    n = len(inputs)
    if kind == "image":
        flat = inputs.reshape(n, inputs.shape[1], -1)
        order = torch.as_tensor(np.argsort(rng.random((n, flat.shape[2])), axis=1))
        out = torch.gather(flat, 2, order[:, None, :].expand(-1, flat.shape[1], -1))
        return out.reshape(inputs.shape)
    order = torch.as_tensor(np.argsort(rng.random((n, inputs.shape[1])), axis=1))
    return torch.gather(inputs, 1, order[:, :, None].expand(-1, -1, inputs.shape[2]))


def _resample_rows(labels: np.ndarray | None, n: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` row indices drawn with replacement within each class (labels < 0 or None: one
    group), so every class keeps its count in every resample."""
    rng = numpy_rng(seed, "analysis-control-bootstrap")
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    idx = np.empty((resamples, n), dtype=np.int64)
    start = 0
    for g in groups:
        idx[:, start : start + g.size] = g[rng.integers(0, g.size, size=(resamples, g.size))]
        start += g.size
    return idx


def _interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def significant_count(x: np.ndarray, y: np.ndarray, *, method: str = "gcmi", fdr: float = 0.05) -> int:
    """Pairs of columns of ``x`` and ``y`` significant after Benjamini–Hochberg on the analytic MI null."""
    r = mutual_information_matrix(x, y, method=method)
    return int(fdr_significant(r.analytic_pvalues, fdr).sum())


def _bootstrap_counts(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, *, method: str, fdr: float
) -> np.ndarray:
    """The significant-pair count on every resample ``idx`` (rows). For gcmi the copula scores are
    computed once and resampled (a resample's correlation of fixed scores: one product each); binned MI
    is recomputed per resample."""
    if method != "gcmi":
        return np.array([significant_count(x[r], y[r], method=method, fdr=fdr) for r in idx], dtype=float)
    from scipy.stats import chi2

    zx, zy = copula_normal(x), copula_normal(y)
    n = len(x)
    counts = np.empty(len(idx))
    for i, rows in enumerate(idx):
        a, b = zx[rows], zy[rows]
        a = a - a.mean(axis=0)
        b = b - b.mean(axis=0)
        sa, sb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
        corr = (a.T @ b) / np.maximum(np.outer(sa, sb), 1e-300)
        mi = np.minimum(-0.5 * np.log1p(-np.minimum(corr * corr, 1.0 - 1e-12)), np.log(n))
        counts[i] = fdr_significant(chi2.sf(2.0 * n * mi, 1), fdr).sum()
    return counts


def compare_mi(
    trained: tuple[np.ndarray, np.ndarray],
    control: tuple[np.ndarray, np.ndarray],
    *,
    labels: np.ndarray | None = None,
    method: str = "gcmi",
    fdr: float = 0.05,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Significant MI pairs (BH on the analytic null) of the trained layers against the control's, on
    the same images: both counts, the bootstrap interval of the trained count and of the difference.

    ``trained`` and ``control`` are ``(x, y)`` activation pairs over the same N inputs; ``labels``
    ``(N,)`` makes the resampling stratified by class.
    """
    n = len(trained[0])
    idx = _resample_rows(None if labels is None else np.asarray(labels), n, resamples, seed)
    r_t = mutual_information_matrix(*trained, method=method)
    r_c = mutual_information_matrix(*control, method=method)
    ours = int(fdr_significant(r_t.analytic_pvalues, fdr).sum())
    theirs = int(fdr_significant(r_c.analytic_pvalues, fdr).sum())
    boot_t = _bootstrap_counts(*trained, idx, method=method, fdr=fdr)
    boot_c = _bootstrap_counts(*control, idx, method=method, fdr=fdr)
    return {
        "trained": ours, "control": theirs, "difference": ours - theirs,
        "trained_interval": _interval(boot_t), "control_interval": _interval(boot_c),
        "difference_interval": _interval(boot_t - boot_c),
        "trained_top_mi": float(r_t.mi.max()), "control_top_mi": float(r_c.mi.max()),
        "resamples": resamples, "interval_method": "paired bootstrap over images within class, percentile",
    }  # fmt: skip


def _rv(x: np.ndarray, y: np.ndarray) -> float:
    """The RV coefficient (Gram cosine) from the D×D cross-products, cheap for N ≫ D."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    xy, xx, yy = xc.T @ yc, xc.T @ xc, yc.T @ yc
    den = float(np.linalg.norm(xx) * np.linalg.norm(yy))
    return float(np.sum(xy * xy) / den) if den > 0 else 0.0


def largest_consecutive_cosine(layers: Sequence[np.ndarray]) -> float:
    """The largest Gram cosine (RV coefficient) over consecutive layers."""
    return max(_rv(a, b) for a, b in itertools.pairwise(layers))


def compare_similarity(
    trained: Sequence[np.ndarray],
    control: Sequence[np.ndarray],
    *,
    labels: np.ndarray | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """The largest consecutive-layer Gram cosine of the trained layers against the control's on the same
    images, with paired bootstrap intervals (``trained``, ``control``: one ``(N, D)`` matrix per layer,
    in layer order)."""
    x = [np.asarray(a, dtype=np.float64) for a in trained]
    c = [np.asarray(a, dtype=np.float64) for a in control]
    idx = _resample_rows(None if labels is None else np.asarray(labels), len(x[0]), resamples, seed)
    boot = np.array(
        [
            [largest_consecutive_cosine([a[r] for a in x]), largest_consecutive_cosine([a[r] for a in c])]
            for r in idx
        ]
    )
    ours, theirs = largest_consecutive_cosine(x), largest_consecutive_cosine(c)
    return {
        "trained": ours, "control": theirs, "difference": ours - theirs,
        "trained_interval": _interval(boot[:, 0]), "control_interval": _interval(boot[:, 1]),
        "difference_interval": _interval(boot[:, 0] - boot[:, 1]), "resamples": resamples,
        "interval_method": "paired bootstrap over images within class, percentile",
    }  # fmt: skip
