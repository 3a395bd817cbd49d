"""``qxai evaluate``: QA and the baselines on the same images, scored on every metric with intervals."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from qxai.anneal.qubo import QuboOptions
from qxai.evaluate import EvalSettings
from qxai.pipeline.evaluate import DEFAULT_METHODS, EvaluateSettings
from qxai.pipeline.shards import StreamSettings

# the defaults, written once in each class
_E, _S, _Q, _R = EvaluateSettings(), EvalSettings(), QuboOptions(), StreamSettings()


def _ints(text: str | None) -> tuple[int, ...]:
    from qxai.errors import QxaiError

    if not text:
        return ()
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise QxaiError(f"--seeds must be comma-separated integers such as 0,1,2, got '{text}'") from None


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""
    from qxai.anneal.samplers import help_text as solver_help
    from qxai.evaluate.metrics import metric_help
    from qxai.explain.registry import METHOD_NAMES

    @app.command()
    def evaluate(
        model: Path = typer.Option(
            ..., "--model", help="Checkpoint written by `qxai train` (or file.py:Class)."
        ),
        dataset: str = typer.Option(None, help="Data set (default: the one the model was trained on)."),
        methods: str = typer.Option(
            ",".join(DEFAULT_METHODS), help=f"Comma-separated: {' '.join(METHOD_NAMES)}."
        ),
        per_class: int = typer.Option(_E.per_class, help="Correctly classified test images per class."),
        out: Path = typer.Option(Path("runs/evaluate"), help="Output folder."),
        layer: str = typer.Option(None, help="Conv layer for qa and the CAMs (default: the model's)."),
        metrics: str = typer.Option(None, help=f"Metric names or groups, default all. {metric_help()}."),
        solver: str = typer.Option(_E.solver, help=f"QUBO solver of the qa method: {solver_help()}."),
        beta: float = typer.Option(_Q.beta, help="QA's QUBO strength β in [0, 1]."),
        normalise: str = typer.Option(_Q.normalise, help="QA's α normalisation: max | minmax."),
        dead_eps: float = typer.Option(
            _Q.dead_eps, help="Maps with norm ≤ dead_eps · max norm are not variables."
        ),
        qubo_from: Path = typer.Option(None, help="Take the QUBO settings from an earlier run's JSON."),
        lime_samples: int = typer.Option(_E.lime_samples, help="LIME perturbations per image."),
        ig_steps: int = typer.Option(_E.ig_steps, help="Integrated Gradients steps."),
        shap_samples: int = typer.Option(_E.shap_samples, help="GradientShap samples per image."),
        steps: int = typer.Option(_S.steps, help="Points − 1 of the deletion/insertion curves."),
        sanity_images: int = typer.Option(_S.sanity_images, help="Images the sanity checks re-explain."),
        randomisation: str = typer.Option(
            _S.randomisation, help="Parameter randomisation: full | cascading."
        ),
        fill: str = typer.Option(_S.deletion_fill, help="Deleted pixels become: zero | blur | mean."),
        resamples: int = typer.Option(_S.resamples, help="Bootstrap resamples of every interval and test."),
        null_draws: int = typer.Option(
            _S.null_draws, help="Label shuffles of the overlap's permutation null."
        ),
        batch_size: int = typer.Option(_S.batch_size),
        seed: int = typer.Option(_E.seed, help="Seed of every random component."),
        seeds: str = typer.Option(None, help="Repeat over model-training seeds, e.g. 0,1,2 (retrains)."),
        stream: bool = typer.Option(
            False, help="Stream the data set and score it in resumable shards under OUT/shards."
        ),
        limit: int = typer.Option(None, help="Evaluate the first N test images (implies --stream)."),
        all_images: bool = typer.Option(
            _R.all_images, "--all", help="Evaluate every test image (implies --stream)."
        ),
        selection: str = typer.Option(
            _R.selection, help="Streamed per-class choice: same (as in memory) | first (stop early)."
        ),
        shard_size: int = typer.Option(_R.shard_size, help="Images per shard (multiple of --batch-size)."),
        ray: bool = typer.Option(_R.ray, "--ray", help="Run on a local Ray runtime (implies --stream)."),
        ray_address: str = typer.Option(
            None, help="Join the Ray cluster at HOST:PORT (implies --stream); see docs/scale.md."
        ),
        workers: int = typer.Option(_R.workers, help="Ray actors, each loading the model once."),
    ) -> None:
        """Explain the same images with every method and print methods × metrics with 95 % intervals."""
        from qxai.io import read_json
        from qxai.pipeline.evaluate import run_evaluate

        qubo = QuboOptions.of(read_json(qubo_from).get("qubo") if qubo_from else None)
        if not qubo_from:
            qubo = QuboOptions.of(qubo, beta=beta, normalise=normalise, dead_eps=dead_eps)
        scoring = EvalSettings(
            batch_size=batch_size, steps=steps, deletion_fill=fill, randomisation=randomisation,
            sanity_images=sanity_images, resamples=resamples, null_draws=null_draws,
        )  # fmt: skip
        settings = EvaluateSettings(
            methods=tuple(methods.split(",")), metrics=tuple(metrics.split(",")) if metrics else None,
            dataset=dataset, layer=layer, per_class=per_class, seed=seed, seeds=_ints(seeds),
            solver=solver, qubo=qubo, lime_samples=lime_samples, ig_steps=ig_steps,
            shap_samples=shap_samples, scoring=scoring,
        )  # fmt: skip
        streamed = StreamSettings.from_options(
            stream=stream, limit=limit, all_images=all_images, selection=selection, shard_size=shard_size,
            ray=ray, ray_address=ray_address, workers=workers,
        )  # fmt: skip
        doc = run_evaluate(out, model=model, settings=settings, stream=streamed)
        console = Console(width=max(Console().width, 120))
        console.print(results_table(doc))
        for name in doc["config"]["methods"]:
            if "error" in doc[name]:
                console.print(f"[yellow]skipped {name}:[/] {doc[name]['error']}")
        summary = doc["summary"]
        for key, text in summary.items():
            # what a reader must not miss below the table: empty classes, blank maps, undefined metrics
            if key == "classes without images" or key.startswith(("degenerate: ", "undefined: ")):
                console.print(f"[yellow]{key}:[/] {text}", soft_wrap=True)
        console.print(f"{summary['images']} images, {summary['methods_ok']} methods → {out}/metrics.json")


def results_table(doc: dict[str, Any]) -> Table:
    """One row per metric (↑/↓ = higher/lower is better), one column per method, each cell
    ``value [low, high]``; the verdict column names the best only where intervals separate."""
    methods = [m for m in doc["config"]["methods"] if "error" not in doc[m]]
    intervals = doc.get("intervals") or {}
    verdicts = doc.get("verdicts") or {}
    quiet = set(doc.get("not_discriminative") or [])
    table = Table(title="qxai evaluate (95 % bootstrap intervals)", show_lines=False)
    table.add_column("metric")
    for m in methods:
        table.add_column(m, justify="right")
    table.add_column("best")
    for metric, info in doc["metric_info"].items():
        arrow = {"higher": "↑", "lower": "↓"}.get(info["direction"], "·")
        label = verdicts.get(metric, "–")
        cells = []
        for m in methods:
            v = doc[m].get(metric)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("–")
                continue
            lo, hi = (intervals.get(m) or {}).get(metric, (None, None))
            text = f"{v:.4g}" + (f" [{lo:.3g}, {hi:.3g}]" if lo is not None else "")
            cells.append(f"[bold]{text}[/]" if label == m else text)
        note = "not discriminative" if metric in quiet else label
        table.add_row(f"{metric} {arrow}", *cells, note)
    return table
