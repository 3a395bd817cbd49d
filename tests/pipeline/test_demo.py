"""The demo end to end on `digits` with a tiny budget, and a failing stage that does not stop the rest."""

from __future__ import annotations

import json

import pytest

from qxai.pipeline import demo
from qxai.pipeline.demo import DemoSettings, run_demo

TINY = dict(
    dataset="digits", maps=6, epochs=1, per_class=2, methods=("qa", "gradcam"), taus=(2.0,),
    max_qubits=6, anneal_per_class=1, analysis_images=64, lime_samples=16, curve_steps=4, sanity_images=4,
)  # fmt: skip


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv("QXAI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "run"


def test_every_stage_runs_and_the_report_has_every_section(tiny_run):
    meta = run_demo(tiny_run, DemoSettings(**TINY), command="qxai demo --test")
    assert {k: v["status"] for k, v in meta["stages"].items()} == dict.fromkeys(DemoSettings().stages, "ok")
    page = (tiny_run / "report.html").read_text()
    sections = ("claims", "model", "explanations", "metrics", "disentanglement", "annealing", "layers")
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
     ({"taus": (0.0,)}, "--taus"), ({"per_class": 0}, "--per-class")],
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
