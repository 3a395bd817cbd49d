"""The dimod sampler over the state-vector engine."""

from __future__ import annotations

import dimod
import dimod.testing
import numpy as np

from qxai.anneal.physics.sampler import StateVectorSampler


def test_sampler_api_kit() -> None:
    dimod.testing.assert_sampler_api(StateVectorSampler())


def test_samples_are_consistent_and_seeded() -> None:
    bqm = dimod.generators.gnp_random_bqm(6, 0.8, "SPIN", random_state=2)
    sampler = StateVectorSampler()
    a = sampler.sample(bqm, tau=10.0, dt=0.05, seed=3)
    b = sampler.sample(bqm, tau=10.0, dt=0.05, seed=3)
    assert len(a) == 36  # d² reads by default
    dimod.testing.assert_sampleset_energies(a, bqm)
    assert np.array_equal(a.record.sample, b.record.sample)
    assert set(np.unique(a.record.sample)) <= {-1, 1}
    assert a.info["driver"] == "transverse" and a.info["schedule"] == "linear"


def test_slow_anneal_finds_the_ground_state() -> None:
    bqm = dimod.generators.gnp_random_bqm(7, 0.8, "BINARY", random_state=5)
    exact = dimod.ExactSolver().sample(bqm).first.energy
    ss = StateVectorSampler().sample_qubo(dict(bqm.to_qubo()[0]), tau=60.0, dt=0.05, num_reads=10, seed=0)
    assert abs(ss.first.energy + bqm.to_qubo()[1] - exact) < 1e-9
    assert ss.info["fidelity"] > 0.5


def test_empty_bqm() -> None:
    ss = StateVectorSampler().sample(dimod.BinaryQuadraticModel("BINARY"))
    assert len(ss) == 0
