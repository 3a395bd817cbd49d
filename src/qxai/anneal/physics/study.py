"""The annealing study of one problem and what it needs: its settings, the memory it takes, the
problems to study (sampled class by class), BQM files, and :func:`solve_problem` — ``Δ_min`` and
``s*`` (:func:`minimum_gap`), the classical gap and ``F(τ)`` for every ``τ`` (:func:`anneal`) in the
chosen energy convention. No model, no files written: :func:`qxai.pipeline.anneal.run_anneal` loads
the problems, calls this and writes ``anneal.json``.

>>> import dimod
>>> r = solve_problem(dimod.generators.anti_crossing_clique(6),
...                   AnnealSettings(taus=(5.0,), grid=11, protocol=AnnealProtocol(dt=0.05)))
>>> r["num_qubits"], sorted(r["fidelity"])
(6, ['5'])
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dimod

from qxai.anneal.physics.model import (
    ENERGY_CONVENTIONS,
    AnnealProblem,
    AnnealProtocol,
    anneal_memory_words,
    apply_energy_convention,
    check_available,
    check_budget,
    gap_memory_words,
)
from qxai.anneal.physics.statistics import RESAMPLES
from qxai.anneal.qubo import AUTHORS_BETA, QuboOptions
from qxai.errors import QxaiError, unknown_name

#: Refinements of the gap search (``minimum_gap(refine=…)``), used for the memory estimate too.
REFINE = 2


#: what an explanation QUBO of a model selects: feature maps, or a Transformer's attention heads
TARGETS = ("maps", "heads")


@dataclass(frozen=True)
class AnnealSettings:
    """Everything ``qxai anneal`` runs with, validated on construction, defaults written once.

    Attributes:
        taus: total anneal times τ.
        max_qubits: skip explanation QUBOs with more variables; a ``bqm`` source with more is refused.
        grid: coarse ``s`` grid of the gap search (then refined).
        max_problems: stop after this many problems (None: all).
        per_class: correctly classified test images per class (model source).
        seed: one seed for image selection, shots and bootstrap intervals.
        energy_convention: ``spec`` (``H_P = E(x)``) or ``authors`` (``(I − σz)`` per qubit: x → 2x).
        memory_mb: memory budget of one problem's state vectors; larger problems are refused up front.
        protocol: ``dt``, driver and schedule (:class:`AnnealProtocol`).
        qubo: the explanation QUBO options (:class:`QuboOptions`, model source).
        dataset, layer: override the checkpoint's data set and layer (model source).
        target: what the explanation QUBOs select (model source): ``maps`` (the layer's feature maps)
            or ``heads`` (every block's attention heads of a Transformer, :mod:`qxai.explain.heads`).
        figures: write the figures (for more than one problem).
        resamples: bootstrap resamples of every interval (≥ 1000).

    >>> AnnealSettings(taus=[10, 50]).taus
    (10.0, 50.0)
    >>> AnnealSettings(energy_convention="paper")
    Traceback (most recent call last):
    qxai.errors.QxaiError: unknown energy convention 'paper'; (choices: authors, spec)
    """

    taus: tuple[float, ...] = (10.0, 50.0, 100.0)
    max_qubits: int = 14
    grid: int = 41
    max_problems: int | None = None
    per_class: int = 20
    seed: int = 0
    energy_convention: str = "spec"
    memory_mb: float = 4096.0
    protocol: AnnealProtocol = field(default_factory=AnnealProtocol)
    qubo: QuboOptions = field(default_factory=QuboOptions)
    dataset: str | None = None
    layer: str | None = None
    target: str = "maps"
    figures: bool = True
    resamples: int = RESAMPLES

    def __post_init__(self) -> None:
        try:
            taus = tuple(float(t) for t in self.taus)
        except (TypeError, ValueError):
            raise QxaiError(f"--tau needs numbers, got {self.taus!r}; e.g. --tau 10,50,100") from None
        if not taus or not all(math.isfinite(t) and t > 0 for t in taus):
            raise QxaiError(
                f"--tau needs positive finite total times, got {list(self.taus)}; e.g. --tau 10,50,100"
            )
        object.__setattr__(self, "taus", taus)
        protocol = AnnealProtocol.of(self.protocol) if isinstance(self.protocol, dict) else self.protocol
        if not isinstance(protocol, AnnealProtocol):
            raise QxaiError("protocol must be an AnnealProtocol or a dict of dt, driver, schedule")
        object.__setattr__(self, "protocol", protocol)
        object.__setattr__(self, "qubo", QuboOptions.of(self.qubo))
        for tau in taus:
            protocol.steps(tau)  # refuses τ/dt beyond the step limit, with the figure
        for name, low in (("max_qubits", 1), ("grid", 3), ("per_class", 1), ("seed", 0), ("resamples", 1000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise QxaiError(f"--{name.replace('_', '-')} must be an integer ≥ {low}, got {value!r}")
        if self.max_problems is not None and (
            not isinstance(self.max_problems, int) or self.max_problems < 1
        ):
            raise QxaiError(f"--max-problems must be a positive integer, got {self.max_problems!r}")
        if self.target not in TARGETS:
            raise unknown_name("anneal target", str(self.target), TARGETS)
        if self.energy_convention not in ENERGY_CONVENTIONS:
            raise unknown_name("energy convention", str(self.energy_convention), ENERGY_CONVENTIONS)
        if not (
            isinstance(self.memory_mb, int | float) and math.isfinite(self.memory_mb) and self.memory_mb > 0
        ):
            raise QxaiError(
                f"--memory-mb must be a positive number of MiB, got {self.memory_mb!r}; e.g. 4096"
            )

    @classmethod
    def authors(cls, **overrides: Any) -> AnnealSettings:
        """The authors' setting (SPEC §1): driver ``+(1/d)Σσx``, the ``(I − σz)`` energy convention,
        linear schedule, ``dt = 0.01``, ``τ ∈ {10, 50, 100}``, β = 0.7; ``overrides`` replace fields.

        >>> s = AnnealSettings.authors(per_class=4)
        >>> s.protocol.driver, s.energy_convention, s.qubo.beta, s.per_class
        ('authors', 'authors', 0.7, 4)
        """
        base = {
            "protocol": AnnealProtocol(dt=0.01, driver="authors", schedule="linear"),
            "energy_convention": "authors",
            "taus": (10.0, 50.0, 100.0),
            "qubo": QuboOptions(beta=AUTHORS_BETA),
        }
        return cls(**{**base, **overrides})

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024.0

    def to_dict(self) -> dict[str, Any]:
        """``asdict`` in JSON form (the protocol's schedule by name, the QUBO penalty as a list)."""
        out = asdict(self)
        out.update(taus=list(self.taus), protocol=self.protocol.to_dict(), qubo=self.qubo.to_dict())
        return out


def memory_needed(d: int, degeneracy: int = 1) -> float:
    """Bytes one problem of ``d`` qubits needs at its peak: the gap search's block, or the anneal,
    plus the ``2^d`` energies of ``H_P``.

    >>> memory_needed(10) == (33 + 1) * 8 * 2**10
    True
    """
    words = max(gap_memory_words(degeneracy, REFINE), anneal_memory_words()) + 1
    return words * 8.0 * 2.0**d


def check_run_memory(d: int, settings: AnnealSettings, what: str) -> None:
    """Refuse before any work when a ``d``-qubit problem needs more than ``settings.memory_mb``, or
    more than this machine has available now (a budget above the machine's memory is refused too)."""
    check_budget(settings.memory_mb * 2**20)
    need = memory_needed(d)
    if need > settings.memory_mb * 2**20:
        raise QxaiError(
            f"{what} of d = {d} qubits needs about {need / 2**20:,.0f} MiB (gap search and state vectors), "
            f"over the --memory-mb limit of {settings.memory_mb:,.0f} MiB; "
            "use fewer qubits or raise --memory-mb"
        )
    check_available(need, f"{what} of d = {d} qubits")


def sample_per_class(
    sources: list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]], limit: int, max_problems: int | None
) -> tuple[list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]], dict[str, dict[str, Any]]]:
    """The problems to anneal — those with ``1 ≤ d ≤ limit``, taken class by class in turn so that
    ``max_problems`` never fills up with one class — and, per class, how many problems it had, how
    many were kept and the sizes of those over the limit (a class whose every problem is too large
    is what makes a claim about all classes untestable).

    >>> import dimod
    >>> b = lambda d: dimod.BQM({i: -1.0 for i in range(d)}, {}, 0.0, "BINARY")
    >>> src = [({"id": i, "label": lab}, b(d)) for i, (lab, d) in enumerate([("a", 2), ("a", 3), ("b", 9)])]
    >>> kept, classes = sample_per_class(src, 4, None)
    >>> [m["id"] for m, _ in kept], classes["b"]
    ([0, 1], {'problems': 1, 'kept': 0, 'over_limit': [9, 9]})
    """
    by_class: dict[str, list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]]] = {}
    for meta, bqm in sources:
        by_class.setdefault(str(meta.get("label")), []).append((meta, bqm))
    fits = {c: [p for p in items if 1 <= p[1].num_variables <= limit] for c, items in by_class.items()}
    chosen: list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]] = []
    queues = [list(items) for items in fits.values()]
    while any(queues) and (max_problems is None or len(chosen) < max_problems):
        for queue in queues:
            if queue and (max_problems is None or len(chosen) < max_problems):
                chosen.append(queue.pop(0))
    chosen.sort(key=lambda p: p[0]["id"])  # problem order, as a run without a cap has it
    ids = {m["id"] for m, _ in chosen}
    classes = {}
    for c, items in by_class.items():
        over = [b.num_variables for _, b in items if b.num_variables > limit]
        classes[c] = {
            "problems": len(items), "kept": sum(m["id"] in ids for m, _ in items),
            "over_limit": [min(over), max(over)] if over else None,
        }  # fmt: skip
    return chosen, classes


