"""``qxai evaluate``: QA and the baselines on the same images, scored on every metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""

    @app.command()
    def evaluate(
        model: Path = typer.Option(..., "--model", help="Checkpoint written by `qxai train`."),
        dataset: str = typer.Option(None, help="Data set (default: the one the model was trained on)."),
        methods: str = typer.Option(
            "qa,gradcam,gradcam++,ig,shap,lime,lrp",
            help="Comma-separated: qa gradcam gradcam++ eigencam ig shap lime lrp.",
        ),
        per_class: int = typer.Option(20, min=1, help="Correctly classified test images per class."),
        out: Path = typer.Option(Path("runs/evaluate"), help="Output folder."),
        layer: str = typer.Option(None, help="Conv layer for qa and the CAMs (default: the model's)."),
        metrics: str = typer.Option(
            None,
            help="Metric names or groups (disentanglement, faithfulness, "
            "localisation, sanity, cost); default all.",
        ),
        solver: str = typer.Option("batch-sa", help="QUBO solver of the qa method."),
        lime_samples: int = typer.Option(200, min=2, help="LIME perturbations per image."),
        ig_steps: int = typer.Option(32, min=2, help="Integrated Gradients steps."),
        shap_samples: int = typer.Option(16, min=1, help="GradientShap samples per image."),
        steps: int = typer.Option(20, min=1, help="Points − 1 of the deletion/insertion curves."),
        sanity_images: int = typer.Option(32, min=1, help="Images the sanity checks re-explain."),
        randomisation: str = typer.Option("full", help="Parameter randomisation: full | cascading."),
        fill: str = typer.Option(
            "zero", help="Deleted pixels become: zero | blur | mean (deletion, keep_top_drop)."
        ),
        batch_size: int = typer.Option(32, min=1),
        seed: int = typer.Option(0),
    ) -> None:
        """Explain the same images with every method and print methods × metrics (best in bold)."""
        from qxai.io import read_json
        from qxai.pipeline.evaluate import run_evaluate

        budget = {"lime_samples": lime_samples, "ig_steps": ig_steps, "shap_samples": shap_samples}
        summary = run_evaluate(
            model, dataset, methods, per_class=per_class, seed=seed, out=out, layer=layer, metrics=metrics,
            solver=solver, steps=steps, sanity_images=sanity_images, randomisation=randomisation,
            batch_size=batch_size, fill=fill, **budget,
        )  # fmt: skip
        doc = read_json(out / "metrics.json")
        console = Console(width=max(Console().width, 120))
        console.print(results_table(doc))
        for name in doc["config"]["methods"]:
            if "error" in doc[name]:
                console.print(f"[yellow]skipped {name}:[/] {doc[name]['error']}")
        console.print(f"{summary['images']} images, {summary['methods_ok']} methods → {out}/metrics.json")


def results_table(doc: dict[str, Any]) -> Table:
    """A rich table with one row per metric (↑/↓ = higher/lower is better) and one column per method;
    the best value of each row is bold."""
    methods = [m for m in doc["config"]["methods"] if "error" not in doc[m]]
    table = Table(title="qxai evaluate", show_lines=False)
    table.add_column("metric")
    for m in methods:
        table.add_column(m, justify="right")
    for metric, info in doc["metric_info"].items():
        values = {m: doc[m].get(metric) for m in methods}
        finite = {m: v for m, v in values.items() if v is not None}
        best = None
        if finite:
            pick = max if info["direction"] == "higher" else min
            best = pick(finite, key=lambda m: finite[m])
        arrow = "↑" if info["direction"] == "higher" else "↓"
        cells = []
        for m in methods:
            v = values[m]
            text = "–" if v is None else f"{v:.4g}"
            cells.append(f"[bold]{text}[/]" if m == best else text)
        table.add_row(f"{metric} {arrow}", *cells)
    return table
