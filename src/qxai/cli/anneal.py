"""``qxai anneal``: minimum gaps and success probabilities of explanation QUBOs, or of one BQM file."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from qxai.errors import QxaiError


def parse_taus(text: str) -> list[float]:
    """``"10,50,100"`` → ``[10.0, 50.0, 100.0]``.

    >>> parse_taus("10, 50")
    [10.0, 50.0]
    """
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise QxaiError(f"--tau expects comma-separated numbers, got '{text}'; e.g. --tau 10,50") from None


def register(app: typer.Typer) -> None:
    """Add the ``anneal`` command to ``app``."""

    @app.command()
    def anneal(
        model: str = typer.Option(None, help="Checkpoint: anneal the explanation QUBOs of its test images."),
        bqm: Path = typer.Option(None, help="One BQM file (dimod to_file() bytes or to_serializable() JSON)"),
        dataset: str = typer.Option(None, help="Data set (default: the one the model was trained on)."),
        layer: str = typer.Option(None, help="Layer to explain (default: the model's default layer)."),
        per_class: int = typer.Option(20, help="Correctly classified test images per class."),
        max_problems: int = typer.Option(None, help="Stop after this many problems."),
        tau: str = typer.Option("10,50,100", help="Total anneal times, comma-separated."),
        max_qubits: int = typer.Option(14, help="Skip QUBOs with more variables than this."),
        dt: float = typer.Option(0.01, help="Split-operator time step."),
        driver: str = typer.Option("transverse", help="transverse (−Σσx) | authors (+(1/d)Σσx)."),
        schedule: str = typer.Option("linear", help="linear | quadratic."),
        beta: float = typer.Option(0.7, help="QUBO strength β."),
        grid: int = typer.Option(41, help="Coarse s grid of the gap search (then refined)."),
        seed: int = typer.Option(0),
        out: Path = typer.Option(Path("runs/anneal"), help="Output folder (anneal.json and figures)."),
        as_json: bool = typer.Option(False, "--json", help="Print anneal.json to stdout."),
    ) -> None:
        """Δ_min, s* and the fidelity F(τ) by exact state-vector annealing."""
        from qxai.pipeline.anneal import run_anneal

        summary = run_anneal(
            out, bqm_file=bqm, checkpoint=model, dataset=dataset, layer=layer, per_class=per_class,
            max_problems=max_problems, taus=parse_taus(tau), max_qubits=max_qubits, dt=dt, driver=driver,
            schedule=schedule, beta=beta, grid=grid, seed=seed,
        )  # fmt: skip
        if as_json:
            typer.echo(json.dumps(summary, indent=2, default=str))
            return
        console = Console()
        for p in summary["problems"][:20]:
            fids = ", ".join(f"F({t})={f:.4g}" for t, f in p["fidelity"].items())
            console.print(f"[bold]problem {p['id']}[/] d={p['num_qubits']}: Δ_min={p['delta_min']:.4g} "
                          f"at s*={p['s_star']:.4f}; {fids}")  # fmt: skip
        console.print(f"{summary['num_problems']} problems ({summary['driver']} driver, "
                      f"{summary['schedule']} schedule) → {out / 'anneal.json'}")  # fmt: skip
