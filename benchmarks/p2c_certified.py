"""P2c: the certified solver (``exact-mip``: HiGHS per cardinality) on explanation QUBOs of wide layers.

QUBOs: ``ResNet18Reduced`` (3 × 64 × 64 inputs, 10 classes) with random weights (seed 0, eval mode),
``--maps`` 64 / 128 / 256 maps in its ``reduce`` layer, on smooth random images (Gaussian noise
blurred, so the maps are spatially correlated like real ones); Grad-CAM α of the predicted class and
β = 0.7 through ``QAFeatureMapExplainer.build_qubos`` — exactly what ``qxai explain`` solves. With
random weights d (maps with α > 0) is ≈ maps / 2.

For each QUBO: ``exact-mip`` with ``--time-limit`` seconds: proven optimal or not, time, gap; and
where ``d ≤ --enumerate-max`` our enumeration's time and optimum (they must agree). ``--compare N``
also runs the other engine (``highs``: HiGHS per cardinality; ``cp-sat``: OR-Tools CP-SAT on the
plain linearisation) on the first N QUBOs of each size, same time limit.

    python benchmarks/p2c_certified.py --maps 32,64,128,256 --images 10 --time-limit 10 --compare 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qxai.anneal.enumerate import enumerate_energies
from qxai.anneal.samplers.mip import ExactMIPSampler
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", default="64,128,256")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--enumerate-max", type=int, default=26)
    ap.add_argument("--engine", default="cp-sat", choices=["cp-sat", "highs"])
    ap.add_argument("--compare", type=int, default=0, help="also the other engine on the first N per size")
    args = ap.parse_args()
    sampler = ExactMIPSampler(time_limit=args.time_limit, engine=args.engine)
    other_engine = "highs" if args.engine == "cp-sat" else "cp-sat"
    other = ExactMIPSampler(time_limit=args.time_limit, engine=other_engine)
    warm = qubos(16, 1)[0]  # load the numba kernels (batch-sa's hint) and both libraries first
    sampler.sample(warm)
    other.sample(warm)
    print("| maps | QUBOs | d (median, range) | proven optimal ≤ limit | median s | median gap (not proven) "
          "| enumerated (d ≤ max) | agree | enum median s | mip median s (same) |")  # fmt: skip
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for maps in [int(m) for m in args.maps.split(",") if m]:
        models = [b for b in qubos(maps, args.images) if len(b)]
        rows = []
        for bqm in models:
            ss = sampler.sample(bqm)
            row = {"d": len(bqm), "opt": ss.info["optimal"], "s": ss.info["seconds"], "gap": ss.info["gap"],
                   "e": float(ss.first.energy)}  # fmt: skip
            if len(bqm) <= args.enumerate_max:
                t0 = time.perf_counter()
                row["exact"] = float(enumerate_energies(bqm)[1].min())
                row["enum_s"] = time.perf_counter() - t0
            if len(rows) < args.compare:
                o = other.sample(bqm).info
                print(f"  {other.engine}: optimal={o['optimal']} {o['seconds']:.2f}s bound={o['bound']:.6g} "
                      f"| {sampler.engine}: bound={ss.info['bound']:.6g}", flush=True)
            rows.append(row)
            print(f"  maps={maps} d={row['d']} optimal={row['opt']} {row['s']:.2f}s gap={row['gap']:.3g}"
                  + (f" enum={row['enum_s']:.2f}s" if "exact" in row else ""), flush=True)
        d = np.array([r["d"] for r in rows])
        opt = np.array([r["opt"] for r in rows])
        gaps = [r["gap"] for r in rows if not r["opt"]]
        enum = [r for r in rows if "exact" in r]
        agree = sum(abs(r["exact"] - r["e"]) <= 1e-9 * max(1, abs(r["exact"])) for r in enum if r["opt"])
        print(f"| {maps} | {len(rows)} | {int(np.median(d))} ({d.min()}–{d.max()}) | {opt.mean():.0%} "
              f"({opt.sum()}/{len(rows)}) | {np.median([r['s'] for r in rows]):.2f} "
              f"| {np.median(gaps) if gaps else float('nan'):.3g} | {len(enum)} "
              f"| {agree}/{sum(r['opt'] for r in enum)} "
              f"| {np.median([r['enum_s'] for r in enum]) if enum else float('nan'):.2f} "
              f"| {np.median([r['s'] for r in enum]) if enum else float('nan'):.2f} |", flush=True)


if __name__ == "__main__":
    main()
