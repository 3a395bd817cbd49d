"""A composite that fills in default ``sample()`` parameters, so that a sampler built by name with
options (``get_sampler("sa", num_sweeps=200)``) uses them on every call."""

from __future__ import annotations

import inspect
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


class DefaultParametersComposite(dimod.ComposedSampler):
    """Wrap ``child`` so that every ``sample`` call gets ``defaults`` unless it overrides them.

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
    def children(self) -> list[dimod.Sampler]:
        return [self._child]

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return {name: [] for name in sample_parameter_names(self._child)}

    @property
    def properties(self) -> dict[str, Any]:
        return {"child_properties": dict(self._child.properties), "defaults": dict(self.defaults)}

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample ``bqm`` with the child, the defaults overridden by ``parameters``."""
        return self._child.sample(bqm, **{**self.defaults, **parameters})
