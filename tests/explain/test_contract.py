"""The explainer conformance kit: every registered explainer passes it, broken ones fail it, and
TorchScript models get the input-level methods and a one-line error for the layer methods."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

from qxai.errors import QxaiError
from qxai.explain.base import Explainer, Explanation, normalise_maps
from qxai.explain.registry import EXPLAINERS, get_explainer, torchscript_methods
from qxai.explain.testing import assert_explainer_contract, hook_snapshot

#: quick settings (the contract, not the quality, is under test); qa on the exact solver
QUICK = {
    "qa": {"solver": "exact"},
    "ig": {"steps": 4},
    "shap": {"samples": 2},
    "lime": {"samples": 20},
}


def tiny_cnn() -> torch.nn.Module:
    """Conv → BatchNorm → ReLU → Dropout → Conv → ReLU → Linear: train mode changes its output."""
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 8 * 8, 3),
    )  # fmt: skip
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.1, 0.1)
        model[1].running_var.uniform_(0.5, 1.5)
        model[7].weight.mul_(50)  # logits of an untrained net barely move; LIME's Lasso would zero them
    return model


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", [n for n, spec in EXPLAINERS.items() if spec.requires is None])
def test_every_registered_explainer_keeps_the_contract(name, inputs):
    # methods that need more than a CNN (rollout: attention) keep it on theirs: tests/explain/test_rollout.py
    model = tiny_cnn()
    explainer = get_explainer(name, model, "5", seed=3, **QUICK.get(name, {}))
    assert_explainer_contract(explainer, model, inputs)
    # same seed through the registry: a second explainer gives the same map as the first
    again = get_explainer(name, model, "5", seed=3, **QUICK.get(name, {}))
    model.eval()
    np.testing.assert_array_equal(explainer.explain(inputs, 1).saliency, again.explain(inputs, 1).saliency)


class _Broken(Explainer):
    """GradCAM-like maps from the input itself; subclasses each break one promise."""

    name = "broken"

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        maps = inputs.sum(dim=1) * (1 + targets.view(-1, 1, 1))
        return Explanation(normalise_maps(maps), targets.numpy(), self.name)


class LeavesAHook(_Broken):
    def _explain(self, inputs, targets):
        self.model[0].register_forward_hook(lambda *args: None)
        return super()._explain(inputs, targets)


class FlipsMode(_Broken):
    def explain(self, inputs, target=None):
        self.model.eval()  # and never gives the caller's mode back
        return self._explain(inputs, torch.as_tensor(target).expand(len(inputs)).clone())


class UsesGlobalRandomness(_Broken):
    def _explain(self, inputs, targets):
        exp = super()._explain(inputs, targets)
        exp.saliency = exp.saliency * torch.rand(1).item()
        return exp


class UsesNumpysGlobalRandomness(_Broken):
    def _explain(self, inputs, targets):
        exp = super()._explain(inputs, targets)
        exp.saliency = exp.saliency * np.float32(np.random.uniform())
        return exp


class IgnoresPerExampleTargets(_Broken):
    def _explain(self, inputs, targets):
        return super()._explain(inputs, targets[:1].expand(len(targets)).clone())


class OutOfRange(_Broken):
    def _explain(self, inputs, targets):
        exp = super()._explain(inputs, targets)
        exp.saliency = exp.saliency * 2
        return exp


class WrongDtype(_Broken):
    def _explain(self, inputs, targets):
        exp = super()._explain(inputs, targets)
        exp.saliency = exp.saliency.astype(np.float64)
        return exp


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (LeavesAHook, "hooks left on"),
        (FlipsMode, "mode was not restored"),
        (UsesGlobalRandomness, "torch's global random generator"),
        (UsesNumpysGlobalRandomness, "numpy's global random generator"),
        (IgnoresPerExampleTargets, "rows of class|targets are not the given ones"),
        (OutOfRange, r"outside \[0, 1\]"),
        (WrongDtype, "expected float32"),
    ],
)
def test_a_broken_explainer_fails_the_contract(cls, message, inputs):
    model = tiny_cnn()
    hooks = hook_snapshot(model)
    with pytest.raises(AssertionError, match=message):
        assert_explainer_contract(cls(model), model, inputs)
    if cls is not LeavesAHook:
        assert hook_snapshot(model) == hooks


def test_a_correct_toy_explainer_passes_and_the_callers_mode_comes_back(inputs):
    model = tiny_cnn()
    model.eval()
    model[3].train()  # a mixed mode set on purpose
    assert_explainer_contract(_Broken(model), model, inputs)
    assert not model.training
    assert [m.training for m in model] == [False, False, False, True, False, False, False, False]


def scripted(model: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, yet users bring such files
        return torch.jit.script(model)


def test_torchscript_layer_methods_are_a_one_line_error_naming_what_applies():
    model = scripted(tiny_cnn())
    assert torchscript_methods() == ["ig", "shap", "lime"]
    for name in [n for n, spec in EXPLAINERS.items() if not spec.runs_on_torchscript]:
        expected = re.escape(f"method '{name}' needs hooks") + ".*use ig, shap, lime"
        with pytest.raises(QxaiError, match=expected) as err:
            get_explainer(name, model, "5")
        assert "\n" not in str(err.value)


def test_layer_hooks_on_torchscript_are_a_one_line_error_wherever_they_are_asked_for(inputs):
    from qxai.explain.qa import QAFeatureMapExplainer  # as `qxai explain` builds it, without the registry
    from qxai.probe import LayerProbe, capture_gradients

    model = scripted(tiny_cnn())
    for attempt in (
        lambda: QAFeatureMapExplainer(model, "5", solver="exact").explain(inputs),
        lambda: capture_gradients(model, "5", inputs),
        lambda: LayerProbe(model, "5"),
    ):
        with pytest.raises(QxaiError, match=r"TorchScript model has no layer hooks.*ig, shap, lime") as err:
            attempt()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["ig", "shap", "lime"])
def test_input_level_methods_run_on_torchscript(name, inputs):
    python_model = tiny_cnn()
    model = scripted(python_model)
    assert_explainer_contract(get_explainer(name, model, None, seed=2, **QUICK[name]), model, inputs)
    # the scripted model explains exactly as its Python original
    ours = get_explainer(name, model, None, seed=2, **QUICK[name]).explain(inputs, 0).saliency
    ref = get_explainer(name, python_model, None, seed=2, **QUICK[name]).explain(inputs, 0).saliency
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_layer_methods_need_a_layer():
    with pytest.raises(QxaiError, match="method 'gradcam' reads a layer"):
        get_explainer("gradcam", tiny_cnn(), None)
