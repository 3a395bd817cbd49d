"""Certified minima of QUBOs whose couplings are all non-negative (explanation QUBOs), by a branch and
bound that uses that structure; and persistencies (variables fixed in some optimum) of any QUBO.

An explanation QUBO is ``E(x) = offset + Σ_i h_i x_i + Σ_{i<j} J_ij x_i x_j`` with ``h ≤ 0``
(importance) and ``J ≥ 0`` (redundancy). With ``J ≥ 0``:

* **Dominance** (sound, used at every node): the marginal of adding ``j`` to a selection ``S``,
  ``g_j(S) = h_j + Σ_{s∈S} J_sj``, only grows with ``S``. A minimum-cardinality optimum ``T*`` has
  ``g_j(T* \\ {j}) < 0`` for every member, hence ``g_j(S) < 0`` for every ``S ⊂ T*``: a candidate
  whose marginal is ``≥ 0`` is dropped from the subtree without losing that optimum.
* **Bound** (Gilmore–Lawler per cardinality): for any ``R ⊆ F`` of size ``t``,
  ``Σ_{i∈R} g_i + Σ_{i<j∈R} J_ij = Σ_{i∈R} (g_i + ½ Σ_{j∈R∖i} J_ij) ≥`` the sum of the ``t``
  smallest ``c_i(t) = g_i + ½ · (sum of the t − 1 smallest J_ij, j ∈ F∖i)``; the bound is the
  minimum over ``t`` (and 0 for ``R = ∅``). ``c_i(t)`` grows with ``t``, so ``t`` stops once the
  smallest ``c`` is ``≥ 0``.
* **Search**: the set-enumeration tree (children of ``S`` are ``S ∪ {F_p}`` with candidates
  ``F_{p+1…}``), candidates ordered by marginal (the first dive is greedy), depth first; a node's
  remaining siblings are cut as soon as the bound of ``F_{p…}`` cannot beat the incumbent.

Roof duality (``dwave-preprocessing``'s ``roof_duality``) fixes nothing on explanation QUBOs — dense
positive couplings make its LP half-integral everywhere (measured: 0 of 35 / 58 / 136 variables, see
BENCHMARKS.md P2c) — and first-order dominance (:func:`persistencies`) fixes few; both are offered and
tested, the branch and bound does the work.

:func:`branch_and_bound` returns the best solution, a proven lower bound and whether the search
completed; with a time limit that binds, the bound is the least bound of the subtrees left open.
Pruning uses a tolerance of a few float eps times the model's scale (:func:`float_tolerance`): the
proven bound is ``best − tolerance`` when the search completes.

>>> h = np.array([-1.0, -1.0, -0.5]); J = np.array([[0, 3, 0], [3, 0, 0], [0, 0, 0.0]])
>>> r = branch_and_bound(h, J, 0.0)
>>> r.x.tolist(), r.energy, r.optimal
([1, 0, 1], -1.5, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np

from qxai.errors import QxaiError

#: Nodes between two looks at the clock inside the search.
CLOCK_EVERY = 256


def float_tolerance(h: np.ndarray, q: np.ndarray) -> float:
    """Absolute tolerance of the search's energy comparisons: ``4 d ε (Σ|h| + Σ_{i<j}|J_ij|)``, the
    round-off of a sum of at most that many terms (``q`` symmetric, zero diagonal)."""
    d = max(1, len(h))
    scale = float(np.abs(h).sum() + np.abs(q).sum() / 2)
    return 4.0 * d * float(np.finfo(np.float64).eps) * max(1.0, scale)


def persistencies(h: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-order dominance fixings of a BINARY QUBO (any signs), iterated: ``(ones, zeros)`` masks.

    ``x_i = 0`` when its marginal is ``≥ 0`` whatever the free variables do,
    ``h_i + Σ_{j fixed 1} Q_ij + Σ_{j free} min(0, Q_ij) ≥ 0``; ``x_i = 1`` when it is ``≤ 0`` whatever
    they do (``max`` in place of ``min``). Each rule moves any assignment consistent with the earlier
    fixings to one no worse, so applied in turn to an optimum they give an optimum: the fixed values
    hold together in at least one optimum (in every optimum where the inequality is strict).

    >>> q = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0.0]])
    >>> ones, zeros = persistencies(np.array([-2.0, 1.0, -0.5]), q)
    >>> ones.tolist(), zeros.tolist()
    ([True, False, True], [False, True, False])
    """
    h = np.asarray(h, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    d = len(h)
    ones = np.zeros(d, dtype=bool)
    zeros = np.zeros(d, dtype=bool)
    neg, pos = np.minimum(q, 0.0), np.maximum(q, 0.0)
    changed = True
    while changed:
        changed = False
        free = ~(ones | zeros)
        base = h + q[:, ones].sum(1)
        low = base + neg[:, free].sum(1)  # the diagonal is zero: i's own column adds nothing
        high = base + pos[:, free].sum(1)
        for i in np.flatnonzero(free):  # one at a time: each fixing changes the others' sums
            if low[i] >= 0.0 or high[i] <= 0.0:
                (zeros if low[i] >= 0.0 else ones)[i] = True
                changed = True
                break
    return ones, zeros


def roof_duality_fixings(bqm) -> dict:
    """Variables fixed by roof duality (``dwave.preprocessing.roof_duality``, strict: in every optimum),
    ``{label: 0/1}`` in the model's vartype."""
    from dwave.preprocessing import roof_duality

    _, fixed = roof_duality(bqm, strict=True)
    return dict(fixed)


@numba.njit(cache=True)
def _now() -> float:
    with numba.objmode(t="float64"):
        t = time.perf_counter()
    return t


@numba.njit(cache=True)
def _bound(g: np.ndarray, q: np.ndarray, cand: np.ndarray, n: int) -> float:
    """Lower bound (≤ 0) on ``min_{R ⊆ cand[:n]} Σ_R g + Σ_{pairs of R} q`` (the module docstring)."""
    if n == 0:
        return 0.0
    half = np.empty((n, n))  # half[a, s]: half the sum of the s smallest couplings of cand[a] in cand
    row = np.empty(max(n - 1, 1))
    for a in range(n):
        i = cand[a]
        m = 0
        for b in range(n):
            if b != a:
                row[m] = q[i, cand[b]]
                m += 1
        sorted_row = np.sort(row[: n - 1])
        half[a, 0] = 0.0
        for s in range(1, n):
            half[a, s] = half[a, s - 1] + 0.5 * sorted_row[s - 1]
    best = 0.0
    c = np.empty(n)
    for t in range(1, n + 1):
        for a in range(n):
            c[a] = g[cand[a]] + half[a, t - 1]
        c.sort()
        if c[0] >= 0.0:
            break
        total = 0.0
        for a in range(t):
            total += c[a]
        best = min(best, total)
    return best


@numba.njit(cache=True)
def _search(energy: float, g: np.ndarray, cand: np.ndarray, q: np.ndarray, chosen: np.ndarray, depth: int,
            state: np.ndarray, best_x: np.ndarray, tol: float, deadline: float) -> None:  # fmt: skip
    """Depth-first over the supersets of ``chosen[:depth]`` built from ``cand`` (all with ``g < 0``).

    ``state``: [best energy, nodes, timed out (0/1), least bound of the open subtrees, nodes between
    two looks at the clock]."""
    n = len(cand)
    order = np.argsort(g[cand], kind="mergesort")  # most negative marginal first: the first dive is greedy
    cand = cand[order]
    for pos in range(n):
        if state[2] == 0.0:
            state[1] += 1.0
            if state[1] % state[4] == 0.0 and _now() > deadline:
                state[2] = 1.0
        lb = energy + _bound(g, q, cand[pos:], n - pos)
        if state[2] != 0.0:  # out of time: this node's remaining subtrees stay open with their bound
            state[3] = min(state[3], lb)
            return
        if lb >= state[0] - tol:
            return
        i = cand[pos]
        e = energy + g[i]
        chosen[depth] = i
        if e < state[0] - tol:
            state[0] = e
            best_x[:] = 0
            for k in range(depth + 1):
                best_x[chosen[k]] = 1
        g2 = g.copy()
        keep = np.empty(n - pos - 1, dtype=np.int64)
        m = 0
        for b in range(pos + 1, n):
            j = cand[b]
            g2[j] = g[j] + q[i, j]
            if g2[j] < 0.0:  # dominance: a candidate with g ≥ 0 never helps a superset
                keep[m] = j
                m += 1
        if m > 0:
            _search(e, g2, keep[:m], q, chosen, depth + 1, state, best_x, tol, deadline)


@dataclass(frozen=True)
class Certificate:
    """What :func:`branch_and_bound` proved: ``x`` (d,) 0/1 int8, its ``energy``, a proven lower
    ``bound`` on the minimum, ``optimal`` (the search completed), ``nodes``, ``seconds``, and the number
    of variables fixed beforehand by :func:`persistencies` (``fixed``)."""

    x: np.ndarray
    energy: float
    bound: float
    optimal: bool
    nodes: int
    seconds: float
    fixed: int

    @property
    def gap(self) -> float:
        return self.energy - self.bound


_warm = [False]


def compile_search() -> None:
    """Compile (or load from the cache) the search once per process, outside any time limit."""
    if not _warm[0]:
        q = np.array([[0.0, 1.0], [1.0, 0.0]])
        state = np.array([0.0, 0.0, 0.0, np.inf, 1.0])
        _search(0.0, np.array([-1.0, -1.0]), np.arange(2), q, np.zeros(2, dtype=np.int64), 0, state,
                np.zeros(2, dtype=np.int8), 0.0, np.inf)  # fmt: skip
        _warm[0] = True


def nonnegative_couplings(q: np.ndarray) -> bool:
    """Whether every off-diagonal coupling is ``≥ 0`` (the structure :func:`branch_and_bound` needs)."""
    return bool((np.asarray(q) >= 0.0).all())


def branch_and_bound(
    h: np.ndarray,
    q: np.ndarray,
    offset: float = 0.0,
    time_limit: float = np.inf,
    incumbent: np.ndarray | None = None,
    clock_every: int = CLOCK_EVERY,
) -> Certificate:
    """Minimum of ``offset + h·x + ½ xᵀ q x`` over ``x ∈ {0,1}^d`` (``q`` symmetric, zero diagonal,
    every entry ≥ 0), proven, or the best found and a proven bound when ``time_limit`` binds.

    ``incumbent`` (optional, (d,) 0/1) starts the search with its energy as the value to beat;
    ``clock_every``: nodes between two looks at the clock.
    """
    compile_search()  # before the clock starts: a first call compiles (or loads) the numba search
    start = time.perf_counter()
    h = np.ascontiguousarray(h, dtype=np.float64)
    q = np.ascontiguousarray(q, dtype=np.float64)
    d = len(h)
    if q.shape != (d, d) or not np.allclose(q, q.T, rtol=0, atol=0) or np.any(np.diag(q) != 0):
        raise QxaiError(f"q must be a symmetric ({d}, {d}) matrix with a zero diagonal")
    if not nonnegative_couplings(q):
        raise QxaiError("branch_and_bound needs couplings ≥ 0 (explanation QUBOs); use a MIP engine instead")
    ones, zeros = persistencies(h, q)
    free = np.flatnonzero(~(ones | zeros))
    fixed_energy = float(offset + h[ones].sum() + q[np.ix_(ones, ones)].sum() / 2)
    g = h[free] + q[np.ix_(free, np.flatnonzero(ones))].sum(1)  # the free variables' linear terms
    sub = np.ascontiguousarray(q[np.ix_(free, free)])
    tol = float_tolerance(h, q)

    def energy_of(x: np.ndarray) -> float:
        return float(fixed_energy + g @ x + x @ sub @ x / 2)

    best_x = np.zeros(len(free), dtype=np.int8)
    if incumbent is not None:
        inc = np.asarray(incumbent, dtype=np.int8)[free]
        if energy_of(inc.astype(np.float64)) < energy_of(best_x.astype(np.float64)):
            best_x = inc.copy()
    state = np.array(
        [energy_of(best_x.astype(np.float64)) - fixed_energy, 0.0, 0.0, np.inf, float(clock_every)]
    )
    deadline = start + float(time_limit) if np.isfinite(time_limit) else np.inf
    cand = np.flatnonzero(g < 0.0).astype(np.int64)
    if len(cand):
        _search(
            0.0, g.copy(), cand, sub, np.zeros(len(free), dtype=np.int64), 0, state, best_x, tol, deadline
        )
    x = ones.astype(np.int8)
    x[free] = best_x
    energy = float(offset + h @ x + x @ q @ x / 2)
    complete = state[2] == 0.0
    bound = energy - tol if complete else min(energy, fixed_energy + float(state[3]))
    return Certificate(x=x, energy=energy, bound=float(bound), optimal=bool(complete), nodes=int(state[1]),
                       seconds=time.perf_counter() - start, fixed=int(ones.sum() + zeros.sum()))  # fmt: skip


__all__ = [
    "Certificate",
    "branch_and_bound",
    "compile_search",
    "float_tolerance",
    "nonnegative_couplings",
    "persistencies",
    "roof_duality_fixings",
]
