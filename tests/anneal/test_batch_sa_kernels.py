"""batch-sa's kernels: dense and sparse field updates, the adaptive budget, energies and determinism.

Timing-free: every check is about results (enumeration optima, dimod's own energies, equal samples).
"""

from __future__ import annotations

import dimod
import dimod.testing
import numba
import numpy as np
import pytest

from qxai.anneal.planted import planted_energy, planted_instances
from qxai.anneal.samplers import sample_many
from qxai.anneal.samplers._sa_kernel import (
    bias_scales_kernel,
    csr_energies_kernel,
    csr_scales_kernel,
    energies_kernel,
)
from qxai.anneal.samplers.batch_sa import (
    MAX_READS,
    BatchSimulatedAnnealingSampler,
    Budget,
    adaptive_budget,
    default_budget,
    flatten,
    layout_sparse,
    pad,
)
from qxai.anneal.samplers.exact import ExactEnumerationSampler

EPS = np.finfo(np.float64).eps
KERNELS = ["dense", "sparse"]


def random_models(count: int, seed: int, d_max: int = 16) -> list[dimod.BinaryQuadraticModel]:
    """Random QUBOs/Ising models of 1…``d_max`` variables, densities 0.1…1, both vartypes."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        d = int(rng.integers(1, d_max + 1))
        vartype = dimod.SPIN if k % 2 else dimod.BINARY
        bqm = dimod.generators.gnp_random_bqm(d, float(rng.uniform(0.1, 1.0)), vartype, random_state=seed + k)
        bqm.offset = float(rng.normal())
        out.append(bqm)
    return out


def tolerance(bqm: dimod.BinaryQuadraticModel) -> float:
    """Energy agreement allowed between two float64 sums of the same biases: a few ulps per term."""
    scale = abs(bqm.offset) + sum(map(abs, bqm.linear.values())) + sum(map(abs, bqm.quadratic.values()))
    return 64 * EPS * max(1.0, scale)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("budget", ["adaptive", "fixed"])
def test_kernels_reach_the_enumerated_optimum(kernel: str, budget: str) -> None:
    bqms = random_models(60, seed=1)
    kw = {} if budget == "adaptive" else {"num_reads": 8, "num_sweeps": 64}
    found = BatchSimulatedAnnealingSampler(kernel=kernel).sample_many(bqms, seed=0, **kw)
    exact = sample_many(ExactEnumerationSampler(), bqms)
    gaps = [f.first.energy - e.first.energy for f, e in zip(found, exact, strict=True)]
    tols = [tolerance(b) for b in bqms]
    assert all(g >= -t for g, t in zip(gaps, tols, strict=True))  # nothing below the optimum
    assert np.mean([g <= t for g, t in zip(gaps, tols, strict=True)]) >= 0.95


@pytest.mark.parametrize("kernel", KERNELS)
def test_energies_are_dimods_own(kernel: str) -> None:
    bqms = [*random_models(30, seed=2, d_max=24), dimod.BinaryQuadraticModel(dimod.BINARY)]
    sampler = BatchSimulatedAnnealingSampler(kernel=kernel)
    for kw in ({}, {"num_reads": 3, "num_sweeps": 5}):
        for bqm, ss in zip(bqms, sampler.sample_many(bqms, seed=3, **kw), strict=True):
            dimod.testing.assert_sampleset_energies(ss, bqm)
            np.testing.assert_allclose(ss.record.energy, bqm.energies(ss), rtol=0, atol=tolerance(bqm))
            assert ss.vartype is bqm.vartype and list(ss.variables) == list(bqm.variables)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_pass_the_dimod_kit(kernel: str) -> None:
    sampler = BatchSimulatedAnnealingSampler(kernel=kernel)
    dimod.testing.assert_sampler_api(sampler)
    bqm = dimod.generators.gnp_random_bqm(9, 0.3, dimod.SPIN, random_state=4)
    dimod.testing.assert_sampleset_energies(sampler.sample(bqm, seed=0), bqm)
    dimod.testing.assert_sampleset_energies(sampler.sample(bqm.binary, seed=0), bqm.binary)
    dimod.testing.assert_sampleset_energies(sampler.sample(bqm, num_reads=4, seed=0), bqm)


def test_sparse_and_dense_kernels_agree() -> None:
    # the same random stream and the same flips: only the field update differs (rows vs neighbour
    # lists), so the states agree unless float rounding of the fields decides a tie (not for the
    # integer biases of planted loops, whose field sums are exact)
    bqms = [b for b, _ in planted_instances("loops", 40, 4, seed=5)]
    dense = BatchSimulatedAnnealingSampler(kernel="dense").sample_many(bqms, seed=7)
    sparse = BatchSimulatedAnnealingSampler(kernel="sparse").sample_many(bqms, seed=7)
    for a, b in zip(dense, sparse, strict=True):
        np.testing.assert_array_equal(a.record.sample, b.record.sample)
        np.testing.assert_array_equal(a.record.energy, b.record.energy)
    # on real-valued random models the best energies agree with the enumerated optimum either way
    models = random_models(20, seed=6, d_max=12)
    exact = sample_many(ExactEnumerationSampler(), models)
    for kernel in KERNELS:
        sets = BatchSimulatedAnnealingSampler(kernel=kernel).sample_many(models, seed=1, num_reads=16)
        for bqm, ss, ex in zip(models, sets, exact, strict=True):
            assert ss.first.energy == pytest.approx(ex.first.energy, abs=tolerance(bqm))


def test_auto_kernel_follows_the_density() -> None:
    sampler = BatchSimulatedAnnealingSampler()
    sparse = flatten([b for b, _ in planted_instances("loops", 64, 2, seed=0)])
    dense = flatten([b for b, _ in planted_instances("wishart", 64, 2, seed=0)])
    assert sampler._sparse(sparse, np.arange(2)) and not sampler._sparse(dense, np.arange(2))
    assert BatchSimulatedAnnealingSampler(kernel="sparse")._sparse(dense, np.arange(2))
    with pytest.raises(Exception, match="kernel"):
        BatchSimulatedAnnealingSampler(kernel="magic")


def test_neighbour_lists_hold_exactly_the_nonzero_couplings_and_give_the_dense_numbers() -> None:
    """layout_sparse builds the lists from the pairs; they are the dense rows' non-zeros in column
    order, and the scales and energies read from them are bit-identical to the dense kernels'."""
    bqms = [*random_models(10, seed=8, d_max=10), *(b for b, _ in planted_instances("loops", 24, 2, seed=3))]
    bqms.append(dimod.BinaryQuadraticModel({0: 1.0, 1: 0.0, 2: -1.0}, {(0, 2): 0.0}, 0.0, "BINARY"))
    problems = flatten(bqms)
    members = np.arange(len(bqms))
    d_max = int(problems.sizes.max()) + 1  # one padded column everywhere
    h, q = pad(problems, members, d_max)
    hs, ptr, idx, val = layout_sparse(problems, members, d_max)
    np.testing.assert_array_equal(hs, h)
    for i, d in enumerate(problems.sizes):
        rebuilt = np.zeros_like(q[i])
        for p in range(d_max):
            cols = idx[ptr[i, p] : ptr[i, p + 1]]
            assert np.all(np.diff(cols) > 0)  # increasing, no duplicates
            rebuilt[p, cols] = val[ptr[i, p] : ptr[i, p + 1]]
        np.testing.assert_array_equal(rebuilt, q[i])
        assert ptr[i, d] == ptr[i, -1]  # padded variables have no neighbours
    for dense, sparse in zip(bias_scales_kernel(h, q, problems.sizes),
                             csr_scales_kernel(h, ptr, idx, val, problems.sizes), strict=True):  # fmt: skip
        np.testing.assert_array_equal(dense, sparse)
    rng = np.random.default_rng(1)
    x = (rng.random((len(bqms), 4, d_max)) < 0.5).astype(np.int8)
    x *= (np.arange(d_max)[None, None, :] < problems.sizes[:, None, None]).astype(np.int8)
    done = rng.integers(1, 5, size=len(bqms))
    np.testing.assert_array_equal(
        csr_energies_kernel(x, done, h, ptr, idx, val, problems.offsets),
        energies_kernel(x, done, h, q, problems.offsets),
    )


