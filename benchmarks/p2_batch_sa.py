"""P2: batch-sa against dwave-samplers SA and OpenJij SQA on the same real explanation QUBOs.

The QUBOs come from real explanations: two ReducedCNNs (16 and 64 maps at the ``reduce`` layer)
trained briefly on MNIST; per test image, the Grad-CAM weights α and the maps of that layer give one
QUBO (SPEC §1, β = 0.7). Every solver gets the same models; wall time covers the whole
``sample_many`` call (including building SampleSets), after one warm-up call each (numba's compile
is reported apart); the fast runs are interleaved and repeated, keeping each one's fastest.

Optimum rates: against the exact optimum (our enumeration) wherever ``d ≤ --exact-max``, and against
the best energy any run found (including a long reference SA run) on all models.

Run: ``python benchmarks/p2_batch_sa.py`` (5–8 minutes on 2 cores, half of it training the two models and
most of the rest OpenJij; ``--skip-openjij`` leaves OpenJij out for quick iterations).
``--threads 1`` runs every solver on one thread (the script re-executes itself with
``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS``/… set, before numba and torch start their pools; dwave SA is
single-threaded anyway); ``--competing`` keeps one CPU-bound process (``while True: pass``) running
during the timed rounds; ``--rounds N`` interleaves N timed rounds and reports min–median–max.
The load average (1 min) is printed before, after every round and after the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import dimod
import numpy as np
import torch

from qxai.anneal.qubo import explanation_qubos
from qxai.anneal.samplers import get_sampler, sample_many
from qxai.data import load_dataset
from qxai.models import TrainSettings, build_model, train_model
from qxai.probe import capture_gradients
from qxai.seeding import seed_everything

BSA = "batch-sa defaults (adaptive: rounds of reads until a doubling of sweeps finds nothing lower)"
BSA_FIXED = "batch-sa fixed budget (num_reads=8: 8 reads, sweeps by default_budget(d))"
DWAVE = "dwave SA defaults (1 read × 1000 sweeps)"
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(threads: int | None) -> None:
    """With ``threads``, re-execute this script with every thread-pool variable set to it (numba and
    the BLAS/OpenMP pools read them once, at import), unless they already are."""
    if threads is None or all(os.environ.get(v) == str(threads) for v in THREAD_VARS):
        return
    env = {**os.environ, **{v: str(threads) for v in THREAD_VARS}}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


@contextlib.contextmanager
def competing(on: bool) -> Iterator[None]:
    """One competing CPU-bound process (a Python busy loop) for the duration of the block."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    # a SIGTERM runs the finally block, so the competing process never outlives the script
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        time.sleep(1.0)  # let it reach the run queue
        yield
    finally:
        proc.kill()
        proc.wait()
        signal.signal(signal.SIGTERM, previous)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    """``min–median–max`` of ``values``."""
    return "–".join(fmt.format(v) for v in (min(values), float(np.median(values)), max(values)))


def real_qubos(maps: int, count: int, epochs: int, seed: int) -> list[dimod.BinaryQuadraticModel]:
    """``count`` explanation QUBOs from a ReducedCNN with ``maps`` maps trained on MNIST."""
    split = load_dataset("mnist", seed=seed)
    seed_everything(seed)
    model = build_model("reduced-cnn", in_channels=1, num_classes=10, image_size=(28, 28), maps=maps)
    acc = train_model(model, split, TrainSettings(epochs=epochs, seed=seed))["test_accuracy"]
    images = split.test.images[:count]
    _, acts, grads, _ = capture_gradients(model, "reduce", images)  # target: the predicted class
    alpha = grads.mean(dim=(2, 3))
    bqms = [bqm for bqm, _ in explanation_qubos(alpha, acts, beta=0.7)]
    sizes = [len(b.variables) for b in bqms]
    print(f"  {maps} maps: test accuracy {acc:.3f}, d = {min(sizes)}…{max(sizes)}, mean {np.mean(sizes):.1f}")
    return bqms


