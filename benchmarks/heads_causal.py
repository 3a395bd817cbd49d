"""Attention heads, causally: zero the heads QA-heads selects, as many by gradient weight, as many at
random, and compare the drop of the class logit (docs/transformers.md, "Attention heads").

    .venv/bin/python benchmarks/heads_causal.py [--per-class 10] [--seed 0]
                                                [--out runs/results/heads-causal.json]

On the vit-tiny of P10 (MNIST, trained once into runs/results/mnist-vit-tiny.pt), ``per_class``
correctly classified test images per class, each explained for its (predicted = true) class, with
:func:`qxai.evaluate.heads.head_causal_comparison` for ``blocks="last"`` (4 heads) and ``"all"``
(16 heads). Prints one markdown table per setting and writes every number as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p10_heads import ROOT, vit_model_and_images


def fmt(x: float) -> str:
    return f"{x:.3f}"


def table(result: dict) -> str:
    lines = [
        "| heads zeroed | mean logit drop | 95 % interval |",
        "| --- | ---: | ---: |",
    ]
    for name, m in result["methods"].items():
        lo, hi = m["interval"]
        lines.append(f"| {name} | {fmt(m['mean_drop'])} | [{fmt(lo)}, {fmt(hi)}] |")
    lines += [
        "",
        "| paired difference | mean | 95 % interval | p | verdict |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, p in result["paired"].items():
        lo, hi = p["interval"]
        lines.append(
            f"| {name} | {p['difference']:+.3f} | [{fmt(lo)}, {fmt(hi)}] | {p['p_value']:.3g} | "
            f"{p['verdict']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "results" / "heads-causal.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from qxai.evaluate.heads import head_causal_comparison

    model, _layer, images, ids, config = vit_model_and_images(args.per_class)
    acc = config.get("metrics", {}).get("test_accuracy")
    print(
        f"vit-tiny mnist (test accuracy {acc}), {len(images)} correctly classified test images, "
        f"seed {args.seed}"
    )
    results = {}
    for blocks in ("last", "all"):
        start = time.perf_counter()
        result = head_causal_comparison(model, images, None, args.seed, blocks=blocks, ids=ids.tolist())
        result["seconds"] = time.perf_counter() - start
        result["load_average"] = os.getloadavg()[0]
        results[blocks] = result
        print(
            f"\nblocks={blocks}: {result['heads']} heads, {result['compared']} of {result['images']} images "
            f"compared (degenerate: {result['degenerate'] or 'none'}), "
            f"|S| mean {result['mean_selected']:.2f}, "
            f"S = top-|S| by weight on {result['same_as_gradient']:.0%} of them, "
            f"{result['seconds']:.1f} s, load {result['load_average']:.2f}"
        )
        print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"test_accuracy": acc, "per_class": args.per_class, **results}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
