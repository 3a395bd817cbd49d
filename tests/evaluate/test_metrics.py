"""Each metric on a hand-made case with a known answer, and against an independent oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from qxai.errors import QxaiError
from qxai.evaluate import METRICS, select_metrics
from qxai.evaluate.cost import PeakMemory
from qxai.evaluate.disentangle import (
    activated_maps,
    bhattacharyya_matrix,
    class_histograms,
    off_diagonal_summary,
    overlap_scores,
    saliency_silhouette,
)
from qxai.evaluate.faithfulness import curve_auc, keep_top_drop, perturbation_curves, pixel_ranks
from qxai.evaluate.localisation import pointing_game, relevance_mass
from qxai.evaluate.sanity import parameter_layers, randomisation_stages, randomised_copy, rowwise_spearman

# ------------------------------------------------------------------ disentanglement


def test_identical_histograms_give_bc_one_and_disjoint_ones_zero():
    same = overlap_scores([[0, 1], [0, 1], [0, 1], [0, 1]], [0, 0, 1, 1], num_maps=3, num_classes=2)
    assert same[0] == pytest.approx(1.0) and same[1] == pytest.approx(1.0)
    apart = overlap_scores([[0], [1], [2], [2]], [0, 0, 1, 1], num_maps=3, num_classes=2)
    assert apart[0] == 0.0 and apart[1] == 0.0
    np.testing.assert_allclose(np.diag(apart[2]), [1.0, 1.0])


def test_bhattacharyya_of_known_histograms():
    p = class_histograms([[0], [1], [0, 1, 2, 3]], [0, 0, 1], num_maps=4, num_classes=2)
    np.testing.assert_allclose(p, [[0.5, 0.5, 0, 0], [0.25] * 4])
    bc = bhattacharyya_matrix(p)
    assert bc[0, 1] == pytest.approx(2 * np.sqrt(0.5 * 0.25))


def test_class_without_selection_is_ignored_in_the_summary():
    mean, worst, m = overlap_scores([[0], [], [0]], [0, 1, 2], num_maps=2, num_classes=3)
    assert np.isnan(m[1]).all() and mean == 1.0 and worst == 1.0
    assert np.isnan(off_diagonal_summary(np.full((2, 2), np.nan))[0])


def test_activated_maps_positive_and_top_k():
    w = np.array([[0.3, -0.1, 0.9, 0.3], [-1.0, -2.0, -0.5, -0.1]])
    assert activated_maps(w) == [[0, 2, 3], []]
    # size-matched: exactly k maps by weight, positive or not; tie 0.3/0.3 → lower index
    assert activated_maps(w, sizes=[2, 3]) == [[0, 2], [0, 2, 3]]


def test_silhouette_perfect_beats_random():
    rng = np.random.default_rng(0)
    protos = rng.random((3, 8, 8))
    labels = np.repeat(np.arange(3), 10)
    perfect = protos[labels] + 0.01 * rng.random((30, 8, 8))
    random = rng.random((30, 8, 8))
    assert saliency_silhouette(perfect, labels) > 0.9
    assert abs(saliency_silhouette(random, labels)) < 0.1
    assert np.isnan(saliency_silhouette(random[:3], [0, 0, 0]))


# ------------------------------------------------------------------ faithfulness


class Linear2(torch.nn.Module):
    """logits = [w·x, 0]: the class-0 probability is sigmoid(w·x), known in closed form."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def brute_force_deletion(w: np.ndarray, img: np.ndarray, sal: np.ndarray, steps: int) -> np.ndarray:
    """One image, one step at a time, in plain numpy: the oracle for the batched implementation."""
    order = np.argsort(-sal.ravel(), kind="stable")
    out = []
    for k in np.round(np.linspace(0, sal.size, steps + 1)).astype(int):
        x = img.ravel().copy()
        x[order[:k]] = 0.0
        out.append(1 / (1 + np.exp(-(x * w.ravel()).sum())))
    return np.array(out)


def test_deletion_curve_matches_a_brute_force_oracle():
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.normal(size=(1, 1, 5, 5))).float()
    imgs = torch.from_numpy(rng.random((3, 1, 5, 5))).float()
    sal = rng.random((3, 5, 5))  # distinct values: no ties, so the order is unambiguous
    curves = perturbation_curves(
        Linear2(w), imgs, torch.zeros(3, dtype=torch.long), sal, steps=5, batch_size=7
    )
    for i in range(3):
        oracle = brute_force_deletion(w.numpy(), imgs[i].numpy(), sal[i], 5)
        np.testing.assert_allclose(curves[i], oracle, rtol=1e-5)


