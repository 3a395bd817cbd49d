"""The demo: from nothing to a report of every analysis, each stage isolated from the others' failures.

Stages, each writing into its own folder of the run:
``model`` (train, cached by a hash of its config) → ``explain`` (QA with ``batch-sa``) →
``evaluate`` (QA and every baseline, scored) → ``heads`` (a Transformer only: QA over attention heads
against the head-ablation oracle, and the token-grid pictures; :func:`qxai.pipeline.heads.
run_heads_stage`) → ``anneal`` (state-vector physics on the explanation
QUBOs) → ``analyze`` (QIXAI layer analyses) → ``planted`` (the planted benchmark: ``planted-cnn``
trained per difficulty, every map-selecting method scored against its designated maps, its masks and
the causal oracle; :func:`qxai.pipeline.planted.run_planted_stage`) → ``report.html``. A stage that
fails is recorded with its error in ``stages.json`` and shown as failed in the report; the others
still run.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console

from qxai.errors import QxaiError
from qxai.io import read_json, write_json
from qxai.pipeline.stage import Figure, write_stage
from qxai.pipeline.train import cached_training
from qxai.stages import STAGES

if TYPE_CHECKING:
    from qxai.pipeline.planted import PlantedSettings

_console = Console(stderr=True)

#: the methods every demo compares
METHODS = ("qa", "gradcam", "gradcam++", "eigencam", "ig", "shap", "lime", "lrp")
#: a Transformer's methods: LRP's zennit rules have none for LayerNorm and softmax attention (its place
#: goes to Chefer et al.'s relevance)
TRANSFORMER_METHODS = ("qa", "gradcam", "gradcam++", "eigencam", "ig", "shap", "lime", "rollout", "chefer",
                       "qa-heads")  # fmt: skip
#: the stages a demo runs unless told (``heads`` only for a Transformer)
STAGE_ORDER = ("model", "explain", "evaluate", "heads", "anneal", "analyze", "planted")


@dataclass
class DemoSettings:
    """What the demo runs; the defaults fit in about ten minutes on two cores."""

    dataset: str = "mnist"
    arch: str = "reduced-cnn"
    maps: int = 16
    epochs: int = 5
    seed: int = 0
    per_class: int = 20
    # empty: METHODS, plus TRANSFORMER_METHODS for a Transformer arch
    methods: tuple[str, ...] = ()
    taus: tuple[float, ...] = (10.0, 50.0, 100.0)
    max_qubits: int = 12
    anneal_per_class: int = 4
    analysis_images: int = 1000
    lime_samples: int = 64
    curve_steps: int = 10
    ig_steps: int = 24
    shap_samples: int = 8
    sanity_images: int = 16
    # empty: STAGE_ORDER, without ``heads`` unless the arch is a Transformer
    stages: tuple[str, ...] = ()
    dataset_options: dict[str, Any] = field(default_factory=dict)
    quantum: bool = False  # add the hybrid quantum–classical model as an extra stage
    # the planted stage (its own data and model; drop "planted" from stages to skip it)
    planted_difficulties: tuple[str, ...] = ("easy", "distractors", "overlap", "redundant", "partial")
    planted_methods: tuple[str, ...] = ("qa", "gradcam", "gradcam++", "eigencam")
    planted_per_class: int = 5
    planted_count: int = 1000
    planted_epochs: int = 1
    # robustness and stability (opt-in metrics): copies per image, and the methods that explain in
    # milliseconds (IG, SHAP and LIME would take minutes each at the same number of copies)
    robustness_samples: int = 50
    robustness_methods: tuple[str, ...] = ("qa", "gradcam", "gradcam++", "eigencam", "lrp")

    def __post_init__(self) -> None:
        """Every option is checked here, before stage 1 trains anything."""
        from qxai.explain.registry import parse_methods
        from qxai.models.registry import ARCHITECTURES, is_transformer

        if self.arch not in ARCHITECTURES:
            from qxai.errors import unknown_name

            raise unknown_name("architecture", self.arch, ARCHITECTURES)
        transformer = is_transformer(self.arch)
        known = (*STAGE_ORDER, "quantum")
        unknown = [s for s in self.stages if s not in known]
        if unknown:
            raise QxaiError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(known)}")
        if not self.stages:
            self.stages = tuple(s for s in STAGE_ORDER if s != "heads" or transformer)
        elif "heads" in self.stages and not transformer:
            raise QxaiError(
                f"the heads stage needs a Transformer and '{self.arch}' has no attention heads; "
                "use --arch vit-tiny or leave 'heads' out of --stages"
            )
        if self.quantum and "quantum" not in self.stages:
            self.stages = (*self.stages, "quantum")
        defaults = TRANSFORMER_METHODS if transformer else METHODS
        self.methods = tuple(parse_methods(self.methods or defaults))
        for name in (
            "maps",
            "epochs",
            "per_class",
            "anneal_per_class",
            "analysis_images",
            "max_qubits",
            "lime_samples",
            "curve_steps",
            "ig_steps",
            "shap_samples",
            "sanity_images",
            "robustness_samples",
        ):
            if int(getattr(self, name)) < 1:
                option = f"--{name.replace('_', '-')}"
                value = getattr(self, name)
                raise QxaiError(f"{option} must be at least 1, got {value}; give a positive count")
        if self.seed < 0:
            raise QxaiError(f"--seed must be ≥ 0, got {self.seed}; use 0, 1, 2, …")
        if not self.taus or any(not (0 < t < 1e5) for t in self.taus):
            raise QxaiError(f"--taus must be positive annealing times below 1e5, got {list(self.taus)}")
        from qxai.data.registry import check_spec

        check_spec(self.dataset)
        if "planted" in self.stages:
            self.planted_settings()  # its options fail now, not after the other stages

    def planted_settings(self) -> PlantedSettings:
        """The planted stage's settings (validated when built)."""
        from qxai.pipeline.planted import PlantedSettings

        return PlantedSettings(
            difficulties=tuple(self.planted_difficulties), methods=tuple(self.planted_methods),
            per_class=self.planted_per_class, count=self.planted_count, epochs=self.planted_epochs,
            seed=self.seed,
        )  # fmt: skip


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["qxai", "torch", "torchvision", "numpy", "scipy", "dimod", "dwave-samplers", "openjij", "captum",
             "grad-cam", "zennit", "shap", "lime", "scikit-learn", "transformers", "matplotlib"]  # fmt: skip
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def model_stage(settings: DemoSettings, out: Path) -> dict[str, Any]:
    """Train the model (or reuse the cached one with the same config hash) into ``out/model``."""
    from qxai.pipeline.train import train_config

    config = train_config(
        settings.dataset, settings.arch, maps=settings.maps, epochs=settings.epochs, seed=settings.seed,
        batch_size=64, lr=2e-3, dataset_options=settings.dataset_options,
    )  # fmt: skip
    cached, saved, reused, key = cached_training(config)
    folder = out / "model"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, folder / "model.pt")
    metrics = saved["metrics"]
    from qxai.models.loading import load_model_and_data
    from qxai.probe import LayerProbe

    md = load_model_and_data(str(folder / "model.pt"))
    with LayerProbe(md.model, md.layer) as probe, torch.no_grad():
        md.model(md.split.test.images[:1])
    summary = {
        "architecture": settings.arch, "dataset": settings.dataset, "explained layer": md.layer,
        "feature maps at that layer (N_f)": int(probe.output(md.layer).shape[1]),
        "parameters": sum(p.numel() for p in md.model.parameters()),
        "train accuracy": metrics["train_accuracy"], "test accuracy": metrics["test_accuracy"],
        "training seconds": metrics["train_seconds"], "reused from cache": reused, "config hash": key,
    }  # fmt: skip
    doc = {"config": saved, "summary": summary}
    from qxai.evaluate.figures import confusion_figure
    from qxai.models import predict

    predicted = predict(md.model, md.split.test.images).numpy()
    fig = confusion_figure(md.split.test.labels.numpy(), predicted, md.class_names)
    figure = Figure("confusion.png", "Confusion matrix", "on the held-out test split")
    write_stage(folder, STAGES["model"].main, doc, figures=[(figure, fig)])
    return summary


