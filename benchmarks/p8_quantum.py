"""P8: quantum layer states and analyses, ours (batched torch/numpy) vs a per-sample PennyLane loop.

Both sides take the same N inputs (embedding angles) through the same circuit (RX angle embedding,
then L strongly-entangling layers on n qubits) and compute, for the state after the embedding and
after each layer: per-qubit entropies, half-cut entropy, Meyer–Wallach Q, qubit mutual information,
the data ensemble's spectrum/entropy/purity, pairwise trace distances and Helstrom bounds between
class ensembles, the pretty-good-measurement success and the Z-readout accuracy.

* ours: :func:`qxai.models.hybrid.circuit_states` (all inputs at once) and the batched functions of
  :mod:`qxai.analysis.quantum`;
* reference: one PennyLane ``default.qubit`` QNode call per input and per depth returning
  ``qml.state()``, then per-sample ``qml.math.reduce_statevector`` / ``vn_entropy`` / ``purity``, the
  ensembles accumulated as full ``2**n × 2**n`` density matrices and ``qml.math.trace_distance``.

"per-input analyses" are the entanglement quantities (per input, then averaged); "ensemble analyses"
are the class-ensemble quantities, whose cost is a few dozen 2**n × 2**n eigenvalue problems on both
sides. Every result must agree to 1e-8. Run:

    .venv/bin/python benchmarks/p8_quantum.py            # 1000 inputs, 8 qubits, 4 layers, 10 classes
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch


def ours(
    angles: torch.Tensor, weights: torch.Tensor, labels: np.ndarray, classes: int, clock: dict[str, float]
) -> tuple[list, list]:
    from qxai.analysis.quantum import ensemble_analysis, entanglement_analysis
    from qxai.models.hybrid import circuit_states

    start = time.perf_counter()
    with torch.no_grad():
        states = [s.numpy() for s in circuit_states(angles, weights)]
    clock["states"] = time.perf_counter() - start
    start = time.perf_counter()
    entanglement = [entanglement_analysis(s) for s in states]
    clock["per-input analyses"] = time.perf_counter() - start
    start = time.perf_counter()
    ensembles = [ensemble_analysis(s, labels, classes) for s in states]
    clock["ensemble analyses"] = time.perf_counter() - start
    return states, [{**e, **m} for e, m in zip(entanglement, ensembles, strict=True)]


def reference(
    angles: np.ndarray, weights: np.ndarray, labels: np.ndarray, classes: int, clock: dict[str, float]
) -> tuple[list, list]:
    import pennylane as qml

    n = angles.shape[1]
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def state_after(x, w):
        qml.AngleEmbedding(x, wires=range(n), rotation="X")
        if len(w):
            qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.state()

    half = list(range(n // 2))
    all_states, results = [], []
    clock.update({"states": 0.0, "per-input analyses": 0.0, "ensemble analyses": 0.0})
    for depth in range(len(weights) + 1):
        start = time.perf_counter()
        states = np.stack([np.asarray(state_after(x, weights[:depth])) for x in angles])
        clock["states"] += time.perf_counter() - start
        start = time.perf_counter()
        single = np.zeros((len(states), n))
        mi = np.zeros((n, n))
        half_cut, mw = [], []
        for s, psi in enumerate(states):
            qubit_dms = [qml.math.reduce_statevector(psi, [i]) for i in range(n)]
            for i in range(n):
                single[s, i] = qml.math.vn_entropy(qubit_dms[i], indices=[0])
            half_cut.append(qml.math.vn_entropy(qml.math.reduce_statevector(psi, half), indices=half))
            mw.append(2 * (1 - np.mean([qml.math.purity(dm, indices=[0]) for dm in qubit_dms])))
            for i, j in itertools.combinations(range(n), 2):
                pair = qml.math.vn_entropy(qml.math.reduce_statevector(psi, [i, j]), indices=[0, 1])
                value = single[s, i] + single[s, j] - pair
                mi[i, j] += value / len(states)
                mi[j, i] += value / len(states)
        clock["per-input analyses"] += time.perf_counter() - start
        start = time.perf_counter()
        rhos, priors = [], []
        for k in range(classes):
            members = states[labels == k]
            rhos.append(sum(np.outer(p, p.conj()) for p in members) / len(members))
            priors.append(len(members) / len(states))
        overall = sum(p * r for p, r in zip(priors, rhos, strict=True))
        spectrum = np.clip(np.linalg.eigvalsh(overall)[::-1], 0, None)
        td = np.zeros((classes, classes))
        hel = np.full((classes, classes), 0.5)
        for a, b in itertools.combinations(range(classes), 2):
            td[a, b] = td[b, a] = qml.math.trace_distance(rhos[a], rhos[b])
            pa = priors[a] / (priors[a] + priors[b])
            hel[a, b] = hel[b, a] = (
                0.5 + 0.5 * np.abs(np.linalg.eigvalsh(pa * rhos[a] - (1 - pa) * rhos[b])).sum()
            )
        eig, vec = np.linalg.eigh(overall)
        inv = np.where(eig > 1e-12, 1 / np.sqrt(np.clip(eig, 1e-12, None)), 0.0)
        root = (vec * inv) @ vec.conj().T
        pgm = sum(np.trace(p * r @ root @ (p * r) @ root).real for p, r in zip(priors, rhos, strict=True))
        probs = np.abs(states) ** 2
        z = sum(max(probs[labels == k, b].sum() for k in range(classes)) for b in range(2**n)) / len(states)
        nz = spectrum[spectrum > 1e-12]
        results.append({
            "qubit_entropy": single.mean(0).tolist(), "half_cut_entropy": float(np.mean(half_cut)),
            "meyer_wallach": float(np.mean(mw)), "mutual_information": mi.tolist(),
            "spectrum": spectrum.tolist(), "entropy": float(-(nz * np.log(nz)).sum()),
            "purity": float((spectrum**2).sum()), "trace_distance": td.tolist(), "helstrom": hel.tolist(),
            "pgm_success": float(pgm), "z_readout_accuracy": float(z),
        })  # fmt: skip
        clock["ensemble analyses"] += time.perf_counter() - start
        all_states.append(states)
    return all_states, results


def max_difference(a: list, b: list) -> float:
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        for key, value in rb.items():
            va = np.asarray(ra[key], dtype=float)
            vb = np.asarray(value, dtype=float)
            if key == "spectrum":  # ours lists the span's r eigenvalues, the reference all 2**n
                vb = vb[: len(va)]
            worst = max(worst, float(np.abs(va - vb).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--qubits", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(args.seed)
    angles = (torch.rand(args.inputs, args.qubits, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    weights = torch.rand(args.layers, args.qubits, 3, generator=gen, dtype=torch.float64) * 2 * math.pi
    labels = np.arange(args.inputs) % args.classes

    from qxai.threads import blas_threads

    # both sides with one BLAS thread: their matrices are at most 2**n × 2**n, and the cores are shared
    with blas_threads(1):
        clock_ours: dict[str, float] = {}
        clock_ref: dict[str, float] = {}
        states_ours, results_ours = ours(angles, weights, labels, args.classes, clock_ours)
        states_ref, results_ref = reference(angles.numpy(), weights.numpy(), labels, args.classes, clock_ref)

    state_diff = max(float(np.abs(a - b).max()) for a, b in zip(states_ours, states_ref, strict=True))
    result_diff = max_difference(results_ours, results_ref)
    print(f"P8: {args.inputs} inputs × {args.layers} layers (+ embedding) at {args.qubits} qubits, "
          f"{args.classes} classes, torch threads {torch.get_num_threads()}, BLAS threads 1")  # fmt: skip
    print(f"  {'part':<20} {'ours (batched)':>15} {'PennyLane loop':>15} {'speed-up':>9}")
    for part in [*clock_ours, "total"]:
        mine = sum(clock_ours.values()) if part == "total" else clock_ours[part]
        theirs = sum(clock_ref.values()) if part == "total" else clock_ref[part]
        print(f"  {part:<20} {mine:13.2f} s {theirs:13.2f} s {theirs / mine:8.1f}×")
    print(f"  max |Δ state| {state_diff:.2e}, max |Δ analysis| {result_diff:.2e} (must be ≤ 1e-8)")
    if state_diff > 1e-8 or result_diff > 1e-8:
        raise SystemExit("P8 FAILED: results differ by more than 1e-8")


if __name__ == "__main__":
    main()
