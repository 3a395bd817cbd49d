"""The ``evaluate`` stage: explain the same images with every method, score them, with statistics.

Writes into ``out`` (through :func:`qxai.pipeline.stage.write_stage`):

- ``metrics.json`` — ``{method: {metric: value}}`` (a failed method as ``{"error": …}``), plus
  ``"intervals"`` ``{method: {metric: [low, high]}}`` (95 % bootstrap), ``"not_applicable"``
  ``{method: {metric: reason}}``, ``"verdicts"`` ``{metric: "method" | "tie: a, b"}`` (a best only
  where intervals separate), ``"not_discriminative"`` (metrics whose intervals all overlap),
  ``"references"`` (permutation null, random k, class prototype for the overlap), ``"paired"``
  ``{baseline: {metric: {difference, interval, p_value, effect_size}}}`` for QA against each
  baseline, ``"diagnostics"``, ``"claims"`` (the QA paper's claims checked), ``"metric_info"``,
  ``"settings"``, ``"qubo"``, ``"config"``, ``"figures"``, ``"summary"``; with ``seeds`` also
  ``"across_seeds"`` ``{method: {metric: {mean, sd, values}}}``;
- ``per_image.npz`` — every per-image metric value ``METHOD__METRIC`` ``(N,)``;
- ``details.json``, ``metrics.csv``, ``method_saliency.npz`` (maps ``(N, H, W)`` per method) and the
  figures ``overlap.png``, ``curves.png``, ``examples.png``.

>>> doc = run_evaluate("runs/evaluate", model="runs/model.pt",
...                    settings=EvaluateSettings(methods=("qa", "gradcam"), per_class=2))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qxai.anneal.qubo import QuboOptions
from qxai.errors import QxaiError
from qxai.evaluate import EvalSettings, Evaluation, evaluate_methods, select_metrics
from qxai.evaluate import figures as figs
from qxai.evaluate.claims import qa_claims
from qxai.explain.registry import EXPLAINERS, parse_methods
from qxai.models.loading import load_model_and_data
from qxai.models.planted import map_truth
from qxai.models.selection import check_finite_outputs, select_correct_per_class
from qxai.models.train import test_accuracy
from qxai.pipeline.shards import ShardStore, StreamSettings, compute_shards, job_inputs
from qxai.pipeline.stage import Figure, write_stage
from qxai.probe.tokens import LayoutHint, parse_grid, state_layout
from qxai.seeding import numpy_rng, seed_everything
from qxai.stages import STAGES

DEFAULT_METHODS = ("qa", "gradcam", "gradcam++", "ig", "shap", "lime", "lrp")
BACKGROUND = 16  # training images in GradientShap's baseline distribution


@dataclass(frozen=True)
class EvaluateSettings:
    """Everything ``qxai evaluate`` is asked to do, validated before any work.

    ``methods``/``metrics``: names (metrics also groups; None = all); ``tokens``/``grid``: the token
    layout of a Transformer layer when detection cannot decide it (:mod:`qxai.probe.tokens`);
    ``per_class``: correctly
    classified test images per class; ``seeds``: model-training seeds to repeat the whole evaluation
    over (the model is retrained from its checkpoint's config with each seed; empty = the given
    model only); ``solver`` and ``qubo``: the QA method's QUBO solver and settings; ``lime_samples``,
    ``ig_steps``, ``shap_samples``: the baselines' budgets; ``fill``: what deleted pixels become in
    deletion and keep_top_drop (LIME switches segments off with the same substrate);
    ``scoring``: the runner's knobs (:class:`qxai.evaluate.EvalSettings`); ``method_options``: values
    of the methods' own budget options (``ExplainerSpec.options``), ``{method: {key: value}}``.
    """

    methods: tuple[str, ...] = DEFAULT_METHODS
    metrics: tuple[str, ...] | None = None
    dataset: str | None = None
    layer: str | None = None
    tokens: int | None = None
    grid: tuple[int, int] | None = None
    per_class: int = 20
    seed: int = 0
    seeds: tuple[int, ...] = ()
    solver: str = "batch-sa"
    qubo: QuboOptions = field(default_factory=QuboOptions)
    lime_samples: int = 200
    ig_steps: int = 32
    shap_samples: int = 16
    scoring: EvalSettings = field(default_factory=EvalSettings)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", parse_grid(self.grid))
        LayoutHint(self.tokens, self.grid)  # a negative count or a bad grid fails now
        object.__setattr__(self, "methods", tuple(parse_methods(self.methods)))
        if self.metrics is not None:
            select_metrics(self.metrics)  # unknown names fail now
            object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.per_class < 1:
            raise QxaiError(f"--per-class must be at least 1, got {self.per_class}; the authors use 20")
        if self.seed < 0 or any(s < 0 for s in self.seeds):
            raise QxaiError(f"seeds must be ≥ 0, got {self.seed} and {list(self.seeds)}; use 0, 1, 2, …")
        if self.lime_samples < 2 or self.ig_steps < 2 or self.shap_samples < 1:
            raise QxaiError("--lime-samples and --ig-steps must be ≥ 2 and --shap-samples ≥ 1")
        from qxai.anneal.samplers import get_sampler

        if "qa" in self.methods:
            get_sampler(self.solver)  # an unknown solver fails before any model work

    @property
    def fill(self) -> str:
        return self.scoring.deletion_fill

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["qubo"] = self.qubo.to_dict()
        return out


def run_evaluate(
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str],
    settings: EvaluateSettings | None = None,
    stream: StreamSettings | None = None,
) -> dict[str, Any]:
    """Score ``settings.methods`` on correctly classified test images of ``model``; returns the
    ``metrics.json`` document (the CLI prints from it, never re-reading the file).

    With ``stream`` (:class:`qxai.pipeline.shards.StreamSettings`: ``qxai evaluate --stream | --limit N
    | --all | --ray``) the images are streamed and scored shard by shard into ``out/shards``
    (resumable), locally or on Ray, and the set-level metrics and intervals are computed from the
    merged shards (:func:`run_evaluate_stream`)."""
    settings = settings or EvaluateSettings()
    out = Path(out)
    if stream is not None:
        if settings.seeds:
            raise QxaiError("--seeds retrains the model per seed and is not streamed; drop --seeds, or "
                            "the streaming options (--stream/--limit/--all/--ray)")  # fmt: skip
        return run_evaluate_stream(out, model=model, settings=settings, stream=stream)
    seeds = list(dict.fromkeys(settings.seeds))
    if not seeds:
        return _evaluate_one(out, str(model), settings)
    runs = {}
    for s in seeds:
        checkpoint = _model_for_seed(str(model), s, out)
        runs[s] = _evaluate_one(out / f"seed-{s}", checkpoint, replace(settings, seed=s, seeds=()))
    first = runs[seeds[0]]
    doc = {**first, "across_seeds": _across_seeds(runs), "seeds": seeds}
    # QA's paired tests on per-image metrics resample the training seeds as well as the images, and
    # the claims are re-checked on them: a claim holds only if it survives a new training run
    doc["paired"] = _paired_over_seeds(first, {s: out / f"seed-{s}" for s in seeds}, settings)
    doc["claims"] = qa_claims(doc)
    doc["summary"] = {**first["summary"], "seeds": ",".join(map(str, seeds))}
    for method, rows in doc["across_seeds"].items():
        for metric in ("overlap_mean", "deletion_auc", "insertion_auc"):
            if metric in rows:
                doc["summary"][f"{method} {metric} (mean ± sd over seeds)"] = (
                    f"{rows[metric]['mean']:.4g} ± {rows[metric]['sd']:.2g}"
                )
    # the first seed's figures and arrays stay in its folder; the records point there
    doc["figures"] = [{**f, "file": f"seed-{seeds[0]}/{f['file']}"} for f in first["figures"]]
    owned = ("files", "run_id", "sha256")  # each seed's folder owns its files; this JSON claims none
    return write_stage(out, STAGES["evaluate"].main, {k: v for k, v in doc.items() if k not in owned})


def _model_for_seed(checkpoint: str, seed: int, out: Path) -> str:
    """The checkpoint itself when it was trained with ``seed``; otherwise the same config retrained
    with ``seed`` (cached in the qxai cache by the config's hash)."""
    from qxai.models import load_checkpoint
    from qxai.pipeline.train import cached_training

    config = dict(load_checkpoint(checkpoint).config)
    if str(config.get("arch", "")).startswith("file:") or "epochs" not in config:
        raise QxaiError("--seeds retrains the model, so it needs a checkpoint written by `qxai train`; "
                        "train one per seed yourself otherwise")  # fmt: skip
    if int(config.get("seed", -1)) == seed:
        return checkpoint
    keys = ("dataset", "dataset_options", "arch", "hparams", "epochs", "batch_size", "lr")
    train = {k: config[k] for k in keys if k in config} | {"seed": seed}
    return str(cached_training(train)[0])


def _paired_over_seeds(first: dict[str, Any], folders: dict[int, Path], settings: EvaluateSettings
                       ) -> dict[str, dict[str, dict[str, Any]]]:  # fmt: skip
    """The first seed's paired tests, with every per-image metric's test replaced by the one over
    seeds × images (:func:`qxai.evaluate.statistics.paired_test_over_seeds`), read from each seed's
    ``per_image.npz``; the first seed's own test is kept under ``first_seed``."""
    from qxai.evaluate.statistics import paired_test_over_seeds

    arrays = {}
    for s, folder in folders.items():
        with np.load(folder / "per_image.npz", allow_pickle=False) as npz:
            arrays[s] = {k: npz[k] for k in npz.files}
    info = first.get("metric_info") or {}
    paired: dict[str, dict[str, dict[str, Any]]] = {}
    for baseline, rows in (first.get("paired") or {}).items():
        paired[baseline] = dict(rows)
        for metric, test in rows.items():
            keys = (f"{saliency_key('qa')}__{metric}", f"{saliency_key(baseline)}__{metric}")
            if (info.get(metric) or {}).get("level") != "image" or any(
                k not in per_seed for per_seed in arrays.values() for k in keys
            ):
                continue
            pairs = [(per_seed[keys[0]], per_seed[keys[1]]) for per_seed in arrays.values()]
            over = paired_test_over_seeds(pairs, seed=settings.seed, resamples=settings.scoring.resamples)
            paired[baseline][metric] = {**over.to_dict(), "over": f"{len(pairs)} seeds × images",
                                        "first_seed": test}  # fmt: skip
    return paired


def _across_seeds(runs: dict[int, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    first = next(iter(runs.values()))
    for method in first["config"]["methods"]:
        for metric in first["metric_info"]:
            values = [r.get(method, {}).get(metric) for r in runs.values()]
            finite = [float(v) for v in values if isinstance(v, int | float) and np.isfinite(v)]
            if finite:
                out.setdefault(method, {})[metric] = {
                    "mean": float(np.mean(finite)),
                    "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0,
                    "values": values,
                }  # fmt: skip
    return out


def _evaluate_one(out: Path, checkpoint: str, settings: EvaluateSettings) -> dict[str, Any]:
    seed = settings.seed
    seed_everything(seed)
    md = load_model_and_data(checkpoint, settings.dataset, settings.layer)
    state_layout(md.model, settings.tokens, settings.grid)  # --tokens/--grid, for every method
    data = select_correct_per_class(md.model, md.split.test, settings.per_class, seed)
    check_finite_outputs(md.model, data.images)
    options = method_options(settings, shap_background(md.split.train.images, BACKGROUND, seed))
    ev = evaluate_methods(
        md.model, md.layer, data.images, data.labels, list(settings.methods), masks=data.masks,
        metrics=None if settings.metrics is None else list(settings.metrics), options=options, seed=seed,
        settings=settings.scoring, num_classes=len(md.class_names), ids=data.indices.numpy(),
        map_truth=map_truth(md.model),
    )  # fmt: skip
    _refuse_all_failed(ev)
    doc = _document(
        ev, settings, checkpoint, dataset=data.name or md.config.get("dataset"), layer=md.layer,
        class_names=md.class_names, masks=data.masks is not None, images=len(data),
    )  # fmt: skip
    doc["summary"]["model test accuracy"] = round(test_accuracy(md.model, md.split), 4)
    return _write_evaluation(
        out, ev, doc, data.images.numpy(), data.labels.numpy(), data.indices.numpy(), md.class_names
    )


def _write_evaluation(
    out: Path, ev: Evaluation, doc: dict[str, Any], images: Any, targets: np.ndarray, indices: np.ndarray,
    class_names: list[str],
) -> dict[str, Any]:  # fmt: skip
    """The evaluate folder of an evaluation, in memory or merged from shards alike: the figures, the
    maps and per-image values, the details, the CSV and ``metrics.json`` (``doc``), last."""
    figures = _figures(ev, images, targets, class_names)
    maps = {saliency_key(n): r.saliency for n, r in ev.ok().items()}
    per_image = {f"{saliency_key(n)}__{m}": v for n, r in ev.ok().items() for m, v in r.per_image.items()}
    return write_stage(
        out, STAGES["evaluate"].main, doc, figures=figures,
        arrays={
            "method_saliency.npz": {"labels": targets, "indices": indices, **maps},
            "per_image.npz": per_image,
        },
        files={"details.json": {n: r.details for n, r in ev.ok().items()}, "metrics.csv": _csv(ev)},
    )  # fmt: skip


def method_options(settings: EvaluateSettings, background: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Each method's constructor options from the settings (``background``: SHAP's baselines)."""
    fill = settings.fill
    own = {
        "qa": {"solver": settings.solver, "qubo": settings.qubo},
        "ig": {"steps": settings.ig_steps},
        "lime": {"samples": settings.lime_samples, "baseline": 0.0 if fill == "zero" else fill},
        "shap": {"samples": settings.shap_samples, "baselines": background},
    }  # fmt: skip
    # an entry's declared budget options (ExplainerSpec.options), then the run's --method-option
    for name in settings.methods:
        declared = dict(EXPLAINERS[name].options) if name in EXPLAINERS else {}
        merged = {**declared, **own.get(name, {}), **settings.method_options.get(name, {})}
        if merged:
            own[name] = merged
    return own


def _refuse_all_failed(ev: Evaluation) -> None:
    failed = {n: r.error for n, r in ev.methods.items() if r.error is not None}
    if len(failed) == len(ev.methods):
        listing = "; ".join(f"{n}: {e}" for n, e in failed.items())
        raise QxaiError(f"every method failed ({listing}); fix the first error above and rerun")


def _document(
    ev: Evaluation, settings: EvaluateSettings, checkpoint: str, *, dataset: Any, layer: str,
    class_names: list[str], masks: bool, images: int,
) -> dict[str, Any]:  # fmt: skip
    table = ev.table()
    verdicts = ev.verdicts()
    doc: dict[str, Any] = {n: ({"error": r.error} if r.error else table[n]) for n, r in ev.methods.items()}
    doc.update({
        "intervals": ev.interval_table(),
        "not_applicable": {n: dict(r.not_applicable) for n, r in ev.ok().items() if r.not_applicable},
        "undefined": {n: dict(r.undefined) for n, r in ev.ok().items() if r.undefined},
        "degenerate": {n: r.degenerate for n, r in ev.ok().items() if r.degenerate},
        "blank": {n: r.blank for n, r in ev.ok().items() if r.blank},
        "verdicts": {k: v.label for k, v in verdicts.items() if v.leader is not None or v.untestable},
        "not_discriminative": [
            k for k, v in verdicts.items() if v.leader is not None and not v.discriminative
        ],
        "references": ev.references, "paired": ev.paired, "diagnostics": ev.diagnostics,
        "metric_info": {m.name: {"direction": m.direction, "definition": m.definition, "group": m.group,
                                 "level": m.level} for m in ev.metrics},
        "settings": settings.to_dict(), "qubo": settings.qubo.to_dict(),
        "config": {
            "checkpoint": str(checkpoint), "dataset": dataset, "layer": layer,
            "methods": list(settings.methods), "per_class": settings.per_class, "seed": settings.seed,
            "masks": masks, "class_names": class_names, "images": images,
            "classes_present": sorted({int(c) for c in ev.targets}),
        },
    })  # fmt: skip
    doc["claims"] = qa_claims(doc)
    doc["summary"] = _summary(ev, doc, images, class_names)
    return doc


def evaluate_shard_job(
    model: Any, *, layer: str, settings: EvaluateSettings, source: Any = None, dataset: str | None = None,
    recipe: dict[str, Any] | None = None, model_file: str | None = None, trust: bool = False,
) -> Any:  # fmt: skip
    """``rows -> (arrays, meta)`` for one evaluate shard: every method explains the shard's test
    images (positions ``rows`` of the source) for the model's predicted class, and every per-shard
    metric scores them (:func:`qxai.evaluate.runner.explain_and_score`), encoded by
    :func:`qxai.evaluate.shards.encode_shard` plus ``rows``, ``indices``, ``labels``, ``targets``.
    The model (a module, or a checkpoint path loaded here) and the source (or its ``dataset`` and
    ``recipe``) are built once; a Ray actor builds it from those few bytes."""
    from qxai.evaluate.runner import EvalContext, explain_and_score
    from qxai.evaluate.shards import encode_shard

    model, source = job_inputs(model, source, dataset, recipe, model_file, trust)
    state_layout(model, settings.tokens, settings.grid)
    options = method_options(settings, source.background(BACKGROUND, settings.seed))
    chosen = select_metrics(None if settings.metrics is None else list(settings.metrics))

    def compute(rows: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        seed_everything(settings.seed)
        rows = np.asarray(rows, dtype=np.int64)
        images = source.load(rows.tolist())
        targets = check_finite_outputs(model, images, settings.scoring.batch_size)  # each its predicted class
        ctx = EvalContext(
            model, layer, images, targets, source.load_masks(rows), settings.scoring, settings.seed,
            source.num_classes, options, {}, source.indices[rows], sharded=True, map_truth=map_truth(model),
        )  # fmt: skip
        explain_and_score(ctx, list(settings.methods), chosen)
        arrays, meta = encode_shard(ctx.results, len(rows))
        arrays.update(rows=rows, indices=source.indices[rows], labels=source.labels[rows],
                      targets=targets.numpy())  # fmt: skip
        return arrays, meta

    return compute


def run_evaluate_stream(
    out: str | os.PathLike[str], *, model: str | os.PathLike[str], settings: EvaluateSettings,
    stream: StreamSettings,
) -> dict[str, Any]:  # fmt: skip
    """The streamed, sharded path of :func:`run_evaluate` (same files, plus a ``"stream"`` key).

    The images are chosen once (``out/shards/selection.npz``: per class as in memory, the first
    ``--limit``, or ``--all``; each explained for the model's predicted class) and scored in shards of
    ``stream.shard_size`` images — locally or on Ray, one shard per actor call — each written
    atomically; a second run of the same command keeps the complete shards. The merged records then
    get the set and sample metrics, the intervals and paired tests, the references, the figures and
    the files, as one pass over every image would; the maps are merged through memory-mapped files,
    so memory is bounded by the shard size, not by the number of images.
    """
    import shutil
    import tempfile

    from qxai.evaluate.runner import EvalContext, finish_evaluation
    from qxai.evaluate.shards import merge_shards

    out = Path(out)
    run = compute_shards(
        out, command="evaluate", model=model, settings=settings, stream=stream,
        batch_size=settings.scoring.batch_size,
        local_job=lambda module, source, layer: evaluate_shard_job(
            module, layer=layer, settings=settings, source=source
        ),
        shard_job=evaluate_shard_job,
        write=lambda *shard: _write_shard(*shard),  # looked up per call: tests interrupt it
    )  # fmt: skip
    ckpt, source, name, layer, store, rows, seed = (
        run.checkpoint,
        run.source,
        run.dataset,
        run.layer,
        run.store,
        run.rows,
        settings.seed,
    )
    shards = range(run.count)
    scratch = Path(tempfile.mkdtemp(prefix=".merge-", dir=store.folder))
    parts = [(store.arrays(k), store.records(k)) for k in sorted(shards)]
    try:
        results = merge_shards(parts, scratch)
        column = {key: np.concatenate([a[key] for a, _ in parts]) for key in ("indices", "labels", "targets")}
        seed_everything(seed)
        options = method_options(settings, source.background(BACKGROUND, seed))
        masks = source.load_masks(rows)
        state_layout(ckpt.model, settings.tokens, settings.grid)
        ctx = EvalContext(
            ckpt.model, layer, source.view(rows), torch.as_tensor(column["targets"]), masks, settings.scoring,
            seed, source.num_classes, options, results, column["indices"], map_truth=map_truth(ckpt.model),
        )  # fmt: skip
        metrics = select_metrics(None if settings.metrics is None else list(settings.metrics))
        ev = finish_evaluation(ctx, metrics)
        _refuse_all_failed(ev)
        doc = _document(
            ev, settings, str(model), dataset=name, layer=layer, class_names=list(source.class_names),
            masks=masks is not None, images=len(rows),
        )  # fmt: skip
        doc["stream"] = {**stream.identity(), "shards": run.count, "shard_folder": "shards"}
        if stream.all_images:
            accuracy = float(np.mean(column["targets"] == column["labels"]))
            doc["summary"]["model test accuracy"] = round(accuracy, 4)
        return _write_evaluation(
            out, ev, doc, source.view(rows), column["targets"], column["indices"], list(source.class_names)
        )
    finally:
        for arrays, _ in parts:
            arrays.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _write_shard(store: ShardStore, k: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """One complete shard (a separate function so tests can interrupt a run between shards)."""
    store.write(k, arrays, meta)


def saliency_key(name: str) -> str:
    """An npz-safe array name for a method (``gradcam++`` → ``gradcam_pp``)."""
    return name.replace("++", "_pp")


def shap_background(train: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` training images drawn with ``seed``: GradientShap's baseline distribution."""
    rows = numpy_rng(seed, "shap-background").choice(len(train), size=min(count, len(train)), replace=False)
    return train[torch.as_tensor(np.sort(rows))]


def _summary(ev: Evaluation, doc: dict[str, Any], images: int, class_names: list[str]) -> dict[str, Any]:
    ok = ev.ok()
    present = set(doc["config"]["classes_present"])
    missing = [name for c, name in enumerate(class_names) if c not in present]
    summary: dict[str, Any] = {
        "images": images, "classes": len(present),
        **({"classes without images": ", ".join(missing)} if missing else {}),
        "methods_ok": len(ok), "methods_failed": len(ev.methods) - len(ok),
    }  # fmt: skip
    for name, records in doc["degenerate"].items():
        for record in records:
            summary[f"degenerate: {name} {record['kind']}"] = record["sentence"]
    for name, metrics in doc["undefined"].items():
        for metric, why in metrics.items():
            summary[f"undefined: {name} {metric}"] = why
    for metric, label in doc["verdicts"].items():
        summary[f"best {metric}"] = label
    for metric in doc["not_discriminative"]:
        summary[f"{metric}"] = "not discriminative on this data"
    intervals = doc["intervals"]
    for key in ("overlap_mean", "deletion_auc", "insertion_auc"):
        for name in ("qa", "gradcam", "gradcam++"):
            value = ok[name].scores.get(key, np.nan) if name in ok else np.nan
            if np.isfinite(value):
                lo, hi = intervals.get(name, {}).get(key, [np.nan, np.nan])
                span = f"[{lo:.3g}, {hi:.3g}]" if np.isfinite(lo) and np.isfinite(hi) else "(no interval)"
                summary[f"{name} {key}"] = f"{value:.4g} {span}"
    refs = doc.get("references") or {}
    if "permutation_null" in refs:
        summary["overlap permutation null"] = round(refs["permutation_null"]["mean"], 4)
        summary["overlap random k"] = round(refs["random_k"]["mean"], 4)
        summary["overlap class prototype"] = round(refs["class_prototype"]["mean"], 4)
    for key in ("causal_share", "causal_precision"):
        for name in ("qa", "gradcam"):
            value = ok[name].scores.get(key, np.nan) if name in ok else np.nan
            if np.isfinite(value):
                lo, hi = intervals.get(name, {}).get(key, [np.nan, np.nan])
                summary[f"{name} {key}"] = f"{value:.3g} [{lo:.3g}, {hi:.3g}]"
        for ref, row in (refs.get("causal") or {}).items():
            value = (row.get(key) or {}).get("mean")
            if value is not None and np.isfinite(value):
                summary[f"{ref.replace('_', ' ')} {key}"] = round(value, 3)
    diag = doc.get("diagnostics") or {}
    if "alpha_within_class" in diag and diag["alpha_within_class"].get("constant"):
        summary["α within class"] = "constant (see diagnostics)"
    for name, share in (diag.get("same_set_as_topk") or {}).items():
        summary[f"QA set = {name} top-|S|"] = round(share, 3)
    return summary


def _csv(ev: Evaluation) -> str:
    buf = io.StringIO()
    names = [m.name for m in ev.metrics]
    writer = csv.writer(buf)
    writer.writerow(["method", *names, *(f"{n}_low" for n in names), *(f"{n}_high" for n in names), "error"])
    table = ev.table()
    for name, r in ev.methods.items():
        row = table.get(name, {})
        lows = [r.intervals.get(n, (np.nan, np.nan))[0] for n in names]
        highs = [r.intervals.get(n, (np.nan, np.nan))[1] for n in names]
        writer.writerow([name, *(_fmt(row.get(n)) for n in names), *map(_fmt, lows), *map(_fmt, highs),
                         r.error or ""])  # fmt: skip
    return buf.getvalue()


def _fmt(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.6g}"


def _figures(ev: Evaluation, images: np.ndarray, labels: np.ndarray, class_names: list[str]
             ) -> list[tuple[Figure, Any]]:  # fmt: skip
    made: list[tuple[Figure, Any]] = []
    fig = figs.overlap_figure(ev, class_names)
    if fig is not None:
        made.append((Figure(
            "overlap.png", "Class overlap of the selected maps",
            "Bhattacharyya coefficient between the per-class histograms of each method's maps. Top row: "
            "size-matched (every method's top-k maps, k = |S_QA| of the same image); bottom row: each "
            "method's own sets (CAMs: weight > 0), which set size confounds. A diagonal matrix is perfect "
            "disentanglement; lower off-diagonal is better.", section="disentanglement",
        ), fig))  # fmt: skip
    fig = figs.curves_figure(ev)
    if fig is not None:
        made.append((Figure(
            "curves.png", "Deletion and insertion curves",
            "Mean target-class probability as the most salient pixels are deleted or inserted (onto a "
            "blurred copy); AUC in the legend.",
        ), fig))  # fmt: skip
    fig = figs.robustness_figure(ev)
    if fig is not None:
        made.append((Figure(
            "robustness.png", "Robustness and selection stability",
            "Each method's mean and 95 % interval on the robustness metrics (lower is better: how far the "
            "explanation moves under Quantus' input perturbations) and the selection-stability metrics "
            "(higher is better: Jaccard of the selected maps under noise, other solver seeds, other reads).",
        ), fig))  # fmt: skip
    fig = figs.example_grid(ev, images, labels, class_names)
    if fig is not None:
        made.append((Figure(
            "examples.png", "Every method on the same images",
            "One correctly classified test image per class and each method's map (min–max normalised).",
            section="explanations",
        ), fig))  # fmt: skip
    return made


__all__ = [
    "DEFAULT_METHODS", "EvaluateSettings", "evaluate_shard_job", "method_options", "run_evaluate",
    "run_evaluate_stream", "saliency_key", "shap_background",
]
