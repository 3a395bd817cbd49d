"""The ``explain`` stage: QA feature-map selection for correctly classified test images.

Writes into ``out``:

* ``explanations.json`` — the settings, how the layer was read (``layer_layout``, e.g. "1 leading
  token + a 7×7 patch grid of 64 channels" for a ViT; :mod:`qxai.probe.tokens`), one record per
  image (dataset index, label, target, selected maps, energy, ground-state energy when known, d,
  solver, seconds), a ``figures`` list and a flat ``summary``;
* ``saliency.npz`` — ``saliency`` (B, H, W) QA-fGradCAM maps, ``indices`` (B,) dataset indices,
  ``labels``, ``targets`` (B,), ``channel_weights`` (B, N) raw α, ``selected`` (B, N) bool;
* ``qa_grid.png`` — a few images per class beside their QA-fGradCAM overlays.

With :class:`StreamSettings` (``qxai explain --stream | --limit N | --all | --ray``) the same files
are built from resumable shards under ``out/shards`` (docs/scale.md); ``explanations.json`` then
also carries a ``"stream"`` entry.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qxai.anneal.qubo import QuboOptions
from qxai.data.base import batches
from qxai.errors import QxaiError
from qxai.explain.figures import grid_figure
from qxai.explain.qa import GROUND_TIME_LIMIT, GROUND_TRUTH_MODES, QAFeatureMapExplainer
from qxai.explain.quality import diagnose, image_flags, nothing_meaningful
from qxai.models.loading import load_model_and_data
from qxai.models.selection import select_correct_per_class
from qxai.pipeline.shards import ShardStore, StreamSettings, compute_shards, job_inputs
from qxai.pipeline.stage import Figure, write_stage
from qxai.probe import read_layout
from qxai.probe.tokens import LayoutHint, parse_grid, state_layout
from qxai.progress import track
from qxai.stages import STAGES

#: Images per class shown in the picture grid (the npz and json hold all of them).
GRID_PER_CLASS = 2


@dataclass(frozen=True)
class ExplainSettings:
    """What ``qxai explain`` does, validated before any model work (defaults written once here).

    ``solver``/``solver_options``: the QUBO solver by name and its options; ``qubo``: the QUBO
    settings; ``tokens``/``grid``: the token layout of a Transformer layer when detection cannot
    decide it (:mod:`qxai.probe.tokens`); ``ground_truth``: exact-optimum check (auto | always |
    never) and ``ground_time_limit``
    its seconds per image above enumeration (exact-mip); ``per_class``: correctly
    classified test images per class; ``batch_size``: images per forward/backward pass.
    """

    dataset: str | None = None
    layer: str | None = None
    tokens: int | None = None
    grid: tuple[int, int] | None = None
    solver: str = "batch-sa"
    solver_options: dict[str, Any] = field(default_factory=dict)
    qubo: QuboOptions = field(default_factory=QuboOptions)
    ground_truth: str = "auto"
    ground_time_limit: float = GROUND_TIME_LIMIT
    per_class: int = 20
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", parse_grid(self.grid))
        LayoutHint(self.tokens, self.grid)  # a negative count or a bad grid fails now
        if self.per_class < 1:
            raise QxaiError(f"--per-class must be at least 1, got {self.per_class}")
        if self.batch_size < 1:
            raise QxaiError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.seed < 0:
            raise QxaiError(f"--seed must be ≥ 0, got {self.seed}")
        if not self.ground_time_limit > 0:
            limit = self.ground_time_limit
            raise QxaiError(f"--ground-time-limit must be positive seconds, got {limit}; e.g. 10")
        if self.ground_truth not in GROUND_TRUTH_MODES:
            raise QxaiError(
                f"--ground-truth must be one of {', '.join(GROUND_TRUTH_MODES)}, got '{self.ground_truth}'"
            )
        from qxai.anneal.samplers import get_sampler

        get_sampler(self.solver, **self.solver_options)  # unknown names and bad options fail now

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["qubo"] = self.qubo.to_dict()
        out["solver_options"] = _jsonable(self.solver_options)
        return out


def run_explain(
    out: str | os.PathLike[str], *, model: str | os.PathLike[str], settings: ExplainSettings | None = None,
    stream: StreamSettings | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Explain ``per_class`` correctly classified test images per class; returns the
    ``explanations.json`` document.

    With ``stream`` (:class:`StreamSettings`) the images are streamed from the data set and the
    results written shard by shard under ``out/shards`` (resumable, optionally on Ray): see
    :func:`run_explain_stream`. Without it, the whole test split is loaded into memory.

    >>> doc = run_explain("runs/explain", model="runs/model.pt",
    ...                   settings=ExplainSettings(per_class=2))  # doctest: +SKIP
    >>> doc["summary"]["images"], doc["qubo"]["beta"]  # doctest: +SKIP
    (20, 0.7)
    """
    settings = settings or ExplainSettings()
    out = Path(out)
    if stream is not None:
        return run_explain_stream(out, model=model, settings=settings, stream=stream)
    md = load_model_and_data(str(model), settings.dataset, settings.layer)
    state_layout(md.model, settings.tokens, settings.grid)  # --tokens/--grid, else detected
    explainer = QAFeatureMapExplainer(
        md.model, md.layer, solver=settings.solver, qubo=settings.qubo, seed=settings.seed,
        solver_options=settings.solver_options, ground_truth=settings.ground_truth,
        ground_time_limit=settings.ground_time_limit,
    )  # fmt: skip
    data = select_correct_per_class(md.model, md.split.test, settings.per_class, settings.seed)
    layout = read_layout(md.model, md.layer, data.images[:2]).describe()  # a bad layout fails here

    records: list[dict[str, Any]] = []
    saliency, weights, chosen, targets = [], [], [], []
    for images, labels in track(batches(data, settings.batch_size), "explaining (QA feature maps)"):
        exp = explainer.explain(images)  # the predicted class, which is the label here
        start = len(records)
        records += explanation_records(exp, data.indices[start : start + len(exp)], labels, md.class_names)
        arrays = explanation_arrays(exp)
        saliency.append(arrays["saliency"])
        weights.append(arrays["channel_weights"])
        chosen.append(arrays["selected"])
        targets.append(arrays["targets"])

    arrays = {
        "saliency": np.concatenate(saliency), "indices": data.indices.numpy(), "labels": data.labels.numpy(),
        "targets": np.concatenate(targets), "channel_weights": np.concatenate(weights),
        "selected": np.concatenate(chosen),
    }  # fmt: skip
    grid_rows = _grid_rows(data.labels.numpy(), GRID_PER_CLASS)
    return _write_explanations(
        out, model, settings, md.layer, md.class_names, data.name or md.config.get("dataset"), records,
        arrays, data.images[grid_rows].numpy(), grid_rows, extra={"layer_layout": layout},
    )  # fmt: skip


