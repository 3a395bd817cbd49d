"""The planted benchmark: train (cached) the ``planted-cnn`` on ``planted`` data of one difficulty and
evaluate every method against the designated maps and the masks (:func:`run_planted`); and the demo's
``planted`` stage, which does so for several difficulties (:func:`run_planted_stage`).

>>> doc = run_planted("runs/planted", seed=0, difficulty="overlap",
...                   methods=("qa", "gradcam"), per_class=5)  # doctest: +SKIP
>>> doc["qa"]["planted_precision"]  # doctest: +SKIP
>>> stage = run_planted_stage("demo-out/planted", PlantedSettings(difficulties=("easy",)))  # doctest: +SKIP
>>> [row["verdict"] for row in stage["claims"]]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from qxai.data.planted import DIFFICULTIES, check_difficulty
from qxai.errors import QxaiError
from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate
from qxai.pipeline.stage import Figure, write_stage
from qxai.pipeline.train import cached_training, train_config
from qxai.stages import STAGES

#: the metrics the planted benchmark reports
PLANTED_METRICS = ("planted", "localisation")
#: what the demo's planted stage scores: the truth by construction, the masks and the causal oracle
STAGE_METRICS = ("planted", "localisation", "causal_precision", "causal_share")
#: the columns of the report's planted table (all higher is better)
TABLE_COLUMNS = ("planted_precision", "planted_recall", "pointing_game", "relevance_mass", "causal_precision")


def run_planted(
    out: str | os.PathLike[str], *, seed: int = 0, difficulty: str = "easy",
    methods: Sequence[str] = ("qa", "gradcam", "gradcam++", "eigencam"), per_class: int = 10,
    count: int = 1000, epochs: int = 1, metrics: Sequence[str] = PLANTED_METRICS,
    settings: EvaluateSettings | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train ``planted-cnn`` on ``count`` planted images of ``difficulty`` with ``seed`` (the split,
    the weights and the shuffling; the images' own seed is the data set's ``data_seed``, 0) —
    cached in the qxai model cache — and evaluate ``methods`` on ``per_class`` correctly classified
    test images per class, writing the evaluate stage into ``out``. ``settings`` overrides the rest of
    the evaluation (its methods, metrics, per_class and seed are replaced by the arguments).
    Returns the ``metrics.json`` document.
    """
    check_difficulty(difficulty)
    config = train_config(
        "planted", "planted-cnn", maps=None, epochs=epochs, seed=seed, batch_size=64, lr=2e-3,
        dataset_options={"count": count, "difficulty": difficulty},
    )  # fmt: skip
    checkpoint, _saved, _reused, _key = cached_training(config)
    chosen = _evaluate_settings(methods, metrics, per_class, seed, settings)
    return run_evaluate(Path(out), model=checkpoint, settings=chosen)


def _evaluate_settings(
    methods: Sequence[str], metrics: Sequence[str], per_class: int, seed: int, base: EvaluateSettings | None
) -> EvaluateSettings:
    """The evaluation :func:`run_planted` runs: ``base`` (default settings) with these replaced."""
    return replace(base or EvaluateSettings(), methods=tuple(methods), metrics=tuple(metrics),
                   per_class=per_class, seed=seed)  # fmt: skip


