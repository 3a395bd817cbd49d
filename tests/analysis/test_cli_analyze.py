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
    mi = result["mutual_information"]
    assert mi["df"] == 1 and mi["fdr_on"].startswith("analytic") and 0 <= mi["significant_pairs"] <= 32 * 64
    assert all("p_analytic" in p and "significant" in p for p in mi["top_pairs"])
    lo, hi = result["spectra"]["dense"]["top5_share_interval"]
    assert lo <= summary["dense top5 share"] <= hi  # the basic interval brackets its own estimate here
    assert result["settings"]["samples"] == 120 and result["run_id"] and "analysis.npz" in result["files"]
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
    from qxai.analysis.subjects import SubjectSource
    from qxai.pipeline.analyze import AnalyzeSettings, run_analyze

    settings = AnalyzeSettings(samples=40, mi_permutations=0, ig_examples=2, ig_steps=8, bootstrap=50)
    doc = run_analyze(tmp_path, model=SubjectSource(builtin="lstm", epochs=1), settings=settings)
    result = json.loads((tmp_path / "analysis.json").read_text())
    # the returned document is the one written
    assert result["run_id"] == doc["run_id"] and result["summary"] == doc["summary"]
    assert set(result) == set(doc)
    assert "lstm:forget" in result["layers"] and doc["summary"]["MI top pair"].startswith("lstm:input unit")
    assert doc["samples"] == 40  # --samples N gives N inputs


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"samples": 1}, "at least 2"),
        ({"analyses": ("spectrum", "mii")}, "did you mean 'mi'"),
        ({"fdr": 1.5}, "--fdr"),
        ({"mi_method": "ksg"}, "MI method"),
        ({"ig_steps": 1}, "--ig-steps"),
        ({"mi_layers": ("a",)}, "two layers"),
    ],
)
def test_settings_are_validated(options: dict, fragment: str) -> None:
    from qxai.errors import QxaiError
    from qxai.pipeline.analyze import AnalyzeSettings

    with pytest.raises(QxaiError, match=fragment):
        AnalyzeSettings(**options)


def test_user_model_without_layers_gets_conv_and_linear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tmp_path / "net.py"
    code.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        torch.manual_seed(0)\n"
        "        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),\n"
        "                                      nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())\n"
        "        self.fc = nn.Linear(6, 10)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.features(x).mean(dim=(2, 3)))\n"
    )
    out = tmp_path / "an"
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["analyze", "--model", f"{code}:Net", "--dataset", "digits", "--samples", "40",
             "--mi-permutations", "0", "--bootstrap", "20", "--ig-examples", "1", "--ig-steps", "4",
             "--out", str(out)]
        )  # fmt: skip
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    result = json.loads((out / "analysis.json").read_text())
    assert list(result["layers"]) == ["features.0", "features.2", "fc"]
    assert any("chosen by default" in n and "features.0, features.2, fc" in n for n in result["notes"])
    assert result["mutual_information"]["layers"] == ["features.0", "features.2"]
    assert "chosen by default" in capsys.readouterr().out
