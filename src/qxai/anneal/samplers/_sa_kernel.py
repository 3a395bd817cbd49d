"""The compiled CPU kernel of batch-sa: Metropolis sweeps over padded QUBOs, dense rows or neighbour
lists (numba), in rounds of reads that stop when a doubling of the sweeps finds nothing lower.

Why compiled rather than torch on the CPU: a flip is rare at low temperature, and updating the local
fields only after a flip costs ``O(d)`` per flip (``O(degree)`` from neighbour lists), whereas a
vectorised update touches every field of every read at every step (``O(d²)`` per sweep). Each
problem has its own counter-based random stream (splitmix64 of ``seed`` and the problem's index),
so the result does not depend on how numba spreads problems over threads.
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


@numba.njit(cache=True)
def csr_kernel(q: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour lists of padded symmetric ``Q`` (n, D, D): ``ptr`` (n, D + 1) int64 absolute offsets
    into ``idx`` (T,) int64 and ``val`` (T,) float64; the neighbours of bit ``p`` of problem ``i`` are
    ``idx[ptr[i, p]:ptr[i, p + 1]]`` (non-zero couplings only, in increasing order)."""
    n, d_max = q.shape[0], q.shape[1]
    ptr = np.zeros((n, d_max + 1), dtype=np.int64)
    total = 0
    for i in range(n):
        for p in range(d_max):
            ptr[i, p] = total
            if p < sizes[i]:
                for k in range(sizes[i]):
                    if q[i, p, k] != 0.0:
                        total += 1
        ptr[i, d_max] = total
    idx = np.empty(total, dtype=np.int64)
    val = np.empty(total)
    t = 0
    for i in range(n):
        for p in range(sizes[i]):
            for k in range(sizes[i]):
                if q[i, p, k] != 0.0:
                    idx[t] = k
                    val[t] = q[i, p, k]
                    t += 1
    return ptr, idx, val


@numba.njit(cache=True, inline="always")
def _flip(f: np.ndarray, a: float, qi: np.ndarray, p: int, d: int, sparse: bool,
          ptr: np.ndarray, idx: np.ndarray, val: np.ndarray) -> None:  # fmt: skip
    """Fields after flipping bit ``p``: ``f += a · Q[p]`` (dense row, or its neighbour list)."""
    if sparse:
        for t in range(ptr[p], ptr[p + 1]):
            f[idx[t]] += a * val[t]
    else:
        _axpy(f, a, qi[p], d)


