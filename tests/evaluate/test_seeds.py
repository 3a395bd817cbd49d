"""``--seeds``: QA's paired tests and claims resample training seeds as well as images."""

from __future__ import annotations

import json

import numpy as np

from qxai.evaluate.statistics import paired_test_over_seeds
from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate
from qxai.pipeline.train import run_train, train_config


def test_paired_tests_and_claims_over_seeds(tmp_path, cache_dir):
    config = train_config("digits", "reduced-cnn", maps=6, epochs=1, seed=0, batch_size=64, lr=2e-3)
    run_train(config, tmp_path / "m.pt")
    settings = EvaluateSettings(methods=("qa", "gradcam"), metrics=("causal_precision", "deletion_auc"),
                                per_class=1, seeds=(0, 1))  # fmt: skip
    doc = run_evaluate(tmp_path / "out", model=tmp_path / "m.pt", settings=settings)
    test = doc["paired"]["gradcam"]["causal_precision"]
    assert test["over"] == "2 seeds × images"
    firsts = [json.loads((tmp_path / "out" / f"seed-{s}" / "metrics.json").read_text())["paired"]["gradcam"]
              ["causal_precision"]["difference"] for s in (0, 1)]  # fmt: skip
    # the estimate is the mean over seeds of each seed's own paired difference
    assert np.isclose(test["difference"], np.mean(firsts), rtol=1e-12, atol=1e-15)
    assert test["first_seed"]["difference"] == firsts[0]
    row = next(c for c in doc["claims"] if "GradCAM's top-k (causal precision" in c["claim"])
    assert "bootstrap over 2 seeds × images" in row["why"], row


def test_seeds_that_disagree_give_no_claim():
    """Each seed alone separates from 0, but with opposite signs: over seeds the interval holds 0."""
    rng = np.random.default_rng(1)
    plus = [(rng.normal(0.5, 0.1, 30), rng.normal(0.0, 0.1, 30)) for _ in range(2)]
    minus = [(rng.normal(0.0, 0.1, 30), rng.normal(0.5, 0.1, 30)) for _ in range(2)]
    alone = paired_test_over_seeds(plus[:1])
    assert alone.interval[0] > 0
    both = paired_test_over_seeds(plus + minus)
    assert both.interval[0] < 0 < both.interval[1]
