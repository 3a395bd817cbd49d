"""The lowest levels of ``H(s)`` along the anneal, and the minimum gap ``Δ_min`` at ``s*``.

``H(s)`` is real symmetric and never built: its matvec is the bit-flip kernel. The levels come from
block LOBPCG with a diagonal (Jacobi) preconditioner (:mod:`qxai.anneal.physics.eigensolver`),
each solve warm-started from the previous ``s``; scipy's Lanczos (``eigsh``, ARPACK) on a
``LinearOperator`` is kept as ``method="arpack"``, the reference the benchmark compares against.

The search runs in two phases. A **scan** walks the grid from ``s = 1`` (where the eigenvectors
are basis states, known exactly) down to ``s = 0``, each solve stopping when its error bound is
below ``scan_rtol`` (1e-4) of the gap there: enough to rank the grid points, at a fraction of the
cost of full accuracy where the gap is large. Then the ``refine`` best local minima are solved
again to full accuracy (``tol``) and refined by bounded scalar minimisation (Brent) inside their
bracket. ``Δ_min`` is the smallest fully accurate gap.

**Degeneracy.** Let ``g`` be the number of states at the minimum of ``H_P``. At ``s = 1`` the lowest
``g`` levels merge into the ground manifold, and every one of them counts as success, so a closing
``E_1 − E_0 → 0`` there is not a bottleneck. We therefore measure ``gap(s) = E_g(s) − E_0(s)``: from
the ground level to the first level that does *not* end in the ground manifold (with ``g = 1`` this
is the usual ``E_1 − E_0``). The solver is asked for the ``g + 1`` lowest levels (plus one guard
vector). Where the Hamiltonian is diagonal in a known basis (``A(s) = 0``: the energies of ``H_P``;
``B(s) = 0``: the driver levels ``κ(d − 2w)``, multiplicity ``C(d, w)``) the levels are written down
exactly, because an iterative method cannot count the multiplicity of an exactly degenerate
eigenvalue. The levels are those of the full space: when ``H_P`` has a symmetry that the dynamics
conserves, a level from a sector the anneal never visits can lie below the first relevant one, and
the reported ``Δ_min`` is then a lower bound (conservative).

>>> import dimod
>>> bqm = dimod.BinaryQuadraticModel({"a": 1.0}, {}, 0.0, "SPIN")
>>> r = minimum_gap(AnnealProblem.from_bqm(bqm), grid=11)
>>> round(r.delta_min, 6), round(r.s_star, 3)   # 2·sqrt((1−s)² + s²): minimum √2 at s = ½
(1.414214, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from qxai.anneal.physics import eigensolver, kernels
from qxai.anneal.physics.model import (
    GUARDS,
    AnnealProblem,
    AnnealProtocol,
    Schedule,
    check_memory,
    driver_coefficient,
    gap_memory_words,
    make_schedule,
)
from qxai.errors import QxaiError, unknown_name
from qxai.seeding import numpy_rng

#: Up to this many qubits the levels come from a dense eigensolver (ARPACK needs k < n − 1).
DENSE_MAX_QUBITS = 6

METHODS = ("lobpcg", "arpack")


@dataclass
class GapResult:
    """``Δ_min = min_s (E_g − E_0)`` at ``s_star``; ``s_grid``/``gaps`` every evaluated point, sorted.

    Scan points carry the scan accuracy (``scan_rtol`` of their gap); the refined points and
    ``delta_min`` the full accuracy. ``matvecs`` counts one-vector products ``H(s)·v``.
    """

    delta_min: float
    s_star: float
    degeneracy: int
    driver: str
    schedule: str
    s_grid: np.ndarray = field(repr=False)
    gaps: np.ndarray = field(repr=False)
    ground_levels: np.ndarray = field(repr=False)
    evaluations: int = 0
    matvecs: int = 0
    method: str = "lobpcg"


def hamiltonian_operator(
    problem: AnnealProblem, a: float, b: float, count: list[int] | None = None
) -> LinearOperator:
    """``a Σσx + b H_P`` as a scipy ``LinearOperator`` (the driver coefficient is folded into ``a``).

    ``count``, if given, is a one-element list incremented by every matvec.
    """
    d, n, energies = problem.num_qubits, 1 << problem.num_qubits, problem.energies

    def matvec(v: np.ndarray) -> np.ndarray:
        if count is not None:
            count[0] += 1
        v = np.ascontiguousarray(v.ravel(), dtype=np.float64)
        out = np.empty_like(v)
        kernels.apply_hamiltonian(v, out, energies, a, b, d)
        return out

    return LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)


def dense_hamiltonian(problem: AnnealProblem, s: float, driver: str = "transverse",
                      schedule: str | Schedule = "linear") -> np.ndarray:  # fmt: skip
    """``H(s)`` as a dense ``(2^d, 2^d)`` array, column by column from the matvec (tests, ``d ≤ 12``)."""
    if problem.num_qubits > 12:
        raise ValueError("dense_hamiltonian is a validation tool for d ≤ 12")
    sched = make_schedule(schedule)
    d = problem.num_qubits
    idx = np.arange(1 << d)
    h = np.diag(sched.B(s) * problem.energies)
    for p in range(d):
        h[idx, idx ^ (1 << p)] = sched.A(s) * driver_coefficient(driver, d)
    return h


def _driver_levels(d: int, kappa: float, count: int) -> np.ndarray:
    # κ Σσx has eigenvalues κ(d − 2w), w = 0 … d, with multiplicity C(d, w); walk up from the lowest
    values: list[float] = []
    for w in range(d + 1) if kappa < 0 else range(d, -1, -1):
        values.extend([kappa * (d - 2 * w)] * min(comb(d, w), count))
        if len(values) >= count:
            break
    return np.array(values[:count])


class LevelSolver:
    """The ``k`` lowest levels of ``H(s)``, each solve warm-started from the last one's vectors."""

    def __init__(self, problem: AnnealProblem, k: int, driver: str, schedule: Schedule, tol: float,
                 method: str = "lobpcg", rtol: float = 0.0) -> None:  # fmt: skip
        if method not in METHODS:
            raise unknown_name("eigensolver method", method, METHODS)
        self.problem, self.k, self.schedule, self.tol, self.method = problem, k, schedule, tol, method
        self.rtol = rtol  # full-accuracy solves: the gap also to this relative accuracy
        d = problem.num_qubits
        self.kappa = driver_coefficient(driver, d)
        # a fixed random component keeps every symmetry sector in the search space, so the levels
        # are those of the full space whatever the warm start (and the run is deterministic)
        self.noise = numpy_rng(0, "lanczos-start").standard_normal(1 << d)
        self.noise /= np.linalg.norm(self.noise)
        self.start: np.ndarray | None = None
        self.matvecs = 0
        self.block_size = k + GUARDS

    def _initial_block(self) -> np.ndarray:
        # the eigenvectors at s = 1 are basis states: the lowest m of H_P, plus the fixed noise
        m, energies = self.block_size, self.problem.energies
        block = np.zeros((energies.size, m), order="F")
        block[np.argsort(energies, kind="stable")[:m], np.arange(m)] = 1.0
        for c in range(m):
            block[:, c] += 1e-2 * np.roll(self.noise, c)
        return block

    def levels(
        self, s: float, start: np.ndarray | None = None, gap_rtol: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values (k,), warm start or None)`` at ``s``; ``gap_rtol > 0``: a scan-accuracy solve."""
        a = float(self.schedule.A(s)) * self.kappa
        b = float(self.schedule.B(s))
        p, k, d = self.problem, self.k, self.problem.num_qubits
        if a == 0.0:
            return np.sort(p.energies * b)[:k], None
        if b == 0.0:
            return _driver_levels(d, a, k), None
        if d <= DENSE_MAX_QUBITS or 3 * self.block_size > (1 << d):
            h = dense_hamiltonian(p, s, "transverse", Schedule("scaled", lambda _: -a, lambda _: b))
            return np.linalg.eigvalsh(h)[:k], None
        if self.method == "arpack":
            return self._arpack(a, b, start)
        if start is None:
            start = self.start if self.start is not None else self._initial_block()
        tight = self.rtol if gap_rtol == 0.0 else 0.0
        r = eigensolver.lowest_levels(
            p.energies, a, b, d, k, start, tol=self.tol, gap_rtol=gap_rtol, gap_tight=tight
        )
        self.matvecs += r.matvecs
        self.start = r.vectors  # the best block found warm-starts the next solve either way
        if not r.converged:  # rare: fall back to ARPACK from those vectors
            return self._arpack(a, b, np.ascontiguousarray(r.vectors.sum(axis=1)))
        return r.values, r.vectors

    def _arpack(self, a: float, b: float, start: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        p, k, d = self.problem, self.k, self.problem.num_qubits
        if start is None:
            start = self.noise if self.start is None else self.start
        count = [0]
        op = hamiltonian_operator(p, a, b, count)
        ncv = min(1 << d, max(2 * k + 1, 20))
        try:
            vals, vecs = eigsh(op, k=k, which="SA", v0=start, tol=self.tol, ncv=ncv, maxiter=50 * (1 << d))
        except ArpackNoConvergence:  # rare: retry with a larger Krylov space
            vals, vecs = eigsh(op, k=k, which="SA", v0=start, tol=self.tol, ncv=min(1 << d, 4 * ncv))
        self.matvecs += count[0]
        order = np.argsort(vals)
        warm = vecs[:, order].sum(axis=1)
        warm = warm / np.linalg.norm(warm) + 1e-2 * self.noise
        if self.method == "arpack":  # a LOBPCG solver keeps its block as the warm start
            self.start = warm
        return vals[order], warm


def minimum_gap(
    problem: AnnealProblem,
    protocol: AnnealProtocol | None = None,
    *,
    grid: int = 41,
    refine: int = 2,
    xtol: float = 1e-5,
    tol: float = 1e-10,
    rtol: float = 1e-8,
    scan_rtol: float = 1e-4,
    method: str = "lobpcg",
    memory_gb: float | None = None,
) -> GapResult:
    """``Δ_min``, ``s*`` of ``H(s) = A(s) H_D + B(s) H_P``: gap to the first level outside the ground set.

    ``grid`` points on ``[0, 1]`` scanned to ``scan_rtol`` of their gap, then the ``refine``
    smallest local minima re-solved to full accuracy and refined to ``xtol`` in ``s``. Full
    accuracy: every level within ``tol · ‖H(s)‖`` and within ``rtol`` of the gap there (LOBPCG's
    error bound, floored at ``64 ε ‖H‖``), so tiny gaps keep their digits; with
    ``method="arpack"``, ``tol`` is ARPACK's relative tolerance and ``rtol``/``scan_rtol`` are unused.
    Only the driver and schedule of ``protocol`` matter here (e.g. ``AnnealProtocol(driver="authors")``).
    """
    protocol = AnnealProtocol.of(protocol)
    d = problem.num_qubits
    sched = protocol.schedule_functions
    g = problem.degeneracy
    k = g + 1
    if k > (1 << d):
        raise QxaiError(
            "H_P is constant (every state is a ground state): there is no gap; give a nonconstant BQM"
        )
    check_memory(d, gap_memory_words(g, refine, method), "the gap computation", memory_gb)
    solver = LevelSolver(problem, k, protocol.driver, sched, tol, method, rtol)
    points: dict[float, tuple[float, float, bool]] = {}

    def gap_at(s: float, start: np.ndarray | None = None, rtol: float = 0.0) -> float:
        vals, warm = solver.levels(s, start, rtol)
        # full accuracy: not a scan solve, or a level written down exactly (no warm start returned)
        points[s] = (float(vals[g] - vals[0]), float(vals[0]), rtol == 0.0 or warm is None)
        return points[s][0]

    s_grid = np.linspace(0.0, 1.0, max(grid, 3))
    starts: dict[float, np.ndarray | None] = {}
    for s in s_grid[::-1]:  # from s = 1, where the eigenvectors are known exactly
        gap_at(float(s), rtol=scan_rtol)
        starts[float(s)] = solver.start
        # keep warm starts only at the current best few grid points (memory: one block each)
        best = sorted(starts, key=lambda x: points[x][0])[: max(refine, 1)]
        starts = {x: starts[x] for x in best}
    grid_gaps = np.array([points[float(s)][0] for s in s_grid])
    minima = [i for i in range(len(s_grid)) if grid_gaps[i] <= grid_gaps[max(i - 1, 0)]
              and grid_gaps[i] <= grid_gaps[min(i + 1, len(s_grid) - 1)]]  # fmt: skip
    minima = sorted(minima, key=lambda i: grid_gaps[i])[:refine]
    for i in minima:
        s_i = float(s_grid[i])
        gap_at(s_i, starts.get(s_i))  # the scan value, now to full accuracy
        lo, hi = float(s_grid[max(i - 1, 0)]), float(s_grid[min(i + 1, len(s_grid) - 1)])
        minimize_scalar(gap_at, bounds=(lo, hi), method="bounded", options={"xatol": xtol})
    s_all = np.array(sorted(points))
    gaps = np.array([points[s][0] for s in s_all])
    accurate = np.array([points[s][2] for s in s_all])  # s = 0 and 1 always are (closed form)
    best = int(np.argmin(np.where(accurate, gaps, np.inf)))
    return GapResult(
        delta_min=float(gaps[best]), s_star=float(s_all[best]), degeneracy=g, driver=protocol.driver,
        schedule=sched.name, s_grid=s_all, gaps=gaps, ground_levels=np.array([points[s][1] for s in s_all]),
        evaluations=len(points), matvecs=solver.matvecs, method=method,
    )  # fmt: skip
