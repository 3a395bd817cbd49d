"""The time-dependent Schrödinger equation of an anneal (ħ = 1), by second-order split operator.

One step of length ``h`` around the midpoint ``s_k = (k + ½)/K`` is the Strang splitting

    U_k = exp(−i h/2 · B_k H_P) · exp(−i h · A_k κ Σσx) · exp(−i h/2 · B_k H_P),

second order in ``h`` (midpoint coefficients plus a symmetric splitting). Consecutive half steps of
the diagonal merge into one elementwise phase; the driver exponential is a product of one-qubit
rotations (the σx_p commute). Error control is step doubling: the same anneal at ``2h`` differs
from the one at ``h`` by about ``3×`` the error of the latter, since the error is ``O(h²)``.
:func:`evolve_krylov` is the exact reference (4th-order commutator-free Magnus, each exponential
by scipy's ``expm_multiply``), for validation at small ``d``.

>>> import dimod
>>> bqm = dimod.BinaryQuadraticModel({"a": -1.0, "b": 0.5}, {("a", "b"): -1.0}, 0.0, "BINARY")
>>> r = anneal(AnnealProblem.from_bqm(bqm), 20.0, AnnealProtocol(dt=0.05), num_reads=4, seed=0)
>>> r.fidelity > 0.9, r.best_energy
(True, -1.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from qxai.anneal.enumerate import index_to_sample
from qxai.anneal.physics import kernels
from qxai.anneal.physics.model import (
    AnnealProblem,
    AnnealProtocol,
    Schedule,
    anneal_memory_words,
    check_memory,
    driver_coefficient,
    driver_ground_state,
)
from qxai.errors import QxaiError
from qxai.seeding import numpy_rng


@dataclass
class AnnealResult:
    """Outcome of one anneal of total time ``tau``.

    ``fidelity`` is ``|⟨x*|ψ(τ)⟩|²`` summed over the ground manifold of ``H_P``; ``energy`` is
    ``⟨ψ(τ)|H_P|ψ(τ)⟩``; ``level_energies``/``level_populations`` are the lowest distinct levels of
    ``H_P`` and their final populations (when asked); ``shots`` are state indices drawn from
    ``|ψ(τ)|²`` and ``best_sample`` the lowest-energy one, as a ``(d,)`` array in ``variables`` order.
    """

    tau: float
    dt: float
    steps: int
    driver: str
    schedule: str
    fidelity: float
    energy: float
    norm: float
    ground_energy: float
    degeneracy: int
    error_estimate: float | None = None
    level_energies: np.ndarray | None = None
    level_populations: np.ndarray | None = None
    shots: np.ndarray | None = None
    best_sample: np.ndarray | None = None
    best_energy: float | None = None
    state: np.ndarray | None = None


def _coefficients(schedule: Schedule, K: int) -> tuple[np.ndarray, np.ndarray]:
    mids = (np.arange(K) + 0.5) / K
    a = np.array([float(schedule.A(float(s))) for s in mids])
    b = np.array([float(schedule.B(float(s))) for s in mids])
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise QxaiError(f"schedule '{schedule.name}' gives non-finite A(s) or B(s); fix its functions")
    return a, b


def num_steps(tau: float, dt: float) -> int:
    """Steps ``K = ⌈τ/dt⌉`` (at most ``model.MAX_STEPS``); the step actually used is ``τ/K ≤ dt``.

    >>> num_steps(50.0, 0.01)
    5000
    """
    return AnnealProtocol.of(None, dt=dt).steps(tau)


@dataclass
class _Setup:
    """What both integrators start from: the protocol resolved for ``d`` qubits and ``K`` steps."""

    d: int
    schedule: Schedule
    kappa: float
    steps: int
    h: float
    psi: np.ndarray


def _setup(problem: AnnealProblem, tau: float, protocol: AnnealProtocol, psi0: np.ndarray | None) -> _Setup:
    d = problem.num_qubits
    K = protocol.steps(tau)
    return _Setup(d, protocol.schedule_functions, driver_coefficient(protocol.driver, d), K, tau / K,
                  _initial_state(protocol.driver, d, psi0))  # fmt: skip


def evolve(
    problem: AnnealProblem,
    tau: float,
    protocol: AnnealProtocol | None = None,
    *,
    psi0: np.ndarray | None = None,
) -> np.ndarray:
    """``ψ(τ)``, complex ``(2^d,)``, by split operator from ``psi0`` (default: the driver ground state).

    ``protocol``: ``dt``, driver and schedule (default :class:`AnnealProtocol`).
    """
    run = _setup(problem, tau, AnnealProtocol.of(protocol), psi0)
    a, b = _coefficients(run.schedule, run.steps)
    # merged diagonal phases: θ_0 = h/2·B_0, θ_k = h/2·(B_{k−1} + B_k), and a last h/2·B_{K−1}
    thetas = 0.5 * run.h * (b + np.concatenate([[0.0], b[:-1]]))
    phis = run.h * run.kappa * a
    kernels.run_steps(run.psi, problem.energies, thetas, phis, run.d)
    kernels.split_step(run.psi, problem.energies, 0.5 * run.h * b[-1], 0.0, run.d)
    return run.psi


def _initial_state(driver: str, d: int, psi0: np.ndarray | None) -> np.ndarray:
    if psi0 is None:
        return driver_ground_state(driver, d)
    psi = np.array(psi0, dtype=np.complex128).ravel()
    if psi.shape != (1 << d,):
        raise QxaiError(f"psi0 has {psi.size} amplitudes, expected 2^{d} = {1 << d}; pass a full state")
    return psi / np.linalg.norm(psi)


def sample_states(psi: np.ndarray, num_reads: int, seed: int | None) -> np.ndarray:
    """``num_reads`` state indices drawn from ``|ψ|²`` with the ``"statevector-shots"`` stream of ``seed``."""
    cdf = np.cumsum(np.abs(psi) ** 2)
    u = numpy_rng(seed, "statevector-shots").random(num_reads) * cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), psi.size - 1)


def anneal(
    problem: AnnealProblem,
    tau: float,
    protocol: AnnealProtocol | None = None,
    *,
    levels: int = 0,
    error_check: bool = False,
    num_reads: int | None = 0,
    seed: int | None = 0,
    keep_state: bool = False,
    psi0: np.ndarray | None = None,
    memory_gb: float | None = None,
) -> AnnealResult:
    """Anneal ``problem`` for total time ``tau``; see :class:`AnnealResult` for what comes back.

    ``num_reads=None`` draws ``d²`` shots (the authors' readout); ``error_check`` reruns at ``2·dt``
    and stores ``‖ψ_dt − ψ_2dt‖ / 3`` in ``error_estimate``; ``levels=m`` reports the final
    populations of the ``m`` lowest levels of ``H_P``; ``protocol`` gives ``dt``, driver and schedule
    (e.g. ``AnnealProtocol(dt=0.05, driver="authors")``). Memory and step count are checked before
    anything is allocated.
    """
    d = problem.num_qubits
    protocol = AnnealProtocol.of(protocol)
    K = protocol.steps(tau)
    check_memory(d, anneal_memory_words(error_check), "state-vector anneal", memory_gb)
    sched = protocol.schedule_functions
    psi = evolve(problem, tau, protocol, psi0=psi0)
    error = None
    if error_check:
        coarse = evolve(problem, tau, replace(protocol, dt=2 * tau / K), psi0=psi0)
        error = float(np.linalg.norm(psi - coarse) / 3.0)
    norm, mean = kernels.weighted_norms(psi, problem.energies)
    ground = problem.ground_indices
    result = AnnealResult(
        tau=float(tau), dt=tau / K, steps=K, driver=protocol.driver, schedule=sched.name,
        fidelity=float(np.sum(np.abs(psi[ground]) ** 2)), energy=float(mean / norm), norm=float(norm),
        ground_energy=problem.ground_energy, degeneracy=problem.degeneracy, error_estimate=error,
    )  # fmt: skip
    if levels:
        energies, members = problem.energy_levels(levels)
        result.level_energies = energies
        result.level_populations = np.array([np.sum(np.abs(psi[m]) ** 2) for m in members])
    reads = d * d if num_reads is None else int(num_reads)
    if reads > 0:
        shots = sample_states(psi, reads, seed)
        best = int(shots[np.argmin(problem.energies[shots])])
        result.shots = shots
        result.best_sample = index_to_sample(best, d, problem.vartype)
        result.best_energy = float(problem.energies[best])
    if keep_state:
        result.state = psi
    return result


def evolve_krylov(
    problem: AnnealProblem,
    tau: float,
    protocol: AnnealProtocol | None = None,
    *,
    psi0: np.ndarray | None = None,
) -> np.ndarray:
    """Reference ``ψ(τ)``: 4th-order commutator-free Magnus steps, each exponential by ``expm_multiply``.

    Uses a sparse ``H_D`` with ``d·2^d`` entries, so it is for validation at ``d ≤ 16`` only.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import expm_multiply

    d = problem.num_qubits
    if d > 16:
        raise QxaiError(f"the Krylov reference stops at d = 16 (sparse H_D), got d = {d}; use evolve")
    run = _setup(problem, tau, AnnealProtocol.of(protocol), psi0)
    n = 1 << d
    idx = np.arange(n)
    rows = np.tile(idx, d)
    cols = np.concatenate([idx ^ (1 << p) for p in range(d)])
    h_d = sp.csr_matrix((np.full(n * d, run.kappa), (rows, cols)), shape=(n, n))
    h_p = sp.diags(problem.energies).tocsr()
    sched, K, h, psi = run.schedule, run.steps, run.h, run.psi
    # Gauss nodes c_1,2 = 1/2 ∓ √3/6 and the CF4 weights of Alvermann & Fehske (2011)
    c1, c2 = 0.5 - math.sqrt(3) / 6, 0.5 + math.sqrt(3) / 6
    w1, w2 = (3 - 2 * math.sqrt(3)) / 12, (3 + 2 * math.sqrt(3)) / 12
    for k in range(K):
        s1, s2 = (k + c1) / K, (k + c2) / K
        A1, A2, B1, B2 = sched.A(s1), sched.A(s2), sched.B(s1), sched.B(s2)
        for wa, wb in ((w2, w1), (w1, w2)):  # the right factor acts first
            m = (wa * A1 + wb * A2) * h_d + (wa * B1 + wb * B2) * h_p
            psi = expm_multiply(-1j * h * m, psi)
    return psi
