"""Streaming data and sharded, resumable `explain` runs on `digits` (and a tiny image folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qxai.cli.main import main
from qxai.data import load_dataset
from qxai.data.stream import ImageSource, select_from_stream
from qxai.errors import QxaiError
from qxai.models import load_checkpoint
from qxai.models.selection import select_correct_per_class
from qxai.pipeline import explain as explain_stage
from qxai.pipeline.explain import ExplainSettings, StreamSettings, run_explain

#: Fields that measure time, so differ between two runs of the same command.
TIMING = {"seconds", "solver_seconds", "ground_seconds"}


def without_timing(doc: dict) -> dict:
    """The document with timing fields, run ids and the streaming note removed."""
    drop = {"run_id", "stream", "sha256"}
    clean = {k: v for k, v in doc.items() if k not in drop}
    clean["images"] = [{k: v for k, v in r.items() if k not in TIMING} for r in doc["images"]]
    clean["summary"] = {k: v for k, v in doc["summary"].items() if not k.endswith("seconds_per_image")}
    return clean


def assert_same_arrays(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            assert x[key].dtype == y[key].dtype, key
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0)


SETTINGS = ExplainSettings(dataset="digits", layer="reduce", per_class=1, batch_size=3, seed=3)


def test_builtin_source_is_the_in_memory_test_split():
    test = load_dataset("digits", seed=0).test
    source = ImageSource.from_spec("digits", seed=0)
    assert source.labels.tolist() == test.labels.tolist()
    assert source.indices.tolist() == test.indices.tolist()
    rows = [5, 0, 17, 3, 200]
    images, labels, positions = next(iter(source.batches(rows, batch_size=8)))
    assert positions.tolist() == rows  # in the order asked, not sorted
    assert torch.equal(images, test.images[rows]) and labels.tolist() == test.labels[rows].tolist()


def write_folder(root: Path, classes: tuple[str, ...], count: int, size: int, seed: int, grow: int = 0):
    """``count`` random RGB PNGs per class folder, ``size`` (+ ``grow`` × i rows) pixels square."""
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, size=(size + grow * i, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")


def test_folder_source_decodes_lazily_what_the_loader_decodes(tmp_path):
    write_folder(tmp_path, ("cat", "dog"), 6, 10, seed=0, grow=1)
    spec = f"imagefolder:{tmp_path}"
    test = load_dataset(spec, seed=1, image_size=8, channels=3).test
    source = ImageSource.from_spec(spec, seed=1, image_size=8, channels=3)
    assert source.tensor is None and len(source.files) == len(test)  # listed, nothing decoded yet
    assert source.indices.tolist() == test.indices.tolist()
    decoded = torch.cat([b[0] for b in source.batches(range(len(source)), batch_size=3, workers=1)])
    assert torch.equal(decoded, test.images)  # decoded in a worker process, in order


def test_same_rule_selects_the_in_memory_images(digits_checkpoint):
    model = load_checkpoint(digits_checkpoint).model.eval()
    test = load_dataset("digits", seed=0).test
    source = ImageSource.from_spec("digits", seed=0)

    def predict(images):
        with torch.no_grad():
            return model(images).argmax(1)

    expected = select_correct_per_class(model, test, 3, seed=7).indices.tolist()
    rows = select_from_stream(predict, source, 3, seed=7, rule="same", batch_size=50)
    assert source.indices[rows].tolist() == expected


def test_first_rule_stops_once_every_class_has_enough(digits_checkpoint):
    model = load_checkpoint(digits_checkpoint).model.eval()
    source = ImageSource.from_spec("digits", seed=0)
    seen = []

    def predict(images):
        seen.append(len(images))
        with torch.no_grad():
            return model(images).argmax(1)

    rows = select_from_stream(predict, source, 2, seed=7, rule="first", batch_size=16)
    labels = source.labels[rows]
    assert sum(seen) < len(source)  # stopped early
    assert all((labels == c).sum() <= 2 for c in range(10)) and labels.tolist() == sorted(labels.tolist())
    with torch.no_grad():
        assert model(source.load(rows)).argmax(1).tolist() == labels.tolist()  # all correct
    assert (
        select_from_stream(predict, source, 2, seed=7, rule="first", batch_size=16).tolist() == rows.tolist()
    )


def test_streamed_sharded_run_equals_in_memory_run(digits_checkpoint, tmp_path, batch_coupled):
    memory = run_explain(tmp_path / "memory", model=digits_checkpoint, settings=SETTINGS)
    streamed = run_explain(
        tmp_path / "stream", model=digits_checkpoint, settings=SETTINGS,
        stream=StreamSettings(shard_size=6, loader_workers=0),
    )  # fmt: skip
    assert streamed["stream"]["shards"] == 2  # 10 images: batches of 3, 3 | 3, 1
    assert without_timing(streamed) == without_timing(memory)
    assert_same_arrays(tmp_path / "stream" / "saliency.npz", tmp_path / "memory" / "saliency.npz")
    assert sorted(streamed["files"]) == sorted(memory["files"])


def test_interrupted_run_resumes_to_identical_files(digits_checkpoint, tmp_path, monkeypatch, batch_coupled):
    stream = StreamSettings(limit=11, shard_size=3)
    full = run_explain(tmp_path / "full", model=digits_checkpoint, settings=SETTINGS, stream=stream)
    assert full["summary"]["images"] == 11

    write = explain_stage._write_shard
    written: list[int] = []

    def crash_after_two(store, k, arrays, records):
        if len(written) == 2:
            raise KeyboardInterrupt("killed")  # as if the process were stopped
        write(store, k, arrays, records)
        written.append(k)

    monkeypatch.setattr(explain_stage, "_write_shard", crash_after_two)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_explain(out, model=digits_checkpoint, settings=SETTINGS, stream=stream)
    assert written == [0, 1] and not (out / "explanations.json").exists()

    written.clear()
    monkeypatch.setattr(explain_stage, "_write_shard", lambda *a: (write(*a), written.append(a[1])))
    resumed = run_explain(out, model=digits_checkpoint, settings=SETTINGS, stream=stream)
    assert written == [2, 3]  # only the missing shards were computed
    assert without_timing(resumed) == without_timing(full)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert names == sorted(
        p.relative_to(tmp_path / "full").as_posix() for p in (tmp_path / "full").rglob("*")
    )
    for npz in ["saliency.npz", *(f"shards/shard-{k:05d}.npz" for k in range(4)), "shards/selection.npz"]:
        assert_same_arrays(out / npz, tmp_path / "full" / npz)


def test_shard_folder_of_another_model_or_command_is_refused(
    digits_checkpoint, digits_qixai_checkpoint, tmp_path, capsys
):
    out = tmp_path / "run"
    base = ["explain", "--dataset", "digits", "--limit", "4", "--batch-size", "4", "--shard-size", "4"]
    assert run_cli([*base, "--model", str(digits_checkpoint), "--out", str(out)]) == 0
    capsys.readouterr()
    assert run_cli([*base, "--model", str(digits_qixai_checkpoint), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: shard folder") and "model_sha256" in err and len(err.strip().splitlines()) == 1
    )
    assert run_cli([*base, "--model", str(digits_checkpoint), "--beta", "0.3", "--out", str(out)]) == 2
    assert "settings differs" in capsys.readouterr().err
    doc = json.loads((out / "explanations.json").read_text())
    assert doc["stream"]["limit"] == 4 and len(doc["images"]) == 4  # the first run's files are intact


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--limit", "3", "--all"], "--limit and --all exclude each other"),
        (["--stream", "--batch-size", "4", "--shard-size", "6"], "is not a multiple of --batch-size 4"),
        (["--stream", "--selection", "best"], "--selection must be one of same, first"),
    ],
)
def test_stream_option_errors_exit_2(digits_checkpoint, tmp_path, capsys, extra, message):
    args = ["explain", "--model", str(digits_checkpoint), "--out", str(tmp_path / "x"), *extra]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_stream_settings_validate_before_work():
    with pytest.raises(QxaiError, match="--workers must be at least 1"):
        StreamSettings(workers=0)


def test_folder_images_in_memory_are_contiguous_like_streamed_batches(tmp_path):
    """A channels-last tensor would run other conv kernels: in-memory and streamed maps would differ."""
    write_folder(tmp_path, ("a", "b"), 3, 8, seed=1)
    images = load_dataset(f"imagefolder:{tmp_path}", seed=0, image_size=8, channels=3).train.images
    assert images.is_contiguous()
