"""Checkpoints: a state_dict plus a JSON config, written atomically, loaded with ``weights_only=True``.

The file is a ``torch.save`` of ``{"format": "qxai-checkpoint", "version": 1, "config": <JSON
text>, "state_dict": {...}}``: only strings, ints and tensors, so loading never unpickles code and a
hostile pickle is refused by torch's safe loader.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.io import atomic_path

FORMAT = "qxai-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded model (in eval mode) and the config it was built and trained with."""

    model: nn.Module
    config: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("class_names") or [str(i) for i in range(self.config["num_classes"])])


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``model``'s state_dict and the JSON-able ``config`` to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw payload, checked: our format, complete, and free of arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise QxaiError(f"checkpoint {path} does not exist; train one with `qxai train --out {path}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise QxaiError(
            f"{path} holds objects other than tensors and was refused (nothing was executed); "
            "only load checkpoints written by `qxai train`"
        ) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError… for a cut or foreign file
        raise QxaiError(
            f"{path} is not a readable checkpoint ({str(err).splitlines()[0][:80]}); it may be truncated"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise QxaiError(f"{path} is not a qxai checkpoint; train one with `qxai train`")
    if payload.get("version") != VERSION:
        raise QxaiError(f"{path} has checkpoint version {payload.get('version')}, this qxai reads {VERSION}")
    return payload


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Rebuild the model a checkpoint describes and load its weights; the model is in eval mode.

    >>> import tempfile
    >>> from qxai.models.registry import build_model
    >>> net = build_model("reduced-cnn", in_channels=1, num_classes=3, image_size=(8, 8), maps=4)
    >>> cfg = {"arch": "reduced-cnn", "hparams": {"maps": 4}, "in_channels": 1, "num_classes": 3,
    ...        "image_size": [8, 8]}
    >>> p = save_checkpoint(tempfile.mkdtemp() + "/m.pt", net, cfg)
    >>> load_checkpoint(p).config["arch"]
    'reduced-cnn'
    """
    payload = read_checkpoint_payload(path)
    config = json.loads(payload["config"])
    model = model_from_config(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise QxaiError(
            f"{path}: weights do not fit the '{config.get('arch')}' model ({str(err).splitlines()[0][:80]})"
        ) from None
    model.eval()
    return Checkpoint(model, config)


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Build the (untrained) model a checkpoint config describes."""
    from qxai.models.registry import build_model
    from qxai.models.user import load_user_model

    try:
        if config["arch"].startswith("file:"):
            return load_user_model(config["arch"][len("file:") :])
        return build_model(
            config["arch"],
            in_channels=config["in_channels"],
            num_classes=config["num_classes"],
            image_size=config["image_size"],
            **config.get("hparams", {}),
        )
    except KeyError as err:
        raise QxaiError(f"checkpoint config lacks {err}; it was not written by `qxai train`") from None
