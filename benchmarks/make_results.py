"""Generate RESULTS.md: QA and every baseline scored on `mnist` and `cells` over ≥ 3 training seeds.

    python benchmarks/make_results.py                             # ≈ 30 min on 2 CPU cores
    python benchmarks/make_results.py --per-class 3 --seeds 0,1   # a quick smoke run

Trains (or reuses, from ``runs/results/`` and the qxai cache) a reduced-cnn on `mnist` and a
qixai-cnn on `cells` once per seed, runs :func:`qxai.pipeline.evaluate.run_evaluate` with
``seeds`` on each, and writes ``RESULTS.md`` at the repo root: per data set the claims table, the
metrics of the first seed with 95 % bootstrap intervals and mean ± sd across seeds, the overlap
references, QA's paired tests against every baseline, and where QA does and does not win.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from qxai.report.markdown import claims_markdown, fmt, metrics_markdown

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["qa", "gradcam", "gradcam++", "eigencam", "ig", "shap", "lime", "lrp"]
ROBUST_METHODS = "qa,gradcam,gradcam++,eigencam,lrp"
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


def references(doc: dict[str, Any]) -> list[str]:
    refs = doc.get("references") or {}
    if not refs:
        return []
    lines = ["| size-matched overlap (k = \\|S_QA\\|) | mean | 95 % interval |", "|---|---:|---|"]
    for name in doc["config"]["methods"]:
        v = (doc.get(name) or {}).get("overlap_mean")
        if v is not None and np.isfinite(v):
            lo, hi = ((doc.get("intervals") or {}).get(name) or {}).get("overlap_mean", [None, None])
            lines.append(f"| {name} | {fmt(v)} | [{fmt(lo)}, {fmt(hi)}] |")
    for key, label in (("permutation_null", "permutation null"), ("random_k", "random k maps"),
                       ("class_prototype", "class prototype")):  # fmt: skip
        ref = refs[key]
        lines.append(
            f"| *{label}* | {fmt(ref['mean'])} | [{fmt(ref['interval'][0])}, {fmt(ref['interval'][1])}] |"
        )
    diag = doc.get("diagnostics") or {}
    notes = [diag.get("alpha_within_class", {}).get("sentence")]
    notes += [f"QA's set equals {m}'s top-|S| set on {v:.0%} of images." for m, v in
              (diag.get("same_set_as_topk") or {}).items()]  # fmt: skip
    if diag.get("dead_maps"):
        notes.append(
            f"Dead maps left out of the QUBO: {diag['dead_maps']['dropped_per_image']:.2f} per image."
        )
    return lines + [""] + [f"- {n}" for n in notes if n]


CAUSAL = ("causal_share", "causal_precision", "causal_drop_share", "pixel_drop_share")
CAUSAL_REFS = (("random_k", "random k maps"), ("class_prototype", "class prototype"),
               ("gradient_x_activation", "gradient × activation top-k"))  # fmt: skip


def causal(doc: dict[str, Any]) -> list[str]:
    """Every map-selecting method and the causal reference rows against the causal map oracle."""
    refs = (doc.get("references") or {}).get("causal") or {}
    if not refs:
        return []
    lines = ["| selection (k = \\|S_QA\\|) | " + " | ".join(f"{c} ↑" for c in CAUSAL) + " |",
             "|---|" + "---:|" * len(CAUSAL)]  # fmt: skip
    intervals = doc.get("intervals") or {}
    for name in doc["config"]["methods"]:
        values = doc.get(name) or {}
        if not any(np.isfinite(values.get(c, np.nan)) for c in CAUSAL[:3]):
            continue
        cells = []
        for c in CAUSAL:
            v = values.get(c)
            lo, hi = (intervals.get(name) or {}).get(c, [None, None])
            cells.append(f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]" if v is not None and np.isfinite(v) else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for key, label in CAUSAL_REFS:
        row = refs.get(key) or {}
        cells = []
        for c in CAUSAL:
            e = row.get(c)
            cells.append(f"{fmt(e['mean'])} [{fmt(e['interval'][0])}, {fmt(e['interval'][1])}]" if e else "–")
        lines.append(f"| *{label}* | " + " | ".join(cells) + " |")
    lines += ["", "QA − each reference (paired over images, causal_share / causal_precision):", ""]
    for key, label in CAUSAL_REFS:
        row = refs.get(key) or {}
        parts = []
        for c in ("causal_share", "causal_precision"):
            t = (row.get(c) or {}).get("qa_minus")
            if t and None not in t["interval"]:
                lo, hi = t["interval"]
                word = "tie" if lo <= 0 <= hi else ("QA better" if lo > 0 else f"{label} better")
                parts.append(f"{c} {fmt(t['difference'])} [{fmt(lo)}, {fmt(hi)}] ({word})")
        if parts:
            lines.append(f"- {label}: " + "; ".join(parts))
    return lines


def paired(doc: dict[str, Any]) -> list[str]:
    """QA against each baseline: difference QA − baseline, its interval and p-value, per metric."""
    rows = doc.get("paired") or {}
    if not rows:
        return []
    lines = ["| baseline | metric | QA − baseline [95 %] | p | verdict |", "|---|---|---|---:|---|"]
    for base, metrics in rows.items():
        for metric, t in metrics.items():
            direction = doc["metric_info"][metric]["direction"]
            lo, hi = t["interval"]
            if lo is None or hi is None:
                continue
            if lo <= 0 <= hi:
                word = "tie"
            else:
                qa_better = (hi < 0) == (direction == "lower")
                word = "QA better" if qa_better else f"**{base} better**"
            lines.append(f"| {base} | {metric} | {fmt(t['difference'])} [{fmt(lo)}, {fmt(hi)}] | "
                         f"{fmt(t['p_value'])} | {word} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=None, help="default: 10 (mnist), 25 (cells)")
    parser.add_argument("--datasets", default="mnist,cells")
    parser.add_argument("--seeds", default="0,1,2", help="model-training seeds (≥ 3 for RESULTS.md)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "results")
    parser.add_argument("--results", type=Path, default=ROOT / "RESULTS.md")
    args = parser.parse_args()

    from qxai.evaluate import EvalSettings, select_metrics
    from qxai.models import load_checkpoint
    from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate

    seeds = tuple(int(s) for s in args.seeds.split(","))
    sections: list[str] = []
    all_claims: list[dict[str, Any]] = []
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        ckpt = checkpoint(dataset, args.out)
        out = args.out / f"evaluate-{dataset}"
        spec = RUNS[dataset]
        # robustness on 50 copies per image (Quantus' 200 would triple the run), for the methods that
        # explain in milliseconds (IG, SHAP and LIME would take minutes each)
        robust = {"max_sensitivity": {"samples": 50, "images": 16, "methods": ROBUST_METHODS}}
        scoring = EvalSettings(steps=16, sanity_images=16, deletion_fill=spec["fill"], metric_settings=robust)
        settings = EvaluateSettings(
            methods=tuple(METHODS),
            metrics=(*(m.name for m in select_metrics(None)), "robustness", "stability"),
            per_class=args.per_class or spec["per_class"], seed=seeds[0], seeds=seeds,
            lime_samples=100, ig_steps=24, shap_samples=8, scoring=scoring,
        )  # fmt: skip
        start, cpu = time.perf_counter(), time.process_time()
        doc = run_evaluate(out, model=ckpt, settings=settings)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        cfg = load_checkpoint(ckpt).config
        s = doc["config"]
        skipped = [f"`{m}` ({doc[m]['error']})" for m in s["methods"] if "error" in doc[m]]
        rows = [{**c, "claim": f"{dataset}: {c['claim']}"} for c in doc["claims"]]
        all_claims += rows
        st = doc["settings"]
        sections += [
            f"## {dataset} — {cfg['arch']}, layer `{s['layer']}`",
            "",
            f"Model: {cfg['arch']} trained {cfg['epochs']} epochs per seed "
            f"(seed {seeds[0]}: test accuracy {cfg['metrics']['test_accuracy']:.4f}). "
            f"Images: {doc['summary']['images']} correctly classified test images "
            f"({s['per_class']} per class); "
            f"seeds {', '.join(map(str, seeds))}; QA solver `{st['solver']}`, β = {st['qubo']['beta']}; "
            f"LIME {st['lime_samples']} samples, IG {st['ig_steps']} steps, "
            f"SHAP {st['shap_samples']} samples, "
            f"{st['scoring']['steps']} deletion/insertion steps, "
            f"deleted pixels → {st['scoring']['deletion_fill']}, "
            f"sanity checks on {st['scoring']['sanity_images']} images; robustness on 16 images × 50 "
            f"copies for {ROBUST_METHODS}. "
            f"Intervals: 95 % bootstrap over images ({st['scoring']['resamples']} resamples) of seed "
            f"{seeds[0]}; second line: mean ± sd over the {len(seeds)} seeds. "
            f"Evaluation time {wall:.0f} s wall, "
            f"{cpu:.0f} s CPU (shared machine).",
            "",
            *metrics_markdown(doc),
            "",
            *(["Skipped: " + "; ".join(skipped), ""] if skipped else []),
            "### Class overlap against its references",
            "",
            *references(doc),
            "",
            "### Causal ground truth: the maps the prediction relies on",
            "",
            *causal(doc),
            "",
            "### QA against each baseline (paired bootstrap, seed " + str(seeds[0]) + ")",
            "",
            *paired(doc),
            "",
            f"Figures: `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/seed-{seeds[0]}/` "
            "(overlap.png, curves.png, examples.png).",
            "",
        ]  # fmt: skip
    header = [
        "# Results",
        "",
        "Generated by `python benchmarks/make_results.py"
        + (f" --per-class {args.per_class}" if args.per_class else "")
        + (f" --seeds {args.seeds}" if args.seeds != "0,1,2" else "") + "` on "
        f"{platform.system()} {platform.machine()} (Python {sys.version.split()[0]}). "
        "Metric definitions and how to read them: [docs/evaluation.md](docs/evaluation.md). ↑ higher is "
        "better, ↓ lower is better; a method is bold and named best only where its interval separates "
        "from every other method's, otherwise the row says tie; – means the metric does not apply "
        "(overlap needs a map selection, localisation needs masks, class sensitivity needs ≥ 3 classes).",
        "",
        "`cells` is our procedurally generated malaria stand-in, not the NIH data. The papers' annealing "
        "and QIXAI claims are checked by `make demo` (its report's first section).",
        "",
        "## Do the QA paper's disentanglement claims hold here?",
        "",
        *claims_markdown(all_claims),
        "",
    ]  # fmt: skip
    from qxai.io import write_text

    write_text(args.results, "\n".join(header + sections))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
