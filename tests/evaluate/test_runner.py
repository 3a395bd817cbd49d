"""The runner and the stage: a failing method is reported and skipped, outputs follow the contract,
and the command line works end to end on `digits` with a small budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qxai.errors import QxaiError
from qxai.evaluate import EvalSettings, evaluate_methods
from qxai.io import read_json


def ln_net() -> torch.nn.Module:
    """A conv net with a LayerNorm, which zennit's composite has no rule for."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.LayerNorm(4 * 6 * 6), torch.nn.Linear(4 * 6 * 6, 2),
    ).eval()  # fmt: skip


def test_a_method_that_cannot_apply_is_skipped_and_the_run_continues():
    x = torch.rand(6, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 0, 0, 1, 1, 1])
    ev = evaluate_methods(ln_net(), "1", x, t, "lrp,gradcam", metrics=["deletion_auc", "silhouette"],
                          settings=EvalSettings(steps=4))  # fmt: skip
    assert "no rule for 3 (LayerNorm)" in ev.methods["lrp"].error
    assert ev.methods["gradcam"].error is None and list(ev.table()) == ["gradcam"]
    assert 0.0 <= ev.table()["gradcam"]["deletion_auc"] <= 1.0


def test_same_seed_same_scores_and_qa_drives_the_size_matched_sets():
    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 1] * 4)
    settings = EvalSettings(steps=4, sanity_images=4, randomisation="cascading", resamples=200, null_draws=40)
    kw = {"metrics": ["disentanglement", "deletion_auc", "sanity"], "options": {"qa": {"solver": "exact"}},
          "settings": settings, "seed": 3}  # fmt: skip
    a = evaluate_methods(ln_net(), "1", x, t, "gradcam,qa", **kw)
    b = evaluate_methods(ln_net(), "1", x, t, "gradcam,qa", **kw)
    assert list(a.methods) == ["gradcam", "qa"]  # the order given
    for name in ("qa", "gradcam"):
        assert a.methods[name].error is None, a.methods[name].error
        assert a.table()[name] == pytest.approx(b.table()[name], nan_ok=True)
        assert a.interval_table()[name] == b.interval_table()[name]
    sizes = [len(s) for s in a.methods["qa"].extras["selected"]]
    from qxai.evaluate.disentangle import activated_maps

    topk = activated_maps(a.methods["gradcam"].extras["channel_weights"], sizes)
    assert [len(s) for s in topk] == sizes  # exactly |S_QA| maps per image
    assert np.isfinite(a.table()["gradcam"]["overlap_mean"])
    assert len(a.methods["qa"].details["randomisation_stages"]) == 3  # linear, layer norm, conv
    # two classes: class sensitivity is not applicable, and says why
    assert "two-class" in a.methods["qa"].not_applicable["class_sensitivity_abs_spearman"]
    assert set(a.paired["gradcam"]) >= {"overlap_mean", "deletion_auc"}
    assert a.references["permutation_null"]["draws"] == 40


def test_unknown_names_are_clear_errors():
    x, t = torch.rand(2, 1, 6, 6), torch.tensor([0, 1])
    with pytest.raises(QxaiError, match="unknown metric 'auc'"):
        evaluate_methods(ln_net(), "1", x, t, "gradcam", metrics=["auc"])
    with pytest.raises(QxaiError, match="unknown method 'gradcam3'"):
        evaluate_methods(ln_net(), "1", x, t, "gradcam3")


