"""P5: wall time of `qxai demo`, cold and warm.

Cold: an empty qxai cache (MNIST is parsed, the model is trained) and no numba JIT cache (the
annealing kernels are compiled). Warm: the same command again, everything cached.

Goals (issue 6): ≤ 10 minutes cold and ≤ 3 minutes warm on 2 cores. Each run is a fresh process,
as a user would start it; the per-stage seconds come from the run's own stages.json.

    python benchmarks/p5_demo.py [--out /tmp/p5] [-- extra demo args]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def run(out: Path, cache: Path, extra: list[str]) -> tuple[float, dict]:
    env = {**os.environ, "QXAI_CACHE": str(cache), "QXAI_PROGRESS": "0"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "qxai", "demo", "--out", str(out), *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
    stages = json.loads((out / "stages.json").read_text())["stages"]
    return seconds, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/qxai-p5"))
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    shutil.rmtree(args.out, ignore_errors=True)
    cache = args.out / "cache"
    results = {}
    import qxai

    package = Path(qxai.__file__).parent
    jit_files = [*package.rglob("__pycache__/*.nbi"), *package.rglob("__pycache__/*.nbc")]
    for path in jit_files:  # numba's on-disk cache: a fresh machine has none
        path.unlink()
    print(f"removed {len(jit_files)} numba cache files")
    for label in ("cold", "warm"):
        seconds, stages = run(args.out / label, cache, extra)
        results[label] = seconds
        per_stage = ", ".join(f"{k} {v['seconds']:.0f} s ({v['status']})" for k, v in stages.items())
        print(f"{label}: {seconds:.0f} s total — {per_stage}")
    print(f"cold {results['cold']:.0f} s = {results['cold'] / 600:.2f} × the 10-minute goal")
    print(f"warm {results['warm']:.0f} s = {results['warm'] / 180:.2f} × the 3-minute goal")
    print(f"warm / cold = {results['warm'] / results['cold']:.2f}")


if __name__ == "__main__":
    main()
