"""Attention rollout against the definition of Abnar & Zuidema (2020): the product over layers of
``0.5·mean_heads(A_l) + 0.5·I`` (rows re-normalised), read at the class token's row over the patches
— recomputed here by hand, layer by layer, on the built-in vit-tiny and on a torchvision ViT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from qxai.errors import QxaiError
from qxai.explain.registry import get_explainer
from qxai.explain.rollout import AttentionRolloutExplainer, rollout
from qxai.explain.testing import assert_explainer_contract, hook_snapshot
from qxai.models import build_model


def by_definition(attentions: list[np.ndarray], prefix: int, grid: tuple[int, int]) -> np.ndarray:
    """``(B, h, w)``: Â_l = rownorm(0.5 mean_h A_l + 0.5 I), R = Â_L ⋯ Â_1, R[0, prefix:]."""
    flow = None
    for a in attentions:  # (B, heads, T, T), first layer first
        step = 0.5 * a.mean(axis=1) + 0.5 * np.eye(a.shape[-1])
        step = step / step.sum(axis=-1, keepdims=True)
        flow = step if flow is None else step @ flow
    assert flow is not None
    return flow[:, 0, prefix:].reshape(len(flow), *grid)


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    return build_model("vit-tiny", in_channels=1, num_classes=3, image_size=(12, 16), patch_size=4,
                       dim=16, depth=3, heads=2).eval()  # fmt: skip


def vit_tiny_attentions(model: nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    """vit-tiny's attention probabilities, computed from its weights without any hook."""
    out = []
    with torch.no_grad():
        tokens = model.tokens(x)
        for block in model.blocks:
            h = block.norm1(tokens)
            b, t, c = h.shape
            heads = block.attn.num_heads
            q, k, _ = block.attn.qkv(h).view(b, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
            out.append(torch.softmax(q @ k.transpose(-2, -1) / (c // heads) ** 0.5, dim=-1).double().numpy())
            tokens = block(tokens)
    return out


def test_rollout_on_vit_tiny_is_the_papers_definition():
    model, x = tiny_vit(), torch.rand(3, 1, 12, 16, generator=torch.Generator().manual_seed(2))
    exp = AttentionRolloutExplainer(model).explain(x)
    want = by_definition(vit_tiny_attentions(model, x), prefix=1, grid=(3, 4))
    np.testing.assert_allclose(exp.extras["rollout"], want, rtol=1e-5, atol=1e-6)
    assert exp.saliency.shape == (3, 12, 16)
    # class-agnostic: the target changes nothing
    np.testing.assert_array_equal(exp.saliency, AttentionRolloutExplainer(model).explain(x, 2).saliency)


def test_rollout_on_a_torchvision_vit_reads_multihead_attention_weights():
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(16, 4, 2, 2, 16, 32, num_classes=3).eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    before = hook_snapshot(vit)
    exp = get_explainer("rollout", vit, None).explain(x)
    assert hook_snapshot(vit) == before
    attentions = []
    with torch.no_grad():  # the encoder, step by step, asking each attention for its weights
        tokens = vit._process_input(x)
        tokens = (
            torch.cat([vit.class_token.expand(len(x), -1, -1), tokens], dim=1) + vit.encoder.pos_embedding
        )
        for block in vit.encoder.layers:
            h = block.ln_1(tokens)
            _, weights = block.self_attention(h, h, h, need_weights=True, average_attn_weights=False)
            attentions.append(weights.double().numpy())
            tokens = block(tokens)
    np.testing.assert_allclose(
        exp.extras["rollout"], by_definition(attentions, 1, (4, 4)), rtol=1e-5, atol=1e-6
    )


def test_rollout_keeps_the_explainer_contract():
    model = tiny_vit()
    assert_explainer_contract(get_explainer("rollout", model, None), model, torch.rand(3, 1, 12, 16))


def test_rollout_rows_are_distributions_and_the_residual_weight_is_checked():
    a = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)
    flow = rollout([a, a, a])
    torch.testing.assert_close(flow.sum(dim=-1), torch.ones(2, 5, dtype=torch.float64))
    single = rollout([a], residual=1.0)  # no residual: the heads' mean attention itself
    torch.testing.assert_close(single, a.double().mean(dim=1))
    with pytest.raises(QxaiError, match="residual weight must lie in"):
        AttentionRolloutExplainer(tiny_vit(), residual=0.0)


def test_rollout_on_a_cnn_is_a_one_line_error():
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    with pytest.raises(QxaiError) as err:
        get_explainer("rollout", cnn, None)
    assert "no attention layer" in str(err.value) and "\n" not in str(err.value)
