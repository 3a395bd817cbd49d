"""A layer's output as feature maps ``(B, C, h, w)``, whatever its layout: convolutional maps, the
token sequence of a Vision Transformer, or a channels-last (Swin) stage.

The map methods (QA, Grad-CAM, Grad-CAM++, EigenCAM) read a layer as ``N`` maps of ``h × w``. A
convolution gives them directly; a Transformer gives ``(B, T, C)`` tokens — some leading tokens
that are not patches (the class token, a distillation token, register tokens) followed by the
``h·w`` patch tokens in row-major order — and a Swin stage gives ``(B, h, w, C)``.
:func:`detect_layout` finds which, from the output's shape, the input size and what the model
declares (its patch size, its class/distillation/register token parameters), and
:meth:`TokenLayout.to_maps` presents the output as ``(B, C, h, w)``: the ``C`` token channels become
the maps and the patch grid their pixels. :func:`layer_maps` is the one transform every map
explainer applies (through :func:`qxai.probe.capture_gradients`, and as pytorch-grad-cam's
``reshape_transform``).

A layout the shape does not decide is a one-line :class:`QxaiError` naming what was found and the
option that states it: ``--tokens N`` (leading non-patch tokens) and ``--grid H,W`` (the patch
grid), recorded on the model with :func:`state_layout`.

>>> layout = detect_layout((2, 50, 32), (28, 28), 2, patch=(4, 4))
>>> layout.describe()
'1 leading token + a 7×7 patch grid of 32 channels'
>>> layout.to_maps(torch.zeros(2, 50, 32)).shape
torch.Size([2, 32, 7, 7])
>>> detect_layout((2, 64, 7, 7), (28, 28), 2).kind
'channels_first'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.models.layers import resolve_layer

#: Leading non-patch tokens considered when the model does not declare them: class, distillation
#: and up to a few register tokens (DeiT: 2, ViT with 4 registers: 5).
MAX_PREFIX_TOKENS = 8
#: Parameter names (their last component) that hold extra tokens ``(1, n, C)``: torchvision,
#: timm and Hugging Face spellings.
TOKEN_PARAMETERS = ("class_token", "cls_token", "dist_token", "reg_token", "register_tokens", "registers")
#: The model attribute :func:`state_layout` writes.
STATED = "qxai_token_layout"
KINDS = ("channels_first", "channels_last", "tokens")

_OPTIONS = "state it with --tokens N (leading non-patch tokens) and/or --grid H,W (the patch grid)"


@dataclass(frozen=True)
class LayoutHint:
    """What a user states about a layer's layout: leading non-patch ``tokens``, the patch ``grid``."""

    tokens: int | None = None
    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and self.tokens < 0:
            raise QxaiError(f"--tokens must be ≥ 0, got {self.tokens}")
        if self.grid is not None and (len(self.grid) != 2 or min(self.grid) < 1):
            raise QxaiError(f"--grid must be two positive numbers H,W, got {self.grid}")

    @property
    def given(self) -> bool:
        return self.tokens is not None or self.grid is not None


