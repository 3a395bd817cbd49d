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
    from qxai.cli import options
    from qxai.cli.options import setting
    from qxai.pipeline.explain import ExplainSettings, StreamSettings

    E = ExplainSettings

    @app.command()
    def explain(
        model: Path = typer.Option(
            None, "--model", help="Checkpoint written by `qxai train` (or file.py:Class)."
        ),
        hf_model: Path = options.hf_model(),
        model_file: str = options.model_file(),
        trust_model_code: bool = options.trust_model_code(),
        dataset: str = options.dataset(),
        layer: str = typer.Option(
            None, help="Layer to explain: a conv layer or a Transformer block/norm (default: the model's)."
        ),
        tokens: int = options.tokens(E),
        grid: str = options.grid(E),
        solver: str = setting(E, "solver", help=f"QUBO solver: {solver_help()}."),
        beta: float = options.beta(),
        normalise: str = options.normalise(),
        penalty: str = options.penalty(),
        dead_eps: float = options.dead_eps(),
        qubo_from: Path = options.qubo_from(),
        num_reads: int = typer.Option(None, help="Reads per image for the solver (solver default if unset)."),
        ground_truth: str = setting(E, "ground_truth", help="Exact optimum check: auto | always | never."),
        ground_time_limit: float = setting(
            E, "ground_time_limit", help="Seconds per image for the certifying solver above enumeration."
        ),
        per_class: int = setting(E, "per_class", help="Correctly classified test images per class."),
        batch_size: int = setting(E, "batch_size"),
        seed: int = setting(E, "seed"),
        out: Path = typer.Option(Path("runs/explain"), help="Output folder."),
        stream: bool = options.stream("explain"),
        limit: int = options.limit("explain"),
        all_images: bool = options.all_images("explain"),
        selection: str = options.selection(),
        shard_size: int = options.shard_size(),
        loader_workers: int = options.loader_workers(),
        ray: bool = options.ray(),
        ray_address: str = options.ray_address(),
        workers: int = options.workers(),
    ) -> None:
        """Select the feature maps that explain each decision (QA-fGradCAM) and write them to OUT."""
        from qxai.pipeline.explain import run_explain

        source = options.model_source(model, hf_model)  # --model or --hf-model, exactly one
        if num_reads is not None and num_reads < 1:
            raise QxaiError(f"--num-reads must be at least 1, got {num_reads}")
        qubo = QuboOptions.resolve(
            qubo_from, beta=beta, normalise=normalise, penalty=penalty, dead_eps=dead_eps
        )
        settings = ExplainSettings(
            dataset=dataset, layer=layer, tokens=tokens, grid=grid, solver=solver, qubo=qubo,
            ground_truth=ground_truth, ground_time_limit=ground_time_limit,
            solver_options={} if num_reads is None else {"num_reads": num_reads}, per_class=per_class,
            batch_size=batch_size, seed=seed,
        )  # fmt: skip
        scaled = StreamSettings.from_options(
            stream=stream, limit=limit, all_images=all_images, selection=selection, shard_size=shard_size,
            loader_workers=loader_workers, ray=ray, ray_address=ray_address, workers=workers,
        )  # fmt: skip
        doc = run_explain(out, model=source, settings=settings, stream=scaled)
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
        if "layer_layout" in doc:
            console.print(f"layer '{doc['layer']}' read as {doc['layer_layout']}")
        for record in doc["degenerate"]:
            console.print(f"[yellow]warning:[/] {record['sentence']}")
        if "classes without images" in summary:
            console.print(
                f"[yellow]warning:[/] no image of class(es) {summary['classes without images']} "
                "(no correctly classified test image, or none in the sample)"
            )
