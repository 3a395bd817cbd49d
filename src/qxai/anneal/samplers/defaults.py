"""The two thin composites the solver registry puts around a sampler.

* :class:`DefaultParametersComposite` fills in default ``sample()`` parameters, so that a sampler
  built by name with options (``get_sampler("sa", num_sweeps=200)``) uses them on every call; when
  its child batches (has ``sample_many``), so does the composite (:func:`with_defaults` picks).
* :class:`IntegerLabelsComposite` hands its child a model labelled ``0 … d−1`` and gives the answer
  back under the model's own labels, for samplers that sort labels (OpenJij) and so fail on tuple
  or mixed-type labels.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import dimod

from qxai.errors import QxaiError


def sample_parameter_names(sampler: dimod.Sampler) -> set[str]:
    """Names ``sampler.sample`` accepts: its declared ``parameters`` plus its signature's keywords.

    Some samplers (OpenJij's) declare fewer parameters than their ``sample`` takes.
    """
    names = set(sampler.parameters)
    try:
        sig = inspect.signature(sampler.sample)
    except (TypeError, ValueError):
        return names
    return names | {p.name for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD} - {"bqm"}


class _OneChildComposite(dimod.ComposedSampler):
    """A composite over one child that takes every parameter the child takes."""

    _child: dimod.Sampler

    @property
    def children(self) -> list[dimod.Sampler]:
        return [self._child]

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return {name: [] for name in sample_parameter_names(self._child)}


class DefaultParametersComposite(_OneChildComposite):
    """Wrap ``child`` so that every ``sample`` call gets ``defaults`` unless it overrides them.

    A default the child does not take is a :class:`QxaiError` naming the options it has.

    >>> from dwave.samplers import SimulatedAnnealingSampler
    >>> s = DefaultParametersComposite(SimulatedAnnealingSampler(), num_reads=3)
    >>> len(s.sample(dimod.BinaryQuadraticModel({"a": -1}, {}, 0, "BINARY"), seed=1))
    3
    """

    def __init__(self, child: dimod.Sampler, **defaults: Any) -> None:
        unknown = sorted(set(defaults) - sample_parameter_names(child))
        if unknown:
            raise QxaiError(
                f"{type(child).__name__} has no option {', '.join(unknown)}; "
                f"its options are: {', '.join(sorted(sample_parameter_names(child)))}"
            )
        self._child = child
        self.defaults = dict(defaults)

    @property
    def properties(self) -> dict[str, Any]:
        return {"child_properties": dict(self._child.properties), "defaults": dict(self.defaults)}

    @property
    def energies_from_bqm(self) -> bool:
        """The child's promise that its energies are dimod's own (see ``sample_many``)."""
        return bool(getattr(self._child, "energies_from_bqm", False))

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample ``bqm`` with the child, the defaults overridden by ``parameters``."""
        return self._child.sample(bqm, **{**self.defaults, **parameters})


class BatchDefaultParametersComposite(DefaultParametersComposite):
    """:class:`DefaultParametersComposite` over a child that solves a list of models in one call."""

    def sample_many(
        self, bqms: Sequence[dimod.BinaryQuadraticModel], **parameters: Any
    ) -> list[dimod.SampleSet]:
        """The child's ``sample_many``, the defaults overridden by ``parameters``."""
        return self._child.sample_many(bqms, **{**self.defaults, **parameters})


def with_defaults(sampler: dimod.Sampler, **defaults: Any) -> dimod.Sampler:
    """``sampler`` itself when there are no defaults, else the composite that keeps its batching.

    >>> from qxai.anneal.samplers.batch_sa import BatchSimulatedAnnealingSampler
    >>> hasattr(with_defaults(BatchSimulatedAnnealingSampler(), num_reads=4), "sample_many")
    True
    """
    if not defaults:
        return sampler
    if hasattr(sampler, "sample_many"):
        return BatchDefaultParametersComposite(sampler, **defaults)
    return DefaultParametersComposite(sampler, **defaults)


class IntegerLabelsComposite(_OneChildComposite):
    """Solve a relabelled copy ``0 … d−1`` of the model with ``child``; answer in the model's labels.

    Models whose labels are all ``int`` already go to the child unchanged.

    >>> import openjij
    >>> bqm = dimod.BinaryQuadraticModel({(0, 1): -1.0, "a": 1.0}, {((0, 1), "a"): -3.0}, 0.0, "BINARY")
    >>> ss = IntegerLabelsComposite(openjij.SQASampler()).sample(bqm, num_sweeps=50, seed=1)
    >>> {v: int(x) for v, x in ss.first.sample.items()}, float(ss.first.energy)
    ({(0, 1): 1, 'a': 1}, -3.0)
    """

    def __init__(self, child: dimod.Sampler) -> None:
        self._child = child

    @property
    def properties(self) -> dict[str, Any]:
        return {"child_properties": dict(self._child.properties)}

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample the integer-labelled copy of ``bqm`` and relabel the answer back."""
        if all(type(v) is int for v in bqm.variables):
            return self._child.sample(bqm, **parameters)
        relabelled, back = bqm.relabel_variables_as_integers(inplace=False)
        sampleset = self._child.sample(relabelled, **parameters)
        return sampleset.relabel_variables(back, inplace=False)
