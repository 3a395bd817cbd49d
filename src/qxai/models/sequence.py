"""Sequence models for the QIXAI analyses: an LSTM classifier and a BERT-style Transformer.

* :class:`LSTMClassifier` — ``lstm`` (``nn.LSTM``, batch first) → last hidden state → ``head``.
* :class:`HFClassifier` — wraps a Hugging Face sequence classifier so that
  ``model(input_ids, attention_mask)`` returns logits (what Captum and the capture code call); the
  Hugging Face model itself is ``.hf``. :func:`tiny_bert` builds a small random ``BertConfig``
  (nothing downloaded); :func:`load_hf_model` loads any local model directory — a model saved
  without a classification head is loaded as its base model with ``has_head = False`` (no random
  head is made up); :func:`load_hf_tokenizer` and :func:`special_token_ids` read its tokenizer and
  special-token ids (never constants).
* :func:`train_sequence_model` — seeded Adam through :func:`qxai.models.train.fit` (the one training
  loop); both built-in tasks train in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qxai.data.sequences import SequenceDataset, SequenceSplit
from qxai.errors import QxaiError
from qxai.models.modes import eval_mode
from qxai.seeding import seed_everything, torch_generator


class LSTMClassifier(nn.Module):
    """``(B, T, F)`` → logits ``(B, K)`` from the last hidden state of ``lstm``.

    >>> LSTMClassifier(1, 4, hidden=8)(torch.zeros(2, 10, 1)).shape
    torch.Size([2, 4])
    """

    analysis_layers = ("lstm",)

    def __init__(self, features: int, num_classes: int, hidden: int = 32, num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class HFClassifier(nn.Module):
    """A Hugging Face sequence classifier called as ``model(input_ids, attention_mask) -> logits``."""

    def __init__(self, hf: nn.Module, has_head: bool = True) -> None:
        super().__init__()
        self.hf = hf
        self.has_head = has_head

    @property
    def embedding(self) -> nn.Module:
        """The token-embedding layer (where Integrated Gradients integrate)."""
        return self.hf.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask)
        logits = getattr(out, "logits", None) if self.has_head else None
        if logits is None:
            raise QxaiError(
                f"{type(self.hf).__name__} has no classification head; "
                "load a *ForSequenceClassification model"
            )
        return logits


def tiny_bert(vocab_size: int, num_classes: int, *, max_length: int = 64, seed: int = 0) -> HFClassifier:
    """A small random BERT (2 layers, 4 heads, width 32) with eager attention, so attentions are returned.

    >>> tiny_bert(24, 3)(torch.ones(2, 8, dtype=torch.long)).shape
    torch.Size([2, 3])
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=max_length,
        num_labels=num_classes,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
        initializer_range=0.2,  # BERT's 0.02 leaves this tiny model stuck on 2 of 3 classes for many epochs
    )
    torch.manual_seed(seed)
    return HFClassifier(BertForSequenceClassification(config)).eval()


def load_hf_model(path: str | os.PathLike[str]) -> HFClassifier:
    """Load a local Hugging Face model directory (never downloads) with eager attention.

    A ``*ForSequenceClassification`` checkpoint keeps its head. A checkpoint without one (its
    config's ``architectures`` names no sequence classifier, or the head's weights are missing) is
    loaded as the base model with ``has_head = False``: a randomly initialised head would give
    logits that mean nothing.
    """
    import json

    from transformers import AutoModel, AutoModelForSequenceClassification

    config_file = Path(path, "config.json")
    if not config_file.is_file():
        raise QxaiError(
            f"{path} is not a Hugging Face model directory (no config.json); use save_pretrained output"
        )
    try:
        archs = json.loads(config_file.read_text()).get("architectures") or []
    except (OSError, ValueError):
        raise QxaiError(f"{config_file} is not valid JSON; re-save the model with save_pretrained") from None
    options = {"local_files_only": True, "attn_implementation": "eager"}
    try:
        if archs and not any(str(a).endswith("ForSequenceClassification") for a in archs):
            return HFClassifier(AutoModel.from_pretrained(str(path), **options), has_head=False).eval()
        hf, info = AutoModelForSequenceClassification.from_pretrained(
            str(path), output_loading_info=True, **options
        )
    except (OSError, ValueError, KeyError) as err:
        raise QxaiError(f"cannot load the model in {path} ({str(err).splitlines()[0][:100]})") from None
    if info.get("missing_keys"):
        return HFClassifier(hf.base_model, has_head=False).eval()
    return HFClassifier(hf).eval()


