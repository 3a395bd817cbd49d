"""``run_anneal``: the minimum gap and the success probability of explanation QUBOs (SPEC §1).

Two sources of problems: the explanation QUBOs of correctly classified test images (a checkpoint,
via :class:`qxai.explain.qa.QAFeatureMapExplainer`), or one BQM file in dimod's own serialisation.
For each problem with ``1 ≤ d ≤ max_qubits``: ``Δ_min`` and ``s*`` (:func:`minimum_gap`), and the
fidelity ``F(τ)`` for every ``τ`` (:func:`anneal`). Writes ``out/anneal.json`` and, for more than
one problem, the figures ``delta_min.png`` and ``fidelity_vs_d.png``. The cost is set by
``max_qubits``, ``max_problems``, ``taus``, ``dt`` and ``grid``.

``anneal.json`` follows the stage contract (docs/ARCHITECTURE.md): ``"problems"`` (one record each),
``"statistics"`` (the nested Δ_min quantiles and per-τ, per-d fidelity statistics and fits),
``"summary"`` (flat headline numbers, :func:`headline`) and ``"figures"`` (``{"file", "title",
"caption"}`` records whose captions name the driver and the schedule).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dimod
import numpy as np

from qxai.anneal.physics import AnnealProblem, anneal, minimum_gap
from qxai.errors import QxaiError
from qxai.io import write_json
from qxai.progress import track

#: How the drivers are written in summaries and captions.
DRIVER_LABELS = {"transverse": "H_D = −Σσx", "authors": "H_D = +(1/d)Σσx"}
#: The schedules as formulas, for captions.
SCHEDULE_LABELS = {"linear": "A(s) = 1 − s, B(s) = s", "quadratic": "A(s) = (1 − s)², B(s) = s²"}


def load_bqm(path: str | Path) -> dimod.BinaryQuadraticModel:
    """A BQM from ``BinaryQuadraticModel.to_file()`` bytes or ``to_serializable()`` JSON (never a pickle)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise QxaiError(f"cannot read BQM file {path} ({err.strerror}); pass an existing file") from None
    try:
        if data.lstrip()[:1] == b"{":
            return dimod.BinaryQuadraticModel.from_serializable(json.loads(data))
        return dimod.BinaryQuadraticModel.from_file(io.BytesIO(data))
    except Exception as err:  # any parse failure is the user's file
        raise QxaiError(
            f"{path} is not a dimod BQM ({type(err).__name__}); save it with bqm.to_file() or "
            "json.dumps(bqm.to_serializable())"
        ) from None


def solve_problem(
    bqm: dimod.BinaryQuadraticModel, taus: Sequence[float], *, dt: float, driver: str, schedule: str,
    grid: int, seed: int, max_qubits: int,
) -> dict[str, Any]:  # fmt: skip
    """The per-problem record of ``anneal.json``."""
    problem = AnnealProblem.from_bqm(bqm, max_qubits=max_qubits)
    gap = minimum_gap(problem, driver=driver, schedule=schedule, grid=grid)
    fidelity: dict[str, float] = {}
    best: dict[str, float | None] = {}
    for tau in taus:
        r = anneal(problem, tau, dt=dt, driver=driver, schedule=schedule, num_reads=None, seed=seed)
        fidelity[f"{tau:g}"] = r.fidelity
        best[f"{tau:g}"] = r.best_energy
    return {
        "num_qubits": problem.num_qubits, "delta_min": gap.delta_min, "s_star": gap.s_star,
        "degeneracy": problem.degeneracy, "ground_energy": problem.ground_energy, "fidelity": fidelity,
        "best_shot_energy": best, "driver": driver, "schedule": schedule,
        "gap_solver": {"method": gap.method, "evaluations": gap.evaluations, "matvecs": gap.matvecs},
    }  # fmt: skip


def model_qubos(
    checkpoint: str, dataset: str | None, layer: str | None, per_class: int, beta: float, seed: int
) -> list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]]:
    """``(meta, bqm)`` for the explanation QUBO of each selected correctly classified test image."""
    from qxai.explain.qa import QAFeatureMapExplainer
    from qxai.pipeline.common import batches, load_model_and_data, select_correct_per_class

    md = load_model_and_data(checkpoint, dataset, layer)
    images = select_correct_per_class(md.model, md.split.test, per_class, seed=seed)
    explainer = QAFeatureMapExplainer(md.model, md.layer, solver="exact", beta=beta, seed=seed)
    out: list[tuple[dict[str, Any], dimod.BinaryQuadraticModel]] = []
    for x, y in batches(images, 32):
        for (bqm, kept), label in zip(explainer.build_qubos(x, y).qubos, y.tolist(), strict=True):
            meta = {"id": len(out), "label": md.class_names[label], "maps": np.asarray(kept).tolist()}
            out.append((meta, bqm))
    return out


