"""The explainer protocol: one verb, batch dimension first, per-example targets (as in Captum).

>>> import torch
>>> class Uniform(Explainer):
...     name = "uniform"
...     def _explain(self, inputs, targets):
...         b, _, h, w = inputs.shape
...         return Explanation(np.ones((b, h, w), np.float32), targets.numpy(), self.name)
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
>>> Uniform(model).explain(torch.zeros(2, 1, 2, 2), target=1).saliency.shape
(2, 2, 2)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.probe import Target, eval_mode, target_classes


@dataclass
class Explanation:
    """What an explainer returns for a batch of ``B`` images of size ``H × W``.

    Attributes:
        saliency: ``(B, H, W)`` float32 in ``[0, 1]`` at the input resolution.
        targets: ``(B,)`` the class each map explains.
        method: the explainer's name.
        seconds: wall time of the whole call.
        extras: method-specific per-image results, each a list of length ``B`` or an array with
            leading dimension ``B`` (e.g. ``"selected"`` maps for QA, ``"channel_weights"`` for CAMs).
    """

    saliency: np.ndarray
    targets: np.ndarray
    method: str
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.saliency)


def resolve_targets(model: torch.nn.Module, inputs: torch.Tensor, target: Target) -> torch.Tensor:
    """``(B,)`` long tensor of targets: the predicted class when ``target`` is None (one forward
    pass, no gradients), a broadcast int, or a per-example sequence; see
    :func:`qxai.probe.target_classes`, which this calls.

    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> resolve_targets(net, torch.zeros(2, 1, 2, 2), [2, 0]).tolist()
    [2, 0]
    """

    def logits() -> torch.Tensor:
        with torch.no_grad():
            return model(inputs)

    return target_classes(target, inputs.shape[0], logits)


def check_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """Refuse inputs an explainer cannot use: wrong rank or non-finite values."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise QxaiError(f"inputs must be a B×C×H×W tensor, got {shape}")
    if not torch.isfinite(inputs).all():
        raise QxaiError("inputs contain NaN or infinite values; clean or re-normalise the images")
    return inputs


def normalise_maps(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """Min–max normalise each ``(H, W)`` map of a ``(B, H, W)`` stack to ``[0, 1]`` (constant → 0)."""
    m = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    m = m.astype(np.float32, copy=False)
    lo = m.reshape(len(m), -1).min(axis=1)[:, None, None]
    hi = m.reshape(len(m), -1).max(axis=1)[:, None, None]
    span = hi - lo
    out = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1), 0.0)
    return out.astype(np.float32)


class Explainer:
    """Base class: subclasses set ``name`` and implement ``_explain(inputs, targets)``."""

    name: str = "explainer"
    #: True when the map's sign is arbitrary (a principal component): sanity rank correlations then
    #: compare inverted copies and do not apply (the evaluation reads this flag).
    sign_ambiguous: bool = False

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def explain(self, inputs: torch.Tensor, target: Any = None) -> Explanation:
        """Explain a batch: ``inputs`` ``(B, C, H, W)``; ``target`` None (predicted class), an int, or
        ``(B,)``. Returns an :class:`Explanation` with ``(B, H, W)`` saliency in ``[0, 1]``."""
        inputs = check_inputs(inputs)
        with eval_mode(self.model):
            targets = resolve_targets(self.model, inputs, target)
            start = time.perf_counter()
            result = self._explain(inputs, targets)
        result.seconds = time.perf_counter() - start
        return result

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        raise NotImplementedError
