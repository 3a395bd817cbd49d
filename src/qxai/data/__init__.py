"""Data sets as :class:`ImageDataset` (N×C×H×W float images in [0, 1], labels, class names, masks)."""

from qxai.data.base import DatasetSplit, ImageDataset, stratified_split
from qxai.data.registry import DATASET_NAMES, load_dataset

__all__ = ["DATASET_NAMES", "DatasetSplit", "ImageDataset", "load_dataset", "stratified_split"]
