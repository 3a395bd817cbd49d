"""``qxai evaluate``: QA and the baselines on the same images, scored on every metric with intervals."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from qxai.anneal.qubo import QuboOptions
from qxai.cli import options
from qxai.cli.options import setting
from qxai.errors import QxaiError
from qxai.evaluate import EvalSettings
from qxai.pipeline.evaluate import EvaluateSettings
from qxai.pipeline.shards import StreamSettings


def _ints(text: str | None) -> tuple[int, ...]:
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

    E, S = EvaluateSettings, EvalSettings  # the defaults, written once in each class

    @app.command()
    def evaluate(
        model: Path = typer.Option(
            None, "--model", help="Checkpoint written by `qxai train` (or file.py:Class)."
        ),
        hf_model: Path = options.hf_model(),
        model_file: str = options.model_file(),
        trust_model_code: bool = options.trust_model_code(),
        dataset: str = options.dataset(),
        methods: str = setting(E, "methods", help=f"Comma-separated: {' '.join(METHOD_NAMES)}."),
        per_class: int = setting(E, "per_class", help="Correctly classified test images per class."),
        out: Path = typer.Option(Path("runs/evaluate"), help="Output folder."),
        layer: str = typer.Option(
            None, help="Layer for qa and the CAMs: conv or Transformer (default: the model's)."
        ),
        tokens: int = options.tokens(E),
        grid: str = options.grid(E),
        metrics: str = setting(E, "metrics", help="Metric names or groups, default all but the opt-in "
                               f"robustness and stability groups. {metric_help()}."),
        solver: str = setting(E, "solver", help=f"QUBO solver of the qa method: {solver_help()}."),
        beta: float = options.beta(),
        normalise: str = options.normalise(),
        penalty: str = options.penalty(),
        dead_eps: float = options.dead_eps(),
        qubo_from: Path = options.qubo_from(),
        lime_samples: int = setting(E, "lime_samples", help="LIME perturbations per image."),
        ig_steps: int = setting(E, "ig_steps", help="Integrated Gradients steps."),
        shap_samples: int = setting(E, "shap_samples", help="GradientShap samples per image."),
        steps: int = setting(S, "steps", help="Points − 1 of the deletion/insertion curves."),
        sanity_images: int = setting(S, "sanity_images", help="Images the sanity checks re-explain."),
        randomisation: str = setting(S, "randomisation", help="Parameter randomisation: full | cascading."),
        fill: str = setting(S, "deletion_fill", help="Deleted pixels become: zero | blur | mean."),
        resamples: int = setting(S, "resamples", help="Bootstrap resamples of every interval and test."),
        null_draws: int = setting(S, "null_draws", help="Label shuffles of the overlap's permutation null."),
        batch_size: int = setting(S, "batch_size"),
        seed: int = setting(E, "seed", help="Seed of every random component."),
        seeds: str = setting(E, "seeds", help="Repeat over model-training seeds, e.g. 0,1,2 (retrains)."),
        stream: bool = options.stream("score"),
        limit: int = options.limit("evaluate"),
        all_images: bool = options.all_images("evaluate"),
        selection: str = options.selection(),
        shard_size: int = options.shard_size(),
        loader_workers: int = options.loader_workers(),
        ray: bool = options.ray(),
        ray_address: str = options.ray_address(),
        workers: int = options.workers(),
        method_option: list[str] = typer.Option(
            None,
            "--method-option",
            metavar="METHOD.KEY=VALUE",
            help="A method's own budget option (its registry entry declares it); repeatable.",
        ),
        metric_option: list[str] = typer.Option(
            None,
            "--metric-option",
            metavar="METRIC.KEY=VALUE",
            help="A metric's own setting (its registry entry declares it); repeatable.",
        ),
    ) -> None:
        """Explain the same images with every method and print methods × metrics with 95 % intervals."""
        from qxai.evaluate.metrics import METRICS
        from qxai.explain.registry import EXPLAINERS
        from qxai.pipeline.evaluate import run_evaluate
        from qxai.settings import parse_assignments

        source = options.model_source(model, hf_model)  # --model or --hf-model, exactly one
        if hf_model is not None and seeds:
            raise QxaiError("--seeds retrains the model, which a --hf-model folder cannot; drop --seeds")
        qubo = QuboOptions.resolve(
            qubo_from, beta=beta, normalise=normalise, penalty=penalty, dead_eps=dead_eps
        )
        scoring = EvalSettings(
            batch_size=batch_size, steps=steps, deletion_fill=fill, randomisation=randomisation,
            sanity_images=sanity_images, resamples=resamples, null_draws=null_draws,
            metric_settings=parse_assignments(
                metric_option, {n: m.settings for n, m in METRICS.items()}, "--metric-option"
            ),
        )  # fmt: skip
        settings = EvaluateSettings(
            methods=tuple(methods.split(",")), metrics=tuple(metrics.split(",")) if metrics else None,
            dataset=dataset, layer=layer, tokens=tokens, grid=grid, per_class=per_class, seed=seed,
            seeds=_ints(seeds), solver=solver, qubo=qubo, lime_samples=lime_samples, ig_steps=ig_steps,
            shap_samples=shap_samples, scoring=scoring,
            method_options=parse_assignments(
                method_option, {n: s.options for n, s in EXPLAINERS.items()}, "--method-option"
            ),
        )  # fmt: skip
        streamed = StreamSettings.from_options(
            stream=stream, limit=limit, all_images=all_images, selection=selection, shard_size=shard_size,
            loader_workers=loader_workers, ray=ray, ray_address=ray_address, workers=workers,
        )  # fmt: skip
        doc = run_evaluate(out, model=source, settings=settings, stream=streamed)
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
