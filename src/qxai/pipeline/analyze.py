"""The ``analyze`` stage: the QIXAI layer analyses of a model, written to ``out/analysis.json`` + figures.

Three parts, each usable alone:

* :func:`qxai.analysis.subjects.load_subject` — the model and its inputs (:class:`Subject`);
* :func:`analyze` — captures the subject's activations and runs the chosen analyses
  (:data:`qxai.pipeline.analyze_steps.STEPS`) on a typed :class:`AnalysisContext`; returns the
  document, its arrays and its figures without writing anything;
* :func:`run_analyze` — both, then writes the stage folder through
  :func:`qxai.pipeline.stage.write_stage`.

Cost is set by :class:`AnalyzeSettings`: ``samples`` (inputs captured), ``mi_permutations``,
``bootstrap`` (resamples of the spectrum interval), ``ig_examples`` and which ``analyses`` run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qxai.analysis.capture import TIME_MODES, Activations, capture_activations, capture_transformer
from qxai.analysis.claims import analysis_claims
from qxai.analysis.mutual_info import METHODS as MI_METHODS
from qxai.analysis.spectrum import LayerSpectrum, layer_spectrum
from qxai.analysis.subjects import Subject, SubjectSource, load_subject
from qxai.errors import QxaiError
from qxai.pipeline.stage import Figure, write_stage
from qxai.progress import make_progress
from qxai.seeding import seed_everything
from qxai.stages import STAGES

ANALYSES = ("spectrum", "similarity", "mi", "ig")


@dataclass(frozen=True)
class AnalyzeSettings:
    """Everything that decides what ``qxai analyze`` computes (defaults written here only).

    ``mi_layers`` None picks the first two captured layers (LSTM: its input gate and output;
    Transformers: the second and last hidden layers). ``fdr`` is the Benjamini–Hochberg level applied
    to the MI p-values. ``bootstrap`` resamples give the top-k share's interval (0: none). An analysis
    the input cannot support (MI on fewer than 8 inputs) is skipped with its reason in ``skipped``.
    ``quantum`` runs the quantum-layer analysis when the model has quantum layers. ``controls`` runs
    the MI and similarity analyses again on a randomly initialised copy of the model and on
    position-shuffled inputs (:mod:`qxai.analysis.controls`; images and signals), with
    ``control_resamples`` paired bootstrap resamples; the claims compare the trained model with them.
    """

    samples: int = 500
    analyses: tuple[str, ...] = ANALYSES
    top_k: int = 5
    bootstrap: int = 1000
    mi_layers: tuple[str, str] | None = None
    mi_method: str = "gcmi"
    mi_permutations: int = 100
    mi_top: int = 10
    fdr: float = 0.05
    ig_examples: int = 4
    ig_steps: int = 32
    spatial: bool = False
    time: str = "mean"
    gates: bool = True
    quantum: bool = True
    memory_mb: float = 1024.0
    controls: bool = True
    control_resamples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "analyses", tuple(self.analyses))
        unknown = [a for a in self.analyses if a not in ANALYSES]
        if unknown:
            from qxai.errors import unknown_name

            raise unknown_name("analysis", unknown[0], ANALYSES)
        if self.samples < 2:
            # each analysis states what it needs beyond this (MI: 8 inputs); it is skipped with its
            # reason when the input gives less, and the others run
            raise QxaiError(f"--samples must be at least 2 (a spectrum needs two inputs), got {self.samples}")
        if self.mi_method not in MI_METHODS:
            from qxai.errors import unknown_name

            raise unknown_name("MI method", self.mi_method, MI_METHODS)
        if self.time not in TIME_MODES:
            from qxai.errors import unknown_name

            raise unknown_name("time pooling", self.time, TIME_MODES)
        if self.mi_layers is not None:
            if len(self.mi_layers) != 2:
                raise QxaiError(f"--mi-layers takes two layers A,B, got {self.mi_layers!r}")
            object.__setattr__(self, "mi_layers", (str(self.mi_layers[0]), str(self.mi_layers[1])))
        checks = {
            "--top-k": (self.top_k, 1),
            "--bootstrap": (self.bootstrap, 0),
            "--mi-permutations": (self.mi_permutations, 0),
            "--mi-top": (self.mi_top, 1),
            "--ig-examples": (self.ig_examples, 0),
            "--ig-steps": (self.ig_steps, 2),
            "--control-resamples": (self.control_resamples, 10),
            "--seed": (self.seed, 0),
        }
        for flag, (value, low) in checks.items():
            if int(value) != value or value < low:
                raise QxaiError(f"{flag} must be an integer ≥ {low}, got {value}")
        if not 0 < self.fdr < 1:
            raise QxaiError(f"--fdr must be between 0 and 1, got {self.fdr}")
        if not np.isfinite(self.memory_mb) or self.memory_mb <= 0:
            raise QxaiError(f"--memory-mb must be a positive number, got {self.memory_mb}")


@dataclass
class AnalysisContext:
    """What the analysis steps share: the subject, its activations and spectra, the settings, and the
    document, arrays and figures being built."""

    subject: Subject
    settings: AnalyzeSettings
    acts: Activations
    spectra: dict[str, LayerSpectrum]
    mi_layers: tuple[str, str] | None
    doc: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    figures: list[tuple[Figure, Any]] = field(default_factory=list)
    controls: dict[str, Activations] = field(default_factory=dict)

    def figure(self, file: str, title: str, caption: str, fig: Any) -> None:
        """Add a figure (written by the stage writer)."""
        self.figures.append((Figure(file, title, caption), fig))

    def note(self, text: str) -> None:
        self.doc["notes"].append(text)

    @property
    def summary(self) -> dict[str, Any]:
        return self.doc["summary"]


def _capture(subject: Subject, settings: AnalyzeSettings) -> Activations:
    if subject.kind == "transformer":
        return capture_transformer(
            subject.model, subject.inputs, subject.mask, time=settings.time, memory_mb=settings.memory_mb
        )
    return capture_activations(
        subject.model,
        subject.inputs,
        subject.layers,
        mask=subject.mask,
        spatial=settings.spatial,
        time=settings.time,
        gates=settings.gates and subject.kind == "lstm",
        memory_mb=settings.memory_mb,
    )


def _default_mi_pair(acts: Activations, kind: str) -> tuple[str, str] | None:
    names = list(acts.features)
    if kind == "lstm" and "lstm:input" in names:
        return "lstm:input", "lstm:output"
    if kind == "transformer":
        hidden = [n for n in names if acts.kinds[n] == "hidden"]
        return (hidden[1], hidden[-1]) if len(hidden) >= 3 else None
    return (names[0], names[1]) if len(names) >= 2 else None


def _quantum_layers(model: Any) -> list[str]:
    """Names of the model's quantum layers; [] when the hybrid-model module is absent."""
    try:
        from qxai.models.hybrid import find_quantum_layers
    except ImportError:
        return []
    return list(find_quantum_layers(model))


