"""Every QUBO solver as a :class:`dimod.Sampler`, built by name.

>>> import dimod
>>> bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: -1.0}, {(0, 1): 3.0}, 0.0, "BINARY")
>>> [float(ss.first.energy) for ss in sample_many(get_sampler("batch-sa"), [bqm, bqm], seed=0)]
[-1.0, -1.0]

``get_sampler(name, **kw)``: keywords are constructor options for our own samplers (``exact``:
``max_variables``; ``batch-sa``: ``device``, ``dtype``; ``qpu``: ``embedding``, ``token``, ``solver``,
``child``; ``statevector``: whatever its constructor takes) and default ``sample()`` parameters for
everything else (``get_sampler("sa", num_sweeps=200)``). See docs/solvers.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dimod
import numpy as np

from qxai.anneal.samplers.defaults import DefaultParametersComposite, sample_parameter_names
from qxai.errors import QxaiError, unknown_name
from qxai.seeding import numpy_rng

SAMPLER_NAMES = ("exact", "sa", "tabu", "sqa", "sqa-openjij", "statevector", "qpu", "batch-sa")

#: Constructor options of our own samplers; any other keyword is a default sample() parameter.
_CONSTRUCTOR_OPTIONS = {
    "exact": {"max_variables"},
    "batch-sa": {"device", "dtype", "backend"},
    "qpu": {"embedding", "token", "solver", "child"},
}


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

    return openjij.SQASampler()


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


_BUILDERS: dict[str, Callable[..., dimod.Sampler]] = {
    "exact": _exact,
    "sa": _dwave("SimulatedAnnealingSampler"),
    "tabu": _dwave("TabuSampler"),
    "sqa": _dwave("PathIntegralAnnealingSampler"),
    "sqa-openjij": _openjij_sqa,
    "statevector": _statevector,
    "qpu": _qpu,
    "batch-sa": _batch_sa,
}


def get_sampler(name: str, **kw: Any) -> dimod.Sampler:
    """Build the solver called ``name`` (one of :data:`SAMPLER_NAMES`).

    Unknown names raise :class:`QxaiError` with the closest match.
    """
    if name not in _BUILDERS:
        raise unknown_name("solver", name, SAMPLER_NAMES)
    if name == "statevector":
        return _statevector(**kw)
    ctor_names = _CONSTRUCTOR_OPTIONS.get(name, set())
    ctor = {k: v for k, v in kw.items() if k in ctor_names}
    defaults = {k: v for k, v in kw.items() if k not in ctor_names}
    sampler = _BUILDERS[name](**ctor)
    return DefaultParametersComposite(sampler, **defaults) if defaults else sampler


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

    Uses ``sampler.sample_many`` when there is one (one batched call); otherwise samples one model
    at a time, passing model ``i`` its own seed derived from ``seed`` when the sampler takes one.
    Models with no variables get their single empty assignment without calling the sampler.
    Energies are re-computed from each model by dimod, whatever the sampler reported.
    """
    bqms = list(bqms)
    out: list[dimod.SampleSet | None] = [None] * len(bqms)
    todo = [i for i, bqm in enumerate(bqms) if len(bqm.variables) > 0]
    for i in set(range(len(bqms))) - set(todo):
        out[i] = _empty_sampleset(bqms[i])
    if isinstance(sampler, DefaultParametersComposite) and hasattr(sampler.child, "sample_many"):
        # keep batching when options were given by name, e.g. get_sampler("batch-sa", num_reads=16)
        sampler, kw = sampler.child, {**sampler.defaults, **kw}
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


__all__ = ["SAMPLER_NAMES", "get_sampler", "sample_many"]
