"""Markdown tables of saved results (README headline, RESULTS.md): one implementation for both.

>>> doc = {"config": {"methods": ["qa"]}, "qa": {"x": 0.5}, "metric_info": {"x": {"direction": "lower"}},
...        "intervals": {"qa": {"x": [0.4, 0.6]}}, "verdicts": {"x": "qa"}}
>>> metrics_markdown(doc)[-1]
'| x ↓ | **0.5 [0.4, 0.6]** | qa |'
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fmt(value: Any) -> str:
    """Four significant digits; ``–`` for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metrics_markdown(doc: dict[str, Any]) -> list[str]:
    """One row per metric, one column per method: ``value [low, high]`` (and the mean ± sd across
    seeds when the run has them); the last column is the saved verdict — a method only where its
    interval separates from every other method's, else ``tie: …``."""
    methods = [m for m in (doc.get("config") or {}).get("methods", []) if "error" not in (doc.get(m) or {})]
    intervals, across = doc.get("intervals") or {}, doc.get("across_seeds") or {}
    verdicts = doc.get("verdicts") or {}
    quiet = set(doc.get("not_discriminative") or [])
    lines = ["| metric | " + " | ".join(methods) + " | best |", "|---|" + "---:|" * len(methods) + "---|"]
    for metric, info in (doc.get("metric_info") or {}).items():
        values = {m: (doc.get(m) or {}).get(metric) for m in methods}
        if all(v is None for v in values.values()):
            continue
        cells = []
        for m, v in values.items():
            text = fmt(v)
            lo_hi = (intervals.get(m) or {}).get(metric)
            if v is not None and lo_hi:
                text += f" [{fmt(lo_hi[0])}, {fmt(lo_hi[1])}]"
            seeds = (across.get(m) or {}).get(metric)
            if v is not None and seeds:
                text += f"<br>{fmt(seeds['mean'])} ± {fmt(seeds['sd'])}"
            cells.append(f"**{text}**" if verdicts.get(metric) == m else text)
        arrow = {"higher": "↑", "lower": "↓"}.get(info.get("direction"), "·")
        best = "not discriminative" if metric in quiet else verdicts.get(metric, "–")
        lines.append(f"| {metric} {arrow} | " + " | ".join(cells) + f" | {best} |")
    return lines


def claims_markdown(claims: list[dict[str, Any]]) -> list[str]:
    """The claims table: claim, the paper's figure, ours [interval], verdict, why."""
    lines = ["| claim | paper | ours [95 %] | verdict | why |", "|---|---|---|---|---|"]
    for c in claims:
        interval = c.get("interval")
        ours = fmt(c.get("ours"))
        if isinstance(interval, list) and len(interval) == 2 and None not in interval:
            ours += f" [{fmt(interval[0])}, {fmt(interval[1])}]"
        lines.append(f"| {c.get('claim', '')} | {c.get('paper', '')} | {ours} | {c.get('verdict', '')} | "
                     f"{c.get('why', '')} |")  # fmt: skip
    return lines