def run_anneal(
    out: Path,
    *,
    bqm_file: str | Path | None = None,
    checkpoint: str | None = None,
    dataset: str | None = None,
    layer: str | None = None,
    per_class: int = 20,
    max_problems: int | None = None,
    taus: Sequence[float] = (10.0, 50.0, 100.0),
    max_qubits: int = 14,
    dt: float = 0.01,
    driver: str = "transverse",
    schedule: str = "linear",
    beta: float = 0.7,
    grid: int = 41,
    seed: int = 0,
    figures: bool = True,
) -> dict[str, Any]:
    """Anneal the problems of one source and write ``out/anneal.json`` (returned as a dict).

    >>> import tempfile, dimod
    >>> path = Path(tempfile.mkdtemp()) / "p.bqm"
    >>> _ = path.write_bytes(dimod.generators.anti_crossing_clique(6).to_file().read())
    >>> s = run_anneal(Path(tempfile.mkdtemp()), bqm_file=path, taus=[5.0], dt=0.05, grid=11)
    >>> s["problems"][0]["num_qubits"], sorted(s["problems"][0]["fidelity"])
    (6, ['5'])
    """
    if (bqm_file is None) == (checkpoint is None):
        raise QxaiError("give exactly one problem source; pass --bqm FILE or --model CKPT")
    taus = [float(t) for t in taus]
    if not taus or min(taus) <= 0:
        raise QxaiError("--tau needs positive total times, e.g. --tau 10,50,100")
    if max_qubits < 1:
        raise QxaiError(f"--max-qubits must be at least 1, got {max_qubits}")
    if bqm_file is not None:
        sources = [({"id": 0, "file": str(bqm_file)}, load_bqm(bqm_file))]
        max_qubits = max(max_qubits, sources[0][1].num_variables)  # one explicit file: no size filter
    else:
        sources = model_qubos(checkpoint, dataset, layer, per_class, beta, seed)  # type: ignore[arg-type]
    kept = [(m, b) for m, b in sources if 1 <= b.num_variables <= max_qubits][:max_problems]
    options = {"dt": dt, "driver": driver, "schedule": schedule, "grid": grid, "seed": seed}
    options["max_qubits"] = max_qubits
    problems = [
        {**meta, **solve_problem(bqm, taus, **options)}  # type: ignore[arg-type]
        for meta, bqm in track(kept, "annealing", total=len(kept))
    ]
    result: dict[str, Any] = {
        "driver": driver, "schedule": schedule, "dt": dt, "taus": taus, "grid": grid, "seed": seed,
        "max_qubits": max_qubits, "num_problems": len(problems), "skipped": len(sources) - len(kept),
        "problems": problems, "statistics": summarise(problems, taus) if problems else {},
        "summary": headline(problems, taus, driver, schedule, skipped=len(sources) - len(kept)),
        "figures": [],
    }  # fmt: skip
    if problems and figures and len(problems) > 1:
        result["figures"] = write_figures(out, problems, taus, driver, schedule)
    write_json(Path(out) / "anneal.json", result)
    return result


def summarise(problems: list[dict[str, Any]], taus: Sequence[float]) -> dict[str, Any]:
    """Δ_min quantiles; per τ and d the median and IQR of F; per τ the fit ``log F ≈ a + b d``."""
    gaps = np.array([p["delta_min"] for p in problems])
    by_tau: dict[str, Any] = {}
    for tau in taus:
        key = f"{tau:g}"
        rows = {}
        for d in sorted({p["num_qubits"] for p in problems}):
            f = np.array([p["fidelity"][key] for p in problems if p["num_qubits"] == d])
            q25, q75 = np.quantile(f, [0.25, 0.75])
            rows[str(d)] = {"count": int(f.size), "median": float(np.median(f))}
            rows[str(d)].update(q25=float(q25), q75=float(q75))
        by_tau[key] = {"by_d": rows, "fit": _exp_fit(rows)}
    return {
        "delta_min": {"median": float(np.median(gaps)), "min": float(gaps.min()), "max": float(gaps.max()),
                      "fraction_below_0.01": float(np.mean(gaps < 0.01))},
        "fidelity": by_tau,
    }  # fmt: skip


def headline(
    problems: list[dict[str, Any]], taus: Sequence[float], driver: str, schedule: str, skipped: int = 0
) -> dict[str, float | int | str]:
    """The flat ``"summary"`` of ``anneal.json`` (``name: number | string``) that the report tabulates.

    >>> h = headline([{"num_qubits": 3, "delta_min": 0.5, "s_star": 0.6, "fidelity": {"10": 0.9}}],
    ...              [10.0], "authors", "linear")
    >>> h["Δ_min median"], h["median F (τ=10)"], h["driver"]
    (0.5, 0.9, 'H_D = +(1/d)Σσx')
    """
    out: dict[str, float | int | str] = {
        "problems": len(problems), "driver": DRIVER_LABELS.get(driver, driver), "schedule": schedule,
    }  # fmt: skip
    if skipped:
        out["problems skipped (too many qubits)"] = skipped
    if not problems:
        return out
    sizes = [int(p["num_qubits"]) for p in problems]
    gaps = np.array([p["delta_min"] for p in problems], dtype=float)
    out.update({
        "min qubits": min(sizes), "max qubits": max(sizes),
        "Δ_min median": float(np.median(gaps)), "Δ_min min": float(gaps.min()),
        "fraction Δ_min < 0.01": float(np.mean(gaps < 0.01)),
        "s* median": float(np.median([p["s_star"] for p in problems])),
    })  # fmt: skip
    for tau in taus:
        out[f"median F (τ={tau:g})"] = float(np.median([p["fidelity"][f"{tau:g}"] for p in problems]))
    smallest = f"{min(taus):g}"
    fit = summarise(problems, taus)["fidelity"][smallest]["fit"]
    if fit is not None:  # F ≈ e^(a + b d): b is the decay rate per qubit (negative when F falls with d)
        out[f"fitted decay rate at τ={smallest} (per qubit)"] = fit["rate_per_qubit"]
    return out


