"""``run_anneal``: the minimum gap and the success probability of explanation QUBOs (SPEC §1).

Two sources of problems: the explanation QUBOs of correctly classified test images of a checkpoint
(Grad-CAM weights and maps from :class:`qxai.explain.qa.QAFeatureMapExplainer`, the QUBO from
:func:`qxai.anneal.qubo.explanation_qubos` with ``settings.qubo``), or one BQM (an object or a
file in dimod's own serialisation). For each problem with ``1 ≤ d ≤ max_qubits``: ``H_P`` in the
chosen energy convention, its classical gap, ``Δ_min`` and ``s*`` (:func:`minimum_gap`), and the
fidelity ``F(τ)`` for every ``τ`` (:func:`anneal`). The statistics and the paper's claims come
from :mod:`qxai.anneal.physics.statistics`, the figures from :mod:`qxai.anneal.physics.figures`;
the folder is written by :func:`qxai.pipeline.stage.write_stage`.

Everything a run needs is checked before any model is loaded or any state allocated: the settings
(:class:`AnnealSettings`), the BQM (:func:`qxai.anneal.physics.check_bqm`), the steps ``τ/dt`` and
the memory of the largest problem against ``memory_mb``.

``anneal.json``: ``settings`` (``asdict``), ``qubo`` (the QUBO options, model source), ``protocol``,
``driver``, ``schedule``, ``dt``, ``energy_convention``, ``taus``, ``grid``, ``seed``, ``max_qubits``,
``source``, ``num_problems``, ``skipped``, ``classes`` (per class: problems, kept, the sizes over
``max_qubits``; problems are taken class by class in turn, :func:`sample_per_class`), ``problems``
(one record each), ``statistics`` (nested),
``summary`` (flat headline numbers), ``claims`` (:func:`anneal_claims`) and ``figures``; on Ray also
``cluster`` (where the problems ran: ``engine``, ``address``, ``workers``, ``nodes``; not a setting).

On Ray (``ClusterOptions(ray=True)`` or ``ray_address=…``) every problem is one Ray task
(:data:`TASK_OPTIONS`: one CPU, one numeric thread); the driver builds the problems, collects the
records in problem order and writes the same folder as a single-process run.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import dimod
import numpy as np

from qxai.anneal.physics.figures import anneal_figures
from qxai.anneal.physics.model import (
    ENERGY_CONVENTIONS,
    AnnealProblem,
    AnnealProtocol,
    anneal_memory_words,
    apply_energy_convention,
    check_available,
    check_bqm,
    check_budget,
    gap_memory_words,
)
from qxai.anneal.physics.statistics import RESAMPLES, anneal_claims, headline, summarise
from qxai.anneal.qubo import QuboOptions
from qxai.errors import QxaiError, unknown_name
from qxai.pipeline.cluster import ONE_THREAD_ENV
from qxai.progress import track

#: Refinements of the gap search (``minimum_gap(refine=…)``), used for the memory estimate too.
REFINE = 2

#: ``ray.remote`` options of one annealing task (Ray retries a task whose worker process died).
TASK_OPTIONS: dict[str, Any] = {"num_cpus": 1, "max_retries": 3, "runtime_env": {"env_vars": ONE_THREAD_ENV}}


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
        if self.energy_convention not in ENERGY_CONVENTIONS:
            raise unknown_name("energy convention", str(self.energy_convention), ENERGY_CONVENTIONS)
        if not (
            isinstance(self.memory_mb, int | float) and math.isfinite(self.memory_mb) and self.memory_mb > 0
        ):
            raise QxaiError(
                f"--memory-mb must be a positive number of MiB, got {self.memory_mb!r}; e.g. 4096"
            )

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field ``name`` (for CLI options).

        >>> AnnealSettings.default("grid")
        41
        """
        for f in fields(cls):
            if f.name == name:
                return f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        raise KeyError(name)

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
            "qubo": QuboOptions(beta=0.7),
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


