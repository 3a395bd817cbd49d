"""Architectures by name, with their hyper-parameters, as ``--arch NAME`` gives them."""

from __future__ import annotations

from typing import Any

from torch import nn

from qxai.errors import QxaiError, unknown_name
from qxai.models.architectures import QixaiCNN, ReducedCNN, ResNet18Reduced
from qxai.models.hybrid import HybridVQC
from qxai.models.planted import PlantedCNN

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "reduced-cnn": ReducedCNN,
    "qixai-cnn": QixaiCNN,
    "resnet18-reduced": ResNet18Reduced,
    "hybrid-vqc": HybridVQC,
    "planted-cnn": PlantedCNN,
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


def default_layer(model: nn.Module) -> str:
    """The layer explanations look at: the model's ``default_layer``, or its last Conv2d (in a
    TorchScript model too, where sub-modules keep their class only as ``original_name``).

    >>> import torch
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
    >>> default_layer(net), default_layer(torch.jit.script(net))
    ('2', '2')
    """
    name = getattr(model, "default_layer", None)
    if isinstance(name, str) and name:
        return name
    convs = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) or getattr(m, "original_name", None) == "Conv2d"
    ]
    if not convs:
        raise QxaiError(f"{type(model).__name__} has no Conv2d layer; pass --layer NAME")
    return convs[-1]
