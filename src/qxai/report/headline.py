"""The headline numbers of a run as Markdown (for the README), read from its saved results."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qxai.io import read_json
from qxai.report.html import SECTIONS, flatten_summary, method_scores


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def headline_markdown(run_dir: str | os.PathLike[str]) -> str:
    """Markdown: each stage's summary, and the methods × metrics table of the evaluation."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / "stages.json")
    lines = [f"Command: `{meta.get('command', '?')}`", ""]
    for name, record in meta.get("stages", {}).items():
        lines.append(f"- **{name}** ({record.get('status')}, {record.get('seconds', 0):.0f} s)")
        result = next((run_dir / s.stage / s.result_file for s in SECTIONS if s.stage == name), None)
        summary = (
            read_json(result).get("summary", {}) if result and result.is_file() else record.get("summary", {})
        )
        for key, value in flatten_summary(summary or {}).items():
            lines.append(f"  - {key}: {_fmt(value)}")
        if record.get("status") == "failed":
            lines.append(f"  - error: {record.get('error')}")
    metrics_file = run_dir / "evaluate" / "metrics.json"
    if metrics_file.is_file():
        scores = method_scores(read_json(metrics_file))
        names = sorted({k for v in scores.values() for k, x in v.items() if isinstance(x, int | float)})
        if names:
            lines += ["", "| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for method, values in scores.items():
                cells = [
                    _fmt(values.get(n)) if isinstance(values.get(n), int | float) else "–" for n in names
                ]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
