"""``qxai explain``: QA feature-map selection for correctly classified test images."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from qxai.errors import QxaiError


def register(app: typer.Typer) -> None:
    """Add the ``explain`` command to ``app``."""

    @app.command()
    def explain(
        model: Path = typer.Option(..., "--model", help="Checkpoint written by `qxai train`."),
        dataset: str = typer.Option(None, help="Data set (default: the one the model was trained on)."),
        layer: str = typer.Option(None, help="Conv layer to explain (default: the model's, e.g. reduce)."),
        solver: str = typer.Option(
            "batch-sa", help="batch-sa | exact | sa | tabu | sqa | sqa-openjij | statevector | qpu"
        ),
        beta: float = typer.Option(0.7, help="Importance vs redundancy strength β in [0, 1]."),
        normalise: str = typer.Option("max", help="α normalisation: max | minmax."),
        penalty_lambda: float = typer.Option(
            None, help="Cardinality penalty λ(Σx − k)²: λ (needs --penalty-k)."
        ),
        penalty_k: int = typer.Option(None, help="Cardinality penalty: the wanted number of maps k."),
        num_reads: int = typer.Option(
            None, min=1, help="Reads per image for the solver (solver default if unset)."
        ),
        ground_truth: str = typer.Option("auto", help="Exact ground energy: auto (d ≤ 20) | always | never."),
        per_class: int = typer.Option(20, min=1, help="Correctly classified test images per class."),
        batch_size: int = typer.Option(64, min=1),
        seed: int = typer.Option(0),
        out: Path = typer.Option(Path("runs/explain"), help="Output folder."),
    ) -> None:
        """Select the feature maps that explain each decision (QA-fGradCAM) and write them to OUT."""
        from qxai.pipeline.explain import run_explain

        if (penalty_lambda is None) != (penalty_k is None):
            raise QxaiError("--penalty-lambda and --penalty-k go together; give both or neither")
        penalty = None if penalty_lambda is None else (penalty_lambda, penalty_k)
        options = {} if num_reads is None else {"num_reads": num_reads}
        summary = run_explain(
            model, dataset, layer, solver=solver, beta=beta, per_class=per_class, seed=seed, out=out,
            batch_size=batch_size, normalise=normalise, penalty=penalty, ground_truth=ground_truth,
            solver_options=options,
        )  # fmt: skip
        optimal = summary["optimal_rate"]
        hit = (
            f", optimum reached on {optimal:.1%} of {summary['ground_state_known']}"
            if optimal == optimal
            else ""
        )
        Console().print(
            f"explained [bold]{summary['images']}[/] images with [bold]{solver}[/]: "
            f"{summary['mean_selected']:.2f} of {summary['mean_variables']:.2f} maps selected on average"
            f"{hit}, "
            f"{summary['seconds_per_image'] * 1e3:.1f} ms per image → {out}"
        )
