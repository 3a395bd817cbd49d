"""Sharded, resumable stage outputs: a folder of complete shards under a manifest.

Layout of a shard folder (``OUT/shards`` for ``qxai explain --stream``)::

    manifest.json        what produced the folder: the command's settings and the model's identity
    selection.npz        the images the run works through (written once, before the manifest)
    shard-00000.npz      arrays of shard 0 (written first)
    shard-00000.json     per-image records of shard 0 (written last: its presence marks the shard done)
    …

Every file is written atomically through :mod:`qxai.io`, so a run killed at any moment leaves only
complete shards (and temp files, removed on the next start). Started again with the same command,
the run finds the manifest equal to its own identity, keeps the complete shards and computes the
others; a manifest that differs (another command, another model) is refused with one line.

>>> import tempfile
>>> store = ShardStore(tempfile.mkdtemp(), {"model": "abc", "beta": 0.7})
>>> store.open(lambda: {"rows": np.arange(3)})["rows"].tolist()
[0, 1, 2]
>>> store.write(0, {"x": np.ones(2)}, [{"i": 0}]); store.done(0), store.done(1)
(True, False)
>>> ShardStore(store.folder, {"model": "xyz", "beta": 0.7}).open(dict)  # doctest: +ELLIPSIS
Traceback (most recent call last):
qxai.errors.QxaiError: shard folder ... (model differs); use another --out, or delete ... to start afresh
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qxai.errors import QxaiError
from qxai.io import read_json, write_json, write_npz
from qxai.pipeline.stage import clean_stale

MANIFEST = "manifest.json"
SELECTION = "selection.npz"
FORMAT_VERSION = 1


class ShardStore:
    """One shard folder for one identity (a JSON-able dict: settings, model hash, data set…)."""

    def __init__(self, folder: str | os.PathLike[str], identity: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        # through JSON and back, so that tuples and lists compare equal to what the file holds
        import json

        self.identity = json.loads(json.dumps({"format": FORMAT_VERSION, **identity}))

    def open(self, select: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Check or create the folder and return the selection arrays.

        A new folder: ``select()`` is called, its arrays written, then the manifest. An existing
        folder: its manifest must equal this identity (else :class:`QxaiError`), and its selection
        is read back without calling ``select``.
        """
        manifest = self.folder / MANIFEST
        self.folder.mkdir(parents=True, exist_ok=True)
        clean_stale(self.folder)
        if manifest.is_file():
            recorded = read_json(manifest).get("identity")
            if recorded != self.identity:
                keys = sorted(
                    k for k in {*(recorded or {}), *self.identity}
                    if (recorded or {}).get(k) != self.identity.get(k)
                )  # fmt: skip
                raise QxaiError(
                    f"shard folder {self.folder} was written for another command or model "
                    f"({', '.join(keys) or 'manifest'} differs); use another --out, or delete "
                    f"{self.folder} to start afresh"
                )
            with np.load(self.folder / SELECTION, allow_pickle=False) as saved:
                return {k: saved[k] for k in saved.files}
        arrays = {k: np.asarray(v) for k, v in select().items()}
        write_npz(self.folder / SELECTION, **arrays)
        write_json(manifest, {"identity": self.identity})
        return arrays

    def _stem(self, k: int) -> Path:
        return self.folder / f"shard-{k:05d}"

    def done(self, k: int) -> bool:
        """Whether shard ``k`` is complete (its records file, written last, exists)."""
        return self._stem(k).with_suffix(".json").is_file() and self._stem(k).with_suffix(".npz").is_file()

    def write(self, k: int, arrays: Mapping[str, np.ndarray], records: list[dict[str, Any]]) -> None:
        """Write shard ``k``: its arrays, then its records (which mark it complete)."""
        write_npz(self._stem(k).with_suffix(".npz"), **dict(arrays))
        write_json(self._stem(k).with_suffix(".json"), {"shard": k, "records": records})

    def read(self, k: int) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Shard ``k``'s arrays and records."""
        with np.load(self._stem(k).with_suffix(".npz"), allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
        return arrays, read_json(self._stem(k).with_suffix(".json"))["records"]


__all__ = ["MANIFEST", "SELECTION", "ShardStore"]