def quantum_stage(settings: DemoSettings, out: Path) -> dict[str, Any]:
    """The hybrid quantum–classical model (``hybrid-vqc``) on the demo's data set, trained (cached) and
    analysed into ``out/quantum``: the layer analyses plus the quantum-state quantities
    (docs/quantum.md)."""
    from qxai.pipeline.analyze import AnalyzeSettings, run_analyze
    from qxai.pipeline.train import train_config

    config = train_config(
        settings.dataset, "hybrid-vqc", maps=None, epochs=settings.epochs, seed=settings.seed, batch_size=64,
        lr=2e-3, dataset_options=settings.dataset_options,
    )  # fmt: skip
    cached, _, _, _ = cached_training(config)
    folder = out / "quantum"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, folder / "hybrid.pt")
    analyze_settings = AnalyzeSettings(samples=settings.analysis_images, seed=settings.seed)
    return run_analyze(folder, model=str(folder / "hybrid.pt"), settings=analyze_settings)


def _stage_functions(settings: DemoSettings, out: Path) -> dict[str, Callable[[], dict[str, Any]]]:
    ckpt = str(out / "model" / "model.pt")

    def explain() -> dict[str, Any]:
        from qxai.pipeline.explain import ExplainSettings, run_explain

        return run_explain(
            out / "explain",
            model=ckpt,
            settings=ExplainSettings(per_class=settings.per_class, seed=settings.seed),
        )

    def evaluate() -> dict[str, Any]:
        from qxai.evaluate import EvalSettings, select_metrics
        from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate

        # digits sit on black, so deleting to zero is natural; photographs and smears are not
        fill = "zero" if settings.dataset in ("mnist", "digits") else "blur"
        # every default metric, plus the opt-in robustness and stability groups for the fast methods
        robust = ",".join(m for m in settings.robustness_methods if m in settings.methods)
        metrics = [m.name for m in select_metrics(None)] + (["robustness", "stability"] if robust else [])
        scoring = EvalSettings(
            steps=settings.curve_steps, sanity_images=settings.sanity_images, deletion_fill=fill,
            metric_settings={"max_sensitivity": {"samples": settings.robustness_samples, "methods": robust}},
        )
        return run_evaluate(out / "evaluate", model=ckpt, settings=EvaluateSettings(
            methods=settings.methods, metrics=tuple(metrics), per_class=settings.per_class,
            seed=settings.seed,
            lime_samples=settings.lime_samples, ig_steps=settings.ig_steps,
            shap_samples=settings.shap_samples,
            scoring=scoring,
        ))  # fmt: skip

    def anneal() -> dict[str, Any]:
        from qxai.anneal.physics.study import AnnealSettings
        from qxai.models.registry import is_transformer
        from qxai.pipeline.anneal import run_anneal

        # the authors' driver and energy convention, so that the paper's annealing claims are testable;
        # a Transformer's token-channel QUBOs (d ≈ 30) are beyond a state vector: its heads' are not
        anneal_settings = AnnealSettings.authors(
            per_class=settings.anneal_per_class, taus=tuple(settings.taus), max_qubits=settings.max_qubits,
            seed=settings.seed, target="heads" if is_transformer(settings.arch) else "maps",
        )  # fmt: skip
        return run_anneal(out / "anneal", model=ckpt, settings=anneal_settings)

    def analyze() -> dict[str, Any]:
        from qxai.pipeline.analyze import AnalyzeSettings, run_analyze

        analyze_settings = AnalyzeSettings(samples=settings.analysis_images, seed=settings.seed)
        return run_analyze(out / "analyze", model=ckpt, settings=analyze_settings)

    def heads() -> dict[str, Any]:
        from qxai.pipeline.heads import HeadsSettings, run_heads_stage

        chosen = HeadsSettings(per_class=settings.per_class, seed=settings.seed)
        return run_heads_stage(out / "heads", ckpt, chosen)

    def planted() -> dict[str, Any]:
        from qxai.pipeline.planted import run_planted_stage

        return run_planted_stage(out / "planted", settings.planted_settings())

    return {
        "model": lambda: model_stage(settings, out), "explain": explain, "evaluate": evaluate,
        "heads": heads, "anneal": anneal, "analyze": analyze, "planted": planted,
        "quantum": lambda: quantum_stage(settings, out),
    }  # fmt: skip


