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
``max_qubits``; problems are taken class by class in turn,
:func:`qxai.anneal.physics.study.sample_per_class`), ``problems`` (one record each), ``statistics``
(nested), ``summary`` (flat headline numbers), ``claims`` (:func:`anneal_claims`) and ``figures``; on Ray also
``cluster`` (where the problems ran: ``engine``, ``address``, ``workers``, ``nodes``; not a setting).

On Ray (``ClusterOptions(ray=True)`` or ``ray_address=…``) every problem is one Ray task
(:data:`qxai.pipeline.cluster.TASK_OPTIONS`: one CPU, one numeric thread); the driver builds the
problems, collects the records in problem order and writes the same folder as a single-process run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dimod
import numpy as np

from qxai.anneal.physics.figures import anneal_figures
from qxai.anneal.physics.model import check_bqm
from qxai.anneal.physics.statistics import anneal_claims, headline, summarise
from qxai.anneal.physics.study import (
    AnnealSettings,
    check_run_memory,
    load_bqm,
    memory_needed,
    sample_per_class,
    solve_problem,
    solve_serialised,
)
from qxai.errors import QxaiError
from qxai.progress import track
from qxai.stages import STAGES

__all__ = ["AnnealSettings", "ClusterOptions", "model_qubos", "run_anneal"]


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


def model_qubos(
    checkpoint: str | Path, settings: AnnealSettings
) -> tuple[list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]], dict[str, Any]]:
    """``(meta, bqm)`` for the explanation QUBO of each selected correctly classified test image, and
    what they came from (``{"kind", "checkpoint", "dataset", "layer", "num_maps", "target"}``). With
    ``settings.target == "heads"`` the QUBOs select every block's attention heads (``layer`` is then
    the attention blocks, ``num_maps`` the number of heads)."""
    from qxai.data.base import batches
    from qxai.explain.qa import QAFeatureMapExplainer
    from qxai.models.loading import load_model_and_data
    from qxai.models.selection import select_correct_per_class

    md = load_model_and_data(str(checkpoint), settings.dataset, settings.layer)
    images = select_correct_per_class(md.model, md.split.test, settings.per_class, seed=settings.seed)
    options = {"solver": "exact", "qubo": settings.qubo, "seed": settings.seed, "ground_truth": "never"}
    if settings.target == "heads":
        from qxai.explain.heads import QAHeadsExplainer

        heads = QAHeadsExplainer(md.model, blocks="all", **options)
        layer = ",".join(site.name for site in heads.sites)
    else:
        explainer = QAFeatureMapExplainer(md.model, md.layer, **options)
        layer = md.layer
    out: list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]] = []
    num_maps = None
    for x, y in batches(images, 32):
        if settings.target == "heads":
            _, qubos, _ = heads.build_qubos(x, y)
            num_maps = heads.num_heads
        else:
            batch = explainer.build_qubos(x, y)
            qubos, num_maps = batch.qubos, int(batch.channel_weights.shape[1])
        # built with *every* QUBO option of the settings, so a run's "qubo" is reproduced exactly
        for (bqm, kept), label in zip(qubos, y.tolist(), strict=True):
            meta = {"id": len(out), "label": md.class_names[label], "maps": np.asarray(kept).tolist()}
            out.append((meta, bqm))
    dataset = settings.dataset or md.config.get("dataset")
    source = {"kind": "model", "checkpoint": str(checkpoint), "dataset": dataset,
              "layer": layer, "num_maps": num_maps, "target": settings.target}  # fmt: skip
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
    >>> from qxai.anneal.physics import AnnealProtocol
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
        from qxai.pipeline.cluster import run_tasks_on_ray

        records, ran_on = run_tasks_on_ray(
            solve_serialised, [b.to_serializable() for _, b in kept], settings.to_dict(),
            address=cluster.ray_address, workers=cluster.workers, label="annealing on Ray",
        )  # fmt: skip
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
    return write_stage(out, STAGES["anneal"].main, doc, figures=figures)