def timed(sampler: dimod.Sampler, bqms: list, seed: int, **kw: object) -> tuple[float, np.ndarray, float]:
    """Wall seconds of one ``sample_many`` over all ``bqms``, the best energy of each and the mean
    number of reads."""
    start = time.perf_counter()
    sets = sample_many(sampler, bqms, seed=seed, **kw)
    seconds = time.perf_counter() - start
    return seconds, np.array([ss.first.energy for ss in sets]), float(np.mean([len(ss) for ss in sets]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-model", type=int, default=500, help="QUBOs per model (two models)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--exact-max", type=int, default=20, help="largest d solved exactly")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds of the fast runs")
    parser.add_argument("--skip-openjij", action="store_true", help="leave out the slow OpenJij runs")
    parser.add_argument("--threads", type=int, default=None, help="threads of every solver (default: theirs)")
    parser.add_argument("--competing", action="store_true", help="one competing CPU-bound process")
    parser.add_argument(
        "--cache", default=None,
        help="JSON of the QUBOs (dimod to_serializable; never a pickle): read if present, else written",
    )  # fmt: skip
    args = parser.parse_args()
    pin_threads(args.threads)
    torch.set_num_threads(args.threads or 2)
    print(f"threads: {args.threads or 'default'}; competing process: {'yes' if args.competing else 'no'}; "
          f"{os.cpu_count()} cores")

    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            bqms = [dimod.BinaryQuadraticModel.from_serializable(b) for b in json.load(f)]
        print(f"QUBOs read from {args.cache}")
    else:
        print("building QUBOs from real explanations (MNIST, ReducedCNN, layer 'reduce')")
        bqms = [bqm for maps in (16, 64) for bqm in real_qubos(maps, args.per_model, args.epochs, args.seed)]
        bqms = [b for b in bqms if len(b.variables) > 0]
        if args.cache:
            with open(args.cache, "w") as f:
                json.dump([b.to_serializable() for b in bqms], f)
    sizes = np.array([len(b.variables) for b in bqms])
    print(f"{len(bqms)} non-empty QUBOs, d ≤ {sizes.max()}")

    t0 = time.perf_counter()
    get_sampler("batch-sa").sample(dimod.BinaryQuadraticModel({0: -1.0}, {}, 0.0, "BINARY"), seed=0)
    print(f"batch-sa first call (numba compile or cache load): {time.perf_counter() - t0:.2f} s")

    runs = {
        BSA: (get_sampler("batch-sa"), {}),
        DWAVE: (get_sampler("sa"), {}),
        BSA_FIXED: (get_sampler("batch-sa"), {"num_reads": 8}),
        "dwave SA 8 reads × 16 sweeps (batch-sa's budget for d ≤ 16)": (
            get_sampler("sa"), {"num_reads": 8, "num_sweeps": 16}
        ),
    }
    slow_runs = {} if args.skip_openjij else {
        "OpenJij SQA defaults (β = 5)": (get_sampler("sqa-openjij"), {}),
        "OpenJij SQA β = 50": (get_sampler("sqa-openjij"), {"beta": 50.0}),
    }
    for sampler, kw in [*runs.values(), *slow_runs.values()]:
        sample_many(sampler, bqms[:2], seed=args.seed, **kw)  # warm-up: imports, caches
    # the machine is shared: interleave the fast runs, round after round; each keeps all its times
    results: dict[str, tuple[float, np.ndarray]] = {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    reads: dict[str, float] = {}
    loads = []
    print("load average before the timed runs (1, 5, 15 min):", load())
    with competing(args.competing):
        for _ in range(args.rounds):
            for name, (sampler, kw) in runs.items():
                seconds, energies, mean_reads = timed(sampler, bqms, args.seed, **kw)
                times[name].append(seconds)
                results[name] = (min(times[name]), energies)
                reads[name] = mean_reads
            loads.append(os.getloadavg()[0])
            print("  round: " + ", ".join(f"{times[n][-1]:.3f} s" for n in runs) + f"; load {loads[-1]:.1f}")
        for name, (sampler, kw) in slow_runs.items():
            seconds, energies, mean_reads = timed(sampler, bqms, args.seed, **kw)
            results[name], times[name], reads[name] = (seconds, energies), [seconds], mean_reads

    print("load average after the timed runs (1, 5, 15 min):", load())
    print(f"1-min load average during the rounds: {spread(loads, '{:.1f}')} (min–median–max)")
    exact_mask = sizes <= args.exact_max
    exact_idx = np.flatnonzero(exact_mask)
    start = time.perf_counter()
    exact = sample_many(get_sampler("exact"), [bqms[i] for i in exact_idx])
    exact_seconds = time.perf_counter() - start
    optimum = np.full(len(bqms), np.nan)
    optimum[exact_idx] = [ss.first.energy for ss in exact]
    # best known: every run above plus two long reference runs
    long_sa = sample_many(get_sampler("sa"), bqms, seed=args.seed + 1, num_reads=10, num_sweeps=1000)
    long_bsa = sample_many(get_sampler("batch-sa"), bqms, seed=args.seed + 1, num_reads=64, num_sweeps=256)
    references = [[ss.first.energy for ss in long_sa], [ss.first.energy for ss in long_bsa]]
    best = np.min([*(e for _, e in results.values()), *references], axis=0)
    best[exact_idx] = np.minimum(best[exact_idx], optimum[exact_idx])

    tol = 1e-9
    ref = times[DWAVE]
    print(f"\nexact enumeration of {exact_mask.sum()} QUBOs with d ≤ {args.exact_max}: {exact_seconds:.2f} s")
    print(f"| solver | wall s (min–median–max of {args.rounds}) | mean reads | speed-up vs dwave SA defaults "
          f"(min–median–max over rounds) | exact optimum (d ≤ {args.exact_max}, n={exact_mask.sum()}) "
          f"| best known (all, n={len(bqms)}) | best known (d > {args.exact_max}) |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: |")
    big = sizes > args.exact_max
    for name, (_, energies) in results.items():
        at_exact = np.mean(energies[exact_idx] <= optimum[exact_idx] + tol)
        at_best = np.mean(energies <= best + tol)
        at_big = np.mean(energies[big] <= best[big] + tol) if big.any() else float("nan")
        # the ratio of each round (the two ran back to back in it); OpenJij ran once, after the rounds
        ratios = [r / t for r, t in zip(ref, times[name], strict=False)] if name in runs else [
            float(np.median(ref)) / times[name][0]]
        print(f"| {name} | {spread(times[name])} | {reads[name]:.1f} | {spread(ratios, '{:.1f}')}× | "
              f"{100 * at_exact:.1f} % | {100 * at_best:.1f} % | {100 * at_big:.1f} % |")


if __name__ == "__main__":
    main()
