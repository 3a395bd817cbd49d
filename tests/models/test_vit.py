"""Vision Transformers through the map explainers: the built-in vit-tiny, a torchvision
VisionTransformer, a Hugging Face ViT, torchvision's Swin and a Swin-style channels-last model, each
with its token layout detected (no reshape function given), a default layer whose patch tokens get
gradient, and the explainer contract kept by qa, gradcam, gradcam++ and eigencam."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from qxai.explain.quality import image_flags
from qxai.explain.registry import get_explainer
from qxai.explain.testing import assert_explainer_contract
from qxai.models import build_model, default_layer
from qxai.models.registry import transformer_blocks
from qxai.probe import LayerProbe, capture_gradients
from qxai.probe.tokens import layer_layout

MAP_METHODS = ("qa", "gradcam", "gradcam++", "eigencam")
QUICK = {"qa": {"solver": "batch-sa", "solver_options": {"num_reads": 4}}}


def torchvision_vit() -> nn.Module:
    """The issue's user model: torchvision's ViT, patch 4 on 28×28 digits, one input channel."""
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(
        image_size=28, patch_size=4, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )
    vit.conv_proj = nn.Conv2d(1, 32, kernel_size=4, stride=4)
    nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision starts the head at zero: no gradient
    return vit


class ChannelsLastBlock(nn.Module):
    """A Swin-style block on ``(B, h, w, C)``: attention over the grid's tokens, then an MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        t = self.norm1(x).reshape(b, h * w, c)
        x = x + self.attn(t, t, t, need_weights=False)[0].reshape(b, h, w, c)
        return x + self.mlp(self.norm2(x))


class SwinStyle(nn.Module):
    """Patch embedding → channels-last ``(B, h, w, C)`` stage of two blocks → norm → mean → head."""

    def __init__(self, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, 4, stride=4)
        self.stage = nn.Sequential(ChannelsLastBlock(dim), ChannelsLastBlock(dim))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage(self.patch_embed(x).permute(0, 2, 3, 1))
        return self.head(self.norm(x).mean(dim=(1, 2)))


def vit_tiny(image_size: tuple[int, int] = (16, 16)) -> nn.Module:
    torch.manual_seed(0)
    return build_model("vit-tiny", in_channels=1, num_classes=3, image_size=image_size, patch_size=4,
                       dim=16, depth=2, heads=2)  # fmt: skip


def torchvision_swin() -> nn.Module:
    """torchvision's own SwinTransformer, two tiny stages, on one-channel 32×32 images."""
    torch.manual_seed(0)
    swin = torchvision.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2], window_size=[2, 2], num_classes=3
    )
    swin.features[0][0] = nn.Conv2d(1, 16, kernel_size=4, stride=4)
    return swin


class HFViT(nn.Module):
    """A Hugging Face ``ViTForImageClassification`` (built from a config, offline) returning logits."""

    def __init__(self) -> None:
        super().__init__()
        transformers = pytest.importorskip("transformers")
        config = transformers.ViTConfig(
            image_size=16, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=32, num_labels=3,
        )  # fmt: skip
        torch.manual_seed(0)
        self.model = transformers.ViTForImageClassification(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def swin_style() -> nn.Module:
    torch.manual_seed(0)
    return SwinStyle()


MODELS = {
    "vit-tiny": (vit_tiny, (16, 16), "blocks.1.norm1", "1 leading token + a 4×4 patch grid of 16 channels"),
    "vit-tiny-16x24": (
        lambda: vit_tiny((16, 24)), (16, 24), "blocks.1.norm1",
        "1 leading token + a 4×6 patch grid of 16 channels",
    ),
    "torchvision-vit": (
        torchvision_vit, (28, 28), "encoder.layers.encoder_layer_1.ln_1",
        "1 leading token + a 7×7 patch grid of 32 channels",
    ),
    "swin-style": (swin_style, (16, 24), "stage.1.norm1", "a channels-last 4×6 grid of 16 channels"),
    "hf-vit": (
        HFViT, (16, 16), "model.vit.layers.1.layernorm_before",
        "1 leading token + a 4×4 patch grid of 16 channels",
    ),
    "torchvision-swin": (
        torchvision_swin, (32, 32), "features.3.1.norm1", "a channels-last 4×4 grid of 32 channels"
    ),
}  # fmt: skip


def cli(args: list[str]) -> int:
    """``qxai ARGS`` in-process; its exit code."""
    from qxai.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0)


def images(size: tuple[int, int], n: int = 3) -> torch.Tensor:
    return torch.rand(n, 1, *size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(MODELS))
def test_default_layer_and_detected_layout(name):
    build, size, layer, layout = MODELS[name]
    model = build().eval()
    assert default_layer(model) == layer
    x = images(size)
    with LayerProbe(model, layer) as probe, torch.no_grad():
        model(x)
    assert layer_layout(model, layer, probe.output(layer), x).describe() == layout
    # the default layer's patch tokens get gradient: every image has a non-zero map gradient
    _, acts, grads, _ = capture_gradients(model, layer, x, 0)
    found = layer_layout(model, layer, probe.output(layer), x)
    assert acts.shape == grads.shape == (3, found.channels, *found.grid)
    assert (grads.flatten(1).abs().amax(dim=1) > 0).all()


