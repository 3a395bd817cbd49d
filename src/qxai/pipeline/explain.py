"""The ``explain`` stage: QA feature-map selection for correctly classified test images.

Writes into ``out``:

* ``explanations.json`` — the settings, one record per image (dataset index, label, target,
  selected maps, energy, ground-state energy when known, d, solver, seconds), a ``figures`` list
  and a flat ``summary``;
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
from qxai.errors import QxaiError
from qxai.explain.figures import grid_figure
from qxai.explain.qa import GROUND_TIME_LIMIT, GROUND_TRUTH_MODES, QAFeatureMapExplainer
from qxai.pipeline.common import batches, load_model_and_data, select_correct_per_class
from qxai.pipeline.shards import ShardStore
from qxai.pipeline.stage import Figure, write_stage
from qxai.progress import track

#: Images per class shown in the picture grid (the npz and json hold all of them).
GRID_PER_CLASS = 2


@dataclass(frozen=True)
class ExplainSettings:
    """What ``qxai explain`` does, validated before any model work (defaults written once here).

    ``solver``/``solver_options``: the QUBO solver by name and its options; ``qubo``: the QUBO
    settings; ``ground_truth``: exact-optimum check (auto | always | never) and ``ground_time_limit``
    its seconds per image above enumeration (exact-mip); ``per_class``: correctly
    classified test images per class; ``batch_size``: images per forward/backward pass.
    """

    dataset: str | None = None
    layer: str | None = None
    solver: str = "batch-sa"
    solver_options: dict[str, Any] = field(default_factory=dict)
    qubo: QuboOptions = field(default_factory=QuboOptions)
    ground_truth: str = "auto"
    ground_time_limit: float = GROUND_TIME_LIMIT
    per_class: int = 20
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class StreamSettings:
    """How ``qxai explain --stream`` walks the data (defaults written once here).

    ``limit``: explain the first ``limit`` test images (each for its predicted class); ``all_images``:
    every test image; neither: ``per_class`` correctly classified images per class, chosen by the
    ``selection`` rule (``same``: the in-memory path's images; ``first``: stop scanning once every
    class has enough — see :mod:`qxai.data.stream`). ``shard_size``: images per shard, a multiple of
    the batch size. ``loader_workers``: DataLoader processes decoding images. ``ray``: run on a local
    Ray runtime; ``ray_address``: join the cluster at this address; ``workers``: Ray actors, each
    loading the model once. Only the first four change the results, so only they enter the shard
    manifest: a run started on one machine may be resumed on Ray and the other way round.
    """

    limit: int | None = None
    all_images: bool = False
    selection: str = "same"
    shard_size: int = 256
    loader_workers: int = 0
    ray: bool = False
    ray_address: str | None = None
    workers: int = 2

    def __post_init__(self) -> None:
        from qxai.data.stream import SELECTION_RULES

        if self.limit is not None and self.limit < 1:
            raise QxaiError(f"--limit must be at least 1, got {self.limit}")
        if self.limit is not None and self.all_images:
            raise QxaiError("--limit and --all exclude each other; give one of them")
        if self.selection not in SELECTION_RULES:
            choices = ", ".join(SELECTION_RULES)
            raise QxaiError(f"--selection must be one of {choices}, got '{self.selection}'")
        if self.shard_size < 1:
            raise QxaiError(f"--shard-size must be at least 1, got {self.shard_size}")
        if self.loader_workers < 0:
            raise QxaiError(f"--loader-workers must be ≥ 0, got {self.loader_workers}")
        if self.workers < 1:
            raise QxaiError(f"--workers must be at least 1, got {self.workers}")
        if self.ray_address is not None and not self.ray_address.strip():
            raise QxaiError("--ray-address is empty; give the head node's host:port, e.g. 10.0.0.5:6379")

    @property
    def uses_ray(self) -> bool:
        return self.ray or self.ray_address is not None

    def identity(self) -> dict[str, Any]:
        """The fields that decide which images are explained and how they are grouped."""
        return {
            "limit": self.limit, "all_images": self.all_images, "selection": self.selection,
            "shard_size": self.shard_size,
        }  # fmt: skip


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
    explainer = QAFeatureMapExplainer(
        md.model, md.layer, solver=settings.solver, qubo=settings.qubo, seed=settings.seed,
        solver_options=settings.solver_options, ground_truth=settings.ground_truth,
        ground_time_limit=settings.ground_time_limit,
    )  # fmt: skip
    data = select_correct_per_class(md.model, md.split.test, settings.per_class, settings.seed)

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
        arrays, data.images[grid_rows].numpy(), grid_rows,
    )  # fmt: skip


def _write_explanations(
    out: Path, model: Any, settings: ExplainSettings, layer: str, class_names: list[str], dataset: Any,
    records: list[dict[str, Any]], arrays: dict[str, np.ndarray], grid_images: np.ndarray,
    grid_rows: list[int], extra: dict[str, Any] | None = None,
    shown_images: str = "correctly classified test images",
) -> dict[str, Any]:  # fmt: skip
    """``explanations.json``, ``saliency.npz`` and the grid through :func:`write_stage`; ``grid_images``
    are the images at positions ``grid_rows`` (the only pixels the figure needs)."""
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
        "images": records, "summary": _summary(records, settings.solver), **(extra or {}),
    }  # fmt: skip
    shown = list(range(len(grid_rows)))
    grid = grid_figure(
        grid_images, np.asarray(arrays["saliency"][grid_rows]), [records[r] for r in grid_rows], shown
    )
    return write_stage(
        out, "explanations.json", doc, arrays={"saliency.npz": arrays}, figures=[(figure, grid)]
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
    from qxai.data.stream import ImageSource
    from qxai.models import default_layer
    from qxai.pipeline.common import _load_any_model, dataset_options
    from qxai.probe import resolve_layer

    out = Path(out)
    if stream.shard_size % settings.batch_size:
        raise QxaiError(
            f"--shard-size {stream.shard_size} is not a multiple of --batch-size {settings.batch_size}; "
            f"give e.g. --shard-size {settings.batch_size * max(1, stream.shard_size // settings.batch_size)}"
        )
    if stream.ray_address is not None:
        from qxai.pipeline.ray_explain import check_ray_address

        check_ray_address(stream.ray_address)  # before any model work
    ckpt = _load_any_model(str(model))
    cfg = ckpt.config
    name = settings.dataset or cfg.get("dataset")
    if not name:
        raise QxaiError("the model does not record its data set; pass --dataset NAME")
    same = name == cfg.get("dataset")
    expected = tuple(cfg.get("input_shape") or ())
    options = dataset_options(cfg) if same else {}
    if name.startswith("imagefolder:") and expected and "channels" not in options:
        options["channels"] = expected[0]  # the stream cannot look at every image to decide
    source = ImageSource.from_spec(name, seed=cfg.get("seed", 0) if same else 0, **options)
    if expected and source.image_shape != expected:
        raise QxaiError(
            f"data set '{name}' has images {source.image_shape}, the model expects {expected}; "
            "use the data set the model was trained on"
        )
    if str(cfg.get("arch", "")).startswith("file:"):
        from qxai.models.user import check_model_output

        check_model_output(ckpt.model, source.load([0, 1]), source.num_classes, source=str(model))
    layer = settings.layer or default_layer(ckpt.model)
    resolve_layer(ckpt.model, layer)

    identity = {
        "command": "explain", "settings": settings.to_dict(), "stream": stream.identity(), "dataset": name,
        "layer": layer, "model_sha256": _model_sha256(str(model)), "test_images": len(source),
    }  # fmt: skip
    store = ShardStore(out / "shards", identity)
    rows = store.open(lambda: {"rows": _stream_rows(ckpt.model, source, settings, stream)})["rows"]
    shards = [rows[s : s + stream.shard_size] for s in range(0, len(rows), stream.shard_size)]
    todo = [k for k in range(len(shards)) if not store.done(k)]
    if todo and stream.uses_ray:
        from qxai.pipeline.ray_explain import explain_shards_on_ray

        for k, arrays, records in explain_shards_on_ray(
            {k: shards[k] for k in todo}, model=str(model), layer=layer, settings=settings, source=source,
            stream=stream,
        ):  # fmt: skip
            _write_shard(store, k, arrays, records)
    elif todo:
        explainer = QAFeatureMapExplainer(
            ckpt.model, layer, solver=settings.solver, qubo=settings.qubo, seed=settings.seed,
            solver_options=settings.solver_options, ground_truth=settings.ground_truth,
            ground_time_limit=settings.ground_time_limit,
        )  # fmt: skip
        for k in track(todo, f"explaining {len(todo)} shard(s) (QA feature maps)"):
            arrays, records = explain_rows(
                explainer, source, shards[k], settings.batch_size, stream.loader_workers
            )
            _write_shard(store, k, arrays, records)
    return _merge_shards(out, store, len(shards), rows, source, model, settings, layer, stream)


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


def _stream_rows(model: Any, source: Any, settings: ExplainSettings, stream: StreamSettings) -> np.ndarray:
    """The test positions to explain: every one (``--all``), the first ``--limit``, or the per-class
    selection of :func:`qxai.data.stream.select_from_stream`."""
    import torch

    from qxai.data.stream import select_from_stream
    from qxai.probe import eval_mode

    if stream.all_images:
        return np.arange(len(source))
    if stream.limit is not None:
        return np.arange(min(stream.limit, len(source)))

    def predict(images: torch.Tensor) -> torch.Tensor:
        with eval_mode(model), torch.no_grad():
            return model(images).argmax(1)

    return select_from_stream(
        predict, source, settings.per_class, settings.seed, rule=stream.selection,
        batch_size=max(settings.batch_size, 256), workers=stream.loader_workers,
    )  # fmt: skip


def _merge_shards(
    out: Path, store: ShardStore, count: int, rows: np.ndarray, source: Any, model: Any,
    settings: ExplainSettings, layer: str, stream: StreamSettings,
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
        extra = {"stream": {**stream.identity(), "shards": count, "shard_folder": "shards"}}
        return _write_explanations(
            out, model, settings, layer, list(source.class_names), source.name, records, arrays, grid_images,
            grid_rows, extra, "test images (by label; explained for the predicted class)"
            if stream.all_images or stream.limit is not None
            else "correctly classified test images",
        )  # fmt: skip
    finally:
        merged.clear()
        shutil.rmtree(scratch, ignore_errors=True)


def _model_sha256(spec: str) -> str:
    """The SHA-256 of the model's file (a checkpoint, a TorchScript archive, or ``file.py``)."""
    from qxai.models.user import file_sha256

    path = spec.rsplit(":", 1)[0] if ".py:" in spec else spec
    return file_sha256(path)


