"""The lowest eigenpairs of ``H = a Σσx + b diag(E)``: block LOBPCG with a diagonal preconditioner.

Why not ARPACK (``eigsh``): along an anneal ``H(s)`` is strongly diagonal where the gap is small
(``B(s) H_P`` dominates near ``s*``), and its spectrum is wide (``‖H_P‖`` ≈ 50 against gaps of
1e-3), so an unpreconditioned Krylov method needs hundreds to thousands of matvecs per ``s``. The
Jacobi preconditioner ``(b E − σ)^{-1}`` captures the diagonal exactly, and a block started from
the previous ``s`` is already close: a solve costs about ten block iterations (``benchmarks/p3_gap.py``
measures both, and scipy's own ``lobpcg``, in the same run).

Why not scipy's ``lobpcg``: it converges in about as many iterations here, but its work outside
the matvec (re-orthonormalisation and bookkeeping on ``(2^d, 3m)`` blocks) dominates at large
``d``. This loop keeps ``[X W P | HX HW HP]`` in one Fortran-order buffer, fuses residual,
preconditioning and orthogonalisation into single numba passes, rotates basis and image in place
by row chunks, and takes column norms from the small Gram matrices; memory ``≈ 7m`` vectors.
Measured 2.8× faster than scipy's at d = 16 with equal levels (BENCHMARKS.md, P3b).

The method is Knyazev's LOBPCG (SIAM J. Sci. Comput. 23, 2001): basis ``[X, W, P]`` with ``X`` the
current Ritz vectors, ``W`` the preconditioned residuals (made orthogonal to ``X``) and ``P`` the
previous search directions; Rayleigh–Ritz on the span. Stopping rule: see :func:`_accurate` (a
cluster Kato–Temple bound on the Ritz-value error, ``≤ tol · ‖H‖`` with ``‖H‖ ≤ |a| d + |b|
max|E|``). Near-dependent directions of the basis are dropped by canonical orthogonalisation of
its Gram matrix (eigenvalues below ``1e-10`` of the largest), which is how the loop survives ``P``
collapsing into ``X`` at convergence.

>>> import numpy as np
>>> d = 4
>>> energies = np.random.default_rng(0).random(1 << d)
>>> start = np.eye(1 << d)[:, :4] + 0.1                  # k = 2 wanted + 2 guards
>>> r = lowest_levels(energies, -0.5, 1.0, d, 2, start)
>>> flips = sum(np.eye(1 << d)[np.arange(1 << d) ^ (1 << p)] for p in range(d))
>>> bool(np.allclose(r.values, np.linalg.eigvalsh(np.diag(energies) - 0.5 * flips)[:2], atol=1e-9))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from qxai.anneal.physics import kernels
from qxai.threads import numba_threads


@dataclass
class Levels:
    """``values (k,)`` ascending; ``vectors (2^d, m)`` the whole block (Fortran order, a warm start)."""

    values: np.ndarray
    vectors: np.ndarray
    iterations: int
    matvecs: int
    residual: float
    converged: bool


def _apply(block: np.ndarray, out: np.ndarray, energies: np.ndarray, a: float, b: float, d: int) -> None:
    # column by column: the columns of a Fortran-order block are contiguous vectors, and the
    # one-vector kernel is memory-bound already (a row-major block kernel measured slower)
    for c in range(block.shape[1]):
        kernels.apply_hamiltonian_kernel(block[:, c], out[:, c], energies, a, b, d)


def _accurate(
    theta: np.ndarray, r2: np.ndarray, k: int, eig_tol: float, gap_rtol: float, gap_tight: float, floor: float
) -> bool:
    """Whether the k lowest Ritz values are within the requested distance of the eigenvalues.

    Cluster Kato–Temple bound: ``0 ≤ θ_j − λ_j ≤ ‖R_k‖_F² / δ`` for the ``k`` lowest, with ``δ`` the
    distance from the cluster to the rest of the spectrum, estimated from below by the first guard
    ``θ_k − r_k − θ_{k−1}``. Without a positive ``δ`` (guards not yet separated), only the plain
    residual bound ``|θ_j − λ| ≤ r_j`` is used, which is much stricter. The target is ``eig_tol``,
    loosened to ``gap_rtol · gap`` (a scan) or tightened to ``gap_tight · gap`` (small gaps to
    relative accuracy), never below ``floor`` (what float64 Rayleigh–Ritz can resolve).
    """
    gap = float(theta[k - 1] - theta[0])
    target = max(eig_tol, gap_rtol * gap)
    if gap_tight > 0.0 and gap > 0.0:
        target = min(target, gap_tight * gap)
    target = max(target, floor)
    if float(np.sqrt(r2[:k].max())) <= target:
        return True
    delta = float(theta[k] - np.sqrt(r2[k]) - theta[k - 1])
    return delta > 0.0 and float(r2[:k].sum()) / delta <= target


def lowest_levels(
    energies: np.ndarray,
    a: float,
    b: float,
    d: int,
    k: int,
    start: np.ndarray,
    *,
    tol: float = 1e-10,
    gap_rtol: float = 0.0,
    gap_tight: float = 0.0,
    maxiter: int = 500,
) -> Levels:
    """The ``k`` lowest eigenpairs of ``a Σ_p σx_p + b diag(energies)`` from a start block.

    ``energies``: ``(2^d,)`` float64. ``start``: ``(2^d, m)`` with ``k < m``; the ``m − k`` extra
    columns are guard vectors: they speed up convergence and give the error bound its ``δ``.
    Stops when the bound on the error of every wanted value is ``≤ tol · ‖H‖``, or, looser, ``≤
    gap_rtol · (θ_{k−1} − θ_0)`` (a scan that only needs the gap to a few digits), or, tighter,
    ``≤ gap_tight · (θ_{k−1} − θ_0)`` (tiny gaps to relative accuracy; floor ``64 ε ‖H‖``). Returns the ``k``
    values and the final ``m`` Ritz vectors (orthonormal), which warm-start the next call.

    Threads (:mod:`qxai.threads`): numba's kernels get :func:`kernels.state_threads` threads for
    the whole solve and BLAS (the Gram products) one thread while they have more than one, so the
    two pools never oversubscribe the cores.
    """
    n, m = start.shape
    if not 1 <= k < m or 3 * m > n:
        raise ValueError(f"need 1 ≤ k < m and 3m ≤ 2^d; got k={k}, m={m}, 2^d={n}")
    with numba_threads(kernels.state_threads(d)):
        return _lowest_levels(energies, a, b, d, k, start, tol, gap_rtol, gap_tight, maxiter)


def _lowest_levels(
    energies: np.ndarray,
    a: float,
    b: float,
    d: int,
    k: int,
    start: np.ndarray,
    tol: float,
    gap_rtol: float,
    gap_tight: float,
    maxiter: int,
) -> Levels:
    """:func:`lowest_levels` on the current thread settings."""
    n, m = start.shape
    scale = abs(a) * d + abs(b) * float(np.abs(energies).max()) or 1.0
    floor = 64 * np.finfo(float).eps * scale
    diag = b * energies
    diag_min = float(diag.min())
    # [X W P | HX HW HP] in one Fortran-order buffer: every column slice is a contiguous vector
    buf = np.empty((n, 6 * m), order="F")
    x, w = buf[:, :m], buf[:, m : 2 * m]
    # orthonormalise the start in place of a QR copy: X = start · L⁻ᵀ with LLᵀ = startᵀstart
    chol = np.linalg.cholesky(start.T @ start + 1e-14 * np.trace(start.T @ start) * np.eye(m))
    np.matmul(start, np.linalg.inv(chol).T, out=x)
    _apply(x, buf[:, 3 * m : 4 * m], energies, a, b, d)
    matvecs = m
    gram = x.T @ buf[:, 3 * m : 4 * m]
    theta, c = np.linalg.eigh((gram + gram.T) / 2)
    kernels.rotate_basis(buf, m, m, np.hstack([c, np.zeros((m, m))]))
    has_p = False
    residual = np.inf
    it = 0
    while it < maxiter:
        it += 1
        # Jacobi preconditioner, shifted below both the spectrum and the diagonal: positive definite
        sigma = min(float(theta[0]), diag_min) - max(abs(a), 1e-3 * scale)
        r2, w2 = kernels.residual_preconditioned(buf, m, theta, diag, sigma)
        residual = float(np.sqrt(r2[:k].max()))
        if _accurate(theta, r2, k, tol * scale, gap_rtol, gap_tight, floor):
            break
        # W ⟂ X and unit columns; X is orthonormal, so ‖w − X XᵀW‖² = ‖w‖² − ‖Xᵀw‖²
        overlap = x.T @ w
        rest = np.maximum(w2 - (overlap**2).sum(axis=0), 1e-30 * np.maximum(w2, 1e-300))
        kernels.orthogonalize_scaled(buf, m, overlap, 1.0 / np.sqrt(rest))
        _apply(w, buf[:, 4 * m : 5 * m], energies, a, b, d)
        matvecs += m
        width = 3 * m if has_p else 2 * m
        if has_p:  # one pass: Sᵀ [S | HS]
            both = buf[:, : 3 * m].T @ buf
            gram_s, gram_h = both[:, : 3 * m], both[:, 3 * m :]
        else:
            gram_s = buf[:, :width].T @ buf[:, :width]
            gram_h = buf[:, :width].T @ buf[:, 3 * m : 3 * m + width]
        # canonical orthogonalisation: drop near-dependent directions instead of failing Cholesky
        ev, u = np.linalg.eigh((gram_s + gram_s.T) / 2)
        keep = ev > 1e-10 * ev[-1]
        t = u[:, keep] / np.sqrt(ev[keep])
        vals, v = scipy.linalg.eigh(t.T @ ((gram_h + gram_h.T) / 2) @ t)
        coeff = t @ v[:, :m]  # (width, m): the new Ritz vectors in the basis
        theta = vals[:m]
        p_coeff = coeff.copy()
        p_coeff[:m] = 0.0  # P: the part of the update outside the old X, scaled to unit columns
        p_norm = np.sqrt(np.maximum(np.einsum("ij,ik,kj->j", p_coeff, gram_s, p_coeff), 0.0))
        p_coeff /= np.where(p_norm > 0.0, p_norm, 1.0)
        kernels.rotate_basis(buf, m, width, np.ascontiguousarray(np.hstack([coeff, p_coeff])))
        has_p = True
    converged = _accurate(theta, r2, k, tol * scale, gap_rtol, gap_tight, floor)
    return Levels(theta[:k].copy(), x.copy(order="F"), it, matvecs, residual, converged)
