"""Block LOBPCG for ``a Σσx + b diag(E)`` against dense diagonalisation, and its kernels against numpy."""

from __future__ import annotations

import dimod
import numpy as np
import pytest

from qxai.anneal.physics import AnnealProblem, kernels, minimum_gap
from qxai.anneal.physics import eigensolver as eig
from qxai.anneal.physics.model import make_schedule
from qxai.anneal.physics.spectrum import LevelSolver, dense_hamiltonian


def dense(energies: np.ndarray, a: float, b: float, d: int) -> np.ndarray:
    n = 1 << d
    idx = np.arange(n)
    h = np.diag(b * energies)
    for p in range(d):
        h[idx, idx ^ (1 << p)] += a
    return h


def start_block(n: int, m: int, seed: int = 0) -> np.ndarray:
    return np.asfortranarray(np.random.default_rng(seed).standard_normal((n, m)))


@pytest.mark.parametrize(("a", "b"), [(-1.0, 0.3), (0.125, 0.9), (-0.05, 1.0), (0.3, 0.2)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_levels_match_dense(a: float, b: float, k: int) -> None:
    d = 8
    energies = np.random.default_rng(1).uniform(-3, 3, 1 << d)
    r = eig.lowest_levels(energies, a, b, d, k, start_block(1 << d, k + 2), tol=1e-11)
    want = np.linalg.eigvalsh(dense(energies, a, b, d))[:k]
    assert r.converged
    assert np.allclose(r.values, want, atol=1e-10)
    # the returned block is orthonormal and its first k columns are the eigenvectors
    x = r.vectors
    assert np.allclose(x.T @ x, np.eye(k + 2), atol=1e-10)
    h = dense(energies, a, b, d)
    assert np.abs(h @ x[:, :k] - x[:, :k] * r.values).max() < 1e-5
    assert r.matvecs == (k + 2) * r.iterations  # the start block, then one per iteration but the last


def test_scan_accuracy_is_within_its_bound() -> None:
    # gap_rtol: the error bound (cluster Kato–Temple) ≤ gap_rtol × gap; the true error must obey it
    d = 9
    energies = np.random.default_rng(2).uniform(-2, 2, 1 << d)
    want = np.linalg.eigvalsh(dense(energies, 0.2, 0.5, d))[:2]
    coarse = eig.lowest_levels(energies, 0.2, 0.5, d, 2, start_block(1 << d, 4), tol=1e-14, gap_rtol=1e-3)
    fine = eig.lowest_levels(energies, 0.2, 0.5, d, 2, start_block(1 << d, 4), tol=1e-12)
    gap = want[1] - want[0]
    assert np.all(coarse.values >= want - 1e-12)  # Ritz values are upper bounds
    assert np.abs(coarse.values - want).max() <= 1e-3 * gap
    assert coarse.iterations < fine.iterations


def test_exactly_degenerate_levels() -> None:
    # two free qubits: every level of the rest is 4-fold degenerate at b = 1, split by the driver
    d = 8
    base = np.random.default_rng(3).uniform(-1, 1, 1 << (d - 2))
    energies = np.repeat(base, 4)  # the two lowest bits do not enter the energy
    r = eig.lowest_levels(energies, -0.3, 1.0, d, 5, start_block(1 << d, 7), tol=1e-12)
    assert np.allclose(r.values, np.linalg.eigvalsh(dense(energies, -0.3, 1.0, d))[:5], atol=1e-10)


def test_rejects_a_block_too_small_or_too_large() -> None:
    energies = np.zeros(16)
    with pytest.raises(ValueError, match="k < m"):
        eig.lowest_levels(energies, 1.0, 1.0, 4, 2, start_block(16, 2))
    with pytest.raises(ValueError, match="3m"):
        eig.lowest_levels(energies, 1.0, 1.0, 4, 2, start_block(16, 6))


def test_not_converged_is_reported_and_the_solver_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    d = 8
    energies = np.random.default_rng(4).uniform(-3, 3, 1 << d)
    r = eig.lowest_levels(energies, -1.0, 0.3, d, 2, start_block(1 << d, 4), maxiter=1)
    assert not r.converged
    # LevelSolver then falls back to ARPACK and still returns the right levels
    real = eig.lowest_levels
    monkeypatch.setattr(eig, "lowest_levels", lambda *args, **kw: real(*args, **{**kw, "maxiter": 1}))
    problem = AnnealProblem.from_bqm(dimod.generators.anti_crossing_loops(8))
    solver = LevelSolver(problem, 3, "transverse", make_schedule("linear"), 1e-12)
    vals, _ = solver.levels(0.4)
    assert np.allclose(vals, np.linalg.eigvalsh(dense_hamiltonian(problem, 0.4))[:3], atol=1e-9)


def test_block_kernels_match_numpy() -> None:
    rng = np.random.default_rng(5)
    n, m = 3 * kernels.ROW_CHUNK + 17, 3  # chunks and a ragged last chunk
    buf = np.asfortranarray(rng.standard_normal((n, 6 * m)))
    x, hx = buf[:, :m].copy(), buf[:, 3 * m : 4 * m].copy()
    theta, diag, sigma = rng.standard_normal(m), rng.uniform(1, 2, n), -0.5
    r2, w2 = kernels.residual_preconditioned(buf, m, theta, diag, sigma)
    r = hx - x * theta
    w = r / (diag - sigma)[:, None]
    assert np.allclose(buf[:, m : 2 * m], w)
    assert np.allclose(r2, (r**2).sum(0)) and np.allclose(w2, (w**2).sum(0))

    overlap, scale = rng.standard_normal((m, m)), rng.uniform(0.5, 2, m)
    kernels.orthogonalize_scaled(buf, m, overlap, scale)
    assert np.allclose(buf[:, m : 2 * m], (w - x @ overlap) * scale)

    before = buf.copy()
    coeff = rng.standard_normal((3 * m, 2 * m))
    kernels.rotate_basis(buf, m, 3 * m, coeff)
    for half in (0, 3 * m):
        new = before[:, half : half + 3 * m] @ coeff
        assert np.allclose(buf[:, half : half + m], new[:, :m])
        assert np.allclose(buf[:, half + 2 * m : half + 3 * m], new[:, m:])
        assert np.array_equal(buf[:, half + m : half + 2 * m], before[:, half + m : half + 2 * m])


@pytest.mark.parametrize("name", ["clique", "loops"])
def test_lobpcg_and_arpack_agree_on_the_minimum_gap(name: str) -> None:
    gen = dimod.generators
    make = {"clique": gen.anti_crossing_clique, "loops": gen.anti_crossing_loops}[name]
    problem = AnnealProblem.from_bqm(make(10))
    ours = minimum_gap(problem, grid=21, refine=1)
    ref = minimum_gap(problem, grid=21, refine=1, method="arpack", tol=0.0)  # ARPACK to machine precision
    assert ours.method == "lobpcg" and ref.method == "arpack"
    assert ours.delta_min == pytest.approx(ref.delta_min, rel=1e-7)
    assert ours.s_star == pytest.approx(ref.s_star, abs=1e-4)
    assert 0 < ours.matvecs < ref.matvecs
