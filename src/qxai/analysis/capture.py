"""Activations of named layers over a data set, in batches, under a memory budget.

:func:`capture_activations` works on any torch model through :class:`qxai.probe.LayerProbe` (hooks
released on every exit path) and reduces each layer's output to a feature matrix per sample:

* 4-D conv outputs ``(B, C, H, W)`` → global average pooling ``(B, C)``, or kept ``(B, C, H, W)``
  with ``spatial=True``;
* 3-D sequence outputs (RNN/LSTM/GRU, Transformer blocks, batch-first ``(B, T, D)``; an RNN with
  ``batch_first=False`` is transposed; ``Conv1d`` outputs are ``(B, C, T)``) → pooled over time
  (``time="mean"`` mask-aware, ``"last"`` valid step, ``"first"``) or kept per step (``"steps"``,
  ``(B, T, D)``);
* anything else → flattened ``(B, −1)``.

With ``gates=True`` every ``nn.LSTM`` among the layers also yields its gates (recomputed from its
weights and recorded input, see :mod:`qxai.analysis.gates`) as extra features named
``"<layer>:<gate>"`` (``"<layer>:l<k>.<gate>"`` for stacked layers), pooled the same way.

:func:`capture_transformer` reads a Hugging Face model's hidden states of every layer
(``output_hidden_states``) pooled over tokens with the attention mask, and its attention heads
(``output_attentions``): the mean attention map per head and each head's attention entropy per input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.probe import LayerProbe, eval_mode, resolve_layer

TIME_MODES = ("mean", "last", "first", "steps")


@dataclass
class Activations:
    """Captured features of N inputs.

    Attributes:
        features: name → float32 array with N rows: ``(N, D)`` pooled, ``(N, C, H, W)`` spatial or
            ``(N, T, D)`` per time step.
        kinds: name → ``"conv"``, ``"sequence"``, ``"dense"``, ``"gate"``, ``"hidden"`` or ``"attention"``.
        attention_maps: ``(L, heads, T, T)`` mean attention per layer and head (Transformers only).
        samples: N.
    """

    features: dict[str, np.ndarray]
    kinds: dict[str, str]
    samples: int
    attention_maps: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def matrix(self, name: str) -> np.ndarray:
        """The features of ``name`` as one ``(N, D)`` matrix (spatial or per-step units flattened)."""
        if name not in self.features:
            from qxai.errors import unknown_name

            raise unknown_name("captured layer", name, self.features)
        x = self.features[name]
        return x.reshape(len(x), -1)


def _mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MB"


def _pool_time(t: torch.Tensor, mask: torch.Tensor | None, time: str) -> torch.Tensor:
    """Pool ``(B, T, D)`` over T; ``mask`` ``(B, T)`` marks valid steps (1) and padding (0)."""
    if time == "steps":
        return t
    if time == "first":
        return t[:, 0]
    if mask is None:
        return t.mean(dim=1) if time == "mean" else t[:, -1]
    m = mask.to(t.dtype)
    if time == "mean":
        return (t * m[..., None]).sum(dim=1) / m.sum(dim=1, keepdim=True).clamp_min(1.0)
    last = (m.sum(dim=1).long() - 1).clamp_min(0)
    return t[torch.arange(len(t)), last]


def _reduce(
    module: nn.Module, t: torch.Tensor, mask: torch.Tensor | None, spatial: bool, time: str
) -> tuple[torch.Tensor, str]:
    if t.ndim == 4:
        return (t if spatial else t.mean(dim=(2, 3))), "conv"
    if t.ndim == 3:
        if isinstance(module, nn.RNNBase) and not module.batch_first:
            t = t.transpose(0, 1)
        elif any(isinstance(m, nn.Conv1d) for m in module.modules()):
            t = t.transpose(1, 2)  # (B, C, T) → (B, T, C)
        return _pool_time(t, mask, time), "sequence"
    if t.ndim == 2:
        return t, "dense"
    return t.reshape(len(t), -1), "dense"


@contextlib.contextmanager
def _record_inputs(modules: dict[str, nn.Module]) -> Iterator[dict[str, tuple[Any, dict[str, Any]]]]:
    """Record each module's call arguments (LSTM input and initial state); hooks always released."""
    seen: dict[str, tuple[Any, dict[str, Any]]] = {}
    handles = []

    def recorder(name: str):
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            seen[name] = (args, kwargs)

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(recorder(name), with_kwargs=True))
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _gate_features(
    name: str,
    lstm: nn.LSTM,
    call: tuple[Any, dict[str, Any]],
    output: torch.Tensor,
    mask: torch.Tensor | None,
    time: str,
) -> dict[str, torch.Tensor]:
    from qxai.analysis.gates import GATES, lstm_gates

    args, kwargs = call
    x = args[0] if args else kwargs.get("input")
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    layers = lstm_gates(lstm, x, hx)
    replay = layers[-1]["h"]
    seen = output if lstm.batch_first else output.transpose(0, 1)
    if replay.shape != seen.shape or not torch.allclose(replay, seen, atol=1e-4, rtol=1e-3):
        raise QxaiError(
            f"the gates replayed for '{name}' do not reproduce its output (a custom or packed LSTM?); "
            "drop --gates"
        )
    out = {}
    for k, layer in enumerate(layers):
        prefix = f"{name}:" if lstm.num_layers == 1 else f"{name}:l{k}."
        for gate in (*GATES, "c"):
            out[prefix + gate] = _pool_time(layer[gate], mask, time)
    return out


