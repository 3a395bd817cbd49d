"""The baselines against independent oracles: our own Grad-CAM α and ++ weights, IG completeness,
the closed form of GradientShap on a linear model, LRP conservation, LIME on a one-segment model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qxai.errors import QxaiError
from qxai.explain.baselines import (
    GradCAMExplainer,
    GradCAMPlusPlusExplainer,
    GradientShapExplainer,
    IntegratedGradientsExplainer,
    LimeExplainer,
    LRPExplainer,
    feature_segments,
    integrated_gradients,
    reduce_channels,
)
from qxai.explain.registry import EXPLAINERS, METHOD_NAMES, get_explainer, parse_methods
from qxai.probe import capture_gradients, eval_mode, target_classes


def small_cnn(seed: int = 0, bias: bool = True) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1, bias=bias), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 5, 3, padding=1, bias=bias), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(5 * 8 * 8, 3, bias=bias),
    ).eval()  # fmt: skip


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(4, 1, 8, 8, generator=gen), torch.tensor([0, 1, 2, 1])


def test_gradcam_weights_and_map_match_our_own_alpha(batch):
    model, (x, t) = small_cnn(), batch
    exp = GradCAMExplainer(model, "3").explain(x, t)
    _, acts, grads, _ = capture_gradients(model, "3", x, t)
    alpha = grads.mean(dim=(2, 3))
    np.testing.assert_allclose(exp.extras["channel_weights"], alpha.numpy(), rtol=1e-5, atol=1e-7)
    cam = F.relu((alpha[:, :, None, None] * acts).sum(1))  # same resolution as the input here
    ours = reduce_channels(cam[:, None], "positive")
    np.testing.assert_allclose(exp.saliency, ours, atol=1e-4)


def test_gradcam_plus_plus_weights_match_the_paper_formula(batch):
    model, (x, t) = small_cnn(), batch
    exp = GradCAMPlusPlusExplainer(model, "3").explain(x, t)
    _, a, g, _ = capture_gradients(model, "3", x, t)
    g, a = g.double(), a.double()
    aij = g**2 / (2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3 + 1e-6)
    aij = torch.where(g != 0, aij, torch.zeros_like(aij))
    weights = (F.relu(g) * aij).sum(dim=(2, 3))
    np.testing.assert_allclose(exp.extras["channel_weights"], weights.numpy(), rtol=1e-4, atol=1e-8)


def test_integrated_gradients_completeness(batch):
    model, (x, t) = small_cnn(), batch
    exp = IntegratedGradientsExplainer(model, steps=64).explain(x, t)
    with torch.no_grad():
        gap = (model(x) - model(torch.zeros_like(x))).gather(1, t[:, None])[:, 0].numpy()
    # captum's delta is Σ attr − (f(x) − f(0)); check it against our own forward passes
    np.testing.assert_allclose(exp.extras["attribution_sum"] - gap, exp.extras["delta"], atol=1e-4)
    assert np.abs(exp.extras["delta"]).max() < 0.05 * np.abs(gap).max()


def test_integrated_gradients_function_is_captums_in_eval_mode_and_restores_the_mode(batch):
    from captum.attr import IntegratedGradients

    (x, t), model = batch, small_cnn()
    model.insert(5, torch.nn.Dropout(0.5))  # train mode would drop units at random
    model.train()
    attr, delta = integrated_gradients(model, x, t, steps=16, baseline=0.25, internal_batch_size=7)
    assert model.training and all(m.training for m in model.modules())
    ref, ref_delta = IntegratedGradients(model.eval()).attribute(
        x, baselines=0.25, target=t, n_steps=16, return_convergence_delta=True
    )
    # internal batching splits the path sum differently: equal to float32 rounding of the sums
    np.testing.assert_allclose(attr.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(delta.numpy(), ref_delta.detach().numpy(), rtol=1e-4, atol=1e-5)
    # None: the predicted class, as the explainers resolve it
    with eval_mode(model):
        predicted = model(x).argmax(dim=1)
    by_prediction = integrated_gradients(model, x, None, steps=4)[0]
    np.testing.assert_array_equal(
        by_prediction.numpy(), integrated_gradients(model, x, predicted, steps=4)[0].numpy()
    )
    with pytest.raises(QxaiError, match="IG steps must be at least 2"):
        integrated_gradients(model, x, t, steps=1)


def test_one_target_resolution_everywhere(batch):
    (x, _), model = batch, small_cnn()
    with pytest.raises(QxaiError, match="target 3 is not a class of this model"):
        capture_gradients(model, "3", x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(QxaiError, match="got 3 targets for 4 inputs"):
        GradCAMExplainer(model, "3").explain(x, [0, 1, 2])
    with pytest.raises(QxaiError, match="target -1 is not a class"):
        IntegratedGradientsExplainer(model, steps=2).explain(x, -1)
    # capture_gradients takes an int too, and picks the prediction from its own forward pass
    _, _, _, chosen = capture_gradients(model, "3", x, 2)
    assert chosen.tolist() == [2, 2, 2, 2]
    _, _, _, predicted = capture_gradients(model, "3", x)
    np.testing.assert_array_equal(predicted.numpy(), target_classes(None, 4, model(x)).numpy())


def test_gradient_shap_on_a_linear_model_is_the_closed_form():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    x, base = torch.rand(3, 1, 4, 4), torch.rand(1, 1, 4, 4)
    exp = GradientShapExplainer(model, baselines=base, samples=5, reduce="abs").explain(x, 1)
    # linear f: the gradient is w everywhere, so every sample gives (x − b) · w exactly
    w = model[1].weight[1].detach().view(1, 4, 4)
    expected = reduce_channels(((x[:, 0] - base[0, 0]) * w)[:, None], "abs")
    np.testing.assert_allclose(exp.saliency, expected, atol=1e-5)


def test_shap_and_lime_follow_the_seed_and_leave_global_rngs_alone(batch):
    model, (x, t) = small_cnn(), batch
    with torch.no_grad():
        model[5].weight.mul_(100)  # logits of an untrained net barely move; LIME's Lasso would zero them
    torch.manual_seed(123)
    before = torch.rand(1).item()
    torch.manual_seed(123)
    for cls, kw in ((GradientShapExplainer, {}), (LimeExplainer, {"samples": 30})):
        a = cls(model, seed=3, **kw).explain(x, t).saliency
        b = cls(model, seed=3, **kw).explain(x, t).saliency
        c = cls(model, seed=4, **kw).explain(x, t).saliency
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    assert torch.rand(1).item() == before  # the scoped generators restored the global state


def test_lime_finds_the_only_segment_that_matters():
    class OneCell(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = x[:, :, :2, :2].sum(dim=(1, 2, 3))  # the top-left 2×2 cell decides class 0
            return torch.stack([4 * s, torch.zeros_like(s)], dim=1)

    x = torch.ones(2, 1, 8, 8)
    sal = LimeExplainer(OneCell(), samples=120, cell=2).explain(x, 0).saliency
    assert np.all(sal[:, :2, :2] == 1.0) and sal[:, 2:, :].max() < 0.2 and sal[:, :, 2:].max() < 0.2


def test_lime_blur_and_mean_baselines_switch_segments_off_to_that_substrate():
    seen: list[torch.Tensor] = []

    class Spy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.detach().clone())
            return torch.stack([x.sum(dim=(1, 2, 3)), torch.zeros(len(x))], dim=1)

    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    LimeExplainer(Spy(), samples=10, baseline="mean", cell=4).explain(x, 0)
    values = torch.cat(seen).unique()
    # every perturbed pixel is either the original or the image mean
    allowed = torch.cat([x.flatten(), x.mean().view(1)])
    assert all(torch.isclose(v, allowed).any() for v in values)


def test_feature_segments_grid_and_slic():
    grid = feature_segments(torch.zeros(2, 3, 6, 6), "grid", cell=3)
    assert grid.shape == (2, 1, 6, 6) and grid.max() == 3
    slic = feature_segments(
        torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)), "slic", cell=4
    )
    assert slic.shape == (1, 1, 16, 16) and slic.max() >= 1


def test_lrp_conserves_relevance_on_a_bias_free_relu_net(batch):
    model, (x, t) = small_cnn(bias=False), batch
    exp = LRPExplainer(model).explain(x, t)
    with torch.no_grad():
        logit = model(x).gather(1, t[:, None])[:, 0].numpy()
    positive = logit > 0  # z⁺ conserves only positive relevance; test the images where it must hold
    assert positive.any()
    # zennit starts from relevance 1 on the target logit; without biases no relevance leaks away
    np.testing.assert_allclose(exp.extras["relevance_sum"][positive], 1.0, rtol=1e-3)
    np.testing.assert_allclose(exp.extras["logit"], logit, rtol=1e-5)


def test_lrp_refuses_a_model_without_rules():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LayerNorm(16), torch.nn.Linear(16, 2))
    with pytest.raises(QxaiError, match=r"LRP .* no rule for 1 \(LayerNorm\)"):
        LRPExplainer(model)


@pytest.mark.parametrize("name", [n for n in METHOD_NAMES if n != "qa" and EXPLAINERS[n].requires is None])
def test_every_baseline_gives_unit_range_maps_at_input_size(name, batch):
    model, (x, t) = small_cnn(), batch
    options = {"lime": {"samples": 20}, "ig": {"steps": 4}, "shap": {"samples": 2}}.get(name, {})
    exp = get_explainer(name, model, "3", **options).explain(x, t)
    assert exp.saliency.shape == (4, 8, 8) and exp.saliency.dtype == np.float32
    assert exp.saliency.min() >= 0.0 and exp.saliency.max() <= 1.0 and exp.method == name
    np.testing.assert_array_equal(exp.targets, t.numpy())


def test_cam_on_a_non_convolutional_layer_is_a_clear_error(batch):
    model, (x, t) = small_cnn(), batch
    with pytest.raises(QxaiError, match="gradcam cannot use layer '5'"):
        GradCAMExplainer(model, "5").explain(x, t)


def test_registry_names_and_errors():
    model = small_cnn()
    assert parse_methods("QA, gradcam++ ,ig") == ["qa", "gradcam++", "ig"]
    with pytest.raises(QxaiError, match="unknown method 'grad_cam'; did you mean 'gradcam'"):
        parse_methods("grad_cam")
    with pytest.raises(QxaiError, match="unknown method 'smoothgrad'"):
        get_explainer("smoothgrad", model, "3")
    with pytest.raises(QxaiError, match="does not take option"):
        get_explainer("ig", model, "3", samples=3)
    with pytest.raises(QxaiError, match="no method given"):
        parse_methods(" , ")
    with pytest.raises(QxaiError, match="reduce must be one of"):
        get_explainer("ig", model, "3", reduce="max")
    with pytest.raises(QxaiError, match="LIME baseline must be a number, 'blur' or 'mean'"):
        get_explainer("lime", model, "3", baseline="noise")
