"""``qxai train``: train a model by name and save a safe checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from qxai.cli.options import setting
from qxai.data.registry import help_text as dataset_help
from qxai.errors import QxaiError
from qxai.models.train import TrainSettings
from qxai.models.user import split_model_spec
from qxai.pipeline.demo import DemoSettings


def register(app: typer.Typer) -> None:
    from qxai.models.registry import ARCHITECTURES

    @app.command()
    def train(
        # what to train: the demo's model unless told otherwise
        dataset: str = setting(DemoSettings, "dataset", help=dataset_help()),
        arch: str = setting(DemoSettings, "arch", help=f"Architecture: {' | '.join(ARCHITECTURES)}."),
        model_file: str = typer.Option(None, help="Train your own model instead: path.py:ClassName."),
        maps: int = setting(DemoSettings, "maps", help="Feature maps N_f of the `reduce` block."),
        qubits: int = typer.Option(None, help="hybrid-vqc: qubits of the variational circuit (default 8)."),
        qlayers: int = typer.Option(None, help="hybrid-vqc: variational layers (default 4; 0 removes them)."),
        epochs: int = setting(TrainSettings, "epochs", min=1),
        batch_size: int = setting(TrainSettings, "batch_size", min=1),
        lr: float = setting(TrainSettings, "lr", help="Peak learning rate (positive, finite)."),
        seed: int = setting(TrainSettings, "seed", help="Seed of the split, the weights and the shuffling."),
        image_size: int = typer.Option(
            None, min=1, help="Resize images (cells, imagefolder, stl10, digits)."
        ),
        count: int = typer.Option(None, min=2, help="Number of generated images (cells, planted)."),
        difficulty: str = typer.Option(
            None, help="planted: easy | distractors | overlap | redundant | partial."
        ),
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
        if difficulty is not None:
            from qxai.data.planted import check_difficulty

            if dataset != "planted":
                raise QxaiError(f"--difficulty applies only to --dataset planted; leave it out for {dataset}")
            check_difficulty(difficulty)
            options["difficulty"] = difficulty
        hparams: dict[str, object] = {}
        if pretrained or weights:
            if arch != "resnet18-reduced":
                raise QxaiError("--pretrained and --weights apply only to --arch resnet18-reduced")
            from qxai.models.pretrained import find_resnet18_weights

            hparams["weights_path"] = str(weights or find_resnet18_weights())
        for name, value in (("qubits", qubits), ("qlayers", qlayers)):
            if value is None:
                continue
            if arch != "hybrid-vqc":
                raise QxaiError(f"--{name} applies only to --arch hybrid-vqc; leave it out for {arch}")
            if value < (1 if name == "qubits" else 0):
                raise QxaiError(f"--{name} must be at least {1 if name == 'qubits' else 0}, got {value}")
            hparams[name] = value
        if model_file:
            if ".py:" not in model_file:
                raise QxaiError(f"--model-file takes path.py:ClassName, got '{model_file}'")
            path, class_name = split_model_spec(model_file)
            arch = f"file:{path.resolve()}:{class_name}"
        config = train_config(
            dataset, arch, maps=maps, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
            dataset_options=options, hparams=hparams,
        )  # fmt: skip
        saved = run_train(config, out)
        m = saved["metrics"]
        Console().print(
            f"[bold]{model_file or arch}[/] on [bold]{dataset}[/]: train accuracy {m['train_accuracy']:.4f}, "
            f"test accuracy [bold green]{m['test_accuracy']:.4f}[/] ({m['train_seconds']:.1f} s) → {out}"
        )
