"""exact-mip (CP-SAT or HiGHS on the linearised QUBO) against enumeration and dimod's sampler kit."""

from __future__ import annotations

from pathlib import Path

import dimod
import dimod.testing
import numpy as np
import pytest

from qxai.anneal.planted import frustrated_loops, planted_energy
from qxai.anneal.qubo import explanation_qubos
from qxai.anneal.samplers import get_sampler, sample_many
from qxai.anneal.samplers.exact import ExactEnumerationSampler
from qxai.anneal.samplers.mip import ExactMIPSampler, cardinality_bounds
from qxai.errors import QxaiError


def random_bqm(d: int, vartype: str, seed: int) -> dimod.BinaryQuadraticModel:
    rng = np.random.default_rng(seed)
    bqm = dimod.generators.gnp_random_bqm(d, 0.6, vartype, random_state=seed,
                                          bias_generator=lambda n: rng.uniform(-1, 1, n))  # fmt: skip
    bqm.offset = 0.25
    return bqm


def test_passes_the_dimod_sampler_kit() -> None:
    sampler = ExactMIPSampler(time_limit=5)
    dimod.testing.assert_sampler_api(sampler)
    bqm = random_bqm(6, "SPIN", 0)
    dimod.testing.assert_sampleset_energies(sampler.sample(bqm), bqm)
    dimod.testing.assert_sampleset_energies(sampler.sample(bqm.binary), bqm.binary)


@pytest.mark.parametrize("engine", ["auto", "cp-sat", "highs"])  # auto: cp-sat here (mixed signs)
@pytest.mark.parametrize("vartype", ["BINARY", "SPIN"])
@pytest.mark.parametrize("d", [1, 2, 5, 9, 11])
def test_proves_the_enumerated_optimum(d: int, vartype: str, engine: str) -> None:
    for seed in range(3):
        bqm = random_bqm(d, vartype, seed)
        ss = ExactMIPSampler(time_limit=30, engine=engine).sample(bqm)
        exact = float(ExactEnumerationSampler().sample(bqm).first.energy)
        assert ss.info["optimal"] is True
        assert float(ss.first.energy) == pytest.approx(exact, abs=1e-9)
        assert ss.info["bound"] <= float(ss.first.energy) + 1e-12
        # CP-SAT scales the float objective to integers: its bound is good to ~1e-6 of the scale
        assert ss.info["gap"] <= (1e-8 if engine == "highs" else 1e-5) * max(1.0, abs(exact))
        dimod.testing.assert_sampleset_energies(ss, bqm)


def test_explanation_qubos_through_the_registry() -> None:
    rng = np.random.default_rng(0)
    alpha = np.maximum(rng.standard_normal((4, 14)), 0)
    acts = np.maximum(rng.standard_normal((4, 14, 5, 5)), 0)
    bqms = [bqm for bqm, _ in explanation_qubos(alpha, acts, beta=0.7)]
    sets = sample_many(get_sampler("exact-mip", time_limit=30), bqms, seed=0)
    for bqm, ss in zip(bqms, sets, strict=True):
        exact = float(ExactEnumerationSampler().sample(bqm).first.energy) if len(bqm) else bqm.offset
        assert float(ss.first.energy) == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("engine", ["cp-sat", "highs"])
def test_time_limit_returns_the_best_found_with_a_valid_bound(engine: str) -> None:
    # a planted model too large to prove in 0.05 s: whatever is returned, its bound must hold
    bqm, planted = frustrated_loops(120, seed=3)
    ss = ExactMIPSampler(time_limit=0.05, engine=engine).sample(bqm)
    best = planted_energy(bqm, planted)
    assert ss.info["bound"] <= best + 1e-9  # a proven lower bound is below the true minimum
    assert float(ss.first.energy) >= best - 1e-9
    assert ss.info["gap"] == pytest.approx(float(ss.first.energy) - ss.info["bound"])
    if not ss.info["optimal"]:
        assert ss.info["gap"] > 1e-8 * max(1.0, abs(float(ss.first.energy)))


