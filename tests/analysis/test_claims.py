"""QIXAI's claims checked against analysis.json documents: each verdict rule on constructed documents,
and end to end on a real analysis."""

from __future__ import annotations

import numpy as np
import pytest

from qxai.analysis.claims import analysis_claims


def _doc(share: float, interval: list[float] | None, significant: int, cosine: float) -> dict:
    names = ["conv1", "conv2", "dense"]
    cos = np.full((3, 3), cosine)
    np.fill_diagonal(cos, 1.0)
    doc = {
        "layers": {"conv1": {"kind": "conv"}, "conv2": {"kind": "conv"}, "dense": {"kind": "dense"}},
        "spectra": {"dense": {"top5_share": share, "top5_share_interval": interval}},
        "mutual_information": {
            "layers": ["conv1", "conv2"], "pairs": 2048, "fdr_level": 0.05, "significant_pairs": significant,
            "top_pairs": [
                {"conv1": 22, "conv2": 46, "mi": 0.8, "p_analytic": 1e-30, "significant": significant > 0}
            ],
        },
        "similarity": {"layers": names, "cosine_gram": cos, "cka_debiased": cos * 0.5, "controls": {
            "random network": {"control": 0.9, "trained_interval": [cosine * 0.9, cosine * 0.99],
                               "difference_interval": [-0.9, -0.3]}}},
    }  # fmt: skip
    # a random-network control far below the trained count (the control rules: test_claims_controls.py)
    control = {"trained": significant, "control": 0, "trained_interval": [significant, significant],
               "difference_interval": [significant * 0.5, significant * 1.5]}
    doc["mutual_information"]["controls"] = {"random network": control}
    return doc


def _verdicts(doc: dict) -> list[str]:
    return [row["verdict"] for row in analysis_claims(doc)]


def test_rows_have_the_contract_fields() -> None:
    rows = analysis_claims(_doc(0.27, [0.25, 0.29], 3, 0.05))
    assert len(rows) == 4
    for row in rows:
        assert set(row) == {"claim", "ours", "interval", "paper", "verdict", "why", "source"}
        assert row["verdict"] in ("holds", "does not hold", "not testable") and row["why"]
        assert row["source"] == "analyze"
    assert _verdicts(_doc(0.27, [0.25, 0.29], 3, 0.05)) == ["holds", "holds", "holds", "not testable"]
    assert "conv1 22 – conv2 46" in rows[1]["why"]


@pytest.mark.parametrize(
    ("share", "interval", "verdict"),
    [
        (0.60, [0.55, 0.65], "does not hold"),
        (0.35, [0.31, 0.39], "holds"),  # the interval reaches the 27 % ± 5 pp band
        (0.35, [0.33, 0.37], "does not hold"),
        (0.30, None, "holds"),  # no interval: the point value decides
        (0.10, None, "does not hold"),
    ],
)
def test_top5_rule(share: float, interval: list[float] | None, verdict: str) -> None:
    row = analysis_claims(_doc(share, interval, 1, 0.0))[0]
    assert row["verdict"] == verdict and row["ours"] == share and row["interval"] == interval


def test_mi_and_orthogonality_rules() -> None:
    assert _verdicts(_doc(0.27, None, 0, 0.5))[1:3] == ["does not hold", "does not hold"]
    assert _verdicts(_doc(0.27, None, 1, 0.099))[1:3] == ["holds", "holds"]


def test_missing_analyses_are_not_testable() -> None:
    assert _verdicts({"layers": {}}) == ["not testable"] * 4
    old = _doc(0.27, None, 1, 0.0)
    del old["mutual_information"]["significant_pairs"]  # written before analytic p-values existed
    assert _verdicts(old)[1] == "not testable"


def test_claims_of_a_real_analysis() -> None:
    from qxai.analysis.subjects import SubjectSource, load_subject
    from qxai.pipeline.analyze import AnalyzeSettings, analyze

    subject = load_subject(SubjectSource(builtin="lstm", epochs=1), samples=60)
    settings = AnalyzeSettings(
        samples=60, analyses=("spectrum", "similarity", "mi"), mi_permutations=0, bootstrap=40
    )
    doc = analyze(subject, settings).doc
    rows = analysis_claims(doc)
    # the LSTM has no dense layer; its MI and similarity rows are decided from the run's numbers
    assert rows[0]["verdict"] == "not testable"
    assert rows[1]["ours"] == doc["mutual_information"]["significant_pairs"]
    assert rows[2]["verdict"] in ("holds", "does not hold")
