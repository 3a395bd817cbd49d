"""The explanation QUBO against a loop-by-loop transcription of SPEC §1 steps 2–6."""

from __future__ import annotations

import math

import dimod
import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from qxai.anneal.qubo import explanation_qubo, explanation_qubos, redundancy
from qxai.errors import QxaiError


def spec_energy(alpha, maps, x_by_map, beta, normalise="max", penalty=None):
    """E(x) of SPEC §1, written out with plain loops (the oracle). ``x_by_map``: {layer index: bit}.

    All-zero maps are not variables (a dead map would be selected for free: |cos| with it is 0)."""
    kept = [a for a in range(len(alpha)) if alpha[a] > 0 and np.any(np.asarray(maps[a]) != 0)]
    lo, hi = min(alpha[a] for a in kept), max(alpha[a] for a in kept)
    if normalise == "max":
        norm = {a: alpha[a] / hi for a in kept}
    else:
        norm = {a: (alpha[a] - lo) / (hi - lo) if hi > lo else 1.0 for a in kept}
    flat = [list(np.asarray(maps[a]).ravel()) for a in range(len(alpha))]

    def cos(p, q):
        dot = sum(u * v for u, v in zip(flat[p], flat[q], strict=True))
        np_, nq = math.sqrt(sum(u * u for u in flat[p])), math.sqrt(sum(v * v for v in flat[q]))
        return 0.0 if np_ == 0 or nq == 0 else abs(dot) / (np_ * nq)

    energy = 0.0
    for i, p in enumerate(kept):
        for q in kept[i + 1 :]:
            energy += (1 - beta) * cos(p, q) * x_by_map[p] * x_by_map[q]
        energy -= beta * norm[p] * x_by_map[p]
    if penalty is not None:
        lam, k = penalty
        energy += lam * (sum(x_by_map[p] for p in kept) - k) ** 2
    return energy


@pytest.mark.parametrize(
    ("beta", "normalise", "penalty"),
    [
        (0.7, "max", None),
        (0.5, "minmax", None),
        (0.5, "max", (5.0, 3)),
        (0.0, "max", None),
        (1.0, "minmax", (1.0, 0)),
    ],
)
def test_energy_matches_the_spec_loops(beta, normalise, penalty):
    rng = np.random.default_rng(0)
    for trial in range(8):
        n = int(rng.integers(2, 9))
        alpha = rng.normal(size=n)
        alpha[0] = abs(alpha[0]) + 0.1  # at least one kept map
        maps = rng.normal(size=(n, 3, 4)) * (rng.random((n, 1, 1)) < 0.85)  # some all-zero maps
        maps[0] = rng.normal(size=(3, 4))  # and at least one live kept map
        bqm, kept = explanation_qubo(alpha, maps, beta=beta, normalise=normalise, penalty=penalty)
        assert kept.tolist() == [a for a in range(n) if alpha[a] > 0 and np.any(maps[a] != 0)]
        assert bqm.vartype is dimod.BINARY and sorted(bqm.variables) == kept.tolist()
        for _ in range(10):
            x = {int(a): int(rng.integers(2)) for a in kept}
            expected = spec_energy(alpha, maps, x, beta, normalise, penalty)
            assert bqm.energy(x) == pytest.approx(expected, abs=1e-12), trial


def test_ising_form_matches_spec_step_6():
    rng = np.random.default_rng(1)
    alpha, maps, beta = rng.random(6) + 0.05, rng.normal(size=(6, 5, 5)), 0.7
    bqm, kept = explanation_qubo(alpha, maps, beta=beta)
    cos = redundancy(maps)
    a = {(p, q): (1 - beta) * cos[p, q] for i, p in enumerate(kept) for q in kept[i + 1 :]}
    b = {p: -beta * alpha[p] / alpha.max() for p in kept}
    spin = bqm.spin  # dimod's conversion
    for (p, q), apq in a.items():
        assert spin.quadratic[p, q] == pytest.approx(apq / 4)
    for p in kept:
        around = sum(v / 4 for (u, w), v in a.items() if p in (u, w))
        assert spin.linear[p] == pytest.approx(b[p] / 2 + around)
    assert spin.offset == pytest.approx(sum(a.values()) / 4 + sum(b.values()) / 2)


