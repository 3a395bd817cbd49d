"""QIXAI's claims (arXiv 2410.16537, SPEC §2) checked one by one against an ``analysis.json`` document.

:func:`analysis_claims` returns one row per claim::

    {"claim", "ours", "interval": [lo, hi] | None, "paper", "verdict", "why"}

Verdict rules (``verdict`` is ``"holds"``, ``"does not hold"`` or ``"not testable"``):

* **Top-5 principal components of the dense layer ≈ 27 % of the variance.** The dense layer is the
  one named ``dense``, else the last captured layer of kind ``dense``. "≈" is read as within
  :data:`TOP5_BAND` (5 percentage points) of 27 %: *holds* when the 95 % bootstrap interval of our
  top-5 share (the point value when there is no interval) meets [22 %, 32 %]; *does not hold*
  otherwise; *not testable* without a spectrum of a dense layer, and on a layer where the share is
  high whatever the network learned: 5 / live units ≥ 0.5 (a 10-unit logit layer) or at least
  :data:`DEAD_SHARE` of its units dead. The row names the dead units.
* **Identifiable high-MI map pairs.** Pairs significant after Benjamini–Hochberg (at the run's
  level) on the analytic χ² p-values, compared with the same count on the controls of
  :mod:`qxai.analysis.controls` (a randomly initialised network of the same architecture, and the
  trained network on position-shuffled inputs, on the same images). *Holds* when at least one pair
  is significant and the paired bootstrap interval of ``trained − control`` lies above 0 for every
  control; *does not hold* otherwise (a tie included); *not testable* without the MI analysis, its
  analytic null, or its controls. The row shows the trained and each control's count.
* **Near-zero cosine similarity between layers ("orthogonal").** Over consecutive analysed layers,
  the largest Gram cosine (RV coefficient, the paper's "cosine" between representations): *holds*
  when its bootstrap interval lies below :data:`ORTHOGONAL_BELOW` (0.1) *and* below every control's
  (the interval of ``trained − control`` below 0 — near-zero cosine that a random network shows too
  says nothing about training); else *does not hold*; *not testable* with fewer than two layers or
  without controls.
* **QIXAI's analyses are better than SHAP/LIME/LRP.** Always *not testable*: the layer analyses
  describe internal representations, SHAP/LIME/LRP attribute a decision to input features; there
  is no common ground truth or metric on which one could beat the other.

>>> doc = {"layers": {"dense": {"kind": "dense"}}, "spectra": {"dense": {"top5_share": 0.3,
...        "top5_share_interval": [0.28, 0.33], "width": 64, "dead_units": 3}}}
>>> [(r["verdict"], r["ours"]) for r in analysis_claims(doc)][0]
('holds', 0.3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qxai.claims import FAILS, HOLDS, UNTESTABLE, Claim, side_of_zero

PAPER_TOP5 = 0.27
TOP5_BAND = 0.05
ORTHOGONAL_BELOW = 0.1
#: Share of dead units at or above which a layer's top-5 share is not tested.
DEAD_SHARE = 0.5

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
    dead = int(entry.get("dead_units") or 0)
    live = width - dead
    if entry.get("constant") or (width and (live <= 2 * 5 or dead >= DEAD_SHARE * width)):
        # five components of ten or fewer live units hold ≥ 50 % of the variance whatever the network
        # learned (a logit layer), and a mostly dead layer says more about dead ReLUs than about
        # learned structure: the claim cannot fail for the right reason there, so it is not tested
        if entry.get("constant"):
            why = f"layer '{name}' is constant on these inputs"
        elif live <= 2 * 5:
            why = (f"layer '{name}' has {live} live units of {width} ({dead} dead): the top 5 of ≤ 10 "
                   "always explain ≥ 50 %")  # fmt: skip
        else:
            why = f"layer '{name}' has {dead} of {width} units dead (≥ {DEAD_SHARE:.0%})"
        return _row(claim, None, None, paper, UNTESTABLE, why + " (pick a wider, live hidden layer)")
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
        f"layer '{name}' ({live} live of {width} units, {dead} dead): {share:.1%}, 95 % interval {span}, "
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
    head = f"{count} of {mi.get('pairs', '?')} pairs significant after BH at {level:g} ({null}); {named}"
    controls = mi.get("controls")
    if not controls:
        why = mi.get("controls_skipped") or "no random-network control in this run (rerun qxai analyze)"
        return _row(claim, count, None, paper, UNTESTABLE, f"{head}; {why}")
    verdict, parts = HOLDS, []
    for cname, c in controls.items():
        lo, hi = c["difference_interval"]
        side = side_of_zero([lo, hi])
        if side is None:
            why = f"{head}; the {cname} control has no finite interval"
            return _row(claim, count, None, paper, UNTESTABLE, why)
        if side != "above":
            verdict = FAILS
        word = {"above": "above", "below": "below", "contains": "tie with"}[side]
        parts.append(f"{word} {cname} {c['control']} (trained − control 95 % CI [{lo:+.0f}, {hi:+.0f}])")
    trained_ci = next(iter(controls.values()))["trained_interval"]
    why = f"trained {count} of {mi.get('pairs', '?')}: " + "; ".join(parts) + f"; {named}"
    return _row(claim, count, trained_ci, paper, verdict, why)


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
    base = (
        f"largest cosine of consecutive layers {names[worst[0]]} – {names[worst[1]]} = {largest:.2f}; "
        f"debiased CKA {min(cka[p] for p in pairs):.2f}…{max(cka[p] for p in pairs):.2f}"
    )
    controls = sim.get("controls")
    if not controls:
        return _row(claim, largest, None, paper, UNTESTABLE, base + "; no random-network control in this run")
    interval = next(iter(controls.values()))["trained_interval"]
    below = interval[1] < ORTHOGONAL_BELOW
    parts, apart = [], True
    for cname, c in controls.items():
        lo, hi = c["difference_interval"]
        apart = apart and side_of_zero([lo, hi]) == "below"
        parts.append(f"{cname} {c['control']:.2f} (trained − control CI [{lo:+.2f}, {hi:+.2f}])")
    holds = below and apart
    why = (
        f"{base}; 95 % CI [{interval[0]:.2f}, {interval[1]:.2f}] {'below' if below else 'not below'} "
        f"{ORTHOGONAL_BELOW}; " + "; ".join(parts)
        + ("" if apart or not below else ": a network that learned nothing is as orthogonal")
    )
    return _row(claim, largest, interval, paper, HOLDS if holds else FAILS, why)


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
