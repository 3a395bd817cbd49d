"""The causal map oracle against brute force: every subset ablated by hand, one forward each."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch
from torch import nn

from qxai.evaluate.causal import map_oracle, masked_logits, set_scores

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
