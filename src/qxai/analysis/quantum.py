"""Quantum layer analyses: what QIXAI's quantum words mean when the model really has quantum states.

For a model with a quantum layer (ours, :class:`qxai.models.hybrid.StronglyEntanglingVQC`, or a user's
PennyLane ``qml.qnn.TorchLayer``), the pure state ``|ψ(x)⟩`` of n qubits after each variational layer is
computed for N inputs, as one ``(N, 2**n)`` complex128 array per layer, and every quantity below is
computed for all inputs at once (reshaped state tensors, batched eigen/singular values):

* entanglement: von Neumann entropy ``S(ρ_i)`` of each qubit's reduced density matrix, of the half cut
  (Schmidt coefficients), the Meyer–Wallach ``Q = 2 (1 − mean_i tr ρ_i²)``;
* quantum mutual information ``I(i:j) = S_i + S_j − S_ij`` of every qubit pair;
* the data ensemble ``ρ̄ = mean_x |ψ(x)⟩⟨ψ(x)|`` overall and per class: spectrum, entropy, purity;
* class separability: trace distance ``T = ½‖ρ_a − ρ_b‖₁`` between class ensembles, the Helstrom
  bound ``½ + ½‖p_a ρ_a − p_b ρ_b‖₁`` for every class pair, and for K classes the pretty-good
  measurement's success ``P_PGM`` with the Barnum–Knill bracket ``P_PGM ≤ P_opt ≤ √P_PGM``; beside
  them the single-shot accuracy of the computational-basis (Z) measurement and the model's accuracy;
* integrated gradients of the predicted logit with respect to the embedding angles (Captum).

All entropies are in nats. See docs/quantum.md for the formulas and how to read them.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.probe import eval_mode

_EIG_TOL = 1e-12  # eigenvalues below this (relative to 1, states are normalised) are round-off


# --- states ---


def _n_qubits(states: np.ndarray) -> int:
    n = round(math.log2(states.shape[-1]))
    if states.ndim != 2 or 2**n != states.shape[-1]:
        raise QxaiError(f"states must be (N, 2**n), got {states.shape}")
    return n


def reduced_density_matrices(states: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """Reduced density matrices ``(N, 2**k, 2**k)`` of ``qubits`` (k of them, in that order) for pure
    states ``(N, 2**n)`` (wire 0 the most significant bit): ``ρ_A = tr_B |ψ⟩⟨ψ|``.

    >>> bell = np.array([[1, 0, 0, 1]]) / np.sqrt(2)
    >>> reduced_density_matrices(bell, (0,)).real.round(3).tolist()
    [[[0.5, 0.0], [0.0, 0.5]]]
    """
    states = np.asarray(states, dtype=np.complex128)
    n = _n_qubits(states)
    rest = [q for q in range(n) if q not in qubits]
    tensor = states.reshape(len(states), *([2] * n)).transpose(
        0, *(1 + q for q in qubits), *(1 + q for q in rest)
    )
    tensor = tensor.reshape(len(states), 2 ** len(qubits), 2 ** len(rest))
    # a batched GEMM: faster than the equivalent einsum, which numpy runs as its own loop
    return tensor @ tensor.conj().transpose(0, 2, 1)


def _entropy_of_eigenvalues(eig: np.ndarray) -> np.ndarray:
    """``−Σ λ log λ`` over the last axis, with 0 log 0 = 0 and round-off negatives dropped."""
    lam = np.where(eig > _EIG_TOL, eig, 1.0)
    return -(np.where(eig > _EIG_TOL, eig * np.log(lam), 0.0)).sum(-1)


def von_neumann_entropy(rho: np.ndarray) -> np.ndarray:
    """``S(ρ) = −tr ρ log ρ`` (nats) of density matrices ``(..., d, d)``: shape ``(...)``.

    >>> bool(np.isclose(von_neumann_entropy(np.eye(2) / 2), np.log(2)))
    True
    """
    return _entropy_of_eigenvalues(np.linalg.eigvalsh(rho))


def qubit_entropies(states: np.ndarray) -> np.ndarray:
    """``(N, n)``: entanglement entropy ``S(ρ_i)`` of each qubit with the rest."""
    n = _n_qubits(states)
    return np.stack([von_neumann_entropy(reduced_density_matrices(states, (q,))) for q in range(n)], 1)


def half_cut_entropy(states: np.ndarray) -> np.ndarray:
    """``(N,)``: entropy of the first ⌊n/2⌋ qubits versus the rest, from the Schmidt coefficients."""
    n = _n_qubits(states)
    half = n // 2
    schmidt = np.linalg.svd(states.reshape(len(states), 2**half, 2 ** (n - half)), compute_uv=False)
    return _entropy_of_eigenvalues(schmidt**2)


def meyer_wallach(states: np.ndarray) -> np.ndarray:
    """``(N,)``: Meyer–Wallach ``Q = 2 (1 − (1/n) Σ_i tr ρ_i²)``; 0 for product states, 1 for GHZ.

    >>> ghz = np.zeros((1, 8)); ghz[0, [0, 7]] = 2**-0.5
    >>> meyer_wallach(ghz).round(12).tolist()
    [1.0]
    """
    n = _n_qubits(states)
    purity = [
        np.einsum("nab,nba->n", r, r).real for r in (reduced_density_matrices(states, (q,)) for q in range(n))
    ]
    return 2.0 * (1.0 - np.mean(purity, axis=0))


def _entanglement_parts(states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each qubit's entropy ``(N, n)`` and purity ``(N, n)``, and the mutual information ``(N, n, n)``,
    from one set of single-qubit reduced density matrices (what three public functions share)."""
    n = _n_qubits(states)
    rhos = np.stack([reduced_density_matrices(states, (q,)) for q in range(n)], 1)  # (N, n, 2, 2)
    single = von_neumann_entropy(rhos)
    purity = (np.abs(rhos) ** 2).sum((-2, -1))  # tr ρ² = Σ |ρ_ab|² for Hermitian ρ
    pairs = list(itertools.combinations(range(n), 2))
    mi = np.zeros((len(states), n, n))
    if pairs:
        joint = von_neumann_entropy(np.stack([reduced_density_matrices(states, p) for p in pairs], 1))
        for k, (i, j) in enumerate(pairs):
            mi[:, i, j] = mi[:, j, i] = single[:, i] + single[:, j] - joint[:, k]
    return single, purity, np.maximum(mi, 0.0)  # subadditivity: negatives are round-off


