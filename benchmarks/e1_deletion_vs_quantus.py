"""E1 — batched deletion curves (`qxai.evaluate.faithfulness`) vs quantus PixelFlipping, same run.

    OMP_NUM_THREADS=1 python benchmarks/e1_deletion_vs_quantus.py [--images 200] [--steps 16]

Both delete the most salient pixels (set to black = 0 on MNIST) in equal chunks and record the
softmax probability of the target class. We check that the curves agree, then time both.
Both evaluate one step for a whole chunk of images per forward call; ours also evaluates the
unperturbed point (17 forwards per image for 16 steps, quantus 16). Prints both times and the
ratio. We keep our own because the same code does insertion onto a blurred copy and seeded
tie-breaking, which quantus has no metric for, and quantus is not a dependency of qxai.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def model_and_images(n: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    from qxai.models.loading import load_model_and_data
    from qxai.pipeline.train import run_train, train_config

    ckpt = ROOT / "runs" / "results" / "mnist-reduced-cnn.pt"
    if not ckpt.is_file():
        config = train_config("mnist", "reduced-cnn", maps=16, epochs=5, seed=0, batch_size=64, lr=2e-3)
        run_train(config, ckpt)
    md = load_model_and_data(str(ckpt))
    return md.model, md.split.test.images[:n], md.split.test.labels[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()
    import quantus

    from qxai.evaluate.faithfulness import perturbation_curves

    model, x, y = model_and_images(args.images)
    n, _, h, w = x.shape
    if (h * w) % args.steps:
        raise SystemExit(f"--steps must divide {h * w} so both libraries use the same chunks")
    sal = np.random.default_rng(0).random((n, h, w))  # continuous: no ties, one unambiguous order
    assert float(x.amin(dim=(1, 2, 3)).max()) == 0.0, "quantus 'black' is the image minimum; MNIST has 0"

    start = time.perf_counter()
    ours = perturbation_curves(model, x, y, sal, steps=args.steps, fill="zero")
    t_ours = time.perf_counter() - start

    metric = quantus.PixelFlipping(
        features_in_step=h * w // args.steps, perturb_baseline="black", normalise=False, abs=False,
        disable_warnings=True, display_progressbar=False,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = {"x_batch": x.numpy(), "y_batch": y.numpy(), "a_batch": sal[:, None]}
        ref = np.asarray(metric(model=model, softmax=True, device="cpu", batch_size=n, **inputs))
    t_ref = time.perf_counter() - start

    diff = float(np.abs(ours[:, 1:] - ref).max())  # quantus omits the unperturbed point
    print(f"images {n}, {h}x{w}, steps {args.steps}; max |ours - quantus| = {diff:.2e}")
    print(f"qxai perturbation_curves: {t_ours:.3f} s   quantus PixelFlipping: {t_ref:.3f} s   "
          f"ratio quantus/qxai = {t_ref / t_ours:.2f}x")  # fmt: skip
    if diff > 1e-5:
        raise SystemExit("curves disagree")


if __name__ == "__main__":
    main()
