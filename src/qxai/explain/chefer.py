"""Gradient-weighted attention relevance of Chefer, Gur & Wolf (ICCV 2021, "Generic
Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", eq. 5–6).

For a target class ``t`` with logit ``y_t`` and each of the ``L`` attention layers, in forward
order, with attention probabilities ``A_l`` ``(heads, T, T)`` and their gradient ``∇A_l = ∂y_t/∂A_l``:

* eq. 5: ``Ā_l = E_h[(∇A_l ⊙ A_l)^+]`` — the heads' mean of the positive part of gradient × attention;
* eq. 6: ``R ← R + Ā_l · R``, starting from ``R = I`` (the identity: each token is its own source
  before any attention), so ``R = (I + Ā_L) ⋯ (I + Ā_1)``.

The map is the class token's row over the patch tokens, ``R[0, k:]`` on the patch grid (the mean
of every token's row when the model has no class token), upsampled bilinearly to the input size
and min–max normalised. Unlike attention rollout it is class-specific: the gradients are those of
the target's logit.

This is the ICCV 2021 "generic" rule, which needs only the attention maps and their gradients. It
is *not* the CVPR 2021 method of Chefer et al. ("Transformer Interpretability Beyond Attention
Visualization"), which weights ``∇A`` by the LRP relevance ``R^{A_b}`` of each block's attention
map (a relevance propagation through every layer: ``Ā_b = I + E_h[(∇A_b ⊙ R^{A_b})^+]``, the map
read from ``Ā_1 · … · Ā_B``); the ICCV paper replaces ``R^{A_b}`` by ``A_b`` itself, drops the LRP
propagation, and shows that the results of the CVPR paper still hold. No maintained library
implements either for plain torch models (captum, pytorch-grad-cam and zennit do not; the authors'
repositories are research code for timm models with their own layers), so it is written here and
tested against the definition (``tests/explain/test_chefer.py``).

Where the attention is read: every ``nn.Softmax`` inside a module named ``attn``/``attention``
(``vit-tiny``'s ``blocks.i.attn.softmax``, the ``--hf-model`` wrapper's
``…attention.softmax``), whose output is the probabilities and whose gradient autograd gives
directly; and every ``nn.MultiheadAttention`` (torchvision's ViT), asked for its per-head weights
for the call. ``nn.MultiheadAttention`` returns the weights as a view that its output is not computed from
(autograd gives it no gradient), so their gradient is computed from the gradient of the module's
output instead: the output is
``O W_oᵀ + b_o`` with per-head ``O_h = A_h V_h``, hence ``∇O = ∇out · W_o`` and ``∇A_h = ∇O_h V_hᵀ``
(``V_h`` the head's values, from the module's input projection) — exact, the forward unchanged.

>>> from qxai.models.vit import ViTTiny
>>> net = ViTTiny(1, 3, (8, 8), patch_size=2, dim=8, depth=2, heads=2)
>>> exp = CheferExplainer(net).explain(torch.rand(2, 1, 8, 8), target=[0, 2])
>>> exp.saliency.shape, exp.extras["relevance"].shape
((2, 8, 8), (2, 4, 4))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qxai.errors import QxaiError
from qxai.explain.base import Explainer, Explanation
from qxai.explain.rollout import require_attention


@dataclass
class AttentionCall:
    """One attention layer's call in a forward pass.

    Attributes:
        probs: ``(B, heads, T, S)`` the attention probabilities (detached).
        node: the tensor autograd differentiates: the probabilities themselves (explicit
            attention) or the module's output ``(B, T, E)`` (``nn.MultiheadAttention``).
        module: the ``nn.MultiheadAttention`` (None for explicit attention).
        values: ``(B, heads, S, d)`` the per-head values (``nn.MultiheadAttention`` only).
    """

    probs: torch.Tensor
    node: torch.Tensor
    module: nn.MultiheadAttention | None = None
    values: torch.Tensor | None = None

    def probs_gradient(self, grad: torch.Tensor) -> torch.Tensor:
        """``∂y/∂A`` ``(B, heads, T, S)`` from ``grad`` = ``∂y/∂node``."""
        if self.module is None:
            return grad
        assert self.values is not None
        mha = self.module
        b, t, e = grad.shape
        heads = mha.num_heads
        d_out = (grad @ mha.out_proj.weight).view(b, t, heads, e // heads).transpose(1, 2)  # ∇O_h
        return d_out @ self.values.transpose(-2, -1)  # ∇A_h = ∇O_h V_hᵀ


def _mha_values(mha: nn.MultiheadAttention, value: torch.Tensor) -> torch.Tensor:
    """``(B, heads, S, d)``: the per-head values ``V_h`` of an ``nn.MultiheadAttention`` for its
    ``value`` argument (batch first or not), by its own input projection."""
    if mha.bias_v is not None or mha.add_zero_attn:
        raise QxaiError(
            "chefer: nn.MultiheadAttention with add_bias_kv or add_zero_attn adds key/value tokens that "
            "are not image tokens; use rollout or gradcam on this model"
        )
    e = mha.embed_dim
    if value.ndim != 3:
        raise QxaiError(f"chefer: unbatched attention input {tuple(value.shape)}; give a batch (B, C, H, W)")
    v = value if mha.batch_first else value.transpose(0, 1)
    weight = mha.in_proj_weight[2 * e :] if mha._qkv_same_embed_dim else mha.v_proj_weight
    bias = None if mha.in_proj_bias is None else mha.in_proj_bias[2 * e :]
    projected = F.linear(v, weight, bias)  # (B, S, E)
    b, s, _ = projected.shape
    return projected.view(b, s, mha.num_heads, e // mha.num_heads).transpose(1, 2)


@contextlib.contextmanager
def attention_calls(model: nn.Module) -> Iterator[list[AttentionCall]]:
    """Within the block, each forward pass (with gradients enabled) appends one
    :class:`AttentionCall` per attention layer to the yielded list, in the order they run; every
    hook is released on exit, also when the block raises."""
    modules = require_attention(model)
    calls: list[AttentionCall] = []
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def ask_weights(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep_softmax(_m: nn.Module, _args: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and output.ndim == 4:
            calls.append(AttentionCall(output.detach(), output))

    def keep_mha(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: object) -> None:
        assert isinstance(m, nn.MultiheadAttention)
        if not (isinstance(output, tuple) and isinstance(output[1], torch.Tensor) and output[1].ndim == 4):
            return
        value = args[2] if len(args) > 2 else kwargs.get("value")
        if not isinstance(value, torch.Tensor):
            raise QxaiError("chefer: nn.MultiheadAttention was called without a value tensor")
        out = output[0] if m.batch_first else output[0].transpose(0, 1)
        with torch.no_grad():
            values = _mha_values(m, value)
        calls.append(AttentionCall(output[1].detach(), out, m, values))

    try:
        for _, module in modules:
            if isinstance(module, nn.MultiheadAttention):
                handles.append(module.register_forward_pre_hook(ask_weights, with_kwargs=True))
                handles.append(module.register_forward_hook(keep_mha, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(keep_softmax))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def relevance(probs: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """``(B, T, T)`` relevance ``R = (I + Ā_L) ⋯ (I + Ā_1)``, ``Ā_l = mean_h (∇A_l ⊙ A_l)^+``, of
    per-layer probabilities and gradients ``(B, heads, T, T)`` (first layer first), in float64
    (Chefer, Gur & Wolf 2021, eq. 5–6: ``R ← R + Ā · R`` from ``R = I``).

    >>> a, g = torch.full((1, 1, 2, 2), 0.5), torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    >>> relevance([a], [g])[0].tolist()
    [[1.5, 0.0], [1.0, 1.0]]
    """
    if not probs or len(probs) != len(grads):
        raise QxaiError("no attention probabilities were recorded; the model's attention did not run")
    out: torch.Tensor | None = None
    for a, g in zip(probs, grads, strict=True):
        cam = (g.double() * a.double()).clamp(min=0).mean(dim=1)  # (B, T, S)
        if cam.shape[-1] != cam.shape[-2]:
            raise QxaiError(
                f"chefer: an attention layer maps {cam.shape[-1]} keys to {cam.shape[-2]} queries; the rule "
                "needs self-attention over the image tokens"
            )
        if out is None:
            out = torch.eye(cam.shape[-1], dtype=cam.dtype).expand_as(cam).clone()
        out = out + cam @ out
    assert out is not None
    return out


class CheferExplainer(Explainer):
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021; see the module docstring);
    class-specific, deterministic.

    extras: ``relevance`` ``(B, h, w)`` — the class token's relevance row over the patch grid,
    before upsampling and normalisation.
    """

    name = "chefer"

    def __init__(self, model: nn.Module, layer: str | None = None, *, seed: int = 0) -> None:
        super().__init__(model)
        self.seed = seed
        require_attention(model)  # a CNN fails here, before any work

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        with torch.enable_grad(), attention_calls(self.model) as calls:
            logits = self.model(inputs.detach())
            if not calls:
                raise QxaiError("no attention probabilities were recorded; the model's attention did not run")
            score = logits.gather(1, targets.view(-1, 1).to(logits.device)).sum()  # rows are independent
            grads = torch.autograd.grad(score, [c.node for c in calls], allow_unused=True)
        with torch.no_grad():
            dprobs = [
                torch.zeros_like(c.probs) if g is None else c.probs_gradient(g.detach())
                for c, g in zip(calls, grads, strict=True)
            ]
            flow = relevance([c.probs for c in calls], dprobs)  # (B, T, T)
        from qxai.explain.rollout import flow_explanation

        return flow_explanation(self.model, inputs, targets, flow, self.name, "relevance")


__all__ = ["AttentionCall", "CheferExplainer", "attention_calls", "relevance"]
