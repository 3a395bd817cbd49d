"""The structured branch and bound and the persistencies of certify.py against enumeration."""

from __future__ import annotations

import itertools

import dimod
import numpy as np
import pytest

from qxai.anneal.enumerate import enumerate_energies
from qxai.anneal.qubo import explanation_qubos
from qxai.anneal.samplers.certify import (
    branch_and_bound,
    float_tolerance,
    nonnegative_couplings,
    persistencies,
    roof_duality_fixings,
)
from qxai.anneal.samplers.mip import ExactMIPSampler
from qxai.errors import QxaiError

EPS = float(np.finfo(np.float64).eps)


def structured(d: int, seed: int, density: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """An explanation-like QUBO: h mostly ≤ 0 (a few > 0), couplings ≥ 0 on a random graph."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(-1.0, 0.15, d)
    q = np.triu(rng.uniform(0.0, 0.6, (d, d)) * (rng.random((d, d)) < density), 1)
    return h, q + q.T


def general(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.uniform(-1.0, 1.0, d)
    q = np.triu(rng.uniform(-1.0, 1.0, (d, d)), 1)
    return h, q + q.T


def all_energies(h: np.ndarray, q: np.ndarray, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Every state (2^d, d) and its energy, straight from the definition."""
    x = np.array(list(itertools.product([0, 1], repeat=len(h))), dtype=np.float64)
    return x, offset + x @ h + np.einsum("si,ij,sj->s", x, q, x) / 2


def to_bqm(h: np.ndarray, q: np.ndarray, offset: float = 0.0) -> dimod.BinaryQuadraticModel:
    return dimod.BinaryQuadraticModel(h, np.triu(q, 1), offset, dimod.BINARY)


def tolerance(h: np.ndarray, q: np.ndarray) -> float:
    return 16 * float_tolerance(h, q) + 64 * EPS


@pytest.mark.parametrize("d", [1, 2, 3, 6, 10, 14, 18])
def test_branch_and_bound_proves_the_enumerated_optimum(d: int) -> None:
    for seed in range(4):
        for density in (0.3, 1.0):
            h, q = structured(d, seed, density)
            r = branch_and_bound(h, q, 0.25)
            _, energies = all_energies(h, q, 0.25)
            tol = tolerance(h, q)
            assert r.optimal
            assert r.energy == pytest.approx(energies.min(), abs=tol)
            assert r.bound <= energies.min() + tol
            assert 0.0 <= r.gap <= tol
            # the returned x has the returned energy
            index = int("".join(map(str, r.x)), 2) if d else 0
            assert r.energy == pytest.approx(float(energies[index]), abs=tol)


def test_explanation_qubos_through_exact_mip_agree_with_enumeration() -> None:
    rng = np.random.default_rng(0)
    alpha = np.maximum(rng.standard_normal((6, 30)), 0)
    acts = np.maximum(rng.standard_normal((6, 30, 5, 5)), 0)
    sampler = ExactMIPSampler(time_limit=30)  # engine "auto": bnb, the couplings are ≥ 0
    for bqm, _ in explanation_qubos(alpha, acts, beta=0.7):
        if not 0 < len(bqm) <= 18:
            continue
        ss = sampler.sample(bqm)
        exact = float(enumerate_energies(bqm)[1].min())
        assert ss.info["engine"] == "bnb" and ss.info["optimal"]
        assert float(ss.first.energy) == pytest.approx(exact, abs=1e-9 * max(1.0, abs(exact)))
        assert ss.info["bound"] <= exact + 1e-12
        dimod.testing.assert_sampleset_energies(ss, bqm)


def test_auto_engine_routes_general_qubos_to_cp_sat() -> None:
    for seed in range(3):
        h, q = general(9, seed)
        bqm = to_bqm(h, q, 0.1)
        ss = ExactMIPSampler(time_limit=30).sample(bqm)
        assert ss.info["engine"] == "cp-sat" and ss.info["optimal"]
        assert float(ss.first.energy) == pytest.approx(float(enumerate_energies(bqm)[1].min()), abs=1e-9)
    with pytest.raises(QxaiError, match="bnb"):
        ExactMIPSampler(engine="bnb").sample(to_bqm(np.zeros(2), np.array([[0.0, -1.0], [-1.0, 0.0]])))
    with pytest.raises(QxaiError, match="couplings"):
        branch_and_bound(np.zeros(2), np.array([[0.0, -1.0], [-1.0, 0.0]]))


def test_spin_models_with_nonnegative_binary_couplings_use_bnb() -> None:
    h, q = structured(12, 5)
    bqm = to_bqm(h, q).spin
    ss = ExactMIPSampler().sample(bqm)
    assert ss.info["engine"] == "bnb" and ss.info["optimal"]
    assert float(ss.first.energy) == pytest.approx(float(enumerate_energies(bqm)[1].min()), abs=1e-9)


@pytest.mark.parametrize("kind", ["structured", "general"])
@pytest.mark.parametrize("d", [2, 5, 8, 12])
def test_persistencies_keep_an_optimum(kind: str, d: int) -> None:
    fixed_some = 0
    for seed in range(12):
        h, q = (structured if kind == "structured" else general)(d, seed)
        if kind == "structured":
            h = h - 0.8 * np.random.default_rng(seed).random(d) * (np.arange(d) % 3 == 0)  # some strong maps
        ones, zeros = persistencies(h, q)
        assert not (ones & zeros).any()
        states, energies = all_energies(h, q)
        consistent = (states[:, ones] == 1).all(1) & (states[:, zeros] == 0).all(1)
        # the fixed values hold together in at least one optimum
        assert energies[consistent].min() <= energies.min() + tolerance(h, q)
        fixed_some += int(ones.sum() + zeros.sum())
    assert fixed_some > 0  # the rules do fire on these models


@pytest.mark.parametrize("d", [3, 6, 10])
def test_roof_duality_fixings_hold_in_every_optimum(d: int) -> None:
    for seed in range(6):
        h, q = general(d, seed)
        bqm = to_bqm(h, q)
        fixed = roof_duality_fixings(bqm)
        states, energies = all_energies(h, q)
        optima = states[energies <= energies.min() + tolerance(h, q)]
        for v, value in fixed.items():
            assert (optima[:, int(v)] == value).all()


def test_a_search_stopped_by_the_clock_keeps_a_valid_bound() -> None:
    for seed in range(4):
        h, q = structured(18, seed, density=1.0)
        _, energies = all_energies(h, q)
        r = branch_and_bound(h, q, time_limit=0.0, clock_every=1)
        assert r.fixed < 18 and not r.optimal
        assert r.bound <= energies.min() + tolerance(h, q)
        assert r.energy >= energies.min() - tolerance(h, q)
        assert r.gap == pytest.approx(r.energy - r.bound)
        full = branch_and_bound(h, q)
        assert full.optimal and full.energy == pytest.approx(energies.min(), abs=tolerance(h, q))


def test_incumbent_and_trivial_models() -> None:
    h, q = structured(10, 3)
    best = branch_and_bound(h, q)
    again = branch_and_bound(h, q, incumbent=best.x)
    assert again.optimal and again.energy == pytest.approx(best.energy, abs=tolerance(h, q))
    empty = branch_and_bound(np.zeros(0), np.zeros((0, 0)), 1.5)
    assert empty.optimal and empty.energy == 1.5 and empty.x.shape == (0,)
    positive = branch_and_bound(np.array([0.5, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert positive.optimal and positive.energy == 0.0 and positive.x.tolist() == [0, 0]
    assert nonnegative_couplings(q) and not nonnegative_couplings(np.array([[0.0, -1.0], [-1.0, 0.0]]))
    with pytest.raises(QxaiError, match="symmetric"):
        branch_and_bound(np.zeros(2), np.array([[0.0, 1.0], [0.0, 0.0]]))


def _summary_of(monkeypatch: pytest.MonkeyPatch, maps: int, limit: int, timed_out: bool) -> dict:
    """The explain summary of 4 images through a conv layer of ``maps`` maps; ``limit`` is the
    enumeration limit of ground_truth="auto" (exact-mip above it); ``timed_out`` makes exact-mip
    report every problem unproven (as when its time limit binds on a large layer)."""
    import torch

    from qxai.anneal.samplers import mip
    from qxai.explain import qa
    from qxai.pipeline.explain import _summary, explanation_records

    monkeypatch.setattr(qa, "GROUND_TRUTH_MAX_VARIABLES", limit)
    if timed_out:
        real = mip.ExactMIPSampler.sample

        def unproven(self, bqm, **kw):
            ss = real(self, bqm, **kw)
            ss.info.update(optimal=False, bound=ss.info["bound"] - 0.25, gap=ss.info["gap"] + 0.25)
            return ss

        monkeypatch.setattr(mip.ExactMIPSampler, "sample", unproven)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, maps, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(maps * 6 * 6, 3))  # fmt: skip
    explainer = qa.QAFeatureMapExplainer(net, "1", solver="batch-sa")
    exp = explainer.explain(torch.rand(4, 1, 6, 6), target=0)
    records = explanation_records(exp, np.arange(4), np.zeros(4, dtype=int), ["a", "b", "c"])
    return _summary(records, "batch-sa", "1", ["a", "b", "c"])


def test_summary_says_not_certified_with_the_gap_for_a_large_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _summary_of(monkeypatch, 48, 0, timed_out=True)
    solved = summary["images"] - summary["problems_without_variables"]
    assert solved > 0 and summary["not_certified"] == solved and summary["share_certified"] == 0.0
    assert summary["certification"].startswith("not certified, gap ")
    gap = float(summary["certification"].split("gap ")[1].split(" ")[0])
    assert gap >= 0.25 * (1 - 1e-2)  # at least what the time-out added (printed to 3 digits)


def test_summary_says_certified_for_a_small_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _summary_of(monkeypatch, 12, 20, timed_out=False)  # d ≤ 12: enumerated
    assert summary["certification"] == "certified" and summary["not_certified"] == 0
    large = _summary_of(monkeypatch, 40, 0, timed_out=False)  # above enumeration: bnb proves it
    assert large["certification"] == "certified" and large["share_certified"] == 1.0
