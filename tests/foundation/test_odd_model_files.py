"""Anything passed as --model that is not a model gets one line naming what it is, and never hangs."""

from __future__ import annotations

import os

import pytest

from qxai.cli.main import main


def odd_inputs(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "notes.pt").write_text("this is a text file\n")
    (tmp_path / "garbage.pt").write_bytes(bytes(range(7, 200)))
    (tmp_path / "net.py").write_text("import torch\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    return {
        "pipe": (str(fifo), "is not a regular file (a pipe)"),
        "device": ("/dev/null", "is not a regular file (a device)"),
        "folder": (str(tmp_path / "folder.pt"), "is a folder"),
        "text": (str(tmp_path / "notes.pt"), "is a text file, not a checkpoint"),
        "garbage": (str(tmp_path / "garbage.pt"), "is not a PyTorch file (it starts with bytes 0708090a)"),
        "python": (str(tmp_path / "net.py"), "is Python code, not a checkpoint; pass it as --model"),
        "empty": (str(tmp_path / "empty.pt"), "is empty (0 bytes)"),
    }


@pytest.mark.parametrize("kind", ["pipe", "device", "folder", "text", "garbage", "python", "empty"])
@pytest.mark.parametrize("command", ["explain", "analyze"])
def test_an_odd_model_file_is_one_line_exit_2(tmp_path, capsys, kind, command):
    spec, fragment = odd_inputs(tmp_path)[kind]
    with pytest.raises(SystemExit) as stop:
        main([command, "--model", spec, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert fragment in err, err
    assert not (tmp_path / "out").exists()


def test_a_pipe_named_as_model_code_is_refused_without_reading_it(tmp_path, capsys):
    fifo = tmp_path / "net.py"
    os.mkfifo(fifo)
    with pytest.raises(SystemExit) as stop:
        main(["explain", "--model", f"{fifo}:Net", "--dataset", "digits", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "is not a regular file (a pipe)" in err and len(err.splitlines()) == 1
