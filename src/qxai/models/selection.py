"""Which images a stage explains: correctly classified ones per class, from a model with finite logits."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from qxai.data import ImageDataset
from qxai.errors import QxaiError
from qxai.models.modes import eval_mode
from qxai.models.train import predict
from qxai.seeding import numpy_rng


def select_correct_per_class(
    model: nn.Module, data: ImageDataset, per_class: int, seed: int = 0
) -> ImageDataset:
    """Up to ``per_class`` correctly classified images of each class, drawn with ``seed``.

    The authors explain 20 correctly classified test images per class; classes with fewer correct
    images contribute what they have. Returned in class order.
    """
    if per_class < 1:
        raise QxaiError(f"--per-class must be at least 1, got {per_class}")
    predicted = predict(model, data.images).numpy()
    labels = data.labels.numpy()
    rng = numpy_rng(seed, "select")
    rows: list[int] = []
    for c in range(data.num_classes):
        correct = np.flatnonzero((labels == c) & (predicted == c))
        rows.extend(sorted(rng.permutation(correct)[:per_class].tolist()))
    if not rows:
        raise QxaiError("the model classifies no test image correctly; train it longer first")
    return data.subset(rows)


def check_finite_outputs(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Refuse a model whose logits on ``images`` are NaN or infinite, before any explainer runs
    (every map and metric computed from such outputs would be meaningless zeros); returns the
    predicted classes ``(N,)`` of the same forward passes."""
    predicted = []
    with eval_mode(model), torch.no_grad():
        for s in range(0, len(images), batch_size):
            logits = model(images[s : s + batch_size])
            if not torch.isfinite(logits).all():
                raise QxaiError(
                    "the model outputs NaN or infinite logits on the selected images; check its weights "
                    "and the input normalisation before explaining it"
                )
            predicted.append(logits.argmax(1))
    return torch.cat(predicted) if predicted else torch.empty(0, dtype=torch.long)
