"""QUBOs with a planted, provably optimal solution: a known ground energy at any size.

Two ensembles from the benchmarking literature, as dimod SPIN models with ``d`` variables ``0 … d−1``:

- :func:`frustrated_loops` (Hen et al., Phys. Rev. A 92, 042325, 2015): random loops on a random
  4-regular graph; on each loop every coupling is ferromagnetic for the planted state except one
  random frustrated edge. Each loop's energy is minimal (``−(L − 2)`` for ``L`` edges) at the
  planted state, so the sum is too: ``E* = −Σ_loops (L − 2)``.
- :func:`wishart_planted` (Hamze et al., Phys. Rev. E 101, 052102, 2020): dense couplings
  ``J = −(1/d) W̃ W̃ᵀ`` (off-diagonal) from ``M = α d`` Gaussian columns projected orthogonally to
  the planted state ``t``; ``E(s) = −½ Σ_{i≠j} J_ij s_i s_j = (‖W̃ᵀs‖² − tr W̃W̃ᵀ) / (2d)`` is minimal
  where ``W̃ᵀs = 0``, which ``t`` satisfies. Small ``α`` makes it hard.

Both are gauge-transformed by a random planted state (couplings ``J_ij t_i t_j``) so that the
solution is not all-ones. Every function returns ``(bqm, planted)`` with ``planted`` a ``(d,)`` ±1
int8 array; the planted state's energy is the minimum (tested against enumeration for small ``d``).

>>> bqm, planted = frustrated_loops(12, seed=0)
>>> float(bqm.energy(dict(enumerate(planted)))) == planted_energy(bqm, planted)
True
"""

from __future__ import annotations

import dimod
import numpy as np

from qxai.errors import QxaiError
from qxai.seeding import numpy_rng


def planted_energy(bqm: dimod.BinaryQuadraticModel, planted: np.ndarray) -> float:
    """Energy of ``planted`` (d,) ±1 in ``bqm`` (SPIN, variables ``0 … d−1``)."""
    return float(bqm.energy(dict(enumerate(planted.tolist()))))


def _regular_graph(d: int, degree: int, rng: np.random.Generator) -> list[set[int]]:
    """Adjacency sets of a random simple ``degree``-regular graph on ``d`` nodes (pairing model with
    restarts)."""
    for _ in range(1000):
        stubs = rng.permutation(np.repeat(np.arange(d), degree))
        pairs = stubs.reshape(-1, 2)
        adj: list[set[int]] = [set() for _ in range(d)]
        ok = True
        for a, b in pairs.tolist():
            if a == b or b in adj[a]:
                ok = False
                break
            adj[a].add(b)
            adj[b].add(a)
        if ok:
            return adj
    raise QxaiError(f"could not draw a simple {degree}-regular graph on {d} nodes; use more nodes")


def _random_loop(adj: list[set[int]], rng: np.random.Generator) -> list[int]:
    """A cycle (nodes in order, length ≥ 3) found by a random walk until it revisits a node."""
    while True:
        path = [int(rng.integers(len(adj)))]
        seen = {path[0]: 0}
        prev = -1
        while True:
            options = sorted(adj[path[-1]] - {prev})
            nxt = options[int(rng.integers(len(options)))]
            if nxt in seen:
                loop = path[seen[nxt] :]
                if len(loop) >= 3:
                    return loop
                break
            prev = path[-1]
            seen[nxt] = len(path)
            path.append(nxt)


def frustrated_loops(
    d: int, *, loops_per_variable: float = 0.3, degree: int = 4, seed: int = 0
) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
    """Planted frustrated-loop SPIN model on a random ``degree``-regular graph with
    ``round(loops_per_variable · d)`` loops; returns ``(bqm, planted (d,) ±1)``.

    >>> bqm, t = frustrated_loops(16, seed=1)
    >>> len(bqm.variables), t.shape
    (16, (16,))
    """
    if d < degree + 1:
        raise QxaiError(f"frustrated loops need d > degree ({degree}), got d = {d}")
    rng = numpy_rng(seed, f"planted-loops-{d}")
    adj = _regular_graph(d, degree, rng)
    planted = rng.choice(np.array([-1, 1], dtype=np.int8), size=d)
    quadratic: dict[tuple[int, int], float] = {}
    for _ in range(max(1, round(loops_per_variable * d))):
        loop = _random_loop(adj, rng)
        edges = [(loop[i], loop[(i + 1) % len(loop)]) for i in range(len(loop))]
        frustrated = int(rng.integers(len(edges)))
        for e, (a, b) in enumerate(edges):
            # J s_a s_b: −1 satisfied (aligned in the gauge of the planted state), +1 frustrated
            value = (1.0 if e == frustrated else -1.0) * float(planted[a]) * float(planted[b])
            key = (min(a, b), max(a, b))
            quadratic[key] = quadratic.get(key, 0.0) + value
    bqm = dimod.BinaryQuadraticModel({i: 0.0 for i in range(d)}, quadratic, 0.0, dimod.SPIN)
    return bqm, planted


def wishart_planted(
    d: int, *, alpha: float = 2.0, seed: int = 0
) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
    """Dense Wishart planted SPIN model with ``M = max(1, round(alpha · d))`` columns; returns
    ``(bqm, planted (d,) ±1)``.

    >>> bqm, t = wishart_planted(10, seed=0)
    >>> bqm.num_interactions
    45
    """
    if d < 2 or not alpha > 0:
        raise QxaiError(f"the Wishart ensemble needs d ≥ 2 and alpha > 0, got d = {d}, alpha = {alpha}")
    rng = numpy_rng(seed, f"planted-wishart-{d}")
    m = max(1, round(alpha * d))
    ones = np.ones(d)
    w = rng.standard_normal((d, m))
    w -= np.outer(ones, ones @ w) / d  # columns orthogonal to the all-ones planted state
    j = -(w @ w.T) / d
    planted = rng.choice(np.array([-1, 1], dtype=np.int8), size=d)
    j *= np.outer(planted, planted)  # gauge: the planted state becomes the solution
    rows, cols = np.triu_indices(d, 1)
    # E = −½ Σ_{i≠j} J_ij s_i s_j = −Σ_{i<j} J_ij s_i s_j
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.zeros(d), (rows, cols, -j[rows, cols]), 0.0, dimod.SPIN
    )
    return bqm, planted


FAMILIES = {"loops": frustrated_loops, "wishart": wishart_planted}


def planted_instances(
    family: str, d: int, count: int, *, seed: int = 0
) -> list[tuple[dimod.BinaryQuadraticModel, np.ndarray]]:
    """``count`` instances of ``family`` ("loops" or "wishart") at size ``d``, seeds ``seed …``.

    >>> len(planted_instances("wishart", 8, 3))
    3
    """
    if family not in FAMILIES:
        raise QxaiError(f"unknown planted family '{family}'; use one of {', '.join(FAMILIES)}")
    return [FAMILIES[family](d, seed=seed + i) for i in range(count)]


__all__ = ["FAMILIES", "frustrated_loops", "planted_energy", "planted_instances", "wishart_planted"]
