"""The self-contained HTML report of a run folder, built from the stages' saved results alone.

A run folder holds ``stages.json`` (each stage's status, seconds and error) and one sub-folder per
stage with its main JSON (``model.json``, ``explanations.json``, ``metrics.json``, ``anneal.json``,
``analysis.json``), each carrying ``figures`` and ``summary`` (docs/ARCHITECTURE.md). Images are
embedded as data URIs, so ``report.html`` is one file that can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qxai.errors import QxaiError
from qxai.io import read_json, write_text


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor id, title, the stage folder and main JSON it reads."""

    key: str
    title: str
    stage: str
    result_file: str
    intro: str


SECTIONS = (
    Section("model", "The model", "model", "model.json", "The trained network whose predictions we explain."),
    Section(
        "explanations", "Explanations side by side", "explain", "explanations.json",
        "QA feature-map selection (QA-fGradCAM) on correctly classified test images, and every method's map.",
    ),
    Section(
        "metrics", "Metrics", "evaluate", "metrics.json",
        "Every method scored on the same images. Arrows give the better direction; the best value is bold.",
    ),
    Section(
        "disentanglement", "Class disentanglement", "evaluate", "metrics.json",
        "Bhattacharyya overlap of the per-class histograms of selected feature maps (SPEC §1); "
        "a diagonal matrix is perfect disentanglement.",
    ),
    Section(
        "annealing", "Annealing physics", "anneal", "anneal.json",
        "Minimum spectral gap and success probability of quantum annealing on the explanation QUBOs.",
    ),
    Section(
        "layers", "Layer analyses (QIXAI)", "analyze", "analysis.json",
        "Spectra, similarity and mutual information between layers, and integrated gradients.",
    ),
)  # fmt: skip