def test_perfect_ordering_beats_random_in_deletion_and_insertion():
    w = torch.zeros(1, 1, 6, 6)
    w[..., :2, :2] = 3.0  # only the top-left corner carries class-0 evidence
    model, imgs, t = Linear2(w), torch.ones(4, 1, 6, 6), torch.zeros(4, dtype=torch.long)
    perfect = np.broadcast_to(w[0, 0].numpy(), (4, 6, 6)).copy()
    random = np.random.default_rng(0).random((4, 6, 6))
    d_perfect = curve_auc(perturbation_curves(model, imgs, t, perfect, steps=36)).mean()
    d_random = curve_auc(perturbation_curves(model, imgs, t, random, steps=36)).mean()
    i_perfect = curve_auc(
        perturbation_curves(model, imgs, t, perfect, mode="insertion", fill="zero", steps=36)
    )
    i_random = curve_auc(perturbation_curves(model, imgs, t, random, mode="insertion", fill="zero", steps=36))
    assert d_perfect < d_random and i_perfect.mean() > i_random.mean()
    # perfect deletion: 4 of 36 pixels remove all evidence → p falls from sigmoid(12) to 1/2 at k=4
    expected = np.array([1 / (1 + np.exp(-3.0 * (4 - min(k, 4)))) for k in range(37)])
    first = perturbation_curves(model, imgs[:1], t[:1], perfect[:1], steps=36)[0]
    np.testing.assert_allclose(first, expected, rtol=1e-5)


def test_keep_top_drop_known_answer():
    w = torch.zeros(1, 1, 4, 4)
    w[..., 0, :] = 1.0  # the first row (4 of 16 pixels = 25 %) holds the evidence
    model, imgs, t = Linear2(w), torch.ones(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)
    good = np.broadcast_to(w[0, 0].numpy(), (2, 4, 4)).copy()
    bad = 1.0 - good
    assert keep_top_drop(model, imgs, t, good, keep=0.25) == pytest.approx([0.0, 0.0], abs=1e-6)
    p = 1 / (1 + np.exp(-4.0))
    assert keep_top_drop(model, imgs, t, bad, keep=0.25) == pytest.approx(100 * (p - 0.5) / p, rel=1e-5)
    with pytest.raises(QxaiError, match="keep must be a fraction"):
        keep_top_drop(model, imgs, t, good, keep=1.5)


def test_pixel_ranks_break_ties_by_seed_not_raster_order():
    flat = np.zeros((1, 4, 4))
    a, b = pixel_ranks(flat, seed=0), pixel_ranks(flat, seed=1)
    assert sorted(a[0]) == list(range(16)) and not np.array_equal(a, b)
    assert not np.array_equal(a[0], np.arange(16))


def test_perturbation_input_errors():
    model = Linear2(torch.ones(1, 1, 2, 2))
    with pytest.raises(QxaiError, match="saliency has shape"):
        perturbation_curves(
            model, torch.ones(1, 1, 2, 2), torch.zeros(1, dtype=torch.long), np.zeros((1, 3, 3))
        )
    with pytest.raises(QxaiError, match="substrate must be one of"):
        perturbation_curves(model, torch.ones(1, 1, 2, 2), torch.zeros(1, dtype=torch.long),
                            np.zeros((1, 2, 2)), fill="noise")  # fmt: skip


# ------------------------------------------------------------------ localisation


def test_pointing_game_and_relevance_mass_on_synthetic_masks():
    masks = np.zeros((3, 5, 5), dtype=bool)
    masks[:, 1:3, 1:3] = True
    inside = np.zeros((3, 5, 5))
    inside[:, 2, 2] = 1.0
    outside = np.zeros((3, 5, 5))
    outside[:, 4, 4] = 1.0
    assert pointing_game(inside, masks).tolist() == [1.0] * 3
    assert pointing_game(outside, masks).tolist() == [0.0] * 3
    assert relevance_mass(inside, masks).tolist() == [1.0] * 3 and relevance_mass(outside, masks).sum() == 0
    # a blank map points at a random pixel (ties broken by the seed), not at the whole mask
    blank_hits = pointing_game(np.ones((400, 5, 5)), np.repeat(masks[:1], 400, axis=0), seed=1)
    assert abs(blank_hits.mean() - 4 / 25) < 0.06  # 4 of 25 pixels lie in the mask; 3.3 binomial sd
    assert np.isnan(pointing_game(inside[:1], np.zeros((1, 5, 5), bool))[0])
    with pytest.raises(QxaiError, match="masks have shape"):
        pointing_game(inside, masks[:, :4])


