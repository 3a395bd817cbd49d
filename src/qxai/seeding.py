"""One seed reaches every random component.

Functions that use randomness take ``seed`` and derive generators from it here, so that the same
seed gives the same output.
"""

from __future__ import annotations

import random
from typing import Any

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


def per_item_uniform(seed: int | None, stream: str, ids: Any, size: int) -> np.ndarray:
    """``(len(ids), size)`` uniform draws, row ``i`` from its own generator ``(seed, stream, ids[i])``.

    A row depends on its item's id (e.g. the image's index in its data set), not on which other
    items share the array: a sharded run draws the same numbers as one pass over every item.

    >>> a = per_item_uniform(0, "ties", [7, 8], 3)
    >>> bool((per_item_uniform(0, "ties", [8], 3)[0] == a[1]).all())
    True
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    out = np.empty((len(ids), size))
    for i, item in enumerate(ids.tolist()):
        out[i] = numpy_rng(seed, stream, item).random(size)
    return out


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
