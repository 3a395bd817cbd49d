"""State-vector dynamics against closed forms, QuTiP and the Krylov reference."""

from __future__ import annotations

import dimod
import numpy as np
import pytest

from qxai.anneal.physics import AnnealProblem, AnnealProtocol, anneal, evolve, evolve_krylov, make_schedule
from qxai.anneal.physics.spectrum import dense_hamiltonian
from qxai.errors import QxaiError


def _random_problem(d: int, seed: int) -> AnnealProblem:
    return AnnealProblem.from_bqm(dimod.generators.gnp_random_bqm(d, 0.7, "BINARY", random_state=seed))


def test_landau_zener_matches_closed_form() -> None:
    # one qubit, H_P = diag(0, 1) = (1 − σz)/2, driver −A σx with constant A, B(s) = L(2s − 1):
    # ε(t) = −L(2s − 1) sweeps at v = 2L/τ, Δ = 2A, so P_diabatic = exp(−πΔ²/(2v)) = exp(−πA²τ/L)
    amp, big = 0.5, 60.0
    sched = make_schedule((lambda s: amp, lambda s: big * (2 * s - 1)))
    problem = AnnealProblem.from_bqm(dimod.BinaryQuadraticModel({"x": 1.0}, {}, 0.0, "BINARY"))
    h0 = dense_hamiltonian(problem, 0.0, "transverse", sched)
    psi0 = np.linalg.eigh(h0)[1][:, 0]
    for tau in (40.0, 120.0):
        r = anneal(problem, tau, AnnealProtocol(dt=0.002, schedule=sched), psi0=psi0)
        expected = np.exp(-np.pi * amp**2 * tau / big)
        # finite sweep (|ε| ≤ L) adds oscillations of order Δ/L ≈ 0.02 around the asymptotic value
        assert abs((1 - r.fidelity) - expected) < 0.02, (tau, 1 - r.fidelity, expected)


@pytest.mark.parametrize(("driver", "schedule"), [("transverse", "linear"), ("authors", "quadratic")])
def test_few_qubits_match_qutip_sesolve(driver: str, schedule: str) -> None:
    qutip = pytest.importorskip("qutip")
    problem = _random_problem(3, seed=4)
    sched = make_schedule(schedule)
    tau, d = 4.0, 3
    h_d = qutip.Qobj(dense_hamiltonian(problem, 0.0, driver, (lambda s: 1.0, lambda s: 0.0)))
    h_p = qutip.Qobj(np.diag(problem.energies))
    ham = [[h_d, lambda t: sched.A(t / tau)], [h_p, lambda t: sched.B(t / tau)]]
    psi0 = evolve(
        problem, 1e-9, AnnealProtocol(dt=1e-9, driver=driver)
    )  # the driver ground state (after ~no time)
    opts = {"atol": 1e-12, "rtol": 1e-10, "nsteps": 100000}
    out = qutip.sesolve(ham, qutip.Qobj(psi0), [0.0, tau], options=opts)
    ref = out.states[-1].full().ravel()
    krylov = evolve_krylov(problem, tau, AnnealProtocol(dt=0.04, driver=driver, schedule=schedule))
    split = evolve(problem, tau, AnnealProtocol(dt=5e-4, driver=driver, schedule=schedule))
    assert np.max(np.abs(krylov - ref)) < 1e-6
    assert np.max(np.abs(split - ref)) < 1e-6
    assert d == problem.num_qubits


def test_norm_is_preserved_and_energy_is_bounded() -> None:
    problem = _random_problem(10, seed=1)
    r = anneal(problem, 10.0, AnnealProtocol(dt=0.05), keep_state=True)
    assert abs(r.norm - 1.0) < 1e-12
    assert abs(np.linalg.norm(r.state) - 1.0) < 1e-12
    assert problem.ground_energy - 1e-12 <= r.energy <= problem.energies.max()


def test_split_operator_is_second_order_and_error_estimate_is_honest() -> None:
    problem = _random_problem(6, seed=2)
    ref = evolve_krylov(problem, 6.0, AnnealProtocol(dt=0.03))  # 4th order: ~1e-9 here
    errs = [np.linalg.norm(evolve(problem, 6.0, AnnealProtocol(dt=dt)) - ref) for dt in (0.04, 0.02)]
    assert 3.5 < errs[0] / errs[1] < 4.5
    r = anneal(problem, 6.0, AnnealProtocol(dt=0.02), error_check=True)
    assert 0.5 < r.error_estimate / errs[1] < 2.0


