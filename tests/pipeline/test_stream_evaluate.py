"""Streamed, sharded, resumable `qxai evaluate`: equal to the in-memory run, set metrics from shards."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qxai.evaluate import EvalSettings
from qxai.pipeline import evaluate as evaluate_stage
from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate
from qxai.pipeline.shards import StreamSettings

from .test_stream import assert_same_arrays, run_cli, write_folder

SCORING = EvalSettings(batch_size=4, resamples=200, null_draws=20, sanity_images=6)
SETTINGS = EvaluateSettings(
    methods=("qa", "gradcam", "ig"), dataset="digits", layer="reduce", per_class=2, seed=1, scoring=SCORING
)
#: Keys that measure time or memory (differ between two runs of one command), the run id and the
#: streaming note.
VOLATILE = ("seconds", "memory", "run_id", "stream", "files", "sha256")


def stable(doc):
    """``doc`` without volatile keys, NaN replaced by a marker so that equal documents compare equal."""
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if not any(word in k for word in VOLATILE)}
    if isinstance(doc, list):  # e.g. not_discriminative: whether a timing separates is luck
        return [stable(v) for v in doc if not (isinstance(v, str) and any(w in v for w in VOLATILE))]
    if isinstance(doc, float) and math.isnan(doc):
        return "nan"
    return doc


def assert_same_per_image(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            if "seconds" not in key:
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_streamed_evaluation_equals_in_memory_evaluation(digits_checkpoint, tmp_path, batch_coupled):
    memory = run_evaluate(tmp_path / "memory", model=digits_checkpoint, settings=SETTINGS)
    streamed = run_evaluate(
        tmp_path / "stream", model=digits_checkpoint, settings=SETTINGS, stream=StreamSettings(shard_size=8)
    )
    assert streamed["stream"]["shards"] == 3  # 20 images in shards of 8, 8, 4
    memory["summary"].pop("model test accuracy")  # the stream does not predict the whole test split
    # every score, interval, paired test, reference and verdict, set-level ones included
    assert stable(streamed) == stable(memory)
    assert streamed["qa"]["overlap_mean"] == memory["qa"]["overlap_mean"]
    assert streamed["intervals"]["qa"]["silhouette"] == memory["intervals"]["qa"]["silhouette"]
    assert_same_per_image(tmp_path / "stream" / "per_image.npz", tmp_path / "memory" / "per_image.npz")
    maps = "method_saliency.npz"
    assert_same_arrays(tmp_path / "stream" / maps, tmp_path / "memory" / maps)
    assert sorted(streamed["files"]) == sorted(memory["files"])


def test_interrupted_evaluation_resumes_to_identical_files(
    digits_checkpoint, tmp_path, monkeypatch, batch_coupled
):
    settings = EvaluateSettings(
        methods=("qa", "gradcam"), dataset="digits", layer="reduce", metrics=("overlap_mean", "deletion_auc"),
        scoring=SCORING,
    )  # fmt: skip
    stream = StreamSettings(limit=12, shard_size=4)
    full = run_evaluate(tmp_path / "full", model=digits_checkpoint, settings=settings, stream=stream)
    assert full["summary"]["images"] == 12

    write = evaluate_stage._write_shard
    written: list[int] = []

    def crash_after_one(store, k, arrays, meta):
        if written:
            raise KeyboardInterrupt("killed")
        write(store, k, arrays, meta)
        written.append(k)

    monkeypatch.setattr(evaluate_stage, "_write_shard", crash_after_one)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_evaluate(out, model=digits_checkpoint, settings=settings, stream=stream)
    assert written == [0] and not (out / "metrics.json").exists()

    written.clear()
    monkeypatch.setattr(evaluate_stage, "_write_shard", lambda *a: (write(*a), written.append(a[1])))
    resumed = run_evaluate(out, model=digits_checkpoint, settings=settings, stream=stream)
    assert written == [1, 2]  # only the missing shards were computed
    assert stable(resumed) == stable(full)
    for npz in ("method_saliency.npz", "shards/selection.npz"):
        assert_same_arrays(out / npz, tmp_path / "full" / npz)
    assert_same_per_image(out / "per_image.npz", tmp_path / "full" / "per_image.npz")


def test_evaluate_all_reports_accuracy_and_explains_the_predicted_class(digits_checkpoint, tmp_path):
    settings = EvaluateSettings(
        methods=("gradcam",), dataset="digits", layer="reduce", metrics=("silhouette", "keep_top_drop"),
        scoring=EvalSettings(batch_size=64, resamples=100, null_draws=20, silhouette_images=50),
    )  # fmt: skip
    doc = run_evaluate(
        tmp_path / "all", model=digits_checkpoint, settings=settings, stream=StreamSettings(all_images=True)
    )
    assert doc["summary"]["images"] == 359 and doc["stream"]["shards"] == 2
    with np.load(tmp_path / "all" / "method_saliency.npz") as saved:
        assert len(saved["gradcam"]) == 359
    accuracy = doc["summary"]["model test accuracy"]
    assert 0.2 < accuracy <= 1.0  # targets are predictions, so misclassified images are explained too
    low, high = doc["intervals"]["gradcam"]["silhouette"]  # on a 50-image sample of the 359
    assert low <= doc["gradcam"]["silhouette"] <= high


def test_cli_streams_and_refuses_another_commands_shards(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--model", str(digits_checkpoint), "--dataset", "digits", "--limit", "8", "--batch-size", "4",
            "--shard-size", "4", "--methods", "qa,gradcam", "--metrics", "overlap_mean", "--resamples", "100",
            "--null-draws", "20", "--out", str(out)]  # fmt: skip
    assert run_cli(["explain", *base[:10], "--out", str(out)]) == 0  # explain's shards in OUT/shards
    capsys.readouterr()
    assert run_cli(["evaluate", *base]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: shard folder") and "command" in err and len(err.strip().splitlines()) == 1
    assert run_cli(["evaluate", *base[:-1], str(tmp_path / "fresh")]) == 0
    doc = json.loads((tmp_path / "fresh" / "metrics.json").read_text())
    assert doc["stream"]["limit"] == 8 and doc["summary"]["images"] == 8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--all", "--seeds", "0,1"], "--seeds retrains the model per seed and is not streamed"),
        (["--stream", "--batch-size", "4", "--shard-size", "6"], "is not a multiple of --batch-size 4"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_evaluate_stream_option_errors_exit_2(digits_checkpoint, tmp_path, capsys, extra, message):
    args = ["evaluate", "--model", str(digits_checkpoint), "--out", str(tmp_path / "x"), *extra]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_folder_source_background_is_the_in_memory_background(tmp_path):
    """SHAP's baselines: the streamed source decodes the same training images the in-memory path picks."""
    import torch

    from qxai.data import load_dataset
    from qxai.data.stream import ImageSource

    write_folder(tmp_path, ("a", "b"), 15, 9, seed=3)
    spec = f"imagefolder:{tmp_path}"
    split = load_dataset(spec, seed=2, image_size=8, channels=3)
    source = ImageSource.from_spec(spec, seed=2, image_size=8, channels=3)
    expected = evaluate_stage.shap_background(split.train.images, 5, seed=7)
    assert torch.equal(source.background(5, seed=7), expected)
    assert source.load_masks([0, 1]) is None
    digits = ImageSource.from_spec("digits", seed=0)
    train = load_dataset("digits", seed=0).train.images
    assert torch.equal(digits.background(4, 1), evaluate_stage.shap_background(train, 4, 1))


