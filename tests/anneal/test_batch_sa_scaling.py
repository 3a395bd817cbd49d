"""Planted-solution QUBOs (known optimum at any size) and batch-sa's default budget on them."""

from __future__ import annotations

import dimod
import numpy as np
import pytest

from qxai.anneal.planted import frustrated_loops, planted_energy, planted_instances, wishart_planted
from qxai.anneal.samplers import get_sampler, sample_many
from qxai.anneal.samplers.batch_sa import (
    LARGE_SWEEPS,
    MEDIUM_D,
    MEDIUM_SWEEPS,
    SMALL_D,
    SMALL_SWEEPS,
    BatchSimulatedAnnealingSampler,
    default_budget,
)
from qxai.anneal.samplers.exact import ExactEnumerationSampler
from qxai.errors import QxaiError


@pytest.mark.parametrize("family", ["loops", "wishart"])
@pytest.mark.parametrize("d", [6, 10, 14, 18])
def test_planted_state_is_a_ground_state(family: str, d: int) -> None:
    for seed in range(4):
        bqm, planted = planted_instances(family, d, 1, seed=seed)[0]
        exact = float(ExactEnumerationSampler().sample(bqm).first.energy)
        assert planted_energy(bqm, planted) == pytest.approx(exact, abs=1e-9 * max(1.0, abs(exact)))


def test_loop_energy_is_minus_sum_of_lengths_minus_two() -> None:
    bqm, planted = frustrated_loops(40, seed=2)
    # every coupling is a sum of ±1 per loop through the edge; the planted energy is −Σ(L−2) < 0,
    # an integer, and no state beats it (checked by enumeration above for small d)
    e = planted_energy(bqm, planted)
    assert e < 0 and e == round(e)
    assert len({tuple(sorted(v)) for v in bqm.quadratic}) == bqm.num_interactions


def test_generators_are_deterministic_and_validated() -> None:
    a, b = wishart_planted(12, seed=3), wishart_planted(12, seed=3)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert frustrated_loops(12, seed=0)[0] != frustrated_loops(12, seed=1)[0]
    with pytest.raises(QxaiError):
        wishart_planted(1)
    with pytest.raises(QxaiError):
        frustrated_loops(4)
    with pytest.raises(QxaiError):
        planted_instances("nope", 8, 1)


def test_budget_rule() -> None:
    assert default_budget(SMALL_D) == (8, SMALL_SWEEPS)
    assert default_budget(SMALL_D + 1) == (8, MEDIUM_SWEEPS)
    assert default_budget(MEDIUM_D + 1) == (8, LARGE_SWEEPS)
    assert default_budget(256) == (8, LARGE_SWEEPS)
    assert default_budget(600)[1] == 512  # ∝ d past the measured sizes
    sweeps = [default_budget(d)[1] for d in range(1, 2000)]
    assert sweeps == sorted(sweeps)  # never fewer sweeps for a larger model


def test_explicit_budget_and_schedule_are_used() -> None:
    bqm, _ = wishart_planted(20, seed=0)
    sampler = BatchSimulatedAnnealingSampler()
    ss = sampler.sample(bqm, num_reads=3, num_sweeps=40, beta_schedule_type="linear", seed=1)
    assert len(ss) == 3
    with pytest.raises(QxaiError, match="beta_schedule_type"):
        sampler.sample(bqm, beta_schedule_type="cubic")


def success(family: str, d: int, count: int, sampler: dimod.Sampler, seed: int = 0) -> float:
    inst = planted_instances(family, d, count, seed=seed)
    sets = sample_many(sampler, [b for b, _ in inst], seed=0)
    ok = [float(ss.first.energy) <= planted_energy(b, t) + 1e-9 * abs(planted_energy(b, t))
          for ss, (b, t) in zip(sets, inst, strict=True)]  # fmt: skip
    return float(np.mean(ok))


@pytest.mark.parametrize("family", ["loops", "wishart"])
@pytest.mark.parametrize("d", [24, 32])
def test_defaults_solve_small_planted_instances(family: str, d: int) -> None:
    assert success(family, d, 10, get_sampler("batch-sa")) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("family", ["loops", "wishart"])
@pytest.mark.parametrize("d", [64, 128, 256])
def test_defaults_match_dwave_sa_defaults_on_the_p2b_table(family: str, d: int) -> None:
    ours = success(family, d, 20, get_sampler("batch-sa"))
    theirs = success(family, d, 20, get_sampler("sa"))
    assert ours >= theirs  # the P2b goal: at least dwave SA's success, family by family
    # and an absolute floor: the large-d rounds (2 reads from 16 sweeps) solve 18 of these 20 loops
    # at d = 64 (dwave SA's defaults 17), every other family and size 19–20 (BENCHMARKS.md, P2b)
    assert ours >= 0.85
