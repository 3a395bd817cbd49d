"""One evaluation in shards: phase 1 per shard, stored; phase 2 once, on the merged records.

:func:`qxai.evaluate.runner.explain_and_score` runs on each shard's images and
:func:`encode_shard` turns what it found into plain arrays and JSON (the shard files of
:class:`qxai.pipeline.shards.ShardStore`, or a Ray result): per method its maps, per-image
extras (channel weights, the QUBO selection, energies…), per-image metric values, timings, peak
memory and mean curves. :func:`merge_shards` rebuilds one :class:`MethodResult` per method over
every image — the maps in memory-mapped files, so memory stays bounded by the shard size — on
which :func:`qxai.evaluate.runner.finish_evaluation` computes the sample, set and run metrics, the
intervals and the paired tests exactly as one pass over every image would.

>>> from qxai.evaluate.runner import MethodResult
>>> r = MethodResult("m", saliency=np.zeros((2, 3, 3), np.float32), seconds=np.ones(2),
...                  extras={"selected": [[1], []], "solver": "exact"}, per_image={"x": np.arange(2.0)})
>>> arrays, meta = encode_shard({"m": r}, 2)
>>> merged = merge_shards([(arrays, meta), (arrays, meta)], None)["m"]
>>> merged.saliency.shape, merged.extras["selected"], merged.per_image["x"].tolist()
((4, 3, 3), [[1], [], [1], []], [0.0, 1.0, 0.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qxai.evaluate.runner import MethodResult, stack_values

SEP = "::"  # method::kind::name in the shard's npz (method names may hold '+', '-')


def _jsonable(value: Any) -> Any:
    """``value`` as JSON (numpy scalars and arrays become numbers and lists; others their repr)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return repr(value)


def encode_shard(results: dict[str, MethodResult], n: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Phase-1 results of one shard of ``n`` images as ``(arrays, meta)``: numeric per-image values
    in ``arrays`` (keys ``method::kind::name``), everything else JSON in ``meta``."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"images": n, "methods": {}}
    for name, r in results.items():
        entry: dict[str, Any] = {"error": r.error}
        meta["methods"][name] = entry
        if r.error is not None:
            continue
        arrays[f"{name}{SEP}saliency"] = np.asarray(r.saliency)
        arrays[f"{name}{SEP}seconds"] = np.asarray(r.seconds, dtype=np.float64)
        listed: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for key, value in r.extras.items():
            if isinstance(value, list | np.ndarray) and len(value) == n:
                as_array = np.asarray(value) if key != "selected" else None
                if as_array is not None and as_array.dtype != object:
                    arrays[f"{name}{SEP}extra{SEP}{key}"] = as_array
                else:
                    listed[key] = _jsonable(list(value))
            else:
                constants[key] = _jsonable(value)
        for metric, values in r.per_image.items():
            arrays[f"{name}{SEP}metric{SEP}{metric}"] = np.asarray(values, dtype=np.float64)
        entry.update({
            "listed": listed, "constants": constants, "properties": _jsonable(r.properties),
            "peak_memory_mb": r.peak_memory_mb, "not_applicable": r.not_applicable,
            "curves": {k: np.asarray(v).tolist() for k, v in r.curves.items()},
        })  # fmt: skip
    return arrays, meta


def merge_shards(
    parts: Sequence[tuple[Mapping[str, np.ndarray], dict[str, Any]]], scratch: str | Path | None
) -> dict[str, MethodResult]:
    """One :class:`MethodResult` per method over the images of every part, in order.

    ``scratch``: a folder for the merged maps (memory-mapped ``.npy`` files; None keeps them in
    memory). A method that failed on any shard is failed, with its first error. Mean curves are
    weighted by the shard sizes; peak memory is the largest of the shards'.
    """
    sizes = [int(meta["images"]) for _, meta in parts]
    total = sum(sizes)
    names = list(dict.fromkeys(n for _, meta in parts for n in meta["methods"]))
    merged: dict[str, MethodResult] = {}
    for name in names:
        errors = [meta["methods"].get(name, {}).get("error", "missing in a shard") for _, meta in parts]
        first_error = next((e for e in errors if e is not None), None)
        if first_error is not None:
            merged[name] = MethodResult(name, error=first_error)
            continue
        entries = [meta["methods"][name] for _, meta in parts]
        r = MethodResult(name)
        r.saliency = _concat(parts, f"{name}{SEP}saliency", total, scratch)
        r.seconds = np.concatenate([a[f"{name}{SEP}seconds"] for a, _ in parts])
        extras: dict[str, Any] = dict(entries[0]["constants"])
        prefix = f"{name}{SEP}extra{SEP}"
        for key in [k for k in _keys(parts[0][0]) if k.startswith(prefix)]:
            extras[key[len(prefix) :]] = np.concatenate([a[key] for a, _ in parts])
        for key in entries[0]["listed"]:
            values = [v for e in entries for v in e["listed"][key]]
            extras[key] = values if key == "selected" else stack_values(values)
        r.extras = extras
        r.properties = dict(entries[0]["properties"])
        peaks = np.array([e["peak_memory_mb"] for e in entries], dtype=float)
        r.peak_memory_mb = float(np.max(peaks[np.isfinite(peaks)])) if np.isfinite(peaks).any() else np.nan
        prefix = f"{name}{SEP}metric{SEP}"
        for key in [k for k in _keys(parts[0][0]) if k.startswith(prefix)]:
            r.per_image[key[len(prefix) :]] = np.concatenate([a[key] for a, _ in parts])
        for e in entries:
            for metric, reason in e["not_applicable"].items():
                r.not_applicable.setdefault(metric, reason)
        for mode in entries[0]["curves"]:
            weighted = sum(np.asarray(e["curves"][mode]) * s for e, s in zip(entries, sizes, strict=True))
            r.curves[mode] = weighted / total
        merged[name] = r
    return merged


def _keys(arrays: Mapping[str, np.ndarray]) -> list[str]:
    return list(arrays.files if hasattr(arrays, "files") else arrays)


def _concat(
    parts: Sequence[tuple[Mapping[str, np.ndarray], Any]], key: str, total: int, scratch: str | Path | None
) -> np.ndarray:
    """Array ``key`` of every part, one after the other; with ``scratch`` into a memory-mapped file,
    reading one part at a time (the parts may be lazily loaded ``.npz`` files)."""
    if scratch is None:
        return np.concatenate([a[key] for a, _ in parts])
    first = parts[0][0][key]
    safe = key.replace("+", "p").replace("/", "_").replace(SEP, "-")
    out = np.lib.format.open_memmap(
        Path(scratch) / f"{safe}.npy", mode="w+", dtype=first.dtype, shape=(total, *first.shape[1:])
    )
    at = 0
    for arrays, _ in parts:
        piece = arrays[key]
        out[at : at + len(piece)] = piece
        at += len(piece)
    out.flush()
    return out


__all__ = ["encode_shard", "merge_shards"]
