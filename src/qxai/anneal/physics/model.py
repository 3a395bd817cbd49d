"""What an anneal is made of: the problem diagonal, the driver, the schedule, and the memory bill.

``H(s) = A(s) · κ Σ_p σx_p + B(s) · H_P`` with ``s = t / τ``. ``H_P`` is the diagonal of the BQM's
energies over the ``2^d`` states (:func:`qxai.anneal.enumerate.enumerate_energies`, little-endian,
qubit ``p`` = ``variables[p]``). The driver is fixed by its coefficient ``κ``:

- ``"transverse"``: ``H_D = −Σσx`` (``κ = −1``), ground state ``|+⟩^⊗d``, gap 2 at ``s = 0``;
- ``"authors"``: ``H_D = +(1/d) Σσx`` (``κ = +1/d``, the FS_QA code), ground state ``|−⟩^⊗d``.
  Conjugating by ``Z^⊗d`` maps it onto ``(1/d)·(−Σσx)``: same physics, all driver energies ÷ d.

:class:`AnnealProtocol` bundles ``(dt, driver, schedule)`` with their defaults written once; every
function of this package takes one. The energy convention of ``H_P`` (:func:`apply_energy_convention`):

- ``"spec"``: ``H_P = E(x)``, the BQM's own energies (SPEC §1);
- ``"authors"``: the FS_QA code builds ``H_P`` from ``(I − σz)`` per qubit, whose eigenvalue is
  ``2x``; substituting ``x → 2x`` multiplies quadratic biases by 4 and linear biases by 2, e.g.
  ``H_P = 4(1−β)ΣJ x x − 2βΣα̃ x`` for an explanation QUBO.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import dimod
import numpy as np

from qxai.anneal.enumerate import enumerate_energies
from qxai.errors import QxaiError, unknown_name
from qxai.machine import machine_memory_bytes

#: Default memory budget when neither the caller nor ``QXAI_MEMORY_GB`` sets one.
DEFAULT_MEMORY_GB = 8.0

DRIVERS = ("transverse", "authors")

#: Largest Σ|bias| of a BQM that can be annealed: its squared energies must stay finite in float64
#: (√1.8e308 ≈ 1.3e154), with a margin for the sums of the eigensolvers.
ENERGY_LIMIT = 1e150

#: How ``H_P`` is built from the BQM: its own energies, or the authors' ``(I − σz)`` encoding (``x → 2x``).
ENERGY_CONVENTIONS = ("spec", "authors")

#: Most split-operator steps one anneal may take (``τ/dt``): the per-step coefficient tables then
#: hold ≈ 0.4 GB and a 14-qubit run takes hours; past it a run would not finish.
MAX_STEPS = 10_000_000


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
class AnnealProtocol:
    """How an anneal runs: the time step ``dt``, the driver and the schedule, defaults written once.

    ``driver`` is one of :data:`DRIVERS`; ``schedule`` a name of :data:`SCHEDULES` or a
    :class:`Schedule` (user functions). Validated on construction.

    >>> AnnealProtocol().dt, AnnealProtocol.of(None, driver="authors").driver
    (0.01, 'authors')
    >>> AnnealProtocol(dt=0)
    Traceback (most recent call last):
    qxai.errors.QxaiError: dt must be a positive finite time step, got 0; the authors use 0.01
    """

    dt: float = 0.01
    driver: str = "transverse"
    schedule: str | Schedule = "linear"

    def __post_init__(self) -> None:
        try:
            dt = float(self.dt)
        except (TypeError, ValueError):
            dt = math.nan
        if not (math.isfinite(dt) and dt > 0):
            raise QxaiError(f"dt must be a positive finite time step, got {self.dt}; the authors use 0.01")
        object.__setattr__(self, "dt", dt)
        if self.driver not in DRIVERS:
            raise unknown_name("driver", str(self.driver), DRIVERS)
        make_schedule(self.schedule)  # raises for an unknown name or a malformed pair

    @classmethod
    def of(cls, protocol: AnnealProtocol | dict[str, Any] | None = None, **overrides: Any) -> AnnealProtocol:
        """``protocol`` (an instance, a dict such as ``anneal.json``'s ``"protocol"``, or None for the
        defaults) with the non-None ``overrides`` applied."""
        base = protocol if isinstance(protocol, AnnealProtocol) else cls()
        given = dict(protocol) if isinstance(protocol, dict) else {}
        given.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise QxaiError(
                f"unknown anneal protocol option(s) {', '.join(unknown)}; use dt, driver, schedule"
            )
        return replace(base, **given) if given else base

    @property
    def schedule_functions(self) -> Schedule:
        """The :class:`Schedule` (named or user-supplied)."""
        return make_schedule(self.schedule)

    @property
    def schedule_name(self) -> str:
        return self.schedule_functions.name

    def steps(self, tau: float) -> int:
        """Split-operator steps ``K = ⌈τ/dt⌉`` for total time ``tau``; refuses more than :data:`MAX_STEPS`.

        >>> AnnealProtocol().steps(50.0)
        5000
        """
        try:
            tau = float(tau)
        except (TypeError, ValueError):
            tau = math.nan
        if not (math.isfinite(tau) and tau > 0):
            raise QxaiError(f"tau and dt must be positive and finite, got tau={tau}, dt={self.dt}")
        steps = max(1, math.ceil(tau / self.dt - 1e-9))
        if steps > MAX_STEPS:
            raise QxaiError(
                f"tau={tau:g} at dt={self.dt:g} needs {steps:.3g} steps, over the limit of {MAX_STEPS:.0e}; "
                "use a smaller tau or a larger dt"
            )
        return steps

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the schedule by name (``custom`` for user functions)."""
        return {"dt": self.dt, "driver": self.driver, "schedule": self.schedule_name}


