"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`).

`qxai explain` / `qxai evaluate --ray-address` on an image folder give the single-process run's files
(JSON equal apart from timing fields, arrays equal), also when the worker process hosting a shard
actor is killed with SIGKILL in the middle of its shard. Slow (a cluster start, several fresh
processes importing torch): ``pytest -m slow tests/pipeline/test_ray_cluster.py``.

The cluster is stopped in the fixture's finaliser whatever happens. Not with ``ray stop --force``:
that kills every Ray process of the user on the machine, other people's runtimes included. The
finaliser kills exactly the processes this fixture started, by pid: each ``ray start`` runs in a
new process group, which its services (GCS, raylet, agents) inherit; Ray's worker processes get
groups of their own but stay children of their node's raylet, so the descendants are killed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ..numerics import assert_docs_close, assert_npz_close, route_tolerance
from .test_stream import run_cli, without_timing

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

RAY_CLI = str(Path(sys.executable).with_name("ray"))
#: Ports each node opens besides the head's GCS port: two nodes on one machine must not share one,
#: and other Ray runtimes on the machine hold the defaults, so every one is a free port.
NODE_PORTS = (
    "node-manager-port", "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
    "runtime-env-agent-port", "metrics-export-port",
)  # fmt: skip
#: The environment of every Ray process and driver here: no token authentication in tests.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "QXAI_PROGRESS": "0"}
#: Title Ray Data gives the worker process of a ``map_batches`` actor running ``_ShardActor``.
SHARD_ACTOR_TITLE = "ray::MapWorker(MapBatches(_ShardActor))"
#: Classes × images per class of the generated folder; half of it is the test split.
CLASSES, PER_CLASS, SIZE = ("dark", "mid", "light"), 20, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid → (parent pid, process group, state letter)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
            except (OSError, IndexError):
                continue
            table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def node_processes(group: int) -> set[int]:
    """The live processes of the node started in process group ``group``: the group and every
    descendant of it (Ray workers change group but stay children of the raylet)."""
    table = {pid: row for pid, row in _processes().items() if row[2] != "Z"}
    chosen = {pid for pid, (_, pgid, _) in table.items() if pgid == group}
    while True:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in chosen} - chosen
        if not more:
            return chosen
        chosen |= more