@numba.njit(cache=True, parallel=True)
def anneal_kernel(
    h: np.ndarray,  # (n, D) float64 linear biases, zero-padded
    q: np.ndarray,  # (n, D, D) float64 symmetric couplings, zero diagonal, zero-padded (dense kernel)
    ptr: np.ndarray,  # (n, D + 1) int64 neighbour-list offsets (sparse kernel; see csr_kernel)
    idx: np.ndarray,  # (T,) int64 neighbours
    val: np.ndarray,  # (T,) float64 their couplings
    sparse: bool,  # update fields from the neighbour lists (else from the dense rows of q)
    sizes: np.ndarray,  # (n,) int64 true number of variables
    ranges: np.ndarray,  # (n, 2) float64 (β_hot, β_cold) per problem
    geometric: bool,  # geometric (else linear) spacing of β between its ends
    tol: np.ndarray,  # (n,) float64 flips must gain more than this in the greedy phase
    etol: np.ndarray,  # (n,) float64 energies closer than this count as equal in the stopping rule
    round_reads: int,  # reads per round
    max_reads: int,  # reads at most
    first_sweeps: int,  # sweeps per read in the first round; doubled every round …
    max_sweeps: int,  # … up to this many
    agree: int,  # stop after a round that did not lower the best energy once this many reads hold it
    quorum: int,  # stop after any round once this many reads hold the best energy
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anneal every problem in rounds of ``round_reads`` reads; returns ``(n, max_reads, D)`` int8
    BINARY states, the reads done ``(n,)`` and the sweeps of the last round ``(n,)``.

    Round ``k`` anneals with ``min(first_sweeps · 2^k, max_sweeps)`` sweeps. A problem stops after a
    round when the lowest energy found so far (from the running fields, equal within ``etol``) was
    not lowered by that round — a doubling of the sweeps did not help — and
    at least ``agree`` reads reached it, or after any round once ``quorum`` reads reached it; else
    at ``max_reads``. With ``round_reads == max_reads``
    this is one fixed-budget round. The decisions use only the problem's own random stream, so the
    result does not depend on the thread count.

    The state is kept as ``s = 1 − 2x`` (+1 where the bit is off), so that flipping bit ``p``
    costs ``s_p f_p`` and updates the fields by ``s_p Q[p]`` (before ``s_p`` changes sign).
    """
    n, d_max = h.shape
    out = np.zeros((n, max_reads, d_max), dtype=np.int8)
    done = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        d = sizes[i]
        qi, hi, pi, floor, eq = q[i], h[i], ptr[i], -tol[i], etol[i]
        hot, cold = ranges[i, 0], ranges[i, 1]
        state = np.uint64(seed) * _GOLDEN + np.uint64(i + 1) * _M1
        s = np.empty(d)
        f = np.empty(d)
        betas = np.empty(max_sweeps)
        best = np.inf
        hits = 0
        r = 0
        sweeps = min(first_sweeps, max_sweeps)
        while r < max_reads:
            for t in range(sweeps):
                frac = t / (sweeps - 1) if sweeps > 1 else 0.0
                betas[t] = hot * (cold / hot) ** frac if geometric else hot + (cold - hot) * frac
            lowered = False
            for _ in range(min(round_reads, max_reads - r)):
                for p in range(d):  # local fields f = h + Q x, one row per set bit
                    f[p] = hi[p]
                for p in range(d):
                    state, u = _splitmix(state)
                    if u < 0.5:
                        s[p] = -1.0
                        _flip(f, 1.0, qi, p, d, sparse, pi, idx, val)
                    else:
                        s[p] = 1.0
                for t in range(sweeps):
                    beta = betas[t]
                    limit = 40.0 / beta  # acceptance below e^-40: skip the random draw
                    for p in range(d):
                        sp = s[p]
                        cost = sp * f[p]
                        if cost > 0.0:
                            if cost > limit:
                                continue
                            state, u = _splitmix(state)
                            x = beta * cost  # accept with probability e^-x; 1 − x ≤ e^-x ≤ 1/(1 + x)
                            if u >= 1.0 - x and (u * (1.0 + x) >= 1.0 or u >= math.exp(-x)):
                                continue
                        s[p] = -sp
                        _flip(f, sp, qi, p, d, sparse, pi, idx, val)
                changed = True
                while changed:  # greedy descent to a local minimum (strictly downhill flips)
                    changed = False
                    for p in range(d):
                        sp = s[p]
                        if sp * f[p] < floor:
                            s[p] = -sp
                            _flip(f, sp, qi, p, d, sparse, pi, idx, val)
                            changed = True
                energy = 0.0  # h·x + ½ xᵀQx = ½ Σ_p x_p (h_p + f_p), from the running fields
                for p in range(d):
                    if s[p] < 0.0:
                        out[i, r, p] = 1
                        energy += hi[p] + f[p]
                energy *= 0.5
                if energy < best - eq:
                    best, hits, lowered = energy, 1, True
                elif energy <= best + eq:
                    hits += 1
                r += 1
            last[i] = sweeps
            if hits >= quorum or (not lowered and hits >= agree):
                break
            sweeps = min(2 * sweeps, max_sweeps)
        done[i] = r
    return out, done, last


@numba.njit(cache=True)
def energies_kernel(
    x: np.ndarray,  # (n, R, D) int8 BINARY states
    done: np.ndarray,  # (n,) int64 reads to evaluate per problem (the first ``done[i]`` rows)
    h: np.ndarray,  # (n, D) float64
    q: np.ndarray,  # (n, D, D) float64 symmetric, zero diagonal
    offsets: np.ndarray,  # (n,) float64
) -> np.ndarray:
    """``offset + h·x + Σ_{p<k} Q_pk x_p x_k`` of the first ``done[i]`` reads of each problem, in
    float64 from the biases (never from an annealing kernel's running fields) → (n, R), 0 elsewhere."""
    n, reads, d_max = x.shape
    out = np.zeros((n, reads))
    on = np.empty(d_max, dtype=np.int64)
    for i in range(n):
        for r in range(done[i]):
            m = 0
            for p in range(d_max):
                if x[i, r, p]:
                    on[m] = p
                    m += 1
            e = offsets[i]
            for a in range(m):
                p = on[a]
                e += h[i, p]
                for b in range(a):
                    e += q[i, p, on[b]]
            out[i, r] = e
    return out
