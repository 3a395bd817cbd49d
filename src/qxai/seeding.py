"""One seed reaches every random component.

Functions that use randomness take ``seed`` and derive generators from it here, so that the same
seed gives the same output.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and make torch choose deterministic kernels where it can."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def numpy_rng(seed: int | None, *stream: int | str) -> np.random.Generator:
    """A numpy Generator for ``seed``, optionally split into an independent named ``stream``.

    >>> bool(numpy_rng(0, "noise").integers(100) == numpy_rng(0, "noise").integers(100))
    True
    """
    words = [hash_str(s) if isinstance(s, str) else int(s) for s in stream]
    return np.random.default_rng([seed if seed is not None else 0, *words])


def torch_generator(seed: int) -> torch.Generator:
    """A CPU torch Generator seeded with ``seed``."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def hash_str(text: str) -> int:
    """A stable (process-independent) 32-bit hash of ``text``, unlike Python's ``hash``."""
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) % 2**32
    return h
