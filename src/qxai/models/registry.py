"""Architectures by name, with their hyper-parameters, as ``--arch NAME`` gives them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from qxai.errors import QxaiError, unknown_name
from qxai.models.architectures import QixaiCNN, ReducedCNN, ResNet18Reduced
from qxai.models.hybrid import HybridVQC
from qxai.models.planted import PlantedCNN
from qxai.models.vit import ViTTiny

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "reduced-cnn": ReducedCNN,
    "qixai-cnn": QixaiCNN,
    "resnet18-reduced": ResNet18Reduced,
    "hybrid-vqc": HybridVQC,
    "planted-cnn": PlantedCNN,
    "vit-tiny": ViTTiny,
}


def build_model(
    arch: str, *, in_channels: int, num_classes: int, image_size: tuple[int, int] | list[int], **hparams: Any
) -> nn.Module:
    """Build architecture ``arch`` for inputs ``(in_channels, *image_size)`` and ``num_classes``.

    >>> net = build_model("reduced-cnn", in_channels=1, num_classes=10, image_size=(16, 16), maps=8)
    >>> net.reduce[0].out_channels
    8
    """
    if arch not in ARCHITECTURES:
        raise unknown_name("architecture", arch, ARCHITECTURES)
    try:
        return ARCHITECTURES[arch](in_channels, num_classes, tuple(image_size), **hparams)
    except TypeError as err:
        raise QxaiError(f"bad hyper-parameters for '{arch}': {err}") from None
    except RuntimeError as err:  # e.g. an image too small for the pooling stages
        raise QxaiError(
            f"'{arch}' cannot take {in_channels}×{tuple(image_size)} images: {err}".splitlines()[0]
        ) from None


def _is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower()


def transformer_blocks(model: nn.Module) -> list[str]:
    """Names of the Transformer blocks of ``model``, in order: the children of its last container
    (``nn.Sequential`` / ``nn.ModuleList``) whose children are all of one class that contains an
    attention module (torchvision's ``encoder.layers``, timm's ``blocks``, Hugging Face's
    ``encoder.layer``, the last stage of a Swin); empty for a model without attention.

    >>> import torchvision
    >>> transformer_blocks(torchvision.models.VisionTransformer(8, 4, 2, 2, 8, 8, num_classes=3))
    ['encoder.layers.encoder_layer_0', 'encoder.layers.encoder_layer_1']
    """
    found: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential | nn.ModuleList):
            continue
        children = list(module.named_children())
        kinds = {type(child) for _, child in children}
        if children and len(kinds) == 1 and any(_is_attention(m) for m in children[0][1].modules()):
            found = [f"{name}.{child}" if name else child for child, _ in children]
    return found


def is_transformer(arch: str) -> bool:
    """Whether the built-in architecture ``arch`` has attention blocks (read off a small instance).

    >>> is_transformer("vit-tiny"), is_transformer("reduced-cnn")
    (True, False)
    """
    try:
        net = build_model(arch, in_channels=1, num_classes=2, image_size=(28, 28))
    except QxaiError:
        return False
    return bool(transformer_blocks(net))


def transformer_default_layer(model: nn.Module) -> str | None:
    """The layer to explain in a Transformer (None for other models): the input norm of the last
    block (``norm1`` / ``ln_1`` / ``layernorm_before``: its first LayerNorm), whose patch tokens
    every output token attends to — not the last block's output, whose patch tokens get zero
    gradient when the head reads only the class token — else the second-to-last block.

    >>> import torchvision
    >>> transformer_default_layer(torchvision.models.VisionTransformer(8, 4, 2, 2, 8, 8, num_classes=3))
    'encoder.layers.encoder_layer_1.ln_1'
    """
    blocks = transformer_blocks(model)
    if not blocks:
        return None
    last = dict(model.named_modules())[blocks[-1]]
    for name, module in last.named_modules():
        if isinstance(module, nn.LayerNorm):
            return f"{blocks[-1]}.{name}"
    return blocks[-2] if len(blocks) > 1 else None


def default_layer(model: nn.Module) -> str:
    """The layer explanations look at: the model's ``default_layer``; in a Transformer the last
    block's input norm (:func:`transformer_default_layer`, never the patch embedding); else its last
    Conv2d (in a TorchScript model too, where sub-modules keep their class only as ``original_name``).

    >>> import torch
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
    >>> default_layer(net), default_layer(torch.jit.script(net))
    ('2', '2')
    """
    name = getattr(model, "default_layer", None)
    if isinstance(name, str) and name:
        return name
    if not isinstance(model, torch.jit.ScriptModule):
        found = transformer_default_layer(model)
        if found is not None:
            return found
    convs = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) or getattr(m, "original_name", None) == "Conv2d"
    ]
    if not convs:
        raise QxaiError(f"{type(model).__name__} has no Conv2d layer; pass --layer NAME")
    return convs[-1]