def apply_energy_convention(bqm: dimod.BinaryQuadraticModel, convention: str) -> dimod.BinaryQuadraticModel:
    """The BQM whose energies are ``H_P`` in ``convention`` (:data:`ENERGY_CONVENTIONS`).

    ``"spec"`` returns ``bqm`` itself. ``"authors"`` substitutes ``x → 2x`` in the BINARY form (the
    eigenvalue of ``I − σz`` on bit ``x``): quadratic biases ×4, linear ×2, offset kept; a SPIN
    model is converted to BINARY, scaled, and converted back, so samples keep its vartype.

    >>> b = dimod.BinaryQuadraticModel({"a": -0.7}, {("a", "b"): 0.3}, 0.0, "BINARY")
    >>> a = apply_energy_convention(b, "authors")
    >>> float(a.linear["a"]), float(a.quadratic[("a", "b")])
    (-1.4, 1.2)
    """
    if convention not in ENERGY_CONVENTIONS:
        raise unknown_name("energy convention", str(convention), ENERGY_CONVENTIONS)
    if convention == "spec":
        return bqm
    binary = bqm.change_vartype(dimod.BINARY, inplace=False)
    scaled = dimod.BinaryQuadraticModel(
        {v: 2.0 * b for v, b in binary.linear.items()},
        {uv: 4.0 * b for uv, b in binary.quadratic.items()},
        binary.offset,
        dimod.BINARY,
    )
    return scaled.change_vartype(bqm.vartype, inplace=True)


def check_bqm(bqm: dimod.BinaryQuadraticModel, what: str = "the BQM") -> None:
    """Refuse a BQM that cannot be annealed meaningfully, before any enumeration.

    Refused: no variables (nothing to anneal), a non-finite bias or offset, biases whose magnitudes
    sum beyond :data:`ENERGY_LIMIT` (the energies' squares would overflow), and a BQM whose biases
    are all zero (every one of the ``2^d`` states is a ground state: there is no problem to solve,
    no gap above the ground manifold and success is certain). One line each, :class:`QxaiError`.

    >>> check_bqm(dimod.BinaryQuadraticModel({"a": 0.0}, {}, 0.0, "BINARY"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qxai.errors.QxaiError: the BQM has only zero biases (every state is a ground state...
    """
    if bqm.num_variables == 0:
        raise QxaiError(f"{what} has no variables; there is nothing to anneal, give it at least one variable")
    linear, (_, _, quadratic), offset = bqm.to_numpy_vectors()
    values = np.concatenate([np.asarray(linear, dtype=float), np.asarray(quadratic, dtype=float), [offset]])
    if not np.all(np.isfinite(values)):
        raise QxaiError(f"{what} has a NaN or infinite bias; fix the model's biases")
    # every energy is at most Σ|bias| in magnitude; the gap search squares energies (norms of H ψ),
    # so beyond √(float64 max) ≈ 1.3e154 it would overflow and a non-constant H_P look constant
    with np.errstate(over="ignore"):  # an overflowing sum is exactly what is refused here
        bound = float(np.sum(np.abs(values)))
    if not bound <= ENERGY_LIMIT:
        raise QxaiError(
            f"{what} has biases whose magnitudes sum to {bound:.3g}, beyond {ENERGY_LIMIT:.0e}, where "
            "float64 energies and their squares overflow; rescale the BQM (e.g. bqm.scale(1 / max |bias|))"
        )
    if not np.any(values[:-1]):
        raise QxaiError(
            f"{what} has only zero biases (every state is a ground state, nothing to anneal); "
            "give it a nonzero bias"
        )


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

    @property
    def classical_gap(self) -> float | None:
        """``E_1 − E_0`` of ``H_P``: the first level outside the ground manifold minus the ground level.

        This is the gap of ``H(s)`` at ``s = 1`` (``B = 1``); None when ``H_P`` is constant.

        >>> bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": 3.0}, {}, 0.0, "BINARY")
        >>> AnnealProblem.from_bqm(bqm).classical_gap
        1.0
        """
        levels, _ = self.energy_levels(2)
        return float(levels[1] - levels[0]) if levels.size > 1 else None

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


