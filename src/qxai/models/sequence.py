"""Sequence models for the QIXAI analyses: an LSTM classifier and a BERT-style Transformer.

* :class:`LSTMClassifier` — ``lstm`` (``nn.LSTM``, batch first) → last hidden state → ``head``.
* :class:`HFClassifier` — wraps a Hugging Face sequence classifier so that
  ``model(input_ids, attention_mask)`` returns logits (what Captum and the capture code call); the
  Hugging Face model itself is ``.hf``. :func:`tiny_bert` builds a small random ``BertConfig``
  (nothing downloaded); :func:`load_hf_model` loads any local model directory.
* :func:`train_sequence_model` — a seeded Adam loop; both built-in tasks train in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from qxai.data.sequences import SequenceDataset, SequenceSplit
from qxai.errors import QxaiError
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

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    @property
    def embedding(self) -> nn.Module:
        """The token-embedding layer (where Integrated Gradients integrate)."""
        return self.hf.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask)
        logits = getattr(out, "logits", None)
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
    """Load a local Hugging Face classifier directory (never downloads) with eager attention."""
    from transformers import AutoModelForSequenceClassification

    if not Path(path, "config.json").is_file():
        raise QxaiError(
            f"{path} is not a Hugging Face model directory (no config.json); use save_pretrained output"
        )
    try:
        hf = AutoModelForSequenceClassification.from_pretrained(
            str(path), local_files_only=True, attn_implementation="eager"
        )
    except (OSError, ValueError) as err:
        raise QxaiError(f"cannot load the model in {path} ({str(err).splitlines()[0][:100]})") from None
    return HFClassifier(hf).eval()


def _logits(model: nn.Module, data: SequenceDataset, rows: torch.Tensor) -> torch.Tensor:
    if data.mask is None:
        return model(data.inputs[rows])
    return model(data.inputs[rows], data.mask[rows])


@torch.no_grad()
def sequence_accuracy(model: nn.Module, data: SequenceDataset, batch_size: int = 256) -> float:
    """Fraction of ``data`` that ``model`` classifies correctly (eval mode)."""
    model.eval()
    correct = 0
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
    """Train ``model`` on ``split.train`` with Adam (deterministic for ``seed``); return accuracies."""
    seed_everything(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch_generator(seed)
    train = split.train
    for _ in range(epochs):
        model.train()
        for rows in torch.randperm(len(train), generator=gen).split(batch_size):
            optimiser.zero_grad()
            loss_fn(_logits(model, train, rows), train.labels[rows]).backward()
            optimiser.step()
    model.eval()
    return {
        "train_accuracy": sequence_accuracy(model, train),
        "test_accuracy": sequence_accuracy(model, split.test),
    }
