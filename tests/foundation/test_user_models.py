"""Models a user brings: sibling imports, TorchScript, forward checks, accuracy; the training loop."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from qxai.errors import QxaiError
from qxai.models.user import check_model_output, is_scriptmodule, load_user_model

BLOCKS = """
import torch


def trunk(channels):
    return torch.nn.Sequential(torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.ReLU())
"""

NET_WITH_SIBLING = """
import torch
from blocks import trunk


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = trunk(6)
        self.head = torch.nn.Linear(6, 10)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))
"""


@pytest.fixture
def sibling_model(tmp_path):
    folder = tmp_path / "mymodel"
    folder.mkdir()
    (folder / "blocks.py").write_text(BLOCKS)
    (folder / "net.py").write_text(NET_WITH_SIBLING)
    yield folder / "net.py"
    sys.modules.pop("blocks", None)  # the sibling module stays imported for the model's sake


def test_a_model_file_may_import_a_sibling_module(sibling_model):
    path_before = list(sys.path)
    model = load_user_model(f"{sibling_model}:Net")
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert sys.path == path_before  # the folder was on the import path only while importing


def test_train_and_reload_a_model_with_a_sibling_import(sibling_model, tmp_path):
    from qxai.models.loading import load_model_and_data
    from qxai.pipeline.train import run_train, train_config

    arch = f"file:{sibling_model}:Net"
    config = train_config("digits", arch, maps=None, epochs=1, seed=0, batch_size=64, lr=2e-3)
    saved = run_train(config, tmp_path / "m.pt")
    md = load_model_and_data(str(tmp_path / "m.pt"), model_file=str(sibling_model))
    assert md.layer == "features.0"
    assert saved["arch"] == "file:mymodel/net.py:Net"


def test_torchscript_models_are_recognised_and_get_a_default_layer(tmp_path, user_model_file):
    from qxai.models import default_layer
    from qxai.models.loading import load_model_and_data

    python_model = load_user_model(f"{user_model_file}:Net")
    scripted = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(python_model), scripted)
    md = load_model_and_data(str(scripted), dataset="digits")  # no --layer needed
    assert is_scriptmodule(md.model) and not is_scriptmodule(python_model)
    assert md.layer == default_layer(python_model) == "features"


def test_test_accuracy_matches_a_direct_count_and_keeps_the_mode(user_model_file):
    from qxai.models import test_accuracy
    from qxai.models.loading import load_model_and_data

    md = load_model_and_data(f"{user_model_file}:Net", dataset="digits")
    md.model.train()
    with torch.no_grad():
        logits = md.model.eval()(md.split.test.images)  # one batch; test_accuracy uses batches of 256
    md.model.train()
    expected = float(np.mean(logits.argmax(1).numpy() == md.split.test.labels.numpy()))
    # rows whose two best logits lie within float32 rounding may flip with the batch's BLAS kernel
    top2 = logits.topk(2, dim=1).values
    near_ties = int(((top2[:, 0] - top2[:, 1]) <= 1e-5 * top2.abs().max().clamp(min=1)).sum())
    assert abs(test_accuracy(md.model, md.split) - expected) <= near_ties / len(logits) + 1e-12
    assert md.model.training  # the caller's mode is given back


class _NaNLogits(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) * float("nan")


@pytest.mark.parametrize(
    ("model", "classes", "fragment"),
    [
        (torch.nn.Identity(), None, "returned shape (2, 1, 4, 4)"),
        (torch.nn.Flatten(), 3, "returns 16 logits per image but the data set has 3 classes"),
        (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2)), None, "failed on a batch of shape"),
        (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LogSigmoid(), torch.nn.Softmin(0)), None, "ok"),
        (_NaNLogits(), None, "non-finite"),
    ],
)
def test_model_output_check_names_the_problem(model, classes, fragment):
    if fragment == "ok":  # logits (B, K) of any finite values pass
        check_model_output(model, torch.rand(2, 1, 4, 4), 16)
        return
    with pytest.raises(QxaiError) as err:
        check_model_output(model, torch.rand(2, 1, 4, 4), classes)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_training_stops_on_a_non_finite_loss():
    from qxai.models import fit

    net = torch.nn.Linear(2, 2)
    data = [torch.ones(3, 2)]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(QxaiError, match="training diverged: the loss is nan in epoch 1; lower --lr"):
        fit(net, lambda: data, lambda m, x: m(x).sum() * float("nan"), opt, epochs=3, steps_per_epoch=1)
    assert not net.training


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("lr", float("nan"), "--lr must be"),
        ("lr", 0.0, "--lr must be"),
        ("lr", float("inf"), "--lr must be"),
        ("epochs", 0, "--epochs must be"),
        ("batch_size", 0, "--batch-size must be"),
        ("seed", -1, "--seed must be"),
        ("seed", 2**32, "--seed must be"),
        ("weight_decay", -1.0, "weight_decay"),
    ],
)
def test_train_settings_are_validated(field, value, fragment):
    from qxai.models import TrainSettings

    with pytest.raises(QxaiError, match=fragment):
        TrainSettings(**{field: value})


def test_two_model_files_with_same_named_sibling_modules_each_import_their_own(tmp_path):
    for name, width in (("one", 3), ("two", 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blocks.py").write_text(f"WIDTH = {width}\n")
        (tmp_path / name / "net.py").write_text(
            "import torch\nfrom blocks import WIDTH\n"
            "class Net(torch.nn.Module):\n"
            "    def __init__(self):\n        super().__init__()\n"
            "        self.head = torch.nn.Linear(WIDTH, 2)\n"
        )
    first = load_user_model(f"{tmp_path / 'one' / 'net.py'}:Net")
    second = load_user_model(f"{tmp_path / 'two' / 'net.py'}:Net")
    assert (first.head.in_features, second.head.in_features) == (3, 5)
