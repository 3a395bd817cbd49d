"""What ``qxai analyze`` looks at: a :class:`Subject` (model, inputs, labels, class names, layers, kind)
loaded from a :class:`SubjectSource` by :func:`load_subject`.

Three sources:

* a qxai checkpoint, user model file or TorchScript archive with its image data set
  (``checkpoint``); without ``layers`` the model's own ``analysis_layers`` are used, else its conv
  and linear layers (:func:`default_analysis_layers`, named in ``Subject.notes``);
* a built-in sequence model trained here in seconds (``builtin="lstm"`` or ``"transformer"``);
* a local Hugging Face directory (``hf_model``): real texts from ``texts`` tokenised by the
  model's own tokenizer, or random token sequences of its vocabulary. Special-token ids come from
  its tokenizer/config. A model without a classification head is analysed through its hidden
  states and attention only (``Subject.has_head`` False; Integrated Gradients need a target logit).

``samples`` inputs are analysed exactly (fewer only when the data has fewer; a note says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.seeding import numpy_rng, seed_everything

BUILTINS = ("lstm", "transformer")
KINDS = ("image", "lstm", "transformer")
#: more conv/linear layers than this are thinned to this many, evenly spaced, first and last kept
MAX_DEFAULT_LAYERS = 6
#: longest token sequence analysed (attention maps are T × T per head)
MAX_TOKENS = 128


@dataclass(frozen=True)
class SubjectSource:
    """Where the model and its inputs come from; exactly one of ``checkpoint``, ``builtin``,
    ``hf_model``. ``texts`` (a file) only with ``hf_model``; ``layers`` names the layers to capture
    (not for Transformers, whose every layer is read); ``epochs`` trains a built-in model."""

    checkpoint: str | None = None
    dataset: str | None = None
    builtin: str | None = None
    hf_model: str | None = None
    texts: str | None = None
    layers: tuple[str, ...] | None = None
    epochs: int | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.checkpoint, self.builtin, self.hf_model)) != 1:
            raise QxaiError("name one model: --model CKPT, --builtin lstm|transformer or --hf-model DIR")
        if self.builtin is not None and self.builtin not in BUILTINS:
            from qxai.errors import unknown_name

            raise unknown_name("built-in model", self.builtin, BUILTINS)
        if self.texts is not None and self.hf_model is None:
            raise QxaiError("--texts needs --hf-model DIR (texts are tokenised by that model's tokenizer)")
        if self.texts is not None and not Path(self.texts).is_file():
            raise QxaiError(f"--texts {self.texts}: no such file; give one text per line, or a CSV/TSV")
        if self.epochs is not None and self.epochs < 1:
            raise QxaiError(f"--epochs must be at least 1, got {self.epochs}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))


@dataclass
class Subject:
    """The model and the inputs to analyse.

    Attributes:
        model: the torch model (an :class:`~qxai.models.sequence.HFClassifier` for Transformers).
        inputs: ``(N, C, H, W)`` images, ``(N, T, F)`` signals or ``(N, T)`` token ids.
        labels: ``(N,)`` int64 true classes; −1 where unknown (random probe sequences).
        class_names: names of the model's outputs (empty when it has no classification head).
        layers: layer names to capture (empty for Transformers: every hidden layer is read).
        kind: ``"image"``, ``"lstm"`` or ``"transformer"``.
        mask: ``(N, T)`` valid-token mask of sequences, else None.
        info: JSON-able description of the source (written under ``"source"``).
        notes: sentences for the report (defaults chosen, inputs fewer than asked …).
        has_head: the model has a classification head (IG needs one).
        tokens: per input, the token strings of its valid positions (for figures), when known.
        special_ids: the tokenizer's special-token ids (kept in the IG baseline).
        pad_id: the padding id (the IG baseline's replacement token).
    """

    model: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    layers: list[str]
    kind: str
    mask: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    has_head: bool = True
    tokens: list[list[str]] | None = None
    special_ids: tuple[int, ...] = ()
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise QxaiError(f"subject kind must be one of {KINDS}, got {self.kind!r}")
        if len(self.inputs) != len(self.labels):
            raise QxaiError(f"{len(self.inputs)} inputs but {len(self.labels)} labels; give one label each")


def default_analysis_layers(model: nn.Module, limit: int = MAX_DEFAULT_LAYERS) -> list[str]:
    """The model's conv and linear layers in registration order (at most ``limit``, evenly spaced).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    >>> default_analysis_layers(net)
    ['0', '2', '4']
    """
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.LazyLinear)
    names = [name for name, m in model.named_modules() if name and isinstance(m, kinds)]
    if len(names) <= limit:
        return names
    keep = np.unique(np.round(np.linspace(0, len(names) - 1, limit)).astype(int))
    return [names[i] for i in keep]


def _image_subject(source: SubjectSource, samples: int, seed: int) -> Subject:
    from qxai.models.loading import load_model_and_data

    md = load_model_and_data(source.checkpoint, source.dataset)  # type: ignore[arg-type]
    # test images first (never seen in training), then training images if more are asked for
    images = torch.cat([md.split.test.images, md.split.train.images])
    labels = torch.cat([md.split.test.labels, md.split.train.labels])
    # a seeded draw, not the first rows: a split may be ordered by class, and the first N images
    # would then cover only a few classes
    n_test = len(md.split.test)
    pool = n_test if samples <= n_test else len(images)
    rows = np.sort(numpy_rng(seed, "analyze-samples").permutation(pool)[: min(samples, pool)])
    notes: list[str] = []
    if source.layers:
        chosen = list(source.layers)
    elif getattr(md.model, "analysis_layers", None):
        chosen = list(md.model.analysis_layers)
    else:
        chosen = default_analysis_layers(md.model) or [md.layer]
        notes.append(
            f"layers chosen by default (the model's conv and linear layers): {', '.join(chosen)}; "
            "pass --layers to choose others"
        )
    if len(rows) < samples:
        notes.append(f"{samples} inputs asked for, the data set has {len(rows)}: all of them are analysed")
    from qxai.models.train import test_accuracy

    info = {
        "checkpoint": str(source.checkpoint),
        "dataset": md.split.test.name,
        "arch": md.config.get("arch"),
        "test_accuracy": round(test_accuracy(md.model, md.split), 4),  # user models too
    }
    return Subject(
        md.model,
        images[rows],
        labels[rows].long(),
        list(md.class_names),
        chosen,
        "image",
        info=info,
        notes=notes,
    )


def _builtin_subject(source: SubjectSource, samples: int, seed: int) -> Subject:
    from qxai.data.sequences import token_task, wave_task
    from qxai.models.sequence import LSTMClassifier, tiny_bert, train_sequence_model

    train = max(samples, 100) * 8 // 5  # as many training sequences as before, `samples` analysed
    if source.builtin == "lstm":
        split = wave_task(count=train + samples, seed=seed, test_count=samples)
        seed_everything(seed)
        model: nn.Module = LSTMClassifier(1, split.train.num_classes)
        metrics = train_sequence_model(
            model, split, epochs=source.epochs or 20, lr=1e-2, batch_size=32, seed=seed
        )
        kind, chosen = "lstm", list(source.layers or ["lstm"])
    else:
        split = token_task(count=train + samples, seed=seed, test_count=samples)
        model = tiny_bert(24, split.train.num_classes, max_length=split.train.inputs.shape[1], seed=seed)
        metrics = train_sequence_model(
            model, split, epochs=source.epochs or 10, lr=2e-3, batch_size=32, seed=seed
        )
        kind, chosen = "transformer", []
    test = split.test
    info = {"builtin": source.builtin, "task": split.train.name, **metrics}
    return Subject(model, test.inputs, test.labels, test.class_names, chosen, kind, test.mask, info)


def _text_labels(labels: list[str], class_names: list[str], path: str) -> torch.Tensor:
    """Label strings → class indices: a class name of the model, or its index."""
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for value in labels:
        if value == "":
            out.append(-1)
        elif value in index:
            out.append(index[value])
        elif value.lstrip("-").isdigit() and 0 <= int(value) < len(class_names):
            out.append(int(value))
        else:
            raise QxaiError(
                f"--texts {path}: label {value!r} is neither a class of the model ({', '.join(class_names)}) "
                f"nor an index 0..{len(class_names) - 1}; fix the label column"
            )
    return torch.tensor(out, dtype=torch.long)


def _hf_subject(source: SubjectSource, samples: int, seed: int) -> Subject:
    from qxai.data.sequences import probe_sequences, read_texts
    from qxai.models.sequence import load_hf_model, load_hf_tokenizer, special_token_ids, tokenise

    path = str(source.hf_model)
    texts = labels_text = None
    if source.texts is not None:  # read (and reject) the user's file before loading a large model
        texts, labels_text = read_texts(source.texts)
    model = load_hf_model(path)
    cfg = model.hf.config
    tokenizer = load_hf_tokenizer(path)
    special = special_token_ids(cfg, tokenizer)
    num_labels = int(getattr(cfg, "num_labels", 0) or 0) if model.has_head else 0
    id2label = getattr(cfg, "id2label", None) or {}
    names = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(num_labels)]
    max_len = min(MAX_TOKENS, int(getattr(cfg, "max_position_embeddings", MAX_TOKENS) or MAX_TOKENS))
    notes: list[str] = []
    if not model.has_head:
        notes.append(
            "the model has no classification head (its checkpoint holds no trained head): hidden states "
            "and attention are analysed; Integrated Gradients are skipped, since a target logit of a "
            "randomly initialised head would mean nothing"
        )
    info: dict[str, Any] = {
        "hf_model": path,
        "pad_token_id": special["pad"],
        "cls_token_id": special["cls"],
        "classification_head": model.has_head,
    }
    if texts is not None:
        if tokenizer is None:
            raise QxaiError(
                f"{path} has no tokenizer files; save the tokenizer with the model to use --texts"
            )
        if len(texts) < samples:
            notes.append(f"{samples} inputs asked for, {source.texts} holds {len(texts)}: all are analysed")
        texts = texts[:samples]
        ids, mask = tokenise(tokenizer, texts, max_len)
        if labels_text is not None and num_labels:
            labels = _text_labels(labels_text[: len(texts)], names, str(source.texts))
        else:
            labels = torch.full((len(texts),), -1, dtype=torch.long)
        info["inputs"] = f"{len(texts)} texts from {source.texts}, tokenised by the model's tokenizer"
    else:
        data = probe_sequences(
            samples,
            min(32, max_len),
            int(cfg.vocab_size),
            pad_id=special["pad"],
            cls_id=special["cls"],
            special_ids=special["special"],
            seed=seed,
        )
        ids, mask, labels = data.inputs, data.mask, data.labels
        info["inputs"] = "random token sequences of the model's vocabulary (a structural probe; no labels)"
    tokens = None
    if tokenizer is not None:
        tokens = [
            tokenizer.convert_ids_to_tokens(row[: int(m.sum())].tolist())
            for row, m in zip(ids, mask, strict=True)
        ]
    return Subject(
        model, ids, labels, names, [], "transformer", mask, info, notes, model.has_head, tokens,
        tuple(special["special"]), int(special["pad"]),
    )  # fmt: skip


def load_subject(source: SubjectSource | str, *, samples: int = 500, seed: int = 0) -> Subject:
    """Load the model and ``samples`` inputs named by ``source`` (a checkpoint path is a source).

    >>> s = load_subject(SubjectSource(builtin="lstm", epochs=1), samples=10)
    >>> s.kind, tuple(s.inputs.shape), s.layers
    ('lstm', (10, 48, 1), ['lstm'])
    """
    if isinstance(source, str | Path):
        source = SubjectSource(checkpoint=str(source))
    if samples < 1:
        raise QxaiError(f"--samples must be at least 1, got {samples}")
    seed_everything(seed)
    if source.checkpoint is not None:
        return _image_subject(source, samples, seed)
    if source.builtin is not None:
        return _builtin_subject(source, samples, seed)
    return _hf_subject(source, samples, seed)
