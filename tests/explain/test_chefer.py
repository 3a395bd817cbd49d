"""Chefer, Gur & Wolf (2021, ICCV, eq. 5–6) against the definition: ``R = I``, then per block
``R ← R + mean_h[(∇A ⊙ A)^+] · R``, read at the class token's row over the patches — recomputed here
from attention maps and gradients captured by hand (an explicit forward pass of each model from its
weights, ``torch.autograd.grad`` on its attention probabilities), on a 2-block vit-tiny and on a
torchvision ViT (whose ``nn.MultiheadAttention`` the explainer differentiates another way)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from qxai.errors import QxaiError
from qxai.explain.chefer import CheferExplainer, relevance
from qxai.explain.registry import EXPLAINERS, get_explainer
from qxai.explain.testing import assert_explainer_contract, hook_snapshot
from qxai.models import build_model

EPS = float(torch.finfo(torch.float32).eps)


def by_definition(
    probs: list[np.ndarray], grads: list[np.ndarray], prefix: int, grid: tuple[int, int]
) -> np.ndarray:
    """``(B, h, w)``: R = I; R ← R + mean_h[(∇A ⊙ A)^+] R per block, first first; R[:, 0, prefix:]."""
    r = None
    for a, g in zip(probs, grads, strict=True):  # (B, heads, T, T)
        cam = np.maximum(g * a, 0.0).mean(axis=1)
        r = np.broadcast_to(np.eye(a.shape[-1]), cam.shape) if r is None else r
        r = r + cam @ r
    assert r is not None
    return r[:, 0, prefix:].reshape(len(r), *grid)


def close(got: np.ndarray, want: np.ndarray, ulps: float = 64) -> None:
    """Equal to float32 rounding: ``ulps`` units of eps of the largest magnitude."""
    np.testing.assert_allclose(got, want, rtol=0, atol=ulps * EPS * max(1.0, float(np.abs(want).max())))


def tiny_vit(depth: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return build_model("vit-tiny", in_channels=1, num_classes=3, image_size=(12, 16), patch_size=4,
                       dim=16, depth=depth, heads=2, stem="patch").eval()  # fmt: skip


def vit_tiny_by_hand(model: nn.Module, x: torch.Tensor, targets: torch.Tensor):
    """vit-tiny's forward from its weights (no hook), its probabilities kept in the graph; returns
    ``(probs, grads, logits)`` with ``grads = ∂ Σ_b y_b[t_b] / ∂A`` by autograd."""
    probs = []
    tokens = model.tokens(x)
    for block in model.blocks:
        h = block.norm1(tokens)
        b, t, c = h.shape
        heads = block.attn.num_heads
        q, k, v = block.attn.qkv(h).view(b, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (c // heads) ** -0.5, dim=-1)
        probs.append(a)
        out = block.attn.proj((a @ v).transpose(1, 2).reshape(b, t, c))
        tokens = tokens + out
        tokens = tokens + block.mlp(block.norm2(tokens))
    logits = model.head(model.norm(tokens)[:, 0])
    grads = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), probs)
    return [p.detach().double().numpy() for p in probs], [g.double().numpy() for g in grads], logits


def torchvision_vit() -> nn.Module:
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(16, 4, 2, 2, 16, 32, num_classes=3).eval()
    nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision's zero head has zero gradients
    return vit


def torchvision_by_hand(vit: nn.Module, x: torch.Tensor, targets: torch.Tensor):
    """torchvision's encoder step by step with an explicit softmax attention (its in/out
    projections), the probabilities kept in the graph."""
    probs = []
    tokens = vit._process_input(x)
    tokens = torch.cat([vit.class_token.expand(len(x), -1, -1), tokens], dim=1) + vit.encoder.pos_embedding
    for block in vit.encoder.layers:
        mha = block.self_attention
        h = block.ln_1(tokens)
        b, t, e = h.shape
        heads, d = mha.num_heads, e // mha.num_heads
        q, k, v = nn.functional.linear(h, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.view(b, t, heads, d).transpose(1, 2) for z in (q, k, v))
        a = torch.softmax(q @ k.transpose(-2, -1) / d**0.5, dim=-1)
        probs.append(a)
        out = mha.out_proj((a @ v).transpose(1, 2).reshape(b, t, e))
        tokens = tokens + out
        tokens = tokens + block.mlp(block.ln_2(tokens))
    logits = vit.heads(vit.encoder.ln(tokens)[:, 0])
    grads = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), probs)
    return [p.detach().double().numpy() for p in probs], [g.double().numpy() for g in grads], logits


def test_chefer_on_a_two_block_vit_tiny_is_the_papers_rule():
    model = tiny_vit(depth=2)
    x = torch.rand(3, 1, 12, 16, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 2, 1])
    probs, grads, _ = vit_tiny_by_hand(model, x, targets)
    assert all(np.abs(g).max() > 0 for g in grads)  # the check is not vacuous
    exp = CheferExplainer(model).explain(x, targets)
    close(exp.extras["relevance"], by_definition(probs, grads, prefix=1, grid=(3, 4)))
    assert exp.saliency.shape == (3, 12, 16) and exp.targets.tolist() == [0, 2, 1]


def test_chefer_on_a_torchvision_vit_differentiates_multihead_attention_exactly():
    vit = torchvision_vit()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([1, 2])
    probs, grads, logits = torchvision_by_hand(vit, x, targets)
    with torch.no_grad():
        torch.testing.assert_close(logits, vit(x))  # the hand-written forward is the model's
    before = hook_snapshot(vit)
    exp = get_explainer("chefer", vit, None).explain(x, targets)
    assert hook_snapshot(vit) == before
    close(exp.extras["relevance"], by_definition(probs, grads, prefix=1, grid=(4, 4)))


def test_the_relevance_rule_by_itself():
    a = torch.softmax(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    g = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    want = by_definition([a.double().numpy()] * 2, [g.double().numpy()] * 2, 0, (1, 5))
    got = relevance([a, a], [g, g])[:, 0, :].numpy().reshape(2, 1, 5)
    close(got, want, ulps=4)
    # no positive gradient × attention anywhere: the identity, nothing flows
    torch.testing.assert_close(relevance([a], [-a])[0], torch.eye(5, dtype=torch.float64))


@pytest.mark.parametrize("build", [tiny_vit, torchvision_vit], ids=["vit-tiny", "torchvision-vit"])
def test_chefer_keeps_the_explainer_contract(build):
    model = build()
    shape = (3, 1, 12, 16) if build is tiny_vit else (3, 3, 16, 16)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(4))
    assert_explainer_contract(get_explainer("chefer", model, None), model, x)


def test_batch_of_one_equals_batch_of_many_and_targets_matter():
    model = tiny_vit(depth=3)
    x = torch.rand(4, 1, 12, 16, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([2, 0, 1, 2])
    explainer = CheferExplainer(model)
    whole = explainer.explain(x, targets)
    for i in range(len(x)):
        one = explainer.explain(x[i : i + 1], int(targets[i]))
        close(one.extras["relevance"][0], whole.extras["relevance"][i])
        np.testing.assert_allclose(one.saliency[0], whole.saliency[i], rtol=0, atol=1e-5)
    # the same image for two classes: two maps (class-specific, unlike rollout)
    pair = explainer.explain(x[:1].expand(2, -1, -1, -1), [0, 1])
    assert np.abs(pair.extras["relevance"][0] - pair.extras["relevance"][1]).max() > 1e-4
    close(pair.extras["relevance"][1], explainer.explain(x[:1], 1).extras["relevance"][0])


@pytest.mark.parametrize("build", [tiny_vit, torchvision_vit], ids=["vit-tiny", "torchvision-vit"])
def test_hooks_are_removed_when_the_forward_raises(build):
    model = build()
    head = model.head if build is tiny_vit else model.heads

    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    handle = head.register_forward_hook(boom)
    before = hook_snapshot(model)
    shape = (2, 1, 12, 16) if build is tiny_vit else (2, 3, 16, 16)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            CheferExplainer(model).explain(torch.rand(*shape), target=0)
        assert hook_snapshot(model) == before
    finally:
        handle.remove()


def test_chefer_is_registered_and_a_cnn_is_a_one_line_error():
    spec = EXPLAINERS["chefer"]
    assert spec.requires == "attention" and not spec.needs_layer and not spec.runs_on_torchscript
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    with pytest.raises(QxaiError) as err:
        get_explainer("chefer", cnn, None)
    assert "no attention layer" in str(err.value) and "\n" not in str(err.value)
