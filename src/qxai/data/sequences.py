"""Seeded synthetic sequence tasks for the LSTM and Transformer analyses (no download, made in ms).

* :func:`wave_task` — noisy sine waves ``(N, T, 1)``; the class is the frequency (2, 3, 5 or 8
  cycles per window), with random phase, amplitude and drift, so an LSTM must integrate over time.
* :func:`token_task` — token sequences ``(N, T)`` of variable length (padded, with a mask):
  ``[CLS]`` then random filler tokens, one of which is replaced by a motif token; the class is which
  motif appears. Ids (our own vocabulary for the built-in model): 0 ``[PAD]``, 1 ``[CLS]``,
  ``2 … 2+classes−1`` motifs, the rest filler.
* :func:`probe_sequences` — random token sequences for probing a foreign model (``--hf-model``
  without ``--texts``); its special-token ids are the model's own, never constants.
* :func:`read_texts` — texts (and optional labels) from a file for ``--texts``.

``test_count`` gives the number of test (analysed) sequences exactly; the rest train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.seeding import numpy_rng

PAD, CLS = 0, 1


@dataclass
class SequenceDataset:
    """Sequences in memory: ``inputs`` ``(N, T, F)`` float or ``(N, T)`` int64 token ids, ``labels``
    ``(N,)``, optional ``mask`` ``(N, T)`` (1 = valid step, 0 = padding)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    mask: torch.Tensor | None = None
    name: str = ""

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, rows: np.ndarray | list[int]) -> SequenceDataset:
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        mask = None if self.mask is None else self.mask[rows_t]
        return SequenceDataset(
            self.inputs[rows_t], self.labels[rows_t], list(self.class_names), mask, self.name
        )


@dataclass
class SequenceSplit:
    train: SequenceDataset
    test: SequenceDataset


def _split(data: SequenceDataset, seed: int, test_count: int | None = None) -> SequenceSplit:
    order = numpy_rng(seed, "sequence-split").permutation(len(data))
    n_test = max(1, round(len(data) * 0.2)) if test_count is None else test_count
    if not 1 <= n_test < len(data):
        raise QxaiError(f"test_count must be between 1 and count − 1 = {len(data) - 1}, got {n_test}")
    return SequenceSplit(data.subset(np.sort(order[n_test:])), data.subset(np.sort(order[:n_test])))


def wave_task(
    count: int = 1200, length: int = 48, noise: float = 0.5, seed: int = 0, test_count: int | None = None
) -> SequenceSplit:
    """Classify the frequency of noisy sine waves; inputs ``(count, length, 1)``, 4 classes.

    >>> split = wave_task(count=40, length=16)
    >>> split.train.inputs.shape, split.train.num_classes
    (torch.Size([32, 16, 1]), 4)
    """
    if count < 8 or length < 8:
        raise QxaiError(f"wave task needs count ≥ 8 and length ≥ 8, got {count} and {length}")
    cycles = np.array([2, 3, 5, 8])
    rng = numpy_rng(seed, "wave-task")
    labels = rng.integers(len(cycles), size=count)
    t = np.arange(length) / length
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1))
    amp = rng.uniform(0.7, 1.3, size=(count, 1))
    drift = rng.normal(0, 0.5, size=(count, 1)) * t
    x = (
        amp * np.sin(2 * np.pi * cycles[labels][:, None] * t + phase)
        + drift
        + noise * rng.normal(size=(count, length))
    )
    data = SequenceDataset(
        torch.tensor(x[..., None], dtype=torch.float32),
        torch.tensor(labels),
        [f"{c} cycles" for c in cycles],
        name="waves",
    )
    return _split(data, seed, test_count)


