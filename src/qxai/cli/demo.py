"""``qxai demo``: from nothing to the HTML report of every analysis."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    from qxai.data.registry import help_text as dataset_help
    from qxai.models.registry import ARCHITECTURES

    @app.command()
    def demo(
        out: Path = typer.Option(
            Path("demo-out"), help="Run folder: stage results, figures and report.html."
        ),
        dataset: str = typer.Option("mnist", help=f"Data set: {dataset_help()}."),
        arch: str = typer.Option("reduced-cnn", help=f"Architecture: {' | '.join(ARCHITECTURES)}."),
        maps: int = typer.Option(16, help="Feature maps N_f of the `reduce` block."),
        epochs: int = typer.Option(5, min=1),
        per_class: int = typer.Option(
            20, min=1, help="Correctly classified test images explained per class."
        ),
        methods: str = typer.Option(
            "qa,gradcam,gradcam++,eigencam,ig,shap,lime,lrp", help="Comma-separated."
        ),
        taus: str = typer.Option("10,50,100", help="Annealing times τ for the fidelity study."),
        max_qubits: int = typer.Option(12, help="Largest explanation QUBO simulated as a state vector."),
        anneal_per_class: int = typer.Option(
            4, min=1, help="Explanation QUBOs per class for the physics stage."
        ),
        stages: str = typer.Option("model,explain,evaluate,anneal,analyze", help="Which stages to run."),
        quantum: bool = typer.Option(
            False, "--quantum", help="Also train and analyse the hybrid quantum–classical model (hybrid-vqc)."
        ),
        seed: int = typer.Option(0),
    ) -> None:
        """Train, explain, evaluate, anneal and analyse; then write report.html."""
        from qxai.errors import QxaiError
        from qxai.pipeline.demo import DemoSettings, run_demo

        try:
            tau_values = tuple(float(t) for t in taus.split(","))
        except ValueError:
            raise QxaiError(f"--taus must be comma-separated numbers, got '{taus}'") from None
        settings = DemoSettings(
            dataset=dataset, arch=arch, maps=maps, epochs=epochs, seed=seed, per_class=per_class,
            methods=tuple(m.strip() for m in methods.split(",") if m.strip()), taus=tau_values,
            max_qubits=max_qubits, anneal_per_class=anneal_per_class,
            stages=tuple(s.strip() for s in stages.split(",") if s.strip()), quantum=quantum,
        )  # fmt: skip
        meta = run_demo(out, settings, command=shlex.join(["qxai", *sys.argv[1:]]))
        table = Table(title="qxai demo")
        for column in ("stage", "status", "seconds", "detail"):
            table.add_column(column)
        for name, record in meta["stages"].items():
            ok = record["status"] == "ok"
            table.add_row(
                name, f"[{'green' if ok else 'red'}]{record['status']}", f"{record['seconds']:.1f}",
                "" if ok else record.get("error", ""),
            )  # fmt: skip
        console = Console()
        console.print(table)
        console.print(f"report: [bold]{out / 'report.html'}[/]")
        if any(r["status"] != "ok" for r in meta["stages"].values()):
            raise typer.Exit(1)
