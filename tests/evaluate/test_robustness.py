"""Robustness metrics against Quantus 0.6.0 (the reference) and selection stability against brute force.

Equality with Quantus: both routes are given the same perturbed copies (Quantus through its
``perturb_func``) and the same explanation function, and Quantus is called one image at a time with
our batch size 1, so every forward and every explanation is the same computation in both — what is
compared is the metric arithmetic. The explanations are float64, so the sensitivity, Lipschitz and RIS
norms are float64 in both (relative error ≤ (n + 4)·u64 each, n the elements summed); Quantus keeps the
logits and hidden outputs float32 for ROS and RRS, so there the bound is (n + 4)·u32 over their size.
"""

from __future__ import annotations

import dimod
import numpy as np
import pytest
import quantus  # a dev dependency: the reference must be there, not skipped
import torch

from qxai.evaluate import EvalSettings, evaluate_methods, robustness, stability
from qxai.explain.registry import get_explainer
from tests.numerics import route_tolerance

U64, U32 = np.finfo(np.float64).eps / 2, np.finfo(np.float32).eps / 2
SAMPLES = 6


def _net() -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 3),
    ).eval()


@pytest.fixture(scope="module")
def case():
    net = _net()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    t = net(x).argmax(1)
    ig = get_explainer("ig", net, "1", seed=0, steps=8)  # signed, never all zero

    def explain(xs: torch.Tensor, ts: torch.Tensor) -> np.ndarray:
        # one image per call: the same computation whatever the batch (the routes' maps are identical)
        return np.concatenate([ig.explain(xs[i : i + 1], ts[i : i + 1]).saliency for i in range(len(xs))]
                              ).astype(np.float64)  # fmt: skip

    return net, x, t, explain, explain(x, t)


def _quantus_scores(metric, net, x, t, e_x, explain, copies):
    """Quantus' scores, one image per call, fed ``copies`` (S, B, C, H, W) in its sampling order."""
    out = []
    for b in range(len(x)):
        def perturb(arr, indices, steps=iter(copies[:, b : b + 1]), **_kw):
            return next(steps).reshape(arr.shape)

        metric.perturb_func = perturb
        out.append(metric(
            model=net, x_batch=x[b : b + 1].numpy(), y_batch=t[b : b + 1].numpy(), a_batch=e_x[b : b + 1],
            explain_func=lambda model, inputs, targets, **kw: explain(torch.as_tensor(inputs).float(),
                                                                      torch.as_tensor(targets)),
        )[0])  # fmt: skip
    return np.array(out, dtype=np.float64)


def _close(ours, theirs, rtol):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = np.isfinite(ours)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=0)


@pytest.mark.parametrize("name", ["max", "avg", "lipschitz", "ris", "ros", "rrs"])
def test_equal_to_quantus_on_the_same_perturbations(case, name):
    net, x, t, explain, e_x = case
    q = dict(disable_warnings=True, display_progressbar=False, nr_samples=SAMPLES)
    family, metric, ours = {
        "max": ("sensitivity", quantus.MaxSensitivity(**q), lambda s: robustness.sensitivity(s, "max")),
        "avg": ("sensitivity", quantus.AvgSensitivity(**q), lambda s: robustness.sensitivity(s, "mean")),
        "lipschitz": ("lipschitz", quantus.LocalLipschitzEstimate(**q), robustness.local_lipschitz),
        "ris": ("stability", quantus.RelativeInputStability(**q), robustness.relative_input_stability),
        "ros": ("stability", quantus.RelativeOutputStability(**q), robustness.relative_output_stability),
        "rrs": ("stability", quantus.RelativeRepresentationStability(**q),
                robustness.relative_representation_stability),
    }[name]  # fmt: skip
    sample = robustness.perturb_and_explain(
        net, explain, x, t, e_x, robustness.FAMILIES[family], samples=SAMPLES, seed=0, batch_size=1,
        hidden=family == "stability",
    )  # fmt: skip
    copies = sample.perturbed.reshape(SAMPLES, *x.shape)
    theirs = _quantus_scores(metric, net, x, t, e_x, explain, copies)
    n_maps, n_pixels = e_x[0].size, x[0].numel()
    rtol = 4 * (n_maps + n_pixels + 4) * U64
    if name == "ros":
        rtol += 2 * (sample.logits.shape[1] + 4) * U32
    if name == "rrs":
        _z, hidden = robustness.hidden_outputs(net, x)
        rtol += 2 * (hidden.shape[1] + 4) * U32
    _close(ours(sample), theirs, rtol)
    if family == "stability":  # the comparison covers a flipped image (NaN in both) and an unflipped one
        assert sample.flipped.any(axis=0).any() and (~sample.flipped.any(axis=0)).any(), sample.flipped


