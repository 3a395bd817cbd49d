"""The hybrid quantum–classical model: our torch simulation against PennyLane, gradients, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from qxai.models.hybrid import (
    HybridVQC,
    StronglyEntanglingVQC,
    apply_single_qubit,
    circuit_states,
    embed_angles,
    expval_z,
    find_quantum_layers,
    rot_matrices,
    variational_layer,
)

qml = pytest.importorskip("pennylane")


def _torch_layer(n: int, layers: int, diff_method: str = "backprop") -> nn.Module:
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n), rotation="X")
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    return qml.qnn.TorchLayer(circuit, {"weights": (layers, n, 3)})


@pytest.mark.parametrize(("n", "layers"), [(1, 2), (2, 3), (5, 3), (8, 4)])
def test_forward_equals_pennylane_torch_layer(n: int, layers: int) -> None:
    torch.manual_seed(n)
    ours = StronglyEntanglingVQC(n, layers)
    theirs = _torch_layer(n, layers)
    theirs.weights.data = ours.weights.data.double().clone()
    angles = (torch.rand(6, n, dtype=torch.float64) - 0.5) * 2 * math.pi
    np.testing.assert_allclose(
        ours(angles).detach().numpy(), theirs(angles).detach().numpy(), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("n", [2, 4, 5])
def test_states_after_each_layer_equal_pennylane_state(n: int) -> None:
    layers = 3
    gen = torch.Generator().manual_seed(1)
    weights = torch.rand(layers, n, 3, generator=gen, dtype=torch.float64) * 2 * math.pi
    angles = torch.rand(4, n, generator=gen, dtype=torch.float64) * 2 * math.pi
    ours = circuit_states(angles, weights)
    dev = qml.device("default.qubit", wires=n)
    for k in range(layers + 1):

        @qml.qnode(dev)
        def state(x, k=k):
            qml.AngleEmbedding(x, wires=range(n), rotation="X")
            if k:
                qml.StronglyEntanglingLayers(weights[:k].numpy(), wires=range(n))
            return qml.state()

        expected = np.stack([np.asarray(state(a.numpy())) for a in angles])
        np.testing.assert_allclose(ours[k].numpy(), expected, atol=1e-10, rtol=0)


def test_kron_layer_equals_wire_by_wire_application() -> None:
    n = 5
    gen = torch.Generator().manual_seed(2)
    weights = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 6
    state = embed_angles(torch.rand(3, n, generator=gen, dtype=torch.float64) * 6)
    gates = rot_matrices(weights)
    wire_by_wire = state
    for wire in range(n):
        wire_by_wire = apply_single_qubit(wire_by_wire, gates[wire], wire, n)
    # the CNOT ring of layer 0 (range 1) by explicit bit manipulation, one CNOT at a time
    for control in range(n):
        target = (control + 1) % n
        index = torch.arange(2**n)
        flipped = index ^ (((index >> (n - 1 - control)) & 1) << (n - 1 - target))
        wire_by_wire = wire_by_wire[:, flipped]
    np.testing.assert_allclose(variational_layer(state, weights, 0).numpy(), wire_by_wire.numpy(), atol=1e-13)


def test_states_are_normalised_and_expectations_bounded() -> None:
    states = circuit_states(torch.randn(7, 6, dtype=torch.float64), torch.randn(3, 6, 3, dtype=torch.float64))
    for s in states:
        np.testing.assert_allclose(s.abs().pow(2).sum(1).numpy(), 1.0, atol=1e-12)
    z = expval_z(states[-1])
    assert float(z.abs().max()) <= 1 + 1e-12


def test_gradients_equal_finite_differences() -> None:
    gen = torch.Generator().manual_seed(3)
    angles = torch.rand(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def f(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return expval_z(circuit_states(a, w)[-1])

    assert torch.autograd.gradcheck(f, (angles, weights), eps=1e-6, atol=1e-5, rtol=0)


def test_gradients_equal_pennylane_parameter_shift() -> None:
    n, layers = 4, 2
    torch.manual_seed(4)
    ours = StronglyEntanglingVQC(n, layers).double()
    theirs = _torch_layer(n, layers, diff_method="parameter-shift")
    theirs.weights.data = ours.weights.data.clone()
    angles = torch.rand(3, n, dtype=torch.float64) * 4
    readout = torch.randn(n, dtype=torch.float64)
    grads = []
    for layer in (ours, theirs):
        a = angles.clone().requires_grad_(True)
        # one input at a time: PennyLane's parameter shift does not differentiate broadcast inputs
        rows = [a[i : i + 1] if layer is ours else a[i] for i in range(len(a))]
        sum(layer(row).reshape(-1) @ readout for row in rows).backward()
        grads.append((a.grad.numpy(), layer.weights.grad.numpy()))
    for g_ours, g_theirs in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(g_ours, g_theirs, atol=1e-5, rtol=0)


def test_hybrid_model_with_pennylane_layer_gives_same_logits() -> None:
    torch.manual_seed(5)
    net = HybridVQC(1, 3, (12, 12), qubits=3, qlayers=2).double()
    x = torch.rand(4, 1, 12, 12, dtype=torch.float64)
    expected = net(x)
    swapped = _torch_layer(3, 2)
    swapped.weights.data = net.quantum.weights.data.clone()
    net.quantum = swapped
    np.testing.assert_allclose(net(x).detach().numpy(), expected.detach().numpy(), atol=1e-6)


def test_checkpoint_round_trip(tmp_path) -> None:
    from qxai.models.checkpoint import load_checkpoint, save_checkpoint
    from qxai.models.registry import build_model

    torch.manual_seed(6)
    net = build_model("hybrid-vqc", in_channels=1, num_classes=4, image_size=(12, 12), qubits=3, qlayers=2)
    cfg = {"arch": "hybrid-vqc", "hparams": {"qubits": 3, "qlayers": 2}, "in_channels": 1, "num_classes": 4,
           "image_size": [12, 12]}  # fmt: skip
    loaded = load_checkpoint(save_checkpoint(tmp_path / "h.pt", net, cfg)).model
    x = torch.rand(5, 1, 12, 12)
    net.eval()
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    assert loaded.quantum.weights.shape == (2, 3, 3)


def test_freeze_quantum_keeps_random_weights_fixed() -> None:
    net = HybridVQC(1, 2, (8, 8), qubits=2, qlayers=1, freeze_quantum=True)
    assert not net.quantum.weights.requires_grad
    assert HybridVQC(1, 2, (8, 8), qubits=2, qlayers=1).quantum.weights.requires_grad


def test_bad_hyper_parameters_are_one_line_errors() -> None:
    from qxai.errors import QxaiError
    from qxai.models.registry import build_model

    with pytest.raises(QxaiError, match="qubits"):
        build_model("hybrid-vqc", in_channels=1, num_classes=2, image_size=(8, 8), qubits=0)
    with pytest.raises(QxaiError, match="qlayers"):
        build_model("hybrid-vqc", in_channels=1, num_classes=2, image_size=(8, 8), qlayers=-1)


def test_find_quantum_layers_finds_ours_and_pennylane_torch_layers() -> None:
    class UserModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = nn.Linear(4, 3)
            self.q = _torch_layer(3, 1)
            self.post = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.post(self.q(self.pre(x)))

    assert find_quantum_layers(UserModel()) == ["q"]
    assert find_quantum_layers(HybridVQC(1, 2, (8, 8), qubits=2, qlayers=1)) == ["quantum"]
    assert find_quantum_layers(nn.Sequential(nn.Linear(2, 2))) == []