def _quantum_step(ctx: AnalysisContext) -> None:
    try:
        from qxai.analysis.quantum import quantum_analysis
    except ImportError:
        ctx.note("the model has quantum layers, but qxai.analysis.quantum is not available; skipped")
        return
    s = ctx.subject
    data, figs = quantum_analysis(
        s.model, s.inputs, s.labels, class_names=s.class_names, seed=ctx.settings.seed
    )
    ctx.doc["quantum"] = data
    ctx.figures.extend(figs)


def _control_activations(
    subject: Subject, settings: AnalyzeSettings, ctx: AnalysisContext
) -> dict[str, Activations]:
    """The activations of the controls (:mod:`qxai.analysis.controls`) on the subject's inputs: a
    randomly initialised copy of the model (seeded from the run seed) and the trained model on
    position-shuffled inputs; none for Transformers (a note says why)."""
    from dataclasses import replace

    from qxai.analysis.controls import random_network, shuffled_inputs

    if subject.kind == "transformer":
        ctx.note("MI and similarity controls are not run for Transformers (token ids cannot be shuffled "
                 "meaningfully, and a re-initialised pretrained model is not its architecture's prior)")
        return {}
    fresh, shuffled = random_network(subject.model, settings.seed)
    if shuffled:
        ctx.note(f"random-network control: modules without an initialiser had their parameters shuffled "
                 f"({', '.join(shuffled[:5])})")
    out = {"random network": _capture(replace(subject, model=fresh), settings)}
    permuted = shuffled_inputs(subject.inputs, subject.kind, settings.seed)
    if permuted is not None:
        out["shuffled input"] = _capture(replace(subject, inputs=permuted), settings)
    return out


