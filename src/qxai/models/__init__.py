"""Models by name, checkpoints (safe to load) and training."""

from qxai.models.checkpoint import Checkpoint, allow_model_code, load_checkpoint, save_checkpoint
from qxai.models.registry import ARCHITECTURES, build_model, default_layer
from qxai.models.train import TrainSettings, accuracy, fit, predict, test_accuracy, train_model
from qxai.models.user import is_scriptmodule

__all__ = [
    "ARCHITECTURES", "Checkpoint", "TrainSettings", "accuracy", "allow_model_code", "build_model",
    "default_layer", "fit", "is_scriptmodule", "load_checkpoint", "predict", "save_checkpoint",
    "test_accuracy", "train_model",
]  # fmt: skip
