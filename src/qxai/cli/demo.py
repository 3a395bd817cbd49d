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
    from qxai.cli.options import setting
    from qxai.data.registry import help_text as dataset_help
    from qxai.models.registry import ARCHITECTURES
    from qxai.pipeline.demo import DemoSettings

    D = DemoSettings  # the defaults, written once in the settings class

    @app.command()
    def demo(
        out: Path = typer.Option(
            Path("demo-out"), help="Run folder: stage results, figures and report.html."
        ),
        dataset: str = setting(D, "dataset", help=f"Data set: {dataset_help()}."),
        arch: str = setting(D, "arch", help=f"Architecture: {' | '.join(ARCHITECTURES)}."),
        maps: int = setting(D, "maps", help="Feature maps N_f of the `reduce` block."),
        epochs: int = setting(D, "epochs", min=1),
        per_class: int = setting(
            D, "per_class", min=1, help="Correctly classified test images explained per class."
        ),
        methods: str = setting(
            D, "methods", help="Comma-separated; default: qa,gradcam,gradcam++,eigencam,ig,shap,lime,lrp "
            "(a Transformer arch: rollout,chefer,qa-heads in place of lrp).",
        ),
        taus: str = setting(D, "taus", help="Annealing times τ for the fidelity study."),
        max_qubits: int = setting(
            D, "max_qubits", help="Largest explanation QUBO simulated as a state vector."
        ),
        anneal_per_class: int = setting(
            D, "anneal_per_class", min=1, help="Explanation QUBOs per class for the physics stage."
        ),
        stages: str = setting(
            D, "stages", help="Which stages to run; default: model,explain,evaluate,anneal,analyze,planted "
            "(+ heads after evaluate for a Transformer arch).",
        ),
        quantum: bool = setting(
            D,
            "quantum",
            "--quantum",
            help="Also train and analyse the hybrid quantum–classical model (hybrid-vqc).",
        ),
        seed: int = setting(D, "seed"),
    ) -> None:
        """Train, explain, evaluate, anneal and analyse; then write report.html."""
        from qxai.errors import QxaiError
        from qxai.pipeline.demo import run_demo

        try:
            tau_values = tuple(float(t) for t in taus.split(","))
        except ValueError:
            raise QxaiError(f"--taus must be comma-separated numbers, got '{taus}'") from None
        settings = DemoSettings(
            dataset=dataset, arch=arch, maps=maps, epochs=epochs, seed=seed, per_class=per_class,
            methods=tuple(m.strip() for m in (methods or "").split(",") if m.strip()), taus=tau_values,
            max_qubits=max_qubits, anneal_per_class=anneal_per_class,
            stages=tuple(s.strip() for s in (stages or "").split(",") if s.strip()), quantum=quantum,
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