@pytest.mark.slow  # importing quantus alone takes ~10 s
def test_localisation_agrees_with_quantus():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(3)
    sal, masks = rng.random((8, 6, 6)), rng.random((8, 6, 6)) > 0.6
    ref_pg = quantus.PointingGame(disable_warnings=True).evaluate_batch(
        a_batch=sal[:, None], s_batch=masks[:, None]
    )
    ref_rm = quantus.RelevanceMassAccuracy(disable_warnings=True).evaluate_batch(
        a_batch=sal[:, None], s_batch=masks[:, None], x_batch=sal[:, None], y_batch=np.zeros(8)
    )
    np.testing.assert_array_equal(pointing_game(sal, masks), np.asarray(ref_pg, dtype=float))
    np.testing.assert_allclose(relevance_mass(sal, masks), ref_rm, rtol=1e-10)


# ------------------------------------------------------------------ sanity


def test_rowwise_spearman_matches_scipy_and_handles_constants():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 4, 4)), rng.random((5, 4, 4))
    b[0] = a[0] ** 2  # monotone: ρ = 1
    b[1, 0, :2] = b[1, 0, 2]  # ties
    ours = rowwise_spearman(a, b)
    ref = [spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(5)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    const = np.zeros((1, 4, 4))
    assert rowwise_spearman(a[:1], const).tolist() == [0.0] and rowwise_spearman(const, const).tolist() == [
        1.0
    ]


def test_randomised_copy_changes_only_the_chosen_layers_and_is_seeded():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2)
    )
    assert parameter_layers(net) == ["3", "0"]
    stages = randomisation_stages(net, "cascading")
    assert stages == [["3"], ["3", "0"]] and randomisation_stages(net, "full") == [["3", "0"]]
    top = randomised_copy(net, ["3"], seed=1)
    assert torch.equal(top[0].weight, net[0].weight) and not torch.equal(top[3].weight, net[3].weight)
    assert torch.equal(
        randomised_copy(net, None, seed=1)[0].weight, randomised_copy(net, None, seed=1)[0].weight
    )
    with pytest.raises(QxaiError, match="randomisation must be one of"):
        randomisation_stages(net, "half")


# ------------------------------------------------------------------ catalogue and cost


def test_metric_catalogue_and_unknown_names():
    assert all(m.direction in ("higher", "lower", "none") and m.definition for m in METRICS.values())
    assert [m.name for m in select_metrics("pointing_game,sanity")] == [
        "pointing_game", "randomisation_abs_spearman", "randomisation_blank_share",
        "class_sensitivity_abs_spearman", "class_sensitivity_blank_share",
    ]  # fmt: skip
    with pytest.raises(QxaiError, match="unknown metric 'deletion'; did you mean 'deletion_auc'"):
        select_metrics(["deletion"])


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory(interval=0.001) as peak:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written so the pages are resident
        block += 1
    assert peak.peak_mb > 40 and peak.seconds > 0


@pytest.mark.slow  # importing quantus alone takes ~10 s
def test_deletion_curves_agree_with_quantus_pixel_flipping():
    quantus = pytest.importorskip("quantus")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 36, 4)).eval()  # fmt: skip
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((5, 1, 6, 6))).float()
    x[:, :, 0, 0] = 0.0  # quantus' "black" is the image minimum: make it 0 as our substrate
    y, sal = torch.tensor([0, 1, 2, 3, 0]), rng.random((5, 6, 6))
    ours = perturbation_curves(model, x, y, sal, steps=9, fill="zero")
    metric = quantus.PixelFlipping(features_in_step=4, perturb_baseline="black", normalise=False,
                                   disable_warnings=True, display_progressbar=False)  # fmt: skip
    ref = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=sal[:, None], softmax=True,
                 device="cpu")  # fmt: skip
    np.testing.assert_allclose(ours[:, 1:], np.asarray(ref), atol=1e-6)  # quantus skips the k = 0 point
