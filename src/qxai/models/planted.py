"""``planted-cnn``: the planted benchmark's model, whose class evidence runs through known maps.

``maps`` (the explained layer, ``default_layer``) is one Conv7×7 → ReLU with ``N_f`` (16) channels,
initialised as matched filters of the ``planted`` data set's fixed patterns
(:func:`qxai.data.planted.planted_patterns`) with a threshold at half the matched response:

* channels ``2c`` and ``2c + 1`` detect the two parts of class ``c`` — the **designated maps**
  ``D(c)``;
* every other channel detects one distractor pattern (``distractors[i mod 8]``): non-designated maps
  that carry activation wherever distractors are;
* with ``redundant=True`` the last ``NUM_CLASSES`` channels are exact copies of each class's first
  part detector (channel ``2c``), and the head splits that part's weight between the two copies: the
  logits equal those of the plain model, and either copy counts (``designated_groups``).

The head is ``z_c = Σ_k (W ⊙ M)_{ck} · max_{ij} A^k_{ij} + u · Σ_{k ∉ D} max_{ij} A^k_{ij} + b_c``.
``M`` (a buffer, the truth) is zero outside ``D(c)``, so ``D(c)`` is the only path from the input to
what separates class ``c`` from the others; the common-mode term ``u`` (fixed, 0.15) adds the
distractor maps to every logit alike — it moves the target logit and gives those maps a positive
Grad-CAM weight α, but cannot change a prediction (softmax and argmax are invariant to it), and it is
smaller than any designated contribution, so the causal keep-oracle still prefers ``D(c)``. The
filters are ordinary trainable weights; cross-entropy gives the non-designated ones no gradient
(their only path is common-mode), and the mask keeps the head's zeros through any training. The
hand-set start classifies the data already; ``qxai train`` only tunes it.

>>> net = PlantedCNN(1, 4, (32, 32))
>>> net(torch.zeros(2, 1, 32, 32)).shape, net.designated_maps[1]
(torch.Size([2, 4]), [2, 3])
>>> PlantedCNN(1, 4, (32, 32), redundant=True).designated_groups[0]
[[0, 12], [1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from qxai.data.planted import (
    AMPLITUDE,
    NUM_CLASSES,
    NUM_DISTRACTORS,
    PARTS_PER_CLASS,
    PATTERN,
    planted_patterns,
)
from qxai.errors import QxaiError

COMMON_MODE = 0.15  # u: the distractor maps' weight on every logit


class PlantedCNN(nn.Module):
    """The planted benchmark's model (see the module docstring). Input ``(B, 1, H, W)`` in
    ``[0, 1]``, logits ``(B, 4)``; the explained layer ``maps`` gives ``(B, N_f, H, W)``."""

    default_layer = "maps"
    analysis_layers = ("maps",)

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], maps: int = 16,
        redundant: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        designated = NUM_CLASSES * PARTS_PER_CLASS
        copies = NUM_CLASSES if redundant else 0
        if in_channels != 1 or num_classes != NUM_CLASSES:
            raise QxaiError(
                f"planted-cnn takes the planted data set (1 channel, {NUM_CLASSES} classes), got "
                f"{in_channels} channels and {num_classes} classes; train it with --dataset planted"
            )
        if maps < designated + copies + 1:
            raise QxaiError(f"planted-cnn needs maps ≥ {designated + copies + 1}, got {maps}; pass --maps 16")
        parts, distractors = planted_patterns()
        kernels = torch.empty(maps, PATTERN, PATTERN)
        kernels[:designated] = torch.from_numpy(parts.reshape(designated, PATTERN, PATTERN))
        for i in range(designated, maps - copies):
            kernels[i] = torch.from_numpy(distractors[(i - designated) % NUM_DISTRACTORS])
        groups: dict[int, list[list[int]]] = {c: [[2 * c + j] for j in range(PARTS_PER_CLASS)]
                                              for c in range(NUM_CLASSES)}  # fmt: skip
        mask = torch.zeros(NUM_CLASSES, maps)
        weight = torch.zeros(NUM_CLASSES, maps)
        for c in range(NUM_CLASSES):
            for j in range(PARTS_PER_CLASS):
                mask[c, 2 * c + j], weight[c, 2 * c + j] = 1.0, 1.0
            if redundant:
                copy = maps - copies + c
                kernels[copy] = kernels[2 * c]
                mask[c, copy] = 1.0
                weight[c, 2 * c] = weight[c, copy] = 0.5  # the part's weight split between its copies
                groups[c][0].append(copy)
        # a matched filter fires at AMPLITUDE·contrast·49 on its pattern; threshold at contrast 0.5
        threshold = 0.5 * AMPLITUDE * PATTERN * PATTERN
        conv = nn.Conv2d(1, maps, PATTERN, padding=PATTERN // 2)
        with torch.no_grad():
            conv.weight.copy_(kernels[:, None])
            conv.bias.fill_(-threshold)
        self.maps = nn.Sequential(conv, nn.ReLU())
        self.register_buffer("designated", mask)  # (K, N_f): 1 where map k is designated for class c
        self.register_buffer("common", (mask.sum(0) == 0).float() * COMMON_MODE)  # (N_f,)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(NUM_CLASSES))
        self._groups = groups

    @property
    def designated_maps(self) -> dict[int, list[int]]:
        """Class → its designated map indices (every copy included), read from the head's mask."""
        return {c: torch.nonzero(row).flatten().tolist() for c, row in enumerate(self.designated)}

    @property
    def designated_groups(self) -> dict[int, list[list[int]]]:
        """Class → groups of interchangeable designated maps (a map and its copies)."""
        return {c: [list(g) for g in gs] for c, gs in self._groups.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.amax(self.maps(x), dim=(2, 3))  # (B, N_f)
        return pooled @ (self.weight * self.designated).T + (pooled @ self.common)[:, None] + self.bias


@dataclass(frozen=True)
class MapTruth:
    """The designated maps a model declares at its explained ``layer``: per class, groups of
    interchangeable map indices (a map and its copies; a singleton when it has none)."""

    layer: str
    groups: dict[int, tuple[tuple[int, ...], ...]]

    def maps(self, target: int) -> frozenset[int]:
        """``D(target)``: every designated map of the class, copies included."""
        return frozenset(k for group in self.groups.get(int(target), ()) for k in group)

    def on_image(self, target: int, active: Sequence[bool] | np.ndarray) -> tuple[tuple[int, ...], ...]:
        """The groups of ``target`` that carry evidence on one image: a group counts where one of
        its maps is active there (``active`` ``(N_f,)``: the map is not zero everywhere on the image);
        a designated map that is zero on an image is a part the image does not show.

        >>> MapTruth("maps", {0: ((0, 12), (1,))}).on_image(0, np.arange(16) != 1)
        ((0, 12),)
        """
        return tuple(g for g in self.groups.get(int(target), ()) if any(bool(active[k]) for k in g))


def map_truth(model: nn.Module) -> MapTruth | None:
    """The ground truth a model declares — ``designated_groups`` (class → groups of map indices) or
    ``designated_maps`` (class → indices; each its own group) at its ``default_layer`` — or None.

    >>> map_truth(PlantedCNN(1, 4, (32, 32))).maps(3)
    frozenset({6, 7})
    >>> map_truth(nn.Linear(2, 2)) is None
    True
    """
    try:
        groups = getattr(model, "designated_groups", None)
        if groups is None:
            flat = getattr(model, "designated_maps", None)
            groups = None if flat is None else {c: [[k] for k in ks] for c, ks in flat.items()}
    except Exception:  # a TorchScript or user model whose attribute cannot be read declares nothing
        return None
    layer = getattr(model, "default_layer", None)
    if not groups or not isinstance(layer, str):
        return None
    return MapTruth(layer, {int(c): tuple(tuple(int(k) for k in g) for g in gs) for c, gs in groups.items()})
