"""The planted benchmark: its truth checked by ablation and by the causal oracle, its metric by brute
force, its difficulty option, and one end-to-end run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from qxai.data import load_dataset
from qxai.data.planted import DIFFICULTIES, NUM_CLASSES, load_planted, render_planted
from qxai.errors import QxaiError
from qxai.evaluate.causal import active_maps, map_oracle
from qxai.evaluate.metrics import METRICS
from qxai.evaluate.runner import EvalContext, EvalSettings, MethodResult
from qxai.models.planted import MapTruth, PlantedCNN, map_truth
from qxai.seeding import numpy_rng

SEED = 0
CHANCE = 1.0 / NUM_CLASSES


@pytest.fixture(scope="module", params=sorted(DIFFICULTIES))
def case(request: pytest.FixtureRequest) -> tuple[str, PlantedCNN, torch.Tensor, torch.Tensor]:
    difficulty = request.param
    data = load_planted(count=400, difficulty=difficulty, seed=SEED)
    model = PlantedCNN(1, NUM_CLASSES, (32, 32), redundant=difficulty == "redundant").eval()
    return difficulty, model, data.images, data.labels


@contextlib.contextmanager
def ablated(model: PlantedCNN, channels: list[int]) -> Iterator[None]:
    """Within the body the explained layer's ``channels`` are zero."""

    def hook(_m: torch.nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, channels] = 0.0
        return out

    handle = model.maps.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def accuracy(model: PlantedCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def test_ablating_the_designated_maps_destroys_accuracy_and_others_do_not(case) -> None:
    difficulty, model, images, labels = case
    designated = sorted({k for ks in model.designated_maps.values() for k in ks})
    others = [k for k in range(model.designated.shape[1]) if k not in designated]
    full = accuracy(model, images, labels)
    assert full >= 0.98, difficulty
    with ablated(model, designated):
        # every class logit loses its only class-specific input: one class is predicted for all
        assert abs(accuracy(model, images, labels) - CHANCE) <= 0.05
    count = min(len(designated), len(others))
    picked = sorted(numpy_rng(SEED, "ablate").choice(others, count, replace=False).tolist())
    with ablated(model, picked):
        # the other maps reach every logit alike (common mode): no prediction can change
        assert accuracy(model, images, labels) >= full - 1.0 / len(labels)


def test_either_copy_carries_the_evidence_in_the_redundant_model() -> None:
    data = load_planted(count=400, difficulty="redundant", seed=SEED)
    model = PlantedCNN(1, NUM_CLASSES, (32, 32), redundant=True).eval()
    groups = model.designated_groups
    originals = [g[0] for gs in groups.values() for g in gs]
    copies = [k for gs in groups.values() for g in gs for k in g[1:]]
    assert copies and not set(copies) & set(originals)
    with ablated(model, [g[0] for gs in groups.values() for g in gs if len(g) > 1]):
        assert accuracy(model, data.images, data.labels) >= 0.95  # the copies stand in


def test_the_causal_oracle_reproduces_the_designated_maps(case) -> None:
    difficulty, model, images, labels = case
    truth = map_truth(model)
    assert truth is not None and truth.layer == "maps"
    with torch.no_grad():
        correct = np.flatnonzero((model(images[:60]).argmax(1) == labels[:60]).numpy())
    active = active_maps(model, "maps", images[:60])
    same, covered = 0, 0
    for i in correct:
        target = int(labels[i])
        groups = truth.on_image(target, active[i])  # the designated maps of the parts it shows
        designated = {k for g in groups for k in g}
        oracle = map_oracle(model, "maps", images[i : i + 1], target, len(designated))
        same += set(oracle.keep_set) == designated
        small = map_oracle(model, "maps", images[i : i + 1], target, len(groups))
        covered += all(len(set(small.keep_set) & set(g)) == 1 for g in groups)  # one map per group
    assert same >= 0.95 * len(correct), difficulty
    assert covered >= 0.95 * len(correct), difficulty


def _context(truth: MapTruth | None, targets: np.ndarray, results: dict[str, MethodResult],
             layer: str = "maps") -> EvalContext:  # fmt: skip
    n = len(targets)
    return EvalContext(
        None, layer, torch.zeros(n, 1, 4, 4), torch.as_tensor(targets), None,  # type: ignore[arg-type]
        EvalSettings(), SEED, NUM_CLASSES, {}, results, map_truth=truth,
    )  # fmt: skip


@pytest.mark.parametrize("difficulty", ["redundant", "partial"])
def test_planted_precision_is_one_for_the_truth_and_a_count_otherwise(difficulty) -> None:
    model = PlantedCNN(1, NUM_CLASSES, (32, 32), redundant=difficulty == "redundant").eval()
    truth = map_truth(model)
    assert truth is not None
    data = load_planted(count=50, difficulty=difficulty, seed=SEED)
    targets = data.labels.numpy()
    # the per-image truth by brute force: a designated map counts where it fires on the image
    with torch.no_grad():
        fires = (model.maps(data.images).amax(dim=(2, 3)) > 0).numpy()
    shown = [{k for g in truth.groups[int(t)] if any(fires[i, m] for m in g) for k in g}
             for i, t in enumerate(targets)]  # fmt: skip
    exact = MethodResult("qa", extras={"selected": [sorted(d) for d in shown]})
    # a class lookup: every designated map of the class, whether the image shows its part or not
    lookup = MethodResult("lookup", extras={"selected": [sorted(truth.maps(t)) for t in targets]})
    weights = numpy_rng(SEED, "precision test").standard_normal((50, 16))
    cam = MethodResult("cam", extras={"channel_weights": weights})
    ctx = EvalContext(model, "maps", data.images, data.labels, None, EvalSettings(), SEED, NUM_CLASSES, {},
                      {"qa": exact, "cam": cam}, map_truth=truth)  # fmt: skip
    metric, recall = METRICS["planted_precision"], METRICS["planted_recall"]
    assert metric.applies(ctx, exact) is None and metric.applies(ctx, cam) is None
    np.testing.assert_array_equal(metric.compute(ctx, exact), np.ones(50))  # type: ignore[misc]
    np.testing.assert_array_equal(recall.compute(ctx, exact), np.ones(50))  # type: ignore[misc]
    got = metric.compute(ctx, cam)  # type: ignore[misc]
    for i in range(50):
        k = len(shown[i])
        top = set(np.argsort(-weights[i])[:k].tolist())  # size-matched: the top |S_QA| by weight
        assert got[i] == len(top & shown[i]) / k
    assert not np.all(got == 1.0)  # random weights do miss
    ctx.results["qa"] = lookup  # scored as the reference itself: |S| = |D(c)|
    missed = metric.compute(ctx, lookup)  # type: ignore[misc]
    one_part = np.array([len(d) < len(truth.maps(t)) for d, t in zip(shown, targets, strict=True)])
    assert one_part.any() == (difficulty == "partial")  # partial: some images show one part
    np.testing.assert_array_equal(missed[~one_part], 1.0)
    assert (missed[one_part] < 1.0).all()  # the lookup keeps the map of a part that is not there


def test_planted_metrics_say_why_they_do_not_apply() -> None:
    targets = np.array([0, 1])
    qa = MethodResult("qa", extras={"selected": [[0], [2]]})
    reason = METRICS["planted_precision"].applies(_context(None, targets, {"qa": qa}), qa)
    assert reason is not None and "designated maps" in reason and "\n" not in reason
    truth = MapTruth("maps", {0: ((0,),), 1: ((2,),)})
    reason = METRICS["planted_precision"].applies(_context(truth, targets, {"qa": qa}, layer="conv"), qa)
    assert reason is not None and "'maps'" in reason
    cam = MethodResult("cam", extras={"channel_weights": np.ones((2, 4))})
    reason = METRICS["planted_precision"].applies(_context(truth, targets, {"cam": cam}), cam)
    assert reason is not None and "qa" in reason  # size-matched to QA


def _active(images: torch.Tensor, channels: list[int]) -> np.ndarray:
    """``(N,)`` how many of ``channels`` fire anywhere on each image (the matched detectors)."""
    with torch.no_grad():
        pooled = PlantedCNN(1, NUM_CLASSES, (32, 32)).eval().maps(images).amax(dim=(2, 3))
    return (pooled[:, channels] > 0).sum(1).numpy()


def test_the_difficulty_option_changes_the_data_as_documented() -> None:
    data = {d: load_dataset("planted", seed=SEED, count=200, difficulty=d).test for d in DIFFICULTIES}
    loaded = {d: load_planted(count=200, difficulty=d, seed=SEED) for d in DIFFICULTIES}
    assert all(ds.masks is not None and ds.image_shape == (1, 32, 32) for ds in data.values())
    # redundant: the same images as easy (its difficulty lies in the model's copies)
    assert torch.equal(loaded["redundant"].images, loaded["easy"].images)
    assert not torch.equal(loaded["overlap"].images, loaded["easy"].images)
    # every mask is the footprint of the class's two 7×7 parts (partial: of the parts shown)
    assert all(bool((ds.masks.sum(dim=(1, 2)) == 2 * 49).all()) for d, ds in loaded.items() if d != "partial")
    _, labels, masks, shown = render_planted(200, 32, "partial", SEED)
    assert np.array_equal(masks.sum(axis=(1, 2)), 49 * shown.sum(axis=1)) and shown.any(axis=1).all()
    assert 0.4 <= (~shown).any(axis=1).mean() <= 0.6  # half the images show one part
    # partial: a part's detector fires exactly where the image shows that part (the per-image truth)
    fires = np.stack([_active(loaded["partial"].images[i : i + 1], [2 * int(labels[i]) + j])
                      for i in range(200) for j in range(2)]).reshape(200, 2)  # fmt: skip
    assert np.mean(fires.astype(bool) == shown) >= 0.99
    # overlap: exactly one part of another class per image; easy: none
    for name, want in (("easy", 0), ("overlap", 1)):
        ds = loaded[name]
        other = [
            _active(ds.images[i : i + 1], [k for k in range(8) if k // 2 != int(ds.labels[i])])[0]
            for i in range(len(ds))
        ]
        assert np.mean(np.asarray(other) == want) >= 0.95, name
    # distractors: more distractor detectors fire than in easy
    distractor_maps = list(range(8, 16))
    assert _active(loaded["distractors"].images, distractor_maps).mean() > (
        _active(loaded["easy"].images, distractor_maps).mean() + 1.5
    )
    # the data seed draws the images; the split seed only splits them
    assert not torch.equal(load_planted(count=200, seed=1).images, loaded["easy"].images)
    again = load_dataset("planted", seed=5, count=200, difficulty="easy")
    assert torch.equal(torch.sort(torch.cat([again.train.indices, again.test.indices])).values,
                       torch.arange(200))  # fmt: skip


def test_an_unknown_difficulty_names_the_choices() -> None:
    with pytest.raises(QxaiError) as err:
        load_dataset("planted", difficulty="hard")
    message = str(err.value)
    assert "\n" not in message and "hard" in message
    assert all(name in message for name in DIFFICULTIES)


def test_planted_cnn_refuses_other_data() -> None:
    with pytest.raises(QxaiError, match="--dataset planted"):
        PlantedCNN(3, 10, (32, 32))


def test_run_planted_reports_every_method_with_intervals(tmp_path, cache_dir) -> None:
    from qxai.evaluate import EvalSettings as Scoring
    from qxai.pipeline.evaluate import EvaluateSettings
    from qxai.pipeline.planted import run_planted

    settings = EvaluateSettings(scoring=Scoring(resamples=100, null_draws=20))
    doc = run_planted(tmp_path / "run", seed=0, difficulty="overlap", methods=("qa", "gradcam"),
                      per_class=3, count=200, settings=settings)  # fmt: skip
    for method in ("qa", "gradcam"):
        for metric in ("planted_precision", "planted_recall", "pointing_game", "relevance_mass"):
            assert np.isfinite(doc[method][metric]), (method, metric)
            low, high = doc["intervals"][method][metric]
            assert low <= doc[method][metric] <= high
    assert doc["summary"]["model test accuracy"] >= 0.95