def explanation_records(exp: Any, indices: Any, labels: Any, class_names: list[str]) -> list[dict[str, Any]]:
    """One ``explanations.json`` record per image of a QA :class:`Explanation` (``indices``,
    ``labels``: ``(B,)`` source indices and labels of its images)."""
    ex = exp.extras
    return [
        {
            "index": int(indices[i]), "label": int(labels[i]), "label_name": class_names[int(labels[i])],
            "target": int(exp.targets[i]), "selected": ex["selected"][i], "energy": ex["energy"][i],
            "ground_energy": ex["ground_energy"][i],
            **{key: ex[key][i] for key in ("ground_certified", "ground_gap") if key in ex},
            "num_variables": ex["num_variables"][i], "dead_maps": ex["dead_maps"][i],
            "solver": ex["solver"], "seconds": exp.seconds / len(exp),
            "solver_seconds": ex["solver_seconds"][i], "ground_seconds": ex["ground_seconds"][i],
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


def _summary(records: list[dict[str, Any]], solver: str) -> dict[str, Any]:
    """Flat headline numbers: counts, mean sizes, and how often the solver hit the optimum.

    ``optimal_rate`` is over every image whose optimum is known (enumerated, or certified by a
    solver that proves optimality); images whose optimum is not certified are counted, never
    silently skipped.
    """
    known = [r for r in records if r["ground_energy"] is not None and r.get("ground_certified", True)]
    optimal = [
        abs(r["energy"] - r["ground_energy"]) <= 1e-9 * max(1.0, abs(r["ground_energy"])) for r in known
    ]
    return {
        "images": len(records),
        "solver": solver,
        "mean_selected": float(np.mean([len(r["selected"]) for r in records])),
        "mean_variables": float(np.mean([r["num_variables"] for r in records])),
        "max_variables": int(max(r["num_variables"] for r in records)),
        "empty_selections": sum(not r["selected"] for r in records),
        "dead_maps_per_image": float(np.mean([r["dead_maps"] for r in records])),
        "ground_state_known": len(known),
        "share_certified": len(known) / len(records),
        "optimal_rate": float(np.mean(optimal)) if known else float("nan"),
        "not_certified": len(records) - len(known),
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