def test_energies_kernel_is_the_definition() -> None:
    bqms = random_models(15, seed=9, d_max=12)
    problems = flatten(bqms)
    members = np.arange(len(bqms))
    h, q = pad(problems, members, int(problems.sizes.max()))
    rng = np.random.default_rng(0)
    x = (rng.random((len(bqms), 5, h.shape[1])) < 0.5).astype(np.int8)
    x *= (np.arange(h.shape[1])[None, None, :] < problems.sizes[:, None, None]).astype(np.int8)
    done = rng.integers(1, 6, size=len(bqms))
    e = energies_kernel(x, done, h, q, problems.offsets)
    for i, bqm in enumerate(bqms):
        d = problems.sizes[i]
        sample = x[i, : done[i], :d].astype(np.int64)
        sample = sample if bqm.vartype is dimod.BINARY else 2 * sample - 1
        ref = bqm.energies((sample, list(bqm.variables)))
        np.testing.assert_allclose(e[i, : done[i]], ref, rtol=0, atol=tolerance(bqm))
        assert not e[i, done[i] :].any()


@pytest.mark.parametrize("kernel", KERNELS)
def test_same_seed_same_samples_for_any_thread_count(kernel: str) -> None:
    bqms = [*random_models(40, seed=10, d_max=20), *(b for b, _ in planted_instances("loops", 48, 3, seed=1))]
    sampler = BatchSimulatedAnnealingSampler(kernel=kernel)
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            runs.append(sampler.sample_many(bqms, seed=4))
        runs.append(sampler.sample_many(bqms, seed=4))
    finally:
        numba.set_num_threads(before)
    for sets in runs[1:]:
        for a, b in zip(runs[0], sets, strict=True):
            np.testing.assert_array_equal(a.record.sample, b.record.sample)
    other = sampler.sample_many(bqms, seed=5)
    pairs = zip(runs[0], other, strict=True)
    assert any(not np.array_equal(a.record.sample, b.record.sample) for a, b in pairs)


