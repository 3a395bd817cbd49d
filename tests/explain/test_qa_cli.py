"""`qxai explain` end to end on `digits`: the files, their contents, and the user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qxai.cli.main import main
from qxai.models import load_checkpoint


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0)


def test_explain_writes_json_npz_and_grid(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "explain"
    args = ["explain", "--model", str(digits_checkpoint), "--dataset", "digits", "--layer", "reduce"]
    code = run_cli([*args, "--solver", "batch-sa", "--beta", "0.7", "--per-class", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "explained 20 of 20 images with batch-sa" in capsys.readouterr().out

    doc = json.loads((out / "explanations.json").read_text())
    records = doc["images"]
    assert len(records) == 20 and doc["layer"] == "reduce" and doc["num_maps"] == 8
    assert [r["label"] for r in records] == sorted(r["label"] for r in records)
    for r in records:
        assert r["target"] == r["label"]  # correctly classified images, explained for their class
        assert r["solver"] == "batch-sa" and r["seconds"] > 0
        assert set(r["selected"]) <= set(range(8)) and len(r["selected"]) <= r["num_variables"]
        assert r["energy"] >= r["ground_energy"] - 1e-9  # d ≤ 8, so the ground state is known
    assert doc["summary"]["images"] == 20 and 0.0 <= doc["summary"]["optimal_rate"] <= 1.0
    assert [f["file"] for f in doc["figures"]] == ["qa_grid.png"]
    assert (out / "qa_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    npz = np.load(out / "saliency.npz")
    h, w = load_checkpoint(digits_checkpoint).config["image_size"]
    assert npz["saliency"].shape == (20, h, w)  # at the input size
    assert npz["saliency"].min() >= 0.0 and npz["saliency"].max() <= 1.0
    assert npz["indices"].tolist() == [r["index"] for r in records]
    assert npz["channel_weights"].shape == (20, 8)
    assert [np.flatnonzero(row).tolist() for row in npz["selected"]] == [r["selected"] for r in records]


def test_explain_penalty_and_exact_solver(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "penalty"
    args = ["explain", "--model", str(digits_checkpoint), "--solver", "exact", "--per-class", "1"]
    code = run_cli([*args, "--penalty", "5,2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "explanations.json").read_text())
    assert doc["qubo"]["penalty"] == [5.0, 2]
    assert all(len(r["selected"]) == min(2, r["num_variables"]) for r in doc["images"])
    assert doc["summary"]["optimal_rate"] == 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--solver", "batch_sa"], "unknown solver 'batch_sa'; did you mean 'batch-sa'"),
        (["--penalty", "5"], "--penalty expects 'λ,k'"),
        (["--layer", "classifier"], "not B×N×H×W"),
        (["--beta", "2"], "beta must lie in [0, 1]"),
    ],
)
def test_explain_user_errors_exit_2(digits_checkpoint, tmp_path, capsys, extra, message):
    args = ["explain", "--model", str(digits_checkpoint), "--per-class", "1", "--out", str(tmp_path / "x")]
    assert run_cli([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_explain_missing_checkpoint(tmp_path, capsys):
    assert run_cli(["explain", "--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
