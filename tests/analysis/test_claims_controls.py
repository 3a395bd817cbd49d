"""The MI and similarity claims against their controls (random network, shuffled input), and the PCA
claim on layers where it cannot fail: each rule holds in one case and fails or is untestable in another."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qxai.analysis.claims import analysis_claims
from qxai.analysis.controls import compare_mi, compare_similarity, random_network, shuffled_inputs
from qxai.analysis.subjects import Subject
from qxai.pipeline.analyze import AnalyzeSettings, analyze


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 3), nn.Conv2d(6, 6, 3)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(h.mean(dim=(2, 3)))


def _control(trained: int, control: int, lo: float, hi: float) -> dict:
    return {"trained": trained, "control": control, "difference": trained - control,
            "trained_interval": [trained - 5, trained + 5], "difference_interval": [lo, hi]}  # fmt: skip


def _mi_doc(controls: dict | None) -> dict:
    mi = {"layers": ["a", "b"], "pairs": 100, "fdr_level": 0.05, "significant_pairs": 60,
          "top_pairs": [{"a": 1, "b": 2, "mi": 0.5, "p_analytic": 1e-9, "significant": True}]}  # fmt: skip
    if controls is not None:
        mi["controls"] = controls
    return {"mutual_information": mi}


def _row(doc: dict, start: str) -> dict:
    return next(r for r in analysis_claims(doc) if r["claim"].startswith(start))


def test_mi_claim_needs_the_trained_model_above_every_control() -> None:
    above = _row(_mi_doc({"random network": _control(60, 20, 30, 50)}), "identifiable")
    assert above["verdict"] == "holds" and "random network 20" in above["why"] and above["ours"] == 60
    both = {"random network": _control(60, 20, 30, 50), "shuffled input": _control(60, 58, -4, 7)}
    tie = _row(_mi_doc(both), "identifiable")
    assert tie["verdict"] == "does not hold" and "tie with shuffled input 58" in tie["why"]
    below = _row(_mi_doc({"random network": _control(60, 80, -30, -10)}), "identifiable")
    assert below["verdict"] == "does not hold" and "below random network 80" in below["why"]
    none = _row(_mi_doc(None), "identifiable")
    assert none["verdict"] == "not testable" and "control" in none["why"]


def test_orthogonality_holds_only_when_the_control_is_not_as_orthogonal() -> None:
    names, cos = ["a", "b"], np.array([[1.0, 0.05], [0.05, 1.0]])
    sim = {"layers": names, "cosine_gram": cos, "cka_debiased": cos}
    base = {"trained": 0.05, "trained_interval": [0.03, 0.07]}
    apart = {
        **sim,
        "controls": {"random network": {**base, "control": 0.6, "difference_interval": [-0.6, -0.5]}},
    }
    same = {
        **sim,
        "controls": {"random network": {**base, "control": 0.05, "difference_interval": [-0.02, 0.02]}},
    }
    assert _row({"similarity": apart}, "layers are orthogonal")["verdict"] == "holds"
    tie = _row({"similarity": same}, "layers are orthogonal")
    assert tie["verdict"] == "does not hold" and "learned nothing" in tie["why"]
    assert _row({"similarity": sim}, "layers are orthogonal")["verdict"] == "not testable"


def test_paired_bootstrap_separates_dependence_from_a_control_of_the_same_kind() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    dependent = (x, x @ rng.normal(size=(6, 5)) + 0.5 * rng.normal(size=(400, 5)))
    independent = (x, rng.normal(size=(400, 5)))
    labels = np.repeat([0, 1], 200)
    c = compare_mi(dependent, independent, labels=labels, resamples=60, seed=1)
    assert c["trained"] > c["control"] and c["difference_interval"][0] > 0
    twin = (x, x @ rng.normal(size=(6, 5)) + 0.5 * rng.normal(size=(400, 5)))  # the same structure again
    tie = compare_mi(dependent, twin, labels=labels, resamples=60, seed=1)
    assert tie["difference_interval"][0] <= 0 <= tie["difference_interval"][1]
    assert compare_mi(dependent, independent, labels=labels, resamples=60, seed=1) == c  # deterministic
    s = compare_similarity(list(dependent), list(independent), resamples=60)
    assert s["trained"] > s["control"] and s["difference_interval"][0] > 0


def test_random_network_and_shuffled_inputs_are_seeded_and_keep_what_they_should() -> None:
    torch.manual_seed(5)
    net = TinyCNN()
    a, shuffled = random_network(net, 3)
    b, _ = random_network(net, 3)
    assert shuffled == []
    for (name, p), q, r in zip(net.named_parameters(), a.parameters(), b.parameters(), strict=True):
        assert torch.equal(q, r), name
        assert not torch.equal(p, q), name
    x = torch.rand(4, 1, 5, 5)
    y = shuffled_inputs(x, "image", 0)
    assert torch.equal(torch.sort(y.flatten(1))[0], torch.sort(x.flatten(1))[0]) and not torch.equal(x, y)
    assert (
        torch.equal(y, shuffled_inputs(x, "image", 0)) and shuffled_inputs(x.long(), "transformer", 0) is None
    )


def test_a_network_whose_mi_structure_equals_random_fails_end_to_end() -> None:
    torch.manual_seed(0)
    settings = AnalyzeSettings(samples=120, analyses=("similarity", "mi"), bootstrap=0, mi_permutations=0,
                               control_resamples=30, quantum=False, seed=7)  # fmt: skip
    # the analysed network *is* the random-network control's draw: its MI structure equals random
    model, _ = random_network(TinyCNN(), settings.seed)
    inputs = torch.rand(120, 1, 10, 10)
    subject = Subject(model, inputs, torch.arange(120) % 2, ["a", "b"], ["conv1", "conv2"], "image")
    ctx = analyze(subject, settings)
    mi = ctx.doc["mutual_information"]["controls"]["random network"]
    assert mi["difference"] == 0 and mi["difference_interval"] == [0.0, 0.0]
    assert "shuffled input" in ctx.doc["mutual_information"]["controls"]
    rows = {r["claim"]: r for r in analysis_claims(ctx.doc)}
    assert rows["identifiable high-MI feature-map pairs"]["verdict"] == "does not hold"
    assert rows["layers are orthogonal (near-zero cosine similarity)"]["verdict"] == "does not hold"


@pytest.mark.parametrize(
    ("width", "dead", "verdict", "text"),
    [(10, 0, "not testable", "always explain ≥ 50 %"), (128, 94, "not testable", "94 of 128 units dead"),
     (64, 3, "holds", "3 dead")],
)  # fmt: skip
def test_top5_share_is_not_tested_where_it_cannot_fail(
    width: int, dead: int, verdict: str, text: str
) -> None:
    doc = {"layers": {"dense": {"kind": "dense"}},
           "spectra": {"dense": {"top5_share": 0.27, "top5_share_interval": [0.25, 0.29], "width": width,
                                 "dead_units": dead}}}  # fmt: skip
    row = analysis_claims(doc)[0]
    assert row["verdict"] == verdict and text in row["why"]
