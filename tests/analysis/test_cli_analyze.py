"""`qxai analyze` end to end on digits with qixai-cnn, and the built-in LSTM through run_analyze."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qxai.cli.main import main


def test_cli_end_to_end(
    digits_qixai_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "an"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "analyze",
                "--model",
                str(digits_qixai_checkpoint),
                "--samples",
                "120",
                "--mi-permutations",
                "9",
                "--ig-examples",
                "2",
                "--ig-steps",
                "8",
                "--out",
                str(out),
            ]
        )
    assert exit_info.value.code in (0, None)
    result = json.loads((out / "analysis.json").read_text())
    for fig in result["figures"]:
        assert (out / fig["file"]).is_file() and fig["title"] and fig["caption"]
    assert {f["file"] for f in result["figures"]} >= {
        "spectra.png",
        "entropy.png",
        "similarity.png",
        "mutual_information.png",
        "integrated_gradients.png",
    }
    summary = result["summary"]
    assert 0 < summary["dense top5 share"] <= 1
    assert summary["MI top pair"].startswith("conv1 map ") and " – conv2 map " in summary["MI top pair"]
    assert summary["ig_max_relative_delta"] < 0.1
    assert len(result["mutual_information"]["top_pairs"]) == 10
    arrays = np.load(out / "analysis.npz")
    assert arrays["mi/values"].shape == (32, 64)
    assert "MI top pair" in capsys.readouterr().out


def test_cli_bad_layer_is_one_line_error(
    digits_qixai_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "analyze",
                "--model",
                str(digits_qixai_checkpoint),
                "--layers",
                "conv1,dens",
                "--out",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did you mean 'dense'" in err


def test_builtin_lstm(tmp_path: Path) -> None:
    from qxai.pipeline.analyze import run_analyze

    summary = run_analyze(
        tmp_path, builtin="lstm", samples=40, epochs=1, mi_permutations=0, ig_examples=2, ig_steps=8
    )
    result = json.loads((tmp_path / "analysis.json").read_text())
    assert "lstm:forget" in result["layers"] and summary["MI top pair"].startswith("lstm:input unit")
