"""P3-load: the state-vector kernels on an idle and on a loaded machine, default threads vs one thread.

P3's anneal (explanation-like random QUBO, authors' driver ``+(1/d)Σσx``, linear schedule, dt = 0.01)
and P3b's gap search (``minimum_gap(grid=21, refine=1, xtol=1e-4)``), each timed in a fresh Python
process — as a user runs the CLI — in four conditions, interleaved round by round:

- setting ``default``: no thread variable set (the script removes any it inherited);
- setting ``one``: ``NUMBA_NUM_THREADS=OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1``;
- ``idle``: nothing started by this script (other users' jobs may run: the load average is printed);
- ``loaded``: one competing CPU-bound process (``while True: pass``), started before and killed
  after each measurement by this script.

Compilation is excluded (a warm-up anneal at d = 6 in the same process first). Each cell is the
median over ``--rounds`` rounds. The anneal runs ``--steps`` steps at each size (τ = steps · dt), so
large d stay affordable; the table gives seconds per 1000 steps as well.

    python benchmarks/p3_load.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
from p3_statevector import problem
from qxai.anneal.physics import AnnealProtocol, anneal, minimum_gap
kind, d, steps = {kind!r}, {d}, {steps}
anneal(problem(6), 0.5, AnnealProtocol(dt=0.01, driver="authors"))  # compile / load the kernels' cache
if kind == "gap":
    minimum_gap(problem(8), grid=5)
p = problem(d)
t0 = time.perf_counter()
if kind == "anneal":
    anneal(p, steps * 0.01, AnnealProtocol(dt=0.01, driver="authors"))
else:
    minimum_gap(p, grid=21, refine=1, xtol=1e-4)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def run_child(kind: str, d: int, steps: int, setting: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if setting == "one":
        env.update(dict.fromkeys(THREAD_VARS, "1"))
    code = CHILD.format(bench=os.path.dirname(os.path.abspath(__file__)), kind=kind, d=d, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--anneal", default="10:5000,12:5000,16:1000,20:100", help="d:steps,…")
    ap.add_argument("--gap", default="16", help="sizes of the gap search")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default="", help="also write all timings here")
    args = ap.parse_args()
    # a SIGTERM runs the finally blocks below, so the competing process never outlives the script
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cases = [("anneal", int(a), int(b)) for a, b in (x.split(":") for x in args.anneal.split(",") if x)]
    cases += [("gap", int(x), 0) for x in args.gap.split(",") if x]
    times: dict[tuple, list[float]] = {}
    loads: dict[str, list[float]] = {"idle": [], "loaded": []}
    for r in range(args.rounds):
        for load in ("idle", "loaded"):
            for kind, d, steps in cases:
                for setting in ("default", "one"):
                    hog = None
                    if load == "loaded":
                        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        time.sleep(0.5)
                    try:
                        loads[load].append(os.getloadavg()[0])
                        sec = run_child(kind, d, steps, setting)
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    times.setdefault((kind, d, steps, load, setting), []).append(sec)
                    print(f"round {r} {load:6s} {kind} d={d} steps={steps} {setting:7s} {sec:8.3f} s",
                          flush=True)
    print()
    print(f"load average (1 min) during idle cells {min(loads['idle']):.2f}–{max(loads['idle']):.2f}, "
          f"loaded cells {min(loads['loaded']):.2f}–{max(loads['loaded']):.2f}")  # fmt: skip
    print("| case | d | steps | idle default (s) | idle one (s) | idle default / one | loaded default (s) "
          "| loaded one (s) | loaded default / one |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, d, steps in cases:
        med = {(ld, st): float(np.median(times[(kind, d, steps, ld, st)]))
               for ld in ("idle", "loaded") for st in ("default", "one")}  # fmt: skip
        idle = med["idle", "default"] / med["idle", "one"]
        busy = med["loaded", "default"] / med["loaded", "one"]
        print(f"| {kind} | {d} | {steps or '—'} | {med['idle', 'default']:.3f} | {med['idle', 'one']:.3f} | "
              f"{idle:.2f} | {med['loaded', 'default']:.3f} | {med['loaded', 'one']:.3f} | {busy:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"|".join(map(str, k)): v for k, v in times.items()}, f, indent=1)


if __name__ == "__main__":
    main()
