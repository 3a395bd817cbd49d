"""Bad input: one line `error: …; fix` on stderr, exit 2, before any compute, nothing written.

One table: (command line, expected message fragment, exit code). ``{tmp}`` is a fresh folder,
``{zero}`` a 0-byte checkpoint, ``{nojson}`` a checkpoint whose config is not JSON, ``{file}`` an
existing file, ``{dir}`` an existing folder, ``{readonly}`` a folder nobody may write in,
``{raises}``/``{four_d}`` user model files whose forward raises / returns a 4-D tensor, and
``{usermodel}`` a checkpoint of a user model whose code is not named.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from qxai.cli.main import main

RAISES = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        raise ValueError("my model is broken")
"""

FOUR_D = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 10, 3)

    def forward(self, x):
        return self.conv(x)
"""

TRAIN = ["train", "--dataset", "digits", "--epochs", "1", "--maps", "4"]

CASES = [
    # names and files
    (["train", "--dataset", "mnits", "--out", "{tmp}/m.pt"], "did you mean 'mnist'", 2),
    ([*TRAIN, "--arch", "resnet", "--out", "{tmp}/m.pt"], "unknown architecture", 2),
    (["train", "--dataset", "imagefolder:/nonexistent/folder", "--out", "{tmp}/m.pt"], "does not exist", 2),
    (["train", "--arch", "qixai-cnn", "--pretrained", "--out", "{tmp}/m.pt"], "only to --arch resnet18", 2),
    # checkpoints
    (["explain", "--model", "{zero}"], "is empty (0 bytes)", 2),
    (["evaluate", "--model", "{zero}", "--out", "{tmp}/ev"], "is empty (0 bytes)", 2),
    (["explain", "--model", "{nojson}"], "is not a JSON object", 2),
    (["explain", "--model", "{usermodel}"], "never imports code a checkpoint names", 2),
    # numbers
    ([*TRAIN, "--seed", "-1", "--out", "{tmp}/m.pt"], "--seed must be an integer in [0, 2**32)", 2),
    (["explain", "--model", "{zero}", "--seed", "-1"], "--seed must be an integer", 2),
    ([*TRAIN, "--lr", "nan", "--out", "{tmp}/m.pt"], "--lr must be a positive finite number", 2),
    ([*TRAIN, "--lr", "-1", "--out", "{tmp}/m.pt"], "--lr must be a positive finite number", 2),
    ([*TRAIN, "--image-size", "0", "--out", "{tmp}/m.pt"], "Invalid value for '--image-size'", 2),
    ([*TRAIN, "--batch-size", "0", "--out", "{tmp}/m.pt"], "Invalid value for '--batch-size'", 2),
    # option values the CLI framework rejects: the same one-line form
    (["explain", "--model", "{zero}", "--per-class", "0"], "--per-class", 2),
    (["evaluate", "--model", "{zero}", "--per-class", "0"], "--per-class", 2),
    (["explain", "--per-class", "2"], "name the model: --model", 2),
    ([*TRAIN, "--epochs", "x"], "Invalid value for '--epochs'", 2),
    (["no-such-command"], "No such command", 2),
    # user models
    ([*TRAIN, "--model-file", "{raises}:Net", "--out", "{tmp}/m.pt"], "ValueError: my model is broken", 2),
    ([*TRAIN, "--model-file", "{four_d}:Net", "--out", "{tmp}/m.pt"], "returned shape (2, 10, 14, 14)", 2),
    (["explain", "--model", "{four_d}:Net", "--dataset", "digits", "--layer", "conv", "--out", "{tmp}/e"],
     "returned shape (2, 10, 14, 14)", 2),
    (["evaluate", "--model", "{raises}:Net", "--dataset", "digits", "--layer", "conv", "--out", "{tmp}/e"],
     "ValueError: my model is broken", 2),
    # where outputs go
    ([*TRAIN, "--out", "{dir}"], "is an existing folder; pass a file path", 2),
    ([*TRAIN, "--out", "{file}/m.pt"], "sits under the file", 2),
    ([*TRAIN, "--out", "{readonly}/m.pt"], "cannot write in", 2),
    (["explain", "--model", "{zero}", "--out", "{file}"], "is an existing file; pass a folder path", 2),
    (["evaluate", "--model", "{zero}", "--out", "{file}/sub"], "sits under the file", 2),
    (["explain", "--model", "{zero}", "--out", "{readonly}/explain"], "cannot write in", 2),
]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    from qxai.models import save_checkpoint

    zero = tmp_path / "zero.pt"
    zero.write_bytes(b"")
    nojson = tmp_path / "nojson.pt"
    torch.save({"format": "qxai-checkpoint", "version": 1, "config": "{arch: oops", "state_dict": {}}, nojson)
    usermodel = save_checkpoint(
        tmp_path / "user.pt", torch.nn.Linear(1, 1), {"arch": "file:net.py:Net", "dataset": "digits"}
    )
    (tmp_path / "file").write_text("a file")
    (tmp_path / "dir").mkdir()
    (tmp_path / "raises.py").write_text(RAISES)
    (tmp_path / "four_d.py").write_text(FOUR_D)
    if os.geteuid() == 0:  # root writes through permission bits: use a file system that refuses writes
        readonly = Path("/sys/qxai-readonly")
    else:
        readonly = tmp_path / "readonly"
        readonly.mkdir()
        readonly.chmod(0o555)
    return {
        "tmp": str(tmp_path / "new"), "zero": str(zero), "nojson": str(nojson), "usermodel": str(usermodel),
        "file": str(tmp_path / "file"), "dir": str(tmp_path / "dir"), "readonly": str(readonly),
        "raises": str(tmp_path / "raises.py"), "four_d": str(tmp_path / "four_d.py"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fragment", "code"), CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES]
)
def test_bad_input_is_one_line_before_any_compute(
    args, fragment, code, inputs, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # default output folders land here, if anything were written
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as done:
        main([a.format(**inputs) for a in args])
    err = capsys.readouterr().err
    assert done.value.code == code, err
    assert fragment in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
