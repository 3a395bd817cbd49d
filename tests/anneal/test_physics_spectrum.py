"""Minimum gaps against dense diagonalisation of the full Hamiltonian."""

from __future__ import annotations

import dimod
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from qxai.anneal.physics import AnnealProblem, AnnealProtocol, minimum_gap
from qxai.anneal.physics.model import make_schedule
from qxai.anneal.physics.spectrum import DENSE_MAX_QUBITS, LevelSolver, dense_hamiltonian


def dense_minimum_gap(
    problem: AnnealProblem, driver: str, level: int, points: int = 101
) -> tuple[float, float]:
    """Oracle: numpy eigvalsh of the dense H(s) on a grid, refined by Brent around the best point."""

    def gap(s: float) -> float:
        vals = np.linalg.eigvalsh(dense_hamiltonian(problem, s, driver))
        return float(vals[level] - vals[0])

    grid = np.linspace(0, 1, points)
    gaps = [gap(s) for s in grid]
    i = int(np.argmin(gaps))
    r = minimize_scalar(gap, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, points - 1)]), method="bounded",
                        options={"xatol": 1e-9})  # fmt: skip
    return (float(r.fun), float(r.x)) if r.fun < gaps[i] else (gaps[i], float(grid[i]))


def test_single_qubit_closed_form() -> None:
    # H = −(1−s)σx − sσz: gap 2√((1−s)² + s²), minimum √2 at s = ½
    problem = AnnealProblem.from_bqm(dimod.BinaryQuadraticModel({"a": 1.0}, {}, 0.0, "SPIN"))
    r = minimum_gap(problem, grid=11)
    assert r.delta_min == pytest.approx(np.sqrt(2), abs=1e-9)
    assert r.s_star == pytest.approx(0.5, abs=1e-4)
    expected = 2 * np.sqrt((1 - r.s_grid) ** 2 + r.s_grid**2)
    assert np.allclose(r.gaps, expected, atol=1e-9)


@pytest.mark.parametrize("driver", ["transverse", pytest.param("authors", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["clique", "loops"])
def test_anti_crossing_generators_match_dense(name: str, driver: str) -> None:
    gen = dimod.generators
    make = {"clique": gen.anti_crossing_clique, "loops": gen.anti_crossing_loops}[name]
    problem = AnnealProblem.from_bqm(make(8))
    assert problem.num_qubits > DENSE_MAX_QUBITS  # the Lanczos path, not the dense shortcut
    r = minimum_gap(problem, AnnealProtocol(driver=driver))
    delta, s_star = dense_minimum_gap(problem, driver, level=problem.degeneracy)
    assert r.delta_min == pytest.approx(delta, rel=1e-6, abs=1e-9)
    assert r.s_star == pytest.approx(s_star, abs=2e-3)
    if name == "clique":  # the generator's point: a small anti-crossing (here ≈ 5.6e-3 with −Σσx)
        assert r.delta_min < 0.01


SLOW = pytest.mark.slow


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=SLOW), pytest.param(2, marks=SLOW)])
def test_random_bqms_match_dense(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 7 + seed % 2
    bqm = dimod.generators.gnp_random_bqm(d, 0.6, "BINARY", random_state=seed,
                                          bias_generator=lambda n: rng.uniform(-1, 1, n))  # fmt: skip
    problem = AnnealProblem.from_bqm(bqm)
    r = minimum_gap(problem, AnnealProtocol(driver="authors"), grid=31)
    delta, _ = dense_minimum_gap(problem, "authors", level=problem.degeneracy, points=101)
    assert r.delta_min == pytest.approx(delta, rel=1e-6)


def test_grid_levels_match_dense_along_s() -> None:
    problem = AnnealProblem.from_bqm(dimod.generators.anti_crossing_loops(8))
    solver = LevelSolver(problem, 3, "transverse", make_schedule("linear"), 1e-12)
    for s in np.linspace(0, 1, 9):
        vals, _ = solver.levels(float(s))
        assert np.allclose(vals, np.linalg.eigvalsh(dense_hamiltonian(problem, float(s)))[:3], atol=1e-9)


def test_degenerate_ground_state_gap_is_to_the_first_level_outside() -> None:
    # ferromagnetic ring, no fields: g = 2 (all up, all down); E_1 − E_0 closes at s = 1 but the
    # anneal still succeeds there, so Δ is measured to level 2, which stays open (4 at s = 1)
    ring = dimod.BinaryQuadraticModel({}, {(i, (i + 1) % 8): -1.0 for i in range(8)}, 0.0, "SPIN")
    problem = AnnealProblem.from_bqm(ring)
    assert problem.degeneracy == 2
    r = minimum_gap(problem)
    assert r.gaps[-1] == pytest.approx(4.0)
    delta, _ = dense_minimum_gap(problem, "transverse", level=2)
    assert r.delta_min == pytest.approx(delta, rel=1e-6)
    assert r.delta_min > 0.1
    naive, _ = dense_minimum_gap(problem, "transverse", level=1)
    assert naive < 1e-6  # what a gap to level 1 would have reported


def test_four_fold_degeneracy_from_free_variables() -> None:
    # two variables with no bias: g = 4; the levels at s = 1 come from H_P exactly (Lanczos cannot count
    # multiplicities), and the gap to level 4 matches dense diagonalisation
    linear = {0: -1.0, 1: 0.0, 2: 0.0, 3: 0.7, 4: -0.4, 5: 0.3, 6: 0.2}
    quadratic = {(0, 3): 0.5, (3, 4): -0.8, (4, 5): 0.6, (5, 6): -0.3}
    bqm = dimod.BinaryQuadraticModel(linear, quadratic, 0.0, "BINARY")
    problem = AnnealProblem.from_bqm(bqm)
    assert problem.degeneracy == 4
    r = minimum_gap(problem, grid=31)
    delta, _ = dense_minimum_gap(problem, "transverse", level=4, points=101)
    assert r.delta_min == pytest.approx(delta, rel=1e-6)


def test_gap_is_deterministic() -> None:
    problem = AnnealProblem.from_bqm(dimod.generators.anti_crossing_clique(8))
    a, b = minimum_gap(problem, grid=21), minimum_gap(problem, grid=21)
    assert a.delta_min == b.delta_min and a.s_star == b.s_star
    assert np.array_equal(a.gaps, b.gaps)
