"""The report page: every section, every figure embedded, failures shown, best values in bold."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from qxai.errors import QxaiError
from qxai.report import build_report, render_report
from qxai.report.headline import headline_markdown

SECTIONS = [
    "claims",
    "model",
    "explanations",
    "metrics",
    "disentanglement",
    "groundtruth",
    "planted",
    "annealing",
    "layers",
    "timings",
    "provenance",
]


def test_every_section_and_figure_is_in_the_page(run_dir):
    page = render_report(run_dir)
    assert re.findall(r'data-section="([^"]+)"', page) == SECTIONS
    images = re.findall(r'<img src="data:image/png;base64,', page)
    assert len(images) == 5  # confusion, qa grid, overlap, example grid, spectra
    assert "figure" in page and "is missing" not in page


def test_failed_stage_is_shown_with_its_error(run_dir):
    page = render_report(run_dir)
    section = page[page.index('id="annealing"') : page.index('id="layers"')]
    assert "failed" in section and "statevector exploded" in section


def test_figures_are_routed_to_their_sections(run_dir):
    page = render_report(run_dir)
    dis = page[page.index('id="disentanglement"') : page.index('id="annealing"')]
    expl = page[page.index('id="explanations"') : page.index('id="metrics"')]
    assert "overlap_matrices" in dis and "example_grid" in expl and "qa_grid" in expl


def test_best_is_bold_only_where_the_verdict_names_one_and_ties_are_said(run_dir):
    page = render_report(run_dir)
    table = page[page.index('id="metrics"') : page.index('id="disentanglement"')]
    overlap = table[table.index("bc_mean_offdiag ↓") :].split("</tr>")[0]
    deletion = table[table.index("deletion_auc ↓") :].split("</tr>")[0]
    assert "<b>0.1<br><span class='ci'>[0.05, 0.15]</span></b>" in overlap and overlap.endswith("<td>qa</td>")
    assert "<b>" not in deletion and "tie: gradcam, qa" in deletion  # intervals overlap: no best


def test_claims_come_first_with_their_verdicts(run_dir):
    page = render_report(run_dir)
    claims = page[page.index('id="claims"') : page.index('id="model"')]
    assert (
        "QA&#x27;s overlap is below GradCAM&#x27;s" in claims
        and "holds" in claims
        and "[-0.4, -0.2]" in claims
    )


def test_figures_outside_the_run_folder_are_never_embedded(run_dir, tmp_path):
    from qxai.io import read_json, write_json

    secret = tmp_path / "secret.png"
    secret.write_bytes((run_dir / "analyze" / "spectra.png").read_bytes())
    doc = read_json(run_dir / "analyze" / "analysis.json")
    doc["figures"] = [{"file": str(secret), "title": "abs"}, {"file": "../../secret.png", "title": "up"}]
    write_json(run_dir / "analyze" / "analysis.json", doc)
    page = render_report(run_dir)
    assert page.count("lies outside the run folder") == 2
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 4


@pytest.mark.parametrize("payload", [[], "text", 3])
def test_a_stage_json_that_is_not_an_object_is_one_clear_error(run_dir, payload):
    from qxai.io import write_json

    write_json(run_dir / "model" / "model.json", payload)
    with pytest.raises(QxaiError, match="not a stage result object"):
        render_report(run_dir)


def test_a_string_stage_entry_and_an_interrupted_stage(run_dir):
    from qxai.io import read_json, write_json

    meta = read_json(run_dir / "stages.json")
    meta["stages"]["anneal"] = "ok"  # hand-edited: a string, not a record
    meta["stages"]["analyze"] = {"status": "interrupted", "seconds": 0.0}
    write_json(run_dir / "stages.json", meta)
    (run_dir / "analyze" / "analysis.json").unlink()
    page = render_report(run_dir)
    assert "(interrupted)" in page[page.index('id="layers"') :]


def test_missing_figure_is_reported_not_fatal(run_dir):
    (run_dir / "analyze" / "spectra.png").unlink()
    assert "figure spectra.png is missing" in render_report(run_dir)


def test_build_report_writes_the_file_and_cli_rebuilds_it(run_dir):
    path = build_report(run_dir)
    assert path.read_text().startswith("<!DOCTYPE html>")
    path.unlink()
    done = subprocess.run([sys.executable, "-m", "qxai", "report", str(run_dir), "--headline"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert path.is_file()
    assert "qa" in done.stdout and "0.1" in done.stdout


def test_headline_lists_stage_summaries(run_dir):
    text = headline_markdown(run_dir)
    assert "test accuracy: 0.975" in text and "error: QxaiError: statevector exploded" in text


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(QxaiError, match="does not exist"):
        render_report(tmp_path / "nope")
    with pytest.raises(QxaiError, match="holds no stage results"):
        render_report(tmp_path)


def test_one_commands_out_folder_is_a_report_of_what_that_command_wrote(run_dir, tmp_path):
    """`qxai evaluate --out DIR` (with `qxai analyze` into the same folder) then `qxai report DIR`:
    the sections of those stages, their claims and figures — no stage table, no "not run" rows."""
    import shutil

    bare = tmp_path / "bare"
    for stage in ("evaluate", "analyze"):
        shutil.copytree(run_dir / stage, bare, dirs_exist_ok=True)
    page = render_report(bare)
    shown = set(re.findall(r'data-section="([a-z]+)"', page))
    # explanations: evaluate's example grid goes to its section, though explain did not run here
    assert shown == {
        "claims", "explanations", "metrics", "disentanglement", "groundtruth", "layers", "provenance"
    }
    assert "overlap is below GradCAM" in page and "not run" not in page
    assert page.count("<img") == 3  # overlap_matrices, example_grid, spectra
    assert "the results of qxai evaluate, analyze" in page
    text = headline_markdown(bare)
    assert "Command: `?`" in text and "| qa" in text.replace("|  qa", "| qa")


def test_the_ground_truth_table_shows_references_and_says_tie() -> None:
    from qxai.report.html import causal_table

    doc = {
        "qa": {"causal_precision": 0.35, "causal_share": 0.7},
        "gradcam": {"causal_precision": 0.37, "causal_share": 0.72},
        "intervals": {"qa": {"causal_precision": [0.3, 0.4]}},
        "paired": {"gradcam": {"causal_precision": {"difference": -0.02, "interval": [-0.05, 0.01]}}},
        "references": {"causal": {"random_k": {"causal_precision": {
            "mean": 0.25, "interval": [0.22, 0.27],
            "qa_minus": {"difference": 0.1, "interval": [0.05, 0.15]}}}}},
    }  # fmt: skip
    page = causal_table(doc)
    assert "random k maps" in page and "causal oracle" in page
    assert "tie" in page and "QA better" in page and "[0.3, 0.4]" in page
    assert causal_table({"qa": {"deletion_auc": 0.3}}) == ""


def _planted_doc() -> dict:
    """A planted.json by hand: one difficulty scored, one failed, and a failing claim row."""
    tests = {"gradcam": {"causal_precision": {"difference": -0.2, "interval": [-0.3, -0.1]}}}
    return {
        "columns": ["planted_precision", "causal_precision"],
        "parts": {
            "easy": {
                "folder": "easy", "description": "2 distractors", "images": 8, "model test accuracy": 1.0,
                "methods": {"qa": {"planted_precision": 0.5, "causal_precision": 0.7},
                            "gradcam": {"planted_precision": 0.5, "causal_precision": 0.9},
                            "eigencam": {"planted_precision": None, "causal_precision": None}},
                "intervals": {"qa": {"causal_precision": [0.6, 0.8]}},
                "paired": tests,
                "not_applicable": {"eigencam": {"planted_precision": "the method selects no feature maps"}},
                "verdicts": {"causal_precision": "gradcam"},
            },
            "overlap": {"folder": "overlap", "description": "shared parts",
                        "error": "QxaiError: out of memory"},
        },
        "claims": [],
    }  # fmt: skip


def test_the_planted_table_shows_intervals_paired_differences_and_errors() -> None:
    from qxai.report.html import planted_table

    page = planted_table(_planted_doc())
    assert "<h3>easy</h3>" in page and "<h3>overlap</h3>" in page and "out of memory" in page
    assert "0.7<br><span class='ci'>[0.6, 0.8]</span>" in page and "QA worse" in page
    assert "title='the method selects no feature maps'" in page and "(reference)" in page
    assert "pointing_game" not in page.split("<p class='note'>")[1]  # the columns the JSON names
    assert "no planted difficulty" in planted_table({})


def test_a_planted_claim_that_fails_reaches_the_claims_table(run_dir) -> None:
    from qxai.evaluate.claims import collect_claims, planted_claims
    from qxai.io import write_json

    doc = _planted_doc()
    runs = {"easy": {"paired": doc["parts"]["easy"]["paired"]}, "overlap": "QxaiError: oom"}
    doc["claims"] = planted_claims(runs)
    write_json(run_dir / "planted" / "planted.json", doc)
    rows = [c for c in collect_claims(run_dir) if c.get("source") == "planted"]
    assert [r["verdict"] for r in rows] == ["does not hold", "not testable"]
    write_json(run_dir / "metrics.json", {"claims": rows})
    page = render_report(run_dir)
    claims = page[page.index('data-section="claims"') : page.index('data-section="model"')]
    assert "planted benchmark, easy" in claims and "interval below 0: QA loses" in claims
    section = page[page.index('data-section="planted"') : page.index('data-section="annealing"')]
    assert "<h3>easy</h3>" in section and "QA worse" in section
