"""The demo's heads stage (a Transformer only): the head-ablation comparison, its claim rows, the
Transformer picture and the report section; and the demo's defaults per architecture."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qxai.errors import QxaiError
from qxai.evaluate.claims import collect_claims
from qxai.pipeline.demo import METHODS, TRANSFORMER_METHODS, DemoSettings
from qxai.pipeline.heads import HeadsSettings, head_claims, run_heads_stage


def test_the_heads_stage_writes_its_comparison_claims_and_picture(tmp_path, digits_vit_checkpoint):
    run = tmp_path / "run"
    doc = run_heads_stage(run / "heads", digits_vit_checkpoint, HeadsSettings(per_class=2, pictured=2))
    assert set(doc["comparisons"]) == {"last", "all"}
    assert doc["comparisons"]["last"]["heads"] == 2 and doc["comparisons"]["all"]["heads"] == 4
    for c in doc["comparisons"].values():
        assert 0 < c["compared"] <= c["images"] <= 20
        for m in c["methods"].values():
            lo, hi = m["interval"]
            assert not np.isfinite(lo) or lo <= m["mean_drop"] <= hi
    # two rows per head choice; each verdict follows from its interval (above 0 holds, else not;
    # too few compared images for an interval: not testable, whatever this CPU's numbers are)
    assert len(doc["claims"]) == 4
    for row in doc["claims"]:
        assert row["source"] == "heads"
        if row["interval"] is None:
            assert row["verdict"] == "not testable"
        else:
            assert row["verdict"] == ("holds" if row["interval"][0] > 0 else "does not hold")
    assert (run / "heads" / "transformer.png").stat().st_size > 0
    written = json.loads((run / "heads" / "heads.json").read_text())
    assert written["claims"] == doc["claims"]
    # the demo gathers the rows; a run without the stage (a CNN) gets no "did not run" row for it
    assert [r for r in collect_claims(run) if r["source"] == "heads"] == doc["claims"]
    assert not [r for r in collect_claims(tmp_path / "empty") if r["source"] == "heads"]


def test_the_report_shows_the_transformer_section_only_when_the_stage_ran(tmp_path, digits_vit_checkpoint):
    from qxai.report.html import render_report

    run = tmp_path / "run"
    run_heads_stage(run / "heads", digits_vit_checkpoint, HeadsSettings(per_class=1, pictured=1))
    (run / "stages.json").write_text(json.dumps({"title": "t", "stages": {"heads": {"status": "ok"}}}))
    page = render_report(run)
    assert 'data-section="transformer"' in page and "QA − random" in page and 'href="#transformer"' in page
    failed = {"model": {"status": "failed", "error": "QxaiError: x"}}
    (run / "stages.json").write_text(json.dumps({"title": "t", "stages": failed}))
    import shutil

    shutil.rmtree(run / "heads")
    page = render_report(run)
    assert 'data-section="transformer"' not in page and 'href="#transformer"' not in page


def test_a_convolutional_model_is_refused_in_one_line(tmp_path, digits_checkpoint):
    with pytest.raises(QxaiError, match="needs a Transformer"):
        run_heads_stage(tmp_path / "heads", digits_checkpoint)


def test_claims_say_tie_loss_and_untestable():
    def comparison(lo: float, hi: float, n: int = 10) -> dict:
        test = {"difference": (lo + hi) / 2 if n else float("nan"), "interval": [lo, hi], "verdict": "x"}
        return {"compared": n, "degenerate": {} if n else {"all_zero_weights": 3}, "mean_selected": 2.0,
                "heads": 4, "paired": {"qa - gradient-weight": test, "qa - random": test}}  # fmt: skip

    rows = head_claims({"last": comparison(0.1, 0.3), "all": comparison(-0.2, 0.1)})
    assert [r.verdict for r in rows] == ["holds", "holds", "does not hold", "does not hold"]
    assert "a tie" in rows[2].why
    assert "QA loses" in head_claims({"last": comparison(-0.3, -0.1)})[0].why
    # a finite difference over 5 images has no interval (too few to bootstrap): not a tie, not a loss
    few = comparison(0.1, 0.3, n=5)
    for test in few["paired"].values():
        test["interval"] = [float("nan"), float("nan")]
    rows = head_claims({"last": few})
    assert [r.verdict for r in rows] == ["not testable"] * 2 and "only 5 images" in rows[0].why
    assert all(r.to_dict()["interval"] is None for r in rows)
    empty = head_claims({"last": comparison(float("nan"), float("nan"), n=0)})
    assert [r.verdict for r in empty] == ["not testable"] * 2 and "all_zero_weights" in empty[0].why


def test_demo_defaults_follow_the_architecture():
    cnn = DemoSettings(arch="reduced-cnn", stages=("model",))
    assert cnn.methods == METHODS
    assert "heads" not in DemoSettings(arch="reduced-cnn").stages
    vit = DemoSettings(arch="vit-tiny")
    assert vit.methods == TRANSFORMER_METHODS and "lrp" not in vit.methods
    assert vit.stages.index("heads") == vit.stages.index("evaluate") + 1
    with pytest.raises(QxaiError, match="heads stage needs a Transformer"):
        DemoSettings(arch="reduced-cnn", stages=("model", "heads"))
    assert DemoSettings(arch="vit-tiny", methods=("qa", "gradcam")).methods == ("qa", "gradcam")
    assert np.all([m in vit.methods for m in ("rollout", "chefer", "qa-heads")])


def test_anneal_runs_on_head_selection_qubos(tmp_path, digits_vit_checkpoint):
    """`qxai anneal --target heads`: the state-vector study on the QUBOs over every block's heads,
    each problem the QUBO QAHeadsExplainer builds for that image (same variables and energies)."""
    import dimod

    from qxai.anneal.physics.study import AnnealSettings
    from qxai.explain.heads import QAHeadsExplainer
    from qxai.pipeline.anneal import model_qubos, run_anneal

    settings = AnnealSettings(taus=(2.0,), per_class=1, max_qubits=8, grid=9, target="heads", figures=False)
    doc = run_anneal(tmp_path / "a", model=str(digits_vit_checkpoint), settings=settings)
    assert doc["source"]["target"] == "heads" and doc["source"]["num_maps"] == 4
    assert doc["num_problems"] > 0 and all(1 <= p["num_qubits"] <= 4 for p in doc["problems"])
    sources, _ = model_qubos(str(digits_vit_checkpoint), settings)
    from qxai.models.loading import load_model_and_data
    from qxai.models.selection import select_correct_per_class

    md = load_model_and_data(str(digits_vit_checkpoint))
    data = select_correct_per_class(md.model, md.split.test, 1, seed=0)
    _, qubos, _ = QAHeadsExplainer(md.model, blocks="all", ground_truth="never").build_qubos(
        data.images, data.labels
    )
    assert len(sources) == len(qubos)
    for (_, a), (b, _) in zip(sources, qubos, strict=True):
        assert set(a.variables) == set(b.variables)
        for x in dimod.ExactSolver().sample(b).samples():
            assert a.energy(x) == pytest.approx(b.energy(x), rel=1e-12, abs=1e-12)
    with pytest.raises(QxaiError, match="anneal target"):
        AnnealSettings(target="tokens")
