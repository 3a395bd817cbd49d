"""A user's own model file, as `--model-file path.py:ClassName` takes it."""

from __future__ import annotations

from pathlib import Path

import pytest

USER_MODEL = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.head = torch.nn.Linear(6, 10)

    def forward(self, x):
        return self.head(torch.relu(self.features(x)).mean((2, 3)))
"""


@pytest.fixture
def user_model_file(tmp_path: Path) -> Path:
    """``net.py`` with a class ``Net``: one conv layer ``features`` and a linear head, 10 classes."""
    path = tmp_path / "net.py"
    path.write_text(USER_MODEL)
    return path