def token_task(
    count: int = 1200,
    length: int = 16,
    vocab: int = 24,
    classes: int = 3,
    seed: int = 0,
    test_count: int | None = None,
) -> SequenceSplit:
    """Classify which motif token a padded random token sequence contains; ids ``(count, length)``.

    >>> split = token_task(count=40)
    >>> split.train.inputs.shape, int(split.train.inputs[0, 0]), split.train.mask.dtype
    (torch.Size([32, 16]), 1, torch.int64)
    """
    if vocab < classes + 4 or length < 4:
        raise QxaiError(f"token task needs vocab ≥ classes + 4 and length ≥ 4, got {vocab}, {length}")
    rng = numpy_rng(seed, "token-task")
    labels = rng.integers(classes, size=count)
    lengths = rng.integers(length // 2, length + 1, size=count)
    ids = rng.integers(2 + classes, vocab, size=(count, length))
    ids[:, 0] = CLS
    where = 1 + (rng.random(count) * (lengths - 1)).astype(int)  # a position in 1 … len−1
    ids[np.arange(count), where] = 2 + labels
    valid = np.arange(length)[None, :] < lengths[:, None]
    ids[~valid] = PAD
    data = SequenceDataset(
        torch.tensor(ids),
        torch.tensor(labels),
        [f"motif {chr(65 + c)}" for c in range(classes)],
        torch.tensor(valid.astype(np.int64)),
        name="tokens",
    )
    return _split(data, seed, test_count)


def probe_sequences(
    count: int,
    length: int,
    vocab: int,
    *,
    pad_id: int,
    cls_id: int | None,
    special_ids: tuple[int, ...] = (),
    seed: int = 0,
) -> SequenceDataset:
    """``count`` random token sequences ``(count, length)`` for probing a model's internals.

    Lengths are uniform in ``length//2 … length``; the first token is ``cls_id`` when the model has
    one; the others are drawn from the vocabulary minus ``special_ids`` and ``pad_id``; padding is
    ``pad_id``. Labels are unknown (−1): a probe has no ground truth.

    >>> d = probe_sequences(5, 8, 30, pad_id=0, cls_id=101 % 30, special_ids=(11, 12), seed=0)
    >>> d.inputs.shape, int(d.inputs[0, 0]), d.labels.tolist()
    (torch.Size([5, 8]), 11, [-1, -1, -1, -1, -1])
    """
    if count < 1 or length < 2:
        raise QxaiError(f"probe sequences need count ≥ 1 and length ≥ 2, got {count} and {length}")
    reserved = {pad_id, *special_ids} | ({cls_id} if cls_id is not None else set())
    pool = np.setdiff1d(np.arange(vocab), np.fromiter(reserved, dtype=np.int64))
    if len(pool) < 2:
        raise QxaiError(f"the vocabulary of {vocab} ids has no ordinary tokens to probe with; pass --texts")
    rng = numpy_rng(seed, "probe-sequences")
    lengths = rng.integers(max(2, length // 2), length + 1, size=count)
    ids = pool[rng.integers(len(pool), size=(count, length))]
    if cls_id is not None:
        ids[:, 0] = cls_id
    valid = np.arange(length)[None, :] < lengths[:, None]
    ids[~valid] = pad_id
    return SequenceDataset(
        torch.tensor(ids, dtype=torch.long),
        torch.full((count,), -1, dtype=torch.long),
        [],
        torch.tensor(valid.astype(np.int64)),
        name="random tokens",
    )


def read_texts(path: str | os.PathLike[str]) -> tuple[list[str], list[str] | None]:
    """Texts and optional labels from ``path``: one text per line, or a CSV/TSV with a ``text`` column
    and an optional ``label`` column (detected from a ``.csv``/``.tsv`` suffix or a header line that
    names ``text``). Empty lines are skipped.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp(), "t.tsv")
    >>> _ = f.write_text("label\\ttext\\npos\\ta good film\\nneg\\tbad, very bad\\n")
    >>> read_texts(f)
    (['a good film', 'bad, very bad'], ['pos', 'neg'])
    """
    import csv

    file = Path(path)
    if not file.is_file():
        raise QxaiError(f"--texts {path}: no such file; give a text file, one text per line, or a CSV/TSV")
    try:
        content = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise QxaiError(f"--texts {path} is not UTF-8 text; save it as UTF-8") from None
    lines = content.splitlines()
    first = lines[0] if lines else ""
    delimiter = "\t" if file.suffix.lower() == ".tsv" or "\t" in first else ","
    header = [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter))] if first else []
    tabular = file.suffix.lower() in (".csv", ".tsv") or "text" in header
    if not tabular:
        texts = [line.strip() for line in lines if line.strip()]
        labels = None
    else:
        if "text" not in header:
            raise QxaiError(f"--texts {path}: no 'text' column in the header {header}; name it 'text'")
        rows = list(csv.reader(lines[1:], delimiter=delimiter))
        ti = header.index("text")
        li = header.index("label") if "label" in header else None
        kept = [r for r in rows if len(r) > ti and r[ti].strip()]
        texts = [r[ti].strip() for r in kept]
        labels = None if li is None else [r[li].strip() if len(r) > li else "" for r in kept]
    if not texts:
        raise QxaiError(f"--texts {path} holds no text; put one text per line")
    return texts, labels
