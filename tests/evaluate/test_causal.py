"""The causal map oracle against brute force: every subset ablated by hand, one forward each."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch
from torch import nn

from qxai.evaluate.causal import map_oracle, masked_logits, row_bytes, rows_per_batch, set_scores

EPS32 = float(np.finfo(np.float32).eps)


class Net(nn.Module):
    """conv → ReLU (the explained layer ``maps``) → a small nonlinear head; ``skip`` adds a path
    around the layer that needs the input's batch (so the one-image shortcut cannot be used)."""

    def __init__(self, skip: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.maps = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 4 * 4, 8), nn.Tanh(), nn.Linear(8, 3))
        self.skip = nn.Linear(16, 3) if skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.maps(self.conv(x)))
        return out + self.skip(x.flatten(1)) if self.skip is not None else out


def brute(net: Net, image: torch.Tensor, target: int, keep: tuple[int, ...]) -> float:
    """z(S): the maps outside ``keep`` set to zero by hand."""
    with torch.no_grad():
        a = net.maps(net.conv(image))
        mask = torch.zeros(1, 6, 1, 1)
        mask[0, list(keep)] = 1.0
        out = net.head(a * mask)
        if net.skip is not None:
            out = out + net.skip(image.flatten(1))
    return float(out[0, target])


@pytest.fixture(params=[False, True], ids=["sequential", "skip"])
def net_and_image(request: pytest.FixtureRequest) -> tuple[Net, torch.Tensor]:
    torch.manual_seed(3)
    return Net(skip=request.param).eval(), torch.rand(1, 1, 4, 4)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_exact_oracle_is_the_brute_force_best(net_and_image, k: int) -> None:
    net, image = net_and_image
    values = {s: brute(net, image, 1, s) for s in combinations(range(6), k)}
    full, none = brute(net, image, 1, tuple(range(6))), brute(net, image, 1, ())
    drops = {s: full - brute(net, image, 1, tuple(sorted(set(range(6)) - set(s)))) for s in values}
    o = map_oracle(net, "maps", image, target=1, k=k)
    scale = max(abs(v) for v in values.values()) + 1.0
    tol = 64 * EPS32 * scale  # float32 forwards, summed in another order: a few eps of the logits
    assert o.exact and o.searched.startswith("exact")
    assert o.keep_best == pytest.approx(max(values.values()), abs=tol)
    assert values[o.keep_set] == pytest.approx(max(values.values()), abs=tol)
    assert o.drop_best == pytest.approx(max(drops.values()), abs=tol)
    assert o.keep_none == pytest.approx(none, abs=tol) and o.full == pytest.approx(full, abs=tol)
    shares = [(v - none) / (o.keep_best - none) for v in values.values()]
    assert o.keep_random_share == pytest.approx(np.mean(shares), abs=1e-5)
    scores = set_scores(net, "maps", image, 1, o.keep_set, o)
    assert scores["share"] == pytest.approx(1.0, abs=1e-5) and scores["precision"] == 1.0


def test_masked_logits_agree_with_hand_ablation_for_any_masks(net_and_image) -> None:
    net, image = net_and_image
    sets = [(), (0,), (1, 4), (0, 2, 3, 5), tuple(range(6))]
    masks = np.zeros((len(sets), 6), dtype=np.float32)
    for row, s in enumerate(sets):
        masks[row, list(s)] = 1
    got = masked_logits(net, "maps", image, 2, masks, batch=2)  # batches of two: chunks join up
    want = [brute(net, image, 2, s) for s in sets]
    np.testing.assert_allclose(got, want, atol=64 * EPS32 * (max(map(abs, want)) + 1))


def test_beam_search_is_labelled_approximate_and_exact_on_an_additive_head() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 10, 1), nn.ReLU(), nn.Flatten(), nn.Linear(10 * 9, 2)).eval()
    image = torch.rand(1, 1, 3, 3)
    exact = map_oracle(net, "1", image, target=0, k=4)
    beam = map_oracle(net, "1", image, target=0, k=4, max_subsets=10)
    assert exact.exact and not beam.exact and beam.searched == "approximate (beam 32)"
    # a linear head makes z(S) additive over maps, where growing the best sets one map at a time is optimal
    assert beam.keep_set == exact.keep_set and beam.drop_set == exact.drop_set
    assert np.isnan(beam.keep_random_share)


