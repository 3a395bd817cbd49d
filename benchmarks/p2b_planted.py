"""P2b: batch-sa's default budget against dwave-samplers SA defaults on planted QUBOs of 64–256 variables.

Families (``qxai.anneal.planted``, known ground energy): planted frustrated loops on a random
4-regular graph (0.3·d loops) and dense Wishart planted instances (α = 2), ``--count`` instances per
size, the same for every solver. Success = best energy of the call within 1e-9 (relative) of the
planted energy. Wall time = the whole ``sample_many`` call (our package's, which for dwave SA
samples model by model), after a warm-up; the two solvers alternate, each keeps its fastest of
``--repeats``. Success rates carry Wilson 95 % intervals.

``--threads 1``, ``--competing`` and ``--rounds N`` as in ``p2_batch_sa.py`` (one thread per
solver; one competing CPU-bound process; N interleaved rounds, min–median–max of the wall times and
of the per-round ratio); the load average is printed.

``--grid`` instead measures batch-sa's success over a grid of sweeps (``--reads`` reads) on
instances disjoint from the benchmark's (seeds 1000…) and prints the smallest number of sweeps that
solved every instance of each family at each size: the data behind
:func:`qxai.anneal.samplers.batch_sa.default_budget`.

    python benchmarks/p2b_planted.py --sizes 64,128,256 --count 20 --rounds 3 [--threads 1] [--competing]
    python benchmarks/p2b_planted.py --grid --sizes 32,64,128,256 --count 20
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
from p2_batch_sa import competing, load, pin_threads, spread

from qxai.anneal.planted import planted_energy, planted_instances
from qxai.anneal.samplers import get_sampler, sample_many


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def solved(sets: list, targets: np.ndarray) -> np.ndarray:
    best = np.array([float(ss.first.energy) for ss in sets])
    return best <= targets + 1e-9 * np.abs(targets)


def timed(sampler, bqms: list, **kw) -> tuple[list, float]:
    t0 = time.perf_counter()
    sets = sample_many(sampler, bqms, seed=0, **kw)
    return sets, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--families", default="loops,wishart")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds")
    ap.add_argument("--threads", type=int, default=None, help="threads of every solver (default: theirs)")
    ap.add_argument("--competing", action="store_true", help="one competing CPU-bound process")
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--reads", type=int, default=8)
    ap.add_argument("--sweeps", default="16,32,64,128,256,512")
    args = ap.parse_args()
    pin_threads(args.threads)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    families = args.families.split(",")
    batch = get_sampler("batch-sa")
    dwave = get_sampler("sa")
    # compile or load every kernel before the timed rounds: the dense path (Wishart) and the sparse
    # one (loops above d ≈ 40; at d = 16 the loops are dense enough for the dense kernel)
    for family, d in (("wishart", 16), ("loops", 64)):
        sample_many(batch, [planted_instances(family, d, 1)[0][0]], seed=0)
    if args.grid:
        need = {}
        for d in sizes:
            for fam in families:
                inst = planted_instances(fam, d, args.count, seed=1000)
                bqms, targets = [b for b, _ in inst], np.array([planted_energy(b, t) for b, t in inst])
                first = None
                for sweeps in [int(x) for x in args.sweeps.split(",")]:
                    sets = sample_many(batch, bqms, seed=0, num_reads=args.reads, num_sweeps=sweeps)
                    ok = solved(sets, targets)
                    print(f"{fam:8s} d={d:4d} reads={args.reads} sweeps={sweeps:5d} success {ok.mean():.2f}",
                          flush=True)
                    if ok.all() and first is None:
                        first = sweeps
                need[(fam, d)] = first
        print("smallest sweeps solving all:", need)
        return
    print(f"threads: {args.threads or 'default'}; competing process: {'yes' if args.competing else 'no'}; "
          f"{os.cpu_count()} cores; load average before: {load()}")
    print(f"| family | d | n | batch-sa mean reads | success batch-sa | success dwave SA defaults "
          f"| batch-sa s (min–median–max of {args.rounds}) | dwave SA s | ratio (min–median–max) | load |")
    print("| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    with competing(args.competing):
        for fam in families:
            for d in sizes:
                inst = planted_instances(fam, d, args.count, seed=0)
                bqms, targets = [b for b, _ in inst], np.array([planted_energy(b, t) for b, t in inst])
                t_b, t_d = [], []
                for _ in range(args.rounds):  # the two solvers alternate, round after round
                    sets_b, t = timed(batch, bqms)
                    t_b.append(t)
                    sets_d, t = timed(dwave, bqms)
                    t_d.append(t)
                ok_b, ok_d = solved(sets_b, targets), solved(sets_d, targets)
                lo_b, hi_b = wilson(int(ok_b.sum()), len(ok_b))
                lo_d, hi_d = wilson(int(ok_d.sum()), len(ok_d))
                reads = np.mean([len(ss) for ss in sets_b])
                ratios = [d_ / b_ for b_, d_ in zip(t_b, t_d, strict=True)]
                print(f"| {fam} | {d} | {len(bqms)} | {reads:.1f} "
                      f"| {ok_b.mean():.0%} [{lo_b:.2f}, {hi_b:.2f}] "
                      f"| {ok_d.mean():.0%} [{lo_d:.2f}, {hi_d:.2f}] "
                      f"| {spread(t_b)} | {spread(t_d)} | {spread(ratios, '{:.1f}')}× "
                      f"| {os.getloadavg()[0]:.1f} |", flush=True)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
