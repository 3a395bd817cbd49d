"""``vit-tiny``: a small Vision Transformer that trains on the offline data sets in minutes on 2 cores.

Patch embedding (``stem="conv"``, the default: stride-2 3×3 convolutions then a projection, the
"early convolutions" stem of Xiao et al. 2021, which small data sets train much faster with; or
``stem="patch"``: one ``p × p`` convolution of stride ``p``) → a class token and learned position
embeddings → ``depth`` pre-norm blocks (``x + attn(norm1(x))``, ``x + mlp(norm2(x))``) → LayerNorm →
a linear head on the class token.

Every block's attention is explicit, so that the probe can read it: ``blocks.i.attn.softmax`` outputs
the attention probabilities ``(B, heads, T, T)`` and ``blocks.i.attn.heads`` the per-head outputs
``(B, heads, T, d_head)`` before they are merged. The model declares ``patch_size`` and
``num_prefix_tokens = 1`` (the class token), which :mod:`qxai.probe.tokens` reads, and its
``default_layer`` is the last block's ``norm1``: the head reads only the class token, so the patch
tokens at the last block's *output* get zero gradient, while at its input norm every patch token
feeds the class token through the last attention.

>>> net = ViTTiny(1, 10, (28, 28))
>>> net(torch.zeros(2, 1, 28, 28)).shape, net.default_layer, net.grid
(torch.Size([2, 10]), 'blocks.3.norm1', (7, 7))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qxai.errors import QxaiError

STEMS = ("patch", "conv")


def auto_patch_size(image_size: tuple[int, int]) -> int:
    """The largest patch ``p ≤ 8`` dividing both sides that leaves a grid of at least 7 on the
    shorter side, else at least 4, else 1: 28 → 4 (7×7), 8 → 1 (8×8), 96 → 8 (12×12).

    >>> auto_patch_size((28, 28)), auto_patch_size((8, 8)), auto_patch_size((96, 96))
    (4, 1, 8)
    """
    h, w = image_size
    for cells in (7, 4):
        fits = [p for p in range(1, 9) if h % p == 0 and w % p == 0 and min(h, w) // p >= cells]
        if fits:
            return max(fits)
    return 1


def conv_stem(in_channels: int, dim: int, patch: int) -> nn.Sequential:
    """The "early convolutions" stem: 3×3 convolutions (stride 2 for each factor 2 of ``patch``, at
    most two; at least one convolution) with BatchNorm and ReLU, then a ``patch / 2^k`` projection
    to ``dim`` channels: ``(B, C, H, W)`` → ``(B, dim, H/p, W/p)``.

    >>> conv_stem(1, 16, 4)(torch.zeros(1, 1, 28, 28)).shape
    torch.Size([1, 16, 7, 7])
    """
    halvings = 0
    while halvings < 2 and patch % (2 ** (halvings + 1)) == 0:
        halvings += 1
    layers: list[nn.Module] = []
    channels, width = in_channels, max(8, dim // 2)
    for i in range(max(halvings, 1)):
        out = width if i < max(halvings, 1) - 1 else dim
        layers += [nn.Conv2d(channels, out, 3, stride=2 if i < halvings else 1, padding=1),
                   nn.BatchNorm2d(out), nn.ReLU()]  # fmt: skip
        channels = out
    rest = patch // 2**halvings
    layers.append(nn.Conv2d(dim, dim, rest, stride=rest))
    return nn.Sequential(*layers)


class Attention(nn.Module):
    """Multi-head self-attention with its probabilities and per-head outputs on named modules.

    ``(B, T, C)`` → ``(B, T, C)``; ``softmax`` gives ``(B, heads, T, T)``, ``heads`` ``(B, heads,
    T, C / heads)`` (identity modules for hooks: attention rollout, head selection).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise QxaiError(
                f"vit-tiny: dim {dim} is not divisible by heads {heads}; pick e.g. dim=64, heads=4"
            )
        self.num_heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.heads = nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        probs = self.softmax((q @ k.transpose(-2, -1)) * self.scale)  # (B, heads, T, T)
        out = self.heads(probs @ v)  # (B, heads, T, d_head)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm Transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``; ``(B, T, C)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTTiny(nn.Module):
    """A small ViT for ``(B, C, H, W)`` images → logits ``(B, K)`` (see the module docstring).

    Args:
        in_channels, num_classes, image_size: the data's.
        patch_size: pixels per patch side (None: :func:`auto_patch_size`); must divide both sides.
        dim: token channels; depth: blocks; heads: attention heads per block; mlp_ratio: MLP width.
        stem: ``"patch"`` (one ``p × p`` convolution) or ``"conv"`` (:func:`conv_stem`).
        dropout: in the MLPs.
    """

    num_prefix_tokens = 1
    analysis_layers: tuple[str, ...] = ()

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], patch_size: int | None = None,
        dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, stem: str = "conv",
        dropout: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__()
        h, w = image_size
        p = auto_patch_size((h, w)) if patch_size is None else int(patch_size)
        if p < 1 or h % p or w % p:
            raise QxaiError(f"vit-tiny: patch size {p} does not divide the {h}×{w} images; pick a divisor")
        if stem not in STEMS:
            raise QxaiError(f"vit-tiny: stem must be one of {', '.join(STEMS)}, got '{stem}'")
        if depth < 1:
            raise QxaiError(f"vit-tiny: depth must be at least 1, got {depth}")
        self.patch_size = p
        self.grid = (h // p, w // p)
        self.patch_embed: nn.Module = (
            conv_stem(in_channels, dim, p) if stem == "conv" else nn.Conv2d(in_channels, dim, p, stride=p)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid[0] * self.grid[1], dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.default_layer = f"blocks.{depth - 1}.norm1"
        self.analysis_layers = tuple(f"blocks.{i}" for i in range(depth))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → the ``(B, 1 + h·w, dim)`` tokens entering the first block."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, h·w, dim), row-major
        cls = self.cls_token.expand(len(x), -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.tokens(x)))[:, 0])


def attention_layers(model: nn.Module) -> list[str]:
    """Names of the modules whose output is a block's attention probabilities ``(B, heads, T, T)``
    (``blocks.i.attn.softmax`` in :class:`ViTTiny`), in order.

    >>> attention_layers(ViTTiny(1, 2, (8, 8), depth=2))
    ['blocks.0.attn.softmax', 'blocks.1.attn.softmax']
    """
    return [name for name, m in model.named_modules() if isinstance(m, nn.Softmax) and ".attn." in f".{name}"]


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (for the docs' size line)."""
    return int(sum(math.prod(p.shape) for p in model.parameters() if p.requires_grad))


__all__ = ["Attention", "Block", "ViTTiny", "attention_layers", "auto_patch_size", "parameter_count"]
