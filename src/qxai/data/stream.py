"""Streaming images: the test split of a data set, decoded lazily in fixed-size batches.

An :class:`ImageSource` knows *which* images make up a data set's test split (their positions,
source indices and labels) without holding their pixels: an ``imagefolder:PATH`` is listed, not
decoded; a built-in set (``digits``, ``mnist``, …, already in memory in its package) is indexed.
Pixels are produced by :meth:`ImageSource.batches`, a :class:`torch.utils.data.DataLoader` with
worker processes that decodes a fixed-size batch at a time in a fixed order, so peak memory grows
with the batch size, not with the data set.

The test split is the one :func:`qxai.data.load_dataset` draws (same seed, same stratified rule), so
a streamed image at position ``p`` is the in-memory ``split.test.images[p]``. One difference for
image folders: the in-memory loader drops unreadable files *before* splitting, which a stream cannot
know without decoding everything; a stream therefore stops with a :class:`QxaiError` naming an
unreadable file (remove it, or use the in-memory path).

Selection from the stream (:func:`select_from_stream`):

* ``rule="same"`` (default): every test image is predicted, batch by batch (only the labels and
  predictions, ``O(N)`` integers, are kept), then the rule of
  :func:`qxai.models.selection.select_correct_per_class` is applied to them: for each class in
  order, ``numpy_rng(seed, "select").permutation(correct)[:per_class]``, sorted. Same images as the
  in-memory path.
* ``rule="first"``: the test positions are visited in the order of
  ``numpy_rng(seed, "stream-select").permutation(N)``, predicted batch by batch, and the first
  ``per_class`` correctly classified images of each class are kept; the scan stops as soon as every
  class has enough (or the data ends). Each class's pick is a uniform random subset of its correct
  images, like ``"same"``, but drawn from another random stream, so the images differ.

>>> source = ImageSource.from_spec("digits", seed=0)
>>> len(source), source.image_shape, source.class_names[:3]
(359, (1, 16, 16), ['0', '1', '2'])
>>> images, labels, rows = next(iter(source.batches(range(5), batch_size=4)))
>>> tuple(images.shape), rows.tolist()
((4, 1, 16, 16), [0, 1, 2, 3])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qxai.data.base import ImageDataset, check_classes, stratified_split
from qxai.errors import QxaiError
from qxai.seeding import numpy_rng

SELECTION_RULES = ("same", "first")


@dataclass
class ImageSource:
    """The test split of one data set, as positions to decode on demand.

    Attributes:
        name: the ``--dataset`` spec.
        class_names: one name per class.
        labels: ``(N,)`` int64 label of each test image.
        indices: ``(N,)`` int64 index of each test image in the source data set (as
            ``ImageDataset.indices``).
        image_shape: ``(C, H, W)`` of a decoded image.
        files: for image folders, the path of each test image; None for in-memory sets.
        tensor: for in-memory (built-in) sets, the ``(N, C, H, W)`` test images; None for folders.
        image_size / gray: the folder transform's parameters (see :mod:`qxai.data.folder`).
        recipe: the keywords of :meth:`from_spec` that built it, so another process (a Ray actor)
            can build the same source from a few bytes: ``ImageSource.from_spec(name, **recipe)``.
        masks: for in-memory sets that have them, the ``(N, H, W)`` bool ground-truth masks.
        train_files / train_tensor: the training split (file paths, or images in memory), from which
            :meth:`background` draws a few images (e.g. GradientShap's baselines).
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    indices: np.ndarray
    image_shape: tuple[int, int, int]
    files: list[str] | None = None
    tensor: torch.Tensor | None = field(default=None, repr=False)
    image_size: int = 0
    gray: bool = False
    recipe: dict[str, Any] = field(default_factory=dict)
    masks: torch.Tensor | None = field(default=None, repr=False)
    train_files: list[str] | None = field(default=None, repr=False)
    train_tensor: torch.Tensor | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_spec(
        cls, spec: str, *, seed: int = 0, test_fraction: float = 0.2, channels: int | None = None,
        **options: Any,
    ) -> ImageSource:  # fmt: skip
        """The test split of ``spec`` (a ``--dataset`` spec) drawn with ``seed``, as
        :func:`qxai.data.load_dataset` draws it. ``imagefolder:PATH`` is listed without decoding
        (``options``: ``image_size``, ``channels``, ``max_per_class``; ``channels`` defaults to 3
        unless given, e.g. from the model's input shape); every other data set is loaded by its
        registry entry (built-in sets are small and ship decoded) and its test split indexed.
        """
        from qxai.data.registry import check_spec, load_dataset

        recipe = {"seed": seed, "test_fraction": test_fraction, "channels": channels, **options}
        entry, argument = check_spec(spec)
        if entry.name != "imagefolder":
            split = load_dataset(spec, seed=seed, test_fraction=test_fraction, **options)
            test = split.test
            return cls(
                spec, list(test.class_names), test.labels.numpy(), test.indices.numpy(),
                tuple(test.image_shape), tensor=test.images, recipe=recipe, masks=test.masks,
                train_tensor=split.train.images,
            )  # fmt: skip
        from qxai.data.folder import list_image_files

        options = dict(options)
        image_size = int(options.pop("image_size", 64))
        channels = options.pop("channels", channels)
        max_per_class = options.pop("max_per_class", None)
        if options:
            raise QxaiError(
                f"data set '{spec}' does not take option(s) {', '.join(sorted(options))}; leave them out"
            )
        if channels not in (None, 1, 3):
            raise QxaiError(f"channels must be 1 or 3, got {channels}; pass 1 (grayscale) or 3 (RGB)")
        root = Path(argument).expanduser()
        files, labels, class_names = list_image_files(root, max_per_class)
        labels_t = torch.tensor(labels, dtype=torch.long)
        # the split depends on the labels only: a 1×1 placeholder per file reuses the exact rule
        listed = ImageDataset(torch.zeros(len(files), 1, 1, 1), labels_t, class_names)
        check_classes(listed, f"image folder {root}")
        split = stratified_split(listed, test_fraction, seed)
        test = split.test
        gray = channels == 1
        return cls(
            spec, class_names, test.labels.numpy(), test.indices.numpy(),
            (1 if gray else 3, image_size, image_size), files=[str(files[i]) for i in test.indices.tolist()],
            image_size=image_size, gray=gray, recipe=recipe,
            train_files=[str(files[i]) for i in split.train.indices.tolist()],
        )  # fmt: skip

    def load(self, rows: Sequence[int]) -> torch.Tensor:
        """The decoded images at test positions ``rows``: ``(len(rows), C, H, W)`` float32 in [0, 1]."""
        return (
            torch.stack([_Decoded(self)[int(r)][0] for r in rows])
            if len(rows)
            else torch.empty(0, *self.image_shape)
        )

    def view(self, rows: Sequence[int]) -> SourceView:
        """The images at test positions ``rows`` as a lazy ``(len(rows), C, H, W)`` sequence."""
        return SourceView(self, np.asarray(rows, dtype=np.int64))

    def background(self, count: int, seed: int) -> torch.Tensor:
        """``count`` training images drawn with ``seed`` by the in-memory path's rule
        (``numpy_rng(seed, "shap-background")``, sorted): ``(count, C, H, W)``."""
        size = len(self.train_tensor) if self.train_tensor is not None else len(self.train_files or [])
        if size == 0:
            raise QxaiError(f"data set '{self.name}' has no training images to draw a background from")
        rows = np.sort(numpy_rng(seed, "shap-background").choice(size, size=min(count, size), replace=False))
        if self.train_tensor is not None:
            return self.train_tensor[torch.as_tensor(rows)]
        return torch.stack([decode_file(self.train_files[r], self.image_size, self.gray) for r in rows])  # type: ignore[index]

    def load_masks(self, rows: Sequence[int]) -> np.ndarray | None:
        """The ground-truth masks at test positions ``rows`` ``(len(rows), H, W)``, or None."""
        return None if self.masks is None else self.masks[torch.as_tensor(np.asarray(rows))].numpy()

    def batches(
        self, rows: Iterable[int], batch_size: int, workers: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(images (B, C, H, W), labels (B,), rows (B,))`` for the test positions ``rows``, in order,
        ``batch_size`` at a time (the last batch may be smaller), decoded by ``workers`` processes."""
        rows = [int(r) for r in rows]
        if batch_size < 1:
            raise QxaiError(f"--batch-size must be at least 1, got {batch_size}")
        if workers < 0:
            raise QxaiError(f"--workers must be ≥ 0, got {workers}")
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(_Decoded(self), rows), batch_size=batch_size, shuffle=False,
            num_workers=workers if self.files is not None else 0,  # in-memory sets need no decoding
        )  # fmt: skip
        yield from loader


@dataclass
class SourceView:
    """Images of a source, decoded when indexed: ``view[rows]`` is a ``(len(rows), C, H, W)`` tensor,
    ``view[i]`` one ``(C, H, W)`` image. It stands in for an image tensor where only a few rows are
    ever read (the sanity checks' sample, the figures) so that the rest is never decoded.

    >>> view = ImageSource.from_spec("digits", seed=0).view([4, 9, 2])
    >>> len(view), tuple(view[np.array([0, 2])].shape), tuple(view[1].shape), tuple(view[1:3].shape)
    (3, (2, 1, 16, 16), (1, 16, 16), (2, 1, 16, 16))
    """

    source: ImageSource
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, int | np.integer):
            return self.source.load([int(self.rows[index])])[0]
        if isinstance(index, slice):  # view[i : i + 1], as a tensor is sliced
            index = np.arange(len(self.rows))[index]
        return self.source.load(self.rows[np.asarray(index, dtype=np.int64)].tolist())


class _Decoded(torch.utils.data.Dataset):
    """Test position → ``(image, label, position)``; image folders decode the file here."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, row: int) -> tuple[torch.Tensor, int, int]:
        src = self.source
        label = int(src.labels[row])
        if src.tensor is not None:
            return src.tensor[row], label, row
        return decode_file(src.files[row], src.image_size, src.gray), label, row  # type: ignore[index]


def decode_file(path: str | os.PathLike[str], image_size: int, gray: bool) -> torch.Tensor:
    """One image file → ``(C, image_size, image_size)`` float32 in [0, 1] with the transform of
    :mod:`qxai.data.folder`; an unreadable file is a :class:`QxaiError` naming it."""
    from PIL import Image

    from qxai.data.folder import transform_image

    try:
        with Image.open(path) as img:
            img.load()
            pixels = transform_image(img, image_size, gray)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise QxaiError(
            f"cannot read image {path}; remove the file (or run without streaming, which skips it)"
        ) from None
    if not pixels.flags.writeable:  # PIL's buffer is read-only; torch wants to own writable memory
        pixels = pixels.copy()
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)


def select_from_stream(
    predict: Callable[[torch.Tensor], torch.Tensor],
    source: ImageSource,
    per_class: int,
    seed: int = 0,
    *,
    rule: str = "same",
    batch_size: int = 256,
    workers: int = 0,
) -> np.ndarray:
    """Test positions of up to ``per_class`` correctly classified images per class, in class order
    (sorted within a class); ``predict(images) -> (B,)`` classes. The rule is stated in the module
    docstring; ``"same"`` chooses the images :func:`qxai.models.selection.select_correct_per_class`
    chooses.
    """
    if per_class < 1:
        raise QxaiError(f"--per-class must be at least 1, got {per_class}")
    if rule not in SELECTION_RULES:
        raise QxaiError(f"selection rule must be one of {', '.join(SELECTION_RULES)}, got '{rule}'")
    chosen: dict[int, list[int]] = {c: [] for c in range(source.num_classes)}
    if rule == "same":
        predicted = np.empty(len(source), dtype=np.int64)
        for images, _, rows in source.batches(range(len(source)), batch_size, workers):
            predicted[rows.numpy()] = predict(images).numpy()
        rng = numpy_rng(seed, "select")
        for c in chosen:
            correct = np.flatnonzero((source.labels == c) & (predicted == c))
            chosen[c] = sorted(rng.permutation(correct)[:per_class].tolist())
    else:
        order = numpy_rng(seed, "stream-select").permutation(len(source))
        wanted = {c for c in chosen if (source.labels == c).any()}
        for s in range(0, len(order), batch_size):
            part = order[s : s + batch_size]
            # only the images still useful are decoded: classes that have enough are skipped
            part = part[[source.labels[r] in wanted for r in part]]
            if not len(part):
                continue
            for images, labels, rows in source.batches(part, batch_size, workers):
                guesses = predict(images).tolist()
                for row, label, pred in zip(rows.tolist(), labels.tolist(), guesses, strict=True):
                    if pred == label and len(chosen[label]) < per_class:
                        chosen[label].append(row)
                        if len(chosen[label]) == per_class:
                            wanted.discard(label)
            if not wanted:
                break
        chosen = {c: sorted(rows) for c, rows in chosen.items()}
    out = np.array([r for c in sorted(chosen) for r in chosen[c]], dtype=np.int64)
    if not len(out):
        raise QxaiError("the model classifies no test image correctly; train it longer first")
    return out


__all__ = ["SELECTION_RULES", "ImageSource", "decode_file", "select_from_stream"]
