"""P7: images/s of `qxai explain` in memory, streamed, and streamed on a local Ray runtime.

Runs the same explain command three ways on the same machine, each in a fresh process (so imports
and Ray's start are counted as a user would see them), checks that the three give the same arrays,
and prints wall-clock seconds, images/s and the ratios to the in-memory run::

    .venv/bin/python benchmarks/p7_throughput.py --model runs/model.pt --per-class 20 --workers 2

The model must be a checkpoint of `qxai train` (its own data set is used).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "qxai", *args], capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"qxai {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qxai-p7-"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "QXAI_PROGRESS": "0"}
    common = ["explain", "--model", opts.model, "--per-class", str(opts.per_class),
              "--batch-size", str(opts.batch_size)]  # fmt: skip
    shard = ["--shard-size", str(opts.batch_size * 4)]
    runs = {
        "memory": [*common, "--out", str(work / "memory")],
        "stream": [*common, "--stream", *shard, "--out", str(work / "stream")],
        "ray": [*common, "--ray", "--workers", str(opts.workers), *shard, "--out", str(work / "ray")],
    }
    seconds = {name: timed(args, env) for name, args in runs.items()}
    images = json.loads((work / "memory" / "explanations.json").read_text())["summary"]["images"]
    reference = np.load(work / "memory" / "saliency.npz")
    for name in ("stream", "ray"):
        with np.load(work / name / "saliency.npz") as other:
            same = all(np.array_equal(reference[k], other[k]) for k in reference.files)
        print(f"{name} arrays equal to the in-memory run: {same}")
    for name, s in seconds.items():
        print(f"{name:>7}: {s:7.1f} s for {images} images = {images / s:6.2f} images/s, "
              f"time × {s / seconds['memory']:.2f} of the in-memory run")  # fmt: skip


if __name__ == "__main__":
    main()