def _write_explanations(
    out: Path, model: Any, settings: ExplainSettings, layer: str, class_names: list[str], dataset: Any,
    records: list[dict[str, Any]], arrays: dict[str, np.ndarray], grid_images: np.ndarray,
    grid_rows: list[int], extra: dict[str, Any] | None = None,
    shown_images: str = "correctly classified test images",
) -> dict[str, Any]:  # fmt: skip
    """``explanations.json``, ``saliency.npz`` and the grid through :func:`write_stage`; ``grid_images``
    are the images at positions ``grid_rows`` (the only pixels the figure needs). Refused, with the
    cause, when no image has a meaningful explanation (:mod:`qxai.explain.quality`)."""
    flags = [r["degenerate"] for r in records]
    nothing_meaningful(flags, layer=layer)
    figure = Figure(
        "qa_grid.png", "QA-fGradCAM explanations",
        f"Up to {GRID_PER_CLASS} {shown_images} per class, each beside its QA-fGradCAM map "
        f"(Σ over the selected maps S of ReLU(α_k A^k)) at layer '{layer}'; solver {settings.solver}, "
        f"β = {settings.qubo.beta}.",
    )  # fmt: skip
    doc = {
        "method": "qa", "checkpoint": str(model), "dataset": dataset,
        "layer": layer, "num_maps": int(arrays["channel_weights"].shape[1]), "class_names": class_names,
        "solver": settings.solver, "qubo": settings.qubo.to_dict(), "settings": settings.to_dict(),
        "images": records, "summary": _summary(records, settings.solver, layer, class_names),
        "degenerate": diagnose(flags, layer=layer), **(extra or {}),
    }  # fmt: skip
    shown = list(range(len(grid_rows)))
    grid = grid_figure(
        grid_images, np.asarray(arrays["saliency"][grid_rows]), [records[r] for r in grid_rows], shown
    )
    return write_stage(
        out, STAGES["explain"].main, doc, arrays={"saliency.npz": arrays}, figures=[(figure, grid)]
    )


