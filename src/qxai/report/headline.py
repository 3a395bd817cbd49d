"""The headline numbers of a run as Markdown (for the README), read from its saved results."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qxai.io import read_json
from qxai.report.html import SECTIONS, flatten_summary, method_scores, stage_dir
from qxai.report.markdown import claims_markdown, metrics_markdown
from qxai.stages import STAGES


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def headline_markdown(run_dir: str | os.PathLike[str]) -> str:
    """Markdown: the papers' claims checked, each stage's summary, and the metrics table with
    intervals and verdicts."""
    run_dir = Path(run_dir)
    stages_file = run_dir / STAGES["demo"].main
    meta = read_json(stages_file) if stages_file.is_file() else {}  # else one command's --out folder
    lines = [f"Command: `{meta.get('command', '?')}`", ""]
    top = run_dir / STAGES["evaluate"].main
    claims = read_json(top).get("claims") if top.is_file() else None
    if claims:
        lines += ["**Do the papers' claims hold here?**", "", *claims_markdown(claims), ""]
    for name, record in meta.get("stages", {}).items():
        record = record if isinstance(record, dict) else {"status": str(record)}
        lines.append(f"- **{name}** ({record.get('status')}, {record.get('seconds', 0):.0f} s)")
        folders = (stage_dir(run_dir, s.stage) / s.result_file for s in SECTIONS if s.stage == name)
        result = next(folders, None)
        summary = (
            read_json(result).get("summary", {}) if result and result.is_file() else record.get("summary", {})
        )
        for key, value in flatten_summary(summary or {}).items():
            lines.append(f"  - {key}: {_fmt(value)}")
        if record.get("status") == "failed":
            lines.append(f"  - error: {record.get('error')}")
    metrics_file = stage_dir(run_dir, "evaluate") / STAGES["evaluate"].main
    if metrics_file.is_file():
        doc = read_json(metrics_file)
        if "config" not in doc:  # a hand-made or foreign metrics.json: list its methods as they are
            scores = method_scores(doc)
            doc = {**doc, "config": {"methods": list(scores)}}
        lines += ["", *metrics_markdown(doc)]
    return "\n".join(lines) + "\n"


START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def update_readme(readme: str | os.PathLike[str], run_dir: str | os.PathLike[str], screenshot: str) -> Path:
    """Replace the block between the headline markers of ``readme`` with this run's numbers.

    >>> import tempfile
    >>> page = Path(tempfile.mkdtemp()) / "R.md"
    >>> _ = page.write_text(f"a\\n{START}\\nold\\n{END}\\nb\\n")
    >>> _replace_block(page.read_text(), "new").splitlines()
    ['a', '<!-- headline:start -->', 'new', '<!-- headline:end -->', 'b']
    """
    from qxai.io import write_text

    path = Path(readme)
    body = (
        f"![The demo report]({screenshot})\n\n"
        "Headline numbers of the last `make demo` (regenerate this block and the screenshot with\n"
        "`make readme` after `make demo`):\n\n" + headline_markdown(run_dir)
    )
    return write_text(path, _replace_block(path.read_text(encoding="utf-8"), body.strip()))


def _replace_block(text: str, body: str) -> str:
    from qxai.errors import QxaiError

    if START not in text or END not in text:
        raise QxaiError(f"the README has no {START} … {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}\n{END}{tail}"
