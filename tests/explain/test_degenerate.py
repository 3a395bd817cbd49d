"""Empty and degenerate explanations are named with their cause, never reported as success."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qxai.cli.main import main
from qxai.errors import QxaiError
from qxai.explain.quality import KINDS, constant_maps, diagnose, image_flags, nothing_meaningful

NET = """
import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, {maps}, 3, padding=1)
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Linear({maps} * 16 * 16, 10)
        with torch.no_grad():
            self.conv.bias.fill_({bias})  # a large negative bias: every map is zero after the ReLU
    def forward(self, x):
        return self.head(torch.flatten(self.act(self.conv(x)), 1))
"""


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0)


def write_net(tmp_path, maps: int, bias: float) -> str:
    path = tmp_path / f"net_{maps}_{abs(int(bias))}.py"
    path.write_text(NET.format(maps=maps, bias=bias))
    return f"{path}:Net"


def test_a_dead_layer_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "explain"
    args = ["explain", "--model", write_net(tmp_path, 4, -100.0), "--dataset", "digits", "--layer", "act",
            "--per-class", "2", "--out", str(out)]  # fmt: skip
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: qa explains none of the")
    assert "layer 'act': every map is zero on all" in err and "--layer" in err
    assert not (out / "explanations.json").exists()


def test_a_one_map_layer_is_refused_with_the_reason(tmp_path, capsys):
    args = ["explain", "--model", write_net(tmp_path, 1, 0.0), "--dataset", "digits", "--layer", "act",
            "--per-class", "1", "--out", str(tmp_path / "x")]  # fmt: skip
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert "has 1 feature map, so there is nothing to select among" in err and len(err.splitlines()) == 1


def test_partly_degenerate_run_says_how_many_and_why(digits_checkpoint, tmp_path, capsys):
    # a cardinality penalty asking for k = 0 maps: the optimum selects nothing on every image …
    args = ["explain", "--model", str(digits_checkpoint), "--dataset", "digits", "--layer", "reduce",
            "--per-class", "1", "--penalty", "50,0", "--out", str(tmp_path / "e")]
    assert run(args) == 2  # … so nothing meaningful is left: refused, with that cause
    assert "the QUBO's optimum selects no map" in capsys.readouterr().err
    # k = 1 gives one map each: meaningful unless that map's ReLU(α A) is zero everywhere
    ok = ["explain", "--model", str(digits_checkpoint), "--dataset", "digits", "--layer", "reduce",
          "--per-class", "1", "--penalty", "5,1", "--out", str(tmp_path / "k")]
    assert run(ok) == 0
    doc = json.loads((tmp_path / "k" / "explanations.json").read_text())
    assert all(len(r["selected"]) == 1 for r in doc["images"])
    blank = [r for r in doc["images"] if r["degenerate"] is not None]
    assert doc["summary"]["explained"] == 10 - len(blank)
    assert doc["summary"]["degenerate_images"] == len(blank)
    assert {r["degenerate"] for r in blank} <= {"constant_map"}
    assert [d["images"] for d in doc["degenerate"]] == ([len(blank)] if blank else [])


def test_flags_name_the_first_cause_that_applies():
    extras = {
        "live_maps": [0, 3, 3, 3, 3], "positive_weights": [0, 0, 2, 2, 2], "num_variables": [0, 0, 0, 2, 2],
        "selected": [[], [], [], [], [1]],
    }  # fmt: skip
    sal = np.stack([np.zeros((2, 2))] * 4 + [np.eye(2)])
    assert image_flags(extras, sal) == [
        "dead_layer", "no_positive_weight", "supporting_maps_dead", "empty_selection", None
    ]
    # without QA extras only the map itself can say it is blank (NaN counts as blank)
    sal = np.stack([np.zeros((2, 2)), np.eye(2), np.full((2, 2), np.nan)])
    assert image_flags({}, sal) == ["constant_map", None, "constant_map"]
    assert constant_maps(np.zeros((1, 0, 0))).tolist() == [True]


def test_diagnosis_counts_every_kind_and_the_error_needs_every_image():
    flags = ["dead_layer", None, "dead_layer", "constant_map"]
    found = diagnose(flags, layer="x")
    counts = [(d["kind"], d["images"], d["of"]) for d in found]
    assert counts == [("dead_layer", 2, 4), ("constant_map", 1, 4)]
    assert found[0]["sentence"].startswith("layer 'x': every map is zero on 2 of 4 images — ")
    assert set(KINDS) >= {d["kind"] for d in found}
    nothing_meaningful(flags, layer="x")  # one image is fine: no error
    expected = "qa explains none of the 2 images: layer 'x': every map is zero on all 2"
    with pytest.raises(QxaiError, match=expected):
        nothing_meaningful(["dead_layer", "dead_layer"], layer="x")