#: words in a figure's file name that move it from its stage's default section to another one
_FIGURE_ROUTES = {
    "evaluate": [
        (("overlap", "bhattacharyya", "disentangle", "silhouette"), "disentanglement"),
        (("grid", "example"), "explanations"),
    ],
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header{background:#14213d;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.6rem}
header p{margin:.3rem 0 0;opacity:.85}nav{background:#fff;border-bottom:1px solid #dde;padding:.5rem 2rem;
position:sticky;top:0;z-index:1}nav a{margin-right:1rem;color:#14213d;text-decoration:none;font-weight:600}
main{max-width:1200px;margin:0 auto;padding:1rem 2rem}section{background:#fff;border:1px solid #e3e6ea;
border-radius:8px;margin:1.2rem 0;padding:1rem 1.4rem}h2{margin-top:.2rem}figure{margin:1rem 0}
figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9rem}
table{border-collapse:collapse;font-size:.9rem;margin:.6rem 0}td,th{border:1px solid #dde;padding:.3rem .6rem;
text-align:right}th{background:#f0f2f5}td:first-child,th:first-child{text-align:left}
.failed{background:#fff0f0;border-color:#e5a0a0}.error{color:#a01010;font-family:monospace;white-space:pre-wrap}
.status-ok{color:#17803d}.status-failed{color:#a01010}.status-skipped{color:#777}
code{background:#f0f2f5;padding:0 .2rem}
.muted{color:#666}.scroll{overflow-x:auto}
"""

# Marks the page once every <img> has loaded (or failed): the browser test reads these attributes.
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(broken.length));
});
"""


def _data_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | dict):
        return html.escape(json.dumps(value)[:200])
    return html.escape(str(value))


def flatten_summary(summary: dict[str, Any], depth: int = 2) -> dict[str, Any]:
    """Nested summaries as flat ``"outer inner": value`` rows, ``depth`` levels deep at most.

    >>> flatten_summary({"gap": {"median": 0.1, "by_d": {"3": {"n": 1}}}, "images": 4})
    {'gap median': 0.1, 'images': 4}
    """
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            if depth > 1:
                inner = flatten_summary(value, depth - 1)
                flat.update({f"{key} {k}": v for k, v in inner.items()})
        else:
            flat[str(key)] = value
    return flat


def _summary_table(summary: dict[str, Any]) -> str:
    if not summary:
        return ""
    items = flatten_summary(summary).items()
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in items)
    return f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"


def _figure(path: Path, title: str, caption: str) -> str:
    uri = _data_uri(path)
    if uri is None:
        return f'<p class="error">figure {html.escape(path.name)} is missing</p>'
    return (
        f'<figure><img src="{uri}" alt="{html.escape(title)}"><figcaption><b>{html.escape(title)}</b> '
        f"{html.escape(caption)}</figcaption></figure>"
    )


_RESERVED_KEYS = {
    "figures",
    "summary",
    "metric_info",
    "metrics_info",
    "errors",
    "config",
    "images",
    "skipped",
}


def method_scores(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{method: {metric: value}}`` from a metrics.json (top-level methods, or under ``methods``)."""
    if isinstance(metrics.get("methods"), dict):
        return metrics["methods"]
    return {k: v for k, v in metrics.items() if k not in _RESERVED_KEYS and isinstance(v, dict)}


def metrics_table(metrics: dict[str, Any]) -> str:
    """Methods × metrics with the best value per metric in bold (by each metric's direction)."""
    methods = method_scores(metrics)
    info = metrics.get("metric_info") or metrics.get("metrics_info") or {}
    names: list[str] = []
    for values in methods.values():
        for name, value in (values or {}).items():
            if name not in names and isinstance(value, int | float) and not isinstance(value, bool):
                names.append(name)
    if not methods or not names:
        return "<p class='muted'>no metrics recorded</p>"
    best: dict[str, float] = {}
    for name in names:
        column = [v[name] for v in methods.values() if isinstance((v or {}).get(name), int | float)]
        if column:
            higher = (info.get(name) or {}).get("direction", "higher") == "higher"
            best[name] = max(column) if higher else min(column)
    head = "".join(
        f"<th title='{html.escape((info.get(n) or {}).get('definition', ''))}'>{html.escape(n)} "
        f"{'↑' if (info.get(n) or {}).get('direction', 'higher') == 'higher' else '↓'}</th>"
        for n in names
    )
    body = ""
    for method, values in methods.items():
        cells = ""
        for n in names:
            v = (values or {}).get(n)
            text = _fmt(v) if isinstance(v, int | float) else "–"
            cells += f"<td><b>{text}</b></td>" if v is not None and v == best.get(n) else f"<td>{text}</td>"
        body += f"<tr><td>{html.escape(method)}</td>{cells}</tr>"
    # wide tables scroll inside their section instead of overflowing the page
    return f"<div class='scroll'><table><tr><th>method</th>{head}</tr>{body}</table></div>"


def _route(stage: str, fig: dict[str, Any]) -> str:
    """The section a stage's figure belongs in: its own ``section`` key, a name route, or the default."""
    if fig.get("section"):
        return str(fig["section"])
    name = str(fig.get("file", "")).lower()
    for words, dest in _FIGURE_ROUTES.get(stage, []):
        if any(w in name for w in words):
            return dest
    return next(s.key for s in SECTIONS if s.stage == stage)


def _figures_by_section(run_dir: Path) -> dict[str, list[str]]:
    """Every figure of every stage, rendered, grouped by the section it belongs in."""
    grouped: dict[str, list[str]] = {}
    seen: set[Path] = set()
    for section in SECTIONS:
        path = run_dir / section.stage / section.result_file
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for entry in read_json(path).get("figures") or []:
            fig = entry if isinstance(entry, dict) else {"file": str(entry)}
            name = str(fig.get("file", ""))
            html_fig = _figure(run_dir / section.stage / name, fig.get("title", name), fig.get("caption", ""))
            grouped.setdefault(_route(section.stage, fig), []).append(html_fig)
    return grouped


def _render_section(run_dir: Path, section: Section, stages: dict[str, Any], figures: list[str]) -> str:
    status = stages.get(section.stage, {})
    state = status.get("status", "missing")
    head = f'<section id="{section.key}" data-section="{section.key}"'
    if state == "failed":
        return (
            f'{head} class="failed"><h2>{html.escape(section.title)} '
            f'<span class="status-failed">(stage "{section.stage}" failed)</span></h2>'
            f'<p class="error">{html.escape(str(status.get("error", "unknown error")))}</p></section>'
        )
    path = run_dir / section.stage / section.result_file
    if not path.is_file():
        return (
            f'{head}><h2>{html.escape(section.title)} <span class="status-skipped">(not run)</span></h2>'
            f'<p class="muted">No {html.escape(section.stage)}/{section.result_file} in this run.</p>'
            "</section>"
        )
    result = read_json(path)
    parts = [f"{head}><h2>{html.escape(section.title)}</h2><p>{html.escape(section.intro)}</p>"]
    if section.key == "metrics":
        parts.append(metrics_table(result))
        failures = {m: e for m, e in (result.get("errors") or {}).items()}
        for method, error in failures.items():
            parts.append(f'<p class="error">{html.escape(method)} skipped: {html.escape(str(error))}</p>')
    elif section.key != "disentanglement":
        parts.append(_summary_table(result.get("summary") or {}))
    parts.extend(figures)
    parts.append("</section>")
    return "".join(parts)


def _timings(stages: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='status-{html.escape(str(s.get('status')))}'>"
        f"{html.escape(str(s.get('status')))}</td><td>{float(s.get('seconds') or 0):.1f}</td></tr>"
        for name, s in stages.items()
    )
    total = sum(float(s.get("seconds") or 0) for s in stages.values())
    return (
        '<section id="timings" data-section="timings"><h2>Timings</h2>'
        f"<table><tr><th>stage</th><th>status</th><th>seconds</th></tr>{rows}"
        f"<tr><td><b>total</b></td><td></td><td><b>{total:.1f}</b></td></tr></table></section>"
    )


def _provenance(meta: dict[str, Any]) -> str:
    versions = meta.get("versions") or {}
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in versions.items()
    )
    return (
        '<section id="provenance" data-section="provenance"><h2>Command and versions</h2>'
        f"<p><code>{html.escape(str(meta.get('command', '(unknown)')))}</code></p>"
        f"<p class='muted'>started {html.escape(str(meta.get('started', '?')))} on "
        f"{html.escape(str(meta.get('platform', '?')))}</p>"
        f"<table><tr><th>package</th><th>version</th></tr>{rows}"
        "</table></section>"
    )


def render_report(run_dir: str | os.PathLike[str]) -> str:
    """The report page of ``run_dir`` as one HTML string."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise QxaiError(f"run folder {run_dir} does not exist; run `qxai demo --out {run_dir}` first")
    stages_file = run_dir / "stages.json"
    meta = read_json(stages_file) if stages_file.is_file() else {}
    stages = meta.get("stages") or {}
    if not stages and not any((run_dir / s.stage / s.result_file).is_file() for s in SECTIONS):
        raise QxaiError(f"{run_dir} holds no stage results; run `qxai demo --out {run_dir}` first")
    title = meta.get("title") or "qxai report"
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in SECTIONS)
    nav += '<a href="#timings">Timings</a><a href="#provenance">Command</a>'
    figures = _figures_by_section(run_dir)
    body = "".join(_render_section(run_dir, s, stages, figures.get(s.key, [])) for s in SECTIONS)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(str(meta.get('subtitle', '')))}</p></header>"
        f"<nav>{nav}</nav><main>{body}{_timings(stages)}{_provenance(meta)}</main></body></html>"
    )


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``run_dir/report.html`` from the saved results (nothing is recomputed); return its path."""
    page = render_report(run_dir)
    return write_text(Path(run_dir) / "report.html", page)