@dataclass(frozen=True)
class ClusterOptions:
    """Where ``run_anneal`` solves its problems; none of it changes a result, so none of it enters
    ``settings`` (a run on Ray equals the single-process run; ``anneal.json`` records it apart, under
    ``cluster``).

    Attributes:
        ray: run every problem as a Ray task on a local Ray runtime.
        ray_address: join the Ray cluster whose head node listens at ``host:port`` (implies ``ray``).
        workers: problems in flight at once (None: one per CPU of the Ray cluster); Ray only.

    >>> ClusterOptions(ray_address="10.0.0.5:6379").uses_ray
    True
    >>> ClusterOptions(workers=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qxai.errors.QxaiError: --workers applies to Ray runs; add --ray or --ray-address HOST:PORT, or ...
    """

    ray: bool = False
    ray_address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        address = self.ray_address
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise QxaiError("--ray-address is empty; give the head node's host:port, e.g. 10.0.0.5:6379")
        if self.workers is not None:
            if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
                raise QxaiError(f"--workers must be a positive integer, got {self.workers!r}")
            if not self.uses_ray:
                raise QxaiError(
                    "--workers applies to Ray runs; add --ray or --ray-address HOST:PORT, or drop --workers"
                )

    @property
    def uses_ray(self) -> bool:
        return bool(self.ray) or self.ray_address is not None


