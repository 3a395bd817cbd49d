"""Causal ground truth at the level of feature maps: which k maps does the prediction rely on?

For one image, a layer with ``N`` feature maps and a set ``S`` of them, ``z(S)`` is the target
logit when the maps in ``S`` are kept and every other map is replaced by a baseline (zero, the
metrics' choice, or an ``(N, h, w)`` tensor the caller passes); ``z(∅)`` keeps none. The **keep
oracle** of size ``k`` is ``S* = argmax_{|S| = k} z(S)``, the **removal oracle**
``R* = argmax_{|S| = k} z(all) − z(all ∖ S)``. Both are found by enumerating all ``C(N, k)``
subsets when that count is at most ``max_subsets`` (exact), else by a beam search whose result is
labelled approximate with its width.

The part of the network after the layer runs once per batch of subsets: a forward hook on the
layer replaces its ``(1, N, h, w)`` output by the ``(S, N, h, w)`` masked copies, so what comes
before the layer runs once per image. A model whose later code needs the input's batch size (a
skip connection around the layer) falls back to repeating the image.

Scores of a method's set ``S`` (size-matched: ``k = |S_QA|`` of the same image):

* ``share`` = ``(z(S) − z(∅)) / (z(S*) − z(∅))`` — the part of the best achievable logit the set
  keeps (1 = the oracle; NaN when no set of size k raises the logit over ``z(∅)``);
* ``precision`` = ``|S ∩ S*| / k``;
* ``drop share`` = ``(z(all) − z(all ∖ S)) / (z(all) − z(all ∖ R*))``;
* the exact expectation of ``share`` for a uniformly random k-set (from the same enumeration), the
  random baseline every method is read against.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 1, bias=False), torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> with torch.no_grad():
...     _ = net[0].weight.fill_(1.0), net[2].bias.zero_()
...     _ = net[2].weight.copy_(torch.tensor([[3.0, 1, 0, -2], [0, 0, 0, 0]]))
>>> o = map_oracle(net, "0", torch.ones(1, 1, 1, 1), target=0, k=2)
>>> o.keep_set, round(o.keep_best, 6), o.exact
((0, 1), 4.0, True)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.machine import machine_memory_bytes
from qxai.models.layers import resolve_layer
from qxai.models.modes import eval_mode
from qxai.probe.hooks import LayerProbe, capture_gradients, read_layout
from qxai.probe.tokens import TokenLayout

#: an oracle effect (the best gain or drop of the target logit) below this share of the logit's scale
#: is no effect: a ratio over it measures the rounding of a near-zero denominator, not the set
#: (float32 logits carry ~1e-7 relative error, so 1e-3 leaves four orders of margin)
EFFECT_FLOOR = 1e-3

#: subsets enumerated exactly at most (C(16, 8) = 12 870 fits); above, a beam search
MAX_SUBSETS = 13_000
BEAM_WIDTH = 32
#: masked copies of one image run through the rest of the network at once, at most
MAX_ROWS = 2048
#: memory the masked copies of one batch may take (MiB; the metric setting ``causal_share.memory_mb``).
#: A fixed figure, not a share of what is free: the batch size, and with it every float, is then the
#: same on every machine
MEMORY_MB = 1024
#: a batch's working set for speed (MiB), below the memory budget: past a CPU's last-level cache
#: every copy gets slower (BENCHMARKS.md P11: planted-cnn's maps 5.9× per copy idle at 384 rows
#: against 2 048, vit-tiny's last block 1.7× idle, a tie with a competing process). Fixed for the
#: same reason as MEMORY_MB
BATCH_MB = 48


@dataclass(frozen=True)
class Oracle:
    """The causal reference of one image at one size ``k`` (see the module docstring)."""

    k: int
    n: int  # maps of the layer
    keep_set: tuple[int, ...]
    keep_best: float  # z(S*)
    keep_none: float  # z(∅)
    keep_random_share: float  # E over random k-sets of the share (exact only; NaN otherwise)
    drop_set: tuple[int, ...]
    drop_best: float  # z(all) − z(all ∖ R*)
    full: float  # z(all)
    exact: bool
    searched: str  # "exact (C(N,k) subsets)" or "approximate (beam W)"
    drop_random_share: float = math.nan  # E over random k-sets of the drop share (exact only)

    @property
    def floor(self) -> float:
        """The smallest oracle effect that counts (:data:`EFFECT_FLOOR` of the logit's scale)."""
        return effect_floor(self.full, self.keep_none, self.keep_best)


def effect_floor(*logits: float) -> float:
    """:data:`EFFECT_FLOOR` times the largest |logit| among ``logits`` (``z(all)``, ``z(∅)``, ``z(S*)``)."""
    return EFFECT_FLOOR * max(abs(float(z)) for z in logits)


@contextlib.contextmanager
def _masked(
    layer: torch.nn.Module, masks: torch.Tensor, base: torch.Tensor | None, layout: TokenLayout | None = None
) -> Iterator[None]:
    """Within the body the layer's maps ``A`` become ``A·m + base·(1 − m)`` for each mask row; a token
    layer (``layout``, :mod:`qxai.probe.tokens`) is read as maps and written back in its own layout,
    its class and register tokens untouched."""
    m = masks[:, :, None, None]

    def hook(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        maps = out if layout is None else layout.to_maps(out)
        if maps.dim() != 4 or maps.shape[1] != masks.shape[1]:
            shape = tuple(out.shape)
            raise QxaiError(f"the layer gives {shape}, not (B, {masks.shape[1]}, h, w) feature maps")
        kept = maps * m  # (1, N, h, w) broadcasts to one copy per mask
        kept = kept if base is None else kept + base[None] * (1.0 - m)
        return kept if layout is None else layout.from_maps(kept, out)

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def row_bytes(model: torch.nn.Module, layer: str, image: torch.Tensor) -> int:
    """What one masked copy of ``image`` takes in :func:`masked_logits`, estimated from one forward:
    twice the bytes of every module output from the layer on (the copy of its maps and all the rest
    of the network computes from it), summed. The sum counts every output as if all were alive at
    once, which a no-grad forward never keeps; the factor 2 covers what runs outside modules (a
    residual add, an attention product written as a function). A model whose code after the layer
    needs the input's batch (:func:`masked_logits` then repeats the image) also runs the layers
    before it once per copy; those are not counted.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    >>> row_bytes(net, "0", torch.rand(1, 1, 6, 6))  # 2 × (maps 4·4·4 + Flatten 64 + Linear 2) floats
    1040
    """
    module = resolve_layer(model, layer)
    seen = {"after": False, "bytes": 0}

    def count(m: torch.nn.Module, _inputs: object, out: object) -> None:
        seen["after"] = seen["after"] or m is module
        parts = out if isinstance(out, tuple | list) else (out,)
        if seen["after"]:
            seen["bytes"] += sum(t.numel() * t.element_size() for t in parts if isinstance(t, torch.Tensor))

    # the layer and every leaf module: a container's output is its last leaf's, counted already
    watched = [m for m in model.modules() if m is module or next(m.children(), None) is None]
    handles = [m.register_forward_hook(count) for m in watched]
    try:
        with eval_mode(model), torch.no_grad():
            model(image[:1])
    finally:
        for h in handles:
            h.remove()
    return max(2 * int(seen["bytes"]), 1)


def rows_per_batch(
    model: torch.nn.Module, layer: str, image: torch.Tensor, memory_mb: float = MEMORY_MB
) -> int:
    """How many masked copies :func:`map_oracle` runs at once: as many as fit in :data:`BATCH_MB`
    (at least one, at most :data:`MAX_ROWS`) and in ``memory_mb``; a one-line :class:`QxaiError`
    when one copy is more than the budget or more than this machine has free.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    >>> x = torch.rand(1, 1, 6, 6)
    >>> rows_per_batch(net, "0", x), rows_per_batch(net, "0", x, memory_mb=0.001)
    (2048, 1)
    """
    per_row = row_bytes(model, layer, image)
    budget = float(memory_mb) * 2**20
    rows = int(min(MAX_ROWS, max(1, BATCH_MB * 2**20 // per_row), budget // per_row))
    if rows < 1:
        raise QxaiError(
            f"the causal oracle needs {per_row / 2**20:,.1f} MiB per masked copy of layer '{layer}', more "
            f"than causal_share.memory_mb = {memory_mb:g}; raise it (--metric-option "
            "causal_share.memory_mb=N) or explain a smaller layer"
        )
    _, available = machine_memory_bytes()
    if rows * per_row > available:
        raise QxaiError(
            f"the causal oracle's batches ({rows * per_row / 2**20:,.0f} MiB) are more than the "
            f"{available / 2**20:,.0f} MiB this machine has free; lower --metric-option "
            "causal_share.memory_mb"
        )
    return rows


def masked_logits(
    model: torch.nn.Module, layer: str, image: torch.Tensor, target: int, masks: np.ndarray,
    *, baseline: torch.Tensor | None = None, batch: int = MAX_ROWS,
) -> np.ndarray:  # fmt: skip
    """``(S,)`` float64 target logits of ``image`` ``(1, C, H, W)`` with the layer's maps masked by
    each row of ``masks`` ``(S, N)`` (1 = keep, 0 = the baseline ``(N, h, w)`` or zero)."""
    module = resolve_layer(model, layer)
    layout = read_layout(model, layer, image)
    out = np.empty(len(masks), dtype=np.float64)
    with eval_mode(model), torch.no_grad():
        for s in range(0, len(masks), batch):
            m = torch.as_tensor(masks[s : s + batch], dtype=image.dtype)
            with _masked(module, m, baseline, None if layout.kind == "channels_first" else layout):
                try:
                    logits = model(image)  # the layer's (1, N, h, w) output becomes (len(m), N, h, w)
                    if logits.shape[0] != len(m):
                        raise RuntimeError("batch not carried")
                except RuntimeError:
                    logits = model(image.expand(len(m), *image.shape[1:]))  # code after needs the batch
            out[s : s + len(m)] = logits[:, target].double().numpy()
    return out


def _subset_masks(sets: Sequence[Sequence[int]], n: int, keep: bool) -> np.ndarray:
    masks = np.full((len(sets), n), 0.0 if keep else 1.0, dtype=np.float32)
    for row, s in enumerate(sets):
        masks[row, list(s)] = 1.0 if keep else 0.0
    return masks


def _beam(score: Callable[[list[tuple[int, ...]]], np.ndarray], n: int, k: int, width: int
          ) -> tuple[tuple[int, ...], float]:  # fmt: skip
    """Best k-subset by a beam search: grow every kept set by one map, keep the ``width`` best."""
    beam: list[tuple[int, ...]] = [()]
    best_values = score([()])
    for _ in range(k):
        grown = sorted({tuple(sorted((*s, j))) for s in beam for j in range(n) if j not in s})
        values = score(grown)
        order = np.argsort(-values, kind="stable")[:width]
        beam, best_values = [grown[i] for i in order], values[order]
    return beam[0], float(best_values[0])


def map_oracle(
    model: torch.nn.Module, layer: str, image: torch.Tensor, target: int, k: int, *,
    baseline: torch.Tensor | None = None, max_subsets: int = MAX_SUBSETS, beam_width: int = BEAM_WIDTH,
    memory_mb: float = MEMORY_MB,
) -> Oracle:  # fmt: skip
    """The keep and removal oracles of size ``k`` for one image (see the module docstring); the
    masked copies run in batches within ``memory_mb`` (:func:`rows_per_batch`)."""
    n = _num_maps(model, layer, image)
    if not 0 <= k <= n:
        raise QxaiError(f"k = {k} maps asked of a layer with {n}; pick 0 ≤ k ≤ {n}")
    rows = rows_per_batch(model, layer, image, memory_mb)

    def keep_score(sets: Sequence[Sequence[int]]) -> np.ndarray:
        masks = _subset_masks(sets, n, True)
        return masked_logits(model, layer, image, target, masks, baseline=baseline, batch=rows)

    def drop_score(sets: Sequence[Sequence[int]]) -> np.ndarray:
        masks = _subset_masks(sets, n, False)
        return masked_logits(model, layer, image, target, masks, baseline=baseline, batch=rows)

    none, full = keep_score([()])[0], keep_score([tuple(range(n))])[0]
    count = math.comb(n, k)
    if count <= max_subsets:
        sets = list(combinations(range(n), k))
        kept, dropped = keep_score(sets), drop_score(sets)
        i, j = int(np.argmax(kept)), int(np.argmin(dropped))
        span = kept[i] - none
        drop_best = float(full - dropped[j])
        floor = effect_floor(full, none, kept[i])
        random_share = float(np.mean((kept - none) / span)) if span > floor else math.nan
        drop_random = float(np.mean((full - dropped) / drop_best)) if drop_best > floor else math.nan
        return Oracle(k, n, sets[i], float(kept[i]), float(none), random_share, sets[j], drop_best,
                      float(full), True, f"exact ({count} subsets)", drop_random)  # fmt: skip
    keep_set, keep_best = _beam(keep_score, n, k, beam_width)
    drop_set, neg = _beam(lambda sets: -drop_score(sets), n, k, beam_width)
    return Oracle(k, n, keep_set, keep_best, float(none), math.nan, drop_set, float(full + neg), float(full),
                  False, f"approximate (beam {beam_width})")  # fmt: skip


def set_scores(
    model: torch.nn.Module, layer: str, image: torch.Tensor, target: int, chosen: Sequence[int],
    oracle: Oracle, *, baseline: torch.Tensor | None = None,
) -> dict[str, float]:  # fmt: skip
    """``share``, ``precision`` and ``drop_share`` of the set ``chosen`` against ``oracle``."""
    chosen = sorted(int(c) for c in chosen)
    masks = np.concatenate([_subset_masks([chosen], oracle.n, keep) for keep in (True, False)])
    keep, drop = masked_logits(model, layer, image, target, masks, baseline=baseline)  # one forward for both
    span = oracle.keep_best - oracle.keep_none
    best_drop = oracle.drop_best
    floor = oracle.floor
    k = max(oracle.k, 1)
    return {
        "share": (keep - oracle.keep_none) / span if span > floor else math.nan,
        "precision": len(set(chosen) & set(oracle.keep_set)) / k if oracle.k else math.nan,
        "drop_share": (oracle.full - drop) / best_drop if best_drop > floor else math.nan,
    }


def layer_mean(
    model: torch.nn.Module, layer: str, images: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """``(N, h, w)`` mean of the layer's maps over ``images`` ``(B, C, H, W)``: the "dataset mean"
    baseline, which replaces a removed map by its typical value instead of by zero.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1))
    >>> layer_mean(net, "0", torch.rand(5, 1, 3, 3)).shape
    torch.Size([2, 3, 3])
    """
    total: torch.Tensor | None = None
    layout = read_layout(model, layer, torch.as_tensor(np.asarray(images[:1])))
    with torch.no_grad(), eval_mode(model), LayerProbe(model, layer) as probe:
        for s in range(0, len(images), batch_size):
            model(torch.as_tensor(np.asarray(images[s : s + batch_size])))
            part = layout.to_maps(probe.output(layer)).double().sum(dim=0)
            total = part if total is None else total + part
    if total is None:
        raise QxaiError("the dataset-mean baseline needs at least one image")
    return (total / len(images)).float()


def active_maps(
    model: torch.nn.Module, layer: str, images: torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """``(B, N)`` bool: which of the layer's ``N`` maps are not zero everywhere on each image (a map
    that is zero on an image contributes nothing there: zeroing it changes no logit).

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0), net[0].bias.copy_(torch.tensor([0.0, -9.0]))
    >>> active_maps(net, "1", torch.ones(3, 1, 2, 2)).tolist()
    [[True, False], [True, False], [True, False]]
    """
    rows = []
    layout = read_layout(model, layer, torch.as_tensor(np.asarray(images[:1])))
    with torch.no_grad(), eval_mode(model), LayerProbe(model, layer) as probe:
        for s in range(0, len(images), batch_size):
            model(torch.as_tensor(np.asarray(images[s : s + batch_size])))
            maps = layout.to_maps(probe.output(layer))
            rows.append((maps.flatten(2) != 0).any(dim=2).cpu().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=bool)


def gradient_activation_sets(
    model: torch.nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor, sizes: Sequence[int],
) -> list[list[int]]:  # fmt: skip
    """Per image the ``sizes[i]`` maps with the largest first-order contribution to the target logit,
    ``Σ_hw (∂z/∂A)·A`` (gradient × activation; exact when the rest of the network is linear): the
    cheapest estimate of the keep oracle, a reference every selection is read against.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
    >>> sets = gradient_activation_sets(net, "0", torch.rand(2, 1, 1, 1), torch.tensor([0, 1]), [1, 2])
    >>> [len(s) for s in sets]
    [1, 2]
    """
    with eval_mode(model):
        _, acts, grads, _ = capture_gradients(model, layer, images, torch.as_tensor(targets))
    contribution = (acts * grads).flatten(2).sum(dim=2).double().numpy()  # (B, N)
    order = np.argsort(-contribution, axis=1, kind="stable")
    return [sorted(int(j) for j in order[i, : int(k)]) for i, k in enumerate(sizes)]


def _num_maps(model: torch.nn.Module, layer: str, image: torch.Tensor) -> int:
    """The layer's number of maps, read through its layout (a token layer's channels)."""
    return read_layout(model, layer, image).channels
