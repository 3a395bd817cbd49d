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
    "model",
    "explanations",
    "metrics",
    "disentanglement",
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


def test_best_value_per_metric_is_bold_by_direction(run_dir):
    page = render_report(run_dir)
    table = page[page.index('id="metrics"') : page.index('id="disentanglement"')]
    # lower is better for both: QA has the lower overlap, GradCAM the lower deletion AUC
    assert "<td>qa</td><td><b>0.1</b></td><td>0.3</td>" in table
    assert "<td>gradcam</td><td>0.4</td><td><b>0.2</b></td>" in table


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
    assert "| qa | 0.1 | 0.3 |" in done.stdout


def test_headline_lists_stage_summaries(run_dir):
    text = headline_markdown(run_dir)
    assert "test accuracy: 0.975" in text and "error: QxaiError: statevector exploded" in text


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(QxaiError, match="does not exist"):
        render_report(tmp_path / "nope")
    with pytest.raises(QxaiError, match="holds no stage results"):
        render_report(tmp_path)