def test_adaptive_budget_stops_easy_problems_early_and_spends_on_hard_ones() -> None:
    sampler = BatchSimulatedAnnealingSampler()
    # a model without couplings has one minimum that every read reaches: the fewest rounds
    easy = dimod.BinaryQuadraticModel({v: (-1.0) ** v for v in range(10)}, {}, 0.0, dimod.BINARY)
    budget = adaptive_budget(10)
    assert len(sampler.sample(easy, seed=0)) == 2 * budget.round_reads
    # explicit reads are honoured exactly
    assert len(sampler.sample(easy, num_reads=5, seed=0)) == 5
    assert len(sampler.sample(easy, num_sweeps=5, seed=0)) == default_budget(10)[0]
    # planted loops: more reads than the easy model, never more than MAX_READS, and the planted optimum
    inst = planted_instances("loops", 64, 6, seed=3)
    sets = sampler.sample_many([b for b, _ in inst], seed=0)
    counts = [len(ss) for ss in sets]
    assert max(counts) <= MAX_READS and min(counts) >= 2 * adaptive_budget(64).round_reads
    assert np.mean(counts) > len(sampler.sample(easy, seed=0))
    solved = [ss.first.energy <= planted_energy(b, t) + 1e-9 * abs(planted_energy(b, t))
              for ss, (b, t) in zip(sets, inst, strict=True)]  # fmt: skip
    assert np.mean(solved) >= 5 / 6


def test_adaptive_budget_rule() -> None:
    for d in (1, 8, 16, 17, 32, 33, 64, 256, 1000):
        b = adaptive_budget(d)
        assert isinstance(b, Budget)
        assert 1 <= b.round_reads <= b.max_reads and b.first_sweeps <= b.max_sweeps
        assert b.max_sweeps >= default_budget(d)[1]  # a hard problem may spend past the fixed budget
        assert b.quorum > b.max_reads  # every stop needs a round that did not lower the best energy
    sweeps = [adaptive_budget(d).max_sweeps for d in range(1, 1000)]
    assert sweeps == sorted(sweeps)


def test_torch_backend_keeps_the_fixed_budget() -> None:
    bqm = random_models(1, seed=11, d_max=8)[0]
    ss = BatchSimulatedAnnealingSampler(backend="torch").sample(bqm, seed=0)
    assert len(ss) == default_budget(len(bqm.variables))[0]
    dimod.testing.assert_sampleset_energies(ss, bqm)
