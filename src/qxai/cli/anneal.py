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
    from qxai.anneal.physics.study import AnnealSettings
    from qxai.cli import options
    from qxai.cli.options import setting
    from qxai.pipeline.anneal import ClusterOptions

    A, P, C = AnnealSettings, AnnealProtocol, ClusterOptions

    @app.command()
    def anneal(
        model: str = typer.Option(None, help="Checkpoint: anneal the explanation QUBOs of its test images."),
        model_file: str = options.model_file(),
        trust_model_code: bool = options.trust_model_code(),
        bqm: Path = typer.Option(None, help="One BQM file (dimod to_file() bytes or to_serializable() JSON)"),
        dataset: str = options.dataset(),
        layer: str = setting(A, "layer", help="Layer to explain (default: the model's default layer)."),
        target: str = setting(
            A, "target", help="What the QUBOs select: maps (the layer's feature maps) | heads (every "
            "attention head of a Transformer).",
        ),
        per_class: int = setting(A, "per_class", help="Correctly classified test images per class."),
        max_problems: int = setting(A, "max_problems", help="Stop after this many problems."),
        tau: str = setting(A, "taus", help="Total anneal times, comma-separated."),
        max_qubits: int = setting(A, "max_qubits", help="Skip QUBOs with more variables than this."),
        dt: float = setting(P, "dt", help="Split-operator time step."),
        driver: str = setting(P, "driver", help="transverse (−Σσx) | authors (+(1/d)Σσx)."),
        schedule: str = setting(P, "schedule", help="linear | quadratic."),
        energy_convention: str = setting(
            A, "energy_convention", help="spec (H_P = E(x)) | authors ((I − σz) per qubit: x → 2x)."
        ),
        memory_mb: float = setting(A, "memory_mb", help="Memory budget (MiB); larger problems are refused."),
        beta: float = options.beta(),
        normalise: str = options.normalise(),
        penalty: str = options.penalty(),
        dead_eps: float = options.dead_eps(),
        qubo_from: Path = options.qubo_from(),
        grid: int = setting(A, "grid", help="Coarse s grid of the gap search (then refined)."),
        seed: int = setting(A, "seed"),
        out: Path = typer.Option(Path("runs/anneal"), help="Output folder (anneal.json and figures)."),
        as_json: bool = typer.Option(False, "--json", help="Print anneal.json to stdout."),
        ray: bool = setting(C, "ray", "--ray", help="Solve each problem as a local Ray task."),
        ray_address: str = setting(
            C, "ray_address", help="Join the Ray cluster at HOST:PORT (its head node); docs/annealing.md."
        ),
        workers: int = setting(
            C, "workers", help="Ray only: problems solved at once (default: one per CPU of the cluster)."
        ),
    ) -> None:
        """Δ_min, s* and the fidelity F(τ) by exact state-vector annealing."""
        from qxai.anneal.qubo import QuboOptions
        from qxai.pipeline.anneal import run_anneal

        where = ClusterOptions(ray=ray, ray_address=ray_address, workers=workers)
        if qubo_from is not None and bqm is not None:
            raise QxaiError("--qubo-from applies to --model runs (a --bqm file is its own problem); drop one")
        qubo = QuboOptions.resolve(
            qubo_from, beta=beta, normalise=normalise, penalty=penalty, dead_eps=dead_eps
        )
        settings = AnnealSettings(
            taus=tuple(parse_taus(tau)), max_qubits=max_qubits, grid=grid, max_problems=max_problems,
            per_class=per_class, seed=seed, energy_convention=energy_convention, memory_mb=memory_mb,
            protocol=AnnealProtocol(dt=dt, driver=driver, schedule=schedule), qubo=qubo, dataset=dataset,
            layer=layer, target=target,
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
