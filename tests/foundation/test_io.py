"""Atomic writes: a failure leaves the previous file untouched and no temporary behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qxai.errors import QxaiError
from qxai.io import atomic_path, read_json, write_json, write_npz


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_json_handles_numpy_and_non_finite(tmp_path):
    path = write_json(tmp_path / "x.json", {"v": np.float32(1.5), "a": np.arange(3), "nan": float("nan")})
    assert read_json(path) == {"v": 1.5, "a": [0, 1, 2], "nan": None}


def test_npz_round_trip_without_pickles(tmp_path):
    path = write_npz(tmp_path / "a.npz", x=np.eye(2))
    with np.load(path, allow_pickle=False) as data:
        assert np.array_equal(data["x"], np.eye(2))


def test_read_json_errors_are_clear(tmp_path):
    with pytest.raises(QxaiError, match="does not exist"):
        read_json(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(QxaiError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
