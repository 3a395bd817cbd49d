"""`run_anneal` and `qxai anneal` on BQM files (the model path needs a checkpoint: see the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import dimod
import numpy as np
import pytest
from typer.testing import CliRunner

from qxai.errors import QxaiError
from qxai.pipeline.anneal import headline, load_bqm, run_anneal, summarise


def test_bqm_file_formats_round_trip(tmp_path: Path) -> None:
    bqm = dimod.generators.anti_crossing_loops(8)
    (tmp_path / "a.bqm").write_bytes(bqm.to_file().read())
    (tmp_path / "a.json").write_text(json.dumps(bqm.to_serializable()))
    assert load_bqm(tmp_path / "a.bqm") == bqm
    assert load_bqm(tmp_path / "a.json") == bqm
    (tmp_path / "bad").write_bytes(b"\x80\x04not a bqm")
    with pytest.raises(QxaiError, match="not a dimod BQM"):
        load_bqm(tmp_path / "bad")


def test_cli_prints_and_writes_anneal_json(tmp_path: Path) -> None:
    import typer

    from qxai.cli.anneal import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the sub-command name
    bqm = dimod.generators.anti_crossing_clique(6)
    (tmp_path / "c.bqm").write_bytes(bqm.to_file().read())
    out = tmp_path / "run"
    args = ["anneal", "--bqm", str(tmp_path / "c.bqm"), "--tau", "5,10", "--dt", "0.05", "--grid", "11"]
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    saved = json.loads((out / "anneal.json").read_text())
    assert printed["problems"] == saved["problems"]
    prob = saved["problems"][0]
    assert set(prob["fidelity"]) == {"5", "10"} and prob["num_qubits"] == 6
    assert {"delta_min", "s_star", "ground_energy", "driver", "schedule"} <= set(prob)
    assert prob["gap_solver"]["method"] == "lobpcg" and prob["gap_solver"]["evaluations"] > 0
    assert prob["ground_energy"] == dimod.ExactSolver().sample(bqm).first.energy
    # report contract: a flat summary of headline numbers, figure records (none for one problem)
    assert saved["figures"] == []
    assert all(isinstance(v, int | float | str) for v in saved["summary"].values())
    assert saved["summary"]["Δ_min min"] == prob["delta_min"]
    assert saved["summary"]["median F (τ=5)"] == prob["fidelity"]["5"]
    assert saved["summary"]["max qubits"] == 6 and saved["summary"]["problems"] == 1


def test_summary_and_figures_for_many_problems(tmp_path: Path) -> None:
    problems = [
        {"num_qubits": d, "delta_min": 0.1 / d, "s_star": 0.5, "fidelity": {"10": 0.5**d, "50": 0.9}}
        for d in (3, 4, 5) for _ in range(3)
    ]  # fmt: skip
    s = summarise(problems, [10.0, 50.0])
    assert s["fidelity"]["10"]["fit"]["rate_per_qubit"] == pytest.approx(-0.693147, abs=1e-5)
    assert s["fidelity"]["50"]["by_d"]["4"]["median"] == 0.9
    h = headline(problems, [10.0, 50.0], "transverse", "quadratic", skipped=2)
    assert h["fitted decay rate at τ=10 (per qubit)"] == pytest.approx(np.log(0.5), abs=1e-9)
    assert h["median F (τ=10)"] == pytest.approx(0.5**4) and h["median F (τ=50)"] == 0.9
    assert h["Δ_min median"] == pytest.approx(0.025) and h["Δ_min min"] == pytest.approx(0.02)
    assert h["fraction Δ_min < 0.01"] == 0.0 and h["problems skipped (too many qubits)"] == 2
    assert (h["min qubits"], h["max qubits"], h["problems"]) == (3, 5, 9)
    assert all(isinstance(v, int | float | str) for v in h.values())
    from qxai.pipeline.anneal import write_figures

    records = write_figures(tmp_path, problems, [10.0, 50.0], "authors", "quadratic")
    assert [r["file"] for r in records] == ["delta_min.png", "fidelity_vs_d.png"]
    for r in records:
        assert set(r) == {"file", "title", "caption"} and (tmp_path / r["file"]).stat().st_size > 1000
        assert "+(1/d)Σσx" in r["caption"] and "quadratic schedule" in r["caption"]


def test_many_problems_write_the_report_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the model path without a checkpoint: three small BQMs stand in for the explanation QUBOs
    import qxai.pipeline.anneal as stage

    bqms = [dimod.generators.gnp_random_bqm(d, 0.7, "BINARY", random_state=d) for d in (3, 4, 5)]
    monkeypatch.setattr(stage, "model_qubos", lambda *a: [({"id": i}, b) for i, b in enumerate(bqms)])
    res = run_anneal(tmp_path, checkpoint="unused", taus=[2.0, 5.0], dt=0.05, grid=11, driver="authors")
    saved = json.loads((tmp_path / "anneal.json").read_text())
    assert saved["summary"] == res["summary"] and saved["summary"]["problems"] == 3
    assert saved["statistics"]["delta_min"]["min"] == saved["summary"]["Δ_min min"]
    assert [f["file"] for f in saved["figures"]] == ["delta_min.png", "fidelity_vs_d.png"]
    assert all("linear schedule" in f["caption"] for f in saved["figures"])


def test_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(QxaiError, match="one problem source"):
        run_anneal(tmp_path)
