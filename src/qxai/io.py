"""Atomic file output: a reader never sees a half-written file, and a failure loses nothing.

Every writer goes through :func:`atomic_path`: it yields a temporary path in the same folder and
renames it over the target only when the body finished without an exception.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qxai.errors import QxaiError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The file gets the mode the umask implies (``0o666 & ~umask``), like any file a program
    creates, not ``mkstemp``'s private ``0o600``. The temporary is named ``.NAME.PID-XXXXXXXX.tmp``
    so that :func:`qxai.pipeline.stage.clean_stale` can remove what a killed run left behind (and
    nothing of a run that is still alive).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hi")
    >>> target.read_text()
    'hi'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _create_temporary(target: Path) -> Path:
    # os.open with mode 0o666 lets the kernel apply the umask (reading the umask would need
    # os.umask, which sets it process-wide and races with other threads); O_EXCL keeps the name ours.
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name next to {target}")


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file (hex): what a main JSON records of each file it owns."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temporary_owner(name: str) -> int | None:
    """The process id in a temporary's name ``.NAME.PID-XXXX.tmp`` (None when it has none).

    >>> temporary_owner(".x.json.123-abcd1234.tmp"), temporary_owner(".x.json.abcd1234.tmp")
    (123, None)
    """
    stem = name[: -len(".tmp")] if name.endswith(".tmp") else name
    owner = stem.rsplit(".", 1)[-1].split("-", 1)[0]
    return int(owner) if owner.isdigit() and "-" in stem.rsplit(".", 1)[-1] else None


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` is running (None, for a file of unknown owner, counts as ended)."""
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Refuse, before any compute, an output *file* path that cannot be written.

    A :class:`~qxai.errors.QxaiError` when ``path`` is an existing folder, sits under a file, or its
    folder is not writable. Nothing is created.

    >>> import tempfile
    >>> check_output_file(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    qxai.errors.QxaiError: --out ... is an existing folder; pass a file path such as .../model.pt
    """
    target = Path(path)
    _check_not_dangling(target, option)
    if target.exists() and not target.is_file() and not target.is_dir():
        raise QxaiError(f"{option} {target} is not a regular file (a device or pipe); pass a file path")
    if target.is_dir():
        raise QxaiError(
            f"{option} {target} is an existing folder; pass a file path such as {target / 'model.pt'}"
        )
    _check_creatable(target, option)
    return target


def check_output_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Refuse, before any compute, an output *folder* path that cannot be written.

    A :class:`~qxai.errors.QxaiError` when ``path`` is an existing file, sits under a file, or is
    (or would be created in) a folder that is not writable. Nothing is created.
    """
    target = Path(path)
    _check_not_dangling(target, option)
    if target.exists() and not target.is_dir():
        raise QxaiError(f"{option} {target} is an existing file; pass a folder path (or remove the file)")
    _check_creatable(target / "_", option)
    return target


def _check_not_dangling(target: Path, option: str) -> None:
    if target.is_symlink() and not target.exists():
        raise QxaiError(
            f"{option} {target} is a symbolic link to {os.readlink(target)}, which does not exist; "
            f"create that or choose another {option}"
        )


def _check_creatable(target: Path, option: str) -> None:
    """``target`` can be created: its nearest existing ancestor is a folder we can write in."""
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise QxaiError(f"{option} {target.parent} sits under the file {ancestor}; choose another {option}")
    try:  # a real write: permission bits lie for root and on read-only file systems
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as err:
        raise QxaiError(
            f"{option}: cannot write in {ancestor} ({err.strerror or type(err).__name__}); "
            f"choose a writable {option}"
        ) from None


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


def cache_dir() -> Path:
    """Where qxai keeps generated data and trained demo models: ``$QXAI_CACHE`` or ``~/.cache/qxai``."""
    return Path(os.environ.get("QXAI_CACHE") or Path.home() / ".cache" / "qxai")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # torch tensors
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy and torch values are converted).

    Non-finite floats are written as ``null`` so that the file is standard JSON.
    """
    text = json.dumps(_replace_non_finite(obj), indent=2, default=_to_jsonable, allow_nan=False)
    return write_text(path, text + "\n")


def _replace_non_finite(obj: Any) -> Any:
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _replace_non_finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_replace_non_finite(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return [_replace_non_finite(v) for v in obj.tolist()]
    return obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read JSON written by :func:`write_json`; a missing or broken file is a :class:`QxaiError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QxaiError(f"{path} does not exist; run the stage that writes it first") from None
    except json.JSONDecodeError as err:
        raise QxaiError(f"{path} is not valid JSON ({err.msg}); delete it and rerun") from None


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Write numpy arrays to a compressed ``.npz`` atomically (never pickled objects)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def write_figure(path: str | os.PathLike[str], fig: Any, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