def run_explain_stream(
    out: str | os.PathLike[str], *, model: str | os.PathLike[str], settings: ExplainSettings,
    stream: StreamSettings,
) -> dict[str, Any]:  # fmt: skip
    """The streaming, sharded path of :func:`run_explain` (same document, plus a ``"stream"`` key).

    The test split is streamed (:class:`qxai.data.stream.ImageSource`), the images to explain are
    chosen once and stored in ``out/shards/selection.npz``, and they are explained in shards of
    ``stream.shard_size`` images in batches of ``settings.batch_size`` — the in-memory path's
    batches, so with the ``same`` selection every array equals the in-memory one. Each shard is
    written atomically (:class:`qxai.pipeline.shards.ShardStore`); a second run with the same
    command skips the complete shards. ``explanations.json`` and ``saliency.npz`` are then built
    from the shards through :func:`write_stage`, the saliency maps merged through memory-mapped
    files so that memory stays bounded by the batch and shard sizes.
    """
    out = Path(out)
    run = compute_shards(
        out, command="explain", model=model, settings=settings, stream=stream, batch_size=settings.batch_size,
        local_job=lambda module, source, layer: explain_shard_job(
            module, layer=layer, settings=settings, source=source, loader_workers=stream.loader_workers
        ),
        shard_job=explain_shard_job,
        write=lambda *shard: _write_shard(*shard),  # looked up per call: tests interrupt it
    )  # fmt: skip
    state_layout(run.checkpoint.model, settings.tokens, settings.grid)
    first = run.source.load(run.rows[:2])
    layout = read_layout(run.checkpoint.model, run.layer, first).describe()  # as the in-memory path says it
    return _merge_shards(out, run.store, run.count, run.rows, run.source, model, settings, run.layer, stream,
                         layout)  # fmt: skip


def explain_shard_job(
    model: Any, *, layer: str, settings: ExplainSettings, source: Any = None, dataset: str | None = None,
    recipe: dict[str, Any] | None = None, loader_workers: int = 0, model_file: str | None = None,
    trust: bool = False,
) -> Any:  # fmt: skip
    """``rows -> (arrays, records)`` for one explain shard: the model (a module, or a checkpoint path
    loaded here with ``model_file``/``trust``) and the source (an :class:`ImageSource`, or its
    ``dataset`` name and ``recipe``) are built once; a Ray actor builds it from those few bytes."""
    model, source = job_inputs(model, source, dataset, recipe, model_file, trust)
    state_layout(model, settings.tokens, settings.grid)
    explainer = QAFeatureMapExplainer(
        model, layer, solver=settings.solver, qubo=settings.qubo, seed=settings.seed,
        solver_options=settings.solver_options, ground_truth=settings.ground_truth,
        ground_time_limit=settings.ground_time_limit,
    )  # fmt: skip

    def compute(rows: np.ndarray) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        return explain_rows(explainer, source, rows, settings.batch_size, loader_workers)

    return compute