def stop_nodes(groups: list[int], timeout: float = 30.0) -> None:
    """SIGKILL every process of the nodes started in ``groups``, by pid; wait until they are gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = set().union(*(node_processes(g) for g in groups))
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


@dataclass
class TwoNodes:
    """A running two-node cluster: the head's address and each node's process group."""

    address: str
    groups: list[int]

    def shard_actors(self, node: int) -> dict[int, str]:
        """pid → process title of the shard actors hosted by ``node`` (0: head, 1: worker node)."""
        found = {pid: _title(pid) for pid in node_processes(self.groups[node])}
        return {pid: title for pid, title in found.items() if title.startswith(SHARD_ACTOR_TITLE)}


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[TwoNodes]:
    """A head and a worker node, one CPU each, each with its own short temp dir under /tmp and free
    ports; always stopped (by pid) and its temp dirs removed at the end."""
    groups: list[int] = []
    temps: list[str] = []
    port = free_port()
    head = ["--head", f"--port={port}", "--include-dashboard=false", f"--dashboard-port={free_port()}"]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in RAY_ENV.items():
            patch.setenv(key, value)  # for the drivers run in this process
        try:
            for role in (head, [f"--address=127.0.0.1:{port}"]):
                temps.append(tempfile.mkdtemp(prefix="qxn", dir="/tmp"))  # Ray's socket paths must be short
                _start_node([*role, f"--temp-dir={temps[-1]}"], groups)
            cluster = TwoNodes(f"127.0.0.1:{port}", groups)
            _wait_for_nodes(cluster.address, 2)
            yield cluster
        finally:
            stop_nodes(groups)
            for temp in temps:
                shutil.rmtree(temp, ignore_errors=True)


def _start_node(args: list[str], groups: list[int]) -> None:
    """``ray start ARGS`` (one CPU, free ports) in a new process group, appended to ``groups`` at once
    so that the finaliser stops the node even when starting it fails."""
    command = [
        RAY_CLI, "start", *args, "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
        *(f"--{name}={free_port()}" for name in NODE_PORTS),
    ]  # fmt: skip
    start = subprocess.Popen(
        command, env={**os.environ, **RAY_ENV}, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    groups.append(start.pid)
    output, _ = start.communicate(timeout=120)
    assert start.returncode == 0, f"{' '.join(command)} failed:\n{output[-3000:]}"


def _wait_for_nodes(address: str, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` nodes of the cluster at ``address`` are alive (a driver in this process)."""
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        deadline = time.monotonic() + timeout
        while sum(node["Alive"] for node in ray.nodes()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} Ray nodes alive at {address}"
            time.sleep(0.5)
        assert ray.cluster_resources().get("CPU") == count  # one CPU per node
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generated image folder (3 classes × 20 RGB 16×16 PNGs of different brightness) and a
    reduced-cnn (8 maps) trained on it for one epoch, half of the folder held out as the test split."""
    from PIL import Image

    from qxai.pipeline.train import run_train, train_config

    root = tmp_path_factory.mktemp("twonode")
    rng = np.random.default_rng(0)
    for level, name in zip((50, 128, 205), CLASSES, strict=True):
        (root / "data" / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = np.clip(rng.normal(level, 40, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "data" / name / f"{i:03d}.png")
    config = train_config(
        f"imagefolder:{root / 'data'}", "reduced-cnn", maps=8, epochs=1, seed=0, batch_size=16, lr=2e-3,
        dataset_options={"image_size": SIZE, "test_fraction": 0.5},
    )  # fmt: skip
    run_train(config, root / "model.pt")
    return root / "data", root / "model.pt"


#: The commands compared: every test image of the folder, many small shards. The evaluation keeps
#: a few metrics (one set-level, one that re-runs the model) and small resampling counts.
COMMANDS = {
    "explain": ["--all", "--batch-size", "2", "--shard-size", "4"],
    "evaluate": [
        "--methods", "qa,gradcam", "--limit", "16", "--batch-size", "2", "--shard-size", "4",
        "--metrics", "overlap_mean,silhouette,deletion_auc", "--steps", "4", "--resamples", "100",
        "--null-draws", "20",
    ],
}  # fmt: skip
OUTPUTS = {
    "explain": ("explanations.json", "saliency.npz"),
    "evaluate": ("metrics.json", "method_saliency.npz"),
}


def assert_same_outputs(command: str, a: Path, b: Path, model: Path) -> None:
    """``a`` and ``b`` hold the same results of ``command``: documents equal apart from timing
    fields, every array (final and per shard) equal — within float32 rounding, because the Ray
    workers compute with one thread and the single process with two (tests/numerics.py)."""
    from qxai.models import load_checkpoint

    from .test_stream_evaluate import stable

    tol = route_tolerance(load_checkpoint(model).model)
    doc_name, saliency = OUTPUTS[command]
    doc_a, doc_b = (json.loads((folder / doc_name).read_text()) for folder in (a, b))
    if command == "explain":
        assert_docs_close(without_timing(doc_a), without_timing(doc_b), tol)
        assert doc_a["stream"] == doc_b["stream"]
    else:
        assert_docs_close(stable(doc_a), stable(doc_b), tol)
        assert_npz_close(a / "per_image.npz", b / "per_image.npz", tol)
    assert_npz_close(a / saliency, b / saliency, tol)
    shards_a = sorted(p.name for p in (a / "shards").glob("shard-*.npz"))
    assert shards_a == sorted(p.name for p in (b / "shards").glob("shard-*.npz")) and shards_a
    for name in shards_a:
        assert_npz_close(a / "shards" / name, b / "shards" / name, tol)


@pytest.mark.parametrize("command", ["explain", "evaluate"])
def test_two_node_run_equals_single_process_run(command, two_nodes, folder_model, tmp_path):
    data, model = folder_model
    args = [command, "--model", str(model), "--dataset", f"imagefolder:{data}", *COMMANDS[command]]
    assert run_cli([*args, "--out", str(tmp_path / "single")]) == 0
    on_ray = ["--ray-address", two_nodes.address, "--workers", "2"]
    assert run_cli([*args, *on_ray, "--out", str(tmp_path / "cluster")]) == 0
    assert_same_outputs(command, tmp_path / "cluster", tmp_path / "single", model)


#: Runs long enough to kill a worker in the middle: 30 test images in 15 shards of 2. `explain`
#: with a slow solver setting (~0.2 s per image); `evaluate` scoring its maps.
KILLED = {
    "explain": ["--all", "--batch-size", "2", "--shard-size", "2", "--solver", "sa", "--num-reads", "3000"],
    "evaluate": [
        "--methods", "qa,gradcam", "--all", "--batch-size", "2", "--shard-size", "2",
        "--metrics", "overlap_mean,silhouette,deletion_auc", "--steps", "8", "--resamples", "100",
        "--null-draws", "20",
    ],
}  # fmt: skip


@pytest.mark.parametrize("command", ["explain", "evaluate"])
def test_killed_worker_still_gives_complete_identical_output(command, two_nodes, folder_model, tmp_path):
    data, model = folder_model
    args = [command, "--model", str(model), "--dataset", f"imagefolder:{data}", *KILLED[command]]
    assert run_cli([*args, "--out", str(tmp_path / "single")]) == 0
    shards = tmp_path / "cluster" / "shards"
    argv = [sys.executable, "-m", "qxai", *args, "--ray-address", two_nodes.address, "--workers", "2",
            "--out", str(tmp_path / "cluster")]  # fmt: skip
    driver = subprocess.Popen(
        argv, env={**os.environ, **RAY_ENV}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        victim, done, seen = None, -1, set()
        deadline = time.monotonic() + 180
        while victim is None:
            assert driver.poll() is None, f"the run ended before a worker was killed; actors seen: {seen}"
            assert time.monotonic() < deadline, f"no shard actor computed in 180 s; actors seen: {seen}"
            actors = {node: two_nodes.shard_actors(node) for node in (1, 0)}
            seen |= {(node, title) for node, found in actors.items() for title in found.values()}
            # the first actor seen computing a shard, on the worker node when both are (an actor slow
            # to start may never get a shard): kill its process now
            busy = [(pid, node) for node, found in actors.items() for pid, title in found.items()
                    if title.endswith(".submit")]  # fmt: skip
            if busy:
                victim, node = busy[0]
                done = len(list(shards.glob("shard-*.json")))
                os.kill(victim, signal.SIGKILL)
            else:
                time.sleep(0.02)
        output, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, output[-3000:]
    assert done < 15  # killed mid-run: shards were still missing
    assert victim not in two_nodes.shard_actors(node)  # that process is gone; Ray restarted the actor
    doc = json.loads((tmp_path / "cluster" / OUTPUTS[command][0]).read_text())
    assert doc["summary"]["images"] == 30 and doc["stream"]["shards"] == 15
    assert_same_outputs(command, tmp_path / "cluster", tmp_path / "single", model)
