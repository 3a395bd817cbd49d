"""Ray for every stage: one runtime helper, one address check, one sharded job runner.

``qxai explain``, ``qxai evaluate`` and ``qxai anneal`` take ``--ray`` (a local Ray runtime) or
``--ray-address ADDR`` (join a running cluster). This module is the only place that talks to Ray:

* :func:`check_ray_address` refuses an address where no head node answers, in seconds, with one
  line (before any model work);
* :func:`ray_runtime` owns the runtime for the body of a ``with`` block (a runtime this process
  already has is used and left running);
* :func:`run_tasks_on_ray` runs one function over a list of plain-data items as Ray tasks (one CPU
  each, a bounded number in flight, retried when a worker dies), results in item order;
* :func:`run_shards_on_ray` sends shards of test images through a Ray Data ``map_batches`` actor
  pool. Each actor builds one *shard job* once (the function the explain or the evaluate
  worker; it loads the model and the data source from a few bytes of recipe), then computes whole
  shards by number: exactly the shard the single-process run computes, so the files are equal.
  A shard's result travels back as one ``.npz`` blob plus one JSON string (arrays of any shape,
  no pickle), in shard order (``preserve_order``); the driver writes it.

Worker failure: Ray Data restarts a dead actor and retries its task (actor pools default to
``max_restarts=-1`` and ``max_task_retries=-1``), so a killed worker process costs time, not output.

For an image folder every node reads the files by the same path: put the folder on storage every
node mounts (NFS, a bucket mount).
"""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from qxai.errors import QxaiError

#: Seconds to wait for the head node of ``--ray-address`` to answer before giving up.
CONNECT_TIMEOUT = 5.0

ShardResult = tuple[dict[str, np.ndarray], Any]  # (per-image arrays, JSON records)

#: Environment of every qxai process on Ray (shard actors, annealing tasks). Each holds one CPU of the
#: cluster, so torch, BLAS and numba get one thread each (numba reads ``NUMBA_NUM_THREADS`` when the
#: worker imports it, and :func:`qxai.threads.threads_for` never grants more than numba's pool): two
#: workers on two cores do not oversubscribe them. No result depends on the thread count.
ONE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}  # fmt: skip


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


def pack(arrays: Mapping[str, np.ndarray], records: Any) -> tuple[bytes, str]:
    """A shard result as bytes that cross process boundaries without pickle: ``.npz`` + JSON.

    >>> unpack(*pack({"x": np.arange(3)}, [{"i": 1}]))[0]["x"].tolist()
    [0, 1, 2]
    """
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue(), json.dumps(records)


