"""The overlap claims carry a note when α makes GradCAM's top-k a class lookup or disjoint by
construction (two classes with opposite α), and none when α varies per image."""

from __future__ import annotations

import numpy as np

from qxai.evaluate.claims import alpha_note, class_mean_alpha_r, qa_claims


def _metrics(alpha: dict) -> dict:
    test = {"difference": 0.2, "interval": [0.1, 0.3], "p_value": 0.01}
    return {"qa": {"overlap_mean": 0.2}, "gradcam": {"overlap_mean": 0.0},
            "paired": {"gradcam": {"overlap_mean": test}},
            "diagnostics": {"alpha_within_class": alpha}}  # fmt: skip


def test_opposite_class_alpha_is_measured_and_noted() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    w = np.vstack([base + 0.05 * rng.normal(size=(20, 16)), -base + 0.05 * rng.normal(size=(20, 16))])
    labels = np.repeat([0, 1], 20)
    r = class_mean_alpha_r(w, labels)
    assert r is not None and r < -0.95
    independent = rng.normal(size=(40, 16))
    assert class_mean_alpha_r(independent, labels) > -0.9
    row = qa_claims(_metrics({"constant": False, "class_mean_min_r": r}))[0]
    assert "nearly the negative" in row["why"] and "\n" not in row["why"]


def test_constant_alpha_is_noted_and_varying_alpha_is_not() -> None:
    row = qa_claims(_metrics({"constant": True, "relative_spread": 0.0}))[0]
    assert "class lookup" in row["why"] and row["verdict"] == "does not hold"
    assert alpha_note(_metrics({"constant": False, "relative_spread": 0.4, "class_mean_min_r": 0.1})) == ""
    assert alpha_note({}) == ""
