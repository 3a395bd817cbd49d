"""The ``train`` stage: build a model by name, train it, save a checkpoint with its config."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from qxai.data import load_dataset
from qxai.data.registry import canonical_spec
from qxai.errors import QxaiError
from qxai.io import check_output_file
from qxai.models import TrainSettings, save_checkpoint, train_model
from qxai.models.checkpoint import model_code_config, model_from_config
from qxai.models.user import check_model_output, load_user_model
from qxai.seeding import seed_everything


def train_config(
    dataset: str, arch: str, *, maps: int | None, epochs: int, seed: int, batch_size: int, lr: float,
    dataset_options: dict[str, Any] | None = None, hparams: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The JSON-able description of a training run (its hash names the demo's model cache)."""
    params = dict(hparams or {})
    if maps is not None and arch in ("reduced-cnn", "resnet18-reduced"):
        params["maps"] = maps
    if arch == "planted-cnn":  # the redundant variant's copies are in the model, the rest in the data
        params.setdefault("redundant", (dataset_options or {}).get("difficulty") == "redundant")
    return {
        "dataset": dataset, "dataset_options": dataset_options or {}, "arch": arch, "hparams": params,
        "epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr,
    }  # fmt: skip


def run_train(config: dict[str, Any], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Train the model ``config`` describes (see :func:`train_config`) and save it to ``out``.

    Everything a user can get wrong is checked before training: the settings, that ``out`` can be
    written, and, for a user's ``file:path.py:Class`` model, that its forward returns logits
    ``(B, classes)``. A user model's checkpoint records the file relative to ``out`` and its SHA-256
    (the trust rule, :func:`qxai.models.checkpoint.load_checkpoint`). Returns the checkpoint config,
    which holds the accuracies.
    """
    settings = TrainSettings(
        epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"], seed=config["seed"]
    )
    check_output_file(out)
    # a folder's path is recorded absolute: the checkpoint finds its data from any working folder
    config = {**config, "dataset": canonical_spec(config["dataset"])}
    split = load_dataset(config["dataset"], seed=config["seed"], **config.get("dataset_options", {}))
    c, h, w = split.train.image_shape
    shape = {"in_channels": c, "num_classes": split.train.num_classes, "image_size": [h, w]}
    seed_everything(config["seed"])  # the initial weights come from this seed
    code: dict[str, str] = {}
    if config["arch"].startswith("file:"):  # the user named this file for training: importing it is asked for
        spec = config["arch"][len("file:") :]
        model = load_user_model(spec)
        check_model_output(model, split.train.images[:2], split.train.num_classes, source=spec)
        code = model_code_config(spec, out)
    else:
        model = model_from_config({**config, **shape})
    metrics = train_model(model, split, settings)
    saved = {
        **config, **code, **shape,
        "input_shape": [c, h, w], "class_names": split.class_names, "metrics": metrics,
        "torch": torch.__version__,
    }  # fmt: skip
    if isinstance(getattr(model, "designated_maps", None), dict):  # the planted truth, readable as JSON
        saved["designated_maps"] = {str(c): list(ks) for c, ks in model.designated_maps.items()}
    save_checkpoint(Path(out), model, saved)
    return saved


def cached_training(config: dict[str, Any]) -> tuple[Path, dict[str, Any], bool, str]:
    """Train ``config`` (:func:`train_config`) once per qxai version: ``(checkpoint, saved config,
    reused, key)``, the checkpoint in the qxai cache under the hash of the config and the version.
    The one model cache: the demo's models and ``qxai evaluate --seeds``' retrained ones."""
    from qxai import __version__
    from qxai.io import cache_dir
    from qxai.models import load_checkpoint

    text = json.dumps({**config, "qxai": __version__}, sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    cached = cache_dir() / "models" / f"{key}.pt"
    reused = cached.is_file()
    if reused:
        try:
            saved = load_checkpoint(cached).config
        except QxaiError:  # a damaged cache entry is rebuilt, not trusted
            reused = False
    if not reused:
        saved = run_train(config, cached)
    return cached, saved, reused, key