@pytest.mark.parametrize("engine", ["auto", "bnb", "cp-sat", "highs"])
def test_every_engine_agrees_on_explanation_qubos(engine: str) -> None:
    rng = np.random.default_rng(3)
    alpha = np.maximum(rng.standard_normal((3, 24)), 0)
    acts = np.maximum(rng.standard_normal((3, 24, 5, 5)), 0)
    for bqm, _ in explanation_qubos(alpha, acts, beta=0.7):
        if not len(bqm):
            continue
        ss = ExactMIPSampler(time_limit=30, engine=engine).sample(bqm)
        exact = float(ExactEnumerationSampler().sample(bqm).first.energy)
        assert ss.info["optimal"] and ss.info["engine"] == ("bnb" if engine == "auto" else engine)
        assert float(ss.first.energy) == pytest.approx(exact, abs=1e-9)


def test_bnb_time_limit_returns_a_valid_bound() -> None:
    # an explanation-like model of 150 variables stopped after 1 ms: its bound must hold
    rng = np.random.default_rng(1)
    d = 150
    q = np.triu(rng.uniform(0, 0.3, (d, d)), 1)
    bqm = dimod.BinaryQuadraticModel(-0.7 * rng.random(d), q, 0.0, "BINARY")
    ss = ExactMIPSampler(time_limit=1e-3, engine="bnb").sample(bqm)
    full = ExactMIPSampler(time_limit=600, engine="bnb").sample(bqm)
    assert full.info["optimal"]
    assert ss.info["bound"] <= float(full.first.energy) + 1e-9
    assert float(ss.first.energy) >= float(full.first.energy) - 1e-9
    assert ss.info["gap"] == pytest.approx(float(ss.first.energy) - ss.info["bound"])


def test_cardinality_bounds_hold_for_every_selection() -> None:
    import itertools

    rng = np.random.default_rng(4)
    d = 7
    h = rng.uniform(-1, 1, d)
    q = np.triu(rng.uniform(-1, 1, (d, d)), 1)
    q = q + q.T
    bounds = cardinality_bounds(h, q, 0.3)
    for k in range(d + 1):
        best = min(0.3 + h[list(c)].sum() + q[np.ix_(c, c)].sum() / 2
                   for c in map(list, itertools.combinations(range(d), k)))  # fmt: skip
        assert bounds[k] <= best + 1e-12


def test_rejects_bad_options_and_biases() -> None:
    with pytest.raises(QxaiError, match="time_limit"):
        ExactMIPSampler(time_limit=0)
    with pytest.raises(QxaiError, match="engine"):
        ExactMIPSampler(engine="gurobi")
    bqm = dimod.BinaryQuadraticModel({"a": float("nan")}, {}, 0.0, "BINARY")
    with pytest.raises(QxaiError, match="NaN"):
        ExactMIPSampler().sample(bqm)


def test_empty_model_is_its_offset() -> None:
    ss = ExactMIPSampler().sample(dimod.BinaryQuadraticModel({}, {}, 1.5, "BINARY"))
    assert float(ss.first.energy) == 1.5 and ss.info["optimal"]


def _explainer(monkeypatch: pytest.MonkeyPatch, limit: int, **kw: object):
    import torch

    from qxai.explain import qa

    monkeypatch.setattr(qa, "GROUND_TRUTH_MAX_VARIABLES", limit)  # force exact-mip on small models
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 12, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(12 * 6 * 6, 3))  # fmt: skip
    return qa.QAFeatureMapExplainer(net, "1", solver="batch-sa", **kw), torch.rand(6, 1, 6, 6)


def test_qa_ground_truth_above_enumeration_is_certified_by_mip(monkeypatch: pytest.MonkeyPatch) -> None:
    explainer, images = _explainer(monkeypatch, 0)
    ex = explainer.explain(images, target=0).extras
    for i, d in enumerate(ex["num_variables"]):
        assert ex["ground_certified"][i] is True and ex["ground_gap"][i] == 0.0
        if d == 0:
            continue
        exact = float(enumerate_min(explainer, images, i))
        assert ex["ground_energy"][i] == pytest.approx(exact, abs=1e-9)
        assert ex["ground_bound"][i] <= ex["ground_energy"][i]


