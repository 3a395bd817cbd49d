"""Quantum layer analyses against QuTiP, closed forms and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from qxai.analysis.quantum import (
    ensemble_analysis,
    half_cut_entropy,
    helstrom_bound,
    meyer_wallach,
    mutual_information_matrix,
    pretty_good_measurement,
    quantum_analysis,
    qubit_entropies,
    reduced_density_matrices,
    trace_distance,
    von_neumann_entropy,
    z_readout_accuracy,
)

qutip = pytest.importorskip("qutip")
LN2 = math.log(2)


def _random_states(count: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=(count, 2**n)) + 1j * rng.normal(size=(count, 2**n))
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


def _qobj(psi: np.ndarray, n: int):
    return qutip.Qobj(psi.reshape(-1, 1), dims=[[2] * n, [1] * n])


def _ghz(n: int) -> np.ndarray:
    psi = np.zeros((1, 2**n), dtype=complex)
    psi[0, [0, -1]] = 2**-0.5
    return psi


def test_entropies_and_mutual_information_equal_qutip() -> None:
    n = 4
    states = _random_states(5, n, seed=0)
    single = qubit_entropies(states)
    half = half_cut_entropy(states)
    mi = mutual_information_matrix(states)
    for s, psi in enumerate(states):
        q = _qobj(psi, n)
        for i in range(n):
            assert abs(single[s, i] - qutip.entropy_vn(q.ptrace(i))) < 1e-10
            np.testing.assert_allclose(
                reduced_density_matrices(psi[None], (i,))[0], q.ptrace(i).full(), atol=1e-12
            )
        assert abs(half[s] - qutip.entropy_vn(q.ptrace([0, 1]))) < 1e-10
        for i, j in itertools.combinations(range(n), 2):
            expected = (
                qutip.entropy_vn(q.ptrace(i))
                + qutip.entropy_vn(q.ptrace(j))
                - qutip.entropy_vn(q.ptrace([i, j]))
            )
            assert abs(mi[s, i, j] - expected) < 1e-10
            assert mi[s, j, i] == mi[s, i, j]


def test_reduced_density_matrix_of_a_non_adjacent_ordered_pair_equals_qutip() -> None:
    psi = _random_states(1, 5, seed=1)[0]
    # QuTiP keeps the kept qubits in ascending order; permute its (1, 3) matrix to our (3, 1) order
    expected = _qobj(psi, 5).ptrace([1, 3]).permute([1, 0]).full()
    np.testing.assert_allclose(reduced_density_matrices(psi[None], (3, 1))[0], expected, atol=1e-12)


def test_bell_ghz_and_product_states() -> None:
    bell = np.array([[1, 0, 0, 1]]) / np.sqrt(2)
    np.testing.assert_allclose(qubit_entropies(bell), [[LN2, LN2]], atol=1e-12)
    np.testing.assert_allclose(half_cut_entropy(bell), [LN2], atol=1e-12)
    np.testing.assert_allclose(mutual_information_matrix(bell)[0, 0, 1], 2 * LN2, atol=1e-12)
    ghz = _ghz(5)
    np.testing.assert_allclose(qubit_entropies(ghz), LN2, atol=1e-12)
    np.testing.assert_allclose(half_cut_entropy(ghz), [LN2], atol=1e-12)
    np.testing.assert_allclose(meyer_wallach(ghz), [1.0], atol=1e-12)
    # GHZ: every pair's state is ½(|00⟩⟨00| + |11⟩⟨11|), S_ij = ln 2, so I(i:j) = ln 2 (classical correlation)
    mi = mutual_information_matrix(ghz)[0]
    np.testing.assert_allclose(mi[~np.eye(5, dtype=bool)], LN2, atol=1e-12)
    # product states: a tensor product of random single-qubit states
    rng = np.random.default_rng(2)
    product = np.ones((3, 1), dtype=complex)
    for _ in range(4):
        q = rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        product = (product[:, :, None] * q[:, None, :]).reshape(3, -1)
    np.testing.assert_allclose(qubit_entropies(product), 0.0, atol=1e-10)
    np.testing.assert_allclose(half_cut_entropy(product), 0.0, atol=1e-10)
    np.testing.assert_allclose(meyer_wallach(product), 0.0, atol=1e-12)
    np.testing.assert_allclose(mutual_information_matrix(product), 0.0, atol=1e-10)


def test_meyer_wallach_of_w_state() -> None:
    n = 3
    w = np.zeros((1, 8))
    w[0, [1, 2, 4]] = 1 / np.sqrt(3)
    # each qubit: diag(2/3, 1/3), purity 5/9, Q = 2 (1 − 5/9) = 8/9
    np.testing.assert_allclose(meyer_wallach(w), [8 / 9], atol=1e-12)
    assert qubit_entropies(w).shape == (1, n)


def _bloch_state(r: np.ndarray) -> np.ndarray:
    sx = np.array([[0, 1], [1, 0]])
    sy = np.array([[0, -1j], [1j, 0]])
    sz = np.diag([1.0, -1.0])
    return 0.5 * (np.eye(2) + r[0] * sx + r[1] * sy + r[2] * sz)


def test_helstrom_bound_equals_closed_form_on_qubits() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        r0, r1 = (v / np.linalg.norm(v) * rng.uniform(0, 1) for v in rng.normal(size=(2, 3)))
        p0 = float(rng.uniform(0.05, 0.95))
        # p0ρ0 − p1ρ1 = ½[(p0 − p1) I + (p0 r0 − p1 r1)·σ]: eigenvalues ½(p0 − p1 ± |p0 r0 − p1 r1|)
        expected = 0.5 + 0.5 * max(abs(2 * p0 - 1), np.linalg.norm(p0 * r0 - (1 - p0) * r1))
        assert abs(helstrom_bound(_bloch_state(r0), _bloch_state(r1), p0) - expected) < 1e-12
        # trace distance of qubits = half the Euclidean distance of the Bloch vectors
        assert abs(trace_distance(_bloch_state(r0), _bloch_state(r1)) - 0.5 * np.linalg.norm(r0 - r1)) < 1e-12


def test_helstrom_of_pure_states_and_pgm_is_optimal_for_two_pure_states() -> None:
    psi, phi = _random_states(2, 3, seed=4)
    overlap = abs(np.vdot(psi, phi)) ** 2
    rho, sigma = np.outer(psi, psi.conj()), np.outer(phi, phi.conj())
    expected = 0.5 * (1 + math.sqrt(1 - overlap))
    assert abs(helstrom_bound(rho, sigma) - expected) < 1e-12
    assert abs(pretty_good_measurement(np.stack([rho, sigma]), np.array([0.5, 0.5])) - expected) < 1e-10


def test_pgm_brackets_the_helstrom_optimum_for_mixed_ensembles() -> None:
    rng = np.random.default_rng(5)
    for seed in range(10):
        a = _random_states(3, 2, seed=10 + seed)
        b = _random_states(2, 2, seed=30 + seed)
        rho = np.einsum("na,nb->ab", a, a.conj()) / 3
        sigma = np.einsum("na,nb->ab", b, b.conj()) / 2
        p0 = float(rng.uniform(0.2, 0.8))
        pgm = pretty_good_measurement(np.stack([rho, sigma]), np.array([p0, 1 - p0]))
        optimum = helstrom_bound(rho, sigma, p0)
        assert pgm <= optimum + 1e-12 <= math.sqrt(pgm) + 2e-12


def test_trace_distance_is_symmetric_and_bounded() -> None:
    states = _random_states(6, 3, seed=6)
    rhos = [np.outer(s, s.conj()) for s in states]
    mixed = [(rhos[0] + rhos[1]) / 2, (rhos[2] + rhos[3] + rhos[4]) / 3, np.eye(8) / 8]
    for x, y in itertools.product(rhos + mixed, repeat=2):
        d = trace_distance(x, y)
        assert -1e-12 <= d <= 1 + 1e-12
        assert abs(d - trace_distance(y, x)) < 1e-12
    assert abs(trace_distance(rhos[0], rhos[0])) < 1e-12
    e0, e1 = np.zeros(8), np.zeros(8)
    e0[0], e1[5] = 1, 1
    assert abs(trace_distance(np.outer(e0, e0), np.outer(e1, e1)) - 1) < 1e-12


def test_ensemble_analysis_in_the_span_equals_the_full_space() -> None:
    n = 4
    states = _random_states(40, n, seed=7)[:10]  # 10 states in a 16-dim space: rank 10
    labels = np.arange(10) % 3
    doc = ensemble_analysis(states, labels, 3)
    full = {k: np.einsum("na,nb->ab", states[labels == k], states[labels == k].conj()) / (labels == k).sum()
            for k in range(3)}  # fmt: skip
    overall = np.einsum("na,nb->ab", states, states.conj()) / len(states)
    assert doc["rank"] == 10
    assert abs(doc["entropy"] - von_neumann_entropy(overall)) < 1e-10
    assert abs(doc["purity"] - np.trace(overall @ overall).real) < 1e-10
    for k in range(3):
        assert abs(doc["class_entropy"][k] - qutip.entropy_vn(qutip.Qobj(full[k]))) < 1e-10
    for a, b in itertools.combinations(range(3), 2):
        assert abs(doc["trace_distance"][a][b] - trace_distance(full[a], full[b])) < 1e-10
        pa = (labels == a).sum() / ((labels == a).sum() + (labels == b).sum())
        assert abs(doc["helstrom"][a][b] - helstrom_bound(full[a], full[b], pa)) < 1e-10
    assert doc["pgm_success"] <= doc["optimal_success_upper"]


def test_z_readout_accuracy_equals_brute_force() -> None:
    states = _random_states(30, 3, seed=8)
    labels = np.random.default_rng(8).integers(0, 3, size=30)
    probs = np.abs(states) ** 2
    # brute force: for each bit string, the class with the largest total probability mass wins
    expected = sum(max(probs[labels == k, b].sum() for k in range(3)) for b in range(8)) / 30
    assert abs(z_readout_accuracy(states, labels, 3) - expected) < 1e-12
    basis = np.eye(4)[[0, 1, 2, 3]]
    assert z_readout_accuracy(basis, np.array([0, 1, 0, 1]), 2) == 1.0


def _model_and_data(seed: int = 0):
    from qxai.models.hybrid import HybridVQC

    torch.manual_seed(seed)
    net = HybridVQC(1, 3, (8, 8), qubits=4, qlayers=3).eval()
    gen = torch.Generator().manual_seed(seed)
    return net, torch.rand(30, 1, 8, 8, generator=gen), torch.arange(30) % 3


def test_quantum_analysis_document_and_unitary_invariance() -> None:
    import json

    net, images, labels = _model_and_data()
    doc, figures = quantum_analysis(
        net, images, labels, class_names=["a", "b", "c"], ig_examples=5, ig_steps=64
    )
    json.dumps(doc, allow_nan=False)
    assert [f.file for f, _ in figures] == [
        "quantum_entanglement.png",
        "quantum_mi.png",
        "quantum_separability.png",
    ]
    assert all(f.section == "quantum" for f, _ in figures)
    assert len(doc["layers"]) == 4
    assert "plug-in estimates from as few as 10 inputs per class" in doc["notes"][0]  # 10 < 2**4
    assert all(isinstance(v, (int, float, str)) for v in doc["summary"].values())
    # the variational layers are fixed unitaries: ensemble spectra and distances do not change
    first = doc["layers"][0]
    for later in doc["layers"][1:]:
        np.testing.assert_allclose(later["spectrum"], first["spectrum"], atol=1e-10)
        np.testing.assert_allclose(later["trace_distance"], first["trace_distance"], atol=1e-10)
        assert abs(later["pgm_success"] - first["pgm_success"]) < 1e-8
    # the embedding is a product state: no entanglement before the first layer
    assert first["meyer_wallach"] < 1e-12 and first["max_mutual_information"] < 1e-10
    with torch.no_grad():
        accuracy = float((net(images).argmax(1) == labels).double().mean())
    assert doc["model_accuracy"] == accuracy
    # completeness of IG on the angles: Σ IG = F(angles) − F(0)
    assert doc["summary"]["ig_max_abs_delta"] < 1e-3


def test_quantum_analysis_is_deterministic_and_rejects_bad_input() -> None:
    from qxai.errors import QxaiError

    net, images, labels = _model_and_data(1)
    a, _ = quantum_analysis(net, images, labels, class_names=["a", "b", "c"], ig_examples=4, ig_steps=8)
    b, _ = quantum_analysis(net, images, labels, class_names=["a", "b", "c"], ig_examples=4, ig_steps=8)
    assert a == b
    with pytest.raises(QxaiError, match="labels"):
        quantum_analysis(net, images, labels + 5, class_names=["a", "b", "c"])
    with pytest.raises(QxaiError, match="no quantum layer"):
        quantum_analysis(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), images, labels,
                         class_names=["a", "b", "c"])  # fmt: skip


def test_user_pennylane_model_is_analysed_like_ours() -> None:
    qml = pytest.importorskip("pennylane")
    from qxai.models.hybrid import circuit_states

    n, layers = 3, 2
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="torch")
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n), rotation="X")
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    class UserModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = torch.nn.Linear(6, n)
            self.vqc = qml.qnn.TorchLayer(circuit, {"weights": (layers, n, 3)})
            self.post = torch.nn.Linear(n, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.post(self.vqc(self.pre(x.flatten(1))).float())

    torch.manual_seed(0)
    model = UserModel()
    x = torch.rand(12, 6)
    y = torch.arange(12) % 2
    doc, _ = quantum_analysis(model, x, y, class_names=["a", "b"], ig_examples=3, ig_steps=16)
    assert doc["layer"] == "vqc"
    assert [e["name"] for e in doc["layers"]] == ["embedding", "layer 1"]  # one template = one step
    with torch.no_grad():
        ours = circuit_states(model.pre(x), model.vqc.weights.detach().double())
    expected = ensemble_analysis(ours[-1].numpy(), y.numpy(), 2)
    assert abs(doc["layers"][-1]["pgm_success"] - expected["pgm_success"]) < 1e-8
    assert abs(doc["layers"][-1]["z_readout_accuracy"] - expected["z_readout_accuracy"]) < 1e-8