@torch.no_grad()
def capture_activations(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: str | Sequence[str],
    *,
    mask: torch.Tensor | None = None,
    batch_size: int = 128,
    spatial: bool = False,
    time: str = "mean",
    gates: bool = False,
    memory_mb: float = 1024.0,
) -> Activations:
    """Run ``model`` over ``inputs`` ``(N, ...)`` in batches and keep the reduced outputs of ``layers``.

    Args:
        mask: optional ``(N, T)`` valid-step mask; it is passed to the model as its second argument
            (as an attention mask) and used for mask-aware pooling over time.
        memory_mb: budget for the kept features; exceeding it is a :class:`QxaiError` raised after the
            first batch, before anything large is allocated.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    >>> acts = capture_activations(net, torch.rand(10, 1, 6, 6), ["1", "3"], batch_size=4)
    >>> acts.features["1"].shape, acts.features["3"].shape, acts.kinds["1"]
    ((10, 4), (10, 2), 'conv')
    """
    if time not in TIME_MODES:
        from qxai.errors import unknown_name

        raise unknown_name("time pooling", time, TIME_MODES)
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise QxaiError("no layers to capture; pass --layers NAME[,NAME...]")
    if len(inputs) == 0:
        raise QxaiError("no inputs to capture activations from; pass at least one sample")
    lstms = {n: m for n in names if isinstance(m := resolve_layer(model, n), nn.LSTM)} if gates else {}
    if gates and not lstms:
        raise QxaiError(f"--gates needs an nn.LSTM among the layers {names}")
    n = len(inputs)
    kept: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    # eval mode (dropout off: the same input always gives the same features), the caller's mode after
    with eval_mode(model), LayerProbe(model, names) as probe, _record_inputs(lstms) as calls:
        for start in range(0, n, batch_size):
            batch = inputs[start : start + batch_size]
            bmask = None if mask is None else mask[start : start + batch_size]
            probe.outputs.clear()
            model(batch) if bmask is None else model(batch, bmask)
            feats: dict[str, torch.Tensor] = {}
            for name in names:
                feats[name], kinds[name] = _reduce(
                    probe.modules[name], probe.output(name), bmask, spatial, time
                )
            for name, lstm in lstms.items():
                gate_feats = _gate_features(name, lstm, calls[name], probe.output(name), bmask, time)
                feats.update(gate_feats)
                kinds.update(dict.fromkeys(gate_feats, "gate"))
            if start == 0:
                kept = _allocate(feats, n, memory_mb)
            for name, value in feats.items():
                kept[name][start : start + len(batch)] = value.float().cpu().numpy()
    return Activations(kept, kinds, n)


