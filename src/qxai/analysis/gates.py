"""The gates of a ``torch.nn.LSTM``, recomputed from its weights and its recorded input.

An LSTM's gates are internal to torch's fused kernel, never module outputs, so no hook can see them.
:func:`lstm_gates` replays PyTorch's documented recurrence on the same input and initial state::

    (i, f, g, o) = split(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh)      # PyTorch's gate order
    i, f, o = σ(i), σ(f), σ(o);  g = tanh(g)
    c_t = f ⊙ c_{t−1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)

and returns every gate of every layer. The replayed ``h`` is compared to torch's own output by the
caller (and in the tests), so a mismatch (packed sequences, a custom cell) is an error, not a silent
wrong answer.
"""

from __future__ import annotations

import torch
from torch import nn

from qxai.errors import QxaiError

GATES = ("input", "forget", "cell", "output")


@torch.no_grad()
def lstm_gates(
    lstm: nn.LSTM, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
) -> list[dict[str, torch.Tensor]]:
    """Gates and states of each layer of ``lstm`` for input ``x``.

    Args:
        lstm: a unidirectional ``nn.LSTM`` without projections.
        x: ``(B, T, F)`` if ``lstm.batch_first`` else ``(T, B, F)``.
        hx: optional initial ``(h0, c0)``, each ``(num_layers, B, H)``.

    Returns one dict per layer with ``"input"``, ``"forget"``, ``"cell"`` (the candidate ``g``),
    ``"output"``, ``"c"`` (cell state) and ``"h"`` (hidden state), each ``(B, T, H)``.

    >>> lstm = nn.LSTM(3, 4, batch_first=True)
    >>> x = torch.randn(2, 5, 3)
    >>> layers = lstm_gates(lstm, x)
    >>> bool(torch.allclose(layers[-1]["h"], lstm(x)[0], atol=1e-5)), layers[0]["forget"].shape
    (True, torch.Size([2, 5, 4]))
    """
    if not isinstance(lstm, nn.LSTM):
        raise QxaiError(
            f"gates are defined for torch.nn.LSTM layers, not {type(lstm).__name__}; drop --gates"
        )
    if lstm.bidirectional or lstm.proj_size:
        raise QxaiError(
            "gates of bidirectional or projected LSTMs are not supported; drop --gates for this layer"
        )
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise QxaiError("gates of packed sequences are not supported; pad the sequences instead")
    if x.ndim != 3:
        raise QxaiError(f"gates need batched input (3 dimensions), got shape {tuple(x.shape)}")
    seq = x if lstm.batch_first else x.transpose(0, 1)
    batch, steps, _ = seq.shape
    size = lstm.hidden_size
    layers: list[dict[str, torch.Tensor]] = []
    for k in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
        pre = seq @ w_ih.T
        if lstm.bias:
            pre = pre + getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
        h = hx[0][k] if hx is not None else seq.new_zeros(batch, size)
        c = hx[1][k] if hx is not None else seq.new_zeros(batch, size)
        record: dict[str, list[torch.Tensor]] = {name: [] for name in (*GATES, "c", "h")}
        for t in range(steps):
            i, f, g, o = (pre[:, t] + h @ w_hh.T).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip((*GATES, "c", "h"), (i, f, g, o, c, h), strict=True):
                record[name].append(value)
        layers.append({name: torch.stack(values, dim=1) for name, values in record.items()})
        seq = layers[-1]["h"]  # the next layer reads this one's hidden states (no dropout in eval)
    return layers
