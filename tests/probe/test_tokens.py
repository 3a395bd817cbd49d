"""Token layouts: a layer's output read as (channels, h, w) maps — class, distillation and register
tokens, non-square grids, channels-last stages, sequence-first tokens — and one-line errors that name
what was found and the option to state it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.probe import capture_gradients
from qxai.probe.tokens import (
    LayoutHint,
    TokenLayout,
    detect_layout,
    layer_maps,
    model_patch_size,
    model_prefix_tokens,
    parse_grid,
    state_layout,
    stated_layout,
)


def one_line(err: pytest.ExceptionInfo[QxaiError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.strip() == text
    return text


def test_class_token_and_patch_grid_from_the_patch_size():
    layout = detect_layout((3, 50, 32), (28, 28), 3, patch=(4, 4), prefix=1)
    assert layout == TokenLayout("tokens", (7, 7), 32, prefix=1)
    tokens = torch.randn(3, 50, 32)
    maps = layout.to_maps(tokens)
    assert maps.shape == (3, 32, 7, 7)
    # the patch tokens are row-major: token 1 + (r·7 + c) is pixel (r, c) of every channel's map
    torch.testing.assert_close(maps[:, :, 2, 5], tokens[:, 1 + 2 * 7 + 5, :])


def test_no_patch_size_still_finds_the_only_reading():
    assert detect_layout((2, 50, 8), (28, 28), 2).prefix == 1  # 49 = 7×7 is the only grid ≤ 8 extra
    assert detect_layout((2, 49, 8), (28, 28), 2).prefix == 0


@pytest.mark.parametrize(("prefix", "what"), [(2, "class + distillation"), (5, "class + 4 registers")])
def test_distillation_and_register_tokens(prefix, what):
    layout = detect_layout((2, prefix + 16, 8), (16, 16), 2, patch=(4, 4), prefix=prefix)
    assert (layout.prefix, layout.grid) == (prefix, (4, 4)), what
    x = torch.randn(2, prefix + 16, 8)
    torch.testing.assert_close(layout.to_maps(x).flatten(2).transpose(1, 2), x[:, prefix:])


def test_non_square_grids():
    layout = detect_layout((2, 1 + 4 * 6, 8), (16, 24), 2, patch=(4, 4), prefix=1)
    assert layout.grid == (4, 6)
    assert detect_layout((2, 1 + 4 * 6, 8), (16, 24), 2).grid == (4, 6)  # from the input's aspect alone
    assert detect_layout((2, 4, 6, 8), (16, 24), 2).kind == "channels_last"


def test_channels_last_swin_stage_and_channels_first_convolutions():
    assert detect_layout((2, 7, 7, 96), (224, 224), 2).kind == "channels_last"
    assert detect_layout((2, 96, 7, 7), (224, 224), 2).kind == "channels_first"
    # both readings fit a 8×8 grid of 8 channels: a LayerNorm on the last axis says channels-last
    ln = nn.LayerNorm(8)
    assert detect_layout((2, 8, 8, 8), (8, 8), 2, module=ln).kind == "channels_last"
    assert detect_layout((2, 8, 8, 8), (8, 8), 2, module=nn.Conv2d(8, 8, 1)).kind == "channels_first"
    x = torch.randn(2, 7, 7, 96)
    layout = detect_layout(x.shape, (224, 224), 2)
    assert layout.to_maps(x).shape == (2, 96, 7, 7)
    torch.testing.assert_close(layout.from_maps(layout.to_maps(x), x), x)


def test_sequence_first_tokens():
    layout = detect_layout((17, 2, 8), (16, 16), 2, patch=(4, 4))
    assert layout.seq_first and layout.prefix == 1
    x = torch.randn(17, 2, 8)
    torch.testing.assert_close(layout.from_maps(layout.to_maps(x), x), x)


def test_from_maps_writes_patches_back_and_keeps_the_leading_tokens():
    layout = detect_layout((1, 21, 4), (16, 16), 1, patch=(4, 4), prefix=5)
    x = torch.randn(1, 21, 4)
    masked = layout.to_maps(x).expand(3, -1, -1, -1) * torch.tensor([0.0, 1.0, 1.0, 1.0]).view(1, 4, 1, 1)
    back = layout.from_maps(masked, x)
    assert back.shape == (3, 21, 4)
    torch.testing.assert_close(back[:, :5], x[:, :5].expand(3, -1, -1))
    assert (back[:, 5:, 0] == 0).all() and torch.equal(back[0, 5:, 1:], x[0, 5:, 1:])


def test_ambiguous_layouts_are_one_line_errors_with_the_options():
    # 17 tokens on 12×12 inputs: 1 + 4×4 (stride 3) or 8 + 3×3 (stride 4), both dividing the input
    with pytest.raises(QxaiError) as err:
        detect_layout((2, 17, 8), (12, 12), 2, layer="blocks.1")
    text = one_line(err)
    assert "layer 'blocks.1' gives 17 tokens of 8 channels for 12×12 inputs" in text
    assert "4×4" in text and "3×3" in text and "--tokens N" in text and "--grid H,W" in text
    # stating either resolves it, and so does what the model declares
    assert detect_layout((2, 17, 8), (12, 12), 2, stated=LayoutHint(tokens=8)).grid == (3, 3)
    assert detect_layout((2, 17, 8), (12, 12), 2, stated=LayoutHint(grid=(4, 4))).prefix == 1
    assert detect_layout((2, 17, 8), (12, 12), 2, prefix=1).grid == (4, 4)
    assert detect_layout((2, 17, 8), (12, 12), 2, patch=(4, 4)).prefix == 8
    # a stride that divides the input wins over one that does not (16 = 4×4, not 7 + 3×3 of stride 5)
    assert detect_layout((2, 16, 8), (16, 16), 2).prefix == 0


@pytest.mark.parametrize(
    ("shape", "stated", "message"),
    [
        ((2, 99, 8), None, "no patch grid of the input fits"),
        ((2, 50, 32), LayoutHint(tokens=2), "with 2 leading token(s)"),
        ((2, 50, 32), LayoutHint(grid=(6, 6)), "leaves 14 leading tokens (the model declares 1)"),
        ((2, 50, 32), LayoutHint(grid=(8, 8)), "not 8×8 = 64"),
        ((2, 32, 7, 7), LayoutHint(grid=(5, 5)), "has no 5×5 grid"),
        ((2, 32, 7, 7), LayoutHint(tokens=1), "not tokens; drop --tokens"),
        ((2, 10), None, "not B×N×H×W feature maps nor a token grid"),
        ((5, 50, 32), None, "no batch axis"),
    ],
)
def test_wrong_layouts_are_one_line_errors(shape, stated, message):
    with pytest.raises(QxaiError) as err:
        detect_layout(shape, (28, 28), 2, prefix=1, stated=stated)
    assert message in one_line(err)


def test_what_models_declare():
    import torchvision

    vit = torchvision.models.VisionTransformer(16, 4, 1, 2, 8, 8, num_classes=3)
    assert (model_patch_size(vit), model_prefix_tokens(vit)) == ((4, 4), 1)

    class TimmStyle(nn.Module):  # timm's spellings: patch_embed.proj, cls_token, reg_token
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = nn.Module()
            self.patch_embed.proj = nn.Conv2d(1, 8, 2, stride=2)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
            self.reg_token = nn.Parameter(torch.zeros(1, 4, 8))

    assert (model_patch_size(TimmStyle()), model_prefix_tokens(TimmStyle())) == ((2, 2), 5)
    plain = nn.Sequential(nn.Conv2d(1, 2, 3))
    assert (model_patch_size(plain), model_prefix_tokens(plain)) == (None, None)


def test_stated_layout_is_read_by_the_transform_and_cleared():
    class Tokens(nn.Module):  # 16 tokens on 12×12 inputs: 0 + 4×4 or 7 + 3×3, ambiguous until stated
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(9, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # 3×3 patches of stride 3
            t = self.embed(x.unfold(2, 3, 3).unfold(3, 3, 3).reshape(len(x), 16, 9))
            return self.head(t.mean(1))

    model, x = Tokens(), torch.rand(2, 1, 12, 12)
    with pytest.raises(QxaiError, match="--tokens N"):
        capture_gradients(model, "embed", x)
    state_layout(model, tokens=0)
    assert stated_layout(model) == LayoutHint(tokens=0)
    _, acts, grads, _ = capture_gradients(model, "embed", x)
    assert acts.shape == grads.shape == (2, 8, 4, 4)
    assert torch.count_nonzero(grads) > 0
    state_layout(model)  # nothing stated: back to detection
    assert not stated_layout(model).given
    f = layer_maps(model, "embed", x)
    with pytest.raises(QxaiError):
        f(torch.zeros(2, 16, 8))


def test_parse_grid():
    assert parse_grid("7,14") == (7, 14) and parse_grid("7x7") == (7, 7) and parse_grid(None) is None
    with pytest.raises(QxaiError) as err:
        parse_grid("7")
    assert "--grid expects two numbers H,W" in one_line(err)
    with pytest.raises(QxaiError, match="positive"):
        parse_grid("0,3")


def test_edited_maps_reach_a_transformer_and_keep_its_class_token():
    from qxai.models import build_model
    from qxai.probe import edited_maps

    torch.manual_seed(0)
    vit = build_model("vit-tiny", in_channels=1, num_classes=3, image_size=(8, 8), patch_size=2, dim=8,
                      depth=2, heads=2).eval()  # fmt: skip
    x = torch.rand(1, 1, 8, 8)
    layer = "blocks.1.norm1"
    with torch.no_grad():
        plain = vit(x)
        with edited_maps(vit, layer, x, lambda a: a):  # the identity edit changes nothing
            torch.testing.assert_close(vit(x), plain)
        keep = torch.ones(3, 8, 1, 1)
        keep[1, :4] = 0  # copy 1: the first four token channels of every patch removed
        keep[2] = 0  # copy 2: every patch removed, the class token kept
        with edited_maps(vit, layer, x, lambda a: a.expand(3, -1, -1, -1) * keep):
            edited = vit(x)
        # by hand: the block's input norm output with those patch channels zeroed
        block = vit.blocks[1]
        tokens = vit.blocks[0](vit.tokens(x))
        h = block.norm1(tokens)
        for i, (lo, hi) in enumerate([(0, 0), (0, 4), (0, 8)]):
            hh = h.clone()
            hh[:, 1:, lo:hi] = 0
            y = tokens + block.attn(hh)
            y = y + block.mlp(block.norm2(y))
            torch.testing.assert_close(edited[i], vit.head(vit.norm(y))[0, 0])
    assert all(not m._forward_hooks for m in vit.modules())