def test_quantus_defaults_are_ours():
    """Each family's perturbation is Quantus' default for its metrics (read from Quantus itself)."""
    q = dict(disable_warnings=True)
    sens = quantus.MaxSensitivity(**q).perturb_func
    assert sens.keywords == {"lower_bound": 0.2, "upper_bound": None}
    assert robustness.FAMILIES["sensitivity"] == robustness.Perturbation("uniform", low=-0.2, high=0.2)
    lle = quantus.LocalLipschitzEstimate(**q)
    assert lle.perturb_func.keywords == {"perturb_mean": 0.0, "perturb_std": 0.1} and lle.normalise
    ris = quantus.RelativeInputStability(**q).perturb_func
    assert ris.keywords == {"upper_bound": 0.2}
    assert ris.func.__defaults__[0] == robustness.FAMILIES["stability"].low == 0.02
    assert quantus.MaxSensitivity(**q).nr_samples == 200


def test_batch_size_does_not_change_the_scores(case):
    """The copies explained in batches of 1 and of 64: the same maps up to float32 routes."""
    net, x, t, _explain, _e = case
    ig = get_explainer("ig", net, "1", seed=0, steps=8)
    e_x = ig.explain(x, t).saliency

    def batched(xs, ts):
        return ig.explain(xs, ts).saliency

    family = robustness.FAMILIES["sensitivity"]
    runs = [robustness.perturb_and_explain(net, batched, x, t, e_x, family, samples=SAMPLES, seed=0,
                                           batch_size=size) for size in (1, 64)]  # fmt: skip
    assert np.array_equal(runs[0].perturbed, runs[1].perturbed)  # the copies are bit-identical
    tol = route_tolerance(net)
    diff = np.abs(runs[0].explanations - runs[1].explanations).max()
    assert diff <= tol * max(1.0, np.abs(runs[0].explanations).max())
    # ‖Δe‖/‖e‖ moves by at most √Q·(map error) over ‖e‖ (numerator) plus the same relative change below
    bound = 2 * np.sqrt(e_x[0].size) * tol / np.linalg.norm(e_x.reshape(len(x), -1), axis=1)
    a, b = robustness.sensitivity(runs[0]), robustness.sensitivity(runs[1])
    assert (np.abs(a - b) <= bound * (1 + a)).all()


def test_noise_is_keyed_by_image_id():
    """A shard (or another sample of images) draws the same copies of an image as the whole set."""
    x = torch.rand(5, 1, 3, 3)
    whole = robustness.perturbations(x, robustness.FAMILIES["lipschitz"], 4, seed=7, ids=[10, 11, 12, 13, 14])
    part = robustness.perturbations(x[3:], robustness.FAMILIES["lipschitz"], 4, seed=7, ids=[13, 14])
    assert np.array_equal(whole[:, 3:], part)
    other = robustness.perturbations(x[3:], robustness.FAMILIES["lipschitz"], 4, seed=8, ids=[13, 14])
    assert not np.array_equal(part, other)


def test_hidden_outputs_hooks_are_removed_and_outputs_copied():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(inplace=True), torch.nn.Linear(4, 2))
    x = torch.randn(3, 4)
    _z, h = robustness.hidden_outputs(net, x)
    pre = net[0](x).detach()
    assert torch.equal(h[:, :4], pre)  # the pre-ReLU output, not the view the in-place ReLU changed
    assert h.shape == (3, 4 + 4 + 2)
    assert all(not m._forward_hooks for m in net.modules())


