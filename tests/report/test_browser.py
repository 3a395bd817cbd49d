"""The report rendered by headless Chromium: every image loaded, every section there, a screenshot.

The suite installs nothing: `.ci/run` installs Chromium. Locally, without Chromium, the test is
skipped; in CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import os

import pytest

from qxai.report import build_report
from qxai.report.browser import find_chromium, load_page, screenshot

pytestmark = pytest.mark.browser

if find_chromium() is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must install Chromium (see .ci/run) for the browser test")
    pytest.skip("Chromium is not installed", allow_module_level=True)


def test_report_loads_every_image_and_section(run_dir):
    page = build_report(run_dir)
    loaded = load_page(page)
    assert loaded.images == 5
    assert loaded.broken_images == 0
    for section in ("model", "explanations", "metrics", "disentanglement", "annealing", "layers", "timings"):
        assert section in loaded.sections


def test_broken_image_is_detected(run_dir):
    page = build_report(run_dir)
    text = page.read_text().replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    page.write_text(text)
    assert load_page(page).broken_images == 1


def test_screenshot_is_a_png(run_dir, tmp_path):
    shot = screenshot(build_report(run_dir), tmp_path / "shot.png", width=800, height=1200)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(shot).size == (800, 1200)


def test_readme_block_and_screenshot_are_regenerated(run_dir, tmp_path):
    import subprocess
    import sys

    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- headline:start -->\nstale\n<!-- headline:end -->\nrest\n")
    shot = tmp_path / "docs" / "report.png"
    args = ["report", str(run_dir), "--screenshot", str(shot), "--readme", str(readme)]
    done = subprocess.run([sys.executable, "-m", "qxai", *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "stale" not in text and "![The demo report](docs/report.png)" in text
    assert "test accuracy: 0.975" in text and text.endswith("<!-- headline:end -->\nrest\n")
    assert shot.read_bytes()[:4] == b"\x89PNG"
