"""Which class each example is explained for: the one target resolution every method uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from qxai.errors import QxaiError

Target = int | Sequence[int] | torch.Tensor | None


def target_classes(
    target: Target, batch_size: int, logits: torch.Tensor | Callable[[], torch.Tensor]
) -> torch.Tensor:
    """``(B,)`` long tensor of the classes to explain.

    ``target`` None takes the predicted class (argmax of ``logits``); an int is broadcast to every
    example; a sequence or tensor gives one class per example. ``logits`` is the ``(B, K)`` output
    already computed, or a function computing it, called only when ``target`` is None (so no
    forward pass is spent when targets are given). Classes outside ``0 … K−1`` (``K`` known when
    ``logits`` is a tensor) and a wrong count are :class:`QxaiError`.

    >>> target_classes(None, 2, torch.tensor([[0.1, 0.9], [0.8, 0.2]])).tolist()
    [1, 0]
    >>> target_classes(1, 3, lambda: 1 / 0).tolist()  # given targets never call the model
    [1, 1, 1]
    >>> target_classes([0, 2], 2, torch.zeros(2, 2))
    Traceback (most recent call last):
    qxai.errors.QxaiError: target 2 is not a class of this model (classes 0..1); pick an existing class
    """
    if target is None:
        scores = logits if isinstance(logits, torch.Tensor) else logits()
        return scores.detach().argmax(dim=1)
    t = torch.as_tensor(target, dtype=torch.long).flatten()
    if t.numel() == 1:
        t = t.expand(batch_size).clone()
    if t.numel() != batch_size:
        raise QxaiError(
            f"got {t.numel()} targets for {batch_size} inputs; give one target per input or one for all"
        )
    classes = logits.shape[1] if isinstance(logits, torch.Tensor) else None
    bad = t[(t < 0) | (t >= classes)] if classes is not None else t[t < 0]
    if bad.numel():
        known = f" (classes 0..{classes - 1})" if classes is not None else ""
        raise QxaiError(f"target {int(bad[0])} is not a class of this model{known}; pick an existing class")
    return t
