"""P7: images/s of `qxai explain` in memory, streamed, and streamed on a local Ray runtime.

Every run is a fresh process (imports, model load, Ray's start and the actors' model loading
count, as a user sees them). Two measurements, each printing its ratios from the same run:

1. **End to end** — the same ``--per-class`` command in memory, streamed (``--stream``) and on Ray
   (``--ray --workers W``): seconds, images/s, time ratios.
2. **Start-up vs steady state** — the streamed and the Ray command with ``--limit`` at two sizes
   N1 < N2: the steady-state rate is (N2 − N1) / (T2 − T1) and the start-up T1 − N1 / rate. The
   ratio of the two steady-state rates is the Ray overhead once start-up is amortised; from both
   figures the script projects the end-to-end overhead of larger runs and the size from which it
   stays within the issue's 15 %.

The streamed and the Ray run must give equal arrays; both are compared with the in-memory run too.

Each command runs ``--repeats`` times, interleaved with the others, and its fastest run counts
(other jobs on a shared machine slow some runs down). ``--compete K`` keeps K busy-loop processes
(``python -c 'while True: pass'``) running during every run (a loaded machine); the load average is
printed before and after each run (other people's jobs count too).

``--generate N`` explains a generated folder of N random RGB 64×64 PNGs (two classes, written once
under ``--data``) with the P6 benchmark's small network named by file, instead of
``--model``/``--dataset``/``--layer``. BENCHMARKS.md records::

    .venv/bin/python benchmarks/p7_throughput.py --generate 20000 --per-class 1000 --sizes 400,4000
    .venv/bin/python benchmarks/p7_throughput.py --generate 20000 --per-class 1000 --sizes 400,4000 \\
        --compete 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Sizes (images) for which the end-to-end overhead is projected.
PROJECT_TO = (10_000, 50_000)
#: The issue's bound on the Ray overhead.
TARGET = 1.15


def timed(args: list[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of a fresh ``python -m qxai ARGS``."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "qxai", *args], capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"qxai {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return time.perf_counter() - start


def compare(a: Path, b: Path) -> str:
    """Whether two runs' ``saliency.npz`` arrays are equal, else the largest difference. (The in-memory
    loader of an image folder holds channels-last tensors, the stream contiguous ones: the convolution
    then rounds differently, by float32 ulps.)"""
    with np.load(a / "saliency.npz") as x, np.load(b / "saliency.npz") as y:
        if sorted(x.files) != sorted(y.files) or any(x[k].shape != y[k].shape for k in x.files):
            return "DIFFERENT keys or shapes"
        if all(np.array_equal(x[k], y[k]) for k in x.files):
            return "equal"
        worst = {k: float(np.max(np.abs(x[k].astype(float) - y[k].astype(float)))) for k in x.files}
        return "not equal; max |difference| " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items() if v)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a `qxai train` checkpoint or file.py:Class")
    parser.add_argument("--dataset", help="data set (default: the model's own)")
    parser.add_argument("--layer", help="layer to explain (default: the model's)")
    parser.add_argument("--generate", type=int, help="explain a generated folder of this many PNGs")
    parser.add_argument("--data", type=Path, default=Path("/tmp/qxai-p7-data"), help="for --generate")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--sizes", default="400,4000", help="N1,N2: --limit of the start-up/steady runs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compete", type=int, default=0, help="busy-loop processes during the runs")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each command; the fastest counts")
    opts = parser.parse_args()
    if opts.generate:
        sys.path.insert(0, str(Path(__file__).parent))
        from p6_memory import NET, make_folder

        folder = make_folder(opts.data, opts.generate)
        (opts.data / "p7_net.py").write_text(NET)
        opts.model, opts.dataset = f"{opts.data / 'p7_net.py'}:Net", f"imagefolder:{folder}"
        opts.layer = "conv"
    if not opts.model:
        parser.error("give --model (or --generate N)")
    return opts


def measure(opts: argparse.Namespace, work: Path) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "QXAI_PROGRESS": "0"}
    common = ["explain", "--model", opts.model, "--per-class", str(opts.per_class),
              "--batch-size", str(opts.batch_size)]  # fmt: skip
    for option, value in (("--dataset", opts.dataset), ("--layer", opts.layer)):
        common += [option, value] if value else []
    shard = ["--shard-size", str(opts.shard_size)]
    on_ray = ["--ray", "--workers", str(opts.workers)]
    runs = {
        "memory": [*common, "--out", str(work / "memory")],
        "stream": [*common, "--stream", *shard, "--out", str(work / "stream")],
        "ray": [*common, *on_ray, *shard, "--out", str(work / "ray")],
    }
    n1, n2 = (int(n) for n in opts.sizes.split(","))
    for n in (n1, n2):
        runs[f"stream-{n}"] = [*common, "--limit", str(n), *shard, "--out", str(work / f"stream-{n}")]
        runs[f"ray-{n}"] = [*common, "--limit", str(n), *on_ray, *shard, "--out", str(work / f"ray-{n}")]

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(opts.compete)]
    seconds: dict[str, float] = {}
    try:
        for repeat in range(opts.repeats):  # the runs interleaved, each repeated: the fastest counts
            for name, args in runs.items():
                before = load_average()
                t = timed(args, env)
                seconds[name] = min(t, seconds.get(name, t))
                print(f"{repeat + 1}/{opts.repeats} {name:>11}: {t:6.1f} s; load average {before} before, "
                      f"{load_average()} after", flush=True)  # fmt: skip
                if repeat + 1 < opts.repeats:
                    shutil.rmtree(args[-1])  # the --out folder: a second run must not resume the first
    finally:
        for process in busy:
            process.kill()
            process.wait()

    images = json.loads((work / "memory" / "explanations.json").read_text())["summary"]["images"]
    for name, than in (("stream", "memory"), ("ray", "stream"), ("ray", "memory")):
        print(f"{name} arrays vs the {than} run: {compare(work / name, work / than)}")
    print(f"\nend to end ({images} images, {opts.compete} competing process(es)):")
    for name in ("memory", "stream", "ray"):
        t = seconds[name]
        print(f"{name:>7}: {t:7.1f} s = {images / t:6.2f} images/s, "
              f"time × {t / seconds['memory']:.2f} of the in-memory run")  # fmt: skip
    print(f"    ray: time × {seconds['ray'] / seconds['stream']:.2f} of the streamed run")

    print(f"\nstart-up and steady state (--limit {n1} and --limit {n2}):")
    rate, startup = {}, {}
    for name in ("stream", "ray"):
        t1, t2 = seconds[f"{name}-{n1}"], seconds[f"{name}-{n2}"]
        rate[name] = (n2 - n1) / (t2 - t1)
        startup[name] = t1 - n1 / rate[name]
        print(f"{name:>7}: start-up {startup[name]:5.1f} s, then {rate[name]:6.2f} images/s")
    steady = rate["stream"] / rate["ray"]
    extra = startup["ray"] - startup["stream"]
    print(f"steady-state Ray overhead: time × {steady:.3f} of the streamed run "
          f"({100 * (steady - 1):+.1f} %); extra start-up {extra:.1f} s")  # fmt: skip
    for n in PROJECT_TO:
        projected = (startup["ray"] + n / rate["ray"]) / (startup["stream"] + n / rate["stream"])
        print(f"projected end-to-end Ray overhead at {n} images: time × {projected:.3f}")
    # (S_r + N/r_r) ≤ TARGET (S_s + N/r_s)  ⇔  N (1/r_r − TARGET/r_s) ≤ TARGET S_s − S_r
    slope = 1 / rate["ray"] - TARGET / rate["stream"]
    if slope < 0:
        n_min = max(0.0, (startup["ray"] - TARGET * startup["stream"]) / -slope)
        print(f"end-to-end Ray overhead ≤ {100 * (TARGET - 1):.0f} % from about {n_min:.0f} images on")
    else:
        print(f"end-to-end Ray overhead stays above {100 * (TARGET - 1):.0f} % at every size")


def main() -> None:
    opts = options()
    work = Path(tempfile.mkdtemp(prefix="qxai-p7-", dir="/tmp"))
    try:
        measure(opts, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
