"""``qxai analyze``: the QIXAI layer analyses (spectra, similarity, mutual information, IG) of a model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def register(app: typer.Typer) -> None:
    """Add the ``analyze`` command to ``app``."""
    from qxai.cli import options
    from qxai.cli.options import setting
    from qxai.pipeline.analyze import AnalyzeSettings

    A = AnalyzeSettings  # the defaults, written once in the settings class

    @app.command()
    def analyze(
        model: str = typer.Option(None, help="qxai checkpoint, file.py:Class or TorchScript (image model)."),
        model_file: str = options.model_file(),
        trust_model_code: bool = options.trust_model_code(),
        dataset: str = options.dataset(),
        builtin: str = typer.Option(None, help="lstm | transformer: train a built-in sequence model here."),
        hf_model: Path = typer.Option(None, help="Local Hugging Face model directory (never downloads)."),
        texts: Path = typer.Option(
            None, help="With --hf-model: texts to analyse, one per line or CSV/TSV with text[,label] columns."
        ),
        layers: str = typer.Option(
            None, help="Comma-separated layers (default: the model's analysis layers, else its conv/linear)."
        ),
        samples: int = setting(A, "samples", help="Inputs whose activations are analysed."),
        analyses: str = setting(A, "analyses", help="Which analyses to run."),
        top_k: int = setting(
            A, "top_k", help="Report the cumulative variance share of the top k components."
        ),
        bootstrap: int = setting(
            A, "bootstrap", help="Bootstrap resamples of the top-k share's interval (0: none)."
        ),
        mi_layers: str = typer.Option(
            None, help="Two layers A,B for mutual information (default: first two)."
        ),
        mi_method: str = setting(A, "mi_method", help="gcmi | binned"),
        mi_permutations: int = setting(
            A, "mi_permutations", help="Permutations for MI p-values (0: none; analytic ones always)."
        ),
        fdr: float = setting(A, "fdr", help="Benjamini–Hochberg level on the analytic MI p-values."),
        ig_examples: int = setting(A, "ig_examples", help="Inputs shown with Integrated Gradients."),
        ig_steps: int = setting(A, "ig_steps", help="Integration steps of IG."),
        spatial: bool = setting(A, "spatial", help="Keep conv maps spatially instead of average pooling."),
        time: str = setting(A, "time", help="Pool sequences over time: mean | last | first | steps."),
        quantum: bool = setting(
            A,
            "quantum",
            help="Analyse the model's quantum layers (states, entanglement) when it has any.",
        ),
        memory_mb: float = setting(A, "memory_mb", help="Memory budget for captured activations."),
        epochs: int = typer.Option(None, help="Training epochs of a --builtin model (default: its own)."),
        seed: int = setting(A, "seed"),
        out: Path = typer.Option(Path("runs/analyze"), help="Output folder."),
    ) -> None:
        """Spectra, entropy, layer similarity, mutual information between maps, and Integrated Gradients."""
        from qxai.analysis.subjects import SubjectSource
        from qxai.pipeline.analyze import run_analyze

        layer_list = _split(layers)
        pair = _split(mi_layers)
        # every option is validated here, before a model is loaded or trained
        settings = AnalyzeSettings(
            samples=samples,
            analyses=tuple(_split(analyses) or ()),
            top_k=top_k,
            bootstrap=bootstrap,
            mi_layers=None if pair is None else tuple(pair),  # type: ignore[arg-type]
            mi_method=mi_method,
            mi_permutations=mi_permutations,
            fdr=fdr,
            ig_examples=ig_examples,
            ig_steps=ig_steps,
            spatial=spatial,
            time=time,
            quantum=quantum,
            memory_mb=memory_mb,
            seed=seed,
        )
        source = SubjectSource(
            checkpoint=model,
            dataset=dataset,
            builtin=builtin,
            hf_model=None if hf_model is None else str(hf_model),
            texts=None if texts is None else str(texts),
            layers=None if layer_list is None else tuple(layer_list),
            epochs=epochs,
        )
        doc = run_analyze(out, model=source, settings=settings)
        console = Console()
        for note in doc["notes"]:
            console.print(f"  note: {note}")
        for key, value in doc["summary"].items():
            console.print(
                f"  {key}: [bold]{value:.4g}[/]" if isinstance(value, float) else f"  {key}: [bold]{value}[/]"
            )
        console.print(f"→ {out / 'analysis.json'}")
