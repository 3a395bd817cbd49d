"""Data sets as :class:`ImageDataset` (N×C×H×W float images in [0, 1], labels, class names, masks)."""

from typing import Any

from qxai.data import registry as _registry
from qxai.data.base import DatasetSplit, ImageDataset, stratified_split
from qxai.data.registry import DATASETS, DatasetSpec, load_dataset, register_dataset


def __getattr__(name: str) -> Any:
    # derived from the registry on every access, so it includes registered data sets
    if name == "DATASET_NAMES":
        return _registry.DATASET_NAMES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetSpec",
    "DatasetSplit",
    "ImageDataset",
    "load_dataset",
    "register_dataset",
    "stratified_split",
]
