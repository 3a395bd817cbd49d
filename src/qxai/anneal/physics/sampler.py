"""``StateVectorSampler``: exact simulated quantum annealing of a BQM as a dimod Sampler.

Each call evolves ``|ψ⟩`` from the driver ground state for a time ``tau`` and draws ``num_reads``
shots (default ``d²``, the authors' readout) from ``|ψ(τ)|²``. The SampleSet lists every shot;
``sampleset.first`` is the lowest-energy readout. ``info`` carries the fidelity ``F(τ)``, ``⟨H_P⟩``,
the step actually used and the driver and schedule names.

>>> import dimod
>>> bqm = dimod.BinaryQuadraticModel({"a": -1.0, "b": 0.5}, {("a", "b"): -1.0}, 0.0, "BINARY")
>>> ss = StateVectorSampler().sample(bqm, tau=20.0, dt=0.05, seed=1)
>>> len(ss), float(ss.first.energy), ss.info["fidelity"] > 0.9
(4, -1.5, True)
"""

from __future__ import annotations

from typing import Any

import dimod
import numpy as np

from qxai.anneal.enumerate import index_to_sample
from qxai.anneal.physics.dynamics import anneal
from qxai.anneal.physics.model import AnnealProblem, AnnealProtocol, Schedule, check_bqm


class StateVectorSampler(dimod.Sampler):
    """Exact state-vector quantum annealing (``H(s) = A(s) H_D + B(s) H_P``); see the module docstring."""

    def __init__(self, max_qubits: int = 26, memory_gb: float | None = None) -> None:
        self.max_qubits = max_qubits
        self.memory_gb = memory_gb
        names = ("num_reads", "tau", "dt", "driver", "schedule", "seed")
        self._parameters: dict[str, list[str]] = {name: [] for name in names}
        self._parameters.update(driver=["drivers"], schedule=["schedules"])
        self._properties: dict[str, Any] = {"drivers": ["transverse", "authors"], "max_qubits": max_qubits}
        self._properties["schedules"] = ["linear", "quadratic"]

    @property
    def parameters(self) -> dict[str, list[str]]:
        """The keywords of :meth:`sample` (dimod API)."""
        return self._parameters

    @property
    def properties(self) -> dict[str, Any]:
        """Drivers, schedules and the qubit limit (dimod API)."""
        return self._properties

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        *,
        num_reads: int | None = None,
        tau: float = 50.0,
        dt: float | None = None,
        driver: str | None = None,
        schedule: str | Schedule | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Anneal ``bqm`` for ``tau`` with step ``dt``; ``num_reads`` shots (default ``d²``).

        ``dt``, ``driver`` and ``schedule`` default to :class:`AnnealProtocol`'s defaults.
        """
        self.remove_unknown_kwargs(**kwargs)
        protocol = AnnealProtocol.of(None, dt=dt, driver=driver, schedule=schedule)
        if bqm.num_variables == 0:
            return dimod.SampleSet.from_samples([], bqm.vartype, energy=[], info={"fidelity": 1.0})
        linear, (_, _, quadratic), offset = bqm.to_numpy_vectors()
        if not (np.all(np.isfinite(linear)) and np.all(np.isfinite(quadratic)) and np.isfinite(offset)):
            check_bqm(bqm)  # raises the one-line NaN error
        problem = AnnealProblem.from_bqm(bqm, max_qubits=self.max_qubits)
        d = problem.num_qubits
        reads = d * d if num_reads is None else int(num_reads)
        result = anneal(problem, tau, protocol, num_reads=reads, seed=seed, memory_gb=self.memory_gb)
        shots = result.shots if result.shots is not None else np.zeros(0, dtype=np.int64)
        samples = index_to_sample(shots, d, problem.vartype).reshape(len(shots), d)
        info = {
            "fidelity": result.fidelity, "energy_expectation": result.energy, "tau": result.tau,
            "dt": result.dt, "steps": result.steps, "driver": result.driver, "schedule": result.schedule,
            "ground_energy": result.ground_energy, "degeneracy": result.degeneracy,
        }  # fmt: skip
        return dimod.SampleSet.from_samples_bqm((samples, problem.variables), bqm, info=info)
