"""``qxai analyze``: the QIXAI layer analyses (spectra, similarity, mutual information, IG) of a model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def register(app: typer.Typer) -> None:
    """Add the ``analyze`` command to ``app``."""

    @app.command()
    def analyze(
        model: str = typer.Option(None, help="qxai checkpoint (image model)."),
        dataset: str = typer.Option(None, help="Data set for --model (default: the one it was trained on)."),
        builtin: str = typer.Option(None, help="lstm | transformer: train a built-in sequence model here."),
        hf_model: Path = typer.Option(
            None, help="Local Hugging Face classifier directory (never downloads)."
        ),
        layers: str = typer.Option(
            None, help="Comma-separated layers (default: the model's analysis layers)."
        ),
        samples: int = typer.Option(500, min=8, help="Inputs whose activations are analysed."),
        analyses: str = typer.Option("spectrum,similarity,mi,ig", help="Which analyses to run."),
        top_k: int = typer.Option(
            5, min=1, help="Report the cumulative variance share of the top k components."
        ),
        mi_layers: str = typer.Option(
            None, help="Two layers A,B for mutual information (default: first two)."
        ),
        mi_method: str = typer.Option("gcmi", help="gcmi | binned"),
        mi_permutations: int = typer.Option(100, min=0, help="Permutations for MI p-values (0: none)."),
        ig_examples: int = typer.Option(4, min=0, help="Inputs shown with Integrated Gradients."),
        ig_steps: int = typer.Option(32, min=2, help="Integration steps of IG."),
        spatial: bool = typer.Option(False, help="Keep conv maps spatially instead of average pooling."),
        time: str = typer.Option("mean", help="Pool sequences over time: mean | last | first | steps."),
        memory_mb: float = typer.Option(1024.0, help="Memory budget for captured activations."),
        seed: int = typer.Option(0),
        out: Path = typer.Option(Path("runs/analyze"), help="Output folder."),
    ) -> None:
        """Spectra, entropy, layer similarity, mutual information between maps, and Integrated Gradients."""
        from qxai.errors import QxaiError
        from qxai.pipeline.analyze import run_analyze

        pair = _split(mi_layers)
        if pair is not None and len(pair) != 2:
            raise QxaiError(f"--mi-layers takes two layers A,B, got {mi_layers!r}")
        summary = run_analyze(
            out,
            checkpoint=model,
            dataset=dataset,
            builtin=builtin,
            hf_model=None if hf_model is None else str(hf_model),
            layers=_split(layers),
            samples=samples,
            analyses=tuple(_split(analyses) or ()),
            top_k=top_k,
            mi_layers=None if pair is None else (pair[0], pair[1]),
            mi_method=mi_method,
            mi_permutations=mi_permutations,
            ig_examples=ig_examples,
            ig_steps=ig_steps,
            spatial=spatial,
            time=time,
            memory_mb=memory_mb,
            seed=seed,
        )
        console = Console()
        for key, value in summary.items():
            console.print(
                f"  {key}: [bold]{value:.4g}[/]" if isinstance(value, float) else f"  {key}: [bold]{value}[/]"
            )
        console.print(f"→ {out / 'analysis.json'}")
