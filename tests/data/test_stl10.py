"""`stl10:ROOT` on a tiny fake STL-10 in the official binary format; never downloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from qxai.data import load_dataset
from qxai.data import stl10 as stl10_module
from qxai.data.stl10 import STL10_CLASSES, load_stl10
from qxai.errors import QxaiError


def _write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    # The documented format: uint8, per image 3 channels, each channel stored column-major.
    np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tofile(folder / f"{split}_X.bin")
    (labels + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")


@pytest.fixture
def fake_stl10(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """ROOT/stl10_binary with 3 train and 2 test images per class (images (N, 3, 96, 96) uint8)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    data = {}
    for split, per_class in (("train", 3), ("test", 2)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        images = rng.integers(0, 256, (len(labels), 3, 96, 96), dtype=np.uint8)
        images[:, 0, :10, :] = 255  # a bright top band in red: orientation is checkable by eye
        _write_split(folder, split, images, labels)
        data[split] = (images, labels)
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    return tmp_path, data


def test_reads_the_binary_format(fake_stl10) -> None:
    root, data = fake_stl10
    split = load_stl10(root)
    for part, (images, labels) in ((split.train, data["train"]), (split.test, data["test"])):
        np.testing.assert_allclose(part.images.numpy(), images / 255.0, atol=1e-6)
        assert part.labels.tolist() == labels.tolist()
    assert split.class_names == STL10_CLASSES
    assert split.test.indices.min() == len(split.train), "test indices follow the train indices"


def test_agrees_with_torchvision_reader(fake_stl10, monkeypatch: pytest.MonkeyPatch) -> None:
    # Independent oracle: torchvision's own parser (its MD5 check cannot pass on a fake, so skip it).
    from torchvision.datasets import STL10

    root, _ = fake_stl10
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)
    for name in ("train", "test"):
        ref = STL10(str(root), split=name)
        ours = getattr(load_stl10(root), name)
        np.testing.assert_array_equal(np.rint(ours.images.numpy() * 255).astype(np.uint8), ref.data)
        assert ours.labels.tolist() == ref.labels.tolist()
        assert ref.classes == ours.class_names


def test_root_may_be_the_binary_folder_itself(fake_stl10) -> None:
    root, data = fake_stl10
    assert len(load_stl10(root / "stl10_binary").train) == len(data["train"][1])


def test_resize_and_max_per_class(fake_stl10) -> None:
    root, data = fake_stl10
    split = load_stl10(root, image_size=32, max_per_class=1)
    assert split.train.images.shape == (10, 3, 32, 32) and sorted(split.train.labels.tolist()) == list(
        range(10)
    )
    first = int(split.train.indices[0])
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(data["train"][0][first : first + 1]).float() / 255,
        size=(32, 32),
        mode="bilinear",
        antialias=True,
    )
    np.testing.assert_allclose(split.train.images[0].numpy(), expected[0].numpy(), atol=1e-5)


def test_through_the_registry(fake_stl10) -> None:
    root, _ = fake_stl10
    split = load_dataset(f"stl10:{root}", image_size=24)
    assert split.train.image_shape == (3, 24, 24) and len(split.train) == 30 and len(split.test) == 20


def test_missing_files_tell_the_user_to_download(tmp_path: Path) -> None:
    with pytest.raises(QxaiError, match="--download") as err:
        load_stl10(tmp_path)
    assert "\n" not in str(err.value) and "train_X.bin" in str(err.value)


def test_truncated_file(fake_stl10) -> None:
    root, _ = fake_stl10
    x = root / "stl10_binary" / "test_X.bin"
    x.write_bytes(x.read_bytes()[:-100])
    with pytest.raises(QxaiError, match="truncated"):
        load_stl10(root)


def test_download_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No network in tests: torchvision's downloader is replaced by one that fails like it would.
    import torchvision.datasets

    class Offline:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "STL10", Offline)
    with pytest.raises(QxaiError, match=r"downloading STL-10 .* failed"):
        stl10_module.load_stl10(tmp_path, download=True)