def test_a_size_outside_the_layer_is_refused() -> None:
    from qxai.errors import QxaiError

    net = Net().eval()
    with pytest.raises(QxaiError, match="k = 7 maps asked of a layer with 6"):
        map_oracle(net, "maps", torch.rand(1, 1, 4, 4), target=0, k=7)


def test_causal_metrics_through_qxai_evaluate(digits_checkpoint, tmp_path) -> None:
    """In a real run the oracle is exact on an 8-map layer and every share lies in [0, 1] up to
    rounding; a subset limit below C(8, k) switches it to the beam search, labelled so."""
    import json

    from qxai.cli.main import main

    def run(out, *extra: str) -> tuple[dict, dict]:
        try:
            main(["evaluate", "--model", str(digits_checkpoint), "--methods", "qa,gradcam", "--metrics",
                  "causal", "--per-class", "1", "--resamples", "100", "--out", str(out), *extra])  # fmt: skip
        except SystemExit as done:
            assert not done.code
        return json.loads((out / "metrics.json").read_text()), json.loads((out / "details.json").read_text())

    doc, details = run(tmp_path / "exact")
    for method in ("qa", "gradcam"):
        assert set(details[method]["causal_oracle"]) == {"exact"}
        assert 0 < details[method]["causal_share_random_k"] < 1
        for metric in ("causal_share", "causal_precision", "causal_drop_share"):
            assert -1e-5 <= doc[method][metric] <= 1 + 1e-5, (method, metric, doc[method][metric])
    _, beam = run(tmp_path / "beam", "--metric-option", "causal_share.max_subsets=1")
    assert set(beam["qa"]["causal_oracle"]) == {"approximate"}


@pytest.mark.parametrize("k", [2, 3])
def test_the_memory_budget_sets_the_batches_not_the_result(net_and_image, k: int) -> None:
    """A budget of a few copies per batch gives the oracle of one batch (float32 logits of the same
    copies, other batch shapes: a few eps apart), and a budget below one copy is a one-line error."""
    from qxai.errors import QxaiError

    net, image = net_and_image
    per_row = row_bytes(net, "maps", image)
    assert per_row >= 2 * 4 * (6 * 4 * 4 + 8 + 8 + 3)  # at least twice the maps and the head's outputs
    small = 3.5 * per_row / 2**20  # three copies per batch
    assert rows_per_batch(net, "maps", image, small) == 3
    one, many = map_oracle(net, "maps", image, 1, k), map_oracle(net, "maps", image, 1, k, memory_mb=small)
    tol = 64 * EPS32 * (abs(one.full) + abs(one.keep_best) + 1.0)
    assert many.keep_best == pytest.approx(one.keep_best, abs=tol)
    assert many.drop_best == pytest.approx(one.drop_best, abs=tol)
    assert brute(net, image, 1, many.keep_set) == pytest.approx(one.keep_best, abs=tol)
    with pytest.raises(QxaiError) as err:
        map_oracle(net, "maps", image, 1, k, memory_mb=0.5 * per_row / 2**20)
    assert "causal_share.memory_mb" in str(err.value) and "\n" not in str(err.value)


def test_batches_stay_within_the_speed_working_set_below_the_budget(net_and_image, monkeypatch) -> None:
    """The batch holds what fits in ``BATCH_MB`` (a cache-sized working set) when that is less than
    the memory budget; a copy larger than the working set still runs, one at a time."""
    from qxai.evaluate import causal

    net, image = net_and_image
    per_row = row_bytes(net, "maps", image)
    monkeypatch.setattr(causal, "BATCH_MB", 5.5 * per_row / 2**20)
    assert rows_per_batch(net, "maps", image) == 5
    assert rows_per_batch(net, "maps", image, 3.5 * per_row / 2**20) == 3  # the budget is the cap
    monkeypatch.setattr(causal, "BATCH_MB", 0.5 * per_row / 2**20)
    assert rows_per_batch(net, "maps", image) == 1


