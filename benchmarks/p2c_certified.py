"""P2c: the certified solver (``exact-mip``) on explanation QUBOs of wide layers.

QUBOs: ``ResNet18Reduced`` (3 × 64 × 64 inputs, 10 classes) with random weights (seed 0, eval mode),
``--maps`` 64 / 128 / 256 maps in its ``reduce`` layer, on smooth random images (Gaussian noise
blurred, so the maps are spatially correlated like real ones); Grad-CAM α of the predicted class and
β = 0.7 through ``QAFeatureMapExplainer.build_qubos`` — exactly what ``qxai explain`` solves. With
random weights d (maps with α > 0) is ≈ maps / 2.

For each QUBO: ``exact-mip`` (``--engine``, default ``auto`` = the structured branch and bound on these
QUBOs, whose couplings are all ≥ 0) with ``--time-limit`` seconds: proven optimal or not, time, gap;
where ``d ≤ --enumerate-max`` our enumeration's optimum too (they must agree). Per size: the share
proven optimal within the limit with its 95 % Wilson interval, the median time, the gaps (min /
median / max; 0 up to float round-off where proven) against the spread of the energies (the range
and standard deviation of the best energies over the size's QUBOs, and the median |energy|).
``--compare N`` also runs the engines of ``--compare-engines`` (default ``cp-sat,highs``) on the first
N QUBOs of each size with the same limit. ``--competing`` runs one CPU-bound process beside the whole
run; the 1-minute load average is printed before and after each size.

    python benchmarks/p2c_certified.py --maps 64,128,256 --images 20 --time-limit 10 --compare 3
    python benchmarks/p2c_certified.py --maps 128,256 --images 20 --competing
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from qxai.anneal.enumerate import enumerate_energies
from qxai.anneal.physics.statistics import wilson_interval
from qxai.anneal.samplers.mip import ENGINES, ExactMIPSampler
from qxai.explain.qa import QAFeatureMapExplainer
from qxai.models.architectures import ResNet18Reduced


def qubos(maps: int, images: int, seed: int = 0) -> list:
    torch.manual_seed(seed)
    net = ResNet18Reduced(3, 10, (64, 64), maps=maps).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(images, 3, 64, 64, generator=gen)
    x = torch.nn.functional.avg_pool2d(x, 9, stride=1, padding=4)  # smooth: correlated pixels
    batch = QAFeatureMapExplainer(net, "reduce", solver="exact-mip").build_qubos(x)
    return [bqm for bqm, _ in batch.qubos]


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", default="64,128,256")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--enumerate-max", type=int, default=26)
    ap.add_argument("--engine", default="auto", choices=list(ENGINES))
    ap.add_argument(
        "--compare", type=int, default=0, help="also the --compare-engines on the first N per size"
    )
    ap.add_argument("--compare-engines", default="cp-sat,highs")
    ap.add_argument("--competing", action="store_true", help="one CPU-bound process beside the run")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below ends the competing process
    sampler = ExactMIPSampler(time_limit=args.time_limit, engine=args.engine)
    others = [ExactMIPSampler(time_limit=args.time_limit, engine=e)
              for e in args.compare_engines.split(",") if e and args.compare]  # fmt: skip
    warm = qubos(16, 1)[0]  # compile/load the numba kernels and both libraries first, outside the timings
    for s in [sampler, *others]:
        s.sample(warm)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.competing else None
    try:
        time.sleep(1.0 if hog else 0.0)
        print(
            f"P2c: engine {args.engine}, limit {args.time_limit:g} s, "
            f"{'one competing process' if hog else 'no competing process of ours'}, cores {os.cpu_count()}"
        )
        table = []
        for maps in [int(m) for m in args.maps.split(",") if m]:
            models = [b for b in qubos(maps, args.images) if len(b)]
            before = load()
            rows = []
            for bqm in models:
                ss = sampler.sample(bqm)
                info = ss.info
                row = {"d": len(bqm), "opt": info["optimal"], "s": info["seconds"], "gap": info["gap"],
                       "e": float(ss.first.energy), "engine": info["engine"]}  # fmt: skip
                if len(bqm) <= args.enumerate_max:
                    row["exact"] = float(enumerate_energies(bqm)[1].min())
                if len(rows) < args.compare:
                    for other in others:
                        o = other.sample(bqm)
                        print(
                            f"  compare {other.engine}: optimal={o.info['optimal']} {o.info['seconds']:.2f}s "
                            f"energy={float(o.first.energy):.6f} bound={o.info['bound']:.6g} "
                            f"| {row['engine']}: energy={row['e']:.6f} bound={ss.info['bound']:.6g}",
                            flush=True,
                        )
                rows.append(row)
                print(
                    f"  maps={maps} d={row['d']} {row['engine']} optimal={row['opt']} {row['s']:.3f}s "
                    f"gap={row['gap']:.3g} energy={row['e']:.6f}"
                    + (f" enum={row['exact']:.6f}" if "exact" in row else ""),
                    flush=True,
                )
            d = np.array([r["d"] for r in rows])
            opt = np.array([r["opt"] and r["s"] <= args.time_limit for r in rows])
            gaps = np.array([r["gap"] for r in rows])
            energies = np.array([r["e"] for r in rows])
            enum = [r for r in rows if "exact" in r]
            agree = sum(abs(r["exact"] - r["e"]) <= 1e-9 * max(1, abs(r["exact"])) for r in enum)
            lo, hi = wilson_interval(int(opt.sum()), len(rows))
            table.append(
                f"| {maps} | {len(rows)} | {int(np.median(d))} ({d.min()}–{d.max()}) | {opt.mean():.0%} "
                f"({opt.sum()}/{len(rows)}) | {lo:.0%}–{hi:.0%} | {np.median([r['s'] for r in rows]):.3f} "
                f"| {max(r['s'] for r in rows):.3f} "
                f"| {gaps.min():.2g} / {np.median(gaps):.2g} / {gaps.max():.2g} "
                f"| {np.ptp(energies):.3g} / {energies.std():.3g} / {np.median(np.abs(energies)):.3g} "
                f"| {agree}/{len(enum)} | {before} → {load()} |"
            )
            print(table[-1], flush=True)
        print("\n| maps | QUBOs | d (median, range) | proven optimal ≤ limit | 95 % Wilson | median s "
              "| max s | gap min / median / max | energies: range / std / median abs "
              "| agree with enumeration | load avg 1/5/15 before → after |")  # fmt: skip
        print("| ---: | ---: | --- | ---: | --- | ---: | ---: | --- | --- | ---: | --- |")
        print("\n".join(table))
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


if __name__ == "__main__":
    main()