@dataclass(frozen=True)
class PlantedSettings:
    """What the demo's planted stage runs: ``difficulties`` (each a sub-folder of the stage), the
    ``methods`` (``qa`` first: every other set is size-matched to QA's), ``per_class`` correctly
    classified test images per class, ``count`` generated images per difficulty (80 % train),
    ``epochs`` of training (the hand-set model classifies already; training only tunes it), ``seed``.
    """

    difficulties: tuple[str, ...] = tuple(DIFFICULTIES)
    methods: tuple[str, ...] = ("qa", "gradcam", "gradcam++", "eigencam")
    per_class: int = 5
    count: int = 1000
    epochs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        from qxai.explain.registry import parse_methods

        if not self.difficulties:
            raise QxaiError(f"give at least one planted difficulty: {', '.join(DIFFICULTIES)}")
        for difficulty in self.difficulties:
            check_difficulty(difficulty)
        object.__setattr__(self, "difficulties", tuple(dict.fromkeys(self.difficulties)))
        methods = tuple(parse_methods(self.methods))
        if "qa" not in methods or "gradcam" not in methods:
            raise QxaiError(
                f"the planted stage compares qa with gradcam; add them to its methods {list(methods)}"
            )
        object.__setattr__(self, "methods", methods)
        for name in ("per_class", "count", "epochs"):
            if int(getattr(self, name)) < 1:
                value = getattr(self, name)
                raise QxaiError(f"planted {name} must be at least 1, got {value}; give a positive count")
        if self.per_class * 4 * 5 > self.count:  # 4 classes, a fifth of the images held out
            raise QxaiError(
                f"planted count {self.count} holds too few test images for per_class {self.per_class}; "
                f"give count ≥ {self.per_class * 20}"
            )
        if self.seed < 0:
            raise QxaiError(f"seed must be ≥ 0, got {self.seed}; use 0, 1, 2, …")


def describe(difficulty: str) -> str:
    """One line saying what images (and which model) a difficulty draws.

    >>> describe("redundant")
    "2 distractors (contrast 0.8–1), noise σ = 0.05; the model holds a copy of each class's first part map"
    """
    v = check_difficulty(difficulty)
    lo, hi = v.distractor_contrast
    text = f"{v.distractors} distractors (contrast {lo:g}–{hi:g}), noise σ = {v.noise:g}"
    if v.shared_parts:
        text += f"; {v.shared_parts} part of another class in every image"
    if v.one_part:
        text += f"; {v.one_part:.0%} of the images show only one of their class's two parts"
    if difficulty == "redundant":
        text += "; the model holds a copy of each class's first part map"
    return text


def run_planted_stage(out: str | os.PathLike[str], settings: PlantedSettings | None = None) -> dict[str, Any]:
    """The demo's planted stage: for each difficulty, :func:`run_planted` into ``out/<difficulty>``
    (an ``evaluate`` run, metrics :data:`STAGE_METRICS`); then ``out/planted.json`` — per difficulty
    the table's values with intervals, QA's paired differences and the verdicts (or the run's error:
    one failing difficulty does not stop the others) — the claim rows
    (:func:`qxai.evaluate.claims.planted_claims`) and ``planted.png`` (:func:`planted_picture`).
    Returns the ``planted.json`` document.
    """
    from qxai.evaluate.claims import planted_claims

    settings = settings or PlantedSettings()
    out = Path(out)
    runs: dict[str, dict[str, Any] | str] = {}
    for difficulty in settings.difficulties:
        try:
            runs[difficulty] = run_planted(
                out / difficulty, seed=settings.seed, difficulty=difficulty, methods=settings.methods,
                per_class=settings.per_class, count=settings.count, epochs=settings.epochs,
                metrics=STAGE_METRICS,
            )  # fmt: skip
        except Exception as err:  # one difficulty's failure is recorded; the others still run
            if os.environ.get("QXAI_DEBUG") == "1":
                raise
            first = (str(err).strip().splitlines() or [""])[0]
            runs[difficulty] = f"{type(err).__name__}: {first}"
    done = {d: doc for d, doc in runs.items() if isinstance(doc, dict)}
    if not done:
        listing = "; ".join(f"{d}: {e}" for d, e in runs.items())
        raise QxaiError(f"every planted difficulty failed ({listing}); fix the first error and rerun")
    doc: dict[str, Any] = {
        "settings": asdict(settings),
        "columns": list(TABLE_COLUMNS),
        "parts": {d: _part(d, r) for d, r in runs.items()},
        "claims": planted_claims(runs),
        "summary": _summary(runs),
    }
    figures = []
    scored = _evaluate_settings(settings.methods, STAGE_METRICS, settings.per_class, settings.seed, None)
    picture = planted_picture(out, done, scored)
    if picture is not None:
        fig, caption = picture
        title = "The planted benchmark: truth and each method's choice"
        figures.append((Figure("planted.png", title, caption), fig))
    return write_stage(out, STAGES["planted"].main, doc, figures=figures)


