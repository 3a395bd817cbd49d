"""Energies of every assignment of a small binary quadratic model, vectorised.

Convention shared by the exact solver and the state-vector simulation: state index ``i`` assigns
``variables[p]`` the bit ``(i >> p) & 1`` (little-endian; for SPIN models bit 1 is +1 and bit 0 is
−1). In the quantum simulation, qubit ``p`` is ``variables[p]`` and σx on it flips bit ``p``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import dimod
import numpy as np

from qxai.errors import QxaiError

#: Largest number of variables whose 2^d energies we build in memory (2^26 float64 = 512 MiB).
MAX_ENUMERATION_VARIABLES = 26


def bqm_arrays(
    bqm: dimod.BinaryQuadraticModel, variables: Sequence[Hashable] | None = None
) -> tuple[list[Hashable], np.ndarray, np.ndarray, float]:
    """The model as dense arrays in BINARY form: ``(variables, linear (d,), upper (d, d), offset)``.

    ``upper`` holds each quadratic bias once, above the diagonal, so that
    ``E(x) = offset + linear @ x + x @ upper @ x`` for ``x`` in ``{0, 1}^d``.
    """
    binary = bqm.change_vartype(dimod.BINARY, inplace=False) if bqm.vartype is dimod.SPIN else bqm
    order = list(binary.variables) if variables is None else list(variables)
    if set(order) != set(binary.variables) or len(order) != len(binary.variables):
        raise QxaiError("the variable order must list every variable of the model exactly once")
    d = len(order)
    linear, (rows, cols, values), offset = binary.to_numpy_vectors(variable_order=order)
    upper = np.zeros((d, d))
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    np.add.at(upper, (lo, hi), values)
    return order, np.asarray(linear, dtype=float), upper, float(offset)


def enumerate_energies(
    bqm: dimod.BinaryQuadraticModel,
    variables: Sequence[Hashable] | None = None,
    *,
    max_variables: int = MAX_ENUMERATION_VARIABLES,
) -> tuple[list[Hashable], np.ndarray]:
    """Energy of every one of the ``2^d`` assignments, in the little-endian order above.

    Returns ``(variables, energies)`` with ``energies.shape == (2**d,)``. Built one variable at a
    time by doubling (``E[i + 2^p] = E[i] + h_p + Σ_{q<p} J_qp x_q``), so the cost is ``O(2^d d)``
    with no ``2^d × d`` bit matrix.

    >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": 2}, {("a", "b"): -3}, 0.5, "BINARY")
    >>> enumerate_energies(bqm, ["a", "b"])[1].tolist()
    [0.5, -0.5, 2.5, -1.5]
    """
    order, linear, upper, offset = bqm_arrays(bqm, variables)
    d = len(order)
    if d > max_variables:
        raise QxaiError(
            f"{d} variables is too many to enumerate (2^{d} states; limit {max_variables}); "
            "use a heuristic solver such as 'batch-sa' or 'sa'"
        )
    energies = np.full(1, offset)
    for p in range(d):
        # the lower half keeps x_p = 0; the upper half sets x_p = 1 over every earlier pattern
        energies = np.concatenate([energies, energies + linear[p] + _couplings_to(upper[:p, p])])
    # a SPIN model has the same energies as its BINARY copy under x = (s + 1) / 2
    return order, energies


def _couplings_to(column: np.ndarray) -> np.ndarray:
    """``c[i] = Σ_q column[q] · bit_q(i)`` for ``i < 2^len(column)``, built by doubling."""
    c = np.zeros(1)
    for weight in column:
        c = np.concatenate([c, c + weight])
    return c


def index_to_sample(index: int | np.ndarray, d: int, vartype: dimod.Vartype = dimod.BINARY) -> np.ndarray:
    """Little-endian bits of ``index`` as a ``(d,)`` (or ``(n, d)``) array of 0/1, or ±1 for SPIN."""
    idx = np.asarray(index, dtype=np.int64)
    bits = (idx[..., None] >> np.arange(d)) & 1
    return (2 * bits - 1).astype(np.int8) if vartype is dimod.SPIN else bits.astype(np.int8)
