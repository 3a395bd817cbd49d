"""The compiled CPU kernel of batch-sa: Metropolis sweeps over padded dense QUBOs (numba).

Why compiled rather than torch on the CPU: a flip is rare at low temperature, and updating the local
fields only after a flip costs ``O(d)`` per flip, whereas a vectorised update touches every field of
every read at every step (``O(d²)`` per sweep). Each problem has its own counter-based random
stream (splitmix64 of ``seed`` and the problem's index), so the result does not depend on how numba
spreads problems over threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def _splitmix(state: np.uint64) -> tuple[np.uint64, float]:
    """Next state and a uniform float in [0, 1) (53 random bits)."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return state, float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, fastmath=True, inline="always")
def _axpy(f: np.ndarray, a: float, row: np.ndarray, d: int) -> None:
    """``f[:d] += a · row[:d]``; fastmath lets LLVM vectorise it (no reduction, so no reordering)."""
    for k in range(d):
        f[k] += a * row[k]


@numba.njit(cache=True)
def pad_kernel(
    linear: np.ndarray,  # (L,) float64 linear biases of all models, model by model
    rows: np.ndarray,  # (P,) int64 positions within their model
    cols: np.ndarray,  # (P,)
    values: np.ndarray,  # (P,) float64
    var_start: np.ndarray,  # (m + 1,) int64 where each model's variables start in ``linear``
    pair_start: np.ndarray,  # (m + 1,) int64 where each model's pairs start
    members: np.ndarray,  # (n,) int64 the models to pad
    d_max: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded ``h`` (n, d_max) and symmetric ``Q`` (n, d_max, d_max) of models ``members``."""
    n = len(members)
    h = np.zeros((n, d_max))
    q = np.zeros((n, d_max, d_max))
    for j in range(n):
        i = members[j]
        for p in range(var_start[i + 1] - var_start[i]):
            h[j, p] = linear[var_start[i] + p]
        for t in range(pair_start[i], pair_start[i + 1]):
            q[j, rows[t], cols[t]] = values[t]  # a BQM holds each pair once: assignment is safe
            q[j, cols[t], rows[t]] = values[t]
    return h, q


@numba.njit(cache=True)
def bias_scales_kernel(h: np.ndarray, q: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per problem: the largest flip cost ``max_p |h_p| + Σ_k |Q_pk|`` and the median over variables
    of the smallest non-zero ``|bias|`` touching each (NaN when there is none) → (n,), (n,).

    The compiled twin of the numpy in ``batch_sa._max_cost`` and ``_beta_ranges`` (tested equal).
    """
    n = h.shape[0]
    max_cost = np.zeros(n)
    median = np.full(n, np.nan)
    smallest = np.empty(h.shape[1])
    for i in range(n):
        d = sizes[i]
        count = 0
        for p in range(d):
            a = abs(h[i, p])
            total = a
            low = a if a > 0.0 else np.inf
            for k in range(d):
                b = abs(q[i, p, k])
                total += b
                if 0.0 < b < low:
                    low = b
            max_cost[i] = max(max_cost[i], total)
            if low < np.inf:
                smallest[count] = low
                count += 1
        if count:
            ordered = np.sort(smallest[:count])
            median[i] = (ordered[(count - 1) // 2] + ordered[count // 2]) / 2
    return max_cost, median


@numba.njit(cache=True, parallel=True)
def anneal_kernel(
    h: np.ndarray,  # (n, D) float64 linear biases, zero-padded
    q: np.ndarray,  # (n, D, D) float64 symmetric couplings, zero diagonal, zero-padded
    sizes: np.ndarray,  # (n,) int64 true number of variables
    betas: np.ndarray,  # (n, S) float64 inverse temperatures, one schedule per problem
    tol: np.ndarray,  # (n,) float64 flips must gain more than this in the greedy phase
    reads: int,
    seed: int,
) -> np.ndarray:
    """Anneal every problem ``reads`` times; returns ``(n, reads, D)`` int8 BINARY states.

    The state is kept as ``s = 1 − 2x`` (+1 where the bit is off), so that flipping bit ``p``
    costs ``s_p f_p`` and updates the fields by ``s_p Q[p]`` (before ``s_p`` changes sign).
    """
    n, d_max = h.shape
    sweeps = betas.shape[1]
    out = np.zeros((n, reads, d_max), dtype=np.int8)
    for i in numba.prange(n):
        d = sizes[i]
        qi, hi, bi, floor = q[i], h[i], betas[i], -tol[i]
        state = np.uint64(seed) * _GOLDEN + np.uint64(i + 1) * _M1
        s = np.empty(d)
        f = np.empty(d)
        for r in range(reads):
            for p in range(d):  # local fields f = h + Q x, one row per set bit
                f[p] = hi[p]
            for p in range(d):
                state, u = _splitmix(state)
                if u < 0.5:
                    s[p] = -1.0
                    _axpy(f, 1.0, qi[p], d)
                else:
                    s[p] = 1.0
            for t in range(sweeps):
                beta = bi[t]
                limit = 40.0 / beta  # acceptance below e^-40: skip the random draw
                for p in range(d):
                    sp = s[p]
                    cost = sp * f[p]
                    if cost > 0.0:
                        if cost > limit:
                            continue
                        state, u = _splitmix(state)
                        if u >= math.exp(-beta * cost):
                            continue
                    s[p] = -sp
                    _axpy(f, sp, qi[p], d)
            changed = True
            while changed:  # greedy descent to a local minimum (strictly downhill flips)
                changed = False
                for p in range(d):
                    sp = s[p]
                    if sp * f[p] < floor:
                        s[p] = -sp
                        _axpy(f, sp, qi[p], d)
                        changed = True
            for p in range(d):
                out[i, r, p] = 1 if s[p] < 0.0 else 0
    return out