def load_bqm(path: str | Path) -> dimod.BinaryQuadraticModel:
    """A BQM from ``BinaryQuadraticModel.to_file()`` bytes or ``to_serializable()`` JSON (never a pickle)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise QxaiError(f"cannot read BQM file {path} ({err.strerror}); pass an existing file") from None
    try:
        if data.lstrip()[:1] == b"{":
            return dimod.BinaryQuadraticModel.from_serializable(json.loads(data))
        return dimod.BinaryQuadraticModel.from_file(io.BytesIO(data))
    except Exception as err:  # any parse failure is the user's file
        raise QxaiError(
            f"{path} is not a dimod BQM ({type(err).__name__}); save it with bqm.to_file() or "
            "json.dumps(bqm.to_serializable())"
        ) from None


def solve_problem(bqm: dimod.BinaryQuadraticModel, settings: AnnealSettings) -> dict[str, Any]:
    """The per-problem record of ``anneal.json``: gaps, fidelities, gains, in the settings' convention."""
    from qxai.anneal.physics.dynamics import anneal
    from qxai.anneal.physics.spectrum import minimum_gap

    protocol = settings.protocol
    h_p = apply_energy_convention(bqm, settings.energy_convention)
    problem = AnnealProblem.from_bqm(h_p, max_qubits=max(settings.max_qubits, bqm.num_variables))
    gap = minimum_gap(problem, protocol, grid=settings.grid, refine=REFINE, memory_gb=settings.memory_gb)
    classical = problem.classical_gap
    fidelity: dict[str, float] = {}
    best: dict[str, float | None] = {}
    for tau in settings.taus:
        r = anneal(problem, tau, protocol, num_reads=None, seed=settings.seed, memory_gb=settings.memory_gb)
        fidelity[f"{tau:g}"] = r.fidelity
        best[f"{tau:g}"] = r.best_energy
    d, g = problem.num_qubits, problem.degeneracy
    return {
        "num_qubits": d, "delta_min": gap.delta_min, "s_star": gap.s_star, "classical_gap": classical,
        "gap_ratio": None if not classical else gap.delta_min / classical,
        "degeneracy": g, "ground_energy": problem.ground_energy, "fidelity": fidelity,
        "fidelity_gain": {t: f * 2.0**d / g for t, f in fidelity.items()},
        "best_shot_energy": best, "driver": protocol.driver, "schedule": protocol.schedule_name,
        "energy_convention": settings.energy_convention,
        "gap_solver": {"method": gap.method, "evaluations": gap.evaluations, "matvecs": gap.matvecs},
    }  # fmt: skip


def solve_serialised(bqm: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """:func:`solve_problem` from plain data (``bqm.to_serializable()``, ``settings.to_dict()``), as a
    worker process receives it: dimod's BQMs do not pickle across processes, and plain data is exact
    (floats round-trip)."""
    return solve_problem(dimod.BinaryQuadraticModel.from_serializable(bqm), AnnealSettings(**settings))