def analyze(subject: Subject, settings: AnalyzeSettings | None = None) -> AnalysisContext:
    """Capture ``subject``'s activations and run ``settings.analyses`` on them.

    Returns the context: ``.doc`` (the analysis.json document), ``.arrays`` and ``.figures``.
    """
    from qxai.pipeline.analyze_steps import STEPS

    settings = settings or AnalyzeSettings()
    seed_everything(settings.seed)
    acts = _capture(subject, settings)
    doc: dict[str, Any] = {
        "settings": asdict(settings),
        "source": subject.info,
        "kind": subject.kind,
        "samples": acts.samples,
        "layers": {n: {"kind": acts.kinds[n], "shape": list(a.shape[1:])} for n, a in acts.features.items()},
        "figures": [],
        "summary": {"samples": acts.samples},
        "notes": [*subject.notes, *acts.notes],
    }
    if "test_accuracy" in subject.info:  # every image model's accuracy, a user's own included
        doc["summary"]["model test accuracy"] = subject.info["test_accuracy"]
    spectra = {n: layer_spectrum(acts.matrix(n)) for n in acts.features}
    for n, s in spectra.items():
        if s.constant:
            doc["notes"].append(
                f"layer '{n}' is constant over the {acts.samples} inputs: it carries no information"
            )
    if settings.mi_layers is not None:
        for name in settings.mi_layers:
            acts.matrix(name)  # an unknown layer is a one-line error with suggestions, before any work
    ctx = AnalysisContext(
        subject, settings, acts, spectra, settings.mi_layers or _default_mi_pair(acts, subject.kind), doc
    )
    if settings.controls and {"mi", "similarity"} & set(settings.analyses):
        ctx.controls = _control_activations(subject, settings, ctx)
    doc["skipped"] = {}
    with make_progress() as bar:
        task = bar.add_task("analyses", total=len(settings.analyses) + 1)
        for name in settings.analyses:
            bar.update(task, advance=1, description=f"analysis: {name}")
            try:
                STEPS[name](ctx)
            except QxaiError as err:  # run what can run: this one is skipped with its reason
                reason = str(err).splitlines()[0]
                doc["skipped"][name] = reason
                doc["summary"][f"skipped: {name}"] = reason
                ctx.note(f"{name} skipped: {reason}")
        if doc["skipped"] and len(doc["skipped"]) == len(settings.analyses):
            reasons = "; ".join(f"{k}: {v}" for k, v in doc["skipped"].items())
            raise QxaiError(f"no analysis can run on these {acts.samples} inputs ({reasons})")
        if settings.quantum and subject.kind == "image" and _quantum_layers(subject.model):
            bar.update(task, description="analysis: quantum layers")
            _quantum_step(ctx)
        bar.update(task, advance=1)
    if subject.kind == "transformer" and acts.attention_maps is not None:
        from qxai.analysis.figures import attention_figure

        ctx.figure(
            "attention.png",
            "Attention heads",
            "Mean attention of every head over the analysed inputs (valid queries).",
            attention_figure(acts.attention_maps),
        )
        ctx.arrays["attention_maps"] = acts.attention_maps
    return ctx


def run_analyze(
    out: str | os.PathLike[str],
    *,
    model: SubjectSource | Subject | str | os.PathLike[str] | None = None,
    settings: AnalyzeSettings | None = None,
) -> dict[str, Any]:
    """Load ``model`` (a source, a loaded subject, or a checkpoint path), analyse it, write
    ``out/analysis.json``, ``out/analysis.npz`` and the figures; return the document.
    """
    if model is None:
        raise QxaiError("name one model: --model CKPT, --builtin lstm|transformer or --hf-model DIR")
    settings = settings or AnalyzeSettings()
    if isinstance(model, Subject):
        subject = model
    else:
        subject = load_subject(model, samples=settings.samples, seed=settings.seed)  # type: ignore[arg-type]
    ctx = analyze(subject, settings)
    ctx.doc["claims"] = analysis_claims(ctx.doc)
    return write_stage(
        Path(out), STAGES["analyze"].main, ctx.doc, arrays={"analysis.npz": ctx.arrays}, figures=ctx.figures
    )
