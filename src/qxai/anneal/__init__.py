"""QUBO solvers (all dimod Samplers) and the physics of quantum annealing.

>>> from qxai.anneal import get_sampler
>>> import dimod
>>> float(get_sampler("exact").sample(dimod.BQM({"a": -1.0}, {}, 0.0, "BINARY")).first.energy)
-1.0
"""

from qxai.anneal.samplers import SAMPLER_NAMES, get_sampler, sample_many

__all__ = ["SAMPLER_NAMES", "get_sampler", "sample_many"]
