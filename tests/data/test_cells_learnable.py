"""The `cells` task is learnable to ≥ 95 % with the training defaults, but not trivial (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qixai-cnn", "reduced-cnn"])
def test_cells_learnable_with_defaults(arch: str, cache_dir: Path) -> None:
    from qxai.data import load_dataset
    from qxai.models import build_model
    from qxai.models.train import TrainSettings, train_model
    from qxai.seeding import seed_everything

    split = load_dataset("cells", seed=0)
    seed_everything(0)
    model = build_model(arch, in_channels=3, num_classes=2, image_size=(48, 48))
    result = train_model(model, split, TrainSettings(epochs=3))
    assert result["test_accuracy"] >= 0.95, result


@pytest.mark.slow
def test_cells_not_trivial_after_one_epoch(cache_dir: Path) -> None:
    # The distractors matter: one epoch of the default schedule does not solve the task.
    from qxai.data import load_dataset
    from qxai.models import build_model
    from qxai.models.train import TrainSettings, train_model
    from qxai.seeding import seed_everything

    split = load_dataset("cells", seed=0)
    seed_everything(0)
    model = build_model("qixai-cnn", in_channels=3, num_classes=2, image_size=(48, 48))
    result = train_model(model, split, TrainSettings(epochs=1))
    assert result["test_accuracy"] < 0.99, result
