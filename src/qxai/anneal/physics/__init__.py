"""Exact state-vector physics of quantum annealing: spectra, minimum gaps, dynamics, a dimod sampler.

``H(s) = A(s) H_D + B(s) H_P`` on ``2^d`` amplitudes, never a ``2^d × 2^d`` matrix. See
``docs/annealing.md`` for conventions, accuracy and reach.

>>> import dimod
>>> p = AnnealProblem.from_bqm(dimod.generators.anti_crossing_clique(6))
>>> gap = minimum_gap(p, grid=21)
>>> run = anneal(p, tau=10.0, dt=0.05)
>>> round(gap.delta_min, 4), round(gap.s_star, 3), 0.0 <= run.fidelity <= 1.0
(0.1287, 0.554, True)
"""

from qxai.anneal.physics.dynamics import AnnealResult, anneal, evolve, evolve_krylov, sample_states
from qxai.anneal.physics.model import (
    DRIVERS,
    SCHEDULES,
    AnnealProblem,
    Schedule,
    check_memory,
    driver_coefficient,
    make_schedule,
)
from qxai.anneal.physics.spectrum import GapResult, minimum_gap

__all__ = [
    "DRIVERS",
    "SCHEDULES",
    "AnnealProblem",
    "AnnealResult",
    "GapResult",
    "Schedule",
    "anneal",
    "check_memory",
    "driver_coefficient",
    "evolve",
    "evolve_krylov",
    "make_schedule",
    "minimum_gap",
    "sample_states",
]
