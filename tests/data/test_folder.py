"""`imagefolder:PATH`: layout, the stated transform (checked against PIL), bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qxai.data import load_dataset
from qxai.data.folder import load_image_folder
from qxai.errors import QxaiError


def _save(path: Path, img: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _random_rgb(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def two_classes(tmp_path: Path) -> Path:
    """NIH-like layout: Parasitized / Uninfected, mixed sizes and formats, plus a non-image file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "cell_images"
    for i in range(3):
        _save(root / "Uninfected" / f"u{i}.png", _random_rgb(rng, 20 + i, 15))
        _save(root / "Parasitized" / f"p{i}.jpg", _random_rgb(rng, 12, 30 + i))
    _save(root / "Parasitized" / "nested" / "p9.bmp", _random_rgb(rng, 9, 9))
    (root / "Uninfected" / "Thumbs.db").write_bytes(b"\x00junk")
    (root / "README.txt").write_text("not a class")
    return root


def test_layout_labels_and_shapes(two_classes: Path) -> None:
    ds = load_image_folder(two_classes, image_size=16)
    assert ds.class_names == ["Parasitized", "Uninfected"]  # sorted sub-folder names
    assert ds.images.shape == (7, 3, 16, 16) and ds.images.dtype.is_floating_point
    assert ds.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert ds.skipped == []
    assert float(ds.images.min()) >= 0 and float(ds.images.max()) <= 1


def test_resize_matches_pil_bilinear(tmp_path: Path) -> None:
    # Oracle: PIL's own bilinear resize of the same file.
    rng = np.random.default_rng(1)
    a = _save(tmp_path / "a" / "x.png", _random_rgb(rng, 37, 23))
    _save(tmp_path / "b" / "y.png", _random_rgb(rng, 5, 5))
    ds = load_image_folder(tmp_path, image_size=12)
    expected = np.asarray(Image.open(a).convert("RGB").resize((12, 12), Image.BILINEAR), np.float32) / 255
    np.testing.assert_allclose(ds.images[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_all_grayscale_gives_one_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for c in ("a", "b"):
        _save(tmp_path / c / "g.png", Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8), "L"))
    ds = load_image_folder(tmp_path, image_size=10)
    assert ds.image_shape == (1, 10, 10)
    expected = np.asarray(Image.open(tmp_path / "a" / "g.png"), np.float32) / 255
    np.testing.assert_allclose(ds.images[0, 0].numpy(), expected, atol=1e-6)


def test_mixed_gray_and_colour_gives_rgb(tmp_path: Path) -> None:
    _save(tmp_path / "a" / "g.png", Image.new("L", (6, 6), 100))
    _save(tmp_path / "b" / "c.png", Image.new("RGB", (8, 4), (10, 200, 30)))
    ds = load_image_folder(tmp_path, image_size=4)
    assert ds.image_shape == (3, 4, 4)
    np.testing.assert_allclose(ds.images[0].numpy(), 100 / 255, atol=1e-6)  # gray → equal channels
    np.testing.assert_allclose(ds.images[1, :, 0, 0].numpy(), np.array([10, 200, 30]) / 255, atol=1e-6)