def run_demo(out: str | os.PathLike[str], settings: DemoSettings | None = None,
             command: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run every stage into ``out``, then write ``out/report.html`` and ``out/metrics.json``.

    Returns the contents of ``out/stages.json``.
    """
    settings = settings or DemoSettings()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QxaiError(f"--out {out} is a file; give a folder for the run")
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "title": f"qxai report — {settings.arch} on {settings.dataset}",
        "subtitle": "QA feature-map selection, baselines, the planted benchmark, annealing physics and QIXAI "
        "layer analyses",
        "command": command or " ".join(["qxai", *sys.argv[1:]]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "versions": _versions(),
        "settings": asdict(settings),
        "stages": {},
    }
    functions = _stage_functions(settings, out)
    for number, name in enumerate(settings.stages, 1):
        _console.rule(f"[bold]stage {number}/{len(settings.stages)}: {name}")
        start = time.perf_counter()
        # recorded before the stage runs: a run killed now shows this stage as interrupted
        meta["stages"][name] = {"status": "interrupted", "seconds": 0.0}
        write_json(out / STAGES["demo"].main, meta)
        try:
            # the quantum and planted stages train their own models
            if name not in ("model", "quantum", "planted") and not (out / "model" / "model.pt").is_file():
                raise QxaiError("no trained model: the model stage did not complete")
            summary = functions[name]()
            record = {"status": "ok", "summary": _flat(summary)}
        except Exception as err:  # a failed stage is reported; the rest still runs
            if os.environ.get("QXAI_DEBUG") == "1":
                raise
            message = str(err).strip().splitlines()[0] if str(err).strip() else ""
            record = {"status": "failed", "error": f"{type(err).__name__}: {message}"}
            _console.print(f"[red]stage {name} failed:[/] {record['error']}")
        record["seconds"] = round(time.perf_counter() - start, 2)
        meta["stages"][name] = record
        write_json(out / STAGES["demo"].main, meta)
    # the run's top-level metrics.json: the evaluation's scores and every paper claim checked
    from qxai.evaluate.claims import collect_claims

    scored = out / "evaluate" / STAGES["evaluate"].main
    top = read_json(scored) if scored.is_file() else {}
    top = {k: v for k, v in top.items() if k not in ("figures", "files", "run_id")}
    write_json(out / STAGES["evaluate"].main, {**top, "claims": collect_claims(out)})
    from qxai.report import build_report

    build_report(out)
    return meta


def _flat(summary: Any) -> dict[str, Any]:
    """The headline numbers of a stage's return value (its ``summary`` when it has one)."""
    if isinstance(summary, dict):
        inner = summary.get("summary", summary)
        return {k: v for k, v in inner.items() if isinstance(v, int | float | str | bool) or v is None}
    return {}
