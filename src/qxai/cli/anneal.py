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
    """Add the ``anneal`` command to ``app``; every default is read from the settings dataclasses."""
    from qxai.anneal.physics import AnnealProtocol
    from qxai.anneal.qubo import QuboOptions
    from qxai.pipeline.anneal import AnnealSettings, ClusterOptions

    default = AnnealSettings.default
    cluster = ClusterOptions()
    proto = AnnealProtocol()
    qubo = QuboOptions()
    taus = ",".join(f"{t:g}" for t in default("taus"))

    @app.command()
    def anneal(
        model: str = typer.Option(None, help="Checkpoint: anneal the explanation QUBOs of its test images."),
        bqm: Path = typer.Option(None, help="One BQM file (dimod to_file() bytes or to_serializable() JSON)"),
        dataset: str = typer.Option(None, help="Data set (default: the one the model was trained on)."),
        layer: str = typer.Option(None, help="Layer to explain (default: the model's default layer)."),
        per_class: int = typer.Option(
            default("per_class"), help="Correctly classified test images per class."
        ),
        max_problems: int = typer.Option(default("max_problems"), help="Stop after this many problems."),
        tau: str = typer.Option(taus, help="Total anneal times, comma-separated."),
        max_qubits: int = typer.Option(
            default("max_qubits"), help="Skip QUBOs with more variables than this."
        ),
        dt: float = typer.Option(proto.dt, help="Split-operator time step."),
        driver: str = typer.Option(proto.driver, help="transverse (−Σσx) | authors (+(1/d)Σσx)."),
        schedule: str = typer.Option(proto.schedule, help="linear | quadratic."),
        energy_convention: str = typer.Option(
            default("energy_convention"), help="spec (H_P = E(x)) | authors ((I − σz) per qubit: x → 2x)."
        ),
        memory_mb: float = typer.Option(
            default("memory_mb"), help="Memory budget (MiB); larger problems are refused."
        ),
        beta: float = typer.Option(None, help=f"QUBO strength β (default {qubo.beta}, or --qubo-from's)."),
        normalise: str = typer.Option(None, help=f"α normalisation max | minmax (default {qubo.normalise})."),
        penalty: str = typer.Option(None, help="Cardinality penalty 'λ,k' adding λ(Σx − k)² (default none)."),
        dead_eps: float = typer.Option(None, help=f"Dead-map threshold (default {qubo.dead_eps:g})."),
        qubo_from: Path = typer.Option(
            None, help="Take the QUBO settings from an earlier run's explanations.json or metrics.json."
        ),
        grid: int = typer.Option(default("grid"), help="Coarse s grid of the gap search (then refined)."),
        seed: int = typer.Option(default("seed")),
        out: Path = typer.Option(Path("runs/anneal"), help="Output folder (anneal.json and figures)."),
        as_json: bool = typer.Option(False, "--json", help="Print anneal.json to stdout."),
        ray: bool = typer.Option(cluster.ray, "--ray", help="Solve each problem as a local Ray task."),
        ray_address: str = typer.Option(
            cluster.ray_address, help="Join the Ray cluster at HOST:PORT (its head node); docs/annealing.md."
        ),
        workers: int = typer.Option(
            cluster.workers, help="Ray only: problems solved at once (default: one per CPU of the cluster)."
        ),
    ) -> None:
        """Δ_min, s* and the fidelity F(τ) by exact state-vector annealing."""
        from qxai.pipeline.anneal import parse_penalty, qubo_from_run, run_anneal

        where = ClusterOptions(ray=ray, ray_address=ray_address, workers=workers)
        if qubo_from is not None and bqm is not None:
            raise QxaiError("--qubo-from applies to --model runs (a --bqm file is its own problem); drop one")
        options = QuboOptions.of(
            qubo_from_run(qubo_from) if qubo_from is not None else None,
            beta=beta, normalise=normalise, penalty=parse_penalty(penalty), dead_eps=dead_eps,
        )  # fmt: skip
        settings = AnnealSettings(
            taus=tuple(parse_taus(tau)), max_qubits=max_qubits, grid=grid, max_problems=max_problems,
            per_class=per_class, seed=seed, energy_convention=energy_convention, memory_mb=memory_mb,
            protocol=AnnealProtocol(dt=dt, driver=driver, schedule=schedule), qubo=options, dataset=dataset,
            layer=layer,
        )  # fmt: skip
        summary = run_anneal(out, model=model, bqm=bqm, settings=settings, cluster=where)
        if as_json:
            typer.echo(json.dumps(summary, indent=2, default=str))
            return
        console = Console()
        for p in summary["problems"][:20]:
            fids = ", ".join(f"F({t})={f:.4g}" for t, f in p["fidelity"].items())
            console.print(f"[bold]problem {p['id']}[/] d={p['num_qubits']}: Δ_min={p['delta_min']:.4g} "
                          f"at s*={p['s_star']:.4f}; {fids}")  # fmt: skip
        console.print(f"{summary['num_problems']} problems ({summary['summary']['driver']}, "
                      f"{summary['schedule']} schedule, {summary['energy_convention']} energy convention) "
                      f"{_where(summary.get('cluster'))}→ {out / 'anneal.json'}")  # fmt: skip


def _where(cluster: dict | None) -> str:
    """``"on Ray (2 workers, 1 node) "`` for a Ray run, else nothing."""
    if cluster is None:
        return ""
    nodes = cluster["nodes"]
    return f"on Ray ({cluster['workers']} workers, {nodes} node{'s' * (nodes != 1)}) "
