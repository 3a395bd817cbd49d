"""``qxai train``: train a model by name and save a safe checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from qxai.errors import QxaiError


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        dataset: str = typer.Option("mnist", help="mnist | digits | cells | imagefolder:PATH | stl10:ROOT"),
        arch: str = typer.Option("reduced-cnn", help="reduced-cnn | qixai-cnn | resnet18-reduced"),
        model_file: str = typer.Option(None, help="Train your own model instead: path.py:ClassName."),
        maps: int = typer.Option(16, help="Feature maps N_f of the `reduce` block."),
        epochs: int = typer.Option(5, min=1),
        batch_size: int = typer.Option(64, min=1),
        lr: float = typer.Option(2e-3),
        seed: int = typer.Option(0),
        image_size: int = typer.Option(None, help="Resize images (cells, imagefolder, stl10, digits)."),
        count: int = typer.Option(None, help="Number of generated images (cells)."),
        pretrained: bool = typer.Option(False, help="resnet18-reduced: start from local ImageNet weights."),
        weights: Path = typer.Option(None, help="resnet18-reduced: path of the ImageNet weights file."),
        download: bool = typer.Option(False, help="stl10: download if missing (needs internet)."),
        out: Path = typer.Option(Path("runs/model.pt"), help="Checkpoint to write."),
    ) -> None:
        """Train a model and report its train and test accuracy."""
        from qxai.pipeline.train import run_train, train_config

        options: dict[str, object] = {}
        if image_size is not None:
            options["image_size"] = image_size
        if count is not None:
            options["count"] = count
        if download:
            options["download"] = True
        hparams: dict[str, object] = {}
        if pretrained or weights:
            if arch != "resnet18-reduced":
                raise QxaiError("--pretrained and --weights apply only to --arch resnet18-reduced")
            from qxai.models.pretrained import find_resnet18_weights

            hparams["weights_path"] = str(weights or find_resnet18_weights())
        if model_file:
            if ".py:" not in model_file:
                raise QxaiError(f"--model-file takes path.py:ClassName, got '{model_file}'")
            arch = f"file:{Path(model_file.partition(':')[0]).resolve()}:{model_file.partition(':')[2]}"
        config = train_config(
            dataset, arch, maps=maps, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
            dataset_options=options, hparams=hparams,
        )  # fmt: skip
        saved = run_train(config, out)
        m = saved["metrics"]
        Console().print(
            f"[bold]{arch}[/] on [bold]{dataset}[/]: train accuracy {m['train_accuracy']:.4f}, "
            f"test accuracy [bold green]{m['test_accuracy']:.4f}[/] ({m['train_seconds']:.1f} s) → {out}"
        )
