"""The command line: one-line errors with a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def qxai(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qxai", *args], capture_output=True, text=True, cwd=cwd,
        env={"QXAI_PROGRESS": "0", "PATH": "/usr/bin:/bin"}, timeout=300,
    )  # fmt: skip


def test_version():
    done = qxai("--version")
    assert done.returncode == 0 and done.stdout.startswith("qxai ")


def test_train_reports_accuracy_and_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "m.pt"
    done = qxai("train", "--dataset", "digits", "--epochs", "1", "--maps", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    from qxai.models import load_checkpoint

    assert load_checkpoint(out).config["hparams"] == {"maps": 4}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "mnits"], "did you mean 'mnist'"),
        (["train", "--dataset", "digits", "--arch", "resnet"], "unknown architecture"),
        (["train", "--dataset", "imagefolder:/nonexistent/folder"], "does not exist"),
        (["train", "--arch", "qixai-cnn", "--pretrained"], "only to --arch resnet18-reduced"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    done = qxai(*args, "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_bad_checkpoint_via_cli_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    from qxai.errors import QxaiError
    from qxai.pipeline.common import load_model_and_data

    with pytest.raises(QxaiError):
        load_model_and_data(str(bad))


def test_train_a_user_model_file(tmp_path, user_model_file):
    src = user_model_file
    out = tmp_path / "user.pt"
    done = qxai(
        "train", "--dataset", "digits", "--epochs", "1", "--model-file", f"{src}:Net", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    from qxai.pipeline.common import load_model_and_data

    md = load_model_and_data(str(out))
    assert md.layer == "features" and md.config["arch"].startswith("file:")
