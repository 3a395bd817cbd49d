"""``stl10:ROOT``: STL-10 (10 classes, 96×96 RGB; 5000 train and 8000 test images) from local files.

The files are the official binaries under ``ROOT/stl10_binary/`` (``ROOT`` may also be that folder
itself): ``train_X.bin``/``test_X.bin`` hold uint8 images stored channel by channel, each channel
column-major (so an image reads as ``(3, 96, 96)`` and is transposed to ``(C, H, W)``);
``train_y.bin``/``test_y.bin`` hold one uint8 label 1–10 per image; ``class_names.txt`` one name a
line. The official train/test split is kept (no re-splitting).

We read the binaries with numpy rather than through ``torchvision.datasets.STL10``: torchvision
verifies the MD5 of every file, including the 2.7 GB ``unlabeled_X.bin`` that this loader does not
need, on every load. torchvision is used only for ``download=True`` (fetch and extract the archive).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from qxai.data.base import DatasetSplit, ImageDataset
from qxai.errors import QxaiError

STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
NATIVE_SIZE = 96
_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")


def load_stl10(
    root: str | os.PathLike[str],
    download: bool = False,
    image_size: int = 96,
    max_per_class: int | None = None,
) -> DatasetSplit:
    """STL-10's official train and test splits, resized to ``image_size`` (bilinear, antialiased).

    Returns a :class:`DatasetSplit` whose images are ``(N, 3, image_size, image_size)`` float32 in
    ``[0, 1]`` with labels 0–9. ``max_per_class`` keeps the first images of each class in file order
    (in both splits). ``download=True`` fetches the 2.6 GB archive with torchvision when the files
    are missing (needs internet).

    Example (needs the files): ``load_stl10("~/data", max_per_class=50).train.image_shape`` →
    ``(3, 96, 96)``.
    """
    folder = _find_folder(Path(root).expanduser(), download)
    names = _class_names(folder)
    spec = f"stl10:{root}"
    train = _read_split(folder, "train", names, image_size, max_per_class, spec, offset=0)
    offset = (folder / "train_y.bin").stat().st_size  # test indices follow the train indices
    test = _read_split(folder, "test", names, image_size, max_per_class, spec, offset=offset)
    return DatasetSplit(train, test)


def _find_folder(root: Path, download: bool) -> Path:
    """The folder holding the binaries, downloading them first when asked."""
    for folder in (root / "stl10_binary", root):
        if all((folder / f).is_file() for f in _FILES):
            return folder
    if download:
        _download(root)
        return root / "stl10_binary"
    missing = [f for f in _FILES if not (root / "stl10_binary" / f).is_file()]
    raise QxaiError(
        f"STL-10 files not found under {root / 'stl10_binary'} (missing {', '.join(missing)}); "
        "pass --download (needs internet, 2.6 GB) or point stl10:ROOT at the folder containing stl10_binary/"
    )


def _download(root: Path) -> None:
    from torchvision.datasets import STL10

    try:
        STL10(str(root), split="test", download=True)
    except Exception as err:  # network, disk or checksum failures all mean the same to the user
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise QxaiError(
            f"downloading STL-10 into {root} failed ({msg}); check the connection or disk space"
        ) from None


def _class_names(folder: Path) -> list[str]:
    path = folder / "class_names.txt"
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(names) == len(STL10_CLASSES):
            return names
    return list(STL10_CLASSES)


def _read_split(
    folder: Path, split: str, names: list[str], size: int, max_per_class: int | None, spec: str, offset: int
) -> ImageDataset:
    """One split as an :class:`ImageDataset`; a truncated or inconsistent file is a :class:`QxaiError`."""
    labels = np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1
    raw = np.fromfile(folder / f"{split}_X.bin", dtype=np.uint8)
    per_image = 3 * NATIVE_SIZE * NATIVE_SIZE
    if raw.size != labels.size * per_image or labels.size == 0:
        raise QxaiError(
            f"{folder / (split + '_X.bin')} holds {raw.size / per_image:g} images but "
            f"{split}_y.bin {labels.size} labels; the files are truncated or mismatched, download them again"
        )
    if labels.min() < 0 or labels.max() >= len(names):
        raise QxaiError(
            f"{folder / (split + '_y.bin')} has labels outside 1–{len(names)}; the file is corrupt"
        )
    rows = np.arange(labels.size)
    if max_per_class is not None:
        if max_per_class < 1:
            raise QxaiError(f"max_per_class must be at least 1, got {max_per_class}")
        rows = np.concatenate([np.flatnonzero(labels == c)[:max_per_class] for c in range(len(names))])
        rows.sort()
    # Column-major per channel: (3, W, H) in memory, transposed to (3, H, W).
    images = raw.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE)[rows].transpose(0, 1, 3, 2)
    return ImageDataset(
        _to_float(images, size),
        torch.from_numpy(labels[rows]),
        list(names),
        indices=torch.from_numpy(rows + offset),
        name=spec,
    )


def _to_float(images: np.ndarray, size: int, chunk: int = 500) -> torch.Tensor:
    """uint8 ``(N, 3, 96, 96)`` → float32 ``(N, 3, size, size)`` in [0, 1], resized chunk by chunk."""
    if size < 1:
        raise QxaiError(f"image_size must be positive, got {size}; pass e.g. 96")
    out = torch.empty((len(images), 3, size, size), dtype=torch.float32)
    for s in range(0, len(images), chunk):
        block = torch.from_numpy(np.ascontiguousarray(images[s : s + chunk])).float().div_(255.0)
        if size != NATIVE_SIZE:
            block = F.interpolate(
                block, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        out[s : s + chunk] = block.clamp_(0, 1)
    return out
