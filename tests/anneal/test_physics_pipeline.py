"""`run_anneal` and `qxai anneal` on BQM files (the model path needs a checkpoint: see the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import dimod
import numpy as np
import pytest
from typer.testing import CliRunner

from qxai.anneal.physics import AnnealProtocol
from qxai.anneal.physics.figures import anneal_figures
from qxai.anneal.physics.statistics import headline, summarise
from qxai.anneal.physics.study import AnnealSettings, load_bqm
from qxai.anneal.qubo import QuboOptions
from qxai.errors import QxaiError
from qxai.pipeline.anneal import run_anneal


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
    assert s["fidelity"]["10"]["by_d"]["4"]["median_gain"] == pytest.approx(1.0)  # F = 2^−d: no gain
    h = headline(problems, [10.0, 50.0], "transverse", "quadratic", skipped=2, energy_convention="authors")
    assert h["fitted decay rate at τ=10 (per qubit)"] == pytest.approx(np.log(0.5), abs=1e-9)
    assert h["median F (τ=10)"] == pytest.approx(0.5**4) and h["median F (τ=50)"] == 0.9
    assert h["Δ_min median"] == pytest.approx(0.025) and h["Δ_min min"] == pytest.approx(0.02)
    assert h["fraction Δ_min < 0.01"] == 0.0 and h["problems skipped (too many qubits)"] == 2
    assert (h["min qubits"], h["max qubits"], h["problems"]) == (3, 5, 9)
    assert "(I − σz)" in h["energy convention"]
    assert all(isinstance(v, int | float | str) for v in h.values())
    pairs = anneal_figures(problems, s, [10.0, 50.0], "authors", "quadratic", "authors")
    assert [r["file"] for r, _ in pairs] == ["delta_min.png", "fidelity_vs_d.png"]  # no classical gaps given
    for r, fig in pairs:
        assert set(r) == {"file", "title", "caption"} and fig.axes
        assert "+(1/d)Σσx" in r["caption"] and "quadratic schedule" in r["caption"]
        assert "energy convention authors" in r["caption"]


def _fake_model_qubos(bqms: list[dimod.BinaryQuadraticModel]):
    def model_qubos(checkpoint: str, settings: AnnealSettings) -> tuple[list, dict]:
        metas = [{"id": i, "label": f"c{i % 2}"} for i in range(len(bqms))]
        return list(zip(metas, bqms, strict=True)), {"kind": "model", "dataset": "toy", "num_maps": 5}

    return model_qubos


def test_many_problems_write_the_report_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the model path without a checkpoint: small BQMs stand in for the explanation QUBOs
    import qxai.pipeline.anneal as stage

    bqms = [dimod.generators.gnp_random_bqm(d, 0.7, "BINARY", random_state=d) for d in (3, 4, 5, 3)]
    monkeypatch.setattr(stage, "model_qubos", _fake_model_qubos(bqms))
    settings = AnnealSettings(taus=(2.0, 5.0), grid=11, protocol=AnnealProtocol(dt=0.05, driver="authors"),
                              energy_convention="authors", qubo=QuboOptions(beta=0.6))  # fmt: skip
    res = run_anneal(tmp_path, model="unused", settings=settings)
    saved = json.loads((tmp_path / "anneal.json").read_text())
    assert saved["summary"] == res["summary"] and saved["summary"]["problems"] == 4
    assert saved["statistics"]["delta_min"]["min"] == saved["summary"]["Δ_min min"]
    assert [f["file"] for f in saved["figures"]] == [
        "delta_min.png",
        "gap_vs_classical.png",
        "fidelity_vs_d.png",
    ]
    assert all("linear schedule" in f["caption"] and "energy convention authors" in f["caption"]
               for f in saved["figures"])  # fmt: skip
    assert saved["settings"]["qubo"]["beta"] == 0.6 and saved["qubo"]["beta"] == 0.6
    assert saved["settings"]["protocol"] == {"dt": 0.05, "driver": "authors", "schedule": "linear"}
    assert saved["energy_convention"] == "authors" and saved["source"]["dataset"] == "toy"
    for p, b in zip(saved["problems"], bqms, strict=True):
        # authors' convention: x → 2x; the ground energy is the brute-force minimum of the scaled model
        scaled = dimod.BinaryQuadraticModel(
            {v: 2 * h for v, h in b.linear.items()},
            {e: 4 * j for e, j in b.quadratic.items()},
            b.offset,
            "BINARY",
        )
        energies = np.unique(np.round(dimod.ExactSolver().sample(scaled).record.energy, 9))
        assert p["ground_energy"] == pytest.approx(energies[0], abs=1e-9)
        assert p["classical_gap"] == pytest.approx(energies[1] - energies[0], abs=1e-9)
        assert 0 < p["gap_ratio"] <= 1 + 1e-9  # the gap at s = 1 is the classical one
        assert p["fidelity_gain"]["2"] == pytest.approx(
            p["fidelity"]["2"] * 2 ** p["num_qubits"] / p["degeneracy"]
        )
    assert saved["statistics"]["confounding"]["testable"]
    assert {c["verdict"] for c in saved["claims"]} == {"not testable"}  # β = 0.6 and 4 problems


def test_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(QxaiError, match="one problem source"):
        run_anneal(tmp_path)


def _write(tmp_path: Path, bqm: dimod.BinaryQuadraticModel) -> str:
    path = tmp_path / "p.bqm"
    path.write_bytes(bqm.to_file().read())
    return str(path)


BAD_INPUTS = {
    "too many qubits": (lambda t: ["--model", "unused.pt", "--max-qubits", "40"], "--memory-mb limit"),
    "30-variable BQM": (lambda t: ["--bqm", _write(t, dimod.generators.gnp_random_bqm(30, 0.1, "BINARY"))],
                        "more than --max-qubits 14 (it needs about"),
    "30-variable BQM within --max-qubits": (
        lambda t: ["--bqm", _write(t, dimod.generators.gnp_random_bqm(30, 0.1, "BINARY")),
                   "--max-qubits", "30"],
        "needs about"),
    "memory above the machine's": (lambda t: ["--bqm", _write(t, dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY")),
                                              "--memory-mb", "1e12"], "more than this machine's memory"),
    "biases of 1e308": (lambda t: ["--bqm", _write(t, dimod.BQM({"a": 1e308, "b": -1e308},
                                                                {("a", "b"): 1e308}, 0.0, "BINARY"))],
                        "rescale the BQM"),
    "NaN bias": (lambda t: ["--bqm", _write(t, dimod.BQM({"a": float("nan")}, {}, 0.0, "BINARY"))], "NaN"),
    "all-zero 1-variable": (lambda t: ["--bqm", _write(t, dimod.BQM({"a": 0.0}, {}, 0.0, "BINARY"))],
                            "only zero biases"),
    "all-zero 2-variable": (lambda t: ["--bqm", _write(t, dimod.BQM({}, {("a", "b"): 0.0}, 1.0, "SPIN"))],
                            "only zero biases"),
    "empty BQM": (lambda t: ["--bqm", _write(t, dimod.BQM("BINARY"))], "no variables"),
    "tau 1e9": (lambda t: ["--bqm", _write(t, dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY")), "--tau", "1e9"],
                "steps"),
    "negative tau": (lambda t: ["--bqm", "x.bqm", "--tau", "10,-1"], "positive finite"),
    "unknown convention": (lambda t: ["--bqm", "x.bqm", "--energy-convention", "paper"], "energy convention"),
    "zero memory": (lambda t: ["--bqm", "x.bqm", "--memory-mb", "0"], "--memory-mb"),
    "zero dt": (lambda t: ["--bqm", "x.bqm", "--dt", "0"], "dt must be"),
    "unknown driver": (lambda t: ["--bqm", "x.bqm", "--driver", "sideways"], "unknown driver"),
    "bad penalty": (lambda t: ["--model", "unused.pt", "--penalty", "5"], "--penalty"),
    "qubo-from without qubo": (lambda t: ["--model", "m.pt", "--qubo-from", _write(t, dimod.BQM("BINARY"))],
                               "not JSON"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_one_line_and_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from qxai.cli.main import main

    build, fragment = BAD_INPUTS[case]
    with pytest.raises(SystemExit) as exit_info:
        main(["anneal", *build(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and fragment in err, err
    assert not (tmp_path / "out" / "anneal.json").exists()


def test_cli_on_a_trained_model_with_qubo_from(digits_checkpoint: Path, tmp_path: Path) -> None:
    from qxai.cli.main import main

    previous = tmp_path / "metrics.json"
    previous.write_text(json.dumps({"qubo": {"beta": 0.6, "normalise": "minmax", "penalty": None}}))
    out = tmp_path / "anneal"
    args = ["anneal", "--model", str(digits_checkpoint), "--per-class", "1", "--max-qubits", "6",
            "--tau", "2,5",
            "--dt", "0.05", "--grid", "11", "--qubo-from", str(previous), "--penalty", "0.5,2",
            "--driver", "authors", "--energy-convention", "authors", "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)
    saved = json.loads((out / "anneal.json").read_text())
    assert saved["qubo"] == {"beta": 0.6, "normalise": "minmax", "penalty": [0.5, 2], "dead_eps": 1e-6}
    assert saved["source"]["kind"] == "model" and saved["source"]["num_maps"] == 8
    assert saved["num_problems"] >= 1 and all(1 <= p["num_qubits"] <= 6 for p in saved["problems"])
    assert all(p["label"] is not None and p["energy_convention"] == "authors" for p in saved["problems"])
    assert {c["verdict"] for c in saved["claims"]} <= {"holds", "does not hold", "not testable"}


def test_problems_are_taken_class_by_class_and_a_missing_class_blocks_the_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # class c1's QUBOs are all over the qubit limit (as parasitized cells are on `cells`): the claims
    # would otherwise rest on one class alone without a word
    import qxai.pipeline.anneal as stage

    small = [dimod.generators.gnp_random_bqm(3 + i % 3, 0.7, "BINARY", random_state=i) for i in range(12)]
    large = [dimod.generators.gnp_random_bqm(9, 0.7, "BINARY", random_state=i) for i in range(12)]

    def model_qubos(checkpoint: str, settings: AnnealSettings) -> tuple[list, dict]:
        metas = [{"id": i, "label": f"c{i % 2}"} for i in range(24)]
        bqms = [small[i // 2] if i % 2 == 0 else large[i // 2] for i in range(24)]
        return list(zip(metas, bqms, strict=True)), {"kind": "model", "dataset": "toy", "num_maps": 9}

    monkeypatch.setattr(stage, "model_qubos", model_qubos)
    settings = AnnealSettings.authors(taus=(10.0,), grid=11, max_qubits=6, protocol=AnnealProtocol(
        dt=0.05, driver="authors"))  # fmt: skip
    doc = run_anneal(tmp_path, model="unused", settings=settings)
    assert doc["classes"]["c1"] == {"problems": 12, "kept": 0, "over_limit": [9, 9]}
    assert doc["classes"]["c0"]["kept"] == 12
    assert "c1 (d = 9–9)" in doc["summary"]["classes without problems (too many qubits)"]
    assert {c["verdict"] for c in doc["claims"]} == {"not testable"}
    assert all("misses a class" in c["why"] for c in doc["claims"])

    # with both classes within the limit, --max-problems takes them in turn, not the first class only
    settings = AnnealSettings.authors(taus=(10.0,), grid=11, max_qubits=9, max_problems=6,
                                      protocol=AnnealProtocol(dt=0.05, driver="authors"))  # fmt: skip
    doc = run_anneal(tmp_path / "both", model="unused", settings=settings)
    assert [p["label"] for p in doc["problems"]] == ["c0", "c1"] * 3
