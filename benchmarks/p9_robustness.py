"""P9 — robustness metrics: ours (the copies of all images explained in batches) vs quantus' loop.

    .venv/bin/python benchmarks/p9_robustness.py [--images 16] [--samples 200] [--methods gradcam,qa]
                                                 [--rounds 3]
    .venv/bin/python benchmarks/p9_robustness.py --competing      # with one CPU-bound process beside it

Both sides explain with the same qxai explainer on the demo's model (MNIST, reduced-cnn, layer
``reduce``; trained once into runs/results/ like E1) and Quantus' default settings (200 samples, its
perturbations). Quantus calls the explainer once per sample for the batch of images (its loop over
``nr_samples``), and runs every metric on its own copies; ours draws one set of copies per noise family,
explains all ``samples × images`` of them in batches of 128 and scores every metric of the family
from it — what ``qxai evaluate --metrics robustness`` does. So the ratio is per family: ours once
against the sum of quantus' metrics of that family. Equality with Quantus on the same copies is a
test (tests/evaluate/test_robustness.py), not measured here: here the noise differs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FAMILY_METRICS = {
    "sensitivity": ("MaxSensitivity", "AvgSensitivity"),
    "lipschitz": ("LocalLipschitzEstimate",),
    "stability": ("RelativeInputStability", "RelativeOutputStability", "RelativeRepresentationStability"),
}


def model_and_images(n: int) -> tuple[torch.nn.Module, str, torch.Tensor, torch.Tensor]:
    from qxai.models.loading import load_model_and_data
    from qxai.pipeline.train import run_train, train_config

    ckpt = ROOT / "runs" / "results" / "mnist-reduced-cnn.pt"
    if not ckpt.is_file():
        config = train_config("mnist", "reduced-cnn", maps=16, epochs=5, seed=0, batch_size=64, lr=2e-3)
        run_train(config, ckpt)
    md = load_model_and_data(str(ckpt))
    x = md.split.test.images[:n]
    with torch.no_grad():
        t = md.model(x).argmax(1)
    return md.model.eval(), md.layer, x, t


def ours(model, explainer, x, t, e_x, family: str, samples: int) -> tuple[float, dict[str, np.ndarray]]:
    from qxai.evaluate import robustness as rb

    start = time.perf_counter()
    s = rb.perturb_and_explain(
        model, lambda a, b: explainer.explain(a, b).saliency, x, t, e_x, rb.FAMILIES[family],
        samples=samples, seed=0, batch_size=128, hidden=family == "stability", outputs=family == "stability",
    )  # fmt: skip
    scores = {
        "sensitivity": lambda: {"max": rb.sensitivity(s, "max"), "avg": rb.sensitivity(s, "mean")},
        "lipschitz": lambda: {"lle": rb.local_lipschitz(s)},
        "stability": lambda: {"ris": rb.relative_input_stability(s), "ros": rb.relative_output_stability(s),
                              "rrs": rb.relative_representation_stability(s)},
    }[family]()  # fmt: skip
    return time.perf_counter() - start, scores


def reference(model, explainer, x, t, e_x, family: str, samples: int) -> float:
    import quantus

    def explain(model, inputs, targets, **_kw):
        return explainer.explain(torch.as_tensor(inputs).float(), torch.as_tensor(targets)).saliency

    start = time.perf_counter()
    for name in FAMILY_METRICS[family]:
        metric = getattr(quantus, name)(nr_samples=samples, disable_warnings=True, display_progressbar=False)
        np.random.seed(0)
        metric(model=model, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=e_x, explain_func=explain,
               batch_size=len(x))  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--methods", default="gradcam,qa")
    parser.add_argument("--competing", action="store_true", help="run one CPU-bound process beside it")
    parser.add_argument("--rounds", type=int, default=3, help="repeats: min–median–max of each ratio")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from qxai.explain.registry import get_explainer

    model, layer, x, t = model_and_images(args.images)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.competing else None
    try:
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        loads = []
        for r in range(args.rounds):
            for method in args.methods.split(","):
                explainer = get_explainer(method, model, layer, seed=0)
                if hasattr(explainer, "ground_truth"):
                    explainer.ground_truth = "never"  # as the evaluation re-explains: the maps only
                e_x = explainer.explain(x, t).saliency  # also the warm-up
                for family in FAMILY_METRICS:
                    mine, _ = ours(model, explainer, x, t, e_x, family, args.samples)
                    theirs = reference(model, explainer, x, t, e_x, family, args.samples)
                    loads.append(os.getloadavg()[0])
                    times.setdefault((method, family), []).append((mine, theirs))
                    print(f"round {r} {method:8s} {family:12s} ours {mine:7.2f} s  quantus {theirs:7.2f} s  "
                          f"{theirs / mine:5.1f}×", flush=True)  # fmt: skip
    finally:
        if hog is not None:
            hog.kill()
    print(f"\n{args.images} images × {args.samples} samples, {args.rounds} rounds, torch threads "
          f"{torch.get_num_threads()}, {'one competing process' if args.competing else 'idle'}, "
          f"load average (1 min) {min(loads):.2f}–{max(loads):.2f}")  # fmt: skip
    print("| method | family (metrics) | ours (s, median) | quantus (s, median) | speed-up min–median–max |")
    print("| --- | --- | ---: | ---: | ---: |")

    def spread(ratios: list[float]) -> str:
        return f"{min(ratios):.1f}–{float(np.median(ratios)):.1f}–{max(ratios):.1f}×"

    for (method, family), pairs in times.items():
        names = ", ".join(FAMILY_METRICS[family])
        mine, theirs = (float(np.median([p[i] for p in pairs])) for i in (0, 1))
        ratios = spread([b / a for a, b in pairs])
        print(f"| {method} | {family} ({names}) | {mine:.2f} | {theirs:.2f} | {ratios} |")
    for method in dict.fromkeys(m for m, _ in times):
        per_round = [tuple(sum(times[method, f][r][i] for f in FAMILY_METRICS) for i in (0, 1))
                     for r in range(args.rounds)]  # fmt: skip
        mine, theirs = (float(np.median([p[i] for p in per_round])) for i in (0, 1))
        print(f"| **{method} total** | all six | **{mine:.2f}** | **{theirs:.2f}** | "
              f"**{spread([b / a for a, b in per_round])}** |")  # fmt: skip


if __name__ == "__main__":
    main()