def unpack(blob: bytes, records: str) -> ShardResult:
    """The inverse of :func:`pack` (``allow_pickle=False``: object arrays are refused)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
        return {k: saved[k] for k in saved.files}, json.loads(records)


#: A stage's shard-job factory: ``job(**kwargs)`` returns ``rows -> (arrays, records)``.
ShardJob = Callable[..., Callable[[np.ndarray], ShardResult]]


class _ShardActor:
    """One Ray actor: builds its shard job once (the model is loaded once), then computes shards."""

    def __init__(self, job: ShardJob, kwargs: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(1)  # the actor holds one CPU (see ONE_THREAD_ENV)
        self.compute = job(**kwargs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        blobs, texts = [], []
        for padded in batch["rows"]:
            rows = np.asarray(padded)
            arrays, records = self.compute(rows[rows >= 0])
            blob, text = pack(arrays, records)
            blobs.append(blob)
            texts.append(text)
        return {"shard": batch["shard"], "blob": np.array(blobs, dtype=object),
                "records": np.array(texts, dtype=object)}  # fmt: skip


#: ``ray.remote`` options of one task of :func:`run_tasks_on_ray` (Ray retries a task whose worker
#: process died; one numeric thread, as the task holds one CPU).
TASK_OPTIONS: dict[str, Any] = {"num_cpus": 1, "max_retries": 3, "runtime_env": {"env_vars": ONE_THREAD_ENV}}


def run_tasks_on_ray(
    fn: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any, *, address: str | None,
    workers: int | None, label: str,
) -> tuple[list[Any], dict[str, Any]]:  # fmt: skip
    """``[fn(item, shared) for item in items]`` as Ray tasks (:data:`TASK_OPTIONS`), at most
    ``workers`` in flight (None: one per CPU of the cluster); returns the results in item order and
    what ran them (``{"engine", "address", "workers", "nodes"}``). A progress bar labelled ``label``
    advances as tasks complete.

    ``fn`` is a module-level function of the caller (pickled by reference: this module imports none
    of its callers); ``items`` and ``shared`` are plain data (``shared`` goes into the object store
    once, not once per task). A :class:`QxaiError` raised in a task is re-raised here as the user's
    one-line error. Uses the Ray runtime this process has, else starts a local one or joins
    ``address`` for the call (:func:`ray_runtime`).
    """
    import ray

    from qxai.progress import make_progress

    results: list[Any] = [None] * len(items)
    with ray_runtime(address):
        task = ray.remote(**TASK_OPTIONS)(fn)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        in_flight = min(workers or cpus, max(1, len(items)))
        stored = ray.put(shared)
        waiting = iter(enumerate(items))
        running: dict[Any, int] = {}

        def submit() -> None:
            for index, item in waiting:
                running[task.remote(item, stored)] = index
                return

        for _ in range(in_flight):
            submit()
        with make_progress() as bar:
            progress = bar.add_task(label, total=len(items))
            while running:
                (done,), _ = ray.wait(list(running), num_returns=1)
                index = running.pop(done)
                try:
                    results[index] = ray.get(done)
                except ray.exceptions.RayTaskError as err:
                    if isinstance(err.cause, QxaiError):
                        raise err.cause from None
                    raise
                bar.advance(progress)
                submit()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return results, {"engine": "ray", "address": address or "local", "workers": in_flight, "nodes": nodes}


def run_shards_on_ray(
    shards: Mapping[int, np.ndarray], *, job: ShardJob, kwargs: dict[str, Any], address: str | None,
    workers: int,
) -> Iterator[tuple[int, dict[str, np.ndarray], Any]]:  # fmt: skip
    """Compute ``shards`` (``{shard number: test positions}``) with the shard job ``job`` on Ray;
    yields ``(shard number, arrays, records)`` in shard order as soon as each is back.

    ``job(**kwargs)`` returns ``rows -> (arrays, records)``; it is a module-level function of the
    calling stage (pickled by reference), so this module never imports the stages that use it.

    ``kwargs`` build the job in each actor (small values only: names, settings, recipes; the
    job also receives ``model_file`` and ``trust``, what the CLI allowed the model to import);
    ``workers`` actors run at once, one CPU each.
    """
    import ray
    import ray.data

    from qxai.models.checkpoint import allowed_model_code

    allowed = allowed_model_code()
    numbers = sorted(shards)
    if not numbers:
        return
    width = max(len(shards[k]) for k in numbers)
    padded = np.full((len(numbers), width), -1, dtype=np.int64)  # one row per shard, -1 = no image
    for i, k in enumerate(numbers):
        padded[i, : len(shards[k])] = shards[k]
    # Ray Data reports each execution at INFO; qxai's own progress and summary line say enough
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    with ray_runtime(address):
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        items = [{"shard": k, "rows": padded[i]} for i, k in enumerate(numbers)]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        results = dataset.map_batches(
            _ShardActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
            batch_format="numpy", runtime_env={"env_vars": ONE_THREAD_ENV},
            # the driver's --model-file / --trust-model-code hold in the actors too
            fn_constructor_kwargs={"job": job, "kwargs": {
                **kwargs, "model_file": allowed.model_file, "trust": allowed.trust}},
        )  # fmt: skip
        for block in results.iter_batches(batch_size=None, batch_format="numpy"):
            for k, blob, text in zip(block["shard"].tolist(), block["blob"], block["records"], strict=True):
                arrays, records = unpack(blob, text)
                yield int(k), arrays, records


__all__ = [
    "CONNECT_TIMEOUT", "ONE_THREAD_ENV", "TASK_OPTIONS", "check_ray_address", "pack", "ray_runtime",
    "run_shards_on_ray", "run_tasks_on_ray", "unpack",
]  # fmt: skip
