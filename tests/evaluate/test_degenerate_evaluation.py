"""Evaluate on inputs that break part of the run: the reason is shown where the number would be."""

from __future__ import annotations

import json

import pytest

from qxai.cli.main import main

# finite on real images, NaN on any near-constant one (a blanked or fully deleted image): a model a
# user can bring, for which deletion is undefined but insertion is not
NAN_ON_BLANK = """
import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Linear(8 * 16 * 16, 10)
    def forward(self, x):
        s = x.flatten(1).std(1, keepdim=True)
        y = self.head(torch.flatten(self.act(self.conv(x)), 1))
        return torch.where(s > 1e-3, y, torch.full_like(y, float("nan")))
"""


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nan")
    (root / "nanblank.py").write_text(NAN_ON_BLANK)
    out = root / "ev"
    args = ["evaluate", "--model", f"{root / 'nanblank.py'}:Net", "--trust-model-code", "--dataset", "digits",
            "--layer", "act", "--methods", "qa,gradcam", "--metrics", "faithfulness", "--per-class", "1",
            "--out", str(out), "--resamples", "100"]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0), out


def test_a_metric_undefined_everywhere_says_why_in_table_json_and_summary(nan_run, capsys):
    code, out = nan_run
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    verdict = doc["verdicts"]["deletion_auc"]
    assert verdict.startswith("not testable: undefined on every image") and "--fill" in verdict
    assert doc["summary"]["best deletion_auc"] == verdict
    for name in ("qa", "gradcam"):
        assert "NaN or infinite" in doc["not_applicable"][name]["deletion_auc"]


def test_few_images_of_few_classes_name_no_best_and_count_the_classes(nan_run):
    _, out = nan_run
    doc = json.loads((out / "metrics.json").read_text())
    summary = doc["summary"]
    present = doc["config"]["classes_present"]
    assert summary["classes"] == len(present) < 10
    missing = summary["classes without images"].split(", ")
    assert len(missing) == 10 - len(present)
    # two images cannot separate two methods: no verdict names a method, and no summary line
    # prints an interval that was never computed
    for metric, label in doc["verdicts"].items():
        assert label.startswith("not testable"), (metric, label)
    assert not any("nan" in str(v) for k, v in summary.items() if k.startswith(("qa ", "gradcam ")))