def mutual_information_matrix(states: np.ndarray) -> np.ndarray:
    """``(N, n, n)``: quantum mutual information ``I(i:j) = S_i + S_j − S_ij`` (nats, 0 on the diagonal).

    >>> bell = np.array([[1, 0, 0, 1]]) / np.sqrt(2)
    >>> bool(np.isclose(mutual_information_matrix(bell)[0, 0, 1], 2 * np.log(2)))
    True
    """
    return _entanglement_parts(states)[2]


# --- ensembles ---


def ensemble_coordinates(states: np.ndarray) -> np.ndarray:
    """Coordinates ``(N, r)`` of the states in an orthonormal basis of their span (r ≤ min(N, 2**n)).

    Every ensemble of these states lives in that r-dimensional span, and spectra, traces and trace
    norms are the same there as in the full ``2**n`` space: the r×r matrices are cheap for any n.
    """
    states = np.asarray(states, dtype=np.complex128)
    if len(states) == 0:
        return np.zeros((0, 0), dtype=np.complex128)
    # the smaller Gram matrix's eigenvalues are the squared singular values (cheaper than an SVD); a
    # singular value counts when it exceeds 1e-6 of the largest, as before
    if len(states) >= states.shape[1]:
        lam, v = np.linalg.eigh(states.conj().T @ states)  # (2**n, 2**n): S†S = V Σ² V†
        keep = lam > _EIG_TOL * max(1.0, float(lam[-1]))
        if keep.all():  # the states span the whole space: their own amplitudes are coordinates
            return states
        return states @ v[:, keep]  # S V = U Σ
    lam, u = np.linalg.eigh(states @ states.conj().T)  # (N, N): S S† = U Σ² U†
    keep = lam > _EIG_TOL * max(1.0, float(lam[-1]))
    return u[:, keep] * np.sqrt(lam[keep])


