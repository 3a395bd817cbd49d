"""The synthetic blood-smear data set: shapes, balance, masks, determinism, caching, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qxai.data import cells
from qxai.data.cells import _draw_parameters, generate_cells, load_cells
from qxai.errors import QxaiError
from qxai.seeding import numpy_rng


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return generate_cells(64, 32, seed=3)


def test_shapes_range_and_names(cache_dir: Path) -> None:
    ds = load_cells(count=10, image_size=24, seed=0)
    assert ds.images.shape == (10, 3, 24, 24) and ds.masks is not None and ds.masks.shape == (10, 24, 24)
    assert ds.class_names == ["parasitized", "uninfected"]
    assert float(ds.images.min()) >= 0.0 and float(ds.images.max()) <= 1.0
    # 8-bit quantised, as photographs are: every value is a multiple of 1/255.
    scaled = ds.images.numpy() * 255
    assert np.allclose(scaled, np.rint(scaled), atol=1e-3)


@pytest.mark.parametrize("count", [2, 7, 64])
def test_classes_are_balanced(count: int) -> None:
    _, labels, _ = generate_cells(count, 16, seed=1)
    counts = np.bincount(labels, minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) <= 1


def test_masks_mark_parasites_only_in_parasitized(small) -> None:
    _, labels, masks = small
    area = masks.sum(axis=(1, 2))
    assert (area[labels == 0] > 0).all(), "every parasitized cell has a parasite"
    assert (area[labels == 1] == 0).all(), "uninfected cells have empty masks"
    assert (area[labels == 0] < 0.2 * 32 * 32).all(), "parasites are small"


def test_parasites_are_dark_purple_where_the_mask_is(small) -> None:
    # Oracle: Giemsa-stained parasites absorb green most, so the mask is darker in green than
    # the rest of the same image (background and cell body), image by image.
    images, labels, masks = small
    for img, m in zip(images[labels == 0], masks[labels == 0], strict=True):
        green = img[..., 1].astype(float)
        assert green[m].min() < np.median(green[~m]) - 40


def test_distractor_geometry() -> None:
    # Parasites lie inside the main cell; platelets outside it or on its edge.
    p = _draw_parameters(numpy_rng(0, "cells"), 500, 48.0)
    r = p["radius"][:, None]
    par = np.hypot(p["par_x"] - p["cx"][:, None], p["par_y"] - p["cy"][:, None])
    plt = np.hypot(p["plt_x"] - p["cx"][:, None], p["plt_y"] - p["cy"][:, None])
    assert (par <= 0.62 * r + 1e-9).all() and (plt >= 0.95 * r - 1e-9).all()
    assert p["plt_on"][p["label"] == 0].any() and p["plt_on"][p["label"] == 1].any()
    assert not p["par_on"][p["label"] == 1].any()
    counts = p["par_on"][p["label"] == 0].sum(1)
    assert set(np.unique(counts)) == {1, 2, 3}, "sometimes several parasites"


def test_deterministic_and_seed_dependent(small) -> None:
    again = generate_cells(64, 32, seed=3)
    for a, b in zip(small, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = generate_cells(64, 32, seed=4)
    assert not np.array_equal(small[0], other[0])


def test_output_does_not_depend_on_chunking(small, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cells, "_CHUNK", 5)
    for a, b in zip(small, generate_cells(64, 32, seed=3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cache_is_written_and_reused(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_cells(count=12, image_size=16, seed=5)
    files = list(cache_dir.glob("cells-*.npz"))
    assert len(files) == 1

    def boom(*args: object) -> None:
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(cells, "generate_cells", boom)
    second = load_cells(count=12, image_size=16, seed=5)
    assert (first.images == second.images).all() and (first.masks == second.masks).all()
    assert (first.labels == second.labels).all()


def test_cache_key_separates_settings(cache_dir: Path) -> None:
    load_cells(count=4, image_size=16, seed=0)
    load_cells(count=4, image_size=16, seed=1)
    load_cells(count=6, image_size=16, seed=0)
    load_cells(count=4, image_size=20, seed=0)
    assert len(list(cache_dir.glob("cells-*.npz"))) == 4


@pytest.mark.parametrize("damage", ["garbage", "truncate", "wrong-shape"])
def test_corrupt_cache_is_regenerated(cache_dir: Path, damage: str) -> None:
    fresh = load_cells(count=8, image_size=16, seed=2)
    (path,) = cache_dir.glob("cells-*.npz")
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.savez(
            path.with_suffix(""),
            images=np.zeros((1, 2, 2, 3), np.uint8),
            labels=np.zeros(1),
            masks=np.zeros(1),
        )
    with pytest.warns(UserWarning, match="regenerating"):
        again = load_cells(count=8, image_size=16, seed=2)
    assert (again.images == fresh.images).all()
    # ... and the rebuilt file is good again: no warning the next time.
    load_cells(count=8, image_size=16, seed=2)


def test_cache_false_writes_nothing(cache_dir: Path) -> None:
    load_cells(count=4, image_size=16, seed=0, cache=False)
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


@pytest.mark.parametrize(("kw", "match"), [({"count": 1}, "count"), ({"image_size": 8}, "image_size")])
def test_bad_arguments(kw: dict, match: str) -> None:
    with pytest.raises(QxaiError, match=match):
        load_cells(**{"count": 4, "image_size": 16, **kw})


def test_through_the_registry(cache_dir: Path) -> None:
    from qxai.data import load_dataset

    split = load_dataset("cells", seed=0, count=40, image_size=24)
    assert len(split.train) + len(split.test) == 40
    assert split.train.masks is not None and split.test.masks is not None
    # Masks travel with their images through the split.
    for part in (split.train, split.test):
        has = part.masks.flatten(1).any(1)
        assert (has == (part.labels == 0)).all()
