"""The demo twice with the same seed gives the same numbers, timings apart (issue: reproducible headline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qxai.pipeline.demo import DemoSettings, run_demo

#: Keys whose values are measurements of time or memory (or run stamps), not results.
_VOLATILE = ("seconds", "memory", "run_id", "started", "elapsed", "throughput", "per_second", "sha256")
_COST = {"seconds_per_image", "peak_memory_mb", "exact_check_seconds_per_image"}


def _stable(obj: Any) -> Any:
    """The JSON document without timing fields and without verdicts that rank timings."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            k = str(key)
            if any(word in k for word in _VOLATILE) or k in _COST:
                continue
            out[k] = _stable(value)
        return out
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _documents(run: Path, cache: Path) -> dict[str, Any]:
    docs = {}
    for path in sorted(run.rglob("*.json")):
        if path.name == "stages.json":
            continue
        # the run folder's and the model cache's own paths differ between the two runs, nothing else may
        text = path.read_text().replace(str(run), "RUN").replace(str(cache), "CACHE")
        docs[str(path.relative_to(run))] = _stable(json.loads(text))
    return docs


@pytest.mark.slow
def test_the_demo_twice_with_one_seed_gives_the_same_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("QXAI_CACHE", str(tmp_path / "cache"))
    tiny = DemoSettings(
        dataset="digits", maps=6, epochs=1, per_class=2, methods=("qa", "gradcam", "ig"), taus=(2.0,),
        max_qubits=6, anneal_per_class=1, analysis_images=64, lime_samples=16, curve_steps=4, sanity_images=4,
    )  # fmt: skip
    run_demo(tmp_path / "a", tiny, command="qxai demo")
    monkeypatch.setenv("QXAI_CACHE", str(tmp_path / "cache-b"))  # retrain too: training is seeded
    run_demo(tmp_path / "b", tiny, command="qxai demo")
    a, b = _documents(tmp_path / "a", tmp_path / "cache"), _documents(tmp_path / "b", tmp_path / "cache-b")
    assert a.keys() == b.keys() and len(a) >= 5
    for name in a:
        assert a[name] == b[name], name
    for npz in sorted((tmp_path / "a").rglob("*.npz")):
        with np.load(npz) as x, np.load(tmp_path / "b" / npz.relative_to(tmp_path / "a")) as y:
            assert x.files == y.files
            for key in x.files:
                if any(word in key for word in _VOLATILE):
                    continue
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{npz.name}:{key}")
