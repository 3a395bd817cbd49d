"""Models by name, checkpoints (safe to load) and training."""

from qxai.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from qxai.models.registry import ARCHITECTURES, build_model, default_layer
from qxai.models.train import TrainSettings, accuracy, predict, train_model

__all__ = [
    "ARCHITECTURES", "Checkpoint", "TrainSettings", "accuracy", "build_model", "default_layer",
    "load_checkpoint", "predict", "save_checkpoint", "train_model",
]  # fmt: skip
