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
    """Anneal every problem ``reads`` times; returns ``(n, reads, D)`` int8 BINARY states."""
    n, d_max = h.shape
    sweeps = betas.shape[1]
    out = np.zeros((n, reads, d_max), dtype=np.int8)
    for i in numba.prange(n):
        d = sizes[i]
        state = np.uint64(seed) * _GOLDEN + np.uint64(i + 1) * _M1
        x = np.zeros(d, dtype=np.int8)
        f = np.zeros(d)
        for r in range(reads):
            for p in range(d):
                state, u = _splitmix(state)
                x[p] = 1 if u < 0.5 else 0
            for p in range(d):  # local fields f = h + Q x
                acc = h[i, p]
                for k in range(d):
                    if x[k]:
                        acc += q[i, p, k]
                f[p] = acc
            for t in range(sweeps):
                beta = betas[i, t]
                for p in range(d):
                    sign = 1.0 - 2.0 * x[p]
                    cost = sign * f[p]
                    if cost > 0.0:
                        if beta * cost > 40.0:  # acceptance below e^-40: skip the random draw
                            continue
                        state, u = _splitmix(state)
                        if u >= math.exp(-beta * cost):
                            continue
                    x[p] = 1 - x[p]
                    for k in range(d):
                        f[k] += sign * q[i, p, k]
            changed = True
            while changed:  # greedy descent to a local minimum (strictly downhill flips)
                changed = False
                for p in range(d):
                    sign = 1.0 - 2.0 * x[p]
                    if sign * f[p] < -tol[i]:
                        x[p] = 1 - x[p]
                        for k in range(d):
                            f[k] += sign * q[i, p, k]
                        changed = True
            for p in range(d):
                out[i, r, p] = x[p]
    return out
