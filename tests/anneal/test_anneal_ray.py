"""`qxai anneal` on Ray: each problem one task; the same folder as the single-process run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dimod
import pytest

from qxai.anneal.physics import AnnealProtocol
from qxai.anneal.physics.study import AnnealSettings
from qxai.anneal.qubo import QuboOptions
from qxai.cli.main import main
from qxai.errors import QxaiError
from qxai.pipeline.anneal import ClusterOptions, run_anneal
from qxai.pipeline.cluster import TASK_OPTIONS

ray = pytest.importorskip("ray")

# the small configuration of tests/anneal/test_physics_pipeline.py
SETTINGS = AnnealSettings(taus=(2.0, 5.0), grid=11, protocol=AnnealProtocol(dt=0.05, driver="authors"),
                          energy_convention="authors", qubo=QuboOptions(beta=0.6))  # fmt: skip


def _model_source(monkeypatch: pytest.MonkeyPatch) -> list[dimod.BinaryQuadraticModel]:
    """Stand-in explanation QUBOs of several sizes; the largest first, so tasks finish out of order."""
    import qxai.pipeline.anneal as stage

    bqms = [dimod.generators.gnp_random_bqm(d, 0.7, "BINARY", random_state=d) for d in (9, 3, 5, 4, 6, 3)]

    def model_qubos(checkpoint, settings):
        metas = [{"id": i, "label": f"class{i % 2}", "maps": list(range(b.num_variables))}
                 for i, b in enumerate(bqms)]  # fmt: skip
        return list(zip(metas, bqms, strict=True)), {"kind": "model", "dataset": "toy", "num_maps": 9}

    monkeypatch.setattr(stage, "model_qubos", model_qubos)
    return bqms


def _folder(out: Path) -> tuple[dict, dict[str, bytes]]:
    """anneal.json without its run id and cluster record, and the bytes of every other file."""
    doc = json.loads((out / "anneal.json").read_text())
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "anneal.json"}
    return {k: v for k, v in doc.items() if k not in {"run_id", "cluster", "sha256"}}, files


def test_ray_run_equals_single_process_run(local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bqms = _model_source(monkeypatch)
    single = run_anneal(tmp_path / "single", model="unused", settings=SETTINGS)
    on_ray = run_anneal(tmp_path / "ray", model="unused", settings=SETTINGS, cluster=ClusterOptions(ray=True))
    assert "cluster" not in single
    assert on_ray["cluster"] == {"engine": "ray", "address": "local", "workers": 2, "nodes": 1}
    assert [p["id"] for p in on_ray["problems"]] == list(range(len(bqms)))  # problem order, not finish order
    assert [p["num_qubits"] for p in on_ray["problems"]] == [b.num_variables for b in bqms]
    doc_single, files_single = _folder(tmp_path / "single")
    doc_ray, files_ray = _folder(tmp_path / "ray")
    assert doc_ray == doc_single  # every number, bit for bit (JSON floats round-trip exactly)
    assert doc_ray["settings"] == SETTINGS.to_dict()  # the Ray options are not settings
    assert sorted(files_ray) == sorted(files_single) == ["delta_min.png", "fidelity_vs_d.png",
                                                         "gap_vs_classical.png"]  # fmt: skip
    assert files_ray == files_single  # figures drawn from equal numbers are equal files


def test_one_worker_and_the_cli(local_ray, tmp_path: Path) -> None:
    # one task in flight at a time through the CLI, on a BQM file: same problem record as in-process
    bqm = dimod.generators.anti_crossing_clique(6)
    (tmp_path / "c.bqm").write_bytes(bqm.to_file().read())
    args = ["anneal", "--bqm", str(tmp_path / "c.bqm"), "--tau", "5", "--dt", "0.05", "--grid", "11"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--ray", "--workers", "1", "--out", str(tmp_path / "ray")])
    assert stop.value.code in (0, None)
    saved = json.loads((tmp_path / "ray" / "anneal.json").read_text())
    assert saved["cluster"]["workers"] == 1 and saved["source"]["file"] == str(tmp_path / "c.bqm")
    settings = AnnealSettings(taus=(5.0,), grid=11, protocol=AnnealProtocol(dt=0.05))
    single = run_anneal(tmp_path / "single", bqm=tmp_path / "c.bqm", settings=settings)
    assert saved["problems"] == single["problems"] and saved["settings"] == single["settings"]


def test_each_task_runs_numeric_kernels_on_one_thread(local_ray) -> None:
    def thread_counts() -> dict[str, int]:
        import numba
        from threadpoolctl import threadpool_info

        from qxai.threads import threads_for

        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        # threads_for(huge work) is what a kernel would take on an idle machine
        return {"numba": numba.config.NUMBA_NUM_THREADS, "granted": threads_for(1e12, 1.0),
                "blas": max(blas, default=1)}  # fmt: skip

    counts = ray.get(ray.remote(**TASK_OPTIONS)(thread_counts).remote())
    assert counts == {"numba": 1, "granted": 1, "blas": 1}


def test_cluster_options_are_checked() -> None:
    with pytest.raises(QxaiError, match="--workers applies to Ray runs"):
        ClusterOptions(workers=2)
    with pytest.raises(QxaiError, match="--workers must be a positive integer"):
        ClusterOptions(ray=True, workers=0)
    with pytest.raises(QxaiError, match="--ray-address is empty"):
        ClusterOptions(ray_address=" ")


def test_unreachable_ray_address_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # the model file does not exist: the address must be refused before any model work
    start = time.monotonic()
    args = ["anneal", "--model", str(tmp_path / "absent.pt"), "--ray-address", "127.0.0.1:1"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach a Ray cluster at 127.0.0.1:1") and "ray start --head" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
