"""``--hf-model DIR``: a local Hugging Face image classifier (a tiny ``ViTConfig`` model trained here
for two epochs on ``digits`` and saved with ``save_pretrained`` — nothing downloads) loaded offline
from safetensors, its preprocessing applied, its layout declared, its attention exposed for rollout
and chefer; the CLI runs ``explain`` and ``evaluate`` on it; bad folders are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from qxai.cli.main import main  # noqa: E402
from qxai.errors import QxaiError  # noqa: E402
from qxai.explain.registry import get_explainer  # noqa: E402
from qxai.explain.rollout import recorded_attention  # noqa: E402
from qxai.explain.testing import assert_explainer_contract  # noqa: E402
from qxai.models import default_layer  # noqa: E402
from qxai.models.hf_vision import HFImageClassifier, load_hf_vision, preprocessing  # noqa: E402
from qxai.models.loading import hf_spec, load_model_and_data  # noqa: E402

EPS = float(torch.finfo(torch.float32).eps)
LAYER = "hf.vit.layers.1.layernorm_before"


def tiny_config(**kw: object) -> transformers.ViTConfig:
    base = dict(image_size=16, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=32, num_labels=10, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)  # fmt: skip
    return transformers.ViTConfig(**{**base, **kw})


def save(folder: Path, model: torch.nn.Module, mean: list[float] | None = (0.5,), std=(0.5,)) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    if mean is not None:
        transformers.ViTImageProcessor(
            size={"height": 16, "width": 16}, image_mean=list(mean), image_std=list(std)
        ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ViT trained for 2 epochs on digits (normalised by mean 0.5, std 0.5), saved."""
    from qxai.data import load_dataset

    split = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    hf = transformers.ViTForImageClassification(tiny_config())
    net = HFImageClassifier(hf, [0.5], [0.5])
    optimiser = torch.optim.Adam(net.parameters(), lr=5e-3)
    x, y = split.train.images, split.train.labels
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        for rows in torch.randperm(len(x), generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(net(x[rows]), y[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return save(tmp_path_factory.mktemp("hf") / "vit", hf.eval())


def cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0)


def images(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def plain_eager(folder: Path) -> torch.nn.Module:
    """The same folder loaded by transformers itself with its own eager attention."""
    return transformers.ViTForImageClassification.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, attn_implementation="eager"
    ).eval()


def test_loads_offline_applies_the_preprocessing_and_declares_the_layout(hf_folder):
    net = load_hf_vision(hf_folder)
    assert net.input_shape == (1, 16, 16) and net.patch_size == (4, 4) and net.num_prefix_tokens == 1
    assert default_layer(net) == LAYER and not net.training
    x = images()
    with torch.no_grad():
        want = plain_eager(hf_folder)(pixel_values=(x - 0.5) / 0.5).logits
        torch.testing.assert_close(net(x), want, rtol=0, atol=16 * EPS * float(want.abs().max()))
    assert preprocessing(hf_folder, 1) == ([0.5], [0.5])
    md = load_model_and_data(hf_spec(hf_folder), "digits")
    assert md.layer == LAYER and md.config["input_shape"] == [1, 16, 16]


def test_attention_is_exposed_for_rollout_and_chefer(hf_folder):
    from tests.explain.test_chefer import by_definition, close

    net = load_hf_vision(hf_folder)
    x, targets = images(), torch.tensor([0, 4, 7])
    out = plain_eager(hf_folder)(pixel_values=(x - 0.5) / 0.5, output_attentions=True)
    with torch.no_grad(), recorded_attention(net) as seen:
        net(x)
    assert len(seen) == 2
    for got, want in zip(seen, out.attentions, strict=True):  # the probabilities are Hugging Face's
        torch.testing.assert_close(got, want.detach(), rtol=0, atol=16 * EPS)
    grads = torch.autograd.grad(out.logits.gather(1, targets[:, None]).sum(), out.attentions)
    want = by_definition([a.detach().double().numpy() for a in out.attentions],
                         [g.double().numpy() for g in grads], prefix=1, grid=(4, 4))  # fmt: skip
    close(get_explainer("chefer", net, None).explain(x, targets).extras["relevance"], want)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "rollout", "chefer"])