def _part(difficulty: str, run: dict[str, Any] | str) -> dict[str, Any]:
    """What the report's table of one difficulty needs, copied from its evaluation (or its error)."""
    part = STAGES[STAGES["planted"].parts or "evaluate"]
    record: dict[str, Any] = {"folder": difficulty, "main": f"{difficulty}/{part.main}",
                              "description": describe(difficulty)}  # fmt: skip
    if isinstance(run, str):
        return {**record, "error": run}
    columns = set(TABLE_COLUMNS)
    methods = list(run["config"]["methods"])
    return {
        **record, "run_id": run.get("run_id"), "images": run["config"]["images"],
        "model test accuracy": (run.get("summary") or {}).get("model test accuracy"),
        "methods": {m: ({"error": run[m]["error"]} if "error" in run[m] else
                        {c: v for c, v in run[m].items() if c in columns}) for m in methods if m in run},
        "intervals": {m: {c: v for c, v in iv.items() if c in columns}
                      for m, iv in (run.get("intervals") or {}).items()},
        "paired": {m: {c: v for c, v in tests.items() if c in columns}
                   for m, tests in (run.get("paired") or {}).items()},
        "verdicts": {c: v for c, v in (run.get("verdicts") or {}).items() if c in columns},
        "not_applicable": {m: {c: v for c, v in why.items() if c in columns}
                           for m, why in (run.get("not_applicable") or {}).items()},
        "blank": dict(run.get("blank") or {}),
    }  # fmt: skip


def _summary(runs: dict[str, dict[str, Any] | str]) -> dict[str, Any]:
    """Flat headline numbers: per difficulty QA's and GradCAM's causal precision and QA − GradCAM."""
    summary: dict[str, Any] = {}
    for difficulty, run in runs.items():
        if isinstance(run, str):
            summary[f"{difficulty}: error"] = run
            continue
        intervals = run.get("intervals") or {}
        for method in ("qa", "gradcam"):
            value = (run.get(method) or {}).get("causal_precision")
            if _finite(value):
                span = _span((intervals.get(method) or {}).get("causal_precision"))
                summary[f"{difficulty}: {method} causal_precision"] = f"{value:.3g} {span}"
        test = ((run.get("paired") or {}).get("gradcam") or {}).get("causal_precision") or {}
        if _finite(test.get("difference")):
            text = f"{test['difference']:+.3g} {_span(test.get('interval'))}"
            summary[f"{difficulty}: QA − GradCAM causal_precision"] = text
        summary[f"{difficulty}: model test accuracy"] = (run.get("summary") or {}).get("model test accuracy")
    return summary


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def _span(interval: Any) -> str:
    """``[low, high]`` of an interval, or "(no interval)"."""
    if isinstance(interval, list | tuple) and len(interval) == 2 and all(_finite(v) for v in interval):
        return f"[{interval[0]:.3g}, {interval[1]:.3g}]"
    return "(no interval)"


