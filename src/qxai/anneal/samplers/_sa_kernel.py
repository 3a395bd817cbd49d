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


#: Acceptance probabilities below 2^-32, the resolution of the uniforms, are treated as 0: a move
#: with ``β · cost > ln 2^32`` is rejected without a draw.
_SKIP = 32.0 * math.log(2.0)
_TWO_M32 = 1.0 / 4294967296.0
_LOW32 = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, inline="always")
def _uniform(state: np.uint64, spare: float) -> tuple[np.uint64, float, float]:
    """A uniform float in [0, 1) of 32 random bits: the spare half of the last splitmix64 output
    when there is one (``spare ≥ 0``), else the high half of a new one, keeping the low half.
    Returns ``(state, spare, u)``; ``spare = -1`` means none is left. Half the splitmix calls of
    one 53-bit uniform per draw, and the acceptance test needs no finer grain (:data:`_SKIP`)."""
    if spare >= 0.0:
        return state, -1.0, spare
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    # through int64: the values fit in 32 bits, and x86 has no single uint64 → double conversion
    high = float(np.int64(z >> np.uint64(32))) * _TWO_M32
    return state, float(np.int64(z & _LOW32)) * _TWO_M32, high


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
def bias_scales_kernel(
    h: np.ndarray, q: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per problem: the largest flip cost ``max_p |h_p| + Σ_k |Q_pk|``, the median over variables
    of the smallest non-zero ``|bias|`` touching each (NaN when there is none) and the typical flip
    cost (:func:`_typical`; NaN when all biases are zero) → (n,), (n,), (n,).

    The compiled twin of the numpy in ``batch_sa._max_cost`` and ``_beta_ranges`` (tested equal).
    """
    n = h.shape[0]
    max_cost = np.zeros(n)
    median = np.full(n, np.nan)
    typical = np.full(n, np.nan)
    smallest = np.empty(h.shape[1])
    for i in range(n):
        d = sizes[i]
        count = 0
        rms_sum, rms_count = 0.0, 0
        for p in range(d):
            a = abs(h[i, p])
            total = a
            low = a if a > 0.0 else np.inf
            pull, square = 0.0, 0.0
            for k in range(d):
                v = q[i, p, k]
                b = abs(v)
                total += b
                pull += v
                square += v * v
                if 0.0 < b < low:
                    low = b
            max_cost[i] = max(max_cost[i], total)
            if low < np.inf:
                smallest[count] = low
                count += 1
            rms = _typical(h[i, p], pull, square)
            if rms > 0.0:
                rms_sum += rms
                rms_count += 1
        if count:
            ordered = np.sort(smallest[:count])
            median[i] = (ordered[(count - 1) // 2] + ordered[count // 2]) / 2
        if rms_count:
            typical[i] = rms_sum / rms_count
    return max_cost, median, typical


@numba.njit(cache=True, inline="always")
def _typical(h: float, pull: float, square: float) -> float:
    """The RMS flip cost of a variable in a uniformly random state: its field ``h + Σ_k Q_k x_k``
    with ``x_k`` fair coins has mean ``h + ½ Σ Q_k`` (``pull`` = Σ Q_k) and variance ``¼ Σ Q_k²``
    (``square``), so ``E[f²] = (h + ½ pull)² + ¼ square``. Averaged over the variables it is the
    scale of the moves at the start of an anneal, which the largest possible cost overstates
    several-fold on the planted QUBOs (BENCHMARKS.md, P2b)."""
    m = h + 0.5 * pull
    return math.sqrt(m * m + 0.25 * square)


@numba.njit(cache=True)
def csr_pad_kernel(
    linear: np.ndarray,  # (L,) float64 linear biases of all models, model by model
    rows: np.ndarray,  # (P,) int64 positions within their model
    cols: np.ndarray,  # (P,)
    values: np.ndarray,  # (P,) float64
    var_start: np.ndarray,  # (m + 1,) int64
    pair_start: np.ndarray,  # (m + 1,) int64
    members: np.ndarray,  # (n,) int64 the models to lay out
    d_max: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zero-padded ``h`` (n, d_max) and the neighbour lists ``ptr`` (n, d_max + 1), ``idx`` (T,),
    ``val`` (T,) of models ``members`` straight from their pairs, never forming the dense ``Q``
    (which costs n·d² for a few per cent of non-zeros). Each list is in increasing neighbour order,
    so that the energies add their terms in the dense kernels' order (tested bit-identical)."""
    n = len(members)
    h = np.zeros((n, d_max))
    ptr = np.zeros((n, d_max + 1), dtype=np.int64)
    degree = np.zeros((n, d_max), dtype=np.int64)
    for j in range(n):
        i = members[j]
        for p in range(var_start[i + 1] - var_start[i]):
            h[j, p] = linear[var_start[i] + p]
        for t in range(pair_start[i], pair_start[i + 1]):
            if values[t] != 0.0:
                degree[j, rows[t]] += 1
                degree[j, cols[t]] += 1
    total = 0
    for j in range(n):
        for p in range(d_max):
            ptr[j, p] = total
            total += degree[j, p]
        ptr[j, d_max] = total
    idx = np.empty(total, dtype=np.int64)
    val = np.empty(total)
    fill = np.zeros(d_max, dtype=np.int64)
    for j in range(n):
        i = members[j]
        for p in range(d_max):
            fill[p] = ptr[j, p]
        for t in range(pair_start[i], pair_start[i + 1]):
            v = values[t]
            if v != 0.0:
                a, b = rows[t], cols[t]
                idx[fill[a]] = b
                val[fill[a]] = v
                fill[a] += 1
                idx[fill[b]] = a
                val[fill[b]] = v
                fill[b] += 1
        for p in range(d_max):  # insertion sort of each short list by neighbour
            for u in range(ptr[j, p] + 1, ptr[j, p + 1]):
                key, kv = idx[u], val[u]
                w = u - 1
                while w >= ptr[j, p] and idx[w] > key:
                    idx[w + 1], val[w + 1] = idx[w], val[w]
                    w -= 1
                idx[w + 1], val[w + 1] = key, kv
    return h, ptr, idx, val


@numba.njit(cache=True)
def csr_scales_kernel(
    h: np.ndarray, ptr: np.ndarray, idx: np.ndarray, val: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bias_scales_kernel` from neighbour lists (:func:`csr_pad_kernel`): the same three
    scales, summed in the same order over the non-zero couplings."""
    n = h.shape[0]
    max_cost = np.zeros(n)
    median = np.full(n, np.nan)
    typical = np.full(n, np.nan)
    smallest = np.empty(h.shape[1])
    for i in range(n):
        count = 0
        rms_sum, rms_count = 0.0, 0
        for p in range(sizes[i]):
            a = abs(h[i, p])
            total = a
            low = a if a > 0.0 else np.inf
            pull, square = 0.0, 0.0
            for t in range(ptr[i, p], ptr[i, p + 1]):
                v = val[t]
                b = abs(v)
                total += b
                pull += v
                square += v * v
                if 0.0 < b < low:
                    low = b
            max_cost[i] = max(max_cost[i], total)
            if low < np.inf:
                smallest[count] = low
                count += 1
            rms = _typical(h[i, p], pull, square)
            if rms > 0.0:
                rms_sum += rms
                rms_count += 1
        if count:
            ordered = np.sort(smallest[:count])
            median[i] = (ordered[(count - 1) // 2] + ordered[count // 2]) / 2
        if rms_count:
            typical[i] = rms_sum / rms_count
    return max_cost, median, typical


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
    ptr: np.ndarray,  # (n, D + 1) int64 neighbour-list offsets (sparse kernel; see csr_pad_kernel)
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
        spare = -1.0
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
                    state, spare, u = _uniform(state, spare)
                    if u < 0.5:
                        s[p] = -1.0
                        _flip(f, 1.0, qi, p, d, sparse, pi, idx, val)
                    else:
                        s[p] = 1.0
                for t in range(sweeps):
                    beta = betas[t]
                    limit = _SKIP / beta  # acceptance below 2^-32: skip the random draw
                    for p in range(d):
                        sp = s[p]
                        cost = sp * f[p]
                        if cost > 0.0:
                            if cost > limit:
                                continue
                            state, spare, u = _uniform(state, spare)
                            # accept with probability e^-x, deciding from the bounds
                            # 1 − x + x²/2 − x³/6 ≤ e^-x ≤ 1/(1 + x + x²/2) where they suffice
                            # (most draws on the planted loops), else from exp itself
                            x = beta * cost
                            if u * (1.0 + x * (1.0 + 0.5 * x)) >= 1.0:
                                continue
                            if u >= 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0))) and u >= math.exp(-x):
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


@numba.njit(cache=True)
def csr_energies_kernel(
    x: np.ndarray,  # (n, R, D) int8 BINARY states
    done: np.ndarray,  # (n,) int64
    h: np.ndarray,  # (n, D) float64
    ptr: np.ndarray,  # (n, D + 1) int64 neighbour lists in increasing order (csr_pad_kernel)
    idx: np.ndarray,
    val: np.ndarray,
    offsets: np.ndarray,  # (n,) float64
) -> np.ndarray:
    """:func:`energies_kernel` from neighbour lists: the same non-zero terms added in the same
    order (set bits ascending, each with its lower set neighbours ascending) → (n, R)."""
    n, reads, d_max = x.shape
    out = np.zeros((n, reads))
    for i in range(n):
        for r in range(done[i]):
            e = offsets[i]
            for p in range(d_max):
                if x[i, r, p]:
                    e += h[i, p]
                    for t in range(ptr[i, p], ptr[i, p + 1]):
                        k = idx[t]
                        if k >= p:
                            break
                        if x[i, r, k]:
                            e += val[t]
            out[i, r] = e
    return out