@pytest.mark.parametrize("method", MAP_METHODS)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_map_explainer_keeps_the_contract_on_transformers(name, method):
    build, size, _, _ = MODELS[name]
    model = build()
    explainer = get_explainer(method, model, default_layer(model), seed=2, **QUICK.get(method, {}))
    assert_explainer_contract(explainer, model, images(size))


def test_the_last_blocks_output_is_flagged_zero_gradient_not_explained():
    """The head reads only the class token: at the last block's output the patch tokens get no
    gradient — an empty explanation, which is named (never reported as a success)."""
    model = torchvision_vit()
    last = transformer_blocks(model)[-1]
    exp = get_explainer("qa", model, last, **QUICK["qa"]).explain(images((28, 28)), 0)
    assert image_flags(exp.extras, exp.saliency) == ["zero_gradient"] * 3
    cam = get_explainer("gradcam", model, last).explain(images((28, 28)), 0)
    assert image_flags(cam.extras, cam.saliency) == ["zero_gradient"] * 3


def test_vit_tiny_trains_and_qxai_explain_explains_it(tmp_path, capsys, digits_vit_checkpoint):
    """End to end on the offline digits: a small vit-tiny trained (the session's fixture), then `qxai
    explain` with no --layer finds the token grid at the last block's input norm and selects maps on
    every image."""
    from qxai.models.checkpoint import read_checkpoint_payload

    saved = json.loads(read_checkpoint_payload(digits_vit_checkpoint)["config"])
    assert saved["metrics"]["test_accuracy"] > 0.5
    args = ["explain", "--model", str(digits_vit_checkpoint), "--per-class", "1", "--ground-truth", "never",
            "--out", str(tmp_path / "e")]  # fmt: skip
    assert cli(args) == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "e" / "explanations.json").read_text())
    assert doc["layer"] == "blocks.1.norm1" and doc["num_maps"] == 32
    assert doc["summary"]["explained"] == doc["summary"]["images"] > 0
    assert doc["summary"]["mean_selected"] > 0
    assert np.load(tmp_path / "e" / "saliency.npz")["saliency"].shape[1:] == (16, 16)


TV_VIT_FILE = """
import torch
import torchvision


class Net(torchvision.models.VisionTransformer):
    def __init__(self):
        super().__init__(image_size=16, patch_size=4, num_layers=1, num_heads=2, hidden_dim=16,
                         mlp_dim=32, num_classes=10)
        self.conv_proj = torch.nn.Conv2d(1, 16, kernel_size=4, stride=4)
        torch.nn.init.normal_(self.heads.head.weight, std=0.5)
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "3,3"], "a 3×3 grid leaves 8 leading tokens (the model declares 1); check --grid"),
        (["--tokens", "2"], "with 2 leading token(s); state it with --tokens N"),
        (["--grid", "4"], "--grid expects two numbers H,W"),
        (["--tokens", "-1"], "--tokens must be ≥ 0"),
    ],
)
def test_a_stated_layout_that_does_not_fit_is_a_one_line_cli_error(tmp_path, capsys, extra, message):
    """A torchvision ViT given as --model file.py:Net: a wrong --grid/--tokens stops before any work."""
    (tmp_path / "tvvit.py").write_text(TV_VIT_FILE)
    args = ["explain", "--model", f"{tmp_path / 'tvvit.py'}:Net", "--dataset", "digits", "--per-class", "1",
            "--out", str(tmp_path / "e"), *extra]  # fmt: skip
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("build", [vit_tiny, torchvision_vit], ids=["vit-tiny", "torchvision"])
def test_causal_masking_reads_and_writes_token_maps(build):
    """The causal oracle masks a token layer's patch maps (class token untouched) exactly as zeroing
    those channels of the patch tokens by hand does; keeping every map is the model itself."""
    from qxai.evaluate.causal import map_oracle, masked_logits

    model = build().eval()
    size = (16, 16) if build is vit_tiny else (28, 28)
    x = images(size, 1)
    layer = default_layer(model)
    target = int(model(x).argmax(1))
    n = capture_gradients(model, layer, x, torch.tensor([target]))[1].shape[1]
    rng = np.random.default_rng(0)
    masks = np.vstack([np.ones(n), np.zeros(n), rng.integers(0, 2, (4, n))]).astype(np.float32)
    ours = masked_logits(model, layer, x, target, masks)
    module = dict(model.named_modules())[layer]
    layout = layer_layout(model, layer, probe_output(model, layer, x), x)
    by_hand = []
    for m in masks:
        def zero(_mod, _inp, out, m=m):
            maps = layout.to_maps(out) * torch.as_tensor(m)[None, :, None, None]
            return layout.from_maps(maps, out)

        handle = module.register_forward_hook(zero)
        with torch.no_grad():
            by_hand.append(float(model(x)[0, target]))
        handle.remove()
    from tests.numerics import assert_arrays_close, route_tolerance

    # one forward of all masks (a broadcast batch) against one forward each: float32 routes
    tol = route_tolerance(model)
    with torch.no_grad():
        assert_arrays_close(ours[:1], np.array([float(model(x)[0, target])]), tol, "keep all")
    assert_arrays_close(ours, np.array(by_hand), tol, "masked")
    oracle = map_oracle(model, layer, x, target, 2)
    assert oracle.exact and len(oracle.keep_set) == 2


def probe_output(model, layer, x):
    with torch.no_grad(), LayerProbe(model, layer) as probe:
        model(x)
        return probe.output(layer)
