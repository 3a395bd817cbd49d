"""`run_anneal` and `qxai anneal` on BQM files (the model path needs a checkpoint: see the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import dimod
import pytest
from typer.testing import CliRunner

from qxai.errors import QxaiError
from qxai.pipeline.anneal import load_bqm, run_anneal, summarise


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
    assert prob["ground_energy"] == dimod.ExactSolver().sample(bqm).first.energy


def test_summary_and_figures_for_many_problems(tmp_path: Path) -> None:
    problems = [
        {"num_qubits": d, "delta_min": 0.1 / d, "fidelity": {"10": 0.5**d, "50": 0.9}}
        for d in (3, 4, 5) for _ in range(3)
    ]  # fmt: skip
    s = summarise(problems, [10.0, 50.0])
    assert s["fidelity"]["10"]["fit"]["rate_per_qubit"] == pytest.approx(-0.693147, abs=1e-5)
    assert s["fidelity"]["50"]["by_d"]["4"]["median"] == 0.9
    from qxai.pipeline.anneal import write_figures

    names = write_figures(tmp_path, problems, [10.0, 50.0], "authors")
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)


def test_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(QxaiError, match="one problem source"):
        run_anneal(tmp_path)
