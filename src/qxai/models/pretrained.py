"""ImageNet ResNet-18 weights, used only when present on this machine (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from qxai.errors import QxaiError

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's file name for IMAGENET1K_V1


def find_resnet18_weights() -> Path:
    """The local torchvision ResNet-18 weights file, or a QxaiError saying where to put it."""
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    path = hub / RESNET18_FILE
    if not path.is_file():
        raise QxaiError(
            f"ImageNet ResNet-18 weights not found at {path}; copy {RESNET18_FILE} there "
            "(or pass --weights PATH), or train without --pretrained"
        )
    return path


def load_resnet18_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a ResNet-18 state_dict safely (``weights_only=True``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise QxaiError(f"weights file {path} does not exist; check the path") from None
    except Exception as err:  # torch raises several types for foreign or hostile files
        raise QxaiError(
            f"{path} is not a loadable state_dict ({type(err).__name__}); use torchvision's file"
        ) from None
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise QxaiError(f"{path} is not a ResNet-18 state_dict; use torchvision's {RESNET18_FILE}")
    return state