def test_an_oracle_above_its_memory_budget_is_a_one_line_cli_error(digits_checkpoint, tmp_path, capsys):
    from qxai.cli.main import main

    args = ["evaluate", "--model", str(digits_checkpoint), "--methods", "qa,gradcam", "--metrics", "causal",
            "--per-class", "1", "--metric-option", "causal_share.memory_mb=0.000001",
            "--out", str(tmp_path / "e")]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    err = capsys.readouterr().err
    assert done.value.code == 2 and "causal_share.memory_mb" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e" / "metrics.json").exists()


# --------------------------------------------------------------------------- references, baselines, ceiling


class LinearHead(nn.Module):
    """conv → ReLU (``maps``) → linear head: each map adds Σ W·A to the logit, so the best k maps
    are exactly the k largest contributions."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.maps = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 4 * 4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.maps(self.conv(x)))


def test_gradient_x_activation_is_the_keep_oracle_on_a_linear_head() -> None:
    from qxai.evaluate.causal import gradient_activation_sets

    torch.manual_seed(5)
    net, images = LinearHead().eval(), torch.rand(6, 1, 4, 4)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    sets = gradient_activation_sets(net, "maps", images, targets, [2, 3, 1, 2, 3, 1])
    for i, chosen in enumerate(sets):
        o = map_oracle(net, "maps", images[i : i + 1], int(targets[i]), len(chosen))
        assert tuple(chosen) == o.keep_set


def test_prototype_top_k_counts_the_class_selections_by_hand() -> None:
    from qxai.evaluate.references import prototype_top_k

    sets = [[0, 2], [2, 3], [2], [1], [1, 4], [0]]
    labels = np.array([0, 0, 0, 1, 1, 1])
    # class 0 counts: 2→3, 0→1, 3→1; class 1: 1→2, 4→1, 0→1 (ties by lower index)
    assert prototype_top_k(sets, labels, 5) == [[0, 2], [0, 2], [2], [1], [0, 1], [1]]


def test_mean_baseline_replaces_removed_maps_by_their_mean() -> None:
    from qxai.evaluate.causal import layer_mean

    torch.manual_seed(2)
    net, images = Net().eval(), torch.rand(8, 1, 4, 4)
    mean = layer_mean(net, "maps", images, batch_size=3)
    with torch.no_grad():
        acts = net.maps(net.conv(images))
        torch.testing.assert_close(mean, acts.mean(dim=0), rtol=0, atol=8 * EPS32 * float(acts.abs().max()))
        keep = (1, 4)
        mask = torch.zeros(1, 6, 1, 1)
        mask[0, list(keep)] = 1.0
        a0 = acts[:1]
        want = float(net.head(a0 * mask + mean[None] * (1 - mask))[0, 2])
    keep_mask = np.array([[0, 1, 0, 0, 1, 0]], np.float32)
    got = masked_logits(net, "maps", images[:1], 2, keep_mask, baseline=mean)[0]
    assert abs(got - want) <= 64 * EPS32 * (abs(want) + 1.0)


def test_ratios_over_a_vanishing_oracle_effect_are_undefined_not_huge() -> None:
    from qxai.evaluate.causal import Oracle

    o = Oracle(1, 2, (0,), 1.0 + 1e-9, 1.0, float("nan"), (1,), 1e-9, 1.0, True, "exact (2 subsets)")
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(2, 1))
    scores = set_scores(net, "0", torch.ones(1, 1, 1, 1), 0, [0], o)
    assert np.isnan(scores["share"]) and np.isnan(scores["drop_share"])


def test_top_removal_logit_drop_by_hand() -> None:
    from qxai.evaluate.faithfulness import top_removal_logit_drop

    torch.manual_seed(1)
    net, images = Net().eval(), torch.rand(3, 1, 4, 4)
    sal = np.random.default_rng(0).random((3, 4, 4))  # no ties
    targets = torch.tensor([0, 1, 2])
    got = top_removal_logit_drop(net, images, targets, sal, remove=0.25, batch_size=2)
    with torch.no_grad():
        for i in range(3):
            cut = images[i].clone()
            top = np.argsort(-sal[i].ravel())[:4]
            cut.view(-1)[torch.as_tensor(top)] = 0.0
            want = float(net(images[i : i + 1])[0, i] - net(cut[None])[0, i])
            assert abs(got[i] - want) <= 64 * EPS32 * (abs(want) + 1.0)


def test_causal_references_rows_against_brute_force() -> None:
    """Random k's row is the exact enumeration mean; QA − reference is QA's mean minus the row's."""
    from qxai.evaluate.runner import evaluate_methods

    torch.manual_seed(0)
    net = LinearHead().eval()
    images = torch.rand(24, 1, 4, 4)
    targets = torch.arange(24) % 3
    ev = evaluate_methods(net, "maps", images, targets, ["qa", "gradcam"], metrics=["causal"])
    refs = ev.references["causal"]
    qa = ev.methods["qa"]
    sets = qa.extras["selected"]
    shares, conditions = [], []
    for i, chosen in enumerate(sets):
        if not chosen:
            continue
        k, t = len(chosen), int(targets[i])
        one = images[i : i + 1]
        z = {s: masked_logits(net, "maps", one, t, np.isin(np.arange(6), s)[None].astype(np.float32))[0]
             for s in combinations(range(6), k)}  # fmt: skip
        none = masked_logits(net, "maps", images[i : i + 1], t, np.zeros((1, 6), np.float32))[0]
        best, full = max(z.values()), masked_logits(net, "maps", one, t, np.ones((1, 6), np.float32))[0]
        if best - none > 1e-3 * max(abs(full), abs(none), abs(best)):  # the oracle's effect floor
            shares.append(np.mean([(v - none) / (best - none) for v in z.values()]))
            conditions.append(max(abs(full), abs(none), abs(best)) / (best - none))
    row = refs["random_k"]["causal_share"]
    assert shares and abs(row["mean"] - np.mean(shares)) <= 1e-4  # float32 logits, ratios of O(1)
    expected_precision = np.mean([len(s) / 6 for s in sets if s])
    assert abs(refs["random_k"]["causal_precision"]["mean"] - expected_precision) <= 1e-12
    # on a linear head the gradient × activation reference is the oracle itself
    assert refs["gradient_x_activation"]["causal_precision"]["mean"] == 1.0
    # … so its share is 1 up to the float32 rounding of a ratio of logit differences: the oracle's
    # best and the reference's set are forwarded in different batches (SIMD lanes differ), each
    # share off by at most a few eps32 times that image's conditioning max|logit| / (best − none)
    diff = refs["gradient_x_activation"]["causal_share"]["qa_minus"]["difference"]
    tolerance = 8 * float(np.finfo(np.float32).eps) * max(conditions)
    assert abs(diff - (qa.scores["causal_share"] - 1.0)) <= tolerance
    test = ev.paired["gradcam"]["causal_precision"]
    assert test["interval"][0] <= test["difference"] <= test["interval"][1]


def test_mean_baseline_is_a_setting_and_refused_in_a_shard() -> None:
    from qxai.errors import QxaiError
    from qxai.evaluate.metrics import causal_baseline
    from qxai.evaluate.runner import EvalContext, EvalSettings, evaluate_methods

    torch.manual_seed(0)
    net, images, targets = Net().eval(), torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    settings = EvalSettings(metric_settings={"causal_share": {"baseline": "mean"}})
    ev = evaluate_methods(net, "maps", images, targets, ["qa"], metrics=["causal_share"], settings=settings)
    assert ev.methods["qa"].details["causal_baseline"] == "mean"
    ctx = EvalContext(net, "maps", images, targets, None, settings, 0, 3, {}, {}, sharded=True)
    with pytest.raises(QxaiError, match="baseline=zero"):
        causal_baseline(ctx)
    bad = EvalContext(net, "maps", images, targets, None, EvalSettings(
        metric_settings={"causal_share": {"baseline": "median"}}), 0, 3, {}, {})  # fmt: skip
    with pytest.raises(QxaiError, match="'zero' or 'mean'"):
        causal_baseline(bad)
