"""The spectrum of a layer: how many directions its activations really use.

For activations ``X`` ``(N, D)`` (N samples, D units) centred per unit, the SVD ``Xc = U Σ Vᵀ``
gives the principal components. From the singular values ``σ``:

* explained-variance ratios ``r_i = σ_i² / Σ σ²`` and their cumulative share of the top ``k``;
* the **effective rank** of Roy & Vetterli (2007): ``exp(H(p))`` with ``p_i = σ_i / Σ σ`` (singular
  values, not their squares), between 1 (one direction) and ``rank X``;
* the **density-matrix view** (ours): ``ρ = C / tr C`` with ``C = Xcᵀ Xc / N`` the covariance.
  ``ρ`` is symmetric, positive semi-definite with unit trace, i.e. a valid quantum density matrix;
  its eigenvalues are exactly ``r_i``. The von Neumann entropy ``S = −Σ r_i log r_i`` (nats) and the
  purity ``tr ρ² = Σ r_i²`` summarise how spread the representation is: a "pure state" (purity 1,
  S = 0) is a layer that varies along one direction only. ``exp(S)`` is the effective rank computed
  on variances instead of singular values.

The top-k share of a finite sample is an estimate: :func:`top_k_share_interval` gives its
percentile-bootstrap interval over samples (rows resampled with replacement, seeded).

Constant activations (zero variance) have no spectrum: every number is reported as 0 and the
``constant`` flag is set, so that no NaN reaches a figure or a JSON file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qxai.seeding import numpy_rng

# relative threshold below which a singular value is numerical noise (float64 SVD of float32 data)
_RANK_TOL = 1e-6


@dataclass
class LayerSpectrum:
    """The spectrum of one layer's activations ``(N, D)``.

    Attributes:
        singular_values: ``(min(N, D),)`` descending, of the centred activations.
        explained_variance_ratio: ``(min(N, D),)`` ``σ² / Σ σ²`` (the eigenvalues of ``ρ``).
        cumulative: ``(min(N, D),)`` running sum of ``explained_variance_ratio``.
        effective_rank: Roy & Vetterli ``exp(H(σ / Σσ))``.
        entropy: von Neumann entropy of ``ρ = C / tr C`` in nats.
        purity: ``tr ρ²``.
        numerical_rank: number of singular values above ``1e-6 · σ_max``.
        dead_units: indices of units that are constant over the samples (e.g. ReLUs never active).
        constant: every unit is constant: the spectrum is empty and the numbers above are 0.
    """

    singular_values: np.ndarray
    explained_variance_ratio: np.ndarray
    cumulative: np.ndarray
    effective_rank: float
    entropy: float
    purity: float
    numerical_rank: int
    dead_units: list[int] = field(default_factory=list)
    constant: bool = False

    @property
    def width(self) -> int:
        return len(self.singular_values)

    def top_k_share(self, k: int) -> float:
        """Cumulative explained-variance share of the top ``k`` components (0 for constant input)."""
        if self.constant or self.width == 0:
            return 0.0
        return float(self.cumulative[min(k, self.width) - 1])

    def summary(self, k: int = 5) -> dict[str, Any]:
        """JSON-able headline numbers."""
        return {
            f"top{k}_share": self.top_k_share(k),
            "effective_rank": self.effective_rank,
            "entropy": self.entropy,
            "purity": self.purity,
            "numerical_rank": self.numerical_rank,
            "dead_units": len(self.dead_units),
            "constant": self.constant,
            "width": self.width,
        }


def _as_matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        x = x.reshape(len(x), -1)  # spatially kept maps: every (channel, position) is a unit
    return x


def layer_spectrum(x: np.ndarray) -> LayerSpectrum:
    """The spectrum of activations ``x`` ``(N, D)`` (higher ranks are flattened to ``(N, −1)``).

    >>> rng = np.random.default_rng(0)
    >>> s = layer_spectrum(rng.normal(size=(500, 3)) * [10.0, 1.0, 0.1])
    >>> round(s.top_k_share(1), 2), s.numerical_rank
    (0.99, 3)
    >>> layer_spectrum(np.ones((10, 4))).constant
    True
    """
    x = _as_matrix(x)
    n, d = x.shape
    xc = x - x.mean(axis=0, keepdims=True)
    spread = np.abs(xc).max(axis=0) if n else np.zeros(d)
    scale = max(1.0, float(np.abs(x).max())) if x.size else 1.0
    dead = np.flatnonzero(spread <= 1e-12 * scale).tolist()
    width = min(n, d)
    if n < 2 or len(dead) == d:
        zeros = np.zeros(width)
        return LayerSpectrum(zeros, zeros.copy(), zeros.copy(), 0.0, 0.0, 0.0, 0, dead, True)
    # the SVD of the smaller side: Xc (N×D) when D ≤ N, else via its N×N Gram matrix
    if d <= n:
        sv = np.linalg.svd(xc, compute_uv=False)
    else:
        eig = np.linalg.eigvalsh(xc @ xc.T)[::-1]
        sv = np.sqrt(np.clip(eig, 0.0, None))
    sv = sv[:width]
    var = sv**2
    ratio = var / var.sum()
    p = sv / sv.sum()
    nz = p > 0
    erank = float(np.exp(-(p[nz] * np.log(p[nz])).sum()))
    rz = ratio > 0
    entropy = float(-(ratio[rz] * np.log(ratio[rz])).sum())
    return LayerSpectrum(
        singular_values=sv,
        explained_variance_ratio=ratio,
        cumulative=np.cumsum(ratio),
        effective_rank=erank,
        entropy=entropy,
        purity=float((ratio**2).sum()),
        numerical_rank=int((sv > _RANK_TOL * sv[0]).sum()),
        dead_units=dead,
        constant=False,
    )


def density_matrix(x: np.ndarray) -> np.ndarray:
    """``ρ = C / tr C`` ``(D, D)`` from the covariance of ``x`` ``(N, D)``; zeros for constant input.

    >>> rho = density_matrix(np.random.default_rng(0).normal(size=(50, 4)))
    >>> round(float(np.trace(rho)), 6)
    1.0
    """
    xc = _as_matrix(x)
    xc = xc - xc.mean(axis=0, keepdims=True)
    cov = xc.T @ xc / max(1, len(xc))
    tr = float(np.trace(cov))
    return cov / tr if tr > 0 else np.zeros_like(cov)


def top_k_share_interval(
    x: np.ndarray, k: int, *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Bootstrap interval (basic, i.e. reverse-percentile) of the top-``k`` explained-variance share
    of ``x`` ``(N, D)`` over its samples.

    Each resample draws N rows with replacement (as integer weights ``w``), re-centres with the
    weighted mean and takes the top ``k`` eigenvalues of the weighted covariance — of ``XcᵀWXc``
    ``(D × D)`` when D ≤ N, else of ``W½XcXcᵀW½`` ``(N × N)``, which has the same nonzero
    eigenvalues — over its trace. The interval is ``[2θ̂ − q_hi, 2θ̂ − q_lo]`` (``q``: quantiles of
    the resampled shares): the sample top-k share is biased upwards (the largest sample
    eigenvalues overshoot), the resamples overshoot θ̂ by about as much, and the basic interval
    subtracts that. Measured coverage of a nominal 95 % interval (N = 500, D = 20, 200 draws):
    0.93 for separated spectra, 0.89 for a flat one (where the top-k set itself is unstable); the
    plain percentile interval covered 0.80 and 0.00. None when there is nothing to resample
    (N < 2, constant input, ``resamples`` 0).

    >>> rng = np.random.default_rng(0)
    >>> lo, hi = top_k_share_interval(rng.normal(size=(400, 6)) * [3, 1, 1, 1, 1, 1], 1, resamples=200)
    >>> bool(lo < 9 / 14 < hi), bool(hi - lo < 0.15)
    (True, True)
    """
    from scipy.linalg import eigh
    from threadpoolctl import threadpool_limits

    x = _as_matrix(x)
    n, d = x.shape
    if resamples < 1 or n < 2 or not 0 < level < 1:
        return None
    if layer_spectrum(x).constant:
        return None
    k = max(1, min(k, n, d))
    rng = numpy_rng(seed, "spectrum-bootstrap")
    shares = np.empty(resamples)
    # one BLAS thread: each product/eigensolve takes milliseconds, too little to pay for a late
    # thread on a shared machine (measured 4.5 ms vs 32 ms per resample at 500 × 128 under load)
    with threadpool_limits(1):
        shares = _bootstrap_shares(x, k, resamples, rng, eigh)
    estimate = layer_spectrum(x).top_k_share(k)
    q_lo, q_hi = np.quantile(shares, [(1 - level) / 2, (1 + level) / 2])
    return float(max(0.0, 2 * estimate - q_hi)), float(min(1.0, 2 * estimate - q_lo))


def _bootstrap_shares(
    x: np.ndarray, k: int, resamples: int, rng: np.random.Generator, eigh: Any
) -> np.ndarray:
    n, d = x.shape
    shares = np.empty(resamples)
    for b in range(resamples):
        w = np.bincount(rng.integers(n, size=n), minlength=n).astype(np.float64)
        xc = (x - (w @ x) / n) * np.sqrt(w)[:, None]
        m = xc @ xc.T if d > n else xc.T @ xc
        trace = float(np.einsum("ij,ij->", xc, xc))
        top = eigh(m, eigvals_only=True, subset_by_index=[len(m) - k, len(m) - 1])
        shares[b] = min(1.0, float(np.clip(top, 0.0, None).sum()) / trace) if trace > 0 else 0.0
    return shares
