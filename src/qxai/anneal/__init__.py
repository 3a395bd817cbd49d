"""QUBO solvers (all dimod Samplers) and the physics of quantum annealing.

>>> from qxai.anneal import get_sampler
>>> import dimod
>>> float(get_sampler("exact").sample(dimod.BQM({"a": -1.0}, {}, 0.0, "BINARY")).first.energy)
-1.0
"""

from typing import Any

from qxai.anneal.samplers import SOLVERS, get_sampler, sample_many


def __getattr__(name: str) -> Any:
    # derived on every access, like qxai.anneal.samplers.SAMPLER_NAMES, so registered solvers appear
    if name == "SAMPLER_NAMES":
        return tuple(SOLVERS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SAMPLER_NAMES", "SOLVERS", "get_sampler", "sample_many"]
