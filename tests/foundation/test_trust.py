"""The trust rule: a checkpoint never imports code on its own; the user names the model's code, whose
SHA-256 must equal the one recorded at training time; paths are stored relative to the checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from qxai.errors import QxaiError
from qxai.models import allow_model_code, load_checkpoint, save_checkpoint
from qxai.models.user import file_sha256

# importing this file leaves a marker next to it: the tests see whether its code ran
MARKED_MODEL = """
from pathlib import Path

import torch

from blocks import WIDTH  # a sibling module: part of the model's code

(Path(__file__).parent / "imported.marker").touch()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv2d(1, WIDTH, 3, padding=1)
        self.head = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.head(torch.relu(self.features(x)).mean((2, 3)))
"""

BLOCKS = "WIDTH = 4\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/code/net.py`` (importing ``root/code/blocks.py``) and ``root/m.pt``, trained one epoch
    on digits; returns ``root``."""
    from qxai.pipeline.train import run_train, train_config

    root = tmp_path_factory.mktemp("trust")
    (root / "code").mkdir()
    (root / "code" / "net.py").write_text(MARKED_MODEL)
    (root / "code" / "blocks.py").write_text(BLOCKS)
    config = train_config(
        "digits", f"file:{root / 'code' / 'net.py'}:Net", maps=None, epochs=1, seed=0, batch_size=64, lr=2e-3
    )
    run_train(config, root / "m.pt")
    (root / "code" / "imported.marker").unlink()
    return root


