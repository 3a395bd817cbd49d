"""P3 (gap): the minimum gap by our block LOBPCG against scipy's ARPACK (``eigsh``) and ``lobpcg``.

Same problems as ``p3_statevector.py`` (explanation-like random QUBOs, the authors' driver
``+(1/d)Σσx``, linear schedule). Three measurements, all in the same run:

1. ``--compare``: the whole ``minimum_gap`` search (grid 21, one refinement, ``xtol`` 1e-4) with
   ``method="lobpcg"`` (ours, default ``tol``) and ``method="arpack"`` (``eigsh`` on the same
   matrix-free operator, ``tol`` 1e-8): wall time, matvecs, ``Δ_min``, ``s*``, their difference.
2. ``--solver-size``: the level solves of a scan (a chain from ``s = 1`` down the grid, each
   warm-started from the previous one) by our loop and by ``scipy.sparse.linalg.lobpcg`` given the
   same operator, the same Jacobi preconditioner and the same start, asked for the residual ours
   reached: time ratio and the largest difference of the levels.
3. ``--reach``: ours alone, the whole search at larger ``d``, measured (nothing projected).
4. ``--tiny d``: a gap ≈ 1e-5 (``anti_crossing_clique(d)``, −Σσx), ours against ARPACK at
   ``tol = 0``: the digits of a tiny ``Δ_min``.

    cd benchmarks && python -u p3_gap.py --compare 14,16 --solver-size 16 --reach 18,20,22,24
    cd benchmarks && python -u p3_gap.py --compare "" --solver-size 0 --reach "" --tiny 14
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from p3_statevector import problem
from scipy.sparse.linalg import LinearOperator, lobpcg

from qxai.anneal.physics import kernels, minimum_gap
from qxai.anneal.physics.eigensolver import lowest_levels
from qxai.anneal.physics.spectrum import GUARDS

SETTINGS = {"driver": "authors", "grid": 21, "refine": 1, "xtol": 1e-4}


def compare(d: int) -> None:
    p = problem(d)
    minimum_gap(problem(8), **SETTINGS)  # compile the kernels outside the timing
    t0 = time.perf_counter()
    ours = minimum_gap(p, **SETTINGS)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = minimum_gap(p, **SETTINGS, method="arpack", tol=1e-8)
    t_ref = time.perf_counter() - t0
    diff = abs(ours.delta_min - ref.delta_min)
    print(f"  d={d:>2}  arpack {t_ref:8.1f} s {ref.matvecs:>6} matvecs | ours {t_ours:7.1f} s "
          f"{ours.matvecs:>5} matvecs | x{t_ref / t_ours:5.1f} | delta_min {ours.delta_min:.10f} vs "
          f"{ref.delta_min:.10f} (|diff| {diff:.1e}), s* {ours.s_star:.5f} vs {ref.s_star:.5f}",
          flush=True)  # fmt: skip


def solver_chain(d: int, points: int) -> None:
    p = problem(d)
    n, energies, k = 1 << d, p.energies, p.degeneracy + 1
    m = k + GUARDS
    start = np.zeros((n, m), order="F")
    start[np.argsort(energies)[:m], np.arange(m)] = 1.0
    start += 1e-2 * np.random.default_rng(0).standard_normal((n, m)) / np.sqrt(n)
    lowest_levels(problem(8).energies, 0.1, 0.5, 8, k, start[:256].copy(order="F"))  # compile
    ours_block, ref_block = start.copy(order="F"), start.copy()
    t_ours = t_ref = 0.0
    worst = 0.0
    for s in np.linspace(0, 1, 21)[::-1][1 : 1 + points]:
        a, b = (1 - s) / d, s
        t0 = time.perf_counter()
        r = lowest_levels(energies, a, b, d, k, ours_block)
        t_ours += time.perf_counter() - t0
        ours_block = r.vectors

        def matmat(x: np.ndarray, a: float = a, b: float = b) -> np.ndarray:
            x = np.asfortranarray(x.reshape(n, -1))
            out = np.empty_like(x)
            for c in range(x.shape[1]):
                kernels.apply_hamiltonian(x[:, c], out[:, c], energies, a, b, d)
            return out

        op = LinearOperator((n, n), matvec=matmat, matmat=matmat, dtype=np.float64)
        diag = b * energies
        theta0 = float(np.min(np.sum(ref_block * matmat(ref_block), axis=0) / np.sum(ref_block**2, axis=0)))
        sigma = min(theta0, float(diag.min())) - max(abs(a), 1e-3 * (abs(a) * d + b * np.abs(energies).max()))
        inv = 1.0 / (diag - sigma)

        def precondition(x: np.ndarray, inv: np.ndarray = inv) -> np.ndarray:
            return inv[:, None] * x.reshape(n, -1) if x.ndim == 2 else inv * x

        prec = LinearOperator((n, n), matvec=precondition, matmat=precondition, dtype=np.float64)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tol = max(r.residual, 1e-14)
            vals, vecs = lobpcg(op, ref_block, M=prec, largest=False, tol=tol, maxiter=2000)
        t_ref += time.perf_counter() - t0
        ref_block = vecs
        worst = max(worst, float(np.abs(np.sort(vals)[:k] - r.values).max()))
        print(f"    s={s:.2f}: ours {r.iterations:>3} iterations, residual {r.residual:.1e}", flush=True)
    print(f"  d={d:>2}, {points} solves: scipy lobpcg {t_ref:7.1f} s | ours {t_ours:6.1f} s | "
          f"x{t_ref / t_ours:4.1f} | max |level diff| {worst:.1e}", flush=True)  # fmt: skip


def reach(d: int) -> None:
    p = problem(d)
    t0 = time.perf_counter()
    g = minimum_gap(p, **SETTINGS)
    sec = time.perf_counter() - t0
    print(
        f"  d={d:>2}: {sec:8.1f} s measured, {g.evaluations} points, {g.matvecs} matvecs, "
        f"delta_min={g.delta_min:.6g} s*={g.s_star:.4f}",
        flush=True,
    )


def tiny_gap(d: int) -> None:
    # dimod's anti_crossing_clique: Δ_min ≈ 1e-5 at d = 14 with −Σσx, where a tolerance relative to
    # ‖H‖ alone would leave only a few digits; ARPACK at tol = 0 (machine precision) is the oracle
    import dimod

    from qxai.anneal.physics import AnnealProblem

    p = AnnealProblem.from_bqm(dimod.generators.anti_crossing_clique(d))
    for method, kw in (("lobpcg", {}), ("arpack", {"tol": 0.0})):
        t0 = time.perf_counter()
        g = minimum_gap(p, grid=21, refine=1, method=method, **kw)
        print(f"  anti_crossing_clique({d}) {method:>6}: delta_min {g.delta_min:.12e} s* {g.s_star:.6f} "
              f"{g.matvecs} matvecs {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", default="14,16")
    ap.add_argument("--solver-size", type=int, default=16)
    ap.add_argument("--solver-points", type=int, default=10)
    ap.add_argument("--reach", default="18,20,22")
    ap.add_argument("--tiny", type=int, default=0, help="anti_crossing_clique(d), ours vs ARPACK at tol=0")
    args = ap.parse_args()
    if args.tiny:
        print("tiny gap, relative accuracy:")
        tiny_gap(args.tiny)
    print("minimum_gap, ours (block LOBPCG) vs arpack (eigsh), grid 21 + 1 refinement:")
    for d in [int(x) for x in args.compare.split(",") if x]:
        compare(d)
    if args.solver_size:
        print(
            "level solves along a scan, ours vs scipy.sparse.linalg.lobpcg (same operator, preconditioner, "
            "start):"
        )
        solver_chain(args.solver_size, args.solver_points)
    print("reach, ours:")
    for d in [int(x) for x in args.reach.split(",") if x]:
        reach(d)


if __name__ == "__main__":
    main()
