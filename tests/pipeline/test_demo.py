"""The demo end to end on `digits` with a tiny budget, and a failing stage that does not stop the rest."""

from __future__ import annotations

import json

import pytest

from qxai.pipeline import demo
from qxai.pipeline.demo import DemoSettings, run_demo

TINY = dict(
    dataset="digits", maps=6, epochs=1, per_class=2, methods=("qa", "gradcam"), taus=(2.0,),
    max_qubits=6, anneal_per_class=1, analysis_images=64, lime_samples=16, curve_steps=4, sanity_images=4,
    planted_difficulties=("easy",), planted_methods=("qa", "gradcam"), planted_per_class=2, planted_count=200,
)  # fmt: skip


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv("QXAI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "run"


def test_every_stage_runs_and_the_report_has_every_section(tiny_run):
    meta = run_demo(tiny_run, DemoSettings(**TINY), command="qxai demo --test")
    assert {k: v["status"] for k, v in meta["stages"].items()} == dict.fromkeys(DemoSettings().stages, "ok")
    page = (tiny_run / "report.html").read_text()
    sections = (
        "claims", "model", "explanations", "metrics", "disentanglement", "groundtruth", "planted",
        "annealing", "layers",
    )  # fmt: skip
    for section in sections:
        assert f'data-section="{section}"' in page
    assert 'class="failed"' not in page
    top = json.loads((tiny_run / "metrics.json").read_text())
    assert set(top) >= {"qa", "gradcam", "metric_info", "intervals", "claims"}
    sources = {c.get("source") for c in top["claims"]}
    assert "evaluate" in sources
    # the second run reuses the cached model
    again = run_demo(tiny_run, DemoSettings(**{**TINY, "stages": ("model",)}))
    assert again["stages"]["model"]["summary"]["reused from cache"] is True


def test_a_failing_stage_is_reported_and_the_rest_completes(tiny_run, monkeypatch):
    real = demo._stage_functions

    def broken(settings, out):
        functions = real(settings, out)

        def explode():
            raise RuntimeError("simulated failure in explain")

        return {**functions, "explain": explode}

    monkeypatch.setattr(demo, "_stage_functions", broken)
    settings = DemoSettings(**{**TINY, "stages": ("model", "explain", "analyze")})
    meta = run_demo(tiny_run, settings)
    assert meta["stages"]["explain"] == {
        "status": "failed", "error": "RuntimeError: simulated failure in explain",
        "seconds": meta["stages"]["explain"]["seconds"],
    }  # fmt: skip
    assert meta["stages"]["analyze"]["status"] == "ok"
    page = (tiny_run / "report.html").read_text()
    explanations = page[page.index('id="explanations"') : page.index('id="metrics"')]
    assert "failed" in explanations and "simulated failure in explain" in explanations


@pytest.mark.parametrize(
    ("change", "message"),
    [({"stages": ("model", "explian")}, "unknown stage"),
     ({"methods": ("qa", "foo")}, "unknown method 'foo'"),
     ({"arch": "vgg"}, "unknown architecture 'vgg'"), ({"dataset": "mnsit"}, "unknown dataset 'mnsit'"),
     ({"taus": (0.0,)}, "--taus"), ({"per_class": 0}, "--per-class"),
     ({"planted_difficulties": ("hard",)}, "unknown planted difficulty 'hard'"),
     ({"planted_methods": ("gradcam",)}, "compares qa with gradcam"),
     ({"planted_count": 20, "planted_per_class": 2}, "too few test images")],
)  # fmt: skip
def test_every_option_is_checked_before_stage_one(tiny_run, change, message):
    from qxai.errors import QxaiError

    with pytest.raises(QxaiError, match=message):
        run_demo(tiny_run, DemoSettings(**{**TINY, **change}))
    assert not (tiny_run / "model").exists()  # nothing was trained


def test_the_quantum_stage_adds_the_quantum_layers_section(tiny_run):
    settings = DemoSettings(**{**TINY, "stages": ("quantum",), "quantum": True})
    meta = run_demo(tiny_run, settings)
    assert meta["stages"]["quantum"]["status"] == "ok", meta["stages"]["quantum"]
    doc = json.loads((tiny_run / "quantum" / "analysis.json").read_text())
    assert "quantum" in doc and doc["source"]["arch"] == "hybrid-vqc"
    page = (tiny_run / "report.html").read_text()
    section = page[page.index('data-section="quantum"') :]
    assert "Quantum layers" in section and "<img" in section


def test_the_planted_stage_writes_its_files_and_the_report_shows_table_figure_and_claims(tiny_run):
    settings = DemoSettings(**{**TINY, "stages": ("planted",), "planted_difficulties": ("easy", "redundant"),
                               "planted_methods": ("qa", "gradcam", "gradcam++")})  # fmt: skip
    meta = run_demo(tiny_run, settings)
    assert meta["stages"]["planted"]["status"] == "ok", meta["stages"]["planted"]
    folder = tiny_run / "planted"
    doc = json.loads((folder / "planted.json").read_text())
    assert doc["files"] == ["planted.png"] and (folder / "planted.png").is_file()
    assert set(doc["parts"]) == {"easy", "redundant"}
    for difficulty in ("easy", "redundant"):
        run = json.loads((folder / difficulty / "metrics.json").read_text())
        assert run["config"]["dataset"] == "planted" and run["config"]["layer"] == "maps"
        part = doc["parts"][difficulty]
        assert part["run_id"] == run["run_id"]  # the table is the sub-folder's evaluation, copied
        assert part["methods"]["qa"]["causal_precision"] == run["qa"]["causal_precision"]
        assert set(part["methods"]["gradcam"]) == set(doc["columns"])
    rows = [c for c in doc["claims"] if c["source"] == "planted"]
    assert [r["claim"].rsplit(", ", 1)[1] for r in rows] == ["easy)", "redundant)"]
    top = json.loads((tiny_run / "metrics.json").read_text())
    assert [c for c in top["claims"] if c["source"] == "planted"] == rows  # gathered for the claims table
    page = (tiny_run / "report.html").read_text()
    section = page[page.index('data-section="planted"') : page.index('data-section="annealing"')]
    assert "<h3>easy</h3>" in section and "<h3>redundant</h3>" in section
    assert "planted_precision ↑" in section and "QA − row (causal_precision)" in section
    assert section.count("<img") == 1 and "is missing" not in section and "not the one" not in section
    claims = page[page.index('data-section="claims"') : page.index('data-section="model"')]
    assert "planted benchmark, redundant" in claims