def qxai(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in this process (the libraries are already imported): (code, out, err)."""
    from qxai.cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_end_to_end_on_digits(digits_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "eval"
    code, stdout, stderr = qxai(
        capsys,
        "evaluate", "--model", str(digits_checkpoint), "--methods", "qa,gradcam,lrp", "--per-class", "1",
        "--steps", "5", "--sanity-images", "4", "--metrics",
        "disentanglement,faithfulness,randomisation_abs_spearman,cost", "--resamples", "200", "--null-draws",
        "40", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "overlap_mean ↓" in stdout and "qxai evaluate" in stdout
    doc = read_json(out / "metrics.json")
    assert set(doc["config"]["methods"]) == {"qa", "gradcam", "lrp"}
    assert doc["qa"]["overlap_mean"] is not None and doc["lrp"]["overlap_mean"] is None
    lo, hi = doc["intervals"]["qa"]["deletion_auc"]
    assert lo <= doc["qa"]["deletion_auc"] <= hi
    assert "selects no feature maps" in doc["not_applicable"]["lrp"]["overlap_mean"]
    assert set(doc["references"]) >= {"permutation_null", "random_k", "class_prototype"}
    assert set(doc["paired"]) == {"gradcam", "lrp"} and "p_value" in doc["paired"]["gradcam"]["overlap_mean"]
    assert doc["claims"] and {c["verdict"] for c in doc["claims"]} <= {
        "holds",
        "does not hold",
        "not testable",
    }
    assert doc["qubo"]["beta"] == 0.7 and doc["run_id"]
    assert doc["metric_info"]["deletion_auc"]["direction"] == "lower"
    from qxai.report.html import method_scores  # the report must see exactly the methods as rows

    assert set(method_scores(doc)) == {"qa", "gradcam", "lrp"}
    assert (out / "details.json").is_file()
    assert {f["file"] for f in doc["figures"]} == {"overlap.png", "curves.png", "examples.png"}
    assert all((out / f["file"]).stat().st_size > 0 for f in doc["figures"])
    assert isinstance(doc["summary"]["images"], int)
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert (
        header.startswith("method,overlap_mean")
        and header.endswith(",error")
        and "overlap_mean_low" in header
    )
    with np.load(out / "per_image.npz") as per_image:
        assert per_image["qa__deletion_auc"].shape == (doc["summary"]["images"],)
    with np.load(out / "method_saliency.npz") as maps:
        assert maps["qa"].shape == (doc["summary"]["images"], 16, 16)


def test_cli_rejects_unknown_method(digits_checkpoint, tmp_path, capsys):
    args = ["evaluate", "--model", str(digits_checkpoint), "--methods", "qa,gradcm", "--out", str(tmp_path)]
    code, _, stderr = qxai(capsys, *args)
    assert code == 2 and "unknown method 'gradcm'; did you mean 'gradcam'" in stderr


def test_bad_settings_fail_before_any_work():
    with pytest.raises(QxaiError, match="deletion_fill must be one of zero, blur, mean, got 'black'"):
        EvalSettings(deletion_fill="black")
    with pytest.raises(QxaiError, match="randomisation must be one of full, cascading"):
        EvalSettings(randomisation="layer")
    from qxai.pipeline.evaluate import EvaluateSettings

    with pytest.raises(QxaiError, match="unknown method 'foo'"):
        EvaluateSettings(methods=("qa", "foo"))
    with pytest.raises(QxaiError, match="unknown solver"):
        EvaluateSettings(solver="nope")
    with pytest.raises(QxaiError, match="resamples"):
        EvalSettings(resamples=10)


def test_every_method_failing_is_an_error_not_exit_zero(digits_checkpoint, tmp_path, capsys):
    args = ["evaluate", "--model", str(digits_checkpoint), "--methods", "gradcam,qa", "--layer", "classifier",
            "--per-class", "1", "--out", str(tmp_path / "e")]  # fmt: skip
    code, _, stderr = qxai(capsys, *args)
    assert code == 2 and "every method failed" in stderr


def test_a_model_with_nan_outputs_is_refused(tmp_path):
    from qxai.models.selection import check_finite_outputs

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 2))
    with torch.no_grad():
        net[1].weight.fill_(float("nan"))
    with pytest.raises(QxaiError, match="NaN or infinite logits"):
        check_finite_outputs(net, torch.rand(3, 1, 6, 6))
