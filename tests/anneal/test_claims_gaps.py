"""The annealing claims that can fail: which gap Δ_min is, the paper's range read as quantiles, intervals
that resample classes, a sample that misses a class, and the decay rate against random guessing."""

from __future__ import annotations

import math

import numpy as np

from qxai.anneal.physics.statistics import (
    RANDOM_GUESSING_RATE,
    anneal_claims,
    class_resamples,
    gap_kind,
    summarise,
)


def _problems(n: int, *, median: float = 0.095, spread: float = 1.0, s_star: float = 0.5, rate: float = -0.56,
              class_shift: float = 0.0, seed: int = 0) -> list[dict]:  # fmt: skip
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c, d = i % 4, 4 + i % 7
        gap = float(median * np.exp(spread * rng.normal() + class_shift * (c - 1.5)))
        out.append({"num_qubits": d, "delta_min": gap, "s_star": s_star, "classical_gap": 1.5 * gap,
                    "label": f"c{c}", "degeneracy": 1,
                    "fidelity": {"10": float(np.exp(-0.3 + rate * d + 0.1 * rng.normal()))}})  # fmt: skip
    return out


def _doc(problems: list[dict], **over: object) -> dict:
    doc = {"driver": "authors", "energy_convention": "authors", "schedule": "linear", "dt": 0.01,
           "source": {"kind": "model", "dataset": "stl10", "num_maps": 16}, "qubo": {"beta": 0.7},
           "num_problems": len(problems), "problems": problems,
           "statistics": summarise(problems, [10.0], resamples=400)}  # fmt: skip
    doc.update(over)
    return {r["claim"]: r for r in anneal_claims(doc)}


def test_the_row_says_which_gap_delta_min_is() -> None:
    end = _problems(40, s_star=0.99)
    assert gap_kind(end)["classical_share"] == 1.0
    why = _doc(end)["Δ_min median ≈ 0.095"]["why"]
    assert "classical gap of H_P near s ≈ 1 on 40 of 40 problems" in why
    middle = _problems(40, s_star=0.4)
    kind = gap_kind(middle)
    assert kind["classical_share"] == 0.0 and kind["crossing_s_star_median"] == 0.4
    assert (
        "avoided crossing inside the anneal on 40 (median s* 0.40)"
        in _doc(middle)["Δ_min median ≈ 0.095"]["why"]
    )


def test_range_compares_quantiles_not_minima() -> None:
    claim = "Δ_min range ≈ 2.2e-3 … 0.21"
    few = _doc(_problems(40))[claim]
    assert few["verdict"] == "not testable" and "quantiles" in few["why"]
    # a log-normal whose 0.26 % and 99.7 % quantiles sit near 2.2e-3 and 0.21 (σ = 0.8 around 0.02 … 0.1)
    paper_like = _doc(_problems(900, median=0.0215, spread=0.83))[claim]
    assert paper_like["verdict"] == "holds", paper_like["why"]
    narrow = _doc(_problems(900, median=0.095, spread=0.05))[claim]  # every Δ_min ≈ 0.095: tails far off
    assert narrow["verdict"] == "does not hold"


def test_intervals_resample_classes_when_the_claim_is_about_classes() -> None:
    rows = class_resamples(["a"] * 5 + ["b"] * 5, 10, 0, 300)
    assert any(set(r) <= set(range(5)) for r in rows)  # a resample of class a alone: classes are drawn
    spread = _problems(80, spread=0.2, class_shift=1.0)
    with_classes = summarise(spread, [10.0], resamples=400)["delta_min"]
    for p in spread:
        p.pop("label")
    without = summarise(spread, [10.0], resamples=400)["delta_min"]
    width = lambda s: s["median_interval"][1] - s["median_interval"][0]  # noqa: E731
    assert "classes" in with_classes["interval_method"] and "classes" not in without["interval_method"]
    assert width(with_classes) > 2 * width(without)


def test_a_sample_that_misses_a_class_is_not_testable() -> None:
    classes = {"uninfected": {"problems": 20, "kept": 20, "over_limit": None},
               "parasitized": {"problems": 20, "kept": 0, "over_limit": [23, 34]}}  # fmt: skip
    rows = _doc(_problems(40), classes=classes)
    assert {r["verdict"] for r in rows.values()} == {"not testable"}
    assert all("parasitized (d = 23–34)" in r["why"] for r in rows.values())
    assert _doc(_problems(40), classes={**classes, "parasitized": {"problems": 20, "kept": 3}})[
        "Δ_min median ≈ 0.095"]["verdict"] == "holds"  # fmt: skip


def test_decay_must_be_told_apart_from_random_guessing() -> None:
    claim = "F at τ = 10 decays exponentially with d"
    paper = _doc(_problems(60, rate=-0.56))[claim]
    assert paper["verdict"] == "holds" and "inside" in paper["why"]
    guessing = _doc(_problems(60, rate=RANDOM_GUESSING_RATE))[claim]
    assert guessing["verdict"] == "does not hold" and f"{-math.log(2):.3f}" in guessing["why"]
    faster = _doc(_problems(60, rate=-1.0))[claim]  # decays, but faster than guessing: the wrong direction
    assert faster["verdict"] == "does not hold"
