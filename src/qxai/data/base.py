"""The uniform data interface: float image tensors, integer labels, class names, optional masks.

Every data set, whatever its source, becomes an :class:`ImageDataset` split into train and test by
a seeded, stratified split (:func:`stratified_split`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.seeding import numpy_rng


@dataclass
class ImageDataset(torch.utils.data.Dataset):
    """Images in memory.

    Attributes:
        images: ``(N, C, H, W)`` float32 in ``[0, 1]``.
        labels: ``(N,)`` int64 class indices.
        class_names: one name per class, ``len == num_classes``.
        masks: optional ``(N, H, W)`` bool ground-truth masks of the evidence (e.g. parasites).
        indices: ``(N,)`` int64 index of each image in the source data set (stable across splits).
        name: the data set's name as given on the command line.

    >>> ds = ImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), ["a", "b"])
    >>> len(ds), ds.num_classes, ds.image_shape
    (2, 2, (1, 4, 4))
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    masks: torch.Tensor | None = None
    indices: torch.Tensor = field(default=None)  # type: ignore[assignment]
    name: str = ""
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise QxaiError(f"images must be N×C×H×W, got shape {tuple(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise QxaiError("images and labels differ in length")
        if self.indices is None:
            self.indices = torch.arange(len(self.images))
        self.images = self.images.float()
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, rows: np.ndarray | torch.Tensor | list[int]) -> ImageDataset:
        """The images at positions ``rows`` (positions in this data set, not source indices)."""
        rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        return ImageDataset(
            self.images[rows],
            self.labels[rows],
            list(self.class_names),
            None if self.masks is None else self.masks[rows],
            self.indices[rows],
            self.name,
        )


@dataclass
class DatasetSplit:
    """A seeded train/test split of one data set."""

    train: ImageDataset
    test: ImageDataset

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names


def stratified_split(data: ImageDataset, test_fraction: float, seed: int) -> DatasetSplit:
    """Split ``data`` into train and test with the same class proportions, deterministically."""
    if not 0.0 < test_fraction < 1.0:
        raise QxaiError(f"test fraction must be in (0, 1), got {test_fraction}")
    rng = numpy_rng(seed, "split")
    labels = data.labels.numpy()
    test_rows: list[int] = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rng.shuffle(rows)
        n_test = max(1, round(len(rows) * test_fraction))
        test_rows.extend(rows[:n_test].tolist())
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[test_rows] = True
    return DatasetSplit(data.subset(np.flatnonzero(~test_mask)), data.subset(np.flatnonzero(test_mask)))


def check_classes(data: ImageDataset, source: str) -> None:
    """Refuse data with fewer than two classes present: nothing can be classified or explained."""
    present = np.unique(data.labels.numpy())
    if len(present) < 2:
        raise QxaiError(f"{source} has only {len(present)} class; a classifier needs at least two")


def batches(data: ImageDataset, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels)`` batches of ``data`` in order (the last may be smaller)."""
    return [
        (data.images[s : s + batch_size], data.labels[s : s + batch_size])
        for s in range(0, len(data), batch_size)
    ]
