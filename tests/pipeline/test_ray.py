"""`qxai explain` and `qxai evaluate` on Ray equal the single-process run; bad addresses fail fast."""

from __future__ import annotations

import time

import pytest

from qxai.cli.main import main
from qxai.models import load_checkpoint
from qxai.pipeline.explain import ExplainSettings, StreamSettings, run_explain

from ..numerics import assert_docs_close, assert_npz_close, route_tolerance
from .test_stream import without_timing

ray = pytest.importorskip("ray")


def test_local_ray_run_equals_single_process_run(digits_checkpoint, tmp_path, local_ray):
    settings = ExplainSettings(dataset="digits", layer="reduce", per_class=1, batch_size=4, seed=5)
    single = run_explain(
        tmp_path / "single", model=digits_checkpoint, settings=settings, stream=StreamSettings(shard_size=4)
    )
    on_ray = run_explain(
        tmp_path / "ray", model=digits_checkpoint, settings=settings,
        stream=StreamSettings(shard_size=4, ray=True, workers=2),
    )  # fmt: skip
    assert on_ray["summary"]["images"] == 10 and on_ray["stream"] == single["stream"]
    # a Ray actor computes with one thread, this process with two: equal within float32 rounding
    tol = route_tolerance(load_checkpoint(digits_checkpoint).model)
    assert_docs_close(without_timing(on_ray), without_timing(single), tol)
    assert_npz_close(tmp_path / "ray" / "saliency.npz", tmp_path / "single" / "saliency.npz", tol)
    for k in range(3):
        assert_npz_close(
            tmp_path / "ray" / "shards" / f"shard-{k:05d}.npz",
            tmp_path / "single" / "shards" / f"shard-{k:05d}.npz", tol,
        )


@pytest.mark.parametrize("command", ["explain", "evaluate"])
def test_unreachable_ray_address_fails_fast(digits_checkpoint, tmp_path, capsys, command):
    start = time.monotonic()
    args = [command, "--model", str(digits_checkpoint), "--ray-address", "127.0.0.1:1"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach a Ray cluster at 127.0.0.1:1") and "ray start --head" in err
    assert len(err.strip().splitlines()) == 1


def test_local_ray_evaluation_equals_single_process_evaluation(digits_checkpoint, tmp_path, local_ray):
    from qxai.evaluate import EvalSettings
    from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate

    from .test_stream_evaluate import stable

    settings = EvaluateSettings(
        methods=("qa", "gradcam"), dataset="digits", layer="reduce", per_class=1, seed=2,
        scoring=EvalSettings(batch_size=4, resamples=100, null_draws=20, sanity_images=4),
    )  # fmt: skip
    single = run_evaluate(
        tmp_path / "single", model=digits_checkpoint, settings=settings, stream=StreamSettings(shard_size=4)
    )
    on_ray = run_evaluate(
        tmp_path / "ray", model=digits_checkpoint, settings=settings,
        stream=StreamSettings(shard_size=4, ray=True, workers=2),
    )  # fmt: skip
    assert on_ray["summary"]["images"] == 10 and on_ray["stream"] == single["stream"]
    tol = route_tolerance(load_checkpoint(digits_checkpoint).model)  # one thread per actor vs two here
    assert_docs_close(stable(on_ray), stable(single), tol)
    for npz in ("method_saliency.npz", "per_image.npz"):
        assert_npz_close(tmp_path / "ray" / npz, tmp_path / "single" / npz, tol)
