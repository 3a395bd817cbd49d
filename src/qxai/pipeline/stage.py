"""The stage-output contract, owned in one place: a :class:`Figure` record and :func:`write_stage`.

A stage (explain, evaluate, anneal, analyze, train) writes one main JSON, its arrays, extra JSON
files and its figures into its folder. :func:`write_stage` writes all of them into a fresh hidden
folder first and moves them in only when every one is complete, main JSON last, stamped with a
``run_id`` and the list of files it owns. So a run that is killed never leaves a folder that mixes
two runs' files under a main JSON that claims them, and ``qxai report`` embeds only files a main
JSON lists. Left-over hidden folders and temp files of a killed run are removed on the next start
(:func:`clean_stale`).

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> doc = write_stage(out, "result.json", {"summary": {"n": 1}}, arrays={"maps.npz": {"x": np.ones(2)}})
>>> sorted(doc["files"]), (out / "maps.npz").is_file(), doc["figures"]
(['maps.npz'], True, [])
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qxai.io import write_figure, write_json, write_npz, write_text

#: Prefix of the hidden folder a stage is assembled in before its files are moved into place.
PARTIAL_PREFIX = ".qxai-partial-"


@dataclass(frozen=True)
class Figure:
    """A figure of a stage: its PNG file (relative to the stage folder), a title and a caption.

    ``section`` optionally routes it to another section of the report than its stage's own.
    """

    file: str
    title: str
    caption: str
    section: str | None = None

    def record(self) -> dict[str, str]:
        """The JSON record the report reads (``section`` only when set)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def clean_stale(out: str | os.PathLike[str]) -> list[str]:
    """Remove what a killed run left in ``out``: hidden assembly folders and atomic-write temp files.

    Returns the names removed. Only our own patterns are touched (``.qxai-partial-*`` folders and
    ``.NAME.XXXX.tmp`` files written by :func:`qxai.io.atomic_path`).
    """
    folder = Path(out)
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.name.startswith(PARTIAL_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        elif entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def write_stage(
    out: str | os.PathLike[str],
    name: str,
    doc: Mapping[str, Any],
    *,
    arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    figures: Iterable[tuple[Figure, Any]] = (),
    files: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a stage's outputs into ``out`` and return the main document as written.

    Args:
        out: the stage folder (created when missing).
        name: the main JSON's file name (``metrics.json``, ``anneal.json`` …).
        doc: the main document; ``figures``, ``files`` and ``run_id`` are added to it.
        arrays: ``{"saliency.npz": {"key": array, …}}`` — compressed npz, never pickles.
        figures: ``(Figure, matplotlib figure)`` pairs; the PNG is written under ``Figure.file``.
        files: other outputs: ``{"details.json": obj}`` (JSON) or ``{"metrics.csv": "text"}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    run_id = uuid.uuid4().hex[:12]
    staging = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=out))
    written: list[str] = []
    records: list[dict[str, str]] = []
    try:
        for fname, arrs in (arrays or {}).items():
            write_npz(staging / fname, **dict(arrs))
            written.append(fname)
        for fig, mpl_figure in figures:
            write_figure(staging / fig.file, mpl_figure)
            written.append(fig.file)
            records.append(fig.record())
        for fname, obj in (files or {}).items():
            if isinstance(obj, str):
                write_text(staging / fname, obj)
            else:
                write_json(staging / fname, obj)
            written.append(fname)
        for fname in written:  # all complete: move them in, then the main JSON that claims them
            (out / fname).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / fname, out / fname)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    final = {**doc, "figures": [*doc.get("figures", []), *records], "files": written, "run_id": run_id}
    write_json(out / name, final)
    return final
