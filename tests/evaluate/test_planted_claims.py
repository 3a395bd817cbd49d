"""The planted benchmark's claim rows: holds, fails, ties and is not testable, each for its reason."""

from __future__ import annotations

from typing import Any

import pytest

from qxai.claims import FAILS, HOLDS, UNTESTABLE
from qxai.evaluate.claims import PLANTED_CLAIM, planted_claims


def _doc(interval: list[float] | None, difference: float = 0.1, **extra: Any) -> dict[str, Any]:
    test = {"difference": difference, "interval": interval, "p_value": 0.01}
    return {"paired": {"gradcam": {"causal_precision": test}}, **extra}


@pytest.mark.parametrize(
    ("interval", "difference", "verdict", "why"),
    [([0.05, 0.2], 0.12, HOLDS, "interval above 0"),
     ([-0.3, -0.1], -0.2, FAILS, "interval below 0: QA loses"),
     ([-0.05, 0.04], -0.01, FAILS, "tie: the interval of QA − GradCAM's top-k (-0.05, 0.04) contains 0")],
)  # fmt: skip
def test_the_verdict_follows_the_paired_interval(interval, difference, verdict, why) -> None:
    (row,) = planted_claims({"redundant": _doc(interval, difference)})
    assert row["claim"] == PLANTED_CLAIM.format("redundant")
    assert row["verdict"] == verdict and why in row["why"]
    assert row["ours"] == difference and row["interval"] == interval and row["source"] == "planted"


def test_one_row_per_difficulty_in_order() -> None:
    rows = planted_claims({"easy": _doc([0.1, 0.2]), "overlap": _doc([-0.2, -0.1], -0.15)})
    assert [r["claim"] for r in rows] == [PLANTED_CLAIM.format(d) for d in ("easy", "overlap")]
    assert [r["verdict"] for r in rows] == [HOLDS, FAILS]


@pytest.mark.parametrize(
    ("run", "why"),
    [("QxaiError: out of memory", "the easy run failed: QxaiError: out of memory"),
     ({"paired": {}}, "no paired causal_precision of QA and GradCAM"),
     (_doc([float("nan"), 0.2]), "no paired causal_precision"),
     (_doc(None), "no paired causal_precision"),
     (_doc([0.1, 0.2], blank={"gradcam": "gradcam: every map is constant"}),
      "rests on degenerate explanations")],
)  # fmt: skip
def test_a_missing_or_failed_run_is_not_testable_with_its_reason(run, why) -> None:
    (row,) = planted_claims({"easy": run})
    assert row["verdict"] == UNTESTABLE and why in row["why"]
    assert row["ours"] is None and row["interval"] is None


def test_the_alpha_note_is_said_beside_the_verdict() -> None:
    alpha = {"alpha_within_class": {"constant": True, "relative_spread": 1e-8}}
    (row,) = planted_claims({"easy": _doc([0.1, 0.2], diagnostics=alpha)})
    assert row["verdict"] == HOLDS and "class lookup" in row["why"]


def test_a_tie_on_the_designated_maps_is_said_beside_the_causal_verdict() -> None:
    doc = _doc([0.1, 0.2])
    doc["paired"]["gradcam"]["planted_precision"] = {"difference": 0.0, "interval": [0.0, 0.0]}
    (row,) = planted_claims({"easy": doc})
    assert "planted_precision QA − GradCAM = +0 [0, 0]: a tie on the designated maps" in row["why"]
    doc["paired"]["gradcam"]["planted_precision"] = {"difference": 0.2, "interval": [0.1, 0.3]}
    (row,) = planted_claims({"easy": doc})
    assert "= +0.2 [0.1, 0.3]" in row["why"] and "a tie" not in row["why"]
