"""P3: state-vector annealing (qxai) vs the authors' per-step ``expm_multiply`` + ``eigsh`` on a sparse H.

Same anneal both ways: an explanation-like random QUBO, linear schedule, the authors' driver
``+(1/d)Σσx``, τ = 50, dt = 0.01 (5000 steps). The reference builds the sparse complex
``H(t) = A H_D + B H_P`` at every step, propagates with ``expm_multiply`` and calls ``eigsh(k=2)``
on it (instantaneous levels), as in the authors' code. It is timed on a slice of steps and
projected to 5000 steps, except for the sizes in ``--full-reference``, which run all 5000 steps
and give |ΔF|. Reach: the largest d whose gap and whose τ = 50 anneal fit in 10 minutes (projected
from one measured gap evaluation count / step slice, said so in the output).

    python benchmarks/p3_statevector.py --sizes 8,10,12 --full-reference 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh, expm_multiply

from qxai.anneal.physics import AnnealProblem, AnnealProtocol, anneal, evolve, minimum_gap
from qxai.anneal.physics.model import driver_ground_state, make_schedule
from qxai.anneal.physics.spectrum import LevelSolver
from qxai.anneal.qubo import explanation_qubo

TAU, DT = 50.0, 0.01


def problem(d: int, seed: int = 0) -> AnnealProblem:
    rng = np.random.default_rng(seed)
    alpha = rng.random(d) + 0.05
    maps = rng.random((d, 6, 6))
    bqm, _ = explanation_qubo(alpha, maps, beta=0.7)
    return AnnealProblem.from_bqm(bqm)


def reference(p: AnnealProblem, steps: int | None, with_eigsh: bool = True) -> tuple[float, float, int]:
    """Authors' loop; returns (seconds, fidelity or nan, steps run).

    ``with_eigsh=False`` runs the identical propagation without the per-step ``eigsh`` diagnostics
    (they never touch ψ), which gives the full reference run's F at a fraction of the time.
    """
    d, n = p.num_qubits, 1 << p.num_qubits
    idx = np.arange(n)
    h_d = sp.csr_matrix(
        (
            np.full(n * d, 1.0 / d, dtype=complex),
            (np.tile(idx, d), np.concatenate([idx ^ (1 << q) for q in range(d)])),
        ),
        shape=(n, n),
    )
    h_p = sp.diags(p.energies.astype(complex)).tocsr()
    psi = driver_ground_state("authors", d)
    total = round(TAU / DT)
    run = total if steps is None else min(steps, total)
    t0 = time.perf_counter()
    for k in range(run):
        s = (k + 0.5) / total
        h = (1 - s) * h_d + s * h_p
        psi = expm_multiply(-1j * DT * h, psi)
        if with_eigsh:
            eigsh(h, k=2, which="SA")
    sec = time.perf_counter() - t0
    fid = float(np.sum(np.abs(psi[p.ground_indices]) ** 2)) if run == total else float("nan")
    return sec, fid, run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="8,10,12")
    ap.add_argument("--slice", type=int, default=40, help="reference steps timed when not run in full")
    ap.add_argument("--full-reference", default="8", help="sizes whose reference runs all 5000 steps")
    ap.add_argument("--full-propagation", default="8,10", help="sizes whose reference ψ runs all steps "
                    "without the eigsh diagnostics (gives F_ref)")  # fmt: skip
    ap.add_argument("--reach-gap", default="", help="ARPACK gap searches (the LOBPCG default: p3_gap.py)")
    ap.add_argument("--reach-dyn", default="16,18,20,22")
    ap.add_argument("--gap-slice", default="", help="sizes whose gap search is too long to run: time "
                    "--gap-points level solves along the grid and project to the evaluation count of the "
                    "last full gap run")  # fmt: skip
    ap.add_argument("--gap-points", type=int, default=2)
    ap.add_argument("--dyn-full", default="", help="sizes whose tau=50 dt=0.01 anneal runs in full")
    args = ap.parse_args()
    full = {int(x) for x in args.full_reference.split(",") if x}
    prop = {int(x) for x in args.full_propagation.split(",") if x}
    print(f"tau={TAU} dt={DT} steps={int(TAU / DT)} driver=authors schedule=linear")
    print(f"{'d':>3} {'ref s':>10} {'ours s':>8} {'ratio':>9} {'F ours':>10} {'F ref':>10} {'|dF|':>9}  note")
    for d in [int(x) for x in args.sizes.split(",") if x]:
        p = problem(d)
        anneal(p, 0.1, AnnealProtocol(dt=DT, driver="authors"))  # compile outside the timing
        t0 = time.perf_counter()
        ours = anneal(p, TAU, AnnealProtocol(dt=DT, driver="authors"))
        t_ours = time.perf_counter() - t0
        sec, f_ref, run = reference(p, None if d in full else args.slice)
        projected = sec * (int(TAU / DT) / run)
        note = "full reference" if run == int(TAU / DT) else f"reference time projected from {run} steps"
        if d in prop and d not in full:
            f_ref = reference(p, None, with_eigsh=False)[1]
            note += "; F_ref from the full reference propagation (no eigsh)"
        df = abs(ours.fidelity - f_ref)
        print(
            f"{d:>3} {projected:>10.1f} {t_ours:>8.3f} {projected / t_ours:>9.0f} {ours.fidelity:>10.6f} "
            f"{f_ref:>10.6f} {df:>9.2e}  {note}"
        )
    print("reach (10-minute budget):")
    evaluations = 29
    for d in [int(x) for x in args.reach_gap.split(",") if x]:
        p = problem(d)
        t0 = time.perf_counter()
        g = minimum_gap(
            p, AnnealProtocol(driver="authors"), grid=21, refine=1, xtol=1e-4, tol=1e-8, method="arpack"
        )
        sec = time.perf_counter() - t0
        evaluations = g.evaluations
        print(
            f"  gap      d={d:>2}: {sec:8.1f} s measured (grid 21 + refine, {g.evaluations} points), "
            f"delta_min={g.delta_min:.4g} s*={g.s_star:.4f}",
            flush=True,
        )
    for d in [int(x) for x in args.gap_slice.split(",") if x]:
        p = problem(d)
        solver = LevelSolver(p, p.degeneracy + 1, "authors", make_schedule("linear"), 1e-8, "arpack")
        # interior grid points of the 21-point grid (the ends are closed form), cold then warm
        s_points = np.linspace(0, 1, 21)[5 : 5 + args.gap_points]
        t0 = time.perf_counter()
        for s in s_points:
            solver.levels(float(s))
        sec = (time.perf_counter() - t0) / len(s_points)
        print(
            f"  gap      d={d:>2}: {sec:8.1f} s per level solve measured ({len(s_points)} solves at "
            f"s={', '.join(f'{s:.2f}' for s in s_points)}); x{evaluations} evaluations -> "
            f"{sec * evaluations:.0f} s projected",
            flush=True,
        )
    for d in [int(x) for x in args.dyn_full.split(",") if x]:
        p = problem(d)
        evolve(p, DT, AnnealProtocol(dt=DT, driver="authors"))
        t0 = time.perf_counter()
        r = anneal(p, TAU, AnnealProtocol(dt=DT, driver="authors"))
        print(
            f"  dynamics d={d:>2}: {time.perf_counter() - t0:8.1f} s measured for tau=50 dt=0.01 "
            f"(5000 steps), F={r.fidelity:.6f} norm-1={r.norm - 1:.1e}",
            flush=True,
        )
    for d in [int(x) for x in args.reach_dyn.split(",") if x]:
        p = problem(d)
        steps = 100
        evolve(p, DT, AnnealProtocol(dt=DT, driver="authors"))  # load the compiled kernels outside the timing
        t0 = time.perf_counter()
        evolve(p, steps * DT, AnnealProtocol(dt=DT, driver="authors"))
        sec = (time.perf_counter() - t0) * int(TAU / DT) / steps
        print(
            f"  dynamics d={d:>2}: {sec:8.1f} s projected for tau=50 dt=0.01 (from {steps} steps); "
            f"dt=0.05: {sec / 5:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