def _solve_task(bqm: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """One Ray task: :func:`solve_problem` in a worker process (environment: ``ONE_THREAD_ENV``).

    Both arrive in their plain serialisable forms (``bqm.to_serializable()``, ``settings.to_dict()``):
    dimod's BQMs do not pickle across processes, and plain data is exact (floats round-trip)."""
    return solve_problem(dimod.BinaryQuadraticModel.from_serializable(bqm), AnnealSettings(**settings))


def solve_on_ray(
    bqms: list[dimod.BinaryQuadraticModel], settings: AnnealSettings, cluster: ClusterOptions
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`solve_problem` for every BQM, one Ray task each (:data:`TASK_OPTIONS`), at most
    ``cluster.workers`` in flight; returns the records in the order of ``bqms`` and what ran them
    (``{"engine", "address", "workers", "nodes"}``). A progress bar advances as tasks complete.

    Uses the Ray runtime this process already has, else starts a local one (``cluster.ray``) or joins
    ``cluster.ray_address`` for the call (:func:`qxai.pipeline.cluster.ray_runtime`).
    """
    import ray

    from qxai.pipeline.cluster import ray_runtime
    from qxai.progress import make_progress

    records: list[dict[str, Any] | None] = [None] * len(bqms)
    with ray_runtime(cluster.ray_address):
        solve = ray.remote(**TASK_OPTIONS)(_solve_task)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = min(cluster.workers or cpus, max(1, len(bqms)))
        shared = ray.put(settings.to_dict())  # one copy in the object store, not one per task
        waiting = iter(enumerate(bqms))
        running: dict[Any, int] = {}

        def submit() -> None:
            for index, bqm in waiting:
                running[solve.remote(bqm.to_serializable(), shared)] = index
                return

        for _ in range(workers):
            submit()
        with make_progress() as bar:
            task = bar.add_task("annealing on Ray", total=len(bqms))
            while running:
                (done,), _ = ray.wait(list(running), num_returns=1)
                index = running.pop(done)
                try:
                    records[index] = ray.get(done)
                except ray.exceptions.RayTaskError as err:
                    # a QxaiError raised in the task is the user's one-line error, not a remote traceback
                    if isinstance(err.cause, QxaiError):
                        raise err.cause from None
                    raise
                bar.advance(task)
                submit()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    info = {"engine": "ray", "address": cluster.ray_address or "local", "workers": workers, "nodes": nodes}
    return records, info  # type: ignore[return-value]


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


def model_qubos(
    checkpoint: str | Path, settings: AnnealSettings
) -> tuple[list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]], dict[str, Any]]:
    """``(meta, bqm)`` for the explanation QUBO of each selected correctly classified test image, and
    what they came from (``{"kind", "checkpoint", "dataset", "layer", "num_maps"}``)."""
    from qxai.explain.qa import QAFeatureMapExplainer
    from qxai.models.loading import load_model_and_data
    from qxai.pipeline.common import batches, select_correct_per_class

    md = load_model_and_data(str(checkpoint), settings.dataset, settings.layer)
    images = select_correct_per_class(md.model, md.split.test, settings.per_class, seed=settings.seed)
    explainer = QAFeatureMapExplainer(
        md.model, md.layer, solver="exact", qubo=settings.qubo, seed=settings.seed, ground_truth="never"
    )
    out: list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]] = []
    num_maps = None
    for x, y in batches(images, 32):
        batch = explainer.build_qubos(x, y)
        num_maps = int(batch.channel_weights.shape[1])
        # built with *every* QUBO option of the settings, so a run's "qubo" is reproduced exactly
        for (bqm, kept), label in zip(batch.qubos, y.tolist(), strict=True):
            meta = {"id": len(out), "label": md.class_names[label], "maps": np.asarray(kept).tolist()}
            out.append((meta, bqm))
    dataset = settings.dataset or md.config.get("dataset")
    source = {"kind": "model", "checkpoint": str(checkpoint), "dataset": dataset,
              "layer": md.layer, "num_maps": num_maps}  # fmt: skip
    return out, source


def run_anneal(
    out: str | Path,
    *,
    model: str | Path | None = None,
    bqm: dimod.BinaryQuadraticModel | str | Path | None = None,
    settings: AnnealSettings | None = None,
    cluster: ClusterOptions | None = None,
) -> dict[str, Any]:
    """Anneal the problems of one source (``model``: a checkpoint, or ``bqm``: a BQM or its file) and
    write ``out/anneal.json`` and the figures; returns the document as written.

    ``cluster`` (:class:`ClusterOptions`) runs the problems as Ray tasks; the document is the same
    apart from ``run_id`` and an added ``cluster`` record. Its address is checked before any work.

    >>> import tempfile, dimod
    >>> s = run_anneal(Path(tempfile.mkdtemp()), bqm=dimod.generators.anti_crossing_clique(6),
    ...                settings=AnnealSettings(taus=[5.0], grid=11, protocol=AnnealProtocol(dt=0.05)))
    >>> s["problems"][0]["num_qubits"], sorted(s["problems"][0]["fidelity"]), s["energy_convention"]
    (6, ['5'], 'spec')
    """
    from qxai.pipeline.stage import Figure, write_stage

    settings = settings if settings is not None else AnnealSettings()
    cluster = cluster if cluster is not None else ClusterOptions()
    if (bqm is None) == (model is None):
        raise QxaiError("give exactly one problem source; pass --bqm FILE or --model CKPT")
    if cluster.ray_address is not None:
        from qxai.pipeline.cluster import check_ray_address

        check_ray_address(cluster.ray_address)  # seconds, before any model or BQM is loaded
    if bqm is not None:
        source_info: dict[str, Any] = {"kind": "bqm"}
        if not isinstance(bqm, dimod.BinaryQuadraticModel):
            source_info["file"] = str(bqm)
            bqm = load_bqm(bqm)
        what = "the BQM" if "file" not in source_info else f"BQM file {source_info['file']}"
        check_bqm(bqm, what)
        if bqm.num_variables > settings.max_qubits:
            raise QxaiError(
                f"{what} has {bqm.num_variables} variables, more than --max-qubits {settings.max_qubits} "
                f"(it needs about {memory_needed(bqm.num_variables) / 2**20:,.0f} MiB); raise --max-qubits "
                f"to {bqm.num_variables} if the memory allows"
            )
        check_run_memory(bqm.num_variables, settings, "the BQM")
        sources = [({"id": 0, **{k: v for k, v in source_info.items() if k == "file"}}, bqm)]
        limit = bqm.num_variables  # one explicit problem: no size filter
    else:
        check_run_memory(settings.max_qubits, settings, "--max-qubits: a QUBO")
        sources, source_info = model_qubos(model, settings)  # type: ignore[arg-type]
        limit = settings.max_qubits
    kept, classes = sample_per_class(sources, limit, settings.max_problems)
    if not kept:
        sizes = sorted({b.num_variables for _, b in sources})
        raise QxaiError(
            f"no explanation QUBO has 1 to {limit} variables (sizes seen: {sizes[:10]}); raise --max-qubits "
            "or use another layer"
        )
    for meta, b in kept:
        check_bqm(b, f"problem {meta['id']}")
    ran_on: dict[str, Any] | None = None
    if cluster.uses_ray:
        records, ran_on = solve_on_ray([b for _, b in kept], settings, cluster)
        problems = [{**meta, **record} for (meta, _), record in zip(kept, records, strict=True)]
    else:
        problems = [
            {**meta, **solve_problem(b, settings)} for meta, b in track(kept, "annealing", total=len(kept))
        ]
    protocol, taus = settings.protocol, list(settings.taus)
    statistics = summarise(problems, taus, seed=settings.seed, resamples=settings.resamples)
    skipped = len(sources) - len(kept)
    doc: dict[str, Any] = {
        "settings": settings.to_dict(),
        "qubo": settings.qubo.to_dict() if source_info["kind"] == "model" else None,
        "protocol": protocol.to_dict(), "driver": protocol.driver, "schedule": protocol.schedule_name,
        "dt": protocol.dt, "energy_convention": settings.energy_convention, "taus": taus,
        "grid": settings.grid, "seed": settings.seed, "max_qubits": limit, "source": source_info,
        "num_problems": len(problems), "skipped": skipped, "classes": classes, "problems": problems,
        "statistics": statistics,
        "summary": headline(problems, taus, protocol.driver, protocol.schedule_name, skipped=skipped,
                            energy_convention=settings.energy_convention, statistics=statistics,
                            classes=classes if source_info["kind"] == "model" else None),
    }  # fmt: skip
    doc["claims"] = anneal_claims(doc)
    if ran_on is not None:
        doc["cluster"] = ran_on
    figures = []
    if settings.figures and len(problems) > 1:
        pairs = anneal_figures(problems, statistics, taus, protocol.driver, protocol.schedule_name,
                               settings.energy_convention)  # fmt: skip
        figures = [(Figure(**record), fig) for record, fig in pairs]
    return write_stage(out, "anneal.json", doc, figures=figures)


def qubo_from_run(path: str | Path) -> QuboOptions:
    """The QUBO options stored under ``"qubo"`` in an earlier run's JSON (explanations.json, metrics.json,
    anneal.json), so the same problems are rebuilt.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "m.json"
    >>> _ = p.write_text('{"qubo": {"beta": 0.6, "normalise": "minmax", "penalty": null}}')
    >>> qubo_from_run(p).beta, qubo_from_run(p).normalise
    (0.6, 'minmax')
    """
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as err:
        raise QxaiError(
            f"cannot read {path} ({err.strerror}); pass an explanations.json or metrics.json"
        ) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise QxaiError(f"{path} is not JSON; pass the explanations.json or metrics.json of a run") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("qubo"), dict):
        raise QxaiError(
            f'{path} has no "qubo" settings; pass the explanations.json or metrics.json of a qxai run'
        )
    return QuboOptions.of(doc["qubo"])


def parse_penalty(text: str | None) -> tuple[float, int] | None:
    """``"5,3"`` → ``(5.0, 3)``; None stays None.

    >>> parse_penalty("5, 3")
    (5.0, 3)
    """
    if text is None:
        return None
    try:
        lam, k = (t.strip() for t in text.split(","))
        return float(lam), int(k)
    except ValueError:
        raise QxaiError(f"--penalty expects 'λ,k', e.g. --penalty 5,3; got '{text}'") from None
