"""The built-in architectures.

Each model names the layer explanations look at (``default_layer``) and the layers the QIXAI
analyses read (``analysis_layers``), so that commands need no ``--layer`` for our own models.
"""

from __future__ import annotations

import torch
from torch import nn


def reduce_block(in_channels: int, maps: int) -> nn.Sequential:
    """The QA paper's ``reduce`` block: Conv3×3 → ``maps`` feature maps → ReLU → BatchNorm."""
    return nn.Sequential(nn.Conv2d(in_channels, maps, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(maps))


def _flat_size(trunk: nn.Module, in_channels: int, image_size: tuple[int, int]) -> int:
    with torch.no_grad():
        return int(trunk(torch.zeros(1, in_channels, *image_size)).numel())


class ReducedCNN(nn.Module):
    """The QA paper's architecture family for small images.

    conv trunk (two Conv3×3–ReLU–MaxPool stages, 32 and 64 channels) → ``reduce`` (Conv3×3 to
    ``maps`` maps → ReLU → BatchNorm) → flatten → Linear. Input ``(B, C, H, W)``, logits ``(B, K)``.

    >>> ReducedCNN(1, 10, (28, 28), maps=16)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    default_layer = "reduce"
    analysis_layers = ("trunk", "reduce")

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], maps: int = 16
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.reduce = reduce_block(64, maps)
        self.classifier = nn.Linear(
            _flat_size(nn.Sequential(self.trunk, self.reduce), in_channels, image_size), num_classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.reduce(self.trunk(x)), 1))


class QixaiCNN(nn.Module):
    """The QIXAI seed's small malaria CNN: ``conv1`` (32 maps) → pool → ``conv2`` (64 maps) → pool →
    ``dense`` (128) → classes. ``conv1``/``conv2``/``dense`` output post-ReLU activations, as the
    Keras layers of the paper do.

    >>> QixaiCNN(3, 2, (48, 48))(torch.zeros(1, 3, 48, 48)).shape
    torch.Size([1, 2])
    """

    default_layer = "conv2"
    analysis_layers = ("conv1", "conv2", "dense")

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], dense: int = 128
    ) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        trunk = nn.Sequential(self.conv1, self.pool1, self.conv2, self.pool2)
        self.dense = nn.Sequential(nn.Linear(_flat_size(trunk, in_channels, image_size), dense), nn.ReLU())
        self.dropout = nn.Dropout(0.25)
        self.classifier = nn.Linear(dense, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2(self.conv2(self.pool1(self.conv1(x))))
        return self.classifier(self.dropout(self.dense(torch.flatten(x, 1))))


class ResNet18Reduced(nn.Module):
    """torchvision ResNet-18 truncated after ``layer3``, then ``reduce`` and a Linear (the authors'
    STL-10 model). Inputs in ``[0, 1]`` are normalised with ImageNet statistics inside the model.

    >>> ResNet18Reduced(3, 10, (64, 64), maps=8)(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    """

    default_layer = "reduce"
    analysis_layers = ("trunk.layer1", "trunk.layer2", "trunk.layer3", "reduce")

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], maps: int = 16,
        weights_path: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        from torchvision.models import resnet18

        from qxai.models.pretrained import load_resnet18_weights

        net = resnet18(weights=None)
        if weights_path is not None:
            net.load_state_dict(load_resnet18_weights(weights_path))
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406][:in_channels]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225][:in_channels]).view(1, -1, 1, 1))
        self.trunk = nn.Sequential()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
            self.trunk.add_module(name, getattr(net, name))
        self.reduce = reduce_block(256, maps)
        self.classifier = nn.Linear(
            _flat_size(nn.Sequential(self.trunk, self.reduce), in_channels, image_size), num_classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return self.classifier(torch.flatten(self.reduce(self.trunk(x)), 1))
