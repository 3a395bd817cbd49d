"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", §3).

For each of the ``L`` attention layers, the attention probabilities ``A_l`` ``(heads, T, T)`` are
averaged over the heads and the residual connection is added as an identity, ``Â_l = 0.5·mean_h A_l
+ 0.5·I``, each row re-normalised to sum to 1; the rollout is the product ``R = Â_L · … · Â_1``
(``R[i, j]``: how much of token ``j`` at the input flows into token ``i`` at the last layer). The
map is the class token's row over the patch tokens, ``R[0, k:]`` reshaped to the patch grid — the
mean of every token's row when the model has no class token — upsampled bilinearly to the input
size and min–max normalised. It is class-agnostic (the target changes nothing), as in the paper.

No maintained library implements it for plain torch models (pytorch-grad-cam and captum do not), so
it is written here and tested against the definition (``tests/explain/test_rollout.py``). The
attention probabilities are read with hooks from every ``nn.MultiheadAttention`` (asked for its
per-head weights for the call) or, in models whose attention is explicit, every ``nn.Softmax``
inside a module named ``attn``/``attention`` (``vit-tiny``'s ``blocks.i.attn.softmax``); the patch
grid and the leading tokens come from :mod:`qxai.probe.tokens` (so ``--tokens``/``--grid`` apply).

>>> from qxai.models.vit import ViTTiny
>>> net = ViTTiny(1, 3, (8, 8), patch_size=2, dim=8, depth=2, heads=2)
>>> exp = AttentionRolloutExplainer(net).explain(torch.rand(2, 1, 8, 8))
>>> exp.saliency.shape, exp.extras["rollout"].shape
((2, 8, 8), (2, 4, 4))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qxai.errors import QxaiError
from qxai.explain.base import Explainer, Explanation, normalise_maps
from qxai.probe.hooks import refuse_torchscript
from qxai.probe.tokens import detect_layout, model_patch_size, model_prefix_tokens, stated_layout

#: The weight of the attention against the residual identity (the paper's 0.5).
RESIDUAL_WEIGHT = 0.5


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose output holds a layer's attention probabilities, in forward order:
    ``nn.MultiheadAttention``, and ``nn.Softmax`` inside a module whose name has ``attn`` or
    ``attention`` (explicit attention, as in ``vit-tiny``).

    >>> from qxai.models.vit import ViTTiny
    >>> [n for n, _ in attention_modules(ViTTiny(1, 2, (8, 8), depth=2))]
    ['blocks.0.attn.softmax', 'blocks.1.attn.softmax']
    """
    found = []
    for name, module in model.named_modules():
        parts = name.lower().split(".")
        if isinstance(module, nn.MultiheadAttention) or (
            isinstance(module, nn.Softmax) and any("attn" in p or "attention" in p for p in parts[:-1])
        ):
            found.append((name, module))
    return found


def require_attention(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """:func:`attention_modules`, or a one-line :class:`QxaiError` for a model without any."""
    refuse_torchscript(model)
    modules = attention_modules(model)
    if not modules:
        raise QxaiError(
            f"{type(model).__name__} has no attention layer qxai can read (nn.MultiheadAttention, or an "
            "nn.Softmax inside an 'attn' module), which rollout needs; use gradcam or qa on this model"
        )
    return modules


@contextlib.contextmanager
def recorded_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward pass appends every attention layer's probabilities
    ``(B, heads, T, T)`` to the yielded list, in the order they run; hooks released on exit.

    An ``nn.MultiheadAttention`` is called with ``need_weights=True, average_attn_weights=False``
    for the pass (its output is the same; only the weights are also returned).
    """
    modules = require_attention(model)
    seen: list[torch.Tensor] = []
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def ask_weights(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep(_m: nn.Module, _args: object, output: object) -> None:
        probs = output[1] if isinstance(output, tuple) else output
        if isinstance(probs, torch.Tensor) and probs.ndim == 4:
            seen.append(probs.detach())

    try:
        for _, module in modules:
            if isinstance(module, nn.MultiheadAttention):
                handles.append(module.register_forward_pre_hook(ask_weights, with_kwargs=True))
            handles.append(module.register_forward_hook(keep))
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def rollout(attentions: list[torch.Tensor], residual: float = RESIDUAL_WEIGHT) -> torch.Tensor:
    """``(B, T, T)`` rollout ``Â_L ⋯ Â_1`` of per-layer probabilities ``(B, heads, T, T)`` (first layer
    first), ``Â_l = rownorm(residual·mean_h A_l + (1 − residual)·I)``, in float64.

    >>> a = torch.full((1, 1, 2, 2), 0.5)
    >>> rollout([a, a])[0].tolist()
    [[0.625, 0.375], [0.375, 0.625]]
    """
    if not attentions:
        raise QxaiError("no attention probabilities were recorded; the model's attention did not run")
    out: torch.Tensor | None = None
    for probs in attentions:
        mean = probs.double().mean(dim=1)
        eye = torch.eye(mean.shape[-1], dtype=mean.dtype).expand_as(mean)
        step = residual * mean + (1.0 - residual) * eye
        step = step / step.sum(dim=-1, keepdim=True)
        out = step if out is None else step @ out
    assert out is not None
    return out


class AttentionRolloutExplainer(Explainer):
    """Attention rollout (see the module docstring); class-agnostic.

    extras: ``rollout`` ``(B, h, w)`` — the class token's rollout row over the patch grid, before
    upsampling and normalisation (its entries and the leading tokens' sum to 1 per image).
    """

    name = "rollout"

    def __init__(self, model: nn.Module, layer: str | None = None, *, seed: int = 0,
                 residual: float = RESIDUAL_WEIGHT) -> None:  # fmt: skip
        super().__init__(model)
        if not 0.0 < residual <= 1.0:
            raise QxaiError(f"rollout residual weight must lie in (0, 1], got {residual}; the paper uses 0.5")
        self.residual = residual
        self.seed = seed
        require_attention(model)  # a CNN fails here, before any work

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        with torch.no_grad(), recorded_attention(self.model) as seen:
            self.model(inputs)
        flow = rollout(seen, self.residual)  # (B, T, T)
        return flow_explanation(self.model, inputs, targets, flow, self.name, "rollout")


__all__ = [
    "RESIDUAL_WEIGHT",
    "AttentionRolloutExplainer",
    "attention_modules",
    "recorded_attention",
    "require_attention",
    "rollout",
]


def flow_explanation(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, flow: torch.Tensor, name: str, key: str
) -> Explanation:
    """The map of a token-to-token flow ``(B, T, T)`` (rollout, Chefer relevance): the class token's
    row (the mean row without one) over the patch grid, upsampled to the input; ``extras[key]`` the
    grid ``(B, h, w)``."""
    b, t = flow.shape[0], flow.shape[-1]
    layout = detect_layout(
        (b, t, 1), (int(inputs.shape[2]), int(inputs.shape[3])), b, layer="attention",
        patch=model_patch_size(model), prefix=model_prefix_tokens(model), stated=stated_layout(model),
    )  # fmt: skip
    h, w = layout.grid
    row = flow[:, 0, :] if layout.prefix else flow.mean(dim=1)  # (B, T)
    grid = row[:, layout.prefix :].reshape(b, h, w).float()
    up = F.interpolate(grid[:, None], size=tuple(inputs.shape[2:]), mode="bilinear", align_corners=False)
    return Explanation(normalise_maps(up[:, 0]), targets.numpy(), name,
                       extras={key: grid.numpy().astype(np.float32)})  # fmt: skip
