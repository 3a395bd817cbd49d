"""Run what can run: an analysis the input cannot support is skipped with its reason, statistics
hold at the sample size allowed, and a model with broken weights is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from qxai.analysis.claims import analysis_claims
from qxai.analysis.mutual_info import analytic_null_valid, mutual_information_matrix
from qxai.cli.main import main
from qxai.errors import QxaiError
from qxai.pipeline.analyze import AnalyzeSettings, run_analyze

FAST = {"bootstrap": 0, "ig_examples": 1, "ig_steps": 4, "mi_permutations": 19}


def analysed(checkpoint: Path, out: Path, **options) -> dict:
    return run_analyze(out, model=str(checkpoint), settings=AnalyzeSettings(**{**FAST, **options}))


def test_five_inputs_skip_mi_and_run_the_rest(digits_qixai_checkpoint, tmp_path):
    doc = analysed(digits_qixai_checkpoint, tmp_path / "a", samples=5)
    assert "at least 8 samples" in doc["skipped"]["mi"] and doc["summary"]["skipped: mi"]
    assert doc["spectra"] and doc["similarity"] and doc["integrated_gradients"]["examples"] == 1
    assert "mutual_information" not in doc


def test_binned_mi_on_ten_inputs_names_only_existing_remedies(digits_qixai_checkpoint, tmp_path):
    doc = analysed(digits_qixai_checkpoint, tmp_path / "b", samples=10, mi_method="binned")
    reason = doc["skipped"]["mi"]
    assert "needs at least 16 samples (two per bin)" in reason and "gcmi" in reason and "--bins" not in reason
    assert set(doc["skipped"]) == {"mi"} and doc["spectra"] and doc["integrated_gradients"]


def test_nothing_that_can_run_is_one_line(digits_qixai_checkpoint, tmp_path):
    with pytest.raises(QxaiError, match=r"no analysis can run on these 5 inputs \(mi: mutual information"):
        analysed(digits_qixai_checkpoint, tmp_path / "c", samples=5, analyses=("mi",))
    assert not (tmp_path / "c" / "analysis.json").exists()


def test_at_eight_inputs_significance_rests_on_the_permutation_test(digits_qixai_checkpoint, tmp_path):
    doc = analysed(digits_qixai_checkpoint, tmp_path / "d", samples=8)
    mi = doc["mutual_information"]
    assert not mi["analytic_null_valid"] and mi["fdr_on"].startswith("permutation p-values")
    assert mi["significant_pairs"] == mi["significant_pairs_permutation"]
    with np.load(tmp_path / "d" / "analysis.npz") as arrays:
        assert arrays["mi/values"].max() <= np.log(8) + 1e-12
    untested = analysed(digits_qixai_checkpoint, tmp_path / "e", samples=8, mi_permutations=0)
    assert untested["mutual_information"]["significant_pairs"] is None
    row = next(r for r in analysis_claims(untested) if "MI" in r["claim"])
    assert row["verdict"] == "not testable" and "needs N ≥ 30" in row["why"]
    # the control: at a sample size where the χ² null holds, it is the one used
    full = analysed(digits_qixai_checkpoint, tmp_path / "f", samples=60, analyses=("mi",))
    assert full["mutual_information"]["analytic_null_valid"]
    assert full["mutual_information"]["fdr_on"].startswith("analytic")


def test_no_estimate_exceeds_ln_n_and_the_null_says_where_it_holds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3))
    r = mutual_information_matrix(x, x.copy())  # identical features: gcmi's raw estimate is ~13.8 nats
    assert r.mi.max() <= np.log(8) + 1e-12 and r.at_ceiling == 3
    assert r.analytic_invalid == analytic_null_valid("gcmi", 8) and "N ≥ 30" in r.analytic_invalid
    assert analytic_null_valid("gcmi", 30) is None and analytic_null_valid("binned", 319) is not None
    assert analytic_null_valid("binned", 320) is None  # 5 · 8²


def _dense_doc(width: int, dead: int = 0, constant: bool = False) -> dict:
    return {
        "layers": {"dense": {"kind": "dense"}},
        "spectra": {"dense": {"top5_share": 0.9, "top5_share_interval": [0.85, 0.95], "width": width,
                              "dead_units": dead, "constant": constant}},
    }  # fmt: skip


@pytest.mark.parametrize(
    "doc, fragment",
    [(_dense_doc(10), "10 live units of 10"), (_dense_doc(64, dead=58), "6 live units of 64"),
     (_dense_doc(64, constant=True), "is constant")],
)  # fmt: skip
def test_the_pca_claim_is_not_testable_where_it_cannot_fail(doc, fragment):
    row = analysis_claims(doc)[0]
    assert row["verdict"] == "not testable" and fragment in row["why"]


def test_the_pca_claim_is_tested_on_a_wide_layer():  # the control: the same share can fail there
    assert analysis_claims(_dense_doc(128))[0]["verdict"] == "does not hold"


def test_a_checkpoint_with_nan_weights_is_refused_in_one_line(digits_qixai_checkpoint, tmp_path, capsys):
    payload = torch.load(digits_qixai_checkpoint, weights_only=True)
    first = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][first] = torch.full_like(payload["state_dict"][first], float("nan"))
    broken = tmp_path / "nan.pt"
    torch.save(payload, broken)
    with pytest.raises(SystemExit) as stop:
        main(["analyze", "--model", str(broken), "--analyses", "ig", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert f"weights {first} are NaN or infinite" in err and "retrain" in err
