"""Generate RESULTS.md: QA and every baseline scored on `mnist` and `cells`, whichever way it goes.

    python benchmarks/make_results.py                 # ≈ 5–10 min on 2 CPU cores
    python benchmarks/make_results.py --per-class 4   # a quick smoke run

Trains (or reuses, from ``runs/results/``) a reduced-cnn on `mnist` and a qixai-cnn on `cells`,
runs :func:`qxai.pipeline.evaluate.run_evaluate` on each, and writes ``RESULTS.md`` at the repo root
with the tables, the settings, and a plain list of where QA does and does not come out best.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["qa", "gradcam", "gradcam++", "eigencam", "ig", "shap", "lime", "lrp"]
# cells: black pixels are far outside the data (a bright smear), so deleted pixels are blurred instead
RUNS = {
    "mnist": {"arch": "reduced-cnn", "maps": 16, "epochs": 5, "options": {}, "per_class": 10, "fill": "zero"},
    "cells": {"arch": "qixai-cnn", "maps": None, "epochs": 8, "options": {}, "per_class": 25, "fill": "blur"},
}


def checkpoint(dataset: str, folder: Path) -> Path:
    """Train the data set's model once; later runs reuse the checkpoint."""
    from qxai.pipeline.train import run_train, train_config

    spec = RUNS[dataset]
    path = folder / f"{dataset}-{spec['arch']}.pt"
    if not path.is_file():
        config = train_config(dataset, spec["arch"], maps=spec["maps"], epochs=spec["epochs"], seed=0,
                              batch_size=64, lr=2e-3, dataset_options=spec["options"])  # fmt: skip
        saved = run_train(config, path)
        print(f"trained {spec['arch']} on {dataset}: test accuracy {saved['metrics']['test_accuracy']:.4f}")
    return path


def fmt(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.4g}"


def table(doc: dict[str, Any]) -> list[str]:
    """Markdown: one row per metric, one column per method, best in bold."""
    methods = [m for m in doc["config"]["methods"] if "error" not in doc[m]]
    lines = ["| metric | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for metric, info in doc["metric_info"].items():
        vals = {m: doc[m].get(metric) for m in methods}
        finite = {m: v for m, v in vals.items() if v is not None}
        if not finite:
            continue
        best = (max if info["direction"] == "higher" else min)(finite, key=lambda m: finite[m])
        arrow = "↑" if info["direction"] == "higher" else "↓"
        cells = [f"**{fmt(v)}**" if m == best else fmt(v) for m, v in vals.items()]
        lines.append(f"| {metric} {arrow} | " + " | ".join(cells) + " |")
    return lines


def verdicts(doc: dict[str, Any]) -> list[str]:
    """Where QA is best, and where it is not (with the winner and both values)."""
    if "qa" not in doc or "error" in doc["qa"]:
        return ["- QA did not run: " + doc.get("qa", {}).get("error", "not requested")]
    methods = [m for m in doc["config"]["methods"] if "error" not in doc[m]]
    wins, losses = [], []
    for metric, info in doc["metric_info"].items():
        qa = doc["qa"].get(metric)
        others = {m: doc[m].get(metric) for m in methods if m != "qa" and doc[m].get(metric) is not None}
        if qa is None or not others:
            continue
        pick = max if info["direction"] == "higher" else min
        best = pick(others, key=lambda m: others[m])
        better = qa > others[best] if info["direction"] == "higher" else qa < others[best]
        line = f"`{metric}` (QA {fmt(qa)} vs {best} {fmt(others[best])}, {info['direction']} is better)"
        (wins if better else losses).append(line)
    out = ["- QA is best on: " + (", ".join(wins) if wins else "nothing")]
    out.append("- **QA is not best on:** " + (", ".join(losses) if losses else "nothing"))
    cam = [m for m in ("gradcam", "gradcam++") if m in methods]
    for m in cam:
        for key in ("overlap_mean", "overlap_topk_mean"):
            a, b = doc["qa"].get(key), doc[m].get(key)
            if a is not None and b is not None:
                verdict = "lower (better)" if a < b else "not lower"
                out.append(
                    f"- Disentanglement claim vs {m} (`{key}`): QA {fmt(a)} vs {fmt(b)} → QA is {verdict}."
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=None, help="default: 10 (mnist), 25 (cells)")
    parser.add_argument("--datasets", default="mnist,cells")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "results")
    parser.add_argument("--results", type=Path, default=ROOT / "RESULTS.md")
    args = parser.parse_args()

    from qxai.pipeline.evaluate import run_evaluate

    budget = {"lime_samples": 150, "ig_steps": 24, "shap_samples": 8, "steps": 16, "sanity_images": 16}
    sections: list[str] = []
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        ckpt = checkpoint(dataset, args.out)
        out = args.out / f"evaluate-{dataset}"
        spec = RUNS[dataset]
        start, cpu = time.perf_counter(), time.process_time()
        run_evaluate(ckpt, methods=METHODS, per_class=args.per_class or spec["per_class"], seed=0, out=out,
                     fill=spec["fill"], **budget)  # fmt: skip
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        from qxai.io import read_json
        from qxai.models import load_checkpoint

        doc = read_json(out / "metrics.json")
        cfg = load_checkpoint(ckpt).config
        s = doc["config"]
        skipped = [f"`{m}` ({doc[m]['error']})" for m in s["methods"] if "error" in doc[m]]
        sections += [
            f"## {dataset} — {cfg['arch']}, layer `{s['layer']}`",
            "",
            f"Model: {cfg['arch']} trained {cfg['epochs']} epochs, test accuracy "
            f"{cfg['metrics']['test_accuracy']:.4f}. Images: {doc['summary']['images']} correctly classified "
            f"test images ({s['per_class']} per class), seed 0, QA solver `{s['solver']}`; LIME "
            f"{s['lime_samples']} samples, IG {s['ig_steps']} steps, SHAP {s['shap_samples']} samples, "
            f"{s['steps']} deletion/insertion steps, deleted pixels → {s['fill']}, sanity checks on "
            f"{s['sanity_images']} images (randomisation: {s['randomisation']}). Evaluation time "
            f"{wall:.0f} s wall, {cpu:.0f} s CPU (shared machine; wall time depends on the load).",
            "",
            *table(doc),
            "",
            *(["Skipped: " + "; ".join(skipped), ""] if skipped else []),
            "### Where QA wins and where it does not",
            "",
            *verdicts(doc),
            "",
            f"Figures: `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/` "
            "(overlap.png, curves.png, examples.png).",
            "",
        ]  # fmt: skip
    header = [
        "# Results",
        "",
        "Generated by `python benchmarks/make_results.py"
        + (f" --per-class {args.per_class}" if args.per_class else "") + "` on "
        f"{platform.system()} {platform.machine()} (Python {sys.version.split()[0]}). "
        "Metric definitions and how to read them: [docs/evaluation.md](docs/evaluation.md). ↑ higher is "
        "better, ↓ lower is better; the best value per row is bold; – means the metric does not apply "
        "(e.g. overlap needs a map selection, localisation needs masks).",
        "",
        "Caveats: one seed, one model per data set, small image counts — differences in the second decimal "
        "are within noise. `cells` is our procedurally generated malaria stand-in, not the NIH data.",
        "",
    ]  # fmt: skip
    from qxai.io import write_text

    write_text(args.results, "\n".join(header + sections))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