def test_jaccard_and_read_agreement_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = (sorted(set(rng.integers(0, 8, rng.integers(0, 5)).tolist())) for _ in range(2))
        union = len(set(a) | set(b))
        expected = np.nan if union == 0 else sum(v in b for v in a) / union
        assert stability.jaccard(a, b) == pytest.approx(expected, nan_ok=True)
    # reads: {0,1} ×2 (the best), {1} ×1, {2} ×1 → other reads: 1, 0.5, 0 → 0.5
    ss = dimod.SampleSet.from_samples([{0: 1, 1: 1, 2: 0}, {0: 0, 1: 1, 2: 0}, {0: 0, 1: 0, 2: 1}], "BINARY",
                                      [-3.0, -2.0, -1.0], num_occurrences=[2, 1, 1])  # fmt: skip
    assert stability.read_agreement(ss) == pytest.approx(0.5)
    one = dimod.SampleSet.from_samples([{0: 1}], "BINARY", [-1.0])
    assert np.isnan(stability.read_agreement(one))


def test_metrics_in_the_registry_score_a_run():
    net = _net()
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    t = net(x).argmax(1)
    st = EvalSettings(metric_settings={"max_sensitivity": {"samples": 4, "images": 8},
                                       "selection_jaccard_seed": {"seeds": 2}})  # fmt: skip
    ev = evaluate_methods(net, "1", x, t, ["qa", "gradcam", "ig"], metrics=["robustness", "stability"],
                          settings=st, options={"ig": {"steps": 4}})  # fmt: skip
    qa, cam, grad = (ev.methods[m] for m in ("qa", "gradcam", "ig"))
    rows = np.unique(np.linspace(0, 9, 8).round().astype(int))
    for r in (qa, cam, grad):
        assert np.isfinite(r.scores["max_sensitivity"])
        assert r.scores["max_sensitivity"] >= r.scores["avg_sensitivity"]
        # a value on the sample's images whose own map is not all zero (0/0), NaN elsewhere
        expected = np.zeros(10, bool)
        expected[rows] = np.abs(r.saliency[rows]).reshape(len(rows), -1).max(axis=1) > 0
        assert np.array_equal(np.isfinite(r.per_image["max_sensitivity"]), expected)
    assert cam.scores["selection_jaccard_seed"] == 1.0  # deterministic: the same top-k with any seed
    assert "selection_jaccard_reads" in cam.not_applicable
    assert "selection_jaccard_noise" in grad.not_applicable
    assert 0 <= qa.scores["selection_jaccard_reads"] <= 1
    # the registry's value equals the module's on the same copies
    cam_exp = get_explainer("gradcam", net, "1", seed=0)
    direct = robustness.perturb_and_explain(
        net, lambda a, b: cam_exp.explain(a, b).saliency, x[rows], t[rows], cam.saliency[rows],
        robustness.FAMILIES["sensitivity"], samples=4, seed=0, ids=rows, batch_size=128,
    )  # fmt: skip
    registry = cam.per_image["max_sensitivity"][rows]
    np.testing.assert_allclose(registry, robustness.sensitivity(direct), rtol=1e-12, equal_nan=True)


def test_over_budget_is_refused_with_the_setting_to_change():
    net = _net()
    x = torch.rand(8, 1, 8, 8)
    st = EvalSettings(metric_settings={"max_sensitivity": {"budget_seconds": 1e-9}})
    ev = evaluate_methods(net, "1", x, net(x).argmax(1), ["gradcam"], metrics=["max_sensitivity"],
                          settings=st)
    reason = ev.methods["gradcam"].not_applicable["max_sensitivity"]
    assert "max_sensitivity.budget_seconds" in reason and "\n" not in reason


def test_the_run_names_the_methods_scored():
    net = _net()
    x = torch.rand(8, 1, 8, 8)
    st = EvalSettings(metric_settings={"max_sensitivity": {"samples": 2, "images": 8, "methods": "qa"}})
    ev = evaluate_methods(net, "1", x, net(x).argmax(1), ["qa", "gradcam"],
                          metrics=["max_sensitivity", "selection_jaccard_noise"], settings=st)  # fmt: skip
    assert "max_sensitivity" in ev.methods["qa"].per_image
    reason = ev.methods["gradcam"].not_applicable["selection_jaccard_noise"]
    assert "max_sensitivity.methods" in reason and "max_sensitivity" in ev.methods["gradcam"].not_applicable
