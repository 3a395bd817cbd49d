"""Models by name, checkpoints that refuse hostile files, layer lookup and deterministic training."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from qxai.errors import QxaiError
from qxai.models import build_model, load_checkpoint, save_checkpoint
from qxai.models.registry import default_layer
from qxai.probe import resolve_layer


@pytest.mark.parametrize(
    ("arch", "channels", "size", "layer"),
    [
        ("reduced-cnn", 1, (28, 28), "reduce"),
        ("qixai-cnn", 3, (48, 48), "conv2"),
        ("resnet18-reduced", 3, (64, 64), "reduce"),
    ],
)
def test_each_architecture_builds_and_names_its_layer(arch, channels, size, layer):
    model = build_model(arch, in_channels=channels, num_classes=4, image_size=size)
    assert model(torch.rand(2, channels, *size)).shape == (2, 4)
    assert default_layer(model) == layer
    out = {}
    resolve_layer(model, layer).register_forward_hook(lambda m, a, o: out.setdefault("x", o))
    model(torch.rand(1, channels, *size))
    assert out["x"].ndim == 4


def test_reduced_cnn_has_the_requested_number_of_maps():
    model = build_model("reduced-cnn", in_channels=1, num_classes=10, image_size=(28, 28), maps=12)
    assert model.reduce[0].out_channels == 12
    assert isinstance(model.reduce[2], torch.nn.BatchNorm2d)


def test_unknown_architecture_suggests_the_close_name():
    with pytest.raises(QxaiError, match="did you mean 'reduced-cnn'"):
        build_model("reduced_cnn", in_channels=1, num_classes=2, image_size=(8, 8))


def test_unknown_layer_suggests_the_close_name():
    model = build_model("qixai-cnn", in_channels=1, num_classes=2, image_size=(16, 16))
    with pytest.raises(QxaiError, match="did you mean 'conv2'"):
        resolve_layer(model, "conv_2")


def _config():
    return {
        "arch": "reduced-cnn",
        "hparams": {"maps": 4},
        "in_channels": 1,
        "num_classes": 3,
        "image_size": [8, 8],
    }


def test_checkpoint_round_trip_keeps_weights_and_config(tmp_path):
    model = build_model("reduced-cnn", in_channels=1, num_classes=3, image_size=(8, 8), maps=4).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, _config())
    loaded = load_checkpoint(path)
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(loaded.model(x), model(x))
    assert loaded.config == _config()
    assert not loaded.model.training


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))

    def __init__(self, marker: str) -> None:
        self.marker = marker


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "executed"
    bad = tmp_path / "evil.pt"
    torch.save({"format": "qxai-checkpoint", "payload": _Boom(str(marker))}, bad)
    assert not marker.exists()  # saving does not run it
    with pytest.raises(QxaiError, match="refused"):
        load_checkpoint(bad)
    assert not marker.exists()
    # a plain pickle file is refused as well
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(QxaiError):
        load_checkpoint(plain)
    assert not marker.exists()


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path):
    model = build_model("reduced-cnn", in_channels=1, num_classes=3, image_size=(8, 8), maps=4)
    good = save_checkpoint(tmp_path / "m.pt", model, _config())
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(QxaiError, match="truncated"):
        load_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save(model.state_dict(), foreign)
    with pytest.raises(QxaiError, match="not a qxai checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(QxaiError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(QxaiError):
        load_checkpoint(text)


def test_training_is_deterministic_for_a_seed(tmp_path):
    from qxai.pipeline.train import run_train, train_config

    config = train_config("digits", "reduced-cnn", maps=4, epochs=1, seed=3, batch_size=64, lr=2e-3)
    a = run_train(config, tmp_path / "a.pt")
    b = run_train(config, tmp_path / "b.pt")
    assert a["metrics"]["test_accuracy"] == b["metrics"]["test_accuracy"]
    wa, wb = (torch.load(tmp_path / n, weights_only=True)["state_dict"] for n in ("a.pt", "b.pt"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_trained_digits_model_learns(digits_checkpoint):
    ckpt = load_checkpoint(digits_checkpoint)
    assert ckpt.config["metrics"]["test_accuracy"] > 0.8
    assert ckpt.config["class_names"] == [str(i) for i in range(10)]


def test_user_model_file_and_torchscript(tmp_path):
    from qxai.models.user import load_user_model

    src = tmp_path / "net.py"
    src.write_text(
        "import torch\nclass Net(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = torch.nn.Conv2d(1, 4, 3)\n"
        "        self.head = torch.nn.Linear(4, 2)\n"
        "    def forward(self, x):\n        return self.head(self.conv(x).mean((2, 3)))\n"
    )
    model = load_user_model(f"{src}:Net")
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 2)
    scripted = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(model), scripted)
    assert load_user_model(str(scripted))(torch.rand(1, 1, 8, 8)).shape == (1, 2)
    with pytest.raises(QxaiError, match=r"no nn\.Module class named 'Nope'"):
        load_user_model(f"{src}:Nope")
    with pytest.raises(QxaiError, match="does not exist"):
        load_user_model(str(tmp_path / "missing.py:Net"))


def test_pretrained_resnet_without_local_weights_is_a_clear_error(tmp_path, monkeypatch):
    from qxai.models.pretrained import find_resnet18_weights, load_resnet18_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(QxaiError, match="weights not found"):
        find_resnet18_weights()
    # weights present locally (a state_dict in torchvision's layout) are used
    from torchvision.models import resnet18

    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), path)
    assert find_resnet18_weights() == path
    model = build_model(
        "resnet18-reduced", in_channels=3, num_classes=2, image_size=(32, 32), weights_path=str(path)
    )
    assert torch.equal(model.trunk.conv1.weight, reference.conv1.weight)
    assert "conv1.weight" in load_resnet18_weights(path)


def test_user_model_file_and_torchscript_through_the_pipeline(tmp_path, user_model_file):
    src = user_model_file
    from qxai.models.loading import load_model_and_data

    md = load_model_and_data(f"{src}:Net", dataset="digits")
    assert md.layer == "features" and md.class_names[0] == "0"
    scripted = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(md.model), scripted)
    assert load_model_and_data(str(scripted), dataset="digits", layer="features").layer == "features"
    with pytest.raises(QxaiError, match="pass --dataset"):
        load_model_and_data(f"{src}:Net")
    with pytest.raises(QxaiError, match="no layer named 'featurs' in Net; did you mean 'features'"):
        load_model_and_data(f"{src}:Net", dataset="digits", layer="featurs")
