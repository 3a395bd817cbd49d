"""Seeded synthetic sequence tasks for the LSTM and Transformer analyses (no download, made in ms).

* :func:`wave_task` — noisy sine waves ``(N, T, 1)``; the class is the frequency (2, 3, 5 or 8
  cycles per window), with random phase, amplitude and drift, so an LSTM must integrate over time.
* :func:`token_task` — token sequences ``(N, T)`` of variable length (padded, with a mask):
  ``[CLS]`` then random filler tokens, one of which is replaced by a motif token; the class is which
  motif appears. Ids: 0 ``[PAD]``, 1 ``[CLS]``, ``2 … 2+classes−1`` motifs, the rest filler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.seeding import numpy_rng

PAD, CLS = 0, 1


@dataclass
class SequenceDataset:
    """Sequences in memory: ``inputs`` ``(N, T, F)`` float or ``(N, T)`` int64 token ids, ``labels``
    ``(N,)``, optional ``mask`` ``(N, T)`` (1 = valid step, 0 = padding)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    mask: torch.Tensor | None = None
    name: str = ""

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, rows: np.ndarray | list[int]) -> SequenceDataset:
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        mask = None if self.mask is None else self.mask[rows_t]
        return SequenceDataset(
            self.inputs[rows_t], self.labels[rows_t], list(self.class_names), mask, self.name
        )


@dataclass
class SequenceSplit:
    train: SequenceDataset
    test: SequenceDataset


def _split(data: SequenceDataset, seed: int, test_fraction: float = 0.2) -> SequenceSplit:
    order = numpy_rng(seed, "sequence-split").permutation(len(data))
    n_test = max(1, round(len(data) * test_fraction))
    return SequenceSplit(data.subset(np.sort(order[n_test:])), data.subset(np.sort(order[:n_test])))


def wave_task(count: int = 1200, length: int = 48, noise: float = 0.5, seed: int = 0) -> SequenceSplit:
    """Classify the frequency of noisy sine waves; inputs ``(count, length, 1)``, 4 classes.

    >>> split = wave_task(count=40, length=16)
    >>> split.train.inputs.shape, split.train.num_classes
    (torch.Size([32, 16, 1]), 4)
    """
    if count < 8 or length < 8:
        raise QxaiError(f"wave task needs count ≥ 8 and length ≥ 8, got {count} and {length}")
    cycles = np.array([2, 3, 5, 8])
    rng = numpy_rng(seed, "wave-task")
    labels = rng.integers(len(cycles), size=count)
    t = np.arange(length) / length
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1))
    amp = rng.uniform(0.7, 1.3, size=(count, 1))
    drift = rng.normal(0, 0.5, size=(count, 1)) * t
    x = (
        amp * np.sin(2 * np.pi * cycles[labels][:, None] * t + phase)
        + drift
        + noise * rng.normal(size=(count, length))
    )
    data = SequenceDataset(
        torch.tensor(x[..., None], dtype=torch.float32),
        torch.tensor(labels),
        [f"{c} cycles" for c in cycles],
        name="waves",
    )
    return _split(data, seed)


def token_task(
    count: int = 1200, length: int = 16, vocab: int = 24, classes: int = 3, seed: int = 0
) -> SequenceSplit:
    """Classify which motif token a padded random token sequence contains; ids ``(count, length)``.

    >>> split = token_task(count=40)
    >>> split.train.inputs.shape, int(split.train.inputs[0, 0]), split.train.mask.dtype
    (torch.Size([32, 16]), 1, torch.int64)
    """
    if vocab < classes + 4 or length < 4:
        raise QxaiError(f"token task needs vocab ≥ classes + 4 and length ≥ 4, got {vocab}, {length}")
    rng = numpy_rng(seed, "token-task")
    labels = rng.integers(classes, size=count)
    lengths = rng.integers(length // 2, length + 1, size=count)
    ids = rng.integers(2 + classes, vocab, size=(count, length))
    ids[:, 0] = CLS
    where = 1 + (rng.random(count) * (lengths - 1)).astype(int)  # a position in 1 … len−1
    ids[np.arange(count), where] = 2 + labels
    valid = np.arange(length)[None, :] < lengths[:, None]
    ids[~valid] = PAD
    data = SequenceDataset(
        torch.tensor(ids),
        torch.tensor(labels),
        [f"motif {chr(65 + c)}" for c in range(classes)],
        torch.tensor(valid.astype(np.int64)),
        name="tokens",
    )
    return _split(data, seed)
