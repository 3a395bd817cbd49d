"""The D-Wave quantum processor behind an embedding, used only when a Leap token is set.

``embedding="minor"`` uses minorminer's heuristic minor embedding (dwave-system's
EmbeddingComposite); ``embedding="clique"`` uses busclique's clique embedding, which suits the dense
explanation QUBOs (every pair of kept maps is coupled) and gives chains of even length. The chain
strength is a ``sample()`` parameter (default: dwave-system's uniform torque compensation).

Offline, pass ``child=MockDWaveSampler()`` (dwave-system's test double) and no token is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import dimod

from qxai.errors import QxaiError

EMBEDDINGS = ("minor", "clique")


def _clique_finder(child: dimod.Structured) -> Callable[..., dict[Hashable, list[int]]]:
    """A ``find_embedding(S, T)`` for EmbeddingComposite that returns a busclique clique embedding."""
    from minorminer import busclique

    target = child.to_networkx_graph()

    def find(source_edges: Sequence[tuple[Hashable, Hashable]], _target: Any, **_: Any) -> dict:
        # EmbeddingComposite lists every variable as a self-loop, so isolated ones are included
        nodes = sorted({v for edge in source_edges for v in edge}, key=repr)
        return busclique.find_clique_embedding(nodes, target)

    return find


def qpu_sampler(
    *,
    embedding: str = "minor",
    token: str | None = None,
    solver: str | None = None,
    child: dimod.Sampler | None = None,
) -> dimod.Sampler:
    """An embedding composite over a D-Wave QPU (or over ``child``, e.g. a MockDWaveSampler).

    Without ``child`` it needs a token (``token`` or the DWAVE_API_TOKEN variable).

    >>> from dwave.system.testing import MockDWaveSampler
    >>> s = qpu_sampler(child=MockDWaveSampler(), embedding="clique")
    >>> float(s.sample(dimod.BinaryQuadraticModel({0: -1}, {}, 0, "BINARY")).first.energy)
    -1.0
    """
    if embedding not in EMBEDDINGS:
        raise QxaiError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got '{embedding}'")
    if child is None:
        token = token or os.environ.get("DWAVE_API_TOKEN")
        if not token:
            raise QxaiError(
                "the 'qpu' solver needs a D-Wave Leap token; set DWAVE_API_TOKEN, "
                "or choose an offline solver such as 'batch-sa'"
            )
        from dwave.system import DWaveSampler

        child = DWaveSampler(token=token, solver=solver) if solver else DWaveSampler(token=token)
    from dwave.system import EmbeddingComposite

    if embedding == "clique":
        return EmbeddingComposite(child, find_embedding=_clique_finder(child))
    return EmbeddingComposite(child)
