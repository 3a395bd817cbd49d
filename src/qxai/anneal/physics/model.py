"""What an anneal is made of: the problem diagonal, the driver, the schedule, and the memory bill.

``H(s) = A(s) · κ Σ_p σx_p + B(s) · H_P`` with ``s = t / τ``. ``H_P`` is the diagonal of the BQM's
energies over the ``2^d`` states (:func:`qxai.anneal.enumerate.enumerate_energies`, little-endian,
qubit ``p`` = ``variables[p]``). The driver is fixed by its coefficient ``κ``:

- ``"transverse"``: ``H_D = −Σσx`` (``κ = −1``), ground state ``|+⟩^⊗d``, gap 2 at ``s = 0``;
- ``"authors"``: ``H_D = +(1/d) Σσx`` (``κ = +1/d``, the FS_QA code), ground state ``|−⟩^⊗d``.
  Conjugating by ``Z^⊗d`` maps it onto ``(1/d)·(−Σσx)``: same physics, all driver energies ÷ d.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import dimod
import numpy as np

from qxai.anneal.enumerate import enumerate_energies
from qxai.errors import QxaiError, unknown_name

#: Default memory budget when neither the caller nor ``QXAI_MEMORY_GB`` sets one.
DEFAULT_MEMORY_GB = 8.0

DRIVERS = ("transverse", "authors")


def driver_coefficient(driver: str, d: int) -> float:
    """``κ`` in ``H_D = κ Σσx``: −1 for ``"transverse"``, +1/d for ``"authors"``.

    >>> driver_coefficient("authors", 4)
    0.25
    """
    if driver == "transverse":
        return -1.0
    if driver == "authors":
        return 1.0 / max(d, 1)
    raise unknown_name("driver", driver, DRIVERS)


def driver_ground_state(driver: str, d: int) -> np.ndarray:
    """The ground state of the driver as a complex ``(2^d,)`` vector: ``|+⟩^⊗d`` or ``|−⟩^⊗d``."""
    n = 1 << d
    psi = np.full(n, 1.0 / np.sqrt(n), dtype=np.complex128)
    if driver_coefficient(driver, d) > 0:  # +Σσx is lowest on |−⟩: sign (−1)^popcount(i)
        parity = np.zeros(n, dtype=np.int64)
        idx = np.arange(n, dtype=np.int64)
        for p in range(d):
            parity ^= (idx >> p) & 1
        psi[parity == 1] *= -1.0
    return psi


@dataclass(frozen=True)
class Schedule:
    """``A(s)`` and ``B(s)`` on ``s ∈ [0, 1]`` with a name recorded in every output."""

    name: str
    A: Callable[[float], float]
    B: Callable[[float], float]


SCHEDULES: dict[str, Schedule] = {
    "linear": Schedule("linear", lambda s: 1.0 - s, lambda s: s),
    "quadratic": Schedule("quadratic", lambda s: (1.0 - s) ** 2, lambda s: s**2),
}


Coefficient = Callable[[float], float]


def make_schedule(spec: str | Schedule | tuple[Coefficient, Coefficient]) -> Schedule:
    """A :class:`Schedule` from a name (``linear``, ``quadratic``), a Schedule, or a pair ``(A, B)``.

    >>> make_schedule("quadratic").B(0.5)
    0.25
    >>> make_schedule((lambda s: 1 - s, lambda s: s ** 3)).name
    'custom'
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        if spec not in SCHEDULES:
            raise unknown_name("schedule", spec, SCHEDULES)
        return SCHEDULES[spec]
    if isinstance(spec, tuple) and len(spec) == 2 and all(callable(f) for f in spec):
        return Schedule("custom", spec[0], spec[1])
    raise QxaiError("a schedule is 'linear', 'quadratic' or a pair of callables (A, B); pass one of those")


@dataclass(frozen=True)
class AnnealProblem:
    """The diagonal ``H_P`` of a BQM and its ground manifold.

    ``energies`` has shape ``(2^d,)``; ``ground_indices`` are the states within ``atol`` of the
    minimum (their count is the degeneracy ``g``).

    >>> bqm = dimod.BinaryQuadraticModel({}, {("a", "b"): -1.0}, 0.0, "SPIN")
    >>> p = AnnealProblem.from_bqm(bqm)
    >>> p.num_qubits, p.degeneracy, p.ground_energy
    (2, 2, -1.0)
    """

    variables: list[Hashable]
    energies: np.ndarray
    vartype: dimod.Vartype
    ground_indices: np.ndarray = field(repr=False)

    @classmethod
    def from_bqm(
        cls, bqm: dimod.BinaryQuadraticModel, *, max_qubits: int = 26, atol: float | None = None
    ) -> AnnealProblem:
        """Enumerate the BQM's energies; ``atol`` (default ``1e-9 · max(1, spread)``) sets degeneracy."""
        if bqm.num_variables == 0:
            raise QxaiError("the model has no variables; there is nothing to anneal")
        variables, energies = enumerate_energies(bqm, max_variables=max_qubits)
        energies = np.ascontiguousarray(energies, dtype=np.float64)
        lo = float(energies.min())
        tol = 1e-9 * max(1.0, float(energies.max()) - lo) if atol is None else atol
        ground = np.flatnonzero(energies <= lo + tol)
        return cls(variables, energies, bqm.vartype, ground)

    @property
    def num_qubits(self) -> int:
        return len(self.variables)

    @property
    def ground_energy(self) -> float:
        return float(self.energies[self.ground_indices].min())

    @property
    def degeneracy(self) -> int:
        return int(self.ground_indices.size)

    def energy_levels(self, count: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """The ``count`` lowest distinct energies of ``H_P`` and the state indices at each."""
        tol = 1e-9 * max(1.0, float(np.ptp(self.energies)))
        order = np.argsort(self.energies, kind="stable")
        levels: list[float] = []
        members: list[list[int]] = []
        for i in order:
            e = float(self.energies[i])
            if levels and e - levels[-1] <= tol:
                members[-1].append(int(i))
                continue
            if len(levels) == count:
                break
            levels.append(e)
            members.append([int(i)])
        return np.array(levels), [np.array(m) for m in members]


def memory_budget_bytes(budget_gb: float | None = None) -> float:
    """The budget: the argument, else ``QXAI_MEMORY_GB``, else :data:`DEFAULT_MEMORY_GB`."""
    if budget_gb is None:
        budget_gb = float(os.environ.get("QXAI_MEMORY_GB", DEFAULT_MEMORY_GB))
    return budget_gb * 2**30


def check_memory(d: int, vectors: float, what: str, budget_gb: float | None = None) -> float:
    """Raise a :class:`QxaiError` before starting if ``vectors`` float64 arrays of ``2^d`` exceed the budget.

    ``vectors`` counts 8-byte words per amplitude (a complex128 vector counts 2). Returns bytes.

    >>> check_memory(10, 4, "gap") == 4 * 8 * 2**10
    True
    """
    need = vectors * 8.0 * 2.0**d
    budget = memory_budget_bytes(budget_gb)
    if need > budget:
        raise QxaiError(
            f"{what} at d={d} needs about {need / 2**30:.1f} GiB, over the {budget / 2**30:.1f} GiB budget; "
            "use fewer qubits or raise the budget (memory_gb= or QXAI_MEMORY_GB)"
        )
    return need