def test_the_map_explainers_keep_the_contract_on_it(hf_folder, method):
    net = load_hf_vision(hf_folder)
    layer = default_layer(net) if method.startswith("gradcam") else None
    assert_explainer_contract(get_explainer(method, net, layer), net, images(3, seed=2))


def test_qxai_explain_and_evaluate_run_on_an_hf_folder(hf_folder, tmp_path, capsys):
    out = tmp_path / "explain"
    code = cli(["explain", "--hf-model", str(hf_folder), "--dataset", "digits", "--per-class", "1",
                "--ground-truth", "never", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Loading weights" not in captured.err + captured.out
    doc = json.loads((out / "explanations.json").read_text())
    assert doc["layer"] == LAYER and doc["checkpoint"] == hf_spec(hf_folder)
    assert doc["layer_layout"] == "1 leading token + a 4×4 patch grid of 16 channels"
    assert doc["summary"]["explained"] >= 1

    out = tmp_path / "evaluate"
    code = cli(["evaluate", "--hf-model", str(hf_folder), "--dataset", "digits", "--per-class", "1",
                "--methods", "gradcam,rollout,chefer", "--metrics", "deletion_auc,insertion_auc",
                "--resamples", "100", "--null-draws", "20", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "metrics.json").read_text())
    for method in ("gradcam", "rollout", "chefer"):
        assert "error" not in doc[method] and np.isfinite(doc[method]["deletion_auc"]), doc[method]
    assert doc["config"]["layer"] == LAYER


def _only_bin(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    transformers.ViTForImageClassification(tiny_config()).save_pretrained(folder, safe_serialization=True)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    return folder


def _not_a_classifier(tmp_path: Path) -> Path:
    folder = tmp_path / "base"
    transformers.ViTModel(tiny_config()).save_pretrained(folder, safe_serialization=True)
    return folder


def _no_head(tmp_path: Path) -> Path:
    from safetensors.torch import load_file, save_file

    folder = save(tmp_path / "headless", transformers.ViTForImageClassification(tiny_config()))
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier")},
              folder / "model.safetensors", metadata={"format": "pt"})  # fmt: skip
    return folder


def _wrong_size(tmp_path: Path) -> Path:
    return save(tmp_path / "small", transformers.ViTForImageClassification(tiny_config(image_size=8)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_only_bin, "holds only pytorch_model.bin, a pickle qxai never loads"),
        (lambda t: t / "absent", "is not a folder"),
        (lambda t: t, "has no config.json"),
        (_not_a_classifier, "not an image classifier"),
        (_no_head, "a classification head would be random"),
        (_wrong_size, "the model expects (1, 8, 8)"),
    ],
    ids=["pickle-only", "missing", "no-config", "base-model", "no-head", "wrong-size"],
)
def test_a_bad_folder_is_a_one_line_error(tmp_path, capsys, monkeypatch, make, message):
    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("a pickle was opened")

    monkeypatch.setattr(torch, "load", never)
    folder = make(tmp_path)
    capsys.readouterr()
    args = ["explain", "--hf-model", str(folder), "--dataset", "digits", "--out", str(tmp_path / "x")]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--model", "m.pt"], "give --model or --hf-model, not both"), ([], None)],
    ids=["both", "hf-only-without-dataset"],
)
def test_model_options_are_exclusive(hf_folder, tmp_path, capsys, extra, message):
    args = ["evaluate", "--hf-model", str(hf_folder), *extra, "--out", str(tmp_path / "x")]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert (message or "pass --dataset NAME") in err
    assert cli(["explain", "--out", str(tmp_path / "y")]) == 2
    assert "name the model: --model CHECKPOINT" in capsys.readouterr().err


def test_preprocessing_is_read_from_the_folder(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    assert preprocessing(folder, 3) == ([0.0] * 3, [1.0] * 3)  # no file: no normalisation
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5], "image_std": [0.25]}))
    assert preprocessing(folder, 3) == ([0.5] * 3, [0.25] * 3)
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False, "image_mean": [9]}))
    assert preprocessing(folder, 1) == ([0.0], [1.0])
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.1, 0.2], "image_std": [1, 1]})
    )
    with pytest.raises(QxaiError, match="do not fit 3 channel"):
        preprocessing(folder, 3)
