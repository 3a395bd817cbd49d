"""QA over attention heads (qa-heads) and the head-ablation oracle.

(a) a model whose class signal is carried by two known heads: qa-heads selects exactly them on every
image and class, and ablating them destroys the logit while ablating the others does not; (b) the
explainer contract on vit-tiny and a torchvision VisionTransformer; (c) the QUBO energies, rebuilt
from the model by an independent forward pass and brute force over every selection, equal the
sampler's; (d) hooks released after success and after an exception; (e) the per-head recomputation
of nn.MultiheadAttention equals the module's own output and weights.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from qxai.errors import QxaiError
from qxai.evaluate.heads import head_ablation, head_causal_comparison, random_heads, top_heads
from qxai.explain.heads import (
    HeadHooks,
    QAHeadsExplainer,
    head_sites,
    merge_heads,
    mha_heads,
    mha_tolerance,
    select_sites,
)
from qxai.explain.quality import diagnose, selection_unit
from qxai.explain.registry import EXPLAINERS, get_explainer
from qxai.explain.testing import assert_explainer_contract, hook_snapshot
from qxai.models.vit import Attention, ViTTiny

EPS64 = float(torch.finfo(torch.float64).eps)


# --------------------------------------------------------------------------- (a) known heads


class KnownHeads(nn.Module):
    """Patch embedding → class token → one qxai Attention (4 heads of 2) with a residual → a linear
    head on the class token. The output projection is the identity, so head ``h`` writes residual
    dimensions ``2h, 2h+1``; the classifier reads heads 0 and 1 with weight 1 and heads 2 and 3 (whose
    values are large input noise) with weight ``1e-3``. Heads 0 and 1 have positive value biases in
    orthogonal directions, so every class logit grows with them and they are not redundant."""

    num_prefix_tokens = 1
    patch_size = 2
    signal = (0, 1)

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        dim = 8
        self.embed = nn.Conv2d(1, dim, 2, stride=2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.attn = Attention(dim, 4)
        self.head = nn.Linear(dim, classes)
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(self.embed.weight.shape, generator=gen))
            self.embed.bias.zero_()
            self.cls_token.copy_(torch.randn(self.cls_token.shape, generator=gen))
            qkv = self.attn.qkv
            qkv.weight.copy_(torch.randn(qkv.weight.shape, generator=gen))
            qkv.bias.zero_()
            v = slice(2 * dim, 3 * dim)  # value rows: head h owns rows 2h, 2h+1 of this block
            qkv.weight[v] *= 0.05
            qkv.weight[2 * dim + 4 : 3 * dim] *= 40.0  # heads 2, 3: values are large input noise
            qkv.bias[2 * dim + 0] = 2.0  # head 0 → direction (1, 0)
            qkv.bias[2 * dim + 3] = 2.0  # head 1 → direction (0, 1)
            self.attn.proj.weight.copy_(torch.eye(dim))
            self.attn.proj.bias.zero_()
            weight = torch.full((classes, dim), 1.0)
            weight[:, 4:] = 1e-3 * torch.randn(classes, 4, generator=gen)
            self.head.weight.copy_(weight)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        y = tokens + self.attn(tokens)
        return self.head(y[:, 0])


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_qa_heads_selects_exactly_the_heads_that_carry_the_class(images):
    model = KnownHeads().eval()
    explainer = QAHeadsExplainer(model)
    for c in range(3):
        exp = explainer.explain(images, target=c)
        assert exp.extras["selected"] == [list(KnownHeads.signal)] * len(images), c
        assert exp.extras["degenerate"] == [None] * len(images)
        w = exp.extras["head_weights"]
        assert (w[:, :2] > 0).all() and (np.abs(w[:, 2:]) < 0.05 * w[:, :2].min()).all()


def test_ablating_the_known_heads_destroys_the_logit_and_ablating_the_others_does_not(images):
    model = KnownHeads().double().eval()
    x = images.double()
    with torch.no_grad():
        z = model(x)[:, 0]
        tokens = model.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([model.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        written = model.attn(tokens)[:, 0]  # the identity projection: heads 0, 1 wrote dims 0..3
        carried = written[:, :4] @ model.head.weight[0, :4]
    b = len(x)
    signal = head_ablation(model, x, 0, [[0, 1]] * b)
    noise = head_ablation(model, x, 0, [[2, 3]] * b)
    np.testing.assert_allclose(signal, carried.numpy(), rtol=0, atol=1e3 * EPS64 * float(z.abs().max()))
    assert (signal > 0.9 * z.numpy()).all()  # the logit is destroyed: less than 10 % of it is left
    assert (signal > 1.0).all() and (np.abs(noise) < 0.01 * signal).all()
    # the logit is linear in each head's gate here, so a head's drop is its importance α exactly
    weights = QAHeadsExplainer(model).explain(x, 0).extras["head_weights"]
    single = np.stack([head_ablation(model, x, 0, [[h]] * b) for h in range(4)], axis=1)
    np.testing.assert_allclose(single, weights, rtol=0, atol=1e3 * EPS64 * float(np.abs(weights).max()))


def test_the_causal_comparison_reports_each_choice_and_a_verdict(images):
    model = KnownHeads().eval()
    x = torch.cat([images, images.flip(-1)])  # 24 images, enough for intervals
    out = head_causal_comparison(model, x, None, seed=0)
    assert out["compared"] == len(x) and out["mean_selected"] == 2.0
    assert out["same_as_gradient"] == 1.0  # top-2 by α are the two signal heads here
    assert out["paired"]["qa - gradient-weight"]["difference"] == 0.0
    assert out["paired"]["qa - gradient-weight"]["verdict"] == "tie"
    assert out["paired"]["qa - random"]["verdict"] == "qa"
    lo, hi = out["methods"]["qa"]["interval"]
    assert lo <= out["methods"]["qa"]["mean_drop"] <= hi
    import json

    json.dumps(out)  # JSON-able
    # the random heads of an image depend on its id, not on its batch
    assert random_heads(3, [5, 9], [2, 2], 8)[1] == random_heads(3, [9], [2], 8)[0]
    assert top_heads(np.array([[0.0, 3.0, 2.0, 1.0]]), [2]) == [[1, 2]]


# --------------------------------------------------------------------------- (b) the contract


def small_vit_tiny() -> nn.Module:
    torch.manual_seed(0)
    return ViTTiny(1, 3, (16, 16), dim=16, depth=2, heads=4)


def small_torchvision_vit() -> nn.Module:
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(28, 7, 2, 2, 16, 32, num_classes=3)
    vit.conv_proj = nn.Conv2d(1, 16, 7, stride=7)
    nn.init.normal_(vit.heads.head.weight)  # torchvision zeroes the head: every gradient would be 0
    return vit


@pytest.mark.parametrize("blocks", ["last", "all"])
def test_qa_heads_keeps_the_contract_on_vit_tiny(blocks):
    model = small_vit_tiny()
    explainer = get_explainer("qa-heads", model, None, seed=1, blocks=blocks)
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    assert_explainer_contract(explainer, model, x)
    exp = explainer.explain(x)
    assert exp.extras["head_weights"].shape == (4, 4 if blocks == "last" else 8)
    assert all(f is None for f in exp.extras["degenerate"])


def test_qa_heads_keeps_the_contract_on_a_torchvision_vit():
    model = small_torchvision_vit()
    explainer = get_explainer("qa-heads", model, None, blocks="all")
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    assert_explainer_contract(explainer, model, x)
    exp = explainer.explain(x)
    assert exp.extras["head_labels"][0] == "encoder.layers.encoder_layer_0.self_attention:h0"
    assert all(s for s in exp.extras["selected"])


def test_the_registry_entry_and_the_one_line_errors():
    spec = EXPLAINERS["qa-heads"]
    assert spec.requires == "attention" and dict(spec.options) == {"blocks": "last"}
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    for attempt in (lambda: get_explainer("qa-heads", cnn, None),
                    lambda: select_sites(small_vit_tiny(), "middle"),
                    lambda: QAHeadsExplainer(small_vit_tiny(), redundancy="cos")):  # fmt: skip
        with pytest.raises(QxaiError) as err:
            attempt()
        assert "\n" not in str(err.value)
    with pytest.raises(QxaiError, match=r"no attention heads qxai can reach.*nn\.MultiheadAttention"):
        get_explainer("qa-heads", cnn, None)


def test_zero_importance_and_an_empty_selection_are_reported_as_degenerate():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    vit = small_torchvision_vit()
    nn.init.zeros_(vit.heads.head.weight)  # the logits do not depend on the input: α = 0 everywhere
    exp = QAHeadsExplainer(vit, blocks="all").explain(x)
    assert exp.extras["degenerate"] == ["zero_gradient"] * 3 and exp.extras["selected"] == [[]] * 3
    assert not exp.saliency.any()
    empty = QAHeadsExplainer(small_vit_tiny(), penalty=(5.0, 0)).explain(torch.rand(3, 1, 16, 16))
    assert empty.extras["degenerate"] == ["empty_selection"] * 3
    # the one line a person reads speaks of heads and their blocks, not of maps and --layer
    for e in (exp, empty):
        (said,) = diagnose(e.extras["degenerate"], unit=selection_unit(e.extras))
        assert "head" in said["sentence"] and "map" not in said["sentence"]
        assert "--layer" not in said["sentence"]
    assert "qa-heads.blocks" in diagnose(exp.extras["degenerate"], unit="head")[0]["sentence"]


# --------------------------------------------------------------------------- (c) energies by brute force


def independent_forward(model: ViTTiny, x: torch.Tensor, gates: torch.Tensor) -> tuple[torch.Tensor, list]:
    """vit-tiny's forward written out from its weights, each head's output scaled by ``gates[l, h]``;
    returns the logits and each block's per-head outputs (no hooks, no qxai code)."""
    t = model.tokens(x)
    outs = []
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        h = block.norm1(t)
        b, n, c = h.shape
        qkv = h @ attn.qkv.weight.T + attn.qkv.bias
        q, k, v = qkv.view(b, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        probs = torch.softmax(q @ k.transpose(-2, -1) / (c // attn.num_heads) ** 0.5, dim=-1)
        o = probs @ v
        outs.append(o)
        o = o * gates[layer][None, :, None, None]
        t = t + (o.transpose(1, 2).reshape(b, n, c) @ attn.proj.weight.T + attn.proj.bias)
        t = t + block.mlp(block.norm2(t))
    return model.head(model.norm(t)[:, 0]), outs


@pytest.mark.parametrize("solver", ["batch-sa", "exact"])
def test_sampler_energies_equal_a_brute_force_rebuilt_from_the_model(solver):
    torch.manual_seed(3)
    model = ViTTiny(1, 3, (8, 8), patch_size=2, dim=8, depth=2, heads=2).double().eval()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    beta = 0.7
    exp = QAHeadsExplainer(model, blocks="all", solver=solver, beta=beta).explain(x, target=1)
    for i in range(len(x)):
        gates = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
        logits, outs = independent_forward(model, x[i : i + 1], gates)
        (grad,) = torch.autograd.grad(logits[0, 1], gates)
        alpha = grad.flatten().numpy()
        flat = torch.cat([o[0].reshape(2, -1) for o in outs]).detach().numpy()  # (4, T·d_head)
        norms = np.linalg.norm(flat, axis=1)
        kept = np.flatnonzero((alpha > 0) & (norms > 1e-6 * norms.max()))
        a = alpha[kept] / alpha[kept].max()
        unit = flat[kept] / norms[kept, None]
        cos = np.abs(unit @ unit.T)
        energies = {}
        for bits in itertools.product([0, 1], repeat=len(kept)):
            s = np.array(bits, dtype=float)
            quad = sum(cos[p, q] * s[p] * s[q] for p in range(len(s)) for q in range(p + 1, len(s)))
            energies[tuple(int(k) for k, bit in zip(kept, bits, strict=True) if bit)] = (
                1 - beta
            ) * quad - beta * float(a @ s)
        tol = 1e4 * EPS64  # float64 throughout; |E| ≤ 1 + |cos| terms
        np.testing.assert_allclose(
            exp.extras["head_weights"][i], alpha, rtol=0, atol=1e3 * EPS64 * np.abs(alpha).max()
        )
        chosen = tuple(exp.extras["selected"][i])
        assert abs(exp.extras["energy"][i] - energies[chosen]) <= tol, (i, chosen)
        assert abs(exp.extras["ground_energy"][i] - min(energies.values())) <= tol
        assert abs(energies[chosen] - min(energies.values())) <= tol  # the optimum at d ≤ 4


# --------------------------------------------------------------------------- (d) hooks


@pytest.mark.parametrize("build", [small_vit_tiny, small_torchvision_vit])
def test_hooks_are_released_after_success_and_after_an_exception(build):
    model = build().eval()
    size = 16 if isinstance(model, ViTTiny) else 28
    x = torch.rand(2, 1, size, size)
    before = hook_snapshot(model)
    explainer = QAHeadsExplainer(model, blocks="all")
    explainer.explain(x)
    assert hook_snapshot(model) == before
    with pytest.raises(QxaiError, match="not a class"):
        explainer.explain(x, target=99)  # fails inside the hooks' context, after the forward pass
    assert hook_snapshot(model) == before
    head = model.head if isinstance(model, ViTTiny) else model.heads

    def broken(*_args: object) -> torch.Tensor:
        raise RuntimeError("boom")

    head.forward = broken  # fails in the middle of the forward pass
    with pytest.raises(RuntimeError, match="boom"):
        explainer.explain(x)
    with pytest.raises(RuntimeError, match="boom"):
        head_ablation(model, x, 0, [[0], [1]], blocks="all")
    assert hook_snapshot(model) == before


# --------------------------------------------------------------------------- (e) nn.MultiheadAttention


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_head_recomputation_equals_multihead_attention(batch_first, dtype):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(24, 4, batch_first=batch_first).to(dtype).eval()
    x = torch.randn(3, 10, 24, dtype=dtype) * 2
    if not batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        own, weights = mha(x, x, x, need_weights=True, average_attn_weights=False)
        heads, probs = mha_heads(mha, x, x, x)
        rebuilt = merge_heads(mha, heads)
    tol = mha_tolerance(mha, own)
    assert tol == 8 * 24 * torch.finfo(dtype).eps * max(1.0, float(own.abs().max()))
    assert heads.shape == (3, 4, 10, 6)
    assert float((rebuilt - own).abs().max()) <= tol
    assert float((probs - weights).abs().max()) <= 8 * 10 * torch.finfo(dtype).eps


def test_gated_torchvision_vit_equals_the_model_and_zero_gates_remove_the_heads():
    model = small_torchvision_vit().eval()
    x = torch.rand(3, 1, 28, 28)
    sites = head_sites(model)
    assert [s.kind for s in sites] == ["mha", "mha"]
    with torch.no_grad():
        plain = model(x)
        with HeadHooks(sites) as hooks:  # the output rebuilt from the heads, checked inside
            rebuilt = model(x)
        ones = [torch.ones(3, 2), torch.ones(3, 2)]
        with HeadHooks(sites, ones):
            gated = model(x)
        zero = [torch.ones(3, 2), torch.zeros(3, 2)]
        with HeadHooks(sites, zero):
            ablated = model(x)
    eps = torch.finfo(torch.float32).eps
    scale = max(1.0, float(plain.abs().max()))
    tol = 8 * 16 * eps * scale * len(sites)
    assert float((rebuilt - plain).abs().max()) <= tol and float((gated - plain).abs().max()) <= tol
    assert hooks.outputs[0].shape == (3, 2, 17, 8)
    # zeroing every head of the last block leaves that block's residual: the model with that
    # attention's output replaced by its out_proj bias
    last = model.encoder.layers[-1].self_attention
    handle = last.register_forward_hook(
        lambda m, a, o: (m.out_proj.bias.expand_as(o[0]).clone(), None)
    )  # fmt: skip
    try:
        with torch.no_grad():
            by_hand = model(x)
    finally:
        handle.remove()
    assert float((ablated - by_hand).abs().max()) <= tol


def test_a_module_the_recomputation_does_not_reproduce_is_refused():
    model = small_torchvision_vit().eval()
    mha = model.encoder.layers[-1].self_attention
    handle = mha.register_forward_hook(lambda m, a, o: (o[0] * 1.01, o[1]))  # a non-standard module
    try:
        with pytest.raises(QxaiError, match=r"not a standard nn\.MultiheadAttention"):
            QAHeadsExplainer(model).explain(torch.rand(2, 1, 28, 28))
    finally:
        handle.remove()
