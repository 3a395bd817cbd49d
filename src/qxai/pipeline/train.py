"""The ``train`` stage: build a model by name, train it, save a checkpoint with its config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from qxai.data import load_dataset
from qxai.models import TrainSettings, save_checkpoint, train_model
from qxai.models.checkpoint import model_from_config
from qxai.seeding import seed_everything


def train_config(
    dataset: str, arch: str, *, maps: int | None, epochs: int, seed: int, batch_size: int, lr: float,
    dataset_options: dict[str, Any] | None = None, hparams: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The JSON-able description of a training run (its hash names the demo's model cache)."""
    params = dict(hparams or {})
    if maps is not None and arch in ("reduced-cnn", "resnet18-reduced"):
        params["maps"] = maps
    return {
        "dataset": dataset, "dataset_options": dataset_options or {}, "arch": arch, "hparams": params,
        "epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr,
    }  # fmt: skip


def run_train(config: dict[str, Any], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Train the model ``config`` describes (see :func:`train_config`) and save it to ``out``.

    Returns the checkpoint config, which holds the accuracies.
    """
    split = load_dataset(config["dataset"], seed=config["seed"], **config.get("dataset_options", {}))
    c, h, w = split.train.image_shape
    seed_everything(config["seed"])  # the initial weights come from this seed
    # a built-in architecture by name, or a user's file.py:ClassName ("file:" prefix)
    model = model_from_config(
        {**config, "in_channels": c, "num_classes": split.train.num_classes, "image_size": [h, w]}
    )
    settings = TrainSettings(
        epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"], seed=config["seed"]
    )
    metrics = train_model(model, split, settings)
    saved = {
        **config,
        "in_channels": c, "num_classes": split.train.num_classes, "image_size": [h, w],
        "input_shape": [c, h, w], "class_names": split.class_names, "metrics": metrics,
        "torch": torch.__version__,
    }  # fmt: skip
    save_checkpoint(Path(out), model, saved)
    return saved
