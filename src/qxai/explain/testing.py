"""A conformance kit for explainers, in the spirit of :mod:`dimod.testing`.

:func:`assert_explainer_contract` checks that an explainer keeps the promises of
:class:`qxai.explain.base.Explainer` on a given model and batch, and raises ``AssertionError``
naming the broken promise. Run it on your own explainer before registering it:

>>> import torch
>>> from qxai.explain.registry import get_explainer
>>> torch.manual_seed(0) and None
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
...                           torch.nn.Linear(3 * 6 * 6, 2))
>>> assert_explainer_contract(get_explainer("gradcam", net, "1"), net, torch.rand(3, 1, 6, 6))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.modules.module as torch_module

from qxai.explain.base import Explainer, Explanation
from qxai.probe import eval_mode

#: Every per-module hook dictionary of ``torch.nn.Module`` (forward, pre-forward, backward — full
#: backward hooks live in ``_backward_hooks`` — and backward-pre hooks).
_MODULE_HOOKS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)
_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


def hook_snapshot(model: torch.nn.Module) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The handles of every hook on ``model``: its modules', its parameters' and torch's global ones.

    >>> net = torch.nn.Linear(2, 2)
    >>> before = hook_snapshot(net)
    >>> handle = net.register_forward_hook(lambda *args: None)
    >>> hook_snapshot(net) == before, handle.remove(), hook_snapshot(net) == before
    (False, None, True)
    """
    snap: dict[tuple[str, str], tuple[Any, ...]] = {}
    for name, module in model.named_modules():
        for attr in _MODULE_HOOKS:
            hooks = getattr(module, attr, None)
            if hooks:
                snap[(name, attr)] = tuple(hooks)
    for name, param in model.named_parameters():
        hooks = getattr(param, "_backward_hooks", None)
        if hooks:
            snap[(name, "tensor hooks")] = tuple(hooks)
    for attr in _GLOBAL_HOOKS:
        hooks = getattr(torch_module, attr, None)
        if hooks:
            snap[("<global>", attr)] = tuple(hooks)
    return snap


def _modes(model: torch.nn.Module) -> list[tuple[str, bool]]:
    return [(name, module.training) for name, module in model.named_modules()]


def _check_maps(exp: Explanation, inputs: torch.Tensor, what: str) -> None:
    b, _, h, w = inputs.shape
    sal = exp.saliency
    assert isinstance(exp, Explanation), (
        f"{what}: explain() returned {type(exp).__name__}, not an Explanation"
    )
    assert isinstance(sal, np.ndarray), f"{what}: saliency is {type(sal).__name__}, not a numpy array"
    assert sal.shape == (b, h, w), f"{what}: saliency shape {sal.shape}, expected (B, H, W) = {(b, h, w)}"
    assert sal.dtype == np.float32, f"{what}: saliency dtype {sal.dtype}, expected float32"
    assert np.isfinite(sal).all(), f"{what}: saliency has NaN or infinite values"
    assert sal.min() >= 0.0 and sal.max() <= 1.0, (
        f"{what}: saliency spans [{sal.min()}, {sal.max()}], outside [0, 1]"
    )
    assert np.shape(exp.targets) == (b,), f"{what}: targets shape {np.shape(exp.targets)}, expected ({b},)"
    for key, value in exp.extras.items():
        if isinstance(value, list | np.ndarray):
            assert len(value) == b, f"{what}: extras['{key}'] has length {len(value)}, expected B = {b}"


def _calling(
    explainer: Explainer, model: torch.nn.Module, inputs: torch.Tensor
) -> Callable[[Any, str], Explanation]:
    """``explain(target, what)`` that also checks the side-effect promises around every call."""

    def explain(target: Any, what: str) -> Explanation:
        hooks, modes = hook_snapshot(model), _modes(model)
        x = inputs.clone()
        torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
        exp = explainer.explain(inputs, target)
        after = hook_snapshot(model)
        changed = list({*hooks.items()} ^ {*after.items()})
        assert not changed, f"{what}: hooks left on or removed from the model: {[k for k, _ in changed][:4]}"
        flipped = [
            name or "<model>" for (name, m0), (_, m1) in zip(modes, _modes(model), strict=True) if m0 != m1
        ]
        assert not flipped, f"{what}: the caller's train/eval mode was not restored on {flipped[:4]}"
        assert torch.equal(inputs, x), f"{what}: explain() modified the caller's inputs"
        assert torch.equal(torch.random.get_rng_state(), torch_state), (
            f"{what}: torch's global random generator was used (draw from the explainer's seed)"
        )
        numpy_after = np.random.get_state()
        same_numpy = all(np.array_equal(a, b) for a, b in zip(numpy_after, numpy_state, strict=True))
        assert same_numpy, f"{what}: numpy's global random generator was used (use the explainer's seed)"
        _check_maps(exp, inputs, what)
        return exp

    return explain


def assert_explainer_contract(
    explainer: Explainer, model: torch.nn.Module, inputs: torch.Tensor, *, atol: float = 1e-5
) -> None:
    """Raise ``AssertionError`` unless ``explainer`` (built for ``model``) keeps the explainer contract
    on ``inputs`` ``(B, C, H, W)``:

    * the saliency is a ``(B, H, W)`` float32 numpy array, finite, in ``[0, 1]``; ``targets`` is
      ``(B,)`` and every list or array in ``extras`` has length ``B``;
    * per-example targets are honoured: with targets ``t_b = b mod K`` (``K`` classes), row ``b``
      equals row ``b`` of explaining class ``t_b`` for the whole batch (to ``atol``: batches whose
      targets differ may round differently in float32), and ``Explanation.targets`` is ``t``;
    * no hook is left on (or taken off) any module, parameter or torch's global hook lists;
    * the caller's train/eval mode is restored on every module (the model is called in train mode,
      then given its own mode back);
    * the caller's inputs and torch's and numpy's global random generators are left alone;
    * the same call twice gives the same map (same seed, same map), bit for bit.
    """
    assert inputs.ndim == 4 and len(inputs) >= 2, "give a batch of at least 2 images (B, C, H, W)"
    own_modes = _modes(model)
    modules = dict(model.named_modules())
    try:
        with eval_mode(model), torch.no_grad():
            classes = int(model(inputs).shape[1])
        model.train()
        explain = _calling(explainer, model, inputs)
        targets = torch.arange(len(inputs)) % classes
        per_example = explain(targets, "per-example targets")
        np.testing.assert_array_equal(
            np.asarray(per_example.targets),
            targets.numpy(),
            err_msg="Explanation.targets are not the given ones",
        )
        for c in targets.unique().tolist():
            rows = (targets == c).numpy()
            whole = explain(int(c), f"target {c} for all")
            assert np.all(np.asarray(whole.targets) == c), f"target {c} for all: Explanation.targets differ"
            np.testing.assert_allclose(
                per_example.saliency[rows], whole.saliency[rows], rtol=0, atol=atol,
                err_msg=f"per-example targets: the rows of class {c} differ from explaining {c} for all",
            )  # fmt: skip
        again = explain(targets, "second call")
        np.testing.assert_array_equal(
            per_example.saliency, again.saliency, err_msg="same explainer, same inputs: a different map"
        )
    finally:
        for name, mode in own_modes:
            modules[name].training = mode


__all__ = ["assert_explainer_contract", "hook_snapshot"]
