"""The statistics behind every verdict, each against an oracle on a constructed case: interval
coverage, paired tests, ties, the size-matched overlap, the references and the repaired metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import pairwise_distances, silhouette_score

from qxai.evaluate import EvalSettings
from qxai.evaluate.disentangle import overlap_from_matrix, selection_matrix, silhouette_precomputed
from qxai.evaluate.localisation import relevance_mass
from qxai.evaluate.metrics import METRICS
from qxai.evaluate.references import alpha_within_class, class_prototypes, permutation_null
from qxai.evaluate.runner import EvalContext, MethodResult
from qxai.evaluate.sanity import abs_spearman
from qxai.evaluate.statistics import MIN_VALUES, bootstrap_interval, bootstrap_statistic, paired_test, verdict


def test_bootstrap_interval_covers_the_true_mean_at_the_stated_rate():
    # 400 independent samples of 100 exponential values (skewed: a harder case than a normal);
    # the 95 % percentile interval must cover the true mean 1.0 on 95 % ± 3 % of them
    # (the binomial sd of the rate over 400 draws is 1.1 %).
    rng = np.random.default_rng(12345)
    hits = []
    for draw in range(400):
        values = rng.exponential(1.0, size=100)
        lo, hi = bootstrap_interval(values, seed=draw)
        hits.append(lo <= 1.0 <= hi)
    assert 0.92 <= np.mean(hits) <= 0.98, np.mean(hits)


def test_bootstrap_interval_ignores_undefined_values_and_needs_enough():
    values = np.array([np.nan, *[1.0] * (MIN_VALUES - 1)])
    assert np.isnan(bootstrap_interval(values, seed=0)[0])  # MIN_VALUES − 1 finite values: no interval
    lo, hi = bootstrap_interval(np.append(values, 1.0), seed=0)
    assert lo == hi == 1.0
    assert np.isnan(bootstrap_interval(np.array([np.nan, 2.0]))[0])
    assert np.isnan(bootstrap_statistic(np.mean, MIN_VALUES - 1)[0])
    test = paired_test(np.mean, np.mean, MIN_VALUES - 1)
    assert np.isnan(test.interval[0]) and np.isnan(test.p_value)


def test_paired_test_finds_a_shift_and_not_its_absence():
    rng = np.random.default_rng(0)
    base = rng.normal(size=80)
    shifted = base + 0.5 + rng.normal(scale=0.1, size=80)  # paired: same images, consistent shift
    t = paired_test(lambda i: shifted[i].mean(), lambda i: base[i].mean(), 80, seed=1)
    assert t.interval[0] > 0 and t.p_value < 0.01 and t.effect_size > 3
    same = paired_test(lambda i: base[i].mean(), lambda i: base[i].mean(), 80, seed=1)
    assert same.difference == 0 and same.p_value == 1.0


def test_verdict_says_tie_when_intervals_overlap_and_flags_non_discriminative_metrics():
    v = verdict({"qa": 0.27, "gradcam": 0.26, "lime": 0.5}, {"qa": (0.25, 0.3), "gradcam": (0.24, 0.28),
                "lime": (0.45, 0.55)}, "lower")  # fmt: skip
    assert (
        v.best is None and v.tied == ("gradcam", "qa") and v.label == "tie: gradcam, qa" and v.discriminative
    )
    w = verdict({"a": 0.98, "b": 0.981}, {"a": (0.97, 0.99), "b": (0.975, 0.985)}, "higher")
    assert not w.discriminative and w.best is None
    assert verdict({"a": 1.0}, {}, "none").leader is None  # diagnostics never declare a best


def _ctx(labels: np.ndarray, num_classes: int) -> EvalContext:
    n = len(labels)
    return EvalContext(
        torch.nn.Identity(), "x", torch.zeros(n, 1, 2, 2), torch.as_tensor(labels), None,
        EvalSettings(resamples=200, null_draws=40), 0, num_classes, {}, {},
    )  # fmt: skip


def test_size_matched_overlap_does_not_reward_a_set_size_difference():
    # Two methods rank the maps identically; "small" keeps one map per image, "large" marks five maps
    # positive. Their own-set overlaps differ only because of set size; size-matched, they are equal.
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    weights = rng.normal(size=(30, 8)) + 3 * np.eye(8)[labels]  # each class prefers one map
    top1 = np.argmax(weights, axis=1)
    ctx = _ctx(labels, 3)
    qa = MethodResult("qa", extras={"selected": [[int(k)] for k in top1], "channel_weights": weights})
    only_top = np.where(weights >= weights.max(1, keepdims=True), weights, -1.0)
    small = MethodResult("small", extras={"channel_weights": only_top})
    large = MethodResult("large", extras={"channel_weights": weights - np.sort(weights, 1)[:, [-6]]})
    ctx.results.update({"qa": qa, "small": small, "large": large})
    full = np.arange(30)
    sized = {n: METRICS["overlap_mean"].compute(ctx, r)(full) for n, r in ctx.results.items()}
    own = {n: METRICS["overlap_activated_mean"].compute(ctx, r)(full) for n, r in ctx.results.items()}
    assert sized["small"] == pytest.approx(sized["large"]) == pytest.approx(sized["qa"])
    assert own["large"] > own["small"] + 0.2  # the confounded variant would rank them apart


def test_references_bracket_a_class_constant_selection():
    labels = np.repeat(np.arange(4), 12)
    sets = [[int(c), 4 + (i % 2)] for i, c in enumerate(labels)]  # one class map + one shared map
    sel = selection_matrix(sets, 6)
    ours = overlap_from_matrix(sel, labels, 4)[0]
    null = permutation_null(sel, labels, 4, draws=100, seed=0)
    assert ours == pytest.approx(0.5) and null["mean"] > 0.9 and null["interval"][0] > ours
    proto = class_prototypes(sets, labels)
    assert all(p[0] == c and len(p) == 2 for p, c in zip(proto, labels, strict=True))


def test_alpha_spread_is_detected_as_constant_only_when_it_is():
    labels = np.array([0, 0, 1, 1])
    same = np.array([[1.0, -1.0], [1.0, -1.0], [2.0, 0.5], [2.0, 0.5]])
    assert (
        alpha_within_class(same, labels)["constant"]
        and "only the redundancy J" in (alpha_within_class(same, labels)["sentence"])
    )
    varied = same + np.array([[0.0, 0.0], [0.3, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert not alpha_within_class(varied, labels)["constant"]


def test_blank_and_sign_flipped_maps_in_the_sanity_correlation():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 5, 5))
    rho, blank = abs_spearman(maps, -maps)  # a sign flip is a perfect (unsigned) agreement
    assert rho == pytest.approx([1.0, 1.0, 1.0]) and blank.tolist() == [0.0, 0.0, 0.0]
    rand = maps.copy()
    rand[1] = 0.0  # the randomised model's map went blank
    rho, blank = abs_spearman(maps, rand)
    assert np.isnan(rho[1]) and blank.tolist() == [0.0, 1.0, 0.0]  # counted apart, not as ρ = 0


def test_relevance_mass_scores_a_blank_map_zero_instead_of_dropping_it():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True
    sal = np.zeros((2, 4, 4))
    sal[0, 0, 0] = 1.0
    assert relevance_mass(sal, masks).tolist() == [1.0, 0.0]


def test_silhouette_from_precomputed_distances_equals_sklearn_on_resamples():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
    d = pairwise_distances(x)
    for _ in range(5):
        idx = rng.integers(0, 40, 40)  # duplicates, as a bootstrap draws them
        expected = silhouette_score(d[np.ix_(idx, idx)], y[idx], metric="precomputed")
        assert silhouette_precomputed(d[np.ix_(idx, idx)], y[idx]) == pytest.approx(expected, abs=1e-12)


def test_set_level_intervals_contain_the_estimate_despite_resampling_bias():
    # the class overlap of two overlapping classes is biased low under resampling (noisier
    # histograms look less alike): every draw may lie below the estimate, so a percentile interval
    # misses it; the interval re-centred on the estimate keeps the spread and contains it
    from qxai.evaluate.statistics import bootstrap_statistic

    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 15)
    sel = selection_matrix([rng.choice(12, size=3, replace=False).tolist() for _ in labels], 12)

    def stat(i):
        return overlap_from_matrix(sel[i], labels[i], 2)[0]

    point = stat(np.arange(30))
    lo, hi = bootstrap_statistic(stat, 30, seed=0)
    assert lo <= point <= hi
