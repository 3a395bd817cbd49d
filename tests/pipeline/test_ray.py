"""`qxai explain` on Ray: a local runtime gives the single-process files; a bad address fails fast."""

from __future__ import annotations

import shutil
import tempfile
import time

import pytest

from qxai.cli.main import main
from qxai.pipeline.explain import ExplainSettings, StreamSettings, run_explain

from .test_stream import assert_same_arrays, without_timing

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray(monkeypatch):
    """A private two-CPU Ray runtime (its own short temp dir, no token auth), always shut down."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(prefix="qxray", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def test_local_ray_run_equals_single_process_run(digits_checkpoint, tmp_path, local_ray):
    settings = ExplainSettings(dataset="digits", layer="reduce", per_class=1, batch_size=4, seed=5)
    single = run_explain(
        tmp_path / "single", model=digits_checkpoint, settings=settings, stream=StreamSettings(shard_size=4)
    )
    on_ray = run_explain(
        tmp_path / "ray", model=digits_checkpoint, settings=settings,
        stream=StreamSettings(shard_size=4, ray=True, workers=2),
    )  # fmt: skip
    assert on_ray["summary"]["images"] == 10
    assert without_timing(on_ray) == without_timing(single) and on_ray["stream"] == single["stream"]
    assert_same_arrays(tmp_path / "ray" / "saliency.npz", tmp_path / "single" / "saliency.npz")
    for k in range(3):
        assert_same_arrays(
            tmp_path / "ray" / "shards" / f"shard-{k:05d}.npz",
            tmp_path / "single" / "shards" / f"shard-{k:05d}.npz",
        )


def test_unreachable_ray_address_fails_fast(digits_checkpoint, tmp_path, capsys):
    start = time.monotonic()
    args = ["explain", "--model", str(digits_checkpoint), "--ray-address", "127.0.0.1:1"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach a Ray cluster at 127.0.0.1:1") and "ray start --head" in err
    assert len(err.strip().splitlines()) == 1