def test_streamed_robustness_equals_in_memory(digits_checkpoint, tmp_path, batch_coupled):
    """The opt-in robustness and stability metrics re-explain the same copies on both routes (each
    image's noise is keyed by its id), so a sharded run reports the same numbers."""
    robust = EvalSettings(batch_size=4, resamples=200, null_draws=20,
                          metric_settings={"max_sensitivity": {"samples": 3, "images": 8}})  # fmt: skip
    settings = EvaluateSettings(methods=("qa", "gradcam"), dataset="digits", layer="reduce", per_class=1,
                                seed=1, metrics=("robustness", "stability"), scoring=robust)  # fmt: skip
    memory = run_evaluate(tmp_path / "memory", model=digits_checkpoint, settings=settings)
    streamed = run_evaluate(tmp_path / "stream", model=digits_checkpoint, settings=settings,
                            stream=StreamSettings(shard_size=4))  # fmt: skip
    memory["summary"].pop("model test accuracy")
    assert stable(streamed) == stable(memory)
    assert np.isfinite(memory["qa"]["max_sensitivity"])
    assert np.isfinite(memory["gradcam"]["selection_jaccard_noise"])
    assert_same_per_image(tmp_path / "stream" / "per_image.npz", tmp_path / "memory" / "per_image.npz")
