"""The one way to switch a model into eval mode and give the caller's mode back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode for the body (BatchNorm and Dropout must not mix images), then the caller's mode
    back on every exit path, exceptions included. Yields the model.

    >>> net = torch.nn.Sequential(torch.nn.Dropout()).train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    # remember every sub-module's flag: a caller may have set a mixed mode on purpose
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