def _allocate(first: dict[str, torch.Tensor], n: int, memory_mb: float) -> dict[str, np.ndarray]:
    """Check the budget from the first batch's shapes, then allocate float32 arrays for N samples."""
    sizes = {name: int(np.prod(t.shape[1:])) * 4 * n for name, t in first.items()}
    total = sum(sizes.values())
    if total > memory_mb * 2**20:
        biggest = max(sizes, key=sizes.__getitem__)
        raise QxaiError(
            f"activations of {n} samples need {_mb(total)} (largest '{biggest}': {_mb(sizes[biggest])}), "
            f"over the budget of {memory_mb:g} MB; use fewer samples, pool spatial maps/time steps, "
            "or raise the budget"
        )
    return {name: np.zeros((n, *t.shape[1:]), dtype=np.float32) for name, t in first.items()}


def _head_entropy(att: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Attention entropy (nats) per head, mean over valid queries: ``(B, heads, T, T)`` → ``(B, heads)``."""
    ent = -(att * torch.log(att.clamp_min(1e-12))).sum(dim=-1)  # (B, heads, T)
    if mask is None:
        return ent.mean(dim=-1)
    m = mask.to(ent.dtype)[:, None, :]
    return (ent * m).sum(dim=-1) / m.sum(dim=-1).clamp_min(1.0)


@torch.no_grad()
def capture_transformer(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    batch_size: int = 64,
    time: str = "mean",
    attention: bool = True,
    memory_mb: float = 1024.0,
) -> Activations:
    """Hidden states of every layer of a Hugging Face model, pooled over tokens, and its attention heads.

    ``model`` is a ``transformers`` model (or a wrapper with the model in ``.hf``). Features are
    ``"embeddings"``, ``"layer1"`` … ``"layerL"`` (``(N, hidden)`` pooled with ``time``, mask-aware)
    and, with ``attention``, ``"attention_entropy"`` ``(N, L·heads)`` (column ``l·heads + h``);
    ``attention_maps`` holds the mean attention ``(L, heads, T, T)`` over the inputs' valid queries.
    """
    hf = getattr(model, "hf", model)
    n = len(input_ids)
    if n == 0:
        raise QxaiError("no inputs to capture activations from; pass at least one sequence")
    kept: dict[str, np.ndarray] = {}
    maps: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    with eval_mode(hf):
        for start in range(0, n, batch_size):
            ids = input_ids[start : start + batch_size]
            bmask = None if attention_mask is None else attention_mask[start : start + batch_size]
            out = hf(
                input_ids=ids, attention_mask=bmask, output_hidden_states=True, output_attentions=attention
            )
            hidden = getattr(out, "hidden_states", None)
            if not hidden:
                raise QxaiError(f"{type(hf).__name__} returned no hidden states; pass a transformers model")
            feats = {
                ("embeddings" if i == 0 else f"layer{i}"): _pool_time(h, bmask, time)
                for i, h in enumerate(hidden)
            }
            if attention:
                atts = getattr(out, "attentions", None)
                if not atts or any(a is None for a in atts):
                    raise QxaiError(
                        "the model returned no attention weights; load it with attn_implementation='eager'"
                    )
                feats["attention_entropy"] = torch.cat([_head_entropy(a, bmask) for a in atts], dim=1)
                q = torch.ones(atts[0].shape[0], atts[0].shape[-1]) if bmask is None else bmask.float()
                stacked = torch.stack([(a * q[:, None, :, None]).sum(0) for a in atts])  # (L, heads, T, T)
                maps = stacked if maps is None else maps + stacked
                w = q.sum(0)[None, None, :, None]
                weight = w if weight is None else weight + w
            if start == 0:
                kept = _allocate(feats, n, memory_mb)
            for name, value in feats.items():
                kept[name][start : start + len(ids)] = value.float().cpu().numpy()
    kinds = {name: ("attention" if name == "attention_entropy" else "hidden") for name in kept}
    mean_maps = None if maps is None else (maps / weight.clamp_min(1.0)).numpy()
    return Activations(kept, kinds, n, attention_maps=mean_maps)
