"""P10 — QA over attention heads (``qa-heads``) per image vs pytorch-grad-cam GradCAM, same ViT and batch.

    .venv/bin/python benchmarks/p10_heads.py [--per-class 10] [--repeats 5] [--threads 1]
    .venv/bin/python benchmarks/p10_heads.py --competing      # with one CPU-bound process beside it

Both sides explain the same correctly classified MNIST test images for their predicted class on
``vit-tiny`` (4 blocks × 4 heads, trained once for 10 epochs into runs/results/mnist-vit-tiny.pt,
reused afterwards). GradCAM (pytorch-grad-cam) reads the model's default layer ``blocks.3.norm1``
as a 7×7 token grid (qxai's ``layer_maps`` as its ``reshape_transform``). QA-heads runs the whole
:meth:`QAHeadsExplainer.explain` (one forward + backward pass with the head gates, the QUBOs, one
``batch-sa`` call for the batch, the attention map) for ``blocks="last"`` (d = 4) and ``"all"``
(d = 16); the exact ground-state check is off (``ground_truth="never"``), as in P1, since GradCAM
does no such check. The three run interleaved, ``repeats`` rounds after one warm-up each, so a busy
machine slows every side alike; the ratio QA-heads / GradCAM is taken per round (min–median–max).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "runs" / "results" / "mnist-vit-tiny.pt"


def vit_model_and_images(per_class: int) -> tuple[torch.nn.Module, str, torch.Tensor, torch.Tensor, dict]:
    """The trained vit-tiny (trained here once when the checkpoint is missing), its default layer,
    ``per_class`` correctly classified test images per class ``(N, 1, 28, 28)``, their indices in
    the test set ``(N,)`` and the checkpoint's config."""
    from qxai.models.loading import load_model_and_data
    from qxai.models.selection import select_correct_per_class
    from qxai.pipeline.train import run_train, train_config

    if not CHECKPOINT.is_file():
        config = train_config("mnist", "vit-tiny", maps=None, epochs=10, seed=0, batch_size=64, lr=2e-3)
        run_train(config, CHECKPOINT)
    md = load_model_and_data(str(CHECKPOINT))
    chosen = select_correct_per_class(md.model, md.split.test, per_class, seed=0)
    return md.model.eval(), md.layer, chosen.images, chosen.indices, md.config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--competing", action="store_true", help="run one CPU-bound process beside it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from pytorch_grad_cam import GradCAM

    from qxai.explain.heads import QAHeadsExplainer
    from qxai.probe.tokens import layer_maps

    model, layer, images, _ids, config = vit_model_and_images(args.per_class)
    n = len(images)
    acc = config.get("metrics", {}).get("test_accuracy")
    cam = GradCAM(
        model, [dict(model.named_modules())[layer]], reshape_transform=layer_maps(model, layer, images)
    )
    last = QAHeadsExplainer(model, blocks="last", ground_truth="never")
    every = QAHeadsExplainer(model, blocks="all", ground_truth="never")
    calls = {
        "gradcam": lambda: cam(images, targets=None),  # predicted class, like QA-heads' default
        "qa-heads last": lambda: last.explain(images),
        "qa-heads all": lambda: every.explain(images),
    }
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.competing else None
    times: dict[str, list[float]] = {name: [] for name in calls}
    loads: list[float] = []
    try:
        for fn in calls.values():  # warm-up: numba's kernels, pytorch-grad-cam's hooks
            fn()
        for r in range(args.repeats):
            for name, fn in calls.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            loads.append(os.getloadavg()[0])
            print(
                f"round {r}: " + "  ".join(f"{k} {v[-1] / n * 1e3:.2f} ms/img" for k, v in times.items()),
                flush=True,
            )
    finally:
        if hog is not None:
            hog.kill()
    cam.activations_and_grads.release()
    exp_last, exp_all = last.explain(images), every.explain(images)

    def spread(values: list[float]) -> str:
        return f"{min(values):.2f}–{statistics.median(values):.2f}–{max(values):.2f}"

    print(
        f"\n{n} images (batch of {n}), vit-tiny mnist (test accuracy {acc}), GradCAM layer '{layer}', "
        f"torch threads {args.threads}, "
        f"{'one competing process' if args.competing else 'no competing process'}, "
        f"load average (1 min) {min(loads):.2f}–{max(loads):.2f}"
    )
    for name, exp in (("last", exp_last), ("all", exp_all)):
        d = exp.extras["num_variables"]
        sel = [len(s) for s in exp.extras["selected"]]
        flags = sum(f is not None for f in exp.extras["degenerate"])
        print(
            f"qa-heads {name}: {exp.extras['head_weights'].shape[1]} heads, d mean {np.mean(d):.2f}, "
            f"selected mean {np.mean(sel):.2f}, degenerate {flags}/{n}, solver share "
            f"{sum(exp.extras['solver_seconds']) / exp.seconds:.0%}"
        )
    print("| side | ms / image, min–median–max | ratio to GradCAM per round, min–median–max |")
    print("| --- | ---: | ---: |")
    for name, ts in times.items():
        ms = [t / n * 1e3 for t in ts]
        ratio = (
            "1"
            if name == "gradcam"
            else spread([a / g for a, g in zip(ts, times["gradcam"], strict=True)]) + "×"
        )
        print(f"| {name} | {spread(ms)} | {ratio} |")


if __name__ == "__main__":
    main()
