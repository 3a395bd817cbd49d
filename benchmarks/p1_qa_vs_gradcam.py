"""P1: a QA feature-map explanation per image against pytorch-grad-cam's GradCAM, same model and batch.

Both sides explain the same images for their predicted class at the same layer (``reduce``, 16
maps of a reduced-cnn trained on mnist) and return a saliency map at the input size. QA runs the
whole :meth:`QAFeatureMapExplainer.explain` (forward + backward, QUBO construction, one
``batch-sa`` call for the batch, QA-fGradCAM map); the exact ground-state check is off
(``ground_truth="never"``) because GradCAM does no such check, and is timed separately.
Goal: QA ≤ 1.5 × GradCAM seconds per image.

    python benchmarks/p1_qa_vs_gradcam.py                 # trains mnist reduced-cnn (16 maps, 2 epochs)
    python benchmarks/p1_qa_vs_gradcam.py --model CKPT    # or uses a checkpoint
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def interleaved(fns: list[Callable[[], object]], repeats: int) -> list[tuple[float, float]]:
    """``(median, min)`` seconds of each function, run in turn ``repeats`` times after one warm-up
    each, so that a busy machine slows every side alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [(statistics.median(ts), min(ts)) for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: train mnist 16 maps)")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from pytorch_grad_cam import GradCAM

    from qxai.explain.qa import QAFeatureMapExplainer
    from qxai.models.loading import load_model_and_data
    from qxai.models.selection import select_correct_per_class
    from qxai.pipeline.train import run_train, train_config

    ckpt = args.model
    if ckpt is None:
        ckpt = Path(tempfile.mkdtemp()) / "mnist16.pt"
        cfg = train_config("mnist", "reduced-cnn", maps=16, epochs=2, seed=0, batch_size=64, lr=2e-3)
        acc = run_train(cfg, ckpt)["metrics"]["test_accuracy"]
        print(f"trained mnist reduced-cnn (16 maps, 2 epochs): test accuracy {acc:.4f}")
    md = load_model_and_data(str(ckpt))
    chosen = select_correct_per_class(md.model, md.split.test, args.per_class, seed=0)
    images = chosen.images[: args.batch_size]
    n = len(images)
    layer = dict(md.model.named_modules())[md.layer]

    qa = QAFeatureMapExplainer(md.model, md.layer, solver="batch-sa", seed=0, ground_truth="never")
    qa_gt = QAFeatureMapExplainer(md.model, md.layer, solver="batch-sa", seed=0, ground_truth="auto")
    cam = GradCAM(md.model, [layer])

    def gradcam() -> object:
        return cam(images, targets=None)  # predicted class, like QA's default

    (grad_med, grad_min), (qa_med, qa_min), (gt_med, _) = interleaved(
        [gradcam, lambda: qa.explain(images), lambda: qa_gt.explain(images)], args.repeats
    )
    exp = qa.explain(images)
    exp_gt = qa_gt.explain(images)
    solver_share = sum(exp.extras["solver_seconds"]) / exp.seconds
    d = exp.extras["num_variables"]
    hits = sum(
        abs(e - g) <= 1e-9 * max(1.0, abs(g))
        for e, g in zip(exp_gt.extras["energy"], exp_gt.extras["ground_energy"], strict=True)
    )
    cam.activations_and_grads.release()

    print(f"images: {n} (batch of {n}), layer '{md.layer}', maps {exp.extras['channel_weights'].shape[1]}, "
          f"d mean {sum(d) / n:.2f} max {max(d)}, torch threads {args.threads}")  # fmt: skip
    print(f"pytorch-grad-cam GradCAM : {grad_med / n * 1e3:8.3f} ms/image (median of {args.repeats}; "
          f"best {grad_min / n * 1e3:.3f})")  # fmt: skip
    print(f"QA batch-sa (no ground)  : {qa_med / n * 1e3:8.3f} ms/image (median; "
          f"best {qa_min / n * 1e3:.3f}); solver share {solver_share:.0%}")  # fmt: skip
    print(f"QA batch-sa + exact check: {gt_med / n * 1e3:8.3f} ms/image (median); optimum reached {hits}/{n}")
    print(f"ratio QA / GradCAM       : {qa_med / grad_med:.2f}x (goal <= 1.5x); with exact check "
          f"{gt_med / grad_med:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