def load_hf_tokenizer(path: str | os.PathLike[str]) -> Any | None:
    """The tokenizer saved with the model in ``path`` (local files only), or None when there is none."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def special_token_ids(config: Any, tokenizer: Any | None = None) -> dict[str, Any]:
    """``{"pad": id, "cls": id | None, "special": (ids…)}`` from the tokenizer, else the model config.

    ``cls`` is the classification/BOS token placed first (None when the model has none). A model
    naming no padding token is an error: padded batches and the IG baseline need one.
    """

    def first(*values: Any) -> int | None:
        return next((int(v) for v in values if v is not None), None)

    tok = tokenizer
    pad = first(getattr(tok, "pad_token_id", None), getattr(config, "pad_token_id", None))
    cls = first(
        getattr(tok, "cls_token_id", None),
        getattr(tok, "bos_token_id", None),
        getattr(config, "bos_token_id", None),
    )
    if pad is None:
        raise QxaiError(
            "the model's tokenizer and config name no padding token (pad_token_id); set one in config.json"
        )
    special = set(getattr(tok, "all_special_ids", None) or ())
    for key in ("bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        if getattr(config, key, None) is not None:
            special.add(int(getattr(config, key)))
    special |= {pad} | ({cls} if cls is not None else set())
    return {"pad": pad, "cls": cls, "special": tuple(sorted(special))}


def tokenise(tokenizer: Any, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask ``(N, T)`` of ``texts`` by the model's own tokenizer (padded,
    truncated to ``max_length``)."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()


def _logits(model: nn.Module, data: SequenceDataset, rows: torch.Tensor) -> torch.Tensor:
    if data.mask is None:
        return model(data.inputs[rows])
    return model(data.inputs[rows], data.mask[rows])


@torch.no_grad()
def sequence_accuracy(model: nn.Module, data: SequenceDataset, batch_size: int = 256) -> float:
    """Fraction of ``data`` that ``model`` classifies correctly (eval mode; the caller's mode is kept)."""
    correct = 0
    with eval_mode(model):
        for s in range(0, len(data), batch_size):
            rows = torch.arange(s, min(s + batch_size, len(data)))
            correct += int((_logits(model, data, rows).argmax(1) == data.labels[rows]).sum())
    return correct / max(1, len(data))


def train_sequence_model(
    model: nn.Module,
    split: SequenceSplit,
    *,
    epochs: int = 10,
    lr: float = 5e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``model`` on ``split.train`` with Adam (deterministic for ``seed``); return accuracies.

    The loop is :func:`qxai.models.train.fit`, the one the image models train with.
    """
    from qxai.models.train import fit

    seed_everything(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch_generator(seed)
    train = split.train

    def batches() -> list[torch.Tensor]:  # a fresh seeded shuffle per epoch
        return list(torch.randperm(len(train), generator=gen).split(batch_size))

    def loss_of(net: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        return loss_fn(_logits(net, train, rows), train.labels[rows])

    steps = -(-len(train) // batch_size)
    fit(model, batches, loss_of, optimiser, epochs=epochs, steps_per_epoch=steps)
    return {
        "train_accuracy": sequence_accuracy(model, train),
        "test_accuracy": sequence_accuracy(model, split.test),
    }
