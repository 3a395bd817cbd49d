"""Atomic writes: a failure leaves the previous file untouched and no temporary behind."""

from __future__ import annotations

import json
import os

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


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_mode_the_umask_implies(tmp_path, umask):
    import stat

    import torch

    from qxai.io import write_figure, write_text
    from qxai.models import save_checkpoint

    previous = os.umask(umask)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        paths = [
            write_json(tmp_path / "a.json", {"a": 1}),
            write_npz(tmp_path / "a.npz", x=np.zeros(2)),
            write_text(tmp_path / "a.txt", "x"),
            write_figure(tmp_path / "a.png", plt.figure()),
            save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(1, 1), {"arch": "x"}),
        ]
    finally:
        os.umask(previous)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporaries


@pytest.mark.parametrize(
    ("check", "make", "fragment"),
    [
        ("file", lambda t: t.mkdir(), "is an existing folder"),
        ("folder", lambda t: t.write_text("x"), "is an existing file"),
        ("file", lambda t: None, None),
        ("folder", lambda t: t.mkdir(), None),
    ],
)
def test_output_location_checks(tmp_path, check, make, fragment):
    from qxai.io import check_output_file, check_output_folder

    target = tmp_path / "out"
    make(target)
    run = check_output_file if check == "file" else check_output_folder
    if fragment is None:
        assert run(target) == target
        assert run(tmp_path / "new" / "deeper" / "x") == tmp_path / "new" / "deeper" / "x"
        assert not (tmp_path / "new").exists()  # checking creates nothing
    else:
        with pytest.raises(QxaiError, match=fragment):
            run(target)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(QxaiError, match="sits under the file"):
        run(tmp_path / "plain" / "sub" / "x")
