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


def test_bad_checkpoint_via_cli_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    from qxai.errors import QxaiError
    from qxai.models.loading import load_model_and_data

    with pytest.raises(QxaiError):
        load_model_and_data(str(bad))


def test_train_a_user_model_file(tmp_path, user_model_file):
    src = user_model_file
    out = tmp_path / "user.pt"
    done = qxai(
        "train", "--dataset", "digits", "--epochs", "1", "--model-file", f"{src}:Net", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    from qxai.models.loading import load_model_and_data

    md = load_model_and_data(str(out), model_file=f"{src}:Net")
    assert md.layer == "features" and md.config["arch"] == "file:net.py:Net"  # relative to the checkpoint


SLOW_MODEL = """
import time
from pathlib import Path

import torch

(Path(__file__).parent / "started").touch()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.head = torch.nn.Linear(2, 10)

    def forward(self, x):
        time.sleep(0.01)
        return self.head(self.features(x).mean((2, 3)))
"""


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    import signal
    import time

    from qxai.cli.main import INTERRUPTED

    (tmp_path / "slow.py").write_text(SLOW_MODEL)
    out = tmp_path / "m.pt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qxai", "train", "--dataset", "digits", "--epochs", "1000",
         "--model-file", f"{tmp_path / 'slow.py'}:Net", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"QXAI_PROGRESS": "0", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # inside the training loop by now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == INTERRUPTED
    assert not out.exists()
