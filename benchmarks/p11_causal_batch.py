"""P11 — the causal oracle's masked copies: batches sized to a cache working set vs the largest batch.

    .venv/bin/python benchmarks/p11_causal_batch.py [--copies 4096] [--rounds 5]
    .venv/bin/python benchmarks/p11_causal_batch.py --competing   # with one CPU-bound process beside it
    .venv/bin/python benchmarks/p11_causal_batch.py --sweep 16,32,48,64,128 [--competing]  # BATCH_MB's choice

Per model and explained layer of the demo (MNIST reduced-cnn ``reduce``, vit-tiny's last block
``blocks.3.norm1``, planted-cnn ``maps`` at 32×32), the time per masked copy of
:func:`qxai.evaluate.causal.masked_logits` in batches of what :func:`~qxai.evaluate.causal.rows_per_batch`
gives now (at most ``BATCH_MB`` = 48 MiB of working set) against the largest batch the memory budget
allows (2 048 rows: the rule before ``BATCH_MB``), on the same masks. Timings do not depend on the
weights, so the models are freshly built, not trained. Each round times both rules, interleaved;
min–median–max over rounds of the ratio. The logits of both rules are checked equal within float32
rounding (their batches differ in shape only).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch


def cases() -> list[tuple[str, torch.nn.Module, str, torch.Tensor]]:
    from qxai.models.registry import build_model

    torch.manual_seed(0)
    built = [
        ("reduced-cnn reduce", build_model("reduced-cnn", in_channels=1, num_classes=10, image_size=(28, 28),
                                           maps=16), (1, 1, 28, 28)),
        ("vit-tiny blocks.3.norm1", build_model("vit-tiny", in_channels=1, num_classes=10,
                                                image_size=(28, 28)), (1, 1, 28, 28)),
        ("planted-cnn maps", build_model("planted-cnn", in_channels=1, num_classes=4, image_size=(32, 32)),
         (1, 1, 32, 32)),
    ]  # fmt: skip
    return [(name, m.eval(), m.default_layer, torch.rand(shape)) for name, m, shape in built]


def per_copy(model: torch.nn.Module, layer: str, image: torch.Tensor, masks: np.ndarray, batch: int
             ) -> tuple[float, np.ndarray]:  # fmt: skip
    from qxai.evaluate.causal import masked_logits

    start = time.perf_counter()
    out = masked_logits(model, layer, image, 1, masks, batch=batch)
    return (time.perf_counter() - start) / len(masks), out


def main() -> None:
    from qxai.evaluate import causal
    from qxai.probe.hooks import read_layout

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4096, help="masked copies timed per rule and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--competing", action="store_true", help="run one CPU-bound process beside it")
    parser.add_argument("--sweep", default="", help="working sets (MiB, comma-separated) to time instead")
    args = parser.parse_args()
    if args.sweep:
        sweep([float(v) for v in args.sweep.split(",")], args.copies, args.rounds, args.competing)
        return
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.competing else None
    loads: list[float] = []
    try:
        rows = []
        for name, model, layer, image in cases():
            n = read_layout(model, layer, image).channels  # the layer's maps (a token layer's channels)
            masks = (np.random.default_rng(0).random((args.copies, n)) > 0.5).astype(np.float32)
            now = causal.rows_per_batch(model, layer, image)
            per_row = causal.row_bytes(model, layer, image)
            before = min(causal.MAX_ROWS, int(causal.MEMORY_MB * 2**20 // per_row))  # the rule before
            per_copy(model, layer, image, masks[:64], now)  # warm the thread pool and the allocator
            ours, ref, ratios = [], [], []
            for _ in range(args.rounds):
                t_ref, z_ref = per_copy(model, layer, image, masks, before)
                t_now, z_now = per_copy(model, layer, image, masks, now)
                loads.append(os.getloadavg()[0])
                scale = float(np.max(np.abs(z_ref))) + 1.0
                if not np.allclose(z_now, z_ref, rtol=0, atol=64 * np.finfo(np.float32).eps * scale):
                    raise SystemExit(f"{name}: the two batch sizes give other logits")
                ours.append(t_now * 1e6)
                ref.append(t_ref * 1e6)
                ratios.append(t_ref / t_now)
            rows.append((name, now, before, ours, ref, ratios))
    finally:
        if hog is not None:
            hog.kill()
    print(f"P11 causal oracle batches: {args.copies} copies × {args.rounds} rounds, threads "
          f"{torch.get_num_threads()}, {'one competing process' if args.competing else 'idle'}, "
          f"load average (1 min) {min(loads):.2f}–{max(loads):.2f}")  # fmt: skip
    print(
        "| model, layer | rows now | rows before | µs/copy now (median) | µs/copy before (median) "
        "| speed-up min–median–max |"
    )
    print("|---|---|---|---|---|---|")
    for name, now, before, ours, ref, ratios in rows:
        lo, med, hi = np.min(ratios), np.median(ratios), np.max(ratios)
        print(f"| {name} | {now} | {before} | {np.median(ours):.1f} | {np.median(ref):.1f} "
              f"| {lo:.2f}–{med:.2f}–{hi:.2f}× |")  # fmt: skip


def sweep(working_sets: list[float], copies: int, rounds: int, competing: bool) -> None:
    """Median µs per copy at each working set (MiB) per model: the measurement behind ``BATCH_MB``."""
    from qxai.evaluate import causal
    from qxai.probe.hooks import read_layout

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing else None
    try:
        state = "one competing process" if competing else "idle"
        print(f"P11 sweep: {copies} copies × {rounds} rounds, {state}")
        print("| model, layer | " + " | ".join(f"{mb:g} MiB: rows, µs/copy" for mb in working_sets) + " |")
        print("|---|" + "---|" * len(working_sets))
        for name, model, layer, image in cases():
            n = read_layout(model, layer, image).channels
            masks = (np.random.default_rng(0).random((copies, n)) > 0.5).astype(np.float32)
            per_row = causal.row_bytes(model, layer, image)
            sizes = [int(min(causal.MAX_ROWS, max(1, mb * 2**20 // per_row))) for mb in working_sets]
            per_copy(model, layer, image, masks[:64], sizes[0])  # warm-up
            times: list[list[float]] = [[] for _ in sizes]
            for _ in range(rounds):  # interleaved: every size sees the same moments of the machine
                for i, rows in enumerate(sizes):
                    times[i].append(per_copy(model, layer, image, masks, rows)[0] * 1e6)
            cells = " | ".join(f"{rows}, {np.median(t):.1f}" for rows, t in zip(sizes, times, strict=True))
            print(f"| {name} | {cells} |")
    finally:
        if hog is not None:
            hog.kill()


if __name__ == "__main__":
    main()