def _exp_fit(rows: dict[str, dict[str, float]]) -> dict[str, float] | None:
    # least squares on log(median F) over d: F ≈ exp(a + b d); needs two sizes with F > 0
    pts = [(int(d), r["median"]) for d, r in rows.items() if r["median"] > 0]
    if len(pts) < 2:
        return None
    d, f = np.array(pts, dtype=float).T
    b, a = np.polyfit(d, np.log(f), 1)
    return {"log_intercept": float(a), "rate_per_qubit": float(b)}


def write_figures(
    out: Path, problems: list[dict[str, Any]], taus: Sequence[float], driver: str, schedule: str = "linear"
) -> list[dict[str, str]]:
    """Write ``delta_min.png`` (histogram + CDF) and ``fidelity_vs_d.png`` (median F, IQR bars, fit).

    The fit is ``log F ≈ a + b d`` at the smallest τ. Returns the report's figure records
    ``{"file", "title", "caption"}``; every caption names the driver and the schedule.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qxai.io import write_figure

    label = DRIVER_LABELS.get(driver, driver)
    physics = f"driver {label}, {schedule} schedule ({SCHEDULE_LABELS.get(schedule, 'user functions')})"
    sizes = sorted({int(p["num_qubits"]) for p in problems})
    span = f"d = {sizes[0]}" if len(sizes) == 1 else f"d = {sizes[0]}–{sizes[-1]}"
    gaps = np.sort(np.array([p["delta_min"] for p in problems]))
    fig, ax = plt.subplots(figsize=(6, 4))
    lo, hi = np.log10(max(gaps.min(), 1e-12)), np.log10(max(gaps.max(), 1e-12))
    bins = np.logspace(lo, hi, 20) if hi > lo else 10
    ax.hist(gaps, bins=bins, color="tab:blue", alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("Δ_min")
    ax.set_ylabel("problems")
    cdf = ax.twinx()
    cdf.step(gaps, np.arange(1, gaps.size + 1) / gaps.size, where="post", color="tab:red")
    cdf.set_ylabel("CDF")
    cdf.set_ylim(0, 1.02)
    ax.set_title(f"minimum gap over {gaps.size} problems ({label})")
    write_figure(Path(out) / "delta_min.png", fig)

    stats = summarise(problems, taus)["fidelity"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for tau in taus:
        rows = stats[f"{tau:g}"]["by_d"]
        d = np.array([int(k) for k in rows])
        med = np.array([r["median"] for r in rows.values()])
        err = [med - [r["q25"] for r in rows.values()], [r["q75"] for r in rows.values()] - med]
        ax.errorbar(d, med, yerr=err, marker="o", capsize=3, label=f"τ = {tau:g}")
    smallest = f"{min(taus):g}"
    fit = stats[smallest]["fit"]
    if fit is not None:
        d = np.array(sorted({p["num_qubits"] for p in problems}), dtype=float)
        ax.plot(d, np.exp(fit["log_intercept"] + fit["rate_per_qubit"] * d), "k--",
                label=f"fit τ={smallest}: F ∝ e^({fit['rate_per_qubit']:.2f} d)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("d (qubits)")
    ax.set_ylabel("median fidelity F (IQR bars)")
    ax.set_title(f"success probability vs size ({label})")
    ax.legend(fontsize=8)
    write_figure(Path(out) / "fidelity_vs_d.png", fig)
    fit_text = "" if fit is None else (
        f" Dashed: least-squares fit log F ≈ a + b·d at τ = {smallest}, "
        f"b = {fit['rate_per_qubit']:.3f} per qubit."
    )
    return [
        {"file": "delta_min.png", "title": "Minimum spectral gap Δ_min",
         "caption": f"Histogram (log bins) and cumulative distribution of Δ_min over {gaps.size} explanation "
                    f"QUBOs ({span}); {physics}. Δ_min is measured from the ground level to the first level "
                    "outside the ground manifold of H_P (Lanczos, refined around the minimum)."},
        {"file": "fidelity_vs_d.png", "title": "Success probability against problem size",
         "caption": f"Median ground-state fidelity F(τ) = |⟨x*|ψ(τ)⟩|² against the number of qubits, one "
                    f"curve per total time τ, bars from the 25th to the 75th percentile; {physics}, exact "
                    f"state-vector split-operator dynamics.{fit_text}"},
    ]  # fmt: skip
