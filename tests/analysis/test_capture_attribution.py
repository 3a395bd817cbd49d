"""Capture (conv, LSTM gates, Transformers), hooks released, errors; Integrated Gradients completeness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qxai.analysis.attribution import embedding_integrated_gradients, integrated_gradients
from qxai.analysis.capture import capture_activations, capture_transformer
from qxai.analysis.gates import lstm_gates
from qxai.errors import QxaiError


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 2))


def test_conv_gap_spatial_and_hooks_released() -> None:
    net, x = _cnn(), torch.rand(9, 1, 6, 6)
    acts = capture_activations(net, x, ["1", "3"], batch_size=4)
    expected = net[1](net[0](x)).mean(dim=(2, 3)).detach().numpy()
    # float32 convolutions in batches of 4 vs 9 may round differently: a few float32 eps of the scale
    np.testing.assert_allclose(acts.features["1"], expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    spatial = capture_activations(net, x, ["1"], spatial=True)
    assert spatial.features["1"].shape == (9, 3, 6, 6) and spatial.matrix("1").shape == (9, 108)
    with pytest.raises(QxaiError, match="budget"):
        capture_activations(net, x, ["1"], spatial=True, memory_mb=1e-4)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_unknown_and_idle_layers() -> None:
    net = _cnn()
    with pytest.raises(QxaiError, match="did you mean"):
        capture_activations(net, torch.rand(2, 1, 6, 6), ["1", "33"])

    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    model = Skip()
    with pytest.raises(QxaiError, match="no tensor output"):
        capture_activations(model, torch.rand(3, 2), ["unused"])
    assert not model.unused._forward_hooks and not model.used._forward_hooks


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_gates_reproduce_torch(batch_first: bool) -> None:
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 5, num_layers=2, batch_first=batch_first)
    x = torch.randn(4, 7, 3) if batch_first else torch.randn(7, 4, 3)
    h0, c0 = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    out, (hn, cn) = lstm(x, (h0, c0))
    layers = lstm_gates(lstm, x, (h0, c0))
    seen = out if batch_first else out.transpose(0, 1)
    torch.testing.assert_close(layers[-1]["h"], seen, atol=1e-5, rtol=1e-5)
    for k in range(2):
        torch.testing.assert_close(layers[k]["h"][:, -1], hn[k], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layers[k]["c"][:, -1], cn[k], atol=1e-5, rtol=1e-5)
        assert float(layers[k]["forget"].min()) >= 0 and float(layers[k]["forget"].max()) <= 1


def test_lstm_capture_with_gates_and_time_modes() -> None:
    from qxai.models.sequence import LSTMClassifier

    torch.manual_seed(0)
    model = LSTMClassifier(1, 3, hidden=6)
    x = torch.randn(10, 8, 1)
    acts = capture_activations(model, x, ["lstm"], gates=True, time="last", batch_size=4)
    out, _ = model.lstm(x)
    np.testing.assert_allclose(acts.features["lstm"], out[:, -1].detach().numpy(), atol=1e-6)
    assert {"lstm:input", "lstm:forget", "lstm:cell", "lstm:output", "lstm:c"} <= set(acts.features)
    steps = capture_activations(model, x, ["lstm"], time="steps")
    assert steps.features["lstm"].shape == (10, 8, 6)
    with pytest.raises(QxaiError, match=r"nn\.LSTM"):
        capture_activations(model, x, ["head"], gates=True)


def test_transformer_capture_mask_aware() -> None:
    from qxai.data.sequences import token_task
    from qxai.models.sequence import tiny_bert

    data = token_task(count=30, length=10).test
    model = tiny_bert(24, 3, max_length=10)
    acts = capture_transformer(model, data.inputs, data.mask, batch_size=4)
    assert set(acts.features) == {"embeddings", "layer1", "layer2", "attention_entropy"}
    assert acts.attention_maps is not None and acts.attention_maps.shape == (2, 4, 10, 10)
    np.testing.assert_allclose(acts.attention_maps.sum(-1)[:, :, 0], 1.0, atol=1e-5)  # rows are distributions
    # mask-aware mean: padding must not change a sequence's pooled state
    with torch.no_grad():
        hidden = model.hf(
            input_ids=data.inputs, attention_mask=data.mask, output_hidden_states=True
        ).hidden_states
    i, length = 0, int(data.mask[0].sum())
    np.testing.assert_allclose(acts.features["layer2"][i], hidden[2][i, :length].mean(0).numpy(), atol=1e-5)
    # the same hidden layer reached through a hook and LayerProbe's tuple handling
    hooked = capture_activations(model, data.inputs, ["hf.bert.encoder.layer.1"], mask=data.mask)
    np.testing.assert_allclose(hooked.features["hf.bert.encoder.layer.1"], acts.features["layer2"], atol=1e-5)


def test_ig_completeness_and_linear_closed_form() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(6, 3)
    x = torch.randn(5, 6)
    r = integrated_gradients(lin, x, target=2, steps=8)
    # for a linear model IG is exactly (x − 0) · w
    np.testing.assert_allclose(r.attributions, (x * lin.weight[2]).detach().numpy(), atol=1e-5)
    net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    r = integrated_gradients(net, x, steps=64)
    np.testing.assert_allclose(r.attributions.sum(1), r.gap, atol=1e-3)
    assert np.abs(r.relative_delta).max() < 1e-2


def test_embedding_ig_completeness() -> None:
    from qxai.data.sequences import token_task
    from qxai.models.sequence import tiny_bert

    data = token_task(count=20, length=8).test
    model = tiny_bert(24, 3, max_length=8, seed=3)
    r = embedding_integrated_gradients(model, model.embedding, data.inputs, data.mask, steps=48)
    assert r.attributions.shape == tuple(data.inputs.shape)
    np.testing.assert_allclose(r.attributions.sum(1), r.gap, atol=1e-3 + 1e-2 * np.abs(r.gap).max())


def test_attribution_and_capture_restore_the_callers_mode() -> None:
    from qxai.data.sequences import token_task
    from qxai.models.sequence import tiny_bert

    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    net[2].eval()  # a mixed mode set on purpose must come back as it was
    modes = [m.training for m in net.modules()]
    x = torch.rand(4, 1, 6, 6)
    integrated_gradients(net, x, steps=4)
    capture_activations(net, x, ["1"])
    assert [m.training for m in net.modules()] == modes
    data = token_task(count=20, length=8).test
    bert = tiny_bert(24, 3, max_length=8).train()
    embedding_integrated_gradients(bert, bert.embedding, data.inputs, data.mask, steps=4)
    capture_transformer(bert, data.inputs, data.mask)
    assert bert.training and bert.hf.training


def test_pad_baseline_keeps_special_tokens_only() -> None:
    from qxai.analysis.attribution import pad_baseline

    ids = torch.tensor([[5, 9, 9, 6, 3, 3], [5, 4, 6, 3, 3, 3]])
    mask = (ids != 3).long()
    base = pad_baseline(ids, mask, pad_id=3, keep=(5, 6))
    assert base.tolist() == [[5, 3, 3, 6, 3, 3], [5, 3, 6, 3, 3, 3]]