def test_channels_one_uses_pil_luma(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a = _save(tmp_path / "a" / "x.png", _random_rgb(rng, 8, 8))
    _save(tmp_path / "b" / "y.png", _random_rgb(rng, 8, 8))
    ds = load_image_folder(tmp_path, image_size=8, channels=1)
    expected = np.asarray(Image.open(a).convert("L"), np.float32) / 255
    np.testing.assert_allclose(ds.images[0, 0].numpy(), expected, atol=1e-6)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (255, 0, 0, 255)  # top half opaque red, bottom half fully transparent black
    _save(tmp_path / "a" / "x.png", Image.fromarray(rgba, "RGBA"))
    _save(tmp_path / "b" / "y.png", Image.new("RGB", (4, 4)))
    img = load_image_folder(tmp_path, image_size=4).images[0].numpy()
    np.testing.assert_allclose(img[:, :2], np.array([1.0, 0, 0])[:, None, None] * np.ones((3, 2, 4)))
    np.testing.assert_allclose(img[:, 2:], 1.0)  # transparent → white, not black


def test_sixteen_bit_grayscale_is_scaled(tmp_path: Path) -> None:
    values = np.array([[0, 65535], [32768, 65535]], dtype=np.uint16)
    _save(tmp_path / "a" / "x.png", Image.fromarray(values))
    _save(tmp_path / "b" / "y.png", Image.fromarray(np.zeros((2, 2), np.uint16)))
    ds = load_image_folder(tmp_path, image_size=2)
    assert ds.image_shape == (1, 2, 2)
    np.testing.assert_allclose(ds.images[0, 0].numpy(), np.rint(values / 65535 * 255) / 255, atol=1e-6)


def test_unreadable_files_are_skipped_and_named(two_classes: Path) -> None:
    (two_classes / "Uninfected" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = two_classes / "Parasitized" / "p0.jpg"
    (two_classes / "Parasitized" / "truncated.jpg").write_bytes(good.read_bytes()[:100])
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable .*truncated\.jpg.*broken\.png"):
        ds = load_image_folder(two_classes, image_size=8)
    assert len(ds) == 7
    assert sorted(Path(p).name for p in ds.skipped) == ["broken.png", "truncated.jpg"]


def test_max_per_class(two_classes: Path) -> None:
    ds = load_image_folder(two_classes, image_size=8, max_per_class=2)
    assert ds.labels.tolist() == [0, 0, 1, 1]


def test_registry_splits_stratified(two_classes: Path) -> None:
    split = load_dataset(f"imagefolder:{two_classes}", seed=0, test_fraction=0.3, image_size=8)
    assert sorted(split.test.labels.tolist()) == [0, 1]
    assert len(split.train) == 5 and split.train.name == f"imagefolder:{two_classes}"


# --- bad input: each is a one-line QxaiError naming the problem -------------------------------


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and ";" in text
    return text


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(QxaiError, match="does not exist") as err:
        load_image_folder(tmp_path / "nope")
    _one_line(err)


def test_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "x.png"
    f.write_bytes(b"")
    with pytest.raises(QxaiError, match="is a file") as err:
        load_image_folder(f)
    _one_line(err)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(QxaiError, match="is empty") as err:
        load_image_folder(tmp_path)
    _one_line(err)


def test_images_without_class_folders(tmp_path: Path) -> None:
    _save(tmp_path / "x.png", Image.new("RGB", (4, 4)))
    with pytest.raises(QxaiError, match="no class sub-folders") as err:
        load_image_folder(tmp_path)
    _one_line(err)


def test_only_one_class(tmp_path: Path) -> None:
    _save(tmp_path / "only" / "x.png", Image.new("RGB", (4, 4)))
    with pytest.raises(QxaiError, match="only 1 class"):
        load_image_folder(tmp_path)


def test_second_class_folder_has_only_unreadable_files(tmp_path: Path) -> None:
    _save(tmp_path / "a" / "x.png", Image.new("RGB", (4, 4)))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="y.png"), pytest.raises(QxaiError, match="only 1 class"):
        load_image_folder(tmp_path)


def test_class_folders_without_images(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("x")
    with pytest.raises(QxaiError, match="no image files") as err:
        load_image_folder(tmp_path)
    _one_line(err)


def test_nothing_readable(tmp_path: Path) -> None:
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "x.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(QxaiError, match="no readable images") as err:
        load_image_folder(tmp_path)
    _one_line(err)


@pytest.mark.parametrize(
    ("kw", "match"), [({"channels": 2}, "channels"), ({"max_per_class": 0}, "max_per_class")]
)
def test_bad_options(two_classes: Path, kw: dict, match: str) -> None:
    with pytest.raises(QxaiError, match=match):
        load_image_folder(two_classes, **kw)


def test_dark_sixteen_bit_image_is_not_stretched(tmp_path: Path) -> None:
    # A 16-bit image whose values all sit below 256 is nearly black, not full range.
    _save(tmp_path / "a" / "x.png", Image.fromarray(np.full((2, 2), 200, np.uint16)))
    _save(tmp_path / "b" / "y.png", Image.fromarray(np.zeros((2, 2), np.uint16)))
    assert float(load_image_folder(tmp_path, image_size=2).images.max()) < 2 / 255


def test_a_folder_checkpoint_works_from_any_working_folder(tmp_path: Path, monkeypatch) -> None:
    """Trained on ``imagefolder:imgs`` (relative) at 12×12, the checkpoint records the folder
    absolute and its input size; naming the folder again in another spelling, or another folder,
    reuses the recorded size instead of the default 64."""
    from qxai.models import load_checkpoint
    from qxai.models.loading import load_model_and_data
    from qxai.pipeline.train import run_train, train_config

    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        for i in range(6):
            _save(tmp_path / "work" / "imgs" / cls / f"{i}.png", _random_rgb(rng, 20, 20))
    monkeypatch.chdir(tmp_path / "work")
    config = train_config("imagefolder:imgs", "reduced-cnn", maps=4, epochs=1, seed=0, batch_size=8, lr=1e-3,
                          dataset_options={"image_size": 12})  # fmt: skip
    run_train(config, tmp_path / "m.pt")
    recorded = load_checkpoint(tmp_path / "m.pt").config
    assert recorded["dataset"] == f"imagefolder:{tmp_path / 'work' / 'imgs'}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for spec in (None, "imagefolder:../work/imgs", f"imagefolder:{tmp_path}/work/./imgs"):
        md = load_model_and_data(str(tmp_path / "m.pt"), dataset=spec)
        assert md.split.test.image_shape == (3, 12, 12)
    other = tmp_path / "other"
    for cls in ("a", "b"):
        for i in range(3):
            _save(other / cls / f"{i}.png", _random_rgb(rng, 30, 30))
    md = load_model_and_data(str(tmp_path / "m.pt"), dataset=f"imagefolder:{other}")
    assert md.split.test.image_shape == (3, 12, 12)
