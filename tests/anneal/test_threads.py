"""The thread rule (qxai.threads) and the kernels that follow it: same results at any thread count."""

from __future__ import annotations

import subprocess
import sys
import time

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from qxai import threads
from qxai.anneal.physics import eigensolver, kernels
from qxai.anneal.planted import wishart_planted
from qxai.anneal.samplers import batch_sa
from qxai.anneal.samplers.batch_sa import BatchSimulatedAnnealingSampler


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(threads._cache, "at", -1e9)


def test_small_work_gets_one_thread_and_never_more_than_free_cores(fresh_cache: None) -> None:
    assert threads.threads_for(work=10, min_work=1000) == 1
    assert threads.threads_for(work=1999, min_work=1000) == 1
    assert 1 <= threads.threads_for(work=1e12, min_work=1) <= threads.available_cores()
    assert threads.threads_for(work=1e12, min_work=1) <= numba.config.NUMBA_NUM_THREADS


def test_busy_machine_gets_one_thread(monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    monkeypatch.setattr(threads, "running_elsewhere", lambda: threads.available_cores())
    assert threads.free_cores() == 1
    assert threads.threads_for(work=1e12, min_work=1) == 1


def test_a_competing_process_is_seen() -> None:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert max(threads.running_elsewhere() for _ in range(5)) >= 1  # it is always runnable
    finally:
        hog.kill()
        hog.wait()


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_numba_pool_and_blas_pool_never_both_full() -> None:
    before_numba, before_blas = numba.get_num_threads(), _blas_threads()
    with threads.numba_threads(2) as n:
        assert numba.get_num_threads() == n
        assert all(t == 1 for t in _blas_threads())
    with threads.blas_threads(2):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before_numba and _blas_threads() == before_blas


def test_run_steps_gives_the_same_state_at_any_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    d = 15  # two cache blocks plus high-qubit rotations: every parallel loop runs
    rng = np.random.default_rng(0)
    energies = rng.random(1 << d)
    thetas, phis = rng.random(6), rng.random(6)
    out = []
    for n in (1, 2):
        monkeypatch.setattr(kernels, "state_threads", lambda d, n=n: n)
        psi = np.full(1 << d, 2 ** (-d / 2), dtype=complex)
        kernels.run_steps(psi, energies, thetas, phis, d)
        out.append(psi)
    assert np.array_equal(out[0], out[1])


def test_apply_hamiltonian_follows_the_rule_and_restores_numba() -> None:
    before = numba.get_num_threads()
    v = np.random.default_rng(1).random(1 << 6)
    out = np.empty_like(v)
    kernels.apply_hamiltonian(v, out, np.arange(64.0), 0.5, 2.0, 6)
    flips = sum(v[np.arange(64) ^ (1 << p)] for p in range(6))
    np.testing.assert_allclose(out, 0.5 * flips + 2.0 * np.arange(64.0) * v, rtol=1e-14)
    assert numba.get_num_threads() == before


def test_gap_solver_levels_do_not_depend_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    d = 12
    energies = np.random.default_rng(2).random(1 << d)
    start = np.asfortranarray(np.random.default_rng(3).standard_normal((1 << d, 4)))
    values = []
    for n in (1, 2):
        monkeypatch.setattr(kernels, "state_threads", lambda d, n=n: n)
        values.append(eigensolver.lowest_levels(energies, -0.3, 1.0, d, 2, start).values)
    # chunked reductions in a fixed order; BLAS thread counts may change the last bits of the Gram
    # products, so equality is to a few ulps of the spectrum's scale
    np.testing.assert_allclose(values[0], values[1], rtol=0, atol=1e-12)


def test_batch_sa_output_does_not_depend_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    bqms = [wishart_planted(24, seed=s)[0] for s in range(6)]
    samples = []
    for n in (1, 2):
        monkeypatch.setattr(batch_sa, "threads_for", lambda work, min_work, n=n: n)
        sets = BatchSimulatedAnnealingSampler().sample_many(bqms, seed=5, num_reads=4, num_sweeps=32)
        samples.append(np.stack([ss.record.sample for ss in sets]))
    assert np.array_equal(samples[0], samples[1])
