"""P6: peak resident memory of `qxai explain` and `qxai evaluate` on a small and a 10× larger image folder.

For each size N the script writes an ImageFolder of N random RGB 64×64 PNGs (two classes) and runs,
each in a fresh process, on it with a small convolutional model named by file:

* ``memory``  — `qxai explain`, the in-memory path (the whole test split decoded into one tensor),
  ``--per-class 1``;
* ``stream``  — `qxai explain --stream --selection first --per-class 1` (stops once each class has one);
* ``limit``   — `qxai explain --limit 64` (the first 64 test images, streamed);
* ``eval-memory`` — `qxai evaluate --methods qa,gradcam --per-class 1`, in memory;
* ``eval-all`` — `qxai evaluate --all --methods qa,gradcam`: every test image (N/5) explained by both
  methods and scored on every metric, in shards, set-level metrics from the merged shards.

It prints the peak RSS of each run (``ru_maxrss`` of the child) and the ratio large/small per
path; the issue's target is a growth ≤ 10 % for the streamed paths. Usage::

    .venv/bin/python benchmarks/p6_memory.py --small 2000 --large 20000 --work /tmp/qxai-p6
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NET = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        torch.manual_seed(0)
        for p in self.parameters():
            nn.init.normal_(p, std=0.5)

    def forward(self, x):
        return self.head(self.conv(x))
"""


def make_folder(root: Path, count: int) -> Path:
    """``count`` random 64×64 RGB PNGs in two class folders (reused when already complete)."""
    from PIL import Image

    folder = root / f"images-{count}"
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(count)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / ("a", "b")[i % 2] / f"{i:06d}.png")
    done.touch()
    return folder


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run ``python -m qxai ARGS`` in a child process measured alone: (peak RSS MB, seconds)."""
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run([sys.executable, '-m', 'qxai', *sys.argv[1:]], capture_output=True, text=True); "
        "s = time.perf_counter() - t; "
        "sys.stderr.write(r.stderr[-2000:]) if r.returncode else None; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, s, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    peak, seconds, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"qxai {' '.join(args)} failed:\n{out.stderr}")
    return float(peak), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qxai-p6"))
    parser.add_argument("--paths", default="memory,stream,limit,eval-memory,eval-all",
                        help="Which runs, comma-separated.")  # fmt: skip
    opts = parser.parse_args()
    opts.work.mkdir(parents=True, exist_ok=True)
    net = opts.work / "p6_net.py"
    net.write_text(NET)
    evaluate = ["evaluate", "--methods", "qa,gradcam"]
    paths = {
        "memory": ["explain", "--per-class", "1"],
        "stream": ["explain", "--stream", "--selection", "first", "--per-class", "1", "--shard-size", "64"],
        "limit": ["explain", "--limit", "64", "--shard-size", "64"],
        "eval-memory": [*evaluate, "--per-class", "1"],
        "eval-all": [*evaluate, "--all", "--shard-size", "256"],
    }
    paths = {k: v for k, v in paths.items() if k in opts.paths.split(",")}
    results: dict[tuple[str, int], tuple[float, float]] = {}
    for n in (opts.small, opts.large):
        start = time.perf_counter()
        folder = make_folder(opts.work, n)
        print(f"folder of {n} images ready ({time.perf_counter() - start:.0f} s)", flush=True)
        for name, extra in paths.items():
            out = opts.work / f"out-{name}-{n}"
            args = [
                extra[0], "--model", f"{net}:Net", "--dataset", f"imagefolder:{folder}", "--layer", "conv",
                "--batch-size", "32", "--out", str(out), *extra[1:],
            ]  # fmt: skip
            results[name, n] = peak_rss_mb(args)
            peak, seconds = results[name, n]
            print(f"{name:>11} N={n:>6}: peak RSS {peak:8.1f} MB, {seconds:6.1f} s", flush=True)
    print(f"\ngrowth of peak RSS from N={opts.small} to N={opts.large} (target for streamed paths ≤ 1.10):")
    for name in paths:
        ratio = results[name, opts.large][0] / results[name, opts.small][0]
        print(f"  {name:>11}: × {ratio:.3f}")


if __name__ == "__main__":
    main()
