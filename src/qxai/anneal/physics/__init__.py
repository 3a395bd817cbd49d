"""Exact state-vector physics of quantum annealing: spectra, minimum gaps, dynamics, a dimod sampler.

``H(s) = A(s) H_D + B(s) H_P`` on ``2^d`` amplitudes, never a ``2^d × 2^d`` matrix. See
``docs/annealing.md`` for conventions, accuracy and reach.

>>> import dimod
>>> from qxai.anneal.physics import AnnealProblem, AnnealProtocol, anneal, minimum_gap
>>> p = AnnealProblem.from_bqm(dimod.generators.anti_crossing_clique(6))
>>> gap = minimum_gap(p, grid=21)
>>> run = anneal(p, 10.0, AnnealProtocol(dt=0.05))
>>> round(gap.delta_min, 4), round(gap.s_star, 3), 0.0 <= run.fidelity <= 1.0
(0.1287, 0.554, True)
"""

import importlib
from typing import Any

#: Where each public name lives; submodules are imported on first use, so reading settings or
#: statistics (the CLI, the report) does not compile the numba kernels.
_HOMES = {
    "dynamics": ("AnnealResult", "anneal", "evolve", "evolve_krylov", "sample_states"),
    "model": ("DRIVERS", "ENERGY_CONVENTIONS", "SCHEDULES", "AnnealProblem", "AnnealProtocol", "Schedule",
              "anneal_memory_words", "apply_energy_convention", "check_bqm", "check_memory",
              "driver_coefficient", "gap_memory_words", "make_schedule"),
    "spectrum": ("GapResult", "minimum_gap"),
    "study": ("AnnealSettings", "load_bqm", "sample_per_class", "solve_problem"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"qxai.anneal.physics.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qxai.anneal.physics' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


__all__ = [
    "DRIVERS",
    "ENERGY_CONVENTIONS",
    "SCHEDULES",
    "AnnealProblem",
    "AnnealProtocol",
    "AnnealResult",
    "AnnealSettings",
    "GapResult",
    "Schedule",
    "anneal",
    "anneal_memory_words",
    "apply_energy_convention",
    "check_bqm",
    "check_memory",
    "driver_coefficient",
    "evolve",
    "evolve_krylov",
    "gap_memory_words",
    "load_bqm",
    "make_schedule",
    "minimum_gap",
    "sample_per_class",
    "sample_states",
    "solve_problem",
]
