"""Every QUBO solver as a :class:`dimod.Sampler`, built by name from one registry, :data:`SOLVERS`.

>>> import dimod
>>> bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: -1.0}, {(0, 1): 3.0}, 0.0, "BINARY")
>>> [float(ss.first.energy) for ss in sample_many(get_sampler("batch-sa"), [bqm, bqm], seed=0)]
[-1.0, -1.0]

``get_sampler(name, **kw)``: keywords named in the entry's ``options`` go to its constructor
(``exact``: ``max_variables``; ``batch-sa``: ``device``, ``dtype``, ``backend``; ``qpu``:
``embedding``, ``token``, ``solver``, ``child``; ``statevector``: ``max_qubits``, ``memory_gb``);
every other keyword is a default ``sample()`` parameter (``get_sampler("sa", num_sweeps=200)``).

Adding a solver is one entry (see docs/ARCHITECTURE.md, "Extension points"):

>>> register_solver(SolverSpec("my-exact", lambda: dimod.ExactSolver(), help="dimod's brute force"))
SolverSpec(name='my-exact', ...)
>>> float(get_sampler("my-exact").sample(bqm).first.energy)
-1.0
>>> del SOLVERS["my-exact"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dimod
import numpy as np

from qxai.anneal.samplers.defaults import IntegerLabelsComposite, sample_parameter_names, with_defaults
from qxai.errors import QxaiError, unknown_name
from qxai.seeding import numpy_rng


@dataclass(frozen=True)
class SolverSpec:
    """One solver of the registry: its name, how to build it, and which keywords its builder takes.

    Attributes:
        name: the ``--solver`` name.
        build: ``build(**constructor_options) -> dimod.Sampler``; import heavy libraries inside it,
            so that listing solvers stays cheap.
        options: the keywords of ``get_sampler`` that go to ``build``; every other keyword is a
            default ``sample()`` parameter (checked against the sampler's own parameters).
        help: one line for ``--help`` and docs.
    """

    name: str
    build: Callable[..., dimod.Sampler] = field(repr=False)
    options: frozenset[str] = frozenset()
    help: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip() or "," in self.name:
            raise QxaiError(f"solver name '{self.name}' must be non-empty, without spaces or commas")
        object.__setattr__(self, "options", frozenset(self.options))  # a set or list is fine too


def _exact(**kw: Any) -> dimod.Sampler:
    from qxai.anneal.samplers.exact import ExactEnumerationSampler

    return ExactEnumerationSampler(**kw)


def _batch_sa(**kw: Any) -> dimod.Sampler:
    from qxai.anneal.samplers.batch_sa import BatchSimulatedAnnealingSampler

    return BatchSimulatedAnnealingSampler(**kw)


def _dwave(cls_name: str) -> Callable[..., dimod.Sampler]:
    def build() -> dimod.Sampler:
        import dwave.samplers

        return getattr(dwave.samplers, cls_name)()

    return build


def _openjij_sqa() -> dimod.Sampler:
    import openjij

    # OpenJij sorts the labels: tuple or mixed-type labels would fail inside it
    return IntegerLabelsComposite(openjij.SQASampler())


def _statevector(**kw: Any) -> dimod.Sampler:
    try:
        from qxai.anneal.physics.sampler import StateVectorSampler
    except ImportError as err:
        raise QxaiError(
            f"the 'statevector' solver is not available ({err}); "
            "install the annealing-physics module or choose another solver such as 'exact'"
        ) from None
    return StateVectorSampler(**kw)


def _qpu(**kw: Any) -> dimod.Sampler:
    from qxai.anneal.samplers.qpu import qpu_sampler

    return qpu_sampler(**kw)


#: Every solver by name, in the order help texts list them. Add one with :func:`register_solver`.
SOLVERS: dict[str, SolverSpec] = {
    spec.name: spec
    for spec in (
        SolverSpec("exact", _exact, frozenset({"max_variables"}),
                   "all 2^d energies by enumeration (d ≤ 26): the exact optimum"),
        SolverSpec("sa", _dwave("SimulatedAnnealingSampler"), help="dwave-samplers simulated annealing"),
        SolverSpec("tabu", _dwave("TabuSampler"), help="dwave-samplers tabu search"),
        SolverSpec("sqa", _dwave("PathIntegralAnnealingSampler"),
                   help="dwave-samplers simulated quantum annealing (path integral)"),
        SolverSpec("sqa-openjij", _openjij_sqa, help="OpenJij simulated quantum annealing (pass beta=50)"),
        SolverSpec("statevector", _statevector, frozenset({"max_qubits", "memory_gb"}),
                   help="exact quantum-annealing simulation of the state vector (small d)"),
        SolverSpec("qpu", _qpu, frozenset({"embedding", "token", "solver", "child"}),
                   help="D-Wave QPU through an embedding (needs DWAVE_API_TOKEN)"),
        SolverSpec("batch-sa", _batch_sa, frozenset({"device", "dtype", "backend"}),
                   help="our batched simulated annealing: a whole batch in one call (default)"),
        SolverSpec("exact-mip",  # our mip.py imports highspy only when it solves: cheap to import here
                   lambda **kw: __import__("qxai.anneal.samplers.mip", fromlist=["_"]).ExactMIPSampler(**kw),
                   frozenset({"time_limit", "engine"}),
                   help="certified optimum (engine auto: branch and bound when couplings ≥ 0, else CP-SAT; "
                        "or bnb, cp-sat, highs): proven optimum, or best found and its bound"),
    )
}  # fmt: skip


def register_solver(spec: SolverSpec, *, replace: bool = False) -> SolverSpec:
    """Add ``spec`` to :data:`SOLVERS` (an existing name only with ``replace=True``); returns it."""
    if spec.name in SOLVERS and not replace:
        raise QxaiError(f"a solver named '{spec.name}' exists already; choose another name")
    SOLVERS[spec.name] = spec
    return spec


def help_text() -> str:
    """``"exact | sa | …"``: the registered solver names, for a CLI option's help."""
    return " | ".join(SOLVERS)


def describe() -> str:
    """One line per solver: ``name: help``."""
    return "\n".join(f"{spec.name}: {spec.help}" for spec in SOLVERS.values())


def __getattr__(name: str) -> Any:
    # SAMPLER_NAMES is derived from the registry on every access, so it includes registered solvers
    if name == "SAMPLER_NAMES":
        return tuple(SOLVERS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_sampler(name: str, **kw: Any) -> dimod.Sampler:
    """Build the solver called ``name`` (a key of :data:`SOLVERS`).

    Keywords in the entry's ``options`` go to its constructor; the others become default
    ``sample()`` parameters (an option the sampler does not have is a :class:`QxaiError`). Unknown
    names raise :class:`QxaiError` with the closest match.
    """
    spec = SOLVERS.get(name)
    if spec is None:
        raise unknown_name("solver", name, SOLVERS)
    ctor = {k: v for k, v in kw.items() if k in spec.options}
    defaults = {k: v for k, v in kw.items() if k not in spec.options}
    return with_defaults(spec.build(**ctor), **defaults)


def _empty_sampleset(bqm: dimod.BinaryQuadraticModel) -> dimod.SampleSet:
    """The one assignment of a model with no variables (energy = offset): a valid answer."""
    return dimod.SampleSet.from_samples_bqm((np.zeros((1, 0), dtype=np.int8), []), bqm)


def sample_many(
    sampler: dimod.Sampler,
    bqms: Sequence[dimod.BinaryQuadraticModel],
    *,
    seed: int | None = None,
    **kw: Any,
) -> list[dimod.SampleSet]:
    """Solve every model of ``bqms``; one SampleSet each, in order.

    Uses ``sampler.sample_many`` when there is one (one batched call, options given by name to
    ``get_sampler`` included); otherwise samples one model at a time, passing model ``i`` its own
    seed derived from ``seed`` when the sampler takes one. Models with no variables get their
    single empty assignment without calling the sampler. Energies are re-computed from each model
    by dimod unless the sampler declares ``energies_from_bqm``.
    """
    bqms = list(bqms)
    out: list[dimod.SampleSet | None] = [None] * len(bqms)
    todo = [i for i, bqm in enumerate(bqms) if len(bqm.variables) > 0]
    for i in set(range(len(bqms))) - set(todo):
        out[i] = _empty_sampleset(bqms[i])
    if hasattr(sampler, "sample_many"):
        batch_kw = {**kw, "seed": seed} if seed is not None else kw
        for i, ss in zip(todo, sampler.sample_many([bqms[i] for i in todo], **batch_kw), strict=True):
            out[i] = ss
    else:
        takes_seed = seed is not None and "seed" in sample_parameter_names(sampler)
        seeds = numpy_rng(seed, "sample_many").integers(0, 2**31 - 1, size=len(bqms))
        for i in todo:
            extra = {"seed": int(seeds[i])} if takes_seed else {}
            out[i] = sampler.sample(bqms[i], **kw, **extra)
    if getattr(sampler, "energies_from_bqm", False):
        return out  # type: ignore[return-value]
    return [_recompute(bqm, ss) for bqm, ss in zip(bqms, out, strict=True)]


def _recompute(bqm: dimod.BinaryQuadraticModel, ss: dimod.SampleSet | None) -> dimod.SampleSet:
    """The SampleSet with energies from ``bqm`` itself (some samplers report float32 energies)."""
    assert ss is not None
    if len(ss.variables) == 0:
        return ss
    energies = bqm.energies((ss.record.sample, ss.variables))
    if np.array_equal(energies, ss.record.energy):
        return ss
    vectors = {k: ss.record[k] for k in ss.record.dtype.names if k not in ("sample", "energy")}
    return dimod.SampleSet.from_samples(
        (ss.record.sample, ss.variables), ss.vartype, energies, info=dict(ss.info), **vectors
    )


__all__ = [
    "SAMPLER_NAMES",  # derived in __getattr__
    "SOLVERS",
    "SolverSpec",
    "describe",
    "get_sampler",
    "help_text",
    "register_solver",
    "sample_many",
]
