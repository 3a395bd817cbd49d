"""Exact solution of small models by enumerating all ``2^d`` energies with numpy.

Unlike :class:`dimod.ExactSolver`, which builds a ``2^d × d`` sample matrix and returns every
state, this returns only the lowest states, built from the energy vector of
:func:`qxai.anneal.enumerate.enumerate_energies` (``O(2^d d)`` time, ``2^d`` floats of memory).

Size limit: ``d ≤ max_variables`` (default 26, i.e. 2^26 float64 = 512 MiB); past it a
:class:`~qxai.errors.QxaiError` names a heuristic solver to use instead. In practice ``d ≤ 22``
takes under a second.
"""

from __future__ import annotations

from typing import Any

import dimod
import numpy as np

from qxai.anneal.enumerate import MAX_ENUMERATION_VARIABLES, enumerate_energies, index_to_sample

#: Most ground states returned when ``num_reads`` is not given (a model with zero biases has 2^d).
MAX_GROUND_STATES = 4096


class ExactEnumerationSampler(dimod.Sampler):
    """Lowest-energy states of a small BQM by full enumeration.

    ``sample(bqm)`` returns every ground state (up to :data:`MAX_GROUND_STATES`, within a relative
    tolerance of 1e-9); ``sample(bqm, num_reads=n)`` returns the ``n`` lowest states, lowest first,
    ties broken by state index. Energies in the returned SampleSet are computed by dimod.

    >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -1}, {("a", "b"): 3}, 0.0, "BINARY")
    >>> ExactEnumerationSampler().sample(bqm).record.energy.tolist()
    [-1.0, -1.0]
    """

    #: its energies are computed by dimod from the model (sample_many need not redo them)
    energies_from_bqm = True

    def __init__(self, max_variables: int = MAX_ENUMERATION_VARIABLES) -> None:
        self.max_variables = int(max_variables)

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return {"num_reads": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"max_variables": self.max_variables}

    def sample(
        self, bqm: dimod.BinaryQuadraticModel, num_reads: int | None = None, **kwargs: Any
    ) -> dimod.SampleSet:
        """Enumerate ``bqm`` (BINARY or SPIN, ``d ≤ max_variables``); see the class docstring."""
        kwargs = self.remove_unknown_kwargs(**kwargs)
        order, energies = enumerate_energies(bqm, max_variables=self.max_variables)
        if num_reads is None:
            lowest = energies.min()
            tol = 1e-9 * max(1.0, abs(lowest))
            idx = np.flatnonzero(energies <= lowest + tol)[:MAX_GROUND_STATES]
        else:
            n = min(int(num_reads), energies.size)
            if n < 1:
                raise ValueError("num_reads must be a positive integer")
            idx = np.argpartition(energies, n - 1)[:n] if n < energies.size else np.arange(n)
        # stable order: by energy, then by state index, so the output never depends on partitioning
        idx = idx[np.lexsort((idx, energies[idx]))]
        samples = index_to_sample(idx, len(order), bqm.vartype)
        return dimod.SampleSet.from_samples_bqm((samples, order), bqm)
