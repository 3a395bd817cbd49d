"""QIXAI's claims (arXiv 2410.16537, SPEC §2) checked one by one against an ``analysis.json`` document.

:func:`analysis_claims` returns one row per claim::

    {"claim", "ours", "interval": [lo, hi] | None, "paper", "verdict", "why"}

Verdict rules (``verdict`` is ``"holds"``, ``"does not hold"`` or ``"not testable"``):

* **Top-5 principal components of the dense layer ≈ 27 % of the variance.** The dense layer is the
  one named ``dense``, else the last captured layer of kind ``dense``. "≈" is read as within
  :data:`TOP5_BAND` (5 percentage points) of 27 %: *holds* when the 95 % bootstrap interval of our
  top-5 share (the point value when there is no interval) meets [22 %, 32 %]; *does not hold*
  otherwise; *not testable* without a spectrum of a dense layer.
* **Identifiable high-MI map pairs.** *Holds* when at least one pair is significant after
  Benjamini–Hochberg (at the run's level) on the analytic χ² p-values; the top significant pair is
  named. *Does not hold* when none is; *not testable* without the MI analysis (or from a document
  written before analytic p-values existed).
* **Near-zero cosine similarity between layers ("orthogonal").** Over consecutive analysed layers,
  the largest Gram cosine (RV coefficient, the paper's "cosine" between representations): *holds*
  when it is below :data:`ORTHOGONAL_BELOW` (0.1), else *does not hold*; *not testable* with fewer
  than two layers.
* **QIXAI's analyses are better than SHAP/LIME/LRP.** Always *not testable*: the layer analyses
  describe internal representations, SHAP/LIME/LRP attribute a decision to input features; there
  is no common ground truth or metric on which one could beat the other.

>>> doc = {"layers": {"dense": {"kind": "dense"}}, "spectra": {"dense": {"top5_share": 0.3,
...        "top5_share_interval": [0.28, 0.33]}}}
>>> [(r["verdict"], r["ours"]) for r in analysis_claims(doc)][0]
('holds', 0.3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qxai.claims import FAILS, HOLDS, UNTESTABLE, Claim

PAPER_TOP5 = 0.27
TOP5_BAND = 0.05
ORTHOGONAL_BELOW = 0.1

def _row(claim: str, ours: Any, interval: Any, paper: str, verdict: str, why: str) -> dict[str, Any]:
    return Claim(claim, ours, interval, paper, verdict, why, "analyze").to_dict()


def _dense_layer(doc: dict[str, Any]) -> str | None:
    layers = doc.get("layers") or {}
    spectra = doc.get("spectra") or {}
    if "dense" in spectra:
        return "dense"
    dense = [n for n, meta in layers.items() if (meta or {}).get("kind") == "dense" and n in spectra]
    return dense[-1] if dense else None


def _top5(doc: dict[str, Any]) -> dict[str, Any]:
    claim, paper = "top-5 principal components of the dense layer ≈ 27 % of the variance", "≈ 27 %"
    name = _dense_layer(doc)
    if name is None:
        return _row(
            claim, None, None, paper, UNTESTABLE, "no dense layer was analysed (run the spectrum on one)"
        )
    entry = doc["spectra"][name]
    width = int(entry.get("width") or 0)
    live = width - int(entry.get("dead_units") or 0)
    if entry.get("constant") or (width and live <= 2 * 5):
        # five components of ten or fewer live units hold most variance whatever the network learned
        # (a logit layer, or a layer mostly dead): the claim cannot fail there, so it is not tested
        why = (
            f"layer '{name}' is constant on these inputs"
            if entry.get("constant")
            else f"layer '{name}' has {live} live units of {width}; a top-5 share needs more than 10"
        )
        return _row(claim, None, None, paper, UNTESTABLE, why + " (pick a wider hidden layer)")
    if "top5_share" in entry:
        share = float(entry["top5_share"])
    else:
        ratios = entry.get("explained_variance_ratio") or []
        share = float(np.sum(ratios[:5]))
    interval = entry.get("top5_share_interval")
    lo, hi = (interval[0], interval[1]) if interval else (share, share)
    band = (PAPER_TOP5 - TOP5_BAND, PAPER_TOP5 + TOP5_BAND)
    meets = lo <= band[1] and hi >= band[0]
    span = f"[{lo:.1%}, {hi:.1%}]" if interval else "(no interval)"
    why = (
        f"layer '{name}': {share:.1%}, 95 % interval {span}, "
        f"{'meets' if meets else 'misses'} 27 % ± {TOP5_BAND:.0%}"
    )
    return _row(claim, share, list(interval) if interval else None, paper, HOLDS if meets else FAILS, why)


def _mi(doc: dict[str, Any]) -> dict[str, Any]:
    claim, paper = "identifiable high-MI feature-map pairs", "e.g. Conv1 map 22 – Conv2 map 46"
    mi = doc.get("mutual_information")
    if not mi or "significant_pairs" not in mi:
        return _row(claim, None, None, paper, UNTESTABLE, "no MI analysis with analytic p-values in this run")
    on = str(mi.get("fdr_on", "analytic p-values"))
    if mi["significant_pairs"] is None:  # no valid null at this sample size
        return _row(claim, None, None, paper, UNTESTABLE, f"MI significance {on}")
    count = int(mi["significant_pairs"])
    a, b = mi["layers"]
    level = mi.get("fdr_level", 0.05)
    if count == 0:
        pairs = mi.get("pairs", "?")
        why = f"no pair of {pairs} significant after BH at {level:g} on the {on.split(' (')[0]}"
        return _row(claim, 0, None, paper, FAILS, why)
    top = next((p for p in mi.get("top_pairs", []) if p.get("significant")), None)
    if top:
        p = float(top.get("p_analytic", np.nan))
        shown = "p < 1e-300" if p == 0.0 else f"p = {p:.1e}"  # the χ² tail underflows to 0
        named = f"top: {a} {top[a]} – {b} {top[b]}, {top['mi']:.3f} nats, {shown}"
    else:
        named = "the top pairs listed are not among them"
    null = "χ² null" if on.startswith("analytic") else "permutation null"
    why = f"{count} of {mi.get('pairs', '?')} pairs significant after BH at {level:g} ({null}); {named}"
    return _row(claim, count, None, paper, HOLDS, why)


def _orthogonal(doc: dict[str, Any]) -> dict[str, Any]:
    claim, paper = "layers are orthogonal (near-zero cosine similarity)", "cosine ≈ 0"
    sim = doc.get("similarity")
    if not sim or len(sim.get("layers", [])) < 2:
        return _row(claim, None, None, paper, UNTESTABLE, "fewer than two layers were compared")
    names = sim["layers"]
    cos = np.asarray(sim["cosine_gram"], dtype=float)
    cka = np.asarray(sim["cka_debiased"], dtype=float)
    pairs = [(i, i + 1) for i in range(len(names) - 1)]
    worst = max(pairs, key=lambda p: cos[p])
    largest = float(cos[worst])
    holds = largest < ORTHOGONAL_BELOW
    why = (
        f"largest cosine of consecutive layers {names[worst[0]]} – {names[worst[1]]} = {largest:.2f} "
        f"({'below' if holds else 'not below'} {ORTHOGONAL_BELOW}); debiased CKA "
        f"{min(cka[p] for p in pairs):.2f}…{max(cka[p] for p in pairs):.2f}"
    )
    return _row(claim, largest, None, paper, HOLDS if holds else FAILS, why)


def _superiority() -> dict[str, Any]:
    return _row(
        "QIXAI's analyses explain better than SHAP/LIME/LRP",
        None,
        None,
        "claimed superiority",
        UNTESTABLE,
        "layer analyses describe representations, SHAP/LIME/LRP attribute decisions: no shared metric",
    )


def analysis_claims(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The QIXAI claims checked against ``doc`` (an ``analysis.json`` document), one row each."""
    return [_top5(doc), _mi(doc), _orthogonal(doc), _superiority()]