def ensemble_density(coordinates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``ρ = Σ_x w_x |ψ_x⟩⟨ψ_x|`` (``w`` uniform by default) from coordinates ``(N, r)``: ``(r, r)``."""
    w = np.full(len(coordinates), 1.0 / len(coordinates)) if weights is None else np.asarray(weights)
    return (coordinates * w[:, None]).T @ coordinates.conj()  # one GEMM: a 3-operand einsum is a slow loop


def trace_norm(matrix: np.ndarray) -> float:
    """``‖A‖₁ = Σ |eig(A)|`` of a Hermitian matrix."""
    return float(np.abs(np.linalg.eigvalsh(matrix)).sum())


def trace_distance(rho: np.ndarray, sigma: np.ndarray) -> float:
    """``T(ρ, σ) = ½‖ρ − σ‖₁`` ∈ [0, 1].

    >>> trace_distance(np.diag([1.0, 0.0]), np.diag([0.0, 1.0]))
    1.0
    """
    return 0.5 * trace_norm(rho - sigma)


def helstrom_bound(rho0: np.ndarray, rho1: np.ndarray, p0: float = 0.5) -> float:
    """Best success probability of telling ``ρ0`` (prior ``p0``) from ``ρ1`` with one measurement on
    one copy: ``½ + ½‖p0 ρ0 − (1 − p0) ρ1‖₁`` (Helstrom 1976).

    >>> helstrom_bound(np.diag([1.0, 0.0]), np.eye(2) / 2)
    0.75
    """
    return 0.5 + 0.5 * trace_norm(p0 * rho0 - (1 - p0) * rho1)


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    eig, vec = np.linalg.eigh(matrix)
    inv = np.where(
        eig > _EIG_TOL * max(1.0, float(eig.max())), 1.0 / np.sqrt(np.clip(eig, _EIG_TOL, None)), 0.0
    )
    return (vec * inv) @ vec.conj().T


def pretty_good_measurement(rhos: np.ndarray, priors: np.ndarray) -> float:
    """Success probability of the pretty-good measurement ``E_k = σ^{-½} p_k ρ_k σ^{-½}``, ``σ = Σ p_k ρ_k``,
    for ensembles ``rhos`` ``(K, d, d)``. Barnum & Knill (2002): ``P_PGM ≤ P_opt ≤ √P_PGM``.

    >>> rhos = np.stack([np.diag([1.0, 0.0]), np.diag([0.0, 1.0])])
    >>> round(pretty_good_measurement(rhos, np.array([0.5, 0.5])), 12)
    1.0
    """
    weighted = rhos * np.asarray(priors)[:, None, None]
    root = _inverse_sqrt(weighted.sum(0))
    # tr(M M) = Σ_ab M_ab M_ba with M = x σ^{-½}: one GEMM per class instead of three
    return float(sum(np.sum(m * m.T).real for m in (x @ root for x in weighted)))


def z_readout_accuracy(states: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Single-shot accuracy of measuring all qubits in the computational basis and guessing the most
    probable class for the bit string: ``Σ_b max_k p_k P(b|k)``, ``P(b|k)`` the class-mean ``|⟨b|ψ⟩|²``."""
    probs = np.abs(states) ** 2
    joint = np.zeros((classes, states.shape[1]))
    np.add.at(joint, labels, probs)  # p_k P(b|k) · N
    return float(joint.max(0).sum() / len(states))


def ensemble_analysis(states: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
    """Spectra, entropies and purities of the overall and per-class ensembles, pairwise trace distances
    and Helstrom bounds, the K-class PGM bracket and the Z-readout accuracy, for states ``(N, 2**n)``.

    Classes absent from ``labels`` get NaN rows/columns in the pairwise matrices and are left out of
    the PGM. Returns a JSON-able dict (``trace_distance`` and ``helstrom`` are K×K lists).
    """
    labels = np.asarray(labels)
    coords = ensemble_coordinates(states)
    overall = ensemble_density(coords)
    present = [k for k in range(classes) if (labels == k).any()]
    rhos = {k: ensemble_density(coords[labels == k]) for k in present}
    counts = {k: int((labels == k).sum()) for k in present}
    priors = {k: counts[k] / len(labels) for k in present}
    spectrum = np.clip(np.linalg.eigvalsh(overall)[::-1], 0.0, None)
    td = np.full((classes, classes), np.nan)
    hel = np.full((classes, classes), np.nan)
    for a in present:
        td[a, a], hel[a, a] = 0.0, 0.5
    pairs = list(itertools.combinations(present, 2))
    # every pair's ρ_a − ρ_b in one batched eigenvalue call (one LAPACK loop, no Python per pair)
    norms = _trace_norms([rhos[a] - rhos[b] for a, b in pairs])
    for (a, b), norm in zip(pairs, norms, strict=True):
        td[a, b] = td[b, a] = 0.5 * norm
    unequal = [(a, b) for a, b in pairs if counts[a] != counts[b]]
    weighted = [counts[a] / (counts[a] + counts[b]) for a, b in unequal]
    helstrom = _trace_norms(
        [p * rhos[a] - (1 - p) * rhos[b] for (a, b), p in zip(unequal, weighted, strict=True)]
    )
    for a, b in pairs:  # equal priors: ‖½ρ_a − ½ρ_b‖₁ = T, no second eigenvalue problem
        hel[a, b] = hel[b, a] = 0.5 + 0.5 * td[a, b]
    for (a, b), norm in zip(unequal, helstrom, strict=True):
        hel[a, b] = hel[b, a] = 0.5 + 0.5 * norm
    pgm = pretty_good_measurement(
        np.stack([rhos[k] for k in present]), np.array([priors[k] for k in present])
    )
    off = ~np.eye(classes, dtype=bool) & ~np.isnan(td)
    return {
        "rank": int(coords.shape[1]),
        "spectrum": spectrum.tolist(),
        "entropy": float(_entropy_of_eigenvalues(spectrum)),
        "purity": float((spectrum**2).sum()),
        "class_entropy": [
            float(_class_entropy(coords[labels == k])) if k in rhos else None for k in range(classes)
        ],
        "class_purity": [float((np.abs(rhos[k]) ** 2).sum()) if k in rhos else None for k in range(classes)],
        "trace_distance": _nan_to_none(td),
        "helstrom": _nan_to_none(hel),
        "mean_trace_distance": float(td[off].mean()) if off.any() else 0.0,
        "min_trace_distance": float(td[off].min()) if off.any() else 0.0,
        "mean_pairwise_helstrom": float(hel[off].mean()) if off.any() else 0.5,
        "pgm_success": pgm,
        "optimal_success_upper": math.sqrt(pgm),
        "z_readout_accuracy": z_readout_accuracy(states, labels, classes),
        "helstrom_two_class": helstrom_bound(rhos[0], rhos[1], priors[0]) if present == [0, 1] else None,
    }


def _trace_norms(matrices: list[np.ndarray]) -> np.ndarray:
    """``‖A‖₁`` of each Hermitian matrix of the list, with one batched ``eigvalsh``."""
    if not matrices:
        return np.zeros(0)
    return np.abs(np.linalg.eigvalsh(np.stack(matrices))).sum(-1)


def _class_entropy(coordinates: np.ndarray) -> float:
    """Entropy of the uniform ensemble of ``coordinates`` ``(m, r)``: the nonzero eigenvalues of
    ``ρ = Xᵀ X̄ / m`` (r × r) are those of the Gram matrix ``X̄ Xᵀ / m`` (m × m), the smaller problem."""
    m, r = coordinates.shape
    if m < r:
        gram = coordinates.conj() @ coordinates.T / m
        return float(_entropy_of_eigenvalues(np.linalg.eigvalsh(gram)))
    return float(von_neumann_entropy(ensemble_density(coordinates)))


def _nan_to_none(m: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in m]


def entanglement_analysis(states: np.ndarray) -> dict[str, Any]:
    """Per-input entanglement of states ``(N, 2**n)`` averaged over the inputs (JSON-able)."""
    single, purity, mi = _entanglement_parts(states)  # the single-qubit matrices once, not three times
    half = half_cut_entropy(states)
    mw = 2.0 * (1.0 - purity.mean(1))
    mi = mi.mean(0)
    return {
        "qubit_entropy": single.mean(0).tolist(),
        "mean_qubit_entropy": float(single.mean()),
        "half_cut_entropy": float(half.mean()),
        "half_cut_entropy_std": float(half.std()),
        "meyer_wallach": float(mw.mean()),
        "meyer_wallach_std": float(mw.std()),
        "mutual_information": mi.tolist(),
        "max_mutual_information": float(mi.max()),
    }


# --- the model ---


def _angles_and_logits(
    model: nn.Module, module: nn.Module, images: torch.Tensor, batch: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """The quantum layer's inputs (angles) and the model's logits for ``images``, in batches."""
    seen: list[torch.Tensor] = []

    def record(_: nn.Module, args: tuple[Any, ...]) -> None:
        seen.append(args[0].detach())

    handle = module.register_forward_pre_hook(record)
    try:
        with eval_mode(model), torch.no_grad():
            logits = torch.cat([model(images[s : s + batch]) for s in range(0, len(images), batch)])
    finally:
        handle.remove()
    if len(seen) != math.ceil(len(images) / batch):
        raise QxaiError("the quantum layer did not run exactly once per forward pass; pass layer=NAME")
    return torch.cat(seen), logits


def _torch_layer_states(layer: nn.Module, angles: torch.Tensor) -> list[np.ndarray]:
    """States of a PennyLane ``TorchLayer`` after each top-level operation of its circuit (a template such
    as ``StronglyEntanglingLayers`` counts as one), simulated with broadcasting over the inputs."""
    import pennylane as qml

    weights = {k: v.detach().to(torch.float64) for k, v in layer.qnode_weights.items()}
    tape = qml.workflow.construct_tape(layer.qnode)(**{layer.input_arg: angles.to(torch.float64)}, **weights)
    wires = layer.qnode.device.wires or tape.wires
    device = qml.device("default.qubit", wires=wires)  # decomposes templates, broadcasts over inputs
    out = []
    for k in range(1, len(tape.operations) + 1):
        script = qml.tape.QuantumScript(tape.operations[:k], [qml.state()])
        (state,) = qml.execute([script], device, diff_method=None)
        state = np.asarray(qml.math.toarray(state), dtype=np.complex128).reshape(-1, 2 ** len(wires))
        out.append(np.broadcast_to(state, (len(angles), state.shape[1])) if len(state) == 1 else state)
    return out


def layer_states(layer: nn.Module, angles: torch.Tensor) -> list[np.ndarray]:
    """States ``(N, 2**n)`` complex128 after the embedding and after each variational layer."""
    if hasattr(layer, "states"):
        with torch.no_grad():
            return [s.numpy() for s in layer.states(angles)]
    return _torch_layer_states(layer, angles)


def angle_integrated_gradients(
    model: nn.Module, module: nn.Module, images: torch.Tensor, angles: torch.Tensor, targets: torch.Tensor,
    steps: int = 32,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """IG ``(B, n)`` of the target logits w.r.t. the embedding angles (baseline 0 = ``|0…0⟩``), and the
    completeness gap ``(B,)``. The images fix everything before the quantum layer; the angles are
    substituted at its input, so this works for any model that contains the layer."""
    from captum.attr import IntegratedGradients

    substitute: dict[str, torch.Tensor] = {}

    def replace(_: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (substitute["angles"].to(args[0].dtype), *args[1:])

    def forward(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        substitute["angles"] = a
        return model(x)

    handle = module.register_forward_pre_hook(replace)
    try:
        with eval_mode(model):
            attr, delta = IntegratedGradients(forward).attribute(
                angles.to(torch.float64), baselines=torch.zeros_like(angles, dtype=torch.float64),
                target=targets, additional_forward_args=(images,), n_steps=steps,
                return_convergence_delta=True,
            )  # fmt: skip
    finally:
        handle.remove()
    return attr.detach().numpy(), delta.detach().numpy()


def quantum_analysis(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_names: list[str],
    seed: int = 0,
    layer: str | None = None,
    ig_examples: int = 64,
    ig_steps: int = 32,
) -> tuple[dict[str, Any], list[tuple[Any, Any]]]:
    """All quantum layer analyses of ``model`` on ``images`` ``(N, C, H, W)`` with ``labels`` ``(N,)``.

    ``layer`` names the quantum layer (default: the first of :func:`qxai.models.hybrid.find_quantum_layers`).
    Returns a JSON-able dict (per-layer ``"layers"``, ``"model_accuracy"``, ``"angle_ig"`` and a flat
    ``"summary"``) and ``[(Figure, matplotlib figure)]`` with ``Figure.section == "quantum"``.
    ``seed`` picks the ``ig_examples`` inputs of the angle IG.

    >>> from qxai.models.hybrid import HybridVQC
    >>> net = HybridVQC(1, 2, (8, 8), qubits=3, qlayers=2)
    >>> x, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 2
    >>> doc, figs = quantum_analysis(net, x, y, class_names=["a", "b"])
    >>> len(doc["layers"]), [f.section for f, _ in figs]
    (3, ['quantum', 'quantum', 'quantum'])
    """
    from qxai.models.hybrid import find_quantum_layers
    from qxai.probe import resolve_layer
    from qxai.seeding import numpy_rng
    from qxai.threads import blas_threads

    found = find_quantum_layers(model)
    if layer is None:
        if not found:
            raise QxaiError(f"{type(model).__name__} has no quantum layer (ours or a PennyLane TorchLayer)")
        layer = found[0]
    module = resolve_layer(model, layer)
    labels_np = np.asarray(labels, dtype=np.int64)
    classes = len(class_names)
    if len(images) != len(labels_np) or len(images) < 2:
        raise QxaiError(f"need at least 2 images with one label each, got {len(images)} and {len(labels_np)}")
    if labels_np.min() < 0 or labels_np.max() >= classes:
        raise QxaiError(f"labels must be in 0..{classes - 1} for {classes} class names")
    angles, logits = _angles_and_logits(model, module, images)
    predictions = logits.argmax(1).numpy()
    accuracy = float((predictions == labels_np).mean())
    states = layer_states(module, angles)
    names = ["embedding"] + [f"layer {k}" for k in range(1, len(states))]
    # matrices of at most 2**n × 2**n: one BLAS thread is faster, and far faster on shared cores (40× at
    # n = 8 measured with the machine loaded), see qxai.threads
    with blas_threads(1):
        per_layer = [
            {"name": name, **entanglement_analysis(psi), **ensemble_analysis(psi, labels_np, classes)}
            for name, psi in zip(names, states, strict=True)
        ]
    rows = np.sort(numpy_rng(seed, "quantum-ig").permutation(len(images))[: min(ig_examples, len(images))])
    ig, delta = angle_integrated_gradients(
        model, module, images[rows], angles[rows], torch.as_tensor(predictions[rows]), ig_steps
    )
    last = per_layer[-1]
    summary = {
        "quantum_layer": layer,
        "qubits": round(math.log2(states[0].shape[1])),
        "variational_layers": len(states) - 1,
        "inputs": len(images),
        "model_accuracy": accuracy,
        "half_cut_entropy": last["half_cut_entropy"],
        "meyer_wallach": last["meyer_wallach"],
        "max_qubit_mi": last["max_mutual_information"],
        "ensemble_entropy": last["entropy"],
        "ensemble_purity": last["purity"],
        "mean_trace_distance": last["mean_trace_distance"],
        "pgm_success": last["pgm_success"],
        "optimal_success_upper": last["optimal_success_upper"],
        "z_readout_accuracy": last["z_readout_accuracy"],
        "ig_max_abs_delta": float(np.abs(delta).max(initial=0.0)),
        "most_attributed_qubit": int(np.abs(ig).mean(0).argmax()),
    }
    notes = []
    smallest = int(
        np.bincount(labels_np, minlength=classes)[np.bincount(labels_np, minlength=classes) > 0].min()
    )
    if smallest < states[0].shape[1]:
        notes.append(
            f"the class ensembles are plug-in estimates from as few as {smallest} inputs per class in a "
            f"{states[0].shape[1]}-dimensional space: each class spans at most that many dimensions, so the "
            "trace distances, Helstrom/PGM values and the Z-readout accuracy overstate the separability "
            "(in-sample estimates; analyse more inputs for tighter ones)"
        )
    doc = {
        "layer": layer,
        "notes": notes,
        "quantum_layers": found,
        "class_names": list(class_names),
        "model_accuracy": accuracy,
        "layers": per_layer,
        "angle_ig": {
            "examples": rows.tolist(),
            "mean_abs": np.abs(ig).mean(0).tolist(),
            "attributions": ig.tolist(),
            "delta": delta.tolist(),
            "steps": ig_steps,
        },
        "summary": summary,
    }
    return doc, quantum_figures(doc)


def quantum_figures(doc: dict[str, Any]) -> list[tuple[Any, Any]]:
    """The three figures of :func:`quantum_analysis`'s document, each ``(Figure, matplotlib figure)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qxai.io import Figure

    layers = doc["layers"]
    steps = np.arange(len(layers))
    labels = [entry["name"] for entry in layers]
    n = len(layers[0]["qubit_entropy"])

    fig1, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(steps, [e["mean_qubit_entropy"] for e in layers], marker="o", label="mean qubit S(ρ_i)")
    ax[0].plot(steps, [e["half_cut_entropy"] for e in layers], marker="s", label="half-cut S")
    ax[0].axhline(math.log(2), color="grey", ls=":", lw=0.8, label="ln 2")
    ax[0].set(xlabel="state after", ylabel="entropy (nats)", title="Entanglement per layer")
    ax[0].set_xticks(steps, labels, rotation=30, fontsize=7)
    ax[0].legend(fontsize=7)
    ax[1].plot(steps, [e["meyer_wallach"] for e in layers], marker="o", color="tab:purple")
    ax[1].set(xlabel="state after", ylabel="Q", ylim=(0, 1.02), title="Meyer–Wallach Q (mean over inputs)")
    ax[1].set_xticks(steps, labels, rotation=30, fontsize=7)
    fig1.tight_layout()

    fig2, ax = plt.subplots(1, 2, figsize=(10, 4.2))
    mi = np.asarray(layers[-1]["mutual_information"])
    im = ax[0].imshow(mi, cmap="viridis", vmin=0)
    ax[0].set(title=f"Qubit mutual information I(i:j), {labels[-1]} (nats)", xlabel="qubit", ylabel="qubit")
    ax[0].set_xticks(range(n))
    ax[0].set_yticks(range(n))
    fig2.colorbar(im, ax=ax[0], fraction=0.046)
    td = np.array(layers[-1]["trace_distance"], dtype=float)
    im = ax[1].imshow(td, cmap="magma", vmin=0, vmax=1)
    names = doc["class_names"]
    ax[1].set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax[1].set_yticks(range(len(names)), names, fontsize=7)
    ax[1].set(title="Trace distance between class ensembles")
    fig2.colorbar(im, ax=ax[1], fraction=0.046)
    fig2.tight_layout()

    fig3, ax = plt.subplots(figsize=(9, 3.8))
    lower = [e["pgm_success"] for e in layers]
    upper = [e["optimal_success_upper"] for e in layers]
    ax.fill_between(
        steps, lower, upper, color="tab:green", alpha=0.25, label="optimal measurement (PGM ≤ P ≤ √PGM)"
    )
    ax.plot(steps, [e["mean_pairwise_helstrom"] for e in layers], marker="^", color="tab:green",
            label="Helstrom, two-class tasks (mean over pairs)")  # fmt: skip
    ax.plot(steps, [e["z_readout_accuracy"] for e in layers], marker="o", color="tab:blue",
            label="single-shot Z readout")  # fmt: skip
    ax.axhline(doc["model_accuracy"], color="tab:red", ls="--", label="model accuracy (⟨Z⟩, exact)")
    ax.set(xlabel="state after", ylabel="success probability", ylim=(0, 1.02),
           title="Class information in the state vs what is read out")  # fmt: skip
    ax.set_xticks(steps, labels, rotation=30, fontsize=7)
    ax.axhline(1 / len(doc["class_names"]), color="grey", ls=":", lw=0.8, label="chance (1/K)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig3.tight_layout()

    captions = (
        "Mean over inputs of each qubit's entanglement entropy, the half-cut entropy and the Meyer–Wallach Q "
        "of the circuit state after the embedding and after each layer.",
        "Left: quantum mutual information I(i:j) = S_i + S_j − S_ij between the qubits of the final state "
        "(mean over inputs), the literal counterpart of QIXAI's feature-map MI. Right: trace distance "
        "½‖ρ_a − ρ_b‖₁ between the class ensembles.",
        "How much class information the quantum state holds (optimal single-copy measurement, bracketed by "
        "the pretty-good measurement) versus a single-shot computational-basis readout and the model's "
        "accuracy, which uses exact ⟨Z⟩ values (many copies).",
    )
    return [
        (
            Figure("quantum_entanglement.png", "Entanglement per variational layer", captions[0], "quantum"),
            fig1,
        ),
        (
            Figure(
                "quantum_mi.png", "Qubit mutual information and class trace distances", captions[1], "quantum"
            ),
            fig2,
        ),
        (
            Figure(
                "quantum_separability.png", "Helstrom bound vs accuracy per layer", captions[2], "quantum"
            ),
            fig3,
        ),
    ]
