"""The stage-output contract, owned in one place: a :class:`Figure` record and :func:`write_stage`.

A stage (explain, evaluate, anneal, analyze, train) writes one main JSON, its arrays, extra JSON
files and its figures into its folder. :func:`write_stage` writes all of them into a fresh hidden
folder first and moves them in only when every one is complete, main JSON last, stamped with a
``run_id`` and the list of files it owns. So a run that is killed never leaves a folder that mixes
two runs' files under a main JSON that claims them, and ``qxai report`` embeds only files a main
JSON lists. Left-over hidden folders and temp files of a killed run are removed on the next start
(:func:`clean_stale`) — only those of runs that have ended, never a live run's.

One folder, one run: :data:`STAGES` declares every file each command writes, no two commands share
a file name, and :func:`check_stage_folder` refuses (before any compute) a folder where another
command's run owns a file this one would write, or where an output name is taken by a folder.
:func:`hold` locks the folder for the run (a second run into it gets a one-line error).

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> doc = write_stage(out, "result.json", {"summary": {"n": 1}}, arrays={"maps.npz": {"x": np.ones(2)}})
>>> sorted(doc["files"]), (out / "maps.npz").is_file(), doc["figures"]
(['maps.npz'], True, [])
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qxai.errors import QxaiError
from qxai.io import (
    Figure,
    check_output_folder,
    file_digest,
    pid_alive,
    temporary_owner,
    write_figure,
    write_json,
    write_npz,
    write_text,
)
from qxai.stages import STAGES

#: Prefix of the hidden folder a stage is assembled in before its files are moved into place
#: (followed by the writing process's id, so that clean-up can tell a live run's from a dead one's).
PARTIAL_PREFIX = ".qxai-partial-"
#: The lock file a run holds in its output folder (:func:`hold`).
LOCK_NAME = ".qxai-lock"


_BY_MAIN = {s.main: s for s in STAGES.values() if s.command != "demo"}


def check_stage_folder(out: str | os.PathLike[str], command: str, option: str = "--out") -> None:
    """Refuse, before any compute, an output folder this command's run cannot own.

    A :class:`~qxai.errors.QxaiError` when one of the command's output names is taken by a folder,
    or another command's run in ``out`` (its main JSON is there) owns a file this one would write.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()); (out / "saliency.npz").mkdir()
    >>> check_stage_folder(out, "explain")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    qxai.errors.QxaiError: --out .../saliency.npz is a folder where explain writes its file ...
    """
    folder, mine = Path(out), STAGES[command]
    if not folder.is_dir():
        return
    for name in mine.outputs:
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            raise QxaiError(
                f"{option} {folder / name} is a folder where {command} writes its file {name}; "
                f"move it away or choose another {option}"
            )
    shards = folder / "shards"  # a resumed stream writes here: it must be writable too
    if shards.is_dir():
        check_output_folder(shards, option)
    for other in STAGES.values():
        if other.command == command or not (folder / other.main).is_file():
            continue
        shared = sorted(set(other.outputs) & set(mine.outputs))
        if shared:
            raise QxaiError(
                f"{option} {folder} holds a `qxai {other.command}` run that owns {', '.join(shared)}; "
                f"choose another {option} (e.g. {folder / command})"
            )


@contextlib.contextmanager
def hold(folder: str | os.PathLike[str], option: str = "--out", lock_name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold ``folder`` for one run: a second run into it gets a one-line error instead of a race.

    An advisory ``flock`` on ``folder/.qxai-lock`` (created with the folder); the kernel releases it
    when the process ends, however it ends, so a killed run never leaves the folder locked.
    """
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / lock_name
    existed = lock.exists()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise QxaiError(
                f"another qxai run (pid {other}) is writing to {folder}; wait for it to end or choose "
                f"another {option}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield folder
        except BaseException:
            # a run refused or failed before writing anything leaves nothing behind: not even the
            # lock, nor the folders created to hold it
            if not existed:
                lock.unlink(missing_ok=True)
                for path in created:  # deepest first; only while empty
                    with contextlib.suppress(OSError):
                        path.rmdir()
            raise
    finally:
        os.close(fd)  # releases the lock


def clean_stale(out: str | os.PathLike[str]) -> list[str]:
    """Remove what a killed run left in ``out``: hidden assembly folders and atomic-write temp files.

    Returns the names removed. Only our own patterns are touched (``.qxai-partial-PID-*`` folders
    and ``.NAME.PID-XXXX.tmp`` files written by :func:`qxai.io.atomic_path`), and only those whose
    writing process has ended: a live run's staging is never removed.
    """
    folder = Path(out)
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(PARTIAL_PREFIX) and entry.is_dir():
            owner = name[len(PARTIAL_PREFIX) :].split("-", 1)[0]
            if not pid_alive(int(owner) if owner.isdigit() else None):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(name)
        elif (
            name.endswith(".tmp")
            and name.startswith(".")
            and entry.is_file()
            and not pid_alive(temporary_owner(name))
        ):
            entry.unlink(missing_ok=True)
            removed.append(name)
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
        doc: the main document; ``figures``, ``files``, ``sha256`` (of each file, checked when the
            report reads it) and ``run_id`` are added to it.
        arrays: ``{"saliency.npz": {"key": array, …}}`` — compressed npz, never pickles.
        figures: ``(Figure, matplotlib figure)`` pairs; the PNG is written under ``Figure.file``.
        files: other outputs: ``{"details.json": obj}`` (JSON) or ``{"metrics.csv": "text"}``.
    """
    out = Path(out)
    figures = list(figures)  # read twice: here and when written
    stage = _BY_MAIN.get(name)
    if stage is not None:  # a programming error: the table in STAGES must name every file a stage writes
        names = {*(arrays or {}), *(f.file for f, _ in figures), *(files or {})}
        undeclared = sorted(names - set(stage.files))
        if undeclared:
            raise RuntimeError(f"{name}: files {undeclared} are not declared in qxai.pipeline.stage.STAGES")
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    run_id = uuid.uuid4().hex[:12]
    staging = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", dir=out))
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
        digests = {fname: file_digest(staging / fname) for fname in written}
        for fname in written:  # checked before the first move, so a refusal leaves no orphan behind
            if (out / fname).is_dir():
                raise QxaiError(f"{out / fname} is a folder where a file of this run belongs; move it away")
        # the old main JSON goes first: a kill during the moves leaves files no main JSON claims
        # (the report shows the stage as missing), never old claims over new files
        (out / name).unlink(missing_ok=True)
        for fname in written:  # all complete: move them in, then the main JSON that claims them
            (out / fname).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / fname, out / fname)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    final = {
        **doc, "figures": [*doc.get("figures", []), *records], "files": written, "run_id": run_id,
        "sha256": {**doc.get("sha256", {}), **digests},
    }  # fmt: skip
    write_json(out / name, final)
    return final
