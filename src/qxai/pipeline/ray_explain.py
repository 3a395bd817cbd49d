"""``qxai explain --ray`` / ``--ray-address``: the explain shards computed on a Ray cluster.

The batches to explain enter a Ray Dataset as one row per batch (its number and its test
positions), so every batch holds exactly the images of the single-process run (Ray Data's own
batching splits at block edges, which would change the batches and with them the solver's random
stream). ``map_batches`` runs them through an actor pool (``ActorPoolStrategy(size=workers)``):
each actor loads the model once and builds the data source from its recipe (a few bytes, so the
actor's arguments stay small), then decodes each batch's images and explains them with the same
explainer and seed as the single-process path. Results come back in order (``preserve_order``),
are regrouped into shards and written by the driver, so the files are those of a single-process
run. Ray Data restarts a dead actor and retries its task (``max_restarts=-1``,
``max_task_retries=-1`` are its defaults for actor pools).

For an image folder every node reads the files by the same path: put the folder on storage every
node mounts (NFS, a bucket mount).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from qxai.errors import QxaiError

#: Seconds to wait for the head node of ``--ray-address`` to answer before giving up.
CONNECT_TIMEOUT = 5.0


def check_ray_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse, within ``timeout`` seconds, an address where no Ray head node listens.

    ``address`` is ``host:port`` (the GCS port, 6379 when omitted), ``ray://host:port`` (Ray
    client, 10001 by default) or ``auto`` (the cluster started on this machine, checked by Ray).

    >>> check_ray_address("127.0.0.1:1", timeout=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qxai.errors.QxaiError: cannot reach a Ray cluster at 127.0.0.1:1 (...); start one there ...
    """
    if address == "auto":
        return
    bare = address.removeprefix("ray://")
    host, colon, port = bare.rpartition(":")
    if not colon:
        host, port = bare, "10001" if address.startswith("ray://") else "6379"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as err:
        reason = type(err).__name__ if not str(err) else str(err).splitlines()[0]
        raise QxaiError(
            f"cannot reach a Ray cluster at {address} ({reason}); start one there with "
            "`ray start --head --port=6379`, or pass the head node's host:port as --ray-address"
        ) from None


@contextmanager
def ray_runtime(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """A Ray runtime for the body: the one already initialised in this process (left running),
    else a new local one (``address=None``) or a connection to the cluster at ``address``, shut
    down at the end."""
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if address is None:
        kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


class _ExplainActor:
    """One Ray actor: loads the model once, then explains whole batches by number."""

    def __init__(
        self, model: str, model_file: str | None, trust: bool, layer: str, settings: Any, dataset: str,
        recipe: dict[str, Any],
    ) -> None:  # fmt: skip
        from qxai.data.stream import ImageSource
        from qxai.explain.qa import QAFeatureMapExplainer
        from qxai.pipeline.common import _load_any_model

        ckpt = _load_any_model(model, model_file, trust)
        self.explainer = QAFeatureMapExplainer(
            ckpt.model, layer, solver=settings.solver, qubo=settings.qubo, seed=settings.seed,
            solver_options=settings.solver_options, ground_truth=settings.ground_truth,
            ground_time_limit=settings.ground_time_limit,
        )  # fmt: skip
        # built here from its recipe (a few bytes), not shipped: the actor's arguments stay small
        self.source = ImageSource.from_spec(dataset, **recipe)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from qxai.pipeline.explain import explain_rows

        columns: dict[str, list[np.ndarray]] = {}
        for number, padded in zip(batch["batch"].tolist(), batch["rows"], strict=True):
            rows = np.asarray(padded)[np.asarray(padded) >= 0]
            arrays, records = explain_rows(self.explainer, self.source, rows, len(rows))
            found = {
                **arrays, "batch": np.full(len(rows), number, dtype=np.int64),
                "record": np.array([json.dumps(r) for r in records], dtype=object),
            }  # fmt: skip
            for key, value in found.items():
                columns.setdefault(key, []).append(value)
        return {key: np.concatenate(value) for key, value in columns.items()}


def explain_shards_on_ray(
    shards: dict[int, np.ndarray], *, model: str, layer: str, settings: Any, source: Any, stream: Any
) -> Iterator[tuple[int, dict[str, np.ndarray], list[dict[str, Any]]]]:
    """Explain the test positions of each shard (``{shard number: rows}``) on Ray; yields
    ``(shard number, arrays, records)`` in shard order, as :func:`qxai.pipeline.explain.explain_rows`
    would return them."""
    import ray
    import ray.data

    from qxai.models.checkpoint import _ALLOWED_CODE, AllowedCode

    allowed = _ALLOWED_CODE.get() or AllowedCode()  # the CLI's --model-file / --trust-model-code
    size = settings.batch_size
    batches: dict[int, np.ndarray] = {}
    owner: dict[int, int] = {}
    for k, rows in shards.items():
        for s in range(0, len(rows), size):
            owner[len(batches)] = k
            batches[len(batches)] = np.asarray(rows[s : s + size])
    import logging

    # Ray Data reports each execution at INFO; qxai's own progress and summary line say enough
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    with ray_runtime(stream.ray_address, num_cpus=None):
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        padded = np.full((len(batches), size), -1, dtype=np.int64)  # one row per batch, -1 = no image
        for b, rows in batches.items():
            padded[b, : len(rows)] = rows
        items = [{"batch": b, "rows": padded[b]} for b in batches]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        results = dataset.map_batches(
            _ExplainActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=stream.workers), num_cpus=1,
            batch_format="numpy",
            fn_constructor_kwargs={
                "model": model, "model_file": allowed.model_file, "trust": allowed.trust, "layer": layer,
                "settings": settings, "dataset": source.name, "recipe": source.recipe,
            },
        )  # fmt: skip
        pending: dict[int, dict[int, dict[str, np.ndarray]]] = {k: {} for k in shards}
        need = {k: sum(1 for b in owner if owner[b] == k) for k in shards}
        for block in results.iter_batches(batch_size=None, batch_format="numpy"):
            for number in np.unique(block["batch"]).tolist():
                take = block["batch"] == number
                pending[owner[number]][number] = {key: value[take] for key, value in block.items()}
            for k in sorted(pending):
                if len(pending[k]) < need[k]:
                    break  # shards are handed out in order; a later complete one waits
                parts = [pending[k][b] for b in sorted(pending[k])]
                del pending[k]
                records = [json.loads(r) for p in parts for r in p["record"]]
                keys = ("saliency", "indices", "labels", "targets", "channel_weights", "selected")
                yield k, {key: np.concatenate([p[key] for p in parts]) for key in keys}, records


__all__ = ["CONNECT_TIMEOUT", "check_ray_address", "explain_shards_on_ray", "ray_runtime"]