def test_split_operator_matches_krylov_fidelity_at_d10() -> None:
    problem = _random_problem(10, seed=7)
    ref = evolve_krylov(problem, 3.0, AnnealProtocol(dt=0.05, driver="authors"))
    r = anneal(problem, 3.0, AnnealProtocol(dt=0.01, driver="authors"))
    f_ref = float(np.sum(np.abs(ref[problem.ground_indices]) ** 2))
    assert abs(r.fidelity - f_ref) < 1e-4


def test_degenerate_ground_manifold_fidelity_and_levels() -> None:
    ring = dimod.BinaryQuadraticModel({}, {(i, (i + 1) % 6): -1.0 for i in range(6)}, 0.0, "SPIN")
    problem = AnnealProblem.from_bqm(ring)
    assert problem.degeneracy == 2
    r = anneal(problem, 30.0, AnnealProtocol(dt=0.02), levels=3, keep_state=True)
    ground = np.abs(r.state[problem.ground_indices]) ** 2
    assert r.fidelity == pytest.approx(ground.sum())
    # the Z2 symmetry keeps both ground states equally populated
    assert ground[0] == pytest.approx(ground[1], abs=1e-10)
    assert r.level_populations[0] == pytest.approx(r.fidelity)
    assert r.level_energies.tolist() == [-6.0, -2.0, 2.0]
    assert r.level_populations.sum() <= 1 + 1e-12
    assert r.fidelity > 0.9


def test_shots_are_seeded_and_readout_is_the_lowest() -> None:
    problem = _random_problem(8, seed=3)
    a = anneal(problem, 20.0, AnnealProtocol(dt=0.05), num_reads=None, seed=5)
    b = anneal(problem, 20.0, AnnealProtocol(dt=0.05), num_reads=None, seed=5)
    c = anneal(problem, 20.0, AnnealProtocol(dt=0.05), num_reads=None, seed=6)
    assert a.shots.shape == (64,)
    assert np.array_equal(a.shots, b.shots) and not np.array_equal(a.shots, c.shots)
    assert a.best_energy == pytest.approx(problem.energies[a.shots].min())
    assert a.fidelity == b.fidelity


def test_shot_frequencies_follow_the_state() -> None:
    from qxai.anneal.physics.dynamics import sample_states

    psi = np.sqrt(np.array([0.1, 0.2, 0.3, 0.4])).astype(complex)
    counts = np.bincount(sample_states(psi, 40000, seed=0), minlength=4) / 40000
    assert np.allclose(counts, [0.1, 0.2, 0.3, 0.4], atol=0.01)


def test_user_errors() -> None:
    problem = _random_problem(4, seed=0)
    with pytest.raises(QxaiError, match="budget"):
        anneal(problem, 1.0, memory_gb=1e-9)
    with pytest.raises(QxaiError, match="psi0"):
        anneal(problem, 1.0, psi0=np.ones(3))
    with pytest.raises(QxaiError, match="positive"):
        anneal(problem, -1.0)
    with pytest.raises(QxaiError, match="driver"):
        anneal(problem, 1.0, AnnealProtocol(driver="sideways"))
    with pytest.raises(QxaiError, match="schedule"):
        anneal(problem, 1.0, AnnealProtocol(schedule="cubic"))


def test_fast_phase_matches_numpy_exp() -> None:
    # the kernel's branch-free cis against numpy's exp(ix), small and large angles, both signs
    from qxai.anneal.physics.kernels import cis

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-4, 4, 5000), rng.uniform(-300, 300, 5000), [0.0, np.pi, -np.pi / 2]])
    z = cis(x)
    # a few ulp, plus the reduction's ulp of 2π per turn (per-step angles θE are O(1) in practice)
    assert np.all(np.abs(z - np.exp(1j * x)) <= 2e-15 + 2e-16 * np.abs(x))
    assert np.max(np.abs(np.abs(z) - 1.0)) < 1e-14