def enumerate_min(explainer, images, i: int) -> float:
    from qxai.anneal.enumerate import enumerate_energies

    bqm = explainer.build_qubos(images, target=0).qubos[i][0]
    return float(enumerate_energies(bqm)[1].min())


def test_qa_uncertified_images_are_recorded_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from qxai.anneal.samplers import mip

    real = mip.ExactMIPSampler.sample

    def timed_out(self, bqm, **kw):
        ss = real(self, bqm, **kw)
        ss.info.update(optimal=False, bound=ss.info["bound"] - 0.5, gap=ss.info["gap"] + 0.5)
        return ss

    monkeypatch.setattr(mip.ExactMIPSampler, "sample", timed_out)
    explainer, images = _explainer(monkeypatch, 0, ground_time_limit=1.0)
    ex = explainer.explain(images, target=0).extras
    for i, d in enumerate(ex["num_variables"]):
        if d == 0:
            continue
        assert ex["ground_certified"][i] is False
        assert ex["ground_energy"][i] is not None and ex["ground_energy"][i] <= ex["energy"][i] + 1e-12
        assert ex["ground_gap"][i] == pytest.approx(ex["ground_energy"][i] - ex["ground_bound"][i])
        assert ex["ground_gap"][i] >= 0.5 - 1e-9


def test_qa_never_computes_nothing_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    explainer, images = _explainer(monkeypatch, 20, ground_truth="never")
    ex = explainer.explain(images, target=0).extras
    nonempty = [i for i, d in enumerate(ex["num_variables"]) if d]
    assert all(ex["ground_energy"][i] is None and ex["ground_certified"][i] is False for i in nonempty)
    with pytest.raises(QxaiError, match="ground_time_limit"):
        _explainer(monkeypatch, 20, ground_time_limit=0)


def test_same_model_same_answer() -> None:
    rng = np.random.default_rng(7)
    alpha = np.maximum(rng.standard_normal((1, 24)), 0) + 0.01
    bqm = explanation_qubos(alpha, np.maximum(rng.standard_normal((1, 24, 5, 5)), 0), beta=0.7)[0][0]
    first, second = (ExactMIPSampler(time_limit=30).sample(bqm) for _ in range(2))
    assert np.array_equal(first.record.sample, second.record.sample)
    assert first.info["optimal"] and second.info["optimal"]


@pytest.mark.slow
def test_a_256_map_layer_explains_end_to_end(tmp_path: Path) -> None:
    """`qxai train` + `qxai explain` on resnet18-reduced --maps 256 and on its trunk.layer3 (256
    channels) over a tiny generated ImageFolder: every image gets a ground-truth record, certified
    or explicitly not."""
    import json
    import subprocess
    import sys

    from PIL import Image

    rng = np.random.default_rng(0)
    for name, level in (("dark", 60), ("light", 190)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(rng.normal(level, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")

    def qxai(*args: str) -> None:
        command = [sys.executable, "-m", "qxai", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr

    model = str(tmp_path / "m.pt")
    qxai(
        "train",
        "--dataset",
        f"imagefolder:{tmp_path / 'data'}",
        "--arch",
        "resnet18-reduced",
        "--maps",
        "256",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--no-pretrained",
        "--out",
        model,
    )
    for layer, solver, out in (("reduce", "batch-sa", "ex"), ("trunk.layer3", "exact-mip", "ex3")):
        qxai("explain", "--model", model, "--per-class", "1", "--layer", layer, "--solver", solver,
             "--out", str(tmp_path / out))  # fmt: skip
        doc = json.loads((tmp_path / out / "explanations.json").read_text())
        assert doc["num_maps"] == 256 and doc["images"]
        for image in doc["images"]:
            assert image["num_variables"] > 20  # past enumeration: exact-mip decides
            assert isinstance(image["ground_certified"], bool)
            assert image["ground_energy"] is not None and image["ground_energy"] <= image["energy"] + 1e-9
