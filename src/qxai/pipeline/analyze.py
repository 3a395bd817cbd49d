"""The ``analyze`` stage: the QIXAI layer analyses of a model, written to ``out/analysis.json`` + figures.

Three sources: a qxai checkpoint with its image data set (``checkpoint``), a built-in sequence model
trained here in seconds (``builtin="lstm"`` or ``"transformer"``), or a local Hugging Face
classifier directory (``hf_model``, probed with synthetic token sequences). Cost is set by
``samples`` (inputs captured), ``mi_permutations``, ``ig_examples`` and which ``analyses`` run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qxai.analysis.capture import Activations, capture_activations, capture_transformer
from qxai.analysis.spectrum import LayerSpectrum, layer_spectrum
from qxai.errors import QxaiError
from qxai.io import write_figure, write_json, write_npz
from qxai.progress import make_progress
from qxai.seeding import numpy_rng, seed_everything

ANALYSES = ("spectrum", "similarity", "mi", "ig")
BUILTINS = ("lstm", "transformer")


@dataclass
class Subject:
    """What is analysed: the model, its inputs, how to capture them, and what to call things."""

    model: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    kind: str  # "image" | "lstm" | "transformer"
    layers: list[str]
    mask: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _take(n: int, total: int, seed: int) -> np.ndarray:
    return np.sort(numpy_rng(seed, "analyze-samples").permutation(total)[: min(n, total)])


def _image_subject(
    checkpoint: str, dataset: str | None, layers: list[str] | None, samples: int, seed: int
) -> Subject:
    from qxai.pipeline.common import load_model_and_data

    md = load_model_and_data(checkpoint, dataset)
    # test images first (never seen in training), then training images if more are asked for
    images = torch.cat([md.split.test.images, md.split.train.images])
    labels = torch.cat([md.split.test.labels, md.split.train.labels])
    rows = (
        np.arange(min(samples, len(images)))
        if samples <= len(md.split.test)
        else _take(samples, len(images), seed)
    )
    chosen = layers or list(getattr(md.model, "analysis_layers", None) or [md.layer])
    info = {"checkpoint": str(checkpoint), "dataset": md.split.test.name, "arch": md.config.get("arch")}
    return Subject(md.model, images[rows], labels[rows], md.class_names, "image", chosen, info=info)


def _builtin_subject(
    name: str, layers: list[str] | None, samples: int, seed: int, epochs: int | None
) -> Subject:
    from qxai.data.sequences import token_task, wave_task
    from qxai.models.sequence import LSTMClassifier, tiny_bert, train_sequence_model

    count = max(samples, 100) * 2  # train on the rest, analyse up to `samples` test-like sequences
    if name == "lstm":
        split = wave_task(count=count, seed=seed)
        seed_everything(seed)
        model: nn.Module = LSTMClassifier(1, split.train.num_classes)
        metrics = train_sequence_model(model, split, epochs=epochs or 20, lr=1e-2, batch_size=32, seed=seed)
        kind, chosen = "lstm", layers or ["lstm"]
    elif name == "transformer":
        split = token_task(count=count, seed=seed)
        model = tiny_bert(24, split.train.num_classes, max_length=split.train.inputs.shape[1], seed=seed)
        metrics = train_sequence_model(model, split, epochs=epochs or 10, lr=2e-3, batch_size=32, seed=seed)
        kind, chosen = "transformer", []
    else:
        from qxai.errors import unknown_name

        raise unknown_name("built-in model", name, BUILTINS)
    test = split.test.subset(np.arange(min(samples, len(split.test))))
    info = {"builtin": name, "task": split.train.name, **metrics}
    return Subject(model, test.inputs, test.labels, test.class_names, kind, chosen, test.mask, info)


def _hf_subject(path: str, samples: int, seed: int) -> Subject:
    from qxai.data.sequences import token_task
    from qxai.models.sequence import load_hf_model

    model = load_hf_model(path)
    cfg = model.hf.config
    length = min(32, int(getattr(cfg, "max_position_embeddings", 32) or 32))
    data = token_task(count=max(samples, 10) * 2, length=length, vocab=int(cfg.vocab_size), seed=seed).test
    data = data.subset(np.arange(min(samples, len(data))))
    info = {
        "hf_model": str(path),
        "inputs": "synthetic token sequences (ids drawn from the model's vocabulary)",
    }
    names = [str(getattr(cfg, "id2label", {}).get(i, i)) for i in range(int(getattr(cfg, "num_labels", 2)))]
    return Subject(model, data.inputs, data.labels, names, "transformer", [], data.mask, info)


def _capture(subject: Subject, memory_mb: float, spatial: bool, time: str, gates: bool) -> Activations:
    if subject.kind == "transformer":
        return capture_transformer(
            subject.model, subject.inputs, subject.mask, time=time, memory_mb=memory_mb
        )
    return capture_activations(
        subject.model,
        subject.inputs,
        subject.layers,
        mask=subject.mask,
        spatial=spatial,
        time=time,
        gates=gates,
        memory_mb=memory_mb,
    )


def _default_mi_pair(acts: Activations, kind: str) -> tuple[str, str]:
    names = list(acts.features)
    if kind == "lstm" and "lstm:input" in names:
        return "lstm:input", "lstm:output"
    if kind == "transformer":
        hidden = [n for n in names if acts.kinds[n] == "hidden"]
        return hidden[1], hidden[-1]
    if len(names) < 2:
        raise QxaiError(
            "mutual information compares two layers; pass at least two --layers or --mi-layers A,B"
        )
    return names[0], names[1]


def run_analyze(
    out: str | os.PathLike[str],
    *,
    checkpoint: str | None = None,
    dataset: str | None = None,
    builtin: str | None = None,
    hf_model: str | None = None,
    layers: list[str] | None = None,
    samples: int = 500,
    analyses: tuple[str, ...] = ANALYSES,
    top_k: int = 5,
    mi_layers: tuple[str, str] | None = None,
    mi_method: str = "gcmi",
    mi_permutations: int = 100,
    mi_top: int = 10,
    ig_examples: int = 4,
    ig_steps: int = 32,
    spatial: bool = False,
    time: str = "mean",
    gates: bool = True,
    memory_mb: float = 1024.0,
    epochs: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the QIXAI analyses and write ``out/analysis.json``, ``out/analysis.npz`` and figures.

    Exactly one of ``checkpoint``, ``builtin`` and ``hf_model`` names the model. Returns the summary.
    """
    if sum(x is not None for x in (checkpoint, builtin, hf_model)) != 1:
        raise QxaiError("name one model: --model CKPT, --builtin lstm|transformer or --hf-model DIR")
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        from qxai.errors import unknown_name

        raise unknown_name("analysis", unknown[0], ANALYSES)
    if samples < 8:
        raise QxaiError(f"--samples must be at least 8 for the statistics to mean anything, got {samples}")
    out = Path(out)
    seed_everything(seed)
    with make_progress() as bar:
        task = bar.add_task("loading model", total=2 + len(analyses))
        if checkpoint is not None:
            subject = _image_subject(checkpoint, dataset, layers, samples, seed)
        elif builtin is not None:
            subject = _builtin_subject(builtin, layers, samples, seed, epochs)
        else:
            subject = _hf_subject(str(hf_model), samples, seed)
        bar.update(task, advance=1, description="capturing activations")
        acts = _capture(subject, memory_mb, spatial, time, gates and subject.kind == "lstm")
        from qxai.pipeline.analyze_steps import STEPS

        result: dict[str, Any] = {
            "source": subject.info,
            "kind": subject.kind,
            "samples": acts.samples,
            "layers": {
                n: {"kind": acts.kinds[n], "shape": list(a.shape[1:])} for n, a in acts.features.items()
            },
            "figures": [],
            "summary": {"samples": acts.samples},
            "notes": list(acts.notes),
        }
        arrays: dict[str, np.ndarray] = {}
        spectra: dict[str, LayerSpectrum] = {n: layer_spectrum(acts.matrix(n)) for n in acts.features}
        for n, s in spectra.items():
            if s.constant:
                result["notes"].append(
                    f"layer '{n}' is constant over the {acts.samples} inputs: it carries no information"
                )
        context = {
            "subject": subject,
            "acts": acts,
            "spectra": spectra,
            "out": out,
            "top_k": top_k,
            "mi_layers": mi_layers or _default_mi_pair(acts, subject.kind),
            "mi_method": mi_method,
            "mi_permutations": mi_permutations,
            "mi_top": mi_top,
            "ig_examples": ig_examples,
            "ig_steps": ig_steps,
            "seed": seed,
        }
        for name in analyses:
            bar.update(task, advance=1, description=f"analysis: {name}")
            STEPS[name](context, result, arrays)
        bar.update(task, advance=1, description="writing")
    if subject.kind == "transformer" and acts.attention_maps is not None:
        from qxai.analysis.figures import attention_figure

        write_figure(out / "attention.png", attention_figure(acts.attention_maps))
        result["figures"].append(
            {
                "file": "attention.png",
                "title": "Attention heads",
                "caption": "Mean attention of every head over the analysed inputs (valid queries).",
            }
        )
        arrays["attention_maps"] = acts.attention_maps
    write_npz(out / "analysis.npz", **arrays)
    write_json(out / "analysis.json", result)
    return result["summary"]
