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
from dataclasses import dataclass
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

    def write(self, k: int, arrays: Mapping[str, np.ndarray], records: Any) -> None:
        """Write shard ``k``: its arrays, then its records (which mark it complete)."""
        write_npz(self._stem(k).with_suffix(".npz"), **dict(arrays))
        write_json(self._stem(k).with_suffix(".json"), {"shard": k, "records": records})

    def records(self, k: int) -> Any:
        """Shard ``k``'s records only (the arrays stay on disk)."""
        return read_json(self._stem(k).with_suffix(".json"))["records"]

    def arrays(self, k: int) -> Any:
        """Shard ``k``'s arrays, loaded one by one on access (an open ``NpzFile``; close it)."""
        return np.load(self._stem(k).with_suffix(".npz"), allow_pickle=False)

    def read(self, k: int) -> tuple[dict[str, np.ndarray], Any]:
        """Shard ``k``'s arrays and records."""
        with np.load(self._stem(k).with_suffix(".npz"), allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
        return arrays, read_json(self._stem(k).with_suffix(".json"))["records"]


@dataclass(frozen=True)
class StreamSettings:
    """How ``qxai explain`` / ``qxai evaluate`` ``--stream`` walk the data (defaults written once here).

    ``limit``: explain the first ``limit`` test images (each for its predicted class); ``all_images``:
    every test image; neither: ``per_class`` correctly classified images per class, chosen by the
    ``selection`` rule (``same``: the in-memory path's images; ``first``: stop scanning once every
    class has enough — see :mod:`qxai.data.stream`). ``shard_size``: images per shard, a multiple of
    the batch size. ``loader_workers``: DataLoader processes decoding images. ``ray``: run on a local
    Ray runtime; ``ray_address``: join the cluster at this address; ``workers``: Ray actors, each
    loading the model once. Only the first four change the results, so only they enter the shard
    manifest: a run started on one machine may be resumed on Ray and the other way round.
    """

    limit: int | None = None
    all_images: bool = False
    selection: str = "same"
    shard_size: int = 256
    loader_workers: int = 0
    ray: bool = False
    ray_address: str | None = None
    workers: int = 2

    def __post_init__(self) -> None:
        from qxai.data.stream import SELECTION_RULES

        if self.limit is not None and self.limit < 1:
            raise QxaiError(f"--limit must be at least 1, got {self.limit}")
        if self.limit is not None and self.all_images:
            raise QxaiError("--limit and --all exclude each other; give one of them")
        if self.selection not in SELECTION_RULES:
            choices = ", ".join(SELECTION_RULES)
            raise QxaiError(f"--selection must be one of {choices}, got '{self.selection}'")
        if self.shard_size < 1:
            raise QxaiError(f"--shard-size must be at least 1, got {self.shard_size}")
        if self.loader_workers < 0:
            raise QxaiError(f"--loader-workers must be ≥ 0, got {self.loader_workers}")
        if self.workers < 1:
            raise QxaiError(f"--workers must be at least 1, got {self.workers}")
        if self.ray_address is not None and not self.ray_address.strip():
            raise QxaiError("--ray-address is empty; give the head node's host:port, e.g. 10.0.0.5:6379")

    @classmethod
    def from_options(cls, *, stream: bool = False, **fields: Any) -> StreamSettings | None:
        """The CLI's streaming options as settings, or None when none asks for streaming (``--stream``,
        ``--limit``, ``--all``, ``--ray`` and ``--ray-address`` each imply it)."""
        wanted = (
            stream or fields.get("limit") is not None or fields.get("all_images") or fields.get("ray")
            or fields.get("ray_address") is not None
        )  # fmt: skip
        return cls(**fields) if wanted else None

    @property
    def uses_ray(self) -> bool:
        return self.ray or self.ray_address is not None

    def identity(self) -> dict[str, Any]:
        """The fields that decide which images are explained and how they are grouped."""
        return {
            "limit": self.limit, "all_images": self.all_images, "selection": self.selection,
            "shard_size": self.shard_size,
        }  # fmt: skip


def open_stream(
    model: str | os.PathLike[str], dataset: str | None, layer: str | None, stream: StreamSettings
) -> tuple[Any, Any, str, str]:
    """``(checkpoint, source, data set name, layer)`` for a streamed run, every check done before
    any work: the Ray address answers, the data set's images have the model's input shape, a user
    model's forward works, the layer exists."""
    from qxai.data.registry import data_options_for
    from qxai.data.stream import ImageSource
    from qxai.models import default_layer
    from qxai.models.loading import load_any_model
    from qxai.probe import resolve_layer

    if stream.ray_address is not None:
        from qxai.pipeline.cluster import check_ray_address

        check_ray_address(stream.ray_address)  # before any model work
    ckpt = load_any_model(str(model))
    cfg = ckpt.config
    name = dataset or cfg.get("dataset")
    if not name:
        raise QxaiError("the model does not record its data set; pass --dataset NAME")
    expected = tuple(cfg.get("input_shape") or ())
    seed, options = data_options_for(name, cfg)
    if name.startswith("imagefolder:") and expected and "channels" not in options:
        options["channels"] = expected[0]  # the stream cannot look at every image to decide
    source = ImageSource.from_spec(name, seed=seed, **options)
    if expected and source.image_shape != expected:
        raise QxaiError(
            f"data set '{name}' has images {source.image_shape}, the model expects {expected}; "
            "use the data set the model was trained on"
        )
    if str(cfg.get("arch", "")).startswith("file:"):
        from qxai.models.user import check_model_output

        check_model_output(ckpt.model, source.load([0, 1]), source.num_classes, source=str(model))
    layer = layer or default_layer(ckpt.model)
    resolve_layer(ckpt.model, layer)
    return ckpt, source, name, layer


@dataclass
class ShardedRun:
    """What :func:`compute_shards` leaves for the merge: the loaded model, the source, the data set's
    name, the layer, the store (every shard complete) and the chosen test positions."""

    checkpoint: Any
    source: Any
    dataset: str
    layer: str
    store: ShardStore
    rows: np.ndarray
    count: int


def compute_shards(
    out: Path, *, command: str, model: str | os.PathLike[str], settings: Any, stream: StreamSettings,
    batch_size: int, local_job: Callable[[Any, Any, str], Callable[[np.ndarray], tuple[Any, Any]]],
    shard_job: Callable[..., Callable[[np.ndarray], tuple[Any, Any]]],
    write: Callable[[ShardStore, int, Any, Any], None],
) -> ShardedRun:  # fmt: skip
    """The shard loop shared by the streamed stages: check the options, open the source, choose the
    images once (``settings.per_class``/``seed``, or ``--limit``/``--all``), then compute every
    shard not yet complete — on Ray, where each actor builds ``shard_job(**kwargs)`` once, or here
    with ``local_job(model, source, layer)`` — and ``write`` each as it comes.

    ``settings`` is the stage's settings dataclass (``dataset``, ``layer``, ``per_class``, ``seed``,
    ``to_dict()``); it enters the shard manifest with the command, the streaming identity, the data
    set, the layer and the model file's SHA-256, so a folder of another run is refused.
    """
    from qxai.progress import track

    if stream.shard_size % batch_size:
        raise QxaiError(
            f"--shard-size {stream.shard_size} is not a multiple of --batch-size {batch_size}; "
            f"give e.g. --shard-size {batch_size * max(1, stream.shard_size // batch_size)}"
        )
    ckpt, source, name, layer = open_stream(model, settings.dataset, settings.layer, stream)
    identity = {
        "command": command, "settings": settings.to_dict(), "stream": stream.identity(), "dataset": name,
        "layer": layer, "model_sha256": model_sha256(str(model)), "test_images": len(source),
    }  # fmt: skip
    store = ShardStore(Path(out) / "shards", identity)
    per_class, seed, size = settings.per_class, settings.seed, batch_size
    chosen = store.open(lambda: {"rows": stream_rows(ckpt.model, source, per_class, seed, size, stream)})
    rows = chosen["rows"]
    step = stream.shard_size
    shards = {k: rows[s : s + step] for k, s in enumerate(range(0, len(rows), step))}
    todo = [k for k in shards if not store.done(k)]
    if todo and stream.uses_ray:
        from qxai.pipeline.cluster import run_shards_on_ray

        job = {"model": str(model), "layer": layer, "settings": settings, "dataset": source.name,
               "recipe": source.recipe}  # fmt: skip
        for k, arrays, records in track(
            run_shards_on_ray({k: shards[k] for k in todo}, job=shard_job, kwargs=job,
                              address=stream.ray_address, workers=stream.workers),
            f"{command}: {len(todo)} shard(s) on Ray", total=len(todo),
        ):  # fmt: skip
            write(store, k, arrays, records)
    elif todo:
        compute = local_job(ckpt.model, source, layer)
        for k in track(todo, f"{command}: {len(todo)} shard(s)"):
            write(store, k, *compute(shards[k]))
    return ShardedRun(ckpt, source, name, layer, store, rows, len(shards))


def job_inputs(
    model: Any, source: Any, dataset: str | None, recipe: dict[str, Any] | None, model_file: str | None,
    trust: bool,
) -> tuple[Any, Any]:  # fmt: skip
    """A shard job's model module and :class:`ImageSource`: passed in (one process), or built from a
    checkpoint path (with what the CLI allowed it to import) and the source's recipe (a Ray actor)."""
    from qxai.data.stream import ImageSource
    from qxai.models.loading import load_any_model

    if isinstance(model, str):
        model = load_any_model(model, model_file, trust).model
    if source is None:
        source = ImageSource.from_spec(str(dataset), **(recipe or {}))
    return model, source


def stream_rows(
    model: Any, source: Any, per_class: int, seed: int, batch_size: int, stream: StreamSettings
) -> np.ndarray:
    """The test positions to work on: every one (``--all``), the first ``--limit``, or the per-class
    selection of :func:`qxai.data.stream.select_from_stream`."""
    import torch

    from qxai.data.stream import select_from_stream
    from qxai.probe import eval_mode

    if stream.all_images:
        return np.arange(len(source))
    if stream.limit is not None:
        return np.arange(min(stream.limit, len(source)))

    def predict(images: torch.Tensor) -> torch.Tensor:
        with eval_mode(model), torch.no_grad():
            return model(images).argmax(1)

    return select_from_stream(
        predict, source, per_class, seed, rule=stream.selection, batch_size=max(batch_size, 256),
        workers=stream.loader_workers,
    )  # fmt: skip


def model_sha256(spec: str) -> str:
    """The SHA-256 of the model's file (a checkpoint, a TorchScript archive, or ``file.py``)."""
    from qxai.models.loading import HF_PREFIX, is_hf_spec
    from qxai.models.user import file_sha256

    if is_hf_spec(spec):  # a Hugging Face folder: its config, weights and preprocessing
        from qxai.models.hf_vision import folder_sha256

        return folder_sha256(spec[len(HF_PREFIX) :])
    path = spec.rsplit(":", 1)[0] if ".py:" in spec else spec
    return file_sha256(path)


__all__ = [
    "MANIFEST", "SELECTION", "ShardStore", "ShardedRun", "StreamSettings", "compute_shards", "job_inputs",
    "model_sha256", "open_stream", "stream_rows",
]  # fmt: skip
