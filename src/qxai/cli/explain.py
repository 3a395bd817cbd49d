"""``qxai explain``: QA feature-map selection for correctly classified test images."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from qxai.errors import QxaiError


def register(app: typer.Typer) -> None:
    """Add the ``explain`` command to ``app``."""
    from qxai.anneal.qubo import QuboOptions
    from qxai.anneal.samplers import help_text as solver_help
    from qxai.pipeline.explain import ExplainSettings, StreamSettings

    defaults, qubo_defaults = ExplainSettings(), QuboOptions()  # the defaults, written once in each class
    scale = StreamSettings()

    @app.command()
    def explain(
        model: Path = typer.Option(
            ..., "--model", help="Checkpoint written by `qxai train` (or file.py:Class)."
        ),
        dataset: str = typer.Option(None, help="Data set (default: the one the model was trained on)."),
        layer: str = typer.Option(None, help="Conv layer to explain (default: the model's, e.g. reduce)."),
        solver: str = typer.Option(defaults.solver, help=f"QUBO solver: {solver_help()}."),
        beta: float = typer.Option(qubo_defaults.beta, help="Importance vs redundancy strength β in [0, 1]."),
        normalise: str = typer.Option(qubo_defaults.normalise, help="α normalisation: max | minmax."),
        penalty_lambda: float = typer.Option(
            None, help="Cardinality penalty λ(Σx − k)²: λ (needs --penalty-k)."
        ),
        penalty_k: int = typer.Option(None, help="Cardinality penalty: the wanted number of maps k."),
        dead_eps: float = typer.Option(
            qubo_defaults.dead_eps, help="Maps with norm ≤ dead_eps · the largest map norm are not variables."
        ),
        qubo_from: Path = typer.Option(None, help="Take the QUBO settings from an earlier run's JSON."),
        num_reads: int = typer.Option(None, help="Reads per image for the solver (solver default if unset)."),
        ground_truth: str = typer.Option(
            defaults.ground_truth, help="Exact optimum check: auto | always | never."
        ),
        ground_time_limit: float = typer.Option(
            defaults.ground_time_limit, help="Seconds per image for the certifying solver above enumeration."
        ),
        per_class: int = typer.Option(defaults.per_class, help="Correctly classified test images per class."),
        batch_size: int = typer.Option(defaults.batch_size),
        seed: int = typer.Option(defaults.seed),
        out: Path = typer.Option(Path("runs/explain"), help="Output folder."),
        stream: bool = typer.Option(
            False, help="Stream the data set in batches and write resumable shards under OUT/shards."
        ),
        limit: int = typer.Option(None, help="Explain the first N test images (implies --stream)."),
        all_images: bool = typer.Option(
            scale.all_images, "--all", help="Explain every test image (implies --stream)."
        ),
        selection: str = typer.Option(
            scale.selection, help="Streamed per-class choice: same (as in memory) | first (stop early)."
        ),
        shard_size: int = typer.Option(scale.shard_size, help="Images per shard (multiple of --batch-size)."),
        loader_workers: int = typer.Option(scale.loader_workers, help="Processes decoding images."),
        ray: bool = typer.Option(scale.ray, "--ray", help="Run on a local Ray runtime (implies --stream)."),
        ray_address: str = typer.Option(
            None, help="Join the Ray cluster at HOST:PORT (implies --stream); see docs/scale.md."
        ),
        workers: int = typer.Option(scale.workers, help="Ray actors, each loading the model once."),
    ) -> None:
        """Select the feature maps that explain each decision (QA-fGradCAM) and write them to OUT."""
        from qxai.io import read_json
        from qxai.pipeline.explain import run_explain

        if (penalty_lambda is None) != (penalty_k is None):
            raise QxaiError("--penalty-lambda and --penalty-k go together; give both or neither")
        if num_reads is not None and num_reads < 1:
            raise QxaiError(f"--num-reads must be at least 1, got {num_reads}")
        if qubo_from:
            qubo = QuboOptions.of(read_json(qubo_from).get("qubo"))
        else:
            penalty = None if penalty_lambda is None else (penalty_lambda, penalty_k)
            qubo = QuboOptions(beta=beta, normalise=normalise, penalty=penalty, dead_eps=dead_eps)
        settings = ExplainSettings(
            dataset=dataset, layer=layer, solver=solver, qubo=qubo, ground_truth=ground_truth,
            ground_time_limit=ground_time_limit,
            solver_options={} if num_reads is None else {"num_reads": num_reads}, per_class=per_class,
            batch_size=batch_size, seed=seed,
        )  # fmt: skip
        scaled = StreamSettings.from_options(
            stream=stream, limit=limit, all_images=all_images, selection=selection, shard_size=shard_size,
            loader_workers=loader_workers, ray=ray, ray_address=ray_address, workers=workers,
        )  # fmt: skip
        doc = run_explain(out, model=model, settings=settings, stream=scaled)
        summary = doc["summary"]
        optimal = summary["optimal_rate"]
        hit = (
            f", optimum reached on {optimal:.1%} of {summary['ground_state_known']} certified"
            f" ({summary['share_certified']:.0%} of solved problems)"
            if optimal == optimal
            else ""
        )
        console = Console()
        console.print(
            f"explained [bold]{summary['explained']}[/] of {summary['images']} images "
            f"with [bold]{solver}[/]: "
            f"{summary['mean_selected']:.2f} of {summary['mean_variables']:.2f} maps selected on average"
            f"{hit}, {summary['seconds_per_image'] * 1e3:.1f} ms per image → {out}"
        )
        for record in doc["degenerate"]:
            console.print(f"[yellow]warning:[/] {record['sentence']}")
        if "classes without images" in summary:
            console.print(
                f"[yellow]warning:[/] no image of class(es) {summary['classes without images']} "
                "(no correctly classified test image, or none in the sample)"
            )