def explain_rows(
    explainer: QAFeatureMapExplainer, source: Any, rows: np.ndarray, batch_size: int, workers: int = 0
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Explain the test images at positions ``rows`` of ``source`` (an :class:`ImageSource`) in
    batches of ``batch_size``, each for its predicted class: the shard's arrays (``saliency``,
    ``indices``, ``labels``, ``targets``, ``channel_weights``, ``selected``) and records."""
    records: list[dict[str, Any]] = []
    parts: dict[str, list[np.ndarray]] = {}
    for images, labels, pos in source.batches(rows, batch_size, workers):
        exp = explainer.explain(images)
        records += explanation_records(exp, source.indices[pos.numpy()], labels, source.class_names)
        found = {"indices": source.indices[pos.numpy()], "labels": labels.numpy(), **explanation_arrays(exp)}
        for key, value in found.items():
            parts.setdefault(key, []).append(np.asarray(value))
    return {key: np.concatenate(value) for key, value in parts.items()}, records


def _write_shard(
    store: ShardStore, k: int, arrays: dict[str, np.ndarray], records: list[dict[str, Any]]
) -> None:
    """One complete shard (a separate function so tests can interrupt a run between shards)."""
    store.write(k, arrays, records)


def _merge_shards(
    out: Path, store: ShardStore, count: int, rows: np.ndarray, source: Any, model: Any,
    settings: ExplainSettings, layer: str, stream: StreamSettings, layout: str,
) -> dict[str, Any]:  # fmt: skip
    """Build ``explanations.json`` / ``saliency.npz`` from the complete shards, in order."""
    import shutil
    import tempfile

    records: list[dict[str, Any]] = []
    merged: dict[str, np.ndarray] = {}
    scratch = Path(tempfile.mkdtemp(prefix=".merge-", dir=store.folder))
    try:
        filled = 0
        for k in range(count):
            arrays, recs = store.read(k)
            for key, value in arrays.items():
                if key not in merged:  # one memory-mapped file per array, sized for every image
                    shape = (len(rows), *value.shape[1:])
                    merged[key] = np.lib.format.open_memmap(
                        scratch / f"{key}.npy", mode="w+", dtype=value.dtype, shape=shape
                    )
                merged[key][filled : filled + len(value)] = value
            filled += len(recs)
            records += recs
        order = ("saliency", "indices", "labels", "targets", "channel_weights", "selected")
        arrays = {key: merged[key] for key in order}
        labels = source.labels[rows]
        grid_rows = _grid_rows(labels, GRID_PER_CLASS)
        grid_images = source.load(rows[grid_rows]).numpy()
        extra = {"layer_layout": layout,
                 "stream": {**stream.identity(), "shards": count, "shard_folder": "shards"}}
        return _write_explanations(
            out, model, settings, layer, list(source.class_names), source.name, records, arrays, grid_images,
            grid_rows, extra, "test images (by label; explained for the predicted class)"
            if stream.all_images or stream.limit is not None
            else "correctly classified test images",
        )  # fmt: skip
    finally:
        merged.clear()
        shutil.rmtree(scratch, ignore_errors=True)


def explanation_records(exp: Any, indices: Any, labels: Any, class_names: list[str]) -> list[dict[str, Any]]:
    """One ``explanations.json`` record per image of a QA :class:`Explanation` (``indices``,
    ``labels``: ``(B,)`` source indices and labels of its images)."""
    ex = exp.extras
    flags = image_flags(ex, exp.saliency)
    return [
        {
            "index": int(indices[i]), "label": int(labels[i]), "label_name": class_names[int(labels[i])],
            "target": int(exp.targets[i]), "selected": ex["selected"][i], "energy": ex["energy"][i],
            "ground_energy": ex["ground_energy"][i],
            **{key: ex[key][i] for key in ("ground_certified", "ground_gap") if key in ex},
            "num_variables": ex["num_variables"][i], "dead_maps": ex["dead_maps"][i],
            "over_solver_limit": bool(ex["over_solver_limit"][i]),
            "solver": ex["solver"], "seconds": exp.seconds / len(exp),
            "solver_seconds": ex["solver_seconds"][i], "ground_seconds": ex["ground_seconds"][i],
            "live_maps": ex["live_maps"][i], "positive_weights": ex["positive_weights"][i],
            "degenerate": flags[i],
        }
        for i in range(len(exp))
    ]  # fmt: skip


def explanation_arrays(exp: Any) -> dict[str, np.ndarray]:
    """The ``saliency.npz`` arrays of one QA :class:`Explanation`: ``saliency`` (B, H, W),
    ``channel_weights`` (B, N), ``selected`` (B, N) bool, ``targets`` (B,)."""
    weights = exp.extras["channel_weights"]
    mask = np.zeros(weights.shape, dtype=bool)
    for i, sel in enumerate(exp.extras["selected"]):
        mask[i, sel] = True
    return {"saliency": exp.saliency, "channel_weights": weights, "selected": mask, "targets": exp.targets}


def _summary(
    records: list[dict[str, Any]], solver: str, layer: str, class_names: list[str]
) -> dict[str, Any]:
    """Flat headline numbers: counts, mean sizes, how often the solver hit the optimum, and what
    was degenerate.

    ``optimal_rate`` is over every image whose QUBO has variables and whose optimum is known
    (enumerated, or certified by a solver that proves optimality): a problem with no variables has
    nothing to optimise and is counted apart (``problems_without_variables``), never as an optimum
    reached. Images whose optimum is not certified are counted, never silently skipped, and
    ``certification`` says so in words: ``"certified"`` when every solved problem's optimum is known,
    else ``"not certified, gap G (median of K of N problems; largest L)"`` — ``G`` the median of the
    not-certified problems' gaps (best known energy − proven lower bound; the median, so that one
    hard image does not stand for the layer, with the largest beside it), or ``"not certified (no
    bound computed)"`` where no certificate was attempted (``ground_truth="never"``). Every
    degenerate image is counted with its cause (``degenerate: KIND``), and classes that got no
    image are named.
    """
    solved = [r for r in records if r["num_variables"] > 0 and not r.get("over_solver_limit")]
    known = [r for r in solved if r["ground_energy"] is not None and r.get("ground_certified", True)]
    optimal = [
        abs(r["energy"] - r["ground_energy"]) <= 1e-9 * max(1.0, abs(r["ground_energy"])) for r in known
    ]
    known_ids = {id(r) for r in known}
    unproven = [r for r in solved if id(r) not in known_ids]
    gaps = [r["ground_gap"] for r in unproven if r.get("ground_gap") is not None]
    if not unproven:
        certification = "certified"
    elif not gaps:
        certification = "not certified (no bound computed)"
    else:
        certification = (f"not certified, gap {float(np.median(gaps)):.3g} (median of {len(gaps)} of "
                         f"{len(solved)} problems; largest {max(gaps):.3g})")  # fmt: skip
    flags = [r["degenerate"] for r in records]
    present = {r["label"] for r in records}
    missing = [name for c, name in enumerate(class_names) if c not in present]
    warnings = {f"degenerate: {d['kind']}": d["sentence"] for d in diagnose(flags, layer=layer)}
    return {
        "images": len(records),
        "explained": sum(f is None for f in flags),
        "degenerate_images": sum(f is not None for f in flags),
        **warnings,
        "classes": len(present),
        **({"classes without images": ", ".join(missing)} if missing else {}),
        "solver": solver,
        "mean_selected": float(np.mean([len(r["selected"]) for r in records])),
        "mean_variables": float(np.mean([r["num_variables"] for r in records])),
        "max_variables": int(max(r["num_variables"] for r in records)),
        "empty_selections": sum(not r["selected"] for r in records),
        "dead_maps_per_image": float(np.mean([r["dead_maps"] for r in records])),
        "problems_without_variables": sum(r["num_variables"] == 0 for r in records),
        "problems_over_solver_limit": sum(bool(r.get("over_solver_limit")) for r in records),
        "ground_state_known": len(known),
        "share_certified": len(known) / len(solved) if solved else float("nan"),
        "optimal_rate": float(np.mean(optimal)) if known else float("nan"),
        "not_certified": len(solved) - len(known),
        "certification": certification,
        "seconds_per_image": float(np.mean([r["seconds"] for r in records])),
        "solver_seconds_per_image": float(np.mean([r["solver_seconds"] for r in records])),
        "exact_check_seconds_per_image": float(np.mean([r["ground_seconds"] for r in records])),
    }


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    """Solver options as JSON values (objects such as a mock child sampler become their repr)."""
    return {k: v if isinstance(v, int | float | str | bool | None) else repr(v) for k, v in options.items()}


def _grid_rows(labels: np.ndarray, per_class: int) -> list[int]:
    """Positions of the first ``per_class`` images of every class, in class order."""
    return [int(r) for c in np.unique(labels) for r in np.flatnonzero(labels == c)[:per_class]]