#: Guard vectors beyond the ``g + 1`` wanted levels in the LOBPCG block of the gap search.
GUARDS = 1


def gap_memory_words(degeneracy: int = 1, refine: int = 2, method: str = "lobpcg") -> int:
    """8-byte words per amplitude that the gap search holds for a ``degeneracy``-fold ground state.

    LOBPCG: ``[X W P | HX HW HP]`` of ``m = g + 2`` columns, the start and the kept warm starts;
    ARPACK: its Krylov basis plus work vectors.

    >>> gap_memory_words()
    33
    """
    k = degeneracy + 1
    m = k + GUARDS
    return 6 * m + (refine + 2) * m + 3 if method == "lobpcg" else max(2 * k + 1, 20) + 6 + refine


def anneal_memory_words(error_check: bool = False) -> int:
    """8-byte words per amplitude of one anneal: ψ, its step-doubling twin, the energies, the shot CDF.

    >>> anneal_memory_words(), anneal_memory_words(True)
    (4, 6)
    """
    return 6 if error_check else 4


def memory_budget_bytes(budget_gb: float | None = None) -> float:
    """The budget: the argument, else ``QXAI_MEMORY_GB``, else :data:`DEFAULT_MEMORY_GB`."""
    if budget_gb is None:
        budget_gb = float(os.environ.get("QXAI_MEMORY_GB", DEFAULT_MEMORY_GB))
    return budget_gb * 2**30


def check_budget(budget_bytes: float, option: str = "--memory-mb") -> None:
    """Refuse a memory budget larger than this machine's physical memory: a problem sized to it
    would die with MemoryError (or swap for hours) instead of being refused up front.

    >>> check_budget(1e18)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qxai.errors.QxaiError: --memory-mb ... MiB is more than this machine's memory (... MiB); give at most ...
    """
    total, _ = machine_memory_bytes()
    if budget_bytes > total:
        raise QxaiError(
            f"{option} {budget_bytes / 2**20:,.0f} MiB is more than this machine's memory "
            f"({total / 2**20:,.0f} MiB); give at most {total / 2**20:,.0f}"
        )


def check_memory(d: int, vectors: float, what: str, budget_gb: float | None = None) -> float:
    """Raise a :class:`QxaiError` before starting if ``vectors`` float64 arrays of ``2^d`` exceed the
    budget, or the memory this machine has available now.

    ``vectors`` counts 8-byte words per amplitude (a complex128 vector counts 2). Returns bytes.

    >>> check_memory(10, 4, "gap") == 4 * 8 * 2**10
    True
    """
    need = vectors * 8.0 * 2.0**d
    budget = memory_budget_bytes(budget_gb)
    if need > budget:
        raise QxaiError(
            f"{what} at d={d} needs about {need / 2**30:.1f} GiB, over the {budget / 2**30:.1f} GiB budget; "
            "use fewer qubits or raise the budget (--memory-mb, memory_gb= or QXAI_MEMORY_GB)"
        )
    check_available(need, f"{what} at d={d}")
    return need


def check_available(need: float, what: str) -> None:
    """Refuse work that needs more bytes than this machine has available now (one line, with both)."""
    _, available = machine_memory_bytes()
    if need > available:
        raise QxaiError(
            f"{what} needs about {need / 2**20:,.0f} MiB, more than the {available / 2**20:,.0f} MiB this "
            "machine has available now; use fewer qubits or free memory"
        )