def test_redundancy_against_sklearn_and_safe_for_zero_maps():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(7, 4, 4))
    maps[3] = 0.0
    got = redundancy(maps)
    flat = maps.reshape(7, -1)
    ref = np.abs(cosine_similarity(flat))
    np.fill_diagonal(ref, 0.0)
    ref[3, :] = ref[:, 3] = 0.0
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert np.all(np.isfinite(got)) and np.allclose(got, got.T)
    np.testing.assert_array_equal(redundancy(flat), got)  # (N, H*W) is the same as (N, H, W)
    parallel = redundancy(np.array([[1.0, 2.0], [2.0, 4.0]]))
    assert parallel.max() <= 1.0


def test_batched_equals_one_at_a_time_and_accepts_tensors():
    rng = np.random.default_rng(3)
    alpha, acts = rng.normal(size=(5, 9)), rng.normal(size=(5, 9, 3, 3))
    batch = explanation_qubos(torch.from_numpy(alpha), torch.from_numpy(acts), beta=0.6, penalty=(2.0, 2))
    for b, (bqm, kept) in enumerate(batch):
        one, kept_one = explanation_qubo(alpha[b], acts[b], beta=0.6, penalty=(2.0, 2))
        np.testing.assert_array_equal(kept, kept_one)
        assert bqm == one


def test_no_positive_weight_gives_an_empty_model():
    bqm, kept = explanation_qubo(np.array([-1.0, 0.0, -0.5]), np.ones((3, 2, 2)))
    assert len(bqm.variables) == 0 and kept.size == 0 and bqm.energy({}) == 0.0


def test_single_kept_map_and_equal_weights_with_minmax():
    bqm, kept = explanation_qubo(np.array([-1.0, 2.0]), np.ones((2, 2, 2)), normalise="minmax", beta=0.7)
    assert kept.tolist() == [1] and bqm.linear[1] == pytest.approx(-0.7)


@pytest.mark.parametrize(
    ("alpha", "maps", "kw"),
    [
        (np.ones(3), np.ones((4, 2, 2)), {}),
        (np.ones((3, 1)), np.ones((3, 2, 2)), {}),
        (np.array([1.0, np.nan]), np.ones((2, 2, 2)), {}),
        (np.ones(2), np.full((2, 2, 2), np.inf), {}),
        (np.ones(2), np.ones((2, 2, 2)), {"beta": 1.5}),
        (np.ones(2), np.ones((2, 2, 2)), {"normalise": "l2"}),
        (np.ones(2), np.ones((2, 2, 2)), {"penalty": (-1.0, 3)}),
        (np.ones(2), np.ones((2, 2, 2)), {"penalty": (1.0, 2.5)}),
    ],
)
def test_bad_input_is_a_one_line_qxai_error(alpha, maps, kw):
    with pytest.raises(QxaiError) as err:
        explanation_qubo(alpha, maps, **kw)
    assert "\n" not in str(err.value)


def test_batched_shape_mismatch_is_an_error():
    with pytest.raises(QxaiError):
        explanation_qubos(np.ones((2, 3)), np.ones((2, 4, 2, 2)))


def test_dead_maps_are_not_variables_and_the_threshold_is_relative():
    alpha = np.array([1.0, 0.5, 0.8, 0.2])
    maps = np.ones((4, 3, 3))
    maps[1] = 0.0  # dead after a ReLU: α > 0 but no activation
    maps[2] *= 1e-9  # below dead_eps (1e-6) times the largest map norm
    bqm, kept = explanation_qubo(alpha, maps)
    assert kept.tolist() == [0, 3] and sorted(bqm.variables) == [0, 3]
    # with dead_eps = 0 only exactly-zero maps go; the tiny one stays a variable
    _, kept0 = explanation_qubo(alpha, maps, dead_eps=0.0)
    assert kept0.tolist() == [0, 2, 3]
    # batched construction agrees with the one-image one
    batch = explanation_qubos(alpha[None], maps[None])
    assert batch[0][1].tolist() == [0, 3]


def test_qubo_options_validate_and_round_trip():
    from qxai.anneal.qubo import QuboOptions

    opts = QuboOptions(beta=0.5, penalty=(5, 3))
    assert QuboOptions.of(opts.to_dict()) == opts and opts.penalty == (5.0, 3)
    with pytest.raises(QxaiError, match="unknown QUBO option"):
        QuboOptions.of({"betta": 0.5})
    with pytest.raises(QxaiError, match="dead_eps"):
        QuboOptions(dead_eps=-1.0)