def planted_picture(
    out: Path, runs: dict[str, dict[str, Any]], settings: EvaluateSettings
) -> tuple[Any, str] | None:
    """The figure of :func:`qxai.evaluate.figures.planted_figure` and its caption: one explained image
    per difficulty (the first of class ``row mod 4``), its mask, its designated maps and each method's
    saliency with its size-matched map set (k = |S_QA|). ``runs``: each difficulty's ``metrics.json``
    document, its evaluation in ``out/<difficulty>`` run with ``settings``.

    The maps shown are the ones the evaluation wrote (``method_saliency.npz``); the sets, which the
    evaluation does not store, come from explaining the pictured image again with the same explainers,
    options and seed through the runner. Where a method's maps then differ from the stored ones, the
    caption says so. None when no difficulty has an image to show.
    """
    from qxai.evaluate.causal import active_maps
    from qxai.evaluate.figures import planted_figure
    from qxai.evaluate.runner import EvalContext, explain_and_score
    from qxai.models.loading import load_model_and_data
    from qxai.models.planted import map_truth
    from qxai.models.selection import select_correct_per_class
    from qxai.pipeline.evaluate import BACKGROUND, method_options, saliency_key, shap_background
    from qxai.seeding import seed_everything

    rows: dict[str, list[Any]] = {"images": [], "masks": [], "designated": [], "titles": []}
    saliency: dict[str, list[np.ndarray]] = {}
    choices: dict[str, list[list[int]]] = {}
    differ: set[str] = set()
    for r, (difficulty, doc) in enumerate(runs.items()):
        config = doc["config"]
        methods = [m for m in config["methods"] if "error" not in (doc.get(m) or {})]
        stored = np.load(out / difficulty / "method_saliency.npz")
        md = load_model_and_data(config["checkpoint"])
        truth = map_truth(md.model)
        data = select_correct_per_class(md.model, md.split.test, settings.per_class, settings.seed)
        if truth is None or data.masks is None or not np.array_equal(data.indices.numpy(), stored["indices"]):
            continue  # not the images the evaluation scored: nothing trustworthy to show
        seed_everything(settings.seed)
        options = method_options(settings, shap_background(md.split.train.images, BACKGROUND, settings.seed))
        # the methods with map sets (QA first: the others' sets are size-matched to its)
        selecting = [m for m in methods if isinstance((doc.get(m) or {}).get("planted_precision"), float)]
        selecting = ["qa", *[m for m in selecting if m != "qa"]]
        labels = data.labels.numpy()
        picks = np.flatnonzero(labels == r % len(md.class_names))
        if not len(picks):
            continue
        i = int(picks[0])
        # only the pictured image is explained again (an image's explanation does not depend on the
        # others, and its size-matched sets only on QA's set for it)
        one = slice(i, i + 1)
        ctx = EvalContext(
            md.model, md.layer, data.images[one], data.labels[one], np.asarray(data.masks)[one],
            settings.scoring, settings.seed, len(md.class_names), options, {}, data.indices.numpy()[one],
            map_truth=truth,
        )  # fmt: skip
        explain_and_score(ctx, selecting, [])
        rows["images"].append(data.images[i, 0].numpy())
        rows["masks"].append(np.asarray(data.masks[i]))
        active = active_maps(md.model, md.layer, data.images[one])[0]  # the parts the image shows
        rows["designated"].append({k for g in truth.on_image(int(labels[i]), active) for k in g})
        rows["titles"].append(f"{difficulty} · {md.class_names[int(labels[i])]}")
        sizes = ctx.reference_sizes()
        for m in methods:
            saliency.setdefault(m, []).append(stored[saliency_key(m)][i])
            result = ctx.results.get(m)
            if result is None or result.error is not None or result.saliency is None:
                continue
            if not np.allclose(result.saliency[0], stored[saliency_key(m)][i], atol=1e-5):
                differ.add(m)
            sets = result.selections(ctx, sizes=sizes)
            if sets is not None:
                choices.setdefault(m, []).append(sorted(int(k) for k in sets[0]))
    if not rows["images"]:
        return None
    count = len(rows["images"])
    common = [m for m in saliency if len(saliency[m]) == count]
    fig = planted_figure(
        np.stack(rows["images"]), np.stack(rows["masks"]), rows["designated"],
        {m: c for m, c in choices.items() if len(c) == count and m in common},
        {m: np.stack(saliency[m]) for m in common}, rows["titles"],
    )  # fmt: skip
    caption = (
        "One correctly classified test image per difficulty: the image, its evidence mask (the class's two "
        "parts) with the class's designated maps D(c), then each method's saliency with its k = |S_QA| "
        "maps beneath (✓ a designated map of the class, ✗ not). The sets are those of the same images "
        "explained again with the run's explainers, options and seed."
    )
    if differ:
        caption += (f" The re-explained maps of {', '.join(sorted(differ))} differ from the stored ones, "
                    "so their sets may not be the scored ones.")  # fmt: skip
    return fig, caption


__all__ = ["PLANTED_METRICS", "STAGE_METRICS", "PlantedSettings", "run_planted", "run_planted_stage"]
