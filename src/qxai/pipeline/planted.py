"""The planted benchmark in one call: train (cached) the ``planted-cnn`` on ``planted`` data of one
difficulty, then evaluate every method against the designated maps and the masks.

>>> doc = run_planted("runs/planted", seed=0, difficulty="overlap",
...                   methods=("qa", "gradcam"), per_class=5)  # doctest: +SKIP
>>> doc["qa"]["planted_precision"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from qxai.data.planted import check_difficulty
from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate
from qxai.pipeline.train import cached_training, train_config

#: the metrics the planted benchmark reports
PLANTED_METRICS = ("planted", "localisation")


def run_planted(
    out: str | os.PathLike[str], *, seed: int = 0, difficulty: str = "easy",
    methods: Sequence[str] = ("qa", "gradcam", "gradcam++", "eigencam"), per_class: int = 10,
    count: int = 1000, epochs: int = 1, metrics: Sequence[str] = PLANTED_METRICS,
    settings: EvaluateSettings | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train ``planted-cnn`` on ``count`` planted images of ``difficulty`` with ``seed`` (the split,
    the weights and the shuffling; the images' own seed is the data set's ``data_seed``, 0) —
    cached in the qxai model cache — and evaluate ``methods`` on ``per_class`` correctly classified
    test images per class, writing the evaluate stage into ``out``. ``settings`` overrides the rest of
    the evaluation (its methods, metrics, per_class and seed are replaced by the arguments).
    Returns the ``metrics.json`` document.
    """
    check_difficulty(difficulty)
    config = train_config(
        "planted", "planted-cnn", maps=None, epochs=epochs, seed=seed, batch_size=64, lr=2e-3,
        dataset_options={"count": count, "difficulty": difficulty},
    )  # fmt: skip
    checkpoint, _saved, _reused, _key = cached_training(config)
    base = settings or EvaluateSettings()
    chosen = replace(base, methods=tuple(methods), metrics=tuple(metrics), per_class=per_class, seed=seed)
    return run_evaluate(Path(out), model=checkpoint, settings=chosen)


__all__ = ["PLANTED_METRICS", "run_planted"]
