"""Training: a seeded, deterministic loop with a progress bar, reporting train and test accuracy."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from qxai.data.base import DatasetSplit, ImageDataset
from qxai.progress import make_progress
from qxai.seeding import seed_everything, torch_generator


@dataclass
class TrainSettings:
    """Defaults reach ≥ 97 % on ``mnist`` and ≥ 95 % on ``cells`` in a few minutes on 2 cores."""

    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


@torch.no_grad()
def accuracy(model: nn.Module, data: ImageDataset, batch_size: int = 256) -> float:
    """Fraction of ``data`` that ``model`` classifies correctly (eval mode)."""
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        logits = model(data.images[start : start + batch_size])
        correct += int((logits.argmax(1) == data.labels[start : start + batch_size]).sum())
    return correct / max(1, len(data))


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes ``(N,)`` for ``images`` ``(N, C, H, W)``."""
    model.eval()
    return torch.cat([model(images[s : s + batch_size]).argmax(1) for s in range(0, len(images), batch_size)])


def train_model(
    model: nn.Module, split: DatasetSplit, settings: TrainSettings | None = None
) -> dict[str, float]:
    """Train ``model`` on ``split.train`` with Adam and a one-cycle schedule; return accuracies.

    Deterministic for a seed: the seed fixes the initial weights' RNG state (when the model is built
    after :func:`qxai.seeding.seed_everything`), the shuffling and dropout.
    """
    s = settings or TrainSettings()
    seed_everything(s.seed)
    train = split.train
    loader = torch.utils.data.DataLoader(
        train, batch_size=s.batch_size, shuffle=True, generator=torch_generator(s.seed), drop_last=False
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=s.lr, total_steps=max(1, s.epochs * len(loader)), pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    with make_progress() as bar:
        task = bar.add_task("training", total=s.epochs * len(loader))
        for epoch in range(s.epochs):
            model.train()
            for images, labels in loader:
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(model(images), labels)
                loss.backward()
                optimiser.step()
                schedule.step()
                bar.update(
                    task, advance=1, description=f"epoch {epoch + 1}/{s.epochs} loss {loss.item():.3f}"
                )
    model.eval()
    return {
        "train_accuracy": accuracy(model, train),
        "test_accuracy": accuracy(model, split.test),
        "train_seconds": time.perf_counter() - start,
    }
