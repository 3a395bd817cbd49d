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
from qxai.io import file_digest, read_json, write_text
from qxai.stages import STAGES, main_json


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor id, title, the stage folder and main JSON it reads."""

    key: str
    title: str
    stage: str
    intro: str

    @property
    def result_file(self) -> str:
        """The main JSON the section reads (:data:`qxai.stages.STAGES`); the claims section reads the
        run's top-level ``metrics.json``."""
        return main_json(self.stage) if self.stage else STAGES["evaluate"].main


SECTIONS = (
    Section(
        "claims", "Do the papers' claims hold here?", "",
        "Each claim of the two source papers, our number with its 95 % interval, and a verdict: holds / "
        "does not hold / not testable here, with one line why.",
    ),
    Section("model", "The model", "model", "The trained network whose predictions we explain."),
    Section(
        "explanations", "Explanations side by side", "explain",
        "QA feature-map selection (QA-fGradCAM) on correctly classified test images, and every method's map.",
    ),
    Section(
        "metrics", "Metrics", "evaluate",
        "Every method scored on the same images, each value with its 95 % bootstrap interval. Arrows give "
        "the better direction; a best is named (bold) only where its interval separates from every "
        "other method's, otherwise the row says tie.",
    ),
    Section(
        "disentanglement", "Class disentanglement", "evaluate",
        "Bhattacharyya overlap of the per-class histograms of selected feature maps (SPEC §1); "
        "a diagonal matrix is perfect disentanglement. The headline compares sets of equal size per "
        "image (k = |S_QA|), beside three references computed by the same code.",
    ),
    Section(
        "groundtruth", "Ground truth: do the selected maps matter?", "evaluate",
        "Each method's maps scored against what ablating them does to the target logit: the causal map "
        "oracle (the k maps the prediction relies on most, found by exact enumeration), beside random, "
        "class-prototype and first-order references, with 95 % intervals and QA's paired difference.",
    ),
    Section(
        "planted", "Ground truth by construction: the planted benchmark", "planted",
        "A data set and model whose class evidence runs through known feature maps (the designated maps "
        "D(c)) and known pixels (the masks), at each difficulty run; every method's size-matched maps are "
        "scored against that truth and against the causal oracle, with 95 % intervals.",
    ),
    Section(
        "transformer", "Transformer: token-grid maps and attention heads", "heads",
        "The CAMs on the token grid of a Transformer layer beside attention rollout and Chefer et al.'s "
        "relevance, and QA over attention heads: zeroing its selected heads against zeroing as many "
        "heads by gradient weight or at random (the drop of the target logit, 95 % intervals).",
    ),
    Section(
        "annealing", "Annealing physics", "anneal",
        "Minimum spectral gap and success probability of quantum annealing on the explanation QUBOs.",
    ),
    Section(
        "layers", "Layer analyses (QIXAI)", "analyze",
        "Spectra, similarity and mutual information between layers, and integrated gradients.",
    ),
    Section(
        "quantum", "Quantum layers", "quantum",
        "For a hybrid quantum–classical model: entanglement per variational layer, the qubit mutual "
        "information beside the classical MI map, and the Helstrom bound against the model's accuracy.",
    ),
)  # fmt: skip

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
.muted{color:#666}.scroll{overflow-x:auto}.ci{color:#667;font-size:.78rem}.note{color:#444;font-size:.9rem}
tr.ref td{background:#f7f7fb;font-style:italic}.verdict.holds{color:#17803d;font-weight:600}
.verdict.fails{color:#a01010;font-weight:600}.verdict.untestable{color:#777}
table.claims td,table.claims th{text-align:left;vertical-align:top}
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
    "figures", "summary", "metric_info", "metrics_info", "errors", "config", "images", "skipped", "intervals",
    "not_applicable", "verdicts", "not_discriminative", "references", "paired", "diagnostics", "claims",
    "settings", "qubo", "files", "run_id", "sha256", "across_seeds", "seeds", "degenerate", "blank",
    "undefined",
}  # fmt: skip


def method_scores(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{method: {metric: value}}`` from a metrics.json (top-level methods, or under ``methods``)."""
    if isinstance(metrics.get("methods"), dict):
        return metrics["methods"]
    return {k: v for k, v in metrics.items() if k not in _RESERVED_KEYS and isinstance(v, dict)}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def metrics_table(metrics: dict[str, Any]) -> str:
    """Metrics × methods, each cell ``value [low, high]``; the best is bold only where the saved
    verdict names one method (intervals separate), and the last column says "tie: …" otherwise."""
    methods = {m: v for m, v in method_scores(metrics).items() if isinstance(v, dict) and "error" not in v}
    info = metrics.get("metric_info") or metrics.get("metrics_info") or {}
    intervals = metrics.get("intervals") or {}
    verdicts = metrics.get("verdicts") or {}
    quiet = set(metrics.get("not_discriminative") or [])
    across = metrics.get("across_seeds") or {}
    names: list[str] = list(info) or []
    for values in methods.values():
        for name, value in values.items():
            if name not in names and _number(value):
                names.append(name)
    if not methods or not names:
        return "<p class='muted'>no metrics recorded</p>"
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    body = ""
    for n in names:
        direction = (info.get(n) or {}).get("direction", "higher")
        arrow = {"higher": "↑", "lower": "↓"}.get(direction, "·")
        label = str(verdicts.get(n, "–"))
        cells = ""
        for method, values in methods.items():
            v = values.get(n)
            if not _number(v):
                cells += "<td class='muted'>–</td>"
                continue
            text = _fmt(v)
            lo_hi = (intervals.get(method) or {}).get(n)
            if lo_hi and None not in lo_hi:
                text += f"<br><span class='ci'>[{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]</span>"
            seeds = (across.get(method) or {}).get(n)
            if seeds:
                text += f"<br><span class='ci'>seeds {_fmt(seeds['mean'])} ± {_fmt(seeds['sd'])}</span>"
            cells += f"<td><b>{text}</b></td>" if label == method else f"<td>{text}</td>"
        note = "not discriminative on this data" if n in quiet else label
        title = html.escape((info.get(n) or {}).get("definition", ""))
        body += (
            f"<tr><td title='{title}'>{html.escape(n)} {arrow}</td>{cells}<td>{html.escape(note)}</td></tr>"
        )
    return f"<div class='scroll'><table><tr><th>metric</th>{head}<th>best</th></tr>{body}</table></div>"


def overlap_table(metrics: dict[str, Any]) -> str:
    """The size-matched overlap of every map-selecting method beside the three reference rows, with
    intervals, relative to the permutation null, and the set-size-confounded variant."""
    refs = metrics.get("references") or {}
    methods = method_scores(metrics)
    intervals = metrics.get("intervals") or {}
    rel = refs.get("relative_to_null") or {}
    rows = ""
    for name, values in methods.items():
        if not isinstance(values, dict) or not _number(values.get("overlap_mean")):
            continue
        lo, hi = (intervals.get(name) or {}).get("overlap_mean", [None, None])
        ci = f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else "–"
        act = values.get("overlap_activated_mean")
        rows += (f"<tr><td>{html.escape(name)}</td><td>{_fmt(values['overlap_mean'])}</td><td>{ci}</td>"
                 f"<td>{_fmt(rel.get(name)) if name in rel else '–'}</td>"
                 f"<td>{_fmt(act) if _number(act) else '–'}</td></tr>")  # fmt: skip
    for key, label in (
        ("permutation_null", "permutation null (labels shuffled)"),
        ("random_k", "random k maps"),
        ("class_prototype", "class prototype (no per-image info)"),
    ):
        ref = refs.get(key)
        if not ref:
            continue
        lo, hi = ref.get("interval", [None, None])
        rows += (f"<tr class='ref'><td>{html.escape(label)}</td><td>{_fmt(ref.get('mean'))}</td>"
                 f"<td>[{_fmt(lo)}, {_fmt(hi)}]</td><td>–</td><td>–</td></tr>")  # fmt: skip
    if not rows:
        return ""
    notes = []
    diag = metrics.get("diagnostics") or {}
    alpha = diag.get("alpha_within_class") or {}
    if alpha.get("sentence"):
        notes.append(alpha["sentence"])
    for name, share in (diag.get("same_set_as_topk") or {}).items():
        notes.append(f"QA's set equals {name}'s top-|S| set on {share:.0%} of images.")
    dead = diag.get("dead_maps") or {}
    if dead:
        notes.append(f"Dead maps left out of the QUBO: {dead['dropped_per_image']:.2f} per image "
                     f"({dead['images_with_dead_maps']:.0%} of images have one).")  # fmt: skip
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    return (
        "<h3>Size-matched overlap and references</h3><div class='scroll'><table><tr><th>selection</th>"
        "<th>overlap_mean ↓</th><th>95 % interval</th><th>relative to null</th>"
        "<th>own-set overlap (set-size-confounded)</th></tr>"
        f"{rows}</table></div>{note_html}"
    )


#: the ground-truth columns: the causal metrics, then the pixel ceiling (all higher is better)
CAUSAL_COLUMNS = ("causal_share", "causal_precision", "causal_drop_share", "pixel_drop_share")
_CAUSAL_REF_LABELS = {
    "random_k": "random k maps (exact expectation)",
    "class_prototype": "class prototype (QA's most frequent k maps of the class)",
    "gradient_x_activation": "gradient × activation top-k (first-order estimate)",
}


def _with_interval(value: Any, interval: Any) -> str:
    text = _fmt(value)
    if isinstance(interval, list) and len(interval) == 2 and all(_number(v) for v in interval):
        text += f"<br><span class='ci'>[{_fmt(interval[0])}, {_fmt(interval[1])}]</span>"
    return text


def causal_table(metrics: dict[str, Any]) -> str:
    """Every method's size-matched set against the causal map oracle (share of the best achievable
    logit kept, precision, share of the largest drop), the pixel ceiling, the three reference
    selections, and QA's paired difference against each comparator on causal precision."""
    methods = {m: v for m, v in method_scores(metrics).items() if isinstance(v, dict) and "error" not in v}
    columns = [c for c in CAUSAL_COLUMNS if any(_number(v.get(c)) for v in methods.values())]
    if not columns:
        return ""
    intervals = metrics.get("intervals") or {}
    paired = metrics.get("paired") or {}
    refs = (metrics.get("references") or {}).get("causal") or {}
    verdicts = metrics.get("verdicts") or {}
    head = "".join(f"<th>{html.escape(c)} ↑</th>" for c in columns)
    rows = ""
    for name, values in methods.items():
        cells = "".join(
            f"<td>{_with_interval(values.get(c), (intervals.get(name) or {}).get(c))}</td>"
            if _number(values.get(c)) else "<td class='muted'>–</td>" for c in columns
        )  # fmt: skip
        test = (paired.get(name) or {}).get("causal_precision")
        rows += f"<tr><td>{html.escape(name)}</td>{cells}{_paired_cell(test, name)}</tr>"
    for key, label in _CAUSAL_REF_LABELS.items():
        row = refs.get(key)
        if not isinstance(row, dict):
            continue
        cells = "".join(
            f"<td>{_with_interval(row[c].get('mean'), row[c].get('interval'))}</td>"
            if isinstance(row.get(c), dict) and _number(row[c].get("mean")) else "<td class='muted'>–</td>"
            for c in columns
        )  # fmt: skip
        test = (row.get("causal_precision") or {}).get("qa_minus")
        rows += f"<tr class='ref'><td>{html.escape(label)}</td>{cells}{_paired_cell(test, key)}</tr>"
    oracle = "".join("<td>1</td>" if c != "pixel_drop_share" else "<td>–</td>" for c in columns)
    rows += f"<tr class='ref'><td>causal oracle (best k maps)</td>{oracle}<td>–</td></tr>"
    best = "".join(f"<td>{html.escape(str(verdicts.get(c, '–')))}</td>" for c in columns)
    rows += f"<tr><td><i>best</i></td>{best}<td></td></tr>"
    note = (
        "k = |S_QA| per image for every row. causal_share = (z(S) − z(∅)) / (z(S*) − z(∅)) with every map "
        "outside S zeroed; causal_precision = |S ∩ S*| / k; causal_drop_share = the drop when S is zeroed "
        "over the largest drop of any k maps; pixel_drop_share = the logit drop when the method's top "
        "pixels are removed over that largest map drop (the ceiling deletion is read against). "
        "The last column is QA − the row on causal_precision, paired over images, with its 95 % interval."
    )
    return (
        "<h3>Causal map oracle</h3><div class='scroll'><table><tr><th>selection</th>"
        f"{head}<th>QA − row (causal_precision)</th></tr>{rows}</table></div>"
        f"<p class='note'>{html.escape(note)}</p>"
    )


#: the planted table's columns when a planted.json does not name them (all higher is better)
PLANTED_COLUMNS = (
    "planted_precision", "planted_recall", "pointing_game", "relevance_mass", "causal_precision",
)  # fmt: skip


def planted_table(doc: dict[str, Any]) -> str:
    """One table per difficulty of the planted stage's ``planted.json`` (``doc["parts"]``): method ×
    the planted, localisation and causal-precision columns, each value with its 95 % interval, QA's
    paired difference against the row on causal precision, and the verdicts; a difficulty whose run
    failed shows its error."""
    parts = doc.get("parts")
    if not isinstance(parts, dict) or not parts:
        return "<p class='muted'>no planted difficulty was run</p>"
    columns = [str(c) for c in (doc.get("columns") or PLANTED_COLUMNS)]
    head = "".join(f"<th>{html.escape(c)} ↑</th>" for c in columns)
    out = ""
    for difficulty, part in parts.items():
        if not isinstance(part, dict):
            continue
        description = html.escape(str(part.get("description", "")))
        title = f"<h3>{html.escape(str(difficulty))}</h3><p class='note'>{description}"
        if "error" in part:
            out += f"{title}</p><p class='error'>{html.escape(str(part['error']))}</p>"
            continue
        accuracy = part.get("model test accuracy")
        images = part.get("images")
        out += title + (f"; {images} images" if _number(images) else "")
        out += (f"; model test accuracy {_fmt(accuracy)}" if _number(accuracy) else "") + "</p>"
        intervals = part.get("intervals") or {}
        paired = part.get("paired") or {}
        not_applicable = part.get("not_applicable") or {}
        rows = ""
        for name, values in (part.get("methods") or {}).items():
            if not isinstance(values, dict) or "error" in values:
                error = values.get("error") if isinstance(values, dict) else values
                rows += (f"<tr><td>{html.escape(name)}</td><td colspan='{len(columns) + 1}' class='error'>"
                         f"{html.escape(str(error))}</td></tr>")  # fmt: skip
                continue
            cells = ""
            for c in columns:
                if _number(values.get(c)):
                    cells += f"<td>{_with_interval(values[c], (intervals.get(name) or {}).get(c))}</td>"
                else:
                    why = html.escape(str((not_applicable.get(name) or {}).get(c, "not computed")))
                    cells += f"<td class='muted' title='{why}'>–</td>"
            test = (paired.get(name) or {}).get("causal_precision")
            rows += f"<tr><td>{html.escape(name)}</td>{cells}{_paired_cell(test, name)}</tr>"
        verdicts = part.get("verdicts") or {}
        best = "".join(f"<td>{html.escape(str(verdicts.get(c, '–')))}</td>" for c in columns)
        rows += f"<tr><td><i>best</i></td>{best}<td></td></tr>"
        out += (f"<div class='scroll'><table><tr><th>method</th>{head}"
                f"<th>QA − row (causal_precision)</th></tr>{rows}</table></div>")  # fmt: skip
    note = (
        "k = |S_QA| per image for every method. planted_precision = |S ∩ D(c)| / k (every copy of a "
        "designated map counts; at most |D(c)| / k), planted_recall = the share of D(c)'s groups (a map and "
        "its copies) that S hits, pointing_game and relevance_mass against the mask of the class's parts, "
        "causal_precision = |S ∩ S*| / k with S* the k maps the prediction relies on most (exact "
        "enumeration). The last column is QA − the row on causal_precision, paired over images, with its "
        "95 % interval. A dash: the metric does not apply to the method (hover for why)."
    )
    return f"{out}<p class='note'>{html.escape(note)}</p>"


def heads_table(doc: dict[str, Any]) -> str:
    """One row per head choice of the heads stage's ``heads.json``: the mean logit drop of QA's heads,
    the gradient-weight and the random heads of the same size (95 % intervals), QA's paired
    differences with their verdicts, and the number of images compared."""
    comparisons = doc.get("comparisons") or {}
    if not comparisons:
        return "<p class='muted'>no head comparison in this run</p>"
    names = ("qa", "gradient-weight", "random")
    head = "".join(f"<th>{html.escape(n)} drop ↑</th>" for n in names)
    body = []
    for blocks, c in comparisons.items():
        methods = c.get("methods") or {}
        found = [methods.get(n) or {} for n in names]
        cells = "".join(f"<td>{_with_interval(m.get('mean_drop'), m.get('interval'))}</td>" for m in found)
        paired = "".join(
            f"<td>{_with_interval(t.get('difference'), t.get('interval'))} "
            f"<span class='note'>({html.escape(str(t.get('verdict')))})</span></td>"
            for t in (c.get("paired") or {}).values()
        )
        size = _fmt(c.get("mean_selected"))
        label = f"{html.escape(str(blocks))} ({c.get('heads')} heads, mean |S| = {size})"
        body.append(f"<tr><td>{label}</td>{cells}{paired}<td>{_fmt(c.get('compared'))}</td></tr>")
    return (
        "<div class='scroll'><table><tr><th>heads</th>" + head + "<th>QA − gradient weight</th>"
        "<th>QA − random</th><th>images</th></tr>" + "".join(body) + "</table></div>"
        "<p class='note'>Drop = target logit − target logit with the heads zeroed (before they are merged). "
        "The paired verdict names the method whose heads matter more, or says tie where the interval "
        "contains 0.</p>"
    )


def _paired_cell(test: Any, name: str) -> str:
    """The ``QA − row`` cell of a paired test ``{difference, interval}`` (QA's own row: reference)."""
    if name == "qa":
        return "<td>(reference)</td>"
    if not isinstance(test, dict) or not _number(test.get("difference")):
        return "<td>–</td>"
    lo, hi = [*(test.get("interval") or []), None, None][:2]
    if not (_number(lo) and _number(hi)):
        word = "no interval"
    else:
        word = "tie" if lo <= 0 <= hi else ("QA better" if lo > 0 else "QA worse")
    return f"<td>{_with_interval(test['difference'], [lo, hi])}<br><span class='ci'>{word}</span></td>"


_VERDICT_CLASS = {"holds": "holds", "does not hold": "fails", "not testable": "untestable"}


def claims_table(claims: list[dict[str, Any]]) -> str:
    """One row per paper claim: claim, the paper's figure, ours with its interval, verdict, why."""
    if not claims:
        return "<p class='muted'>no claims were checked in this run</p>"
    rows = ""
    for c in claims:
        if not isinstance(c, dict):
            continue
        interval = c.get("interval")
        ours = _fmt(c.get("ours")) if c.get("ours") is not None else "–"
        if isinstance(interval, list) and len(interval) == 2 and None not in interval:
            ours += f" [{_fmt(interval[0])}, {_fmt(interval[1])}]"
        verdict = str(c.get("verdict", "not testable"))
        rows += (
            f"<tr><td>{html.escape(str(c.get('claim', '')))}</td>"
            f"<td>{html.escape(str(c.get('paper', '')))}</td><td>{ours}</td>"
            f"<td class='verdict {_VERDICT_CLASS.get(verdict, '')}'>{html.escape(verdict)}</td>"
            f"<td>{html.escape(str(c.get('why', '')))}</td></tr>"
        )
    return (
        "<div class='scroll'><table class='claims'><tr><th>claim</th><th>paper</th>"
        "<th>ours [95 % interval]</th>"
        f"<th>verdict</th><th>why</th></tr>{rows}</table></div>"
    )


def _route(stage: str, fig: dict[str, Any]) -> str:
    """The section a stage's figure belongs in: its own ``section`` key (``Figure.section``), else its
    stage's section (:data:`qxai.stages.STAGES`; the demo's ``quantum`` folder has its own)."""
    if fig.get("section"):
        return str(fig["section"])
    return STAGES[stage].section if stage in STAGES else stage  # type: ignore[return-value]


def stage_dir(run_dir: Path, stage: str) -> Path:
    """The folder that holds ``stage``'s files: ``run_dir/stage`` in a demo run, ``run_dir`` itself
    when it is one command's ``--out`` folder (its main JSON lies there, e.g. after
    ``qxai evaluate --out DIR``; explain and evaluate may share one such folder).

    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> _ = (run / "metrics.json").write_text("{}")
    >>> stage_dir(run, "evaluate") == run, stage_dir(run, "explain") == run / "explain"
    (True, True)
    """
    nested = run_dir / stage
    if _is_demo_run(run_dir) or nested.is_dir() or not (run_dir / main_json(stage)).is_file():
        return nested
    return run_dir


def _is_demo_run(run_dir: Path) -> bool:
    """A demo run keeps each stage in its own sub-folder and its stage table in ``stages.json`` (whose
    top-level ``metrics.json`` is the claims summary, not an evaluate result)."""
    return (run_dir / STAGES["demo"].main).is_file()


def _inside(run_dir: Path, folder: Path, name: str) -> Path | None:
    """``folder/name`` when it resolves to a file inside ``run_dir``; None for absolute paths,
    ``..`` escapes or links out of the run folder (a stage JSON must not make us embed other files)."""
    try:
        path = (folder / name).resolve()
        root = run_dir.resolve()
    except (OSError, RuntimeError):
        return None
    if not name or Path(name).is_absolute() or (root not in path.parents and path != root):
        return None
    return path


#: The shape of every key the report reads from a stage's JSON; anything else is refused on read.
_SHAPES: dict[str, type | tuple[type, ...]] = {
    "figures": list, "summary": dict, "stages": dict, "files": list, "sha256": dict, "claims": list,
    "verdicts": dict, "intervals": dict, "not_applicable": dict, "metric_info": dict, "metrics_info": dict,
    "not_discriminative": list, "config": dict, "quantum": (dict, type(None)), "methods": dict,
    "title": str, "subtitle": str, "versions": dict, "command": (str, list), "parts": dict, "columns": list,
}  # fmt: skip


def _stage_doc(path: Path) -> dict[str, Any]:
    """A stage's main JSON checked against :data:`_SHAPES` (one line naming the file and the key)."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise QxaiError(
            f"{path} holds a {type(doc).__name__}, not a stage result object; delete it and rerun the stage"
        )
    for key, shape in _SHAPES.items():
        if key in doc and not isinstance(doc[key], shape):
            want = " or ".join(t.__name__ for t in (shape if isinstance(shape, tuple) else (shape,)))
            raise QxaiError(
                f"{path}: '{key}' is a {type(doc[key]).__name__}, not a {want.replace('dict', 'object')}; "
                "delete the file and rerun the stage that writes it"
            )
    for entry in doc.get("figures") or []:
        if not (isinstance(entry, str) or (isinstance(entry, dict) and isinstance(entry.get("file"), str))):
            raise QxaiError(
                f"{path}: a 'figures' entry is {json.dumps(entry)[:60]}, not {{\"file\": …}}; "
                "delete the file and rerun the stage that writes it"
            )
    return doc


def _figures_by_section(run_dir: Path) -> dict[str, list[str]]:
    """Every figure of every stage, rendered, grouped by the section it belongs in."""
    grouped: dict[str, list[str]] = {}
    seen: set[Path] = set()
    for section in SECTIONS:
        if not section.stage:
            continue
        path = stage_dir(run_dir, section.stage) / section.result_file
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        doc = _stage_doc(path)
        digests = doc.get("sha256") or {}
        for entry in doc.get("figures") or []:
            fig = entry if isinstance(entry, dict) else {"file": str(entry)}
            name = str(fig.get("file", ""))
            target = _inside(run_dir, path.parent, name)
            if target is None:
                html_fig = (
                    f'<p class="error">figure {html.escape(name)} lies outside the run folder; not shown</p>'
                )
            elif name in digests and target.is_file() and file_digest(target) != digests[name]:
                # the file on disk is not the one this JSON's run wrote (another run, or edited)
                html_fig = (
                    f'<p class="error">figure {html.escape(name)} is not the one {section.result_file} '
                    "recorded (changed since, or from another run); not shown — rerun the stage</p>"
                )
            else:
                html_fig = _figure(target, str(fig.get("title", name)), str(fig.get("caption", "")))
            grouped.setdefault(_route(section.stage, fig), []).append(html_fig)
    return grouped


def _claims(run_dir: Path) -> list[dict[str, Any]]:
    """The run's claims: the demo's top-level metrics.json, else the evaluate stage's; in one
    command's folder, the rows each stage there stored."""
    if not _is_demo_run(run_dir):
        rows: list[dict[str, Any]] = []
        for stage in (s for s in STAGES.values() if s.claims):
            path = stage_dir(run_dir, stage.command) / stage.main
            claims = _stage_doc(path).get("claims") if path.is_file() else None
            rows.extend(claims if isinstance(claims, list) else [])
        if rows:
            return rows
    name = STAGES["evaluate"].main
    for path in (run_dir / name, run_dir / "evaluate" / name):
        if path.is_file():
            claims = _stage_doc(path).get("claims")
            if isinstance(claims, list):
                return claims
    return []


def _render_section(run_dir: Path, section: Section, stages: dict[str, Any], figures: list[str]) -> str:
    head = f'<section id="{section.key}" data-section="{section.key}"'
    title = html.escape(section.title)
    if section.key == "claims":
        table = claims_table(_claims(run_dir))
        return f"{head}><h2>{title}</h2><p>{html.escape(section.intro)}</p>{table}</section>"
    status = stages.get(section.stage, {})
    status = status if isinstance(status, dict) else {"status": str(status)}
    state = status.get("status", "missing")
    if state == "failed":
        return (
            f'{head} class="failed"><h2>{title} '
            f'<span class="status-failed">(stage "{section.stage}" failed)</span></h2>'
            f'<p class="error">{html.escape(str(status.get("error", "unknown error")))}</p></section>'
        )
    path = stage_dir(run_dir, section.stage) / section.result_file
    if section.key == "transformer" and not path.is_file() and section.stage not in stages:
        return ""  # a convolutional model: no attention heads, no section
    if section.key == "quantum" and not path.is_file():
        # a hybrid model analysed by the analyze stage
        path = stage_dir(run_dir, "analyze") / STAGES["analyze"].main
    if not path.is_file() and not _is_demo_run(run_dir) and section.key != "quantum":
        # one command's folder shows what that command wrote (e.g. evaluate's example grid in the
        # explanations section), not the stages it is not
        if not figures:
            return ""
        return f"{head}><h2>{title}</h2><p>{html.escape(section.intro)}</p>{''.join(figures)}</section>"
    if not path.is_file():
        if section.key == "quantum":
            return ""
        interrupted = state == "interrupted" or (run_dir / section.stage).is_dir()
        label = "interrupted" if interrupted else "not run"
        hint = ("the stage started but did not finish; rerun the same command to continue" if interrupted
                else f"No {section.stage}/{section.result_file} in this run.")  # fmt: skip
        return (
            f'{head}><h2>{title} <span class="status-skipped">({label})</span></h2>'
            f'<p class="muted">{html.escape(hint)}</p></section>'
        )
    result = _stage_doc(path)
    if section.key == "quantum":
        quantum = result.get("quantum")
        if not isinstance(quantum, dict):
            return ""  # a classical model: no quantum layers, no section
        result = quantum
    parts = [f"{head}><h2>{title}</h2><p>{html.escape(section.intro)}</p>"]
    if section.key == "metrics":
        parts.append(metrics_table(result))
        for method, values in method_scores(result).items():
            if isinstance(values, dict) and "error" in values:
                parts.append(
                    f'<p class="error">{html.escape(method)} skipped: {html.escape(str(values["error"]))}</p>'
                )
        not_applicable = result.get("not_applicable") or {}
        if not_applicable:
            reasons = sorted({f"{m}: {r}" for v in not_applicable.values() for m, r in v.items()})
            items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
            parts.append(
                f"<details><summary>metrics marked not applicable</summary><ul>{items}</ul></details>"
            )
    elif section.key == "disentanglement":
        parts.append(overlap_table(result))
    elif section.key == "planted":
        parts.append(planted_table(result))
    elif section.key == "transformer":
        parts.append(heads_table(result))
    elif section.key == "groundtruth":
        parts.append(causal_table(result) or "<p class='muted'>the causal metrics were not computed in "
                     "this run (qxai evaluate --metrics causal, with qa among the methods)</p>")
    else:
        parts.append(_summary_table(result.get("summary") or {}))
    parts.extend(figures)
    parts.append("</section>")
    return "".join(parts)


def _timings(stages: dict[str, Any]) -> str:
    stages = {k: (v if isinstance(v, dict) else {"status": str(v)}) for k, v in stages.items()}
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
    stages_file = run_dir / STAGES["demo"].main
    meta = _stage_doc(stages_file) if stages_file.is_file() else {}
    stages = meta.get("stages") or {}
    if not isinstance(stages, dict):
        raise QxaiError(
            f"{stages_file} has 'stages' of type {type(stages).__name__}, not an object; rerun the demo"
        )
    found = [s.stage for s in SECTIONS if s.stage and (stage_dir(run_dir, s.stage) / s.result_file).is_file()]
    if not stages and not found:
        raise QxaiError(
            f"{run_dir} holds no stage results (no {STAGES['demo'].main}, no stage's main JSON); give a "
            f"folder written by `qxai demo`, `qxai evaluate`, `qxai explain`, `qxai anneal` or `qxai analyze`"
        )
    title = meta.get("title") or "qxai report"
    if not meta:  # one command's --out folder: say which, since there is no demo stage table
        meta = {"subtitle": f"{run_dir.name}: the results of qxai {', '.join(dict.fromkeys(found))}"}
    figures = _figures_by_section(run_dir)
    rendered = [(s, _render_section(run_dir, s, stages, figures.get(s.key, []))) for s in SECTIONS]
    # a section a model does not have (quantum layers, attention heads) is left out, link and all
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s, part in rendered
                  if part and s.key != "quantum")  # fmt: skip
    body = "".join(part for _, part in rendered)
    if stages:
        nav += '<a href="#timings">Timings</a>'
        body += _timings(stages)
    nav += '<a href="#provenance">Command</a>'
    body += _provenance(meta)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(str(meta.get('subtitle', '')))}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>"
    )


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``run_dir/report.html`` from the saved results (nothing is recomputed); return its path."""
    page = render_report(run_dir)
    return write_text(Path(run_dir) / "report.html", page)