def _copy(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained tree (tests edit and move files)."""
    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    (root / "code" / "imported.marker").unlink(missing_ok=True)
    return root


def test_checkpoint_records_relative_path_and_sha256(trained):
    config = load_checkpoint(trained / "m.pt", model_file=str(trained / "code" / "net.py")).config
    assert config["arch"] == "file:code/net.py:Net"
    assert config["model_sha256"] == file_sha256(trained / "code" / "net.py")


def test_loading_without_named_code_refuses_and_runs_nothing(trained, tmp_path):
    root = _copy(trained, tmp_path)
    with pytest.raises(QxaiError, match="never imports code a checkpoint names; pass --model-file") as err:
        load_checkpoint(root / "m.pt")
    assert "\n" not in str(err.value)
    assert not (root / "code" / "imported.marker").exists()


@pytest.mark.parametrize("how", ["model_file", "model_file_with_class", "trust", "context"])
def test_named_or_trusted_code_loads_the_trained_weights(trained, tmp_path, how):
    root = _copy(trained, tmp_path)
    ckpt = root / "m.pt"
    code = root / "code" / "net.py"
    if how == "model_file":
        loaded = load_checkpoint(ckpt, model_file=str(code))
    elif how == "model_file_with_class":
        loaded = load_checkpoint(ckpt, model_file=f"{code}:Net")
    elif how == "trust":
        loaded = load_checkpoint(ckpt, trust_model_code=True)
    else:  # what the CLI's --model-file does
        with allow_model_code(model_file=f"{code}:Net"):
            loaded = load_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in state.items())
    assert (root / "code" / "imported.marker").exists()


@pytest.mark.parametrize("how", ["model_file", "trust"])
def test_edited_code_is_refused_before_it_runs(trained, tmp_path, how):
    root = _copy(trained, tmp_path)
    code = root / "code" / "net.py"
    code.write_text(MARKED_MODEL.replace("Linear(4, 10)", "Linear(4, 10)  # edited after training"))
    options = {"model_file": str(code)} if how == "model_file" else {"trust_model_code": True}
    with pytest.raises(QxaiError, match=r"differs from the code .* was trained with \(SHA-256"):
        load_checkpoint(root / "m.pt", **options)
    assert not (root / "code" / "imported.marker").exists()


def test_checkpoint_records_the_modules_the_model_file_imports(trained):
    config = json.loads(torch.load(trained / "m.pt", weights_only=True)["config"])
    code = trained / "code"
    assert config["model_code"] == {name: file_sha256(code / name) for name in ("blocks.py", "net.py")}


@pytest.mark.parametrize("how", ["model_file", "trust"])
def test_an_edited_sibling_module_is_refused_before_it_runs(trained, tmp_path, how):
    root = _copy(trained, tmp_path)
    (root / "code" / "blocks.py").write_text(BLOCKS + "import os  # edited after training\n")
    named = {"model_file": str(root / "code" / "net.py")}
    options = named if how == "model_file" else {"trust_model_code": True}
    with pytest.raises(QxaiError, match=r"blocks\.py \(imported by net\.py\) differs from the code") as err:
        load_checkpoint(root / "m.pt", **options)
    assert "\n" not in str(err.value)
    assert not (root / "code" / "imported.marker").exists()


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_trust_never_imports_code_outside_the_checkpoint_folder(trained, tmp_path, where):
    root = _copy(trained, tmp_path)
    code = root / "code" / "net.py"
    config = json.loads(torch.load(root / "m.pt", weights_only=True)["config"])
    (root / "runs").mkdir()
    ref = "../code/net.py" if where == "parent" else str(code)
    crafted = {**config, "arch": f"file:{ref}:Net"}
    path = save_checkpoint(root / "runs" / "m.pt", torch.nn.Linear(1, 1), crafted)
    with pytest.raises(QxaiError, match=r"outside its own folder .* never imports; pass --model-file"):
        load_checkpoint(path, trust_model_code=True)
    assert not (root / "code" / "imported.marker").exists()
    with pytest.raises(QxaiError, match="weights do not fit"):  # named by the user: imported, then checked
        load_checkpoint(path, model_file=str(code))


def test_checkpoint_and_code_move_together(trained, tmp_path):
    moved = _copy(trained, tmp_path / "elsewhere")
    (trained / "code" / "imported.marker").unlink(missing_ok=True)
    loaded = load_checkpoint(moved / "m.pt", trust_model_code=True)
    assert loaded.config["num_classes"] == 10
    assert (moved / "code" / "imported.marker").exists()
    assert not (trained / "code" / "imported.marker").exists()  # the original file did not run


def test_crafted_config_pointing_at_any_file_runs_nothing(tmp_path):
    evil = tmp_path / "evil.py"
    evil.write_text(f"from pathlib import Path\nPath({str(tmp_path / 'pwned')!r}).touch()\n")
    config = {"arch": f"file:{evil}:Net", "model_sha256": file_sha256(evil), "dataset": "digits"}
    path = save_checkpoint(tmp_path / "crafted.pt", torch.nn.Linear(1, 1), config)
    with pytest.raises(QxaiError, match="never imports code"):
        load_checkpoint(path)
    from qxai.models.loading import load_model_and_data

    with pytest.raises(QxaiError, match="never imports code"):
        load_model_and_data(str(path))
    assert not (tmp_path / "pwned").exists()


def test_load_model_and_data_takes_the_model_file(trained, tmp_path):
    from qxai.models import test_accuracy
    from qxai.models.loading import load_model_and_data

    root = _copy(trained, tmp_path)
    md = load_model_and_data(str(root / "m.pt"), model_file=str(root / "code" / "net.py"))
    assert md.layer == "features" and md.split.test.image_shape == (1, 16, 16)
    recorded = json.loads(torch.load(root / "m.pt", weights_only=True)["config"])["metrics"]
    assert test_accuracy(md.model, md.split) == recorded["test_accuracy"]  # the same held-out images


def test_cli_refuses_unnamed_and_edited_code_in_one_line(trained, tmp_path, capsys):
    from qxai.cli.main import main

    root = _copy(trained, tmp_path)
    ckpt = str(root / "m.pt")
    (root / "code" / "net.py").write_text(MARKED_MODEL + "\n# edited\n")
    for extra, fragment in [
        ([], "never imports code a checkpoint names"),
        (["--model-file", str(root / "code" / "net.py")], "differs from the code"),
        (["--trust-model-code"], "differs from the code"),
    ]:
        with pytest.raises(SystemExit) as done:
            main(["explain", "--model", ckpt, "--out", str(tmp_path / "out"), *extra])
        err = capsys.readouterr().err
        assert done.value.code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (root / "code" / "imported.marker").exists()


def test_cli_explains_a_user_checkpoint_with_its_named_code(trained, tmp_path, capsys):
    from qxai.cli.main import main

    root = _copy(trained, tmp_path)
    out = tmp_path / "explain"
    with pytest.raises(SystemExit) as done:
        main([
            "explain", "--model", str(root / "m.pt"), "--model-file", str(root / "code" / "net.py"),
            "--per-class", "1", "--solver", "exact", "--out", str(out),
        ])  # fmt: skip
    assert done.value.code == 0, capsys.readouterr().err
    assert (out / "explanations.json").is_file()
