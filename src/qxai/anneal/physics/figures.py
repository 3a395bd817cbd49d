"""Figures of an annealing run, as ``(record, matplotlib figure)`` pairs.

A record is ``{"file", "title", "caption"}``, the fields of :class:`qxai.pipeline.stage.Figure`
(the stage wraps it; ``anneal`` sits left of ``pipeline`` in the import order, so no import here).

Every caption names the driver, the schedule and the energy convention of ``H_P``.

- ``delta_min.png``: histogram (log bins) and CDF of Δ_min;
- ``gap_vs_classical.png``: Δ_min against the classical gap of ``H_P`` (the line Δ_min = gap);
- ``fidelity_vs_d.png``: median F (IQR bars) and the gain ``F·2^d/g`` against d, with the weighted
  fit at the smallest τ and random guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qxai.anneal.physics.statistics import CONVENTION_LABELS, DRIVER_LABELS, RANDOM_GUESSING_RATE

#: The schedules as formulas, for captions.
SCHEDULE_LABELS = {"linear": "A(s) = 1 − s, B(s) = s", "quadratic": "A(s) = (1 − s)², B(s) = s²"}


def _record(file: str, title: str, caption: str) -> dict[str, str]:
    return {"file": file, "title": title, "caption": caption}


def physics_text(driver: str, schedule: str, energy_convention: str) -> str:
    """The setting in words, e.g. for a caption.

    >>> for part in physics_text("authors", "linear", "authors").split(", "):
    ...     print(part)
    driver H_D = +(1/d)Σσx
    linear schedule (A(s) = 1 − s
    B(s) = s)
    energy convention authors: H_P from (I − σz)
    x → 2x
    """
    label = DRIVER_LABELS.get(driver, driver)
    return (f"driver {label}, {schedule} schedule ({SCHEDULE_LABELS.get(schedule, 'user functions')}), "
            f"energy convention {CONVENTION_LABELS.get(energy_convention, energy_convention)}")  # fmt: skip


def anneal_figures(
    problems: list[dict[str, Any]],
    statistics: dict[str, Any],
    taus: Sequence[float],
    driver: str,
    schedule: str = "linear",
    energy_convention: str = "spec",
) -> list[tuple[dict[str, str], Any]]:
    """The figures of a run of more than one problem (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = DRIVER_LABELS.get(driver, driver)
    physics = physics_text(driver, schedule, energy_convention)
    sizes = sorted({int(p["num_qubits"]) for p in problems})
    span = f"d = {sizes[0]}" if len(sizes) == 1 else f"d = {sizes[0]}–{sizes[-1]}"
    out: list[tuple[dict[str, str], Any]] = []

    gaps = np.sort(np.array([p["delta_min"] for p in problems], dtype=float))
    fig, ax = plt.subplots(figsize=(6, 4))
    lo, hi = np.log10(max(gaps.min(), 1e-12)), np.log10(max(gaps.max(), 1e-12))
    ax.hist(gaps, bins=np.logspace(lo, hi, 20) if hi > lo else 10, color="tab:blue", alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("Δ_min")
    ax.set_ylabel("problems")
    cdf = ax.twinx()
    cdf.step(gaps, np.arange(1, gaps.size + 1) / gaps.size, where="post", color="tab:red")
    cdf.set_ylabel("CDF")
    cdf.set_ylim(0, 1.02)
    ax.set_title(f"minimum gap over {gaps.size} problems ({label}, {energy_convention} H_P)", fontsize=9)
    ci = statistics["delta_min"]["median_interval"]
    out.append((_record(
        "delta_min.png", "Minimum spectral gap Δ_min",
        f"Histogram (log bins) and cumulative distribution of Δ_min over {gaps.size} problems ({span}); "
        f"{physics}. Median {statistics['delta_min']['median']:.3g} "
        f"(bootstrap 95 % CI {ci[0]:.3g}–{ci[1]:.3g}). "
        "Δ_min is measured from the ground level to the first level outside the ground manifold of H_P.",
    ), fig))  # fmt: skip

    pairs = [(p["classical_gap"], p["delta_min"]) for p in problems if p.get("classical_gap")]
    if pairs:
        classical, delta = np.array(pairs).T
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(classical, delta, s=14, alpha=0.7)
        top = float(max(classical.max(), delta.max()))
        bottom = float(max(min(classical.min(), delta.min()), 1e-12))
        ax.plot([bottom, top], [bottom, top], "k--", lw=1, label="Δ_min = classical gap")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("classical gap of H_P")
        ax.set_ylabel("Δ_min")
        ax.legend(fontsize=8)
        ax.set_title(f"quantum vs classical gap ({label}, {energy_convention} H_P)", fontsize=9)
        ratio = statistics["gap_ratio"]["median"]
        out.append((_record(
            "gap_vs_classical.png", "Minimum gap against the classical gap of H_P",
            f"Δ_min against the classical gap of H_P (first level outside the ground manifold minus the "
            f"ground "
            f"level; the gap of H(s) at s = 1) for {len(pairs)} problems; {physics}. Median ratio "
            f"Δ_min / classical gap {ratio:.3g}: a ratio near 1 means the bottleneck is the classical one "
            "at s ≈ 1.",
        ), fig))  # fmt: skip

    fig, (ax, gx) = plt.subplots(1, 2, figsize=(10, 4))
    stats = statistics["fidelity"]
    for tau in taus:
        rows = stats[f"{tau:g}"]["by_d"]
        d = np.array([int(k) for k in rows])
        med = np.array([r["median"] for r in rows.values()])
        err = [med - [r["q25"] for r in rows.values()], [r["q75"] for r in rows.values()] - med]
        ax.errorbar(d, med, yerr=err, marker="o", capsize=3, label=f"τ = {tau:g}")
        gx.plot(d, [r["median_gain"] for r in rows.values()], marker="o", label=f"τ = {tau:g}")
    smallest = f"{min(taus):g}"
    fit = stats[smallest]["fit"]
    grid = np.array(sizes, dtype=float)
    ax.plot(grid, 2.0**-grid, ":", color="grey", label="random guess 2^−d")
    gx.axhline(1.0, ls=":", color="grey", label="random guess")
    fit_text = ""
    if fit is not None:
        b, ci = fit["rate_per_qubit"], fit["interval"]
        ax.plot(grid, np.exp(fit["log_intercept"] + b * grid), "k--",
                label=f"fit τ={smallest}: F ∝ e^({b:.2f} d)")  # fmt: skip
        fit_text = (f" Dashed: weighted fit log(median F) ≈ a + b·d at τ = {smallest} "
                    "(weights: problems per d), "
                    f"b = {b:.3f} per qubit, 95 % CI {ci[0]:.3f} to {ci[1]:.3f} ({fit['interval_method']}); "
                    f"random guessing decays at −ln 2 = {RANDOM_GUESSING_RATE:.3f}.")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("d (qubits)")
    ax.set_ylabel("median fidelity F (IQR bars)")
    ax.set_title(f"success probability vs size ({label})", fontsize=9)
    ax.legend(fontsize=7)
    gx.set_yscale("log")
    gx.set_xlabel("d (qubits)")
    gx.set_ylabel("median F·2^d/g (gain over random guessing)")
    gx.set_title(f"gain over random guessing ({energy_convention} H_P)", fontsize=9)
    gx.legend(fontsize=7)
    conf = statistics.get("confounding", {}).get("sentence", "")
    out.append((_record(
        "fidelity_vs_d.png", "Success probability against problem size",
        f"Left: median ground-state fidelity F(τ) = |⟨x*|ψ(τ)⟩|² against the number of qubits, one curve per "
        f"total time τ, bars from the 25th to the 75th percentile, dotted: random guessing 2^−d. Right: the "
        f"gain F·2^d/g over random guessing (g ground states). {physics}; exact state-vector split-operator "
        f"dynamics.{fit_text} {conf}",
    ), fig))  # fmt: skip
    return out
