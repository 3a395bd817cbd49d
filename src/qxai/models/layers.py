"""Finding a layer by name, with a close-match suggestion for typos."""

from __future__ import annotations

import difflib

import torch

from qxai.errors import QxaiError


def layer_names(model: torch.nn.Module) -> list[str]:
    """Names of every sub-module, as ``named_modules()`` gives them (the root excluded)."""
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """The sub-module called ``name``; an unknown name is a :class:`QxaiError` with suggestions.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    >>> resolve_layer(net, "0")
    Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))
    """
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    names = layer_names(model)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = (
        f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"layers: {', '.join(names[:12])}"
    )
    raise QxaiError(f"no layer named '{name}' in {type(model).__name__}; {hint}")
