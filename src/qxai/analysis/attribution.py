"""Integrated Gradients ("measurement" in the QIXAI seed), computed by Captum, completeness checked.

IG attributes ``F(x) − F(x')`` (the target logit at the input minus at a baseline ``x'``) to input
features: ``IG_i = (x_i − x'_i) ∫₀¹ ∂F(x' + α(x − x'))/∂x_i dα``, approximated with ``steps``
Gauss–Legendre points. Completeness says ``Σ_i IG_i = F(x) − F(x')``; Captum's convergence delta is
the gap, reported here per input (absolute and relative to ``|F(x) − F(x')|``). A large relative
delta means too few steps.

For token inputs (Transformers) gradients cannot flow into integer ids, so
:func:`embedding_integrated_gradients` integrates along the embedding layer's output with Captum's
``LayerIntegratedGradients`` (a different Captum class, so called here) and sums the attribution
over the embedding dimension, one number per token. Both default to the explainer's step count
``IG_STEPS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from qxai.explain.baselines import IG_STEPS
from qxai.probe import eval_mode
from qxai.probe.targets import target_classes


@dataclass
class IGResult:
    """IG attributions of B inputs.

    Attributions: the inputs' shape (e.g. ``(B, C, H, W)``), or ``(B, T)`` per token for embeddings.
    ``delta`` ``(B,)`` is ``Σ IG − (F(x) − F(x'))``; ``relative_delta`` divides it by ``|F(x) − F(x')|``.
    """

    attributions: np.ndarray
    targets: np.ndarray
    delta: np.ndarray
    relative_delta: np.ndarray
    gap: np.ndarray

    def summary(self) -> dict[str, float]:
        return {
            "ig_max_abs_delta": float(np.abs(self.delta).max(initial=0.0)),
            "ig_max_relative_delta": float(np.abs(self.relative_delta).max(initial=0.0)),
        }


def _targets(logits: torch.Tensor, target: int | torch.Tensor | None) -> torch.Tensor:
    """The classes to explain, by the one resolver every explainer uses (:func:`target_classes`)."""
    return target_classes(target, len(logits), logits)


def _result(attr: torch.Tensor, targets: torch.Tensor, delta: torch.Tensor, gap: torch.Tensor) -> IGResult:
    gap_np = gap.detach().numpy().astype(np.float64)
    delta_np = delta.detach().numpy().astype(np.float64)
    return IGResult(
        attr.detach().float().numpy(),
        targets.numpy(),
        delta_np,
        delta_np / np.maximum(np.abs(gap_np), 1e-8),
        gap_np,
    )


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    *,
    baseline: torch.Tensor | None = None,
    steps: int = IG_STEPS,
) -> IGResult:
    """IG of the target logits of ``model`` for ``inputs`` ``(B, ...)``; baseline zeros by default.

    Captum is called through :func:`qxai.explain.baselines.integrated_gradients`, the one IG
    wrapper the ``ig`` explainer uses too; this adds the logit gap ``F(x) − F(x')`` and the relative
    completeness gap. Runs in eval mode and gives the caller's mode back.

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> r = integrated_gradients(net, torch.rand(2, 1, 2, 2), target=1, steps=8)
    >>> r.attributions.shape, bool(abs(r.delta).max() < 1e-4)
    ((2, 1, 2, 2), True)
    """
    from qxai.explain.baselines import integrated_gradients as captum_integrated_gradients

    base = torch.zeros_like(inputs) if baseline is None else baseline.expand_as(inputs)
    with eval_mode(model), torch.no_grad():
        logits = model(inputs)
        targets = _targets(logits, target)
        gap = logits.gather(1, targets[:, None])[:, 0] - model(base).gather(1, targets[:, None])[:, 0]
    attr, delta = captum_integrated_gradients(model, inputs, targets, steps=steps, baseline=base)
    return _result(attr, targets, delta, gap)


def embedding_integrated_gradients(
    model: nn.Module,
    embedding: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    target: int | torch.Tensor | None = None,
    *,
    baseline_ids: torch.Tensor | None = None,
    steps: int = IG_STEPS,
) -> IGResult:
    """IG per token through ``embedding`` (e.g. ``bert.embeddings.word_embeddings``).

    ``model(input_ids, attention_mask)`` must return logits ``(B, K)``. The default baseline
    (:func:`pad_baseline` with ``pad_id=0`` and the first token kept) replaces every ordinary token
    by padding; pass ``baseline_ids`` built from the model's own special-token ids for a foreign
    model. Returns attributions ``(B, T)`` (summed over the embedding dimension).
    """
    from captum.attr import LayerIntegratedGradients

    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    if baseline_ids is None:
        baseline_ids = pad_baseline(input_ids, mask, pad_id=0, keep=input_ids[:, :1].unique().tolist())
    with eval_mode(model):
        with torch.no_grad():
            logits = model(input_ids, mask)
            targets = _targets(logits, target)
            base_logits = model(baseline_ids, mask)
            gap = logits.gather(1, targets[:, None])[:, 0] - base_logits.gather(1, targets[:, None])[:, 0]
        lig = LayerIntegratedGradients(model, embedding)
        attr, delta = lig.attribute(
            input_ids,
            baselines=baseline_ids,
            target=targets,
            additional_forward_args=(mask,),
            n_steps=steps,
            return_convergence_delta=True,
        )
    return _result(attr.sum(dim=-1), targets, delta, gap)


def pad_baseline(
    input_ids: torch.Tensor, mask: torch.Tensor, *, pad_id: int, keep: list[int] | tuple[int, ...] = ()
) -> torch.Tensor:
    """The IG baseline of token ids: every valid token replaced by ``pad_id`` except special tokens
    (``keep``: e.g. the model's CLS/SEP ids), which stay so the baseline is still a well-formed input.

    >>> pad_baseline(torch.tensor([[101, 7, 8, 102, 0]]), torch.tensor([[1, 1, 1, 1, 0]]),
    ...              pad_id=0, keep=(101, 102)).tolist()
    [[101, 0, 0, 102, 0]]
    """
    special = torch.isin(input_ids, torch.as_tensor(list(keep), dtype=input_ids.dtype))
    return torch.where(special | (mask == 0), input_ids, torch.full_like(input_ids, pad_id))
