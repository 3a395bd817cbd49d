"""Mutual information between every unit of one layer and every unit of another, for all pairs at once.

The QIXAI seed calls strong dependence between feature maps of different layers "entanglement". We
estimate ``I(X_a; Y_b)`` (nats) for all ``Dx × Dy`` pairs of scalar features (e.g. the globally
average-pooled maps of ``conv1`` and ``conv2`` over N images) with matrix products instead of a loop:

* ``"gcmi"`` (default) — Gaussian-copula MI (Ince et al. 2017): each feature is replaced by the
  normal quantile of its rank (a monotone map, which leaves MI unchanged), then
  ``I = −½ log(1 − r²)`` with ``r`` the Pearson correlation of the transformed pair. All pairs are
  one ``(Dx × N)·(N × Dy)`` product. It is exact for Gaussian copulas and a lower bound otherwise;
  it misses non-monotone dependence.
* ``"binned"`` — plug-in MI on ``bins`` equal-frequency bins per feature. The joint histograms of all
  pairs are the blocks of one product of one-hot matrices ``(Dx·bins × N)·(N × Dy·bins)``; it sees
  non-monotone dependence but is biased upwards by about ``(bins − 1)² / 2N``.

Both are validated in the tests against the closed form for Gaussians and against scikit-learn's
k-NN (KSG) estimator :func:`ksg_mi`, which is the reference in benchmark P4. Permutation p-values
shuffle the samples of ``Y`` (the same shuffle for all pairs) and count how often the shuffled MI
reaches the observed one: ``p = (1 + #{MI_perm ≥ MI}) / (1 + permutations)``; its floor is
``1 / (1 + permutations)``, so with few permutations a false-discovery correction over thousands of
pairs can reject nothing.

**Analytic p-values** have no such floor. Both estimates are likelihood-ratio statistics of
independence: for ``"gcmi"`` ``2N·Î = −N log(1 − r²)`` is the LR statistic for zero correlation of
two scalar (normal-score) variables, asymptotically ``χ²`` with **1** degree of freedom under
independence (one parameter, the correlation); for ``"binned"`` ``2N·Î`` is the G-statistic of the
``bins × bins`` contingency table, asymptotically ``χ²`` with ``(bins − 1)²`` degrees of freedom
(needs roughly five samples per cell: ``N ≥ 5·bins²``). ``p = P(χ²_df ≥ 2N·Î)``. Benjamini–Hochberg
is applied to these by default (:func:`fdr_significant`).

Both nulls are asymptotic: :func:`analytic_null_valid` says where they hold (gcmi: N ≥
:data:`GCMI_ANALYTIC_MIN_SAMPLES`; binned: N ≥ 5·bins²). Below that only the permutation test is a
valid test. No estimate from N samples is reported above ``ln N`` nats, the entropy of N distinct
values: a larger number would be an artefact of the estimator (gcmi's ``−½ log(1 − r²)`` grows
without bound as ``r → 1``, which a handful of samples reaches by chance or through ties).

A constant feature carries no information: its MI is 0 (p-value 1) and it is listed in
``constant_x`` / ``constant_y``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from qxai.errors import QxaiError, unknown_name
from qxai.seeding import numpy_rng

METHODS = ("gcmi", "binned")
#: fewest samples at which the χ²₁ null of gcmi's likelihood-ratio statistic is used (a common rule
#: for the LR test of a correlation; below it the tail probabilities are off by orders of magnitude)
GCMI_ANALYTIC_MIN_SAMPLES = 30
#: fewest samples mutual information is estimated from at all
MI_MIN_SAMPLES = 8


def analytic_null_valid(method: str, samples: int, bins: int = 8) -> str | None:
    """None where the asymptotic χ² null of :func:`analytic_pvalues` holds, else why not.

    >>> analytic_null_valid("gcmi", 500) is None, analytic_null_valid("gcmi", 8)
    (True, 'the χ² null of gcmi needs N ≥ 30 samples, got 8')
    """
    need = GCMI_ANALYTIC_MIN_SAMPLES if method == "gcmi" else 5 * bins * bins
    if samples >= need:
        return None
    return f"the χ² null of {method} needs N ≥ {need} samples, got {samples}"


@dataclass
class MutualInfo:
    """All-pairs MI between features of two layers.

    Attributes:
        mi: ``(Dx, Dy)`` mutual information in nats.
        pvalues: ``(Dx, Dy)`` permutation p-values, or None when no permutations were run.
        method: ``"gcmi"`` or ``"binned"``.
        permutations: number of permutations behind ``pvalues``.
        constant_x, constant_y: indices of constant features (their MI is 0).
        analytic_pvalues: ``(Dx, Dy)`` ``P(χ²_df ≥ 2N·MI)`` under independence (1 for constant features).
        df: degrees of freedom of that χ² null (1 for gcmi, ``(bins − 1)²`` for binned).
        samples: N.
        at_ceiling: how many pairs' estimates reached ``ln N`` and were capped there.
        analytic_invalid: why the analytic null does not hold at this N (None where it does).
    """

    mi: np.ndarray
    pvalues: np.ndarray | None
    method: str
    permutations: int = 0
    constant_x: list[int] = field(default_factory=list)
    constant_y: list[int] = field(default_factory=list)
    analytic_pvalues: np.ndarray | None = None
    df: int = 1
    samples: int = 0
    at_ceiling: int = 0
    analytic_invalid: str | None = None

    def top_pairs(self, k: int = 10, names: tuple[str, str] = ("x", "y")) -> list[dict[str, Any]]:
        """The ``k`` pairs of highest MI, highest first, as JSON-able dicts.

        >>> r = MutualInfo(np.array([[0.1, 0.5], [0.3, 0.0]]), None, "gcmi")
        >>> [(p["x"], p["y"]) for p in r.top_pairs(2)]
        [(0, 1), (1, 0)]
        """
        order = np.argsort(-self.mi, axis=None, kind="stable")[:k]
        pairs = []
        for flat in order:
            i, j = np.unravel_index(flat, self.mi.shape)
            row: dict[str, Any] = {names[0]: int(i), names[1]: int(j), "mi": float(self.mi[i, j])}
            if self.analytic_pvalues is not None:
                row["p_analytic"] = float(self.analytic_pvalues[i, j])
            if self.pvalues is not None:
                row["p"] = float(self.pvalues[i, j])
            pairs.append(row)
        return pairs


def _as_features(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise QxaiError(
            f"{what} must be (samples, features), got shape {x.shape}; pool maps to one value first"
        )
    return x


def _constant(x: np.ndarray) -> np.ndarray:
    scale = np.maximum(1.0, np.abs(x).max(axis=0))
    return np.ptp(x, axis=0) <= 1e-12 * scale


def copula_normal(x: np.ndarray) -> np.ndarray:
    """Columns of ``x`` ``(N, D)`` mapped to standard-normal scores of their ranks, then standardised.

    Ties share their average rank; constant columns become zeros.
    """
    n = len(x)
    z = ndtri(rankdata(x, axis=0) / (n + 1))
    z -= z.mean(axis=0, keepdims=True)
    sd = z.std(axis=0, keepdims=True)
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)
    z[:, _constant(x)] = 0.0
    return z


def _gcmi_from_scores(zx: np.ndarray, zy: np.ndarray) -> np.ndarray:
    r = zx.T @ zy / len(zx)
    return -0.5 * np.log1p(-np.minimum(r * r, 1.0 - 1e-12))


def _one_hot_bins(x: np.ndarray, bins: int) -> np.ndarray:
    """``(N, D·bins)`` one-hot equal-frequency bin membership (float32, for fast products)."""
    n, d = x.shape
    codes = np.minimum((rankdata(x, axis=0, method="ordinal") - 1) * bins // n, bins - 1).astype(np.int64)
    codes[:, _constant(x)] = 0  # a constant feature sits in one bin: its MI is exactly 0
    onehot = np.zeros((n, d * bins), dtype=np.float32)
    onehot[np.arange(n)[:, None], codes + bins * np.arange(d)[None, :]] = 1.0
    return onehot


def _binned_from_onehot(bx: np.ndarray, by: np.ndarray, bins: int) -> np.ndarray:
    n = len(bx)
    dx, dy = bx.shape[1] // bins, by.shape[1] // bins
    joint = (bx.T @ by).astype(np.float64).reshape(dx, bins, dy, bins) / n
    px = bx.sum(axis=0).reshape(dx, bins, 1, 1) / n
    py = by.sum(axis=0).reshape(1, 1, dy, bins) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (px * py)), 0.0)
    return np.maximum(terms.sum(axis=(1, 3)), 0.0)


def analytic_pvalues(mi: np.ndarray, samples: int, df: int) -> np.ndarray:
    """``P(χ²_df ≥ 2N·MI)``: the asymptotic null of an MI estimate in nats from ``samples`` = N.

    >>> float(analytic_pvalues(np.array([0.0]), 100, 1)[0])
    1.0
    >>> round(float(analytic_pvalues(np.array([3.841458820694124 / 200]), 100, 1)[0]), 6)  # χ²₁ 95 %
    0.05
    """
    from scipy.stats import chi2

    return chi2.sf(2.0 * samples * np.maximum(np.asarray(mi, dtype=np.float64), 0.0), df)


def fdr_significant(pvalues: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Boolean mask (same shape) of the p-values rejected by Benjamini–Hochberg at level ``alpha``.

    >>> fdr_significant(np.array([0.001, 0.02, 0.04, 0.5])).tolist()
    [True, True, False, False]
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(pvalues, dtype=np.float64)
    if p.size == 0:
        return np.zeros(p.shape, dtype=bool)
    return (false_discovery_control(p.ravel(), method="bh") <= alpha).reshape(p.shape)


def mutual_information_matrix(
    x: np.ndarray, y: np.ndarray, *, method: str = "gcmi", bins: int = 8, permutations: int = 0, seed: int = 0
) -> MutualInfo:
    """MI (nats) between every column of ``x`` ``(N, Dx)`` and every column of ``y`` ``(N, Dy)``.

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(4000, 1))
    >>> b = 0.6 * a + 0.8 * rng.normal(size=(4000, 1))     # correlation 0.6
    >>> r = mutual_information_matrix(a, np.hstack([b, rng.normal(size=(4000, 1))]), permutations=50)
    >>> round(float(r.mi[0, 0]), 2), round(gaussian_mi(0.6), 2), bool(r.pvalues[0, 0] < 0.05)
    (0.22, 0.22, True)
    >>> bool(r.analytic_pvalues[0, 0] < 1e-100), r.df   # no 1/(1 + permutations) floor
    (True, 1)
    """
    if method not in METHODS:
        raise unknown_name("MI method", method, METHODS)
    x, y = _as_features(x, "x"), _as_features(y, "y")
    if len(x) != len(y):
        raise QxaiError(f"x has {len(x)} samples and y has {len(y)}; give activations of the same inputs")
    if len(x) < MI_MIN_SAMPLES:
        raise QxaiError(
            f"mutual information needs at least {MI_MIN_SAMPLES} samples, got {len(x)}; use more inputs"
        )
    if method == "binned" and not 2 <= bins <= len(x) // 2:
        raise QxaiError(
            f"binned MI with {bins} bins needs at least {2 * bins} samples (two per bin), got {len(x)}; "
            "use more inputs or the gcmi method"
        )
    if permutations < 0:
        raise QxaiError(f"permutations must be ≥ 0, got {permutations}")
    if method == "gcmi":
        fx, fy = copula_normal(x), copula_normal(y)

        def estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return _gcmi_from_scores(a, b)
    else:
        fx, fy = _one_hot_bins(x, bins), _one_hot_bins(y, bins)

        def estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return _binned_from_onehot(a, b, bins)

    ceiling = float(np.log(len(x)))  # no estimate from N samples can carry more than ln N nats
    mi = estimate(fx, fy)
    at_ceiling = int((mi >= ceiling).sum())
    mi = np.minimum(mi, ceiling)
    cx, cy = np.flatnonzero(_constant(x)), np.flatnonzero(_constant(y))
    mi[cx, :] = 0.0
    mi[:, cy] = 0.0
    df = 1 if method == "gcmi" else (bins - 1) ** 2
    analytic = analytic_pvalues(mi, len(x), df)
    pvalues = None
    if permutations:
        rng = numpy_rng(seed, "mi-permutations")
        exceed = np.zeros_like(mi)
        # both transforms commute with shuffling the samples, so permuting the transformed rows of y
        # is the same as transforming a permuted y, and costs one product per permutation
        for _ in range(permutations):
            exceed += np.minimum(estimate(fx, fy[rng.permutation(len(fy))]), ceiling) >= mi - 1e-12
        pvalues = (1.0 + exceed) / (1.0 + permutations)
        pvalues[cx, :] = 1.0
        pvalues[:, cy] = 1.0
    return MutualInfo(
        mi, pvalues, method, permutations, cx.tolist(), cy.tolist(), analytic, df, len(x), at_ceiling,
        analytic_null_valid(method, len(x), bins),
    )  # fmt: skip


def gaussian_mi(rho: float) -> float:
    """The closed form ``−½ log(1 − ρ²)`` (nats) for a bivariate normal with correlation ``rho``.

    >>> round(gaussian_mi(0.0), 6)
    0.0
    """
    return float(-0.5 * np.log1p(-rho * rho))


def ksg_mi(x: np.ndarray, y: np.ndarray, n_neighbors: int = 3, seed: int = 0) -> float:
    """The k-NN (KSG) estimate of ``I(x; y)`` for two 1-D samples, via scikit-learn (the reference).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=2000)
    >>> abs(ksg_mi(a, 0.6 * a + 0.8 * rng.normal(size=2000)) - gaussian_mi(0.6)) < 0.05
    True
    """
    from sklearn.feature_selection import mutual_info_regression

    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y, dtype=np.float64).ravel()
    return float(mutual_info_regression(x, y, n_neighbors=n_neighbors, random_state=seed)[0])