def parse_grid(text: str | None) -> tuple[int, int] | None:
    """``"7,14"`` → ``(7, 14)``; None stays None.

    >>> parse_grid("7,14"), parse_grid(None)
    ((7, 14), None)
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, tuple | list):
        parts = [str(p) for p in text]
    else:
        parts = str(text).replace("x", ",").replace("×", ",").split(",")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise QxaiError(f"--grid expects two numbers H,W (e.g. 7,7), got '{text}'") from None
    return LayoutHint(grid=(h, w)).grid


def state_layout(model: nn.Module, tokens: int | None = None, grid: tuple[int, int] | None = None) -> None:
    """Record on ``model`` the layout a user states (``--tokens``, ``--grid``), which
    :func:`detect_layout` then follows; nothing given clears it."""
    hint = LayoutHint(tokens, None if grid is None else (int(grid[0]), int(grid[1])))
    if hint.given:
        object.__setattr__(model, STATED, hint)
    elif STATED in model.__dict__:
        object.__delattr__(model, STATED)


def stated_layout(model: nn.Module) -> LayoutHint:
    """The layout stated on ``model`` with :func:`state_layout` (or an empty hint)."""
    hint = model.__dict__.get(STATED)
    return hint if isinstance(hint, LayoutHint) else LayoutHint()


@dataclass(frozen=True)
class TokenLayout:
    """How a layer's output maps onto ``(B, C, h, w)`` feature maps.

    Attributes:
        kind: ``channels_first`` ``(B, C, h, w)`` (convolutions), ``channels_last`` ``(B, h, w, C)``
            (Swin stages) or ``tokens`` ``(B, T, C)`` (``(T, B, C)`` when ``seq_first``).
        grid: ``(h, w)`` the patch grid.
        channels: ``C``, the number of maps.
        prefix: leading non-patch tokens (``tokens`` only): ``T = prefix + h·w``.
        seq_first: the token axis comes before the batch axis (``nn.MultiheadAttention`` without
            ``batch_first``).
    """

    kind: str
    grid: tuple[int, int]
    channels: int
    prefix: int = 0
    seq_first: bool = False

    def to_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output → ``(B, C, h, w)`` maps (a differentiable view: gradients and
        activations go through the same transform)."""
        h, w = self.grid
        if self.kind == "channels_first":
            return x
        if self.kind == "channels_last":
            return x.permute(0, 3, 1, 2)
        seq = x.transpose(0, 1) if self.seq_first else x
        return seq[:, self.prefix :, :].reshape(seq.shape[0], h, w, seq.shape[2]).permute(0, 3, 1, 2)

    def from_maps(self, maps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_maps`: ``maps`` ``(B', C, h, w)`` back in the layer's layout, the
        non-patch tokens taken from ``like`` (the layer's own output, broadcast over ``B'``) — what
        an intervention on the maps (ablation, masking) writes back into the network."""
        if self.kind == "channels_first":
            return maps
        if self.kind == "channels_last":
            return maps.permute(0, 2, 3, 1)
        seq = like.transpose(0, 1) if self.seq_first else like
        patches = maps.flatten(2).transpose(1, 2)  # (B', h·w, C)
        head = seq[:, : self.prefix, :].expand(len(patches), -1, -1)
        out = torch.cat([head.to(patches), patches], dim=1)
        return out.transpose(0, 1) if self.seq_first else out

    def describe(self) -> str:
        """One phrase: what was found (used in messages and the explain record)."""
        h, w = self.grid
        if self.kind == "channels_first":
            return f"{self.channels} feature maps of {h}×{w}"
        if self.kind == "channels_last":
            return f"a channels-last {h}×{w} grid of {self.channels} channels"
        lead = f"{self.prefix} leading token{'s' if self.prefix != 1 else ''} + " if self.prefix else ""
        return f"{lead}a {h}×{w} patch grid of {self.channels} channels"


# --------------------------------------------------------------------------- what the model declares


def _pair(value: object) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value, value)
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def model_patch_size(model: nn.Module) -> tuple[int, int] | None:
    """The patch size a model declares (``model.patch_size`` as torchvision's ViT has it,
    ``patch_embed.patch_size`` as timm's, ``config.patch_size`` as Hugging Face's), else the
    stride of its patch embedding: the first Conv2d whose kernel equals its stride (> 1).

    >>> import torchvision
    >>> model_patch_size(torchvision.models.VisionTransformer(28, 4, 1, 2, 8, 8, num_classes=3))
    (4, 4)
    """
    for owner in (model, getattr(model, "patch_embed", None), getattr(model, "config", None)):
        found = _pair(getattr(owner, "patch_size", None)) if owner is not None else None
        if found:
            return found
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            k, s = _pair(module.kernel_size), _pair(module.stride)
            if k == s and s is not None and max(s) > 1:
                return s
    return None


def model_prefix_tokens(model: nn.Module) -> int | None:
    """The leading non-patch tokens a model declares: ``num_prefix_tokens`` (timm, our ViT), else
    the sum of its class/distillation/register token parameters ``(1, n, C)``; None when it
    declares none.

    >>> import torchvision
    >>> model_prefix_tokens(torchvision.models.VisionTransformer(28, 4, 1, 2, 8, 8, num_classes=3))
    1
    """
    declared = getattr(model, "num_prefix_tokens", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 0:
        return declared
    count, seen = 0, False
    for name, param in model.named_parameters():
        if name.rsplit(".", 1)[-1] in TOKEN_PARAMETERS and param.ndim == 3:
            count += int(param.shape[1])
            seen = True
    return count if seen else None


# --------------------------------------------------------------------------- detection


def patch_grids(input_size: tuple[int, int]) -> list[tuple[int, int]]:
    """Every grid a patch embedding or a stack of strided stages can give an ``H × W`` input: for
    each stride ``s``, ``(⌊H/s⌋, ⌊W/s⌋)`` and ``(⌈H/s⌉, ⌈W/s⌉)`` (non-square inputs give non-square
    grids), largest first.

    >>> patch_grids((8, 16))[:4]
    [(8, 16), (4, 8), (3, 6), (2, 5)]
    """
    h, w = input_size
    grids = {(h // s, w // s) for s in range(1, max(h, w) + 1)}
    grids |= {(math.ceil(h / s), math.ceil(w / s)) for s in range(1, max(h, w) + 1)}
    return sorted((g for g in grids if min(g) >= 1), key=lambda g: (-g[0] * g[1], -g[0]))


def _exact_grids(input_size: tuple[int, int]) -> set[tuple[int, int]]:
    """The grids of strides that divide both sides (a patch embedding's, no padding)."""
    h, w = input_size
    return {(h // s, w // s) for s in range(1, min(h, w) + 1) if h % s == 0 and w % s == 0}


def _token_candidates(
    tokens: int, grids: Iterable[tuple[int, int]], prefix: int | None, max_prefix: int
) -> list[tuple[int, tuple[int, int]]]:
    out = []
    for grid in grids:
        lead = tokens - grid[0] * grid[1]
        if 0 <= lead <= max_prefix and (prefix is None or lead == prefix):
            out.append((lead, grid))
    return out


def _channels_last_evidence(module: nn.Module | None, channels: int) -> bool:
    """A module that normalises or projects its last axis (LayerNorm, Linear): a Swin-style stage."""
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[-1]) == channels
    if isinstance(module, nn.Linear):
        return module.out_features == channels
    return False


def detect_layout(
    shape: tuple[int, ...] | torch.Size,
    input_size: tuple[int, int],
    batch: int,
    *,
    layer: str = "?",
    module: nn.Module | None = None,
    patch: tuple[int, int] | None = None,
    prefix: int | None = None,
    stated: LayoutHint | None = None,
) -> TokenLayout:
    """The layout of a layer output of ``shape`` for ``batch`` inputs of ``input_size`` ``(H, W)``.

    ``patch``/``prefix``: what the model declares (:func:`model_patch_size`,
    :func:`model_prefix_tokens`); ``stated``: what the user states (``--tokens``, ``--grid``), which
    wins and is checked against the shape. Rules:

    * 4-D ``(B, a, b, c)``: channels-last (Swin) when ``(a, b)`` is a patch grid of the input and
      ``(b, c)`` is not (or only ``(a, b)`` is one of a stride dividing the input), or when
      ``module`` normalises or projects the last axis (LayerNorm, Linear); channels-first (a
      convolution) otherwise.
    * 3-D ``(B, T, C)`` (or ``(T, B, C)``): ``T = prefix + h·w``, ``(h, w)`` a grid of the input
      (from the patch size when known; else the one reading whose stride divides the input, when
      only one does). More than one reading, or none, is a :class:`QxaiError`.
    * anything else (``(B, C)`` after pooling) is a :class:`QxaiError`.

    >>> detect_layout((2, 7, 7, 96), (28, 28), 2).describe()
    'a channels-last 7×7 grid of 96 channels'
    >>> detect_layout((2, 17, 8), (12, 12), 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qxai.errors.QxaiError: layer '?' gives 17 tokens of 8 channels for 12×12 inputs, which reads as ...
    """
    shape = tuple(int(s) for s in shape)
    stated = stated or LayoutHint()
    where = f"layer '{layer}'"
    size = f"{input_size[0]}×{input_size[1]}"
    grids = patch_grids(input_size)
    if len(shape) == 4:
        _, a, b, c = shape
        if stated.tokens:
            raise QxaiError(f"{where} gives feature maps {shape}, not tokens; drop --tokens")
        if stated.grid is not None:
            if (b, c) == stated.grid:
                return TokenLayout("channels_first", (b, c), a)
            if (a, b) == stated.grid:
                return TokenLayout("channels_last", (a, b), c)
            raise QxaiError(
                f"{where} gives {shape}, which has no {stated.grid[0]}×{stated.grid[1]} grid; give the "
                f"grid it has with --grid (e.g. --grid {b},{c})"
            )
        first, last = (b, c) in grids, (a, b) in grids
        if first and last:  # both fit: a stride that divides the input decides, else the module
            exact = _exact_grids(input_size)
            first = (b, c) in exact or (a, b) not in exact
        if last and (not first or _channels_last_evidence(module, c)):
            return TokenLayout("channels_last", (a, b), c)
        return TokenLayout("channels_first", (b, c), a)
    if len(shape) != 3:
        raise QxaiError(
            f"{where} outputs shape {shape}, not B×N×H×W feature maps nor a token grid; the map methods "
            "need a convolutional layer or a Transformer block before the pooling (pick one with --layer)"
        )
    if shape[0] == batch:
        seq_first, tokens, channels = False, shape[1], shape[2]
    elif shape[1] == batch:
        seq_first, tokens, channels = True, shape[0], shape[2]
    else:
        raise QxaiError(f"{where} gives {shape} for a batch of {batch}: no batch axis; pick another layer")
    found = f"{where} gives {tokens} tokens of {channels} channels for {size} inputs"
    lead = stated.tokens if stated.tokens is not None else prefix
    if stated.grid is not None:
        h, w = stated.grid
        extra = tokens - h * w
        if extra < 0 or (stated.tokens is not None and extra != stated.tokens):
            told = f"{stated.tokens} + " if stated.tokens is not None else ""
            raise QxaiError(
                f"{found}, not {told}{h}×{w} = {h * w}{' + leading' if stated.tokens is None else ''}; "
                f"{_OPTIONS} so that they add up"
            )
        if stated.tokens is None and (extra != prefix if prefix is not None else extra > MAX_PREFIX_TOKENS):
            declared = f" (the model declares {prefix})" if prefix is not None else ""
            raise QxaiError(
                f"{found}: a {h}×{w} grid leaves {extra} leading tokens{declared}; check --grid, or "
                f"add --tokens {extra} if that many are meant"
            )
        return TokenLayout("tokens", (h, w), channels, extra, seq_first)
    limit = tokens if stated.tokens is not None else MAX_PREFIX_TOKENS
    if patch is not None:
        grid = (input_size[0] // patch[0], input_size[1] // patch[1])
        by_patch = _token_candidates(tokens, [grid], lead, limit)
        if by_patch:
            return TokenLayout("tokens", by_patch[0][1], channels, by_patch[0][0], seq_first)
    candidates = _token_candidates(tokens, grids, lead, limit)
    exact = [c for c in candidates if c[1] in _exact_grids(input_size)]
    if len(candidates) > 1 and len(exact) == 1:  # one stride divides the input: a patch embedding's
        candidates = exact
    if len(candidates) == 1:
        extra, grid = candidates[0]
        return TokenLayout("tokens", grid, channels, extra, seq_first)
    if not candidates:
        known = f" with {lead} leading token(s)" if lead is not None else ""
        raise QxaiError(f"{found}: no patch grid of the input fits{known}; {_OPTIONS}")
    readings = " or ".join(f"{k} leading tokens + a {g[0]}×{g[1]} grid" for k, g in candidates[:3])
    raise QxaiError(f"{found}, which reads as {readings}; {_OPTIONS}")


def layer_layout(model: nn.Module, layer: str, output: torch.Tensor, inputs: torch.Tensor) -> TokenLayout:
    """:func:`detect_layout` for ``model``'s ``layer`` from its ``output`` on ``inputs`` ``(B, C, H, W)``,
    with what the model declares and what the user stated (:func:`state_layout`)."""
    return detect_layout(
        tuple(output.shape), (int(inputs.shape[2]), int(inputs.shape[3])), int(inputs.shape[0]),
        layer=layer, module=resolve_layer(model, layer), patch=model_patch_size(model),
        prefix=model_prefix_tokens(model), stated=stated_layout(model),
    )  # fmt: skip


def layer_maps(model: nn.Module, layer: str, inputs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform every map explainer applies to ``layer``'s output (and its gradient) on
    ``inputs`` ``(B, C, H, W)``: tensor in the layer's layout → ``(B, C, h, w)`` maps. The layout is
    detected on the first tensor it sees (:func:`layer_layout`) and kept for the ones that follow;
    usable as pytorch-grad-cam's ``reshape_transform``.

    >>> import torchvision
    >>> vit = torchvision.models.VisionTransformer(8, 4, 1, 2, 8, 8, num_classes=3)
    >>> f = layer_maps(vit, "encoder.layers.encoder_layer_0.ln_1", torch.zeros(2, 3, 8, 8))
    >>> f(torch.zeros(2, 5, 8)).shape, f.layout.describe()
    (torch.Size([2, 8, 2, 2]), '1 leading token + a 2×2 patch grid of 8 channels')
    """
    return _LayerMaps(model, layer, inputs)


class _LayerMaps:
    """The callable :func:`layer_maps` returns; ``layout`` is None until it has seen a tensor."""

    def __init__(self, model: nn.Module, layer: str, inputs: torch.Tensor) -> None:
        self.model, self.layer, self.inputs = model, layer, inputs
        self.layout: TokenLayout | None = None

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise QxaiError(
                f"layer '{self.layer}' outputs {type(tensor).__name__}, not a tensor; pick a layer whose "
                "output is one tensor (e.g. a block or its norm, not an attention module)"
            )
        if self.layout is None:
            self.layout = layer_layout(self.model, self.layer, tensor, self.inputs)
        return self.layout.to_maps(tensor)


__all__ = [
    "KINDS",
    "LayoutHint",
    "TokenLayout",
    "detect_layout",
    "layer_layout",
    "layer_maps",
    "model_patch_size",
    "model_prefix_tokens",
    "parse_grid",
    "patch_grids",
    "state_layout",
    "stated_layout",
]
