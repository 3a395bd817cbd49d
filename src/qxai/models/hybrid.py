"""A hybrid quantum–classical classifier and a fast, differentiable state-vector simulation of its circuit.

``HybridVQC`` (``--arch hybrid-vqc``): conv trunk (``conv1`` 16 maps → pool → ``conv2`` 32 maps → pool)
→ ``encode`` (Linear to n qubits, angles ``π·tanh``) → ``quantum`` (:class:`StronglyEntanglingVQC`:
RX angle embedding, then L strongly-entangling layers, read out as ⟨Z⟩ per qubit) → ``readout_norm``
(BatchNorm1d of the n expectations) → ``classifier`` (Linear to the classes).

The circuit is PennyLane's ``AngleEmbedding(rotation="X")`` followed by ``StronglyEntanglingLayers``
(Schuld et al. 2020: per layer a general rotation ``Rot(φ, θ, ω) = RZ(ω) RY(θ) RZ(φ)`` on every qubit,
then a ring of CNOTs ``i → i + r mod n`` with range ``r = l mod (n − 1) + 1`` in layer l), with the
same weight layout ``(L, n, 3)``, so a trained ``quantum.weights`` can be loaded into a
``qml.qnn.TorchLayer`` unchanged. The embedding is applied once (no data re-uploading), so the
variational layers are one fixed unitary per layer: the class ensembles' spectra and distances
(:mod:`qxai.analysis.quantum`) are the same after every layer, and what the layers change is the
entanglement and how much of the class information the ⟨Z⟩ readout can reach.

Simulation. The state of a batch is a ``(B, 2**n)`` complex128 tensor, wire 0 the most significant bit
(PennyLane's convention). The embedded state is a product state, built by outer products; a layer's
n rotations are one tensor product ``A ⊗ B`` applied as ``A S Bᵀ`` to the state reshaped to
``(B, 2**⌊n/2⌋, 2**⌈n/2⌉)``; its whole CNOT ring is one precomputed permutation of the basis (a gather).
Everything is torch, so autograd gives the gradients. Double precision: at n = 8 the circuit is about a
tenth of the trunk's multiply-adds (≈ 0.13 M real vs ≈ 1 M per MNIST image), so single precision would
save little, and double keeps the cross-checks against PennyLane (1e-6), finite differences (1e-5) and
QuTiP (1e-10) far from round-off; the output is cast back to the input's dtype.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache

import torch
from torch import nn

from qxai.errors import QxaiError

MAX_QUBITS = 16  # a (B, 2**16) complex128 state is 1 MB per input; beyond that use a real simulator


def embed_angles(angles: torch.Tensor) -> torch.Tensor:
    """The product state ``⊗_i RX(a_i)|0⟩`` for angles ``(B, n)``: ``(B, 2**n)`` complex128.

    >>> embed_angles(torch.tensor([[math.pi, 0.0]])).abs().round().tolist()  # |1⟩⊗|0⟩ = index 2
    [[0.0, 0.0, 1.0, 0.0]]
    """
    a = angles.to(torch.float64) / 2
    qubits = torch.stack([torch.cos(a).to(torch.complex128), -1j * torch.sin(a).to(torch.complex128)], -1)
    state = qubits[:, 0]
    for i in range(1, qubits.shape[1]):
        state = (state[:, :, None] * qubits[:, i, None, :]).reshape(len(state), -1)
    return state


def rot_matrices(weights: torch.Tensor) -> torch.Tensor:
    """PennyLane's ``Rot(φ, θ, ω) = RZ(ω) RY(θ) RZ(φ)`` for weights ``(..., 3)``: ``(..., 2, 2)`` complex."""
    w = weights.to(torch.float64)
    phi, theta, omega = w[..., 0], w[..., 1], w[..., 2]
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    plus, minus = (phi + omega) / 2, (phi - omega) / 2

    def phase(x: torch.Tensor) -> torch.Tensor:
        return torch.polar(torch.ones_like(x), x)

    row0 = torch.stack([phase(-plus) * c, -phase(minus) * s], -1)
    row1 = torch.stack([phase(-minus) * s, phase(plus) * c], -1)
    return torch.stack([row0, row1], -2)


def apply_single_qubit(state: torch.Tensor, gate: torch.Tensor, wire: int, n: int) -> torch.Tensor:
    """Apply the 2×2 ``gate`` to ``wire`` of states ``(B, 2**n)``."""
    b = len(state)
    view = state.reshape(b * 2**wire, 2, 2 ** (n - wire - 1))
    v0, v1 = view[:, 0], view[:, 1]
    # two fused multiply-adds: 50× faster than a complex einsum/bmm on 2×2 blocks (torch CPU)
    out = torch.stack([gate[0, 0] * v0 + gate[0, 1] * v1, gate[1, 0] * v0 + gate[1, 1] * v1], 1)
    return out.reshape(b, 2**n)


@lru_cache(maxsize=64)
def cnot_ring_permutation(n: int, rng: int) -> torch.Tensor:
    """Basis permutation ``p`` of the CNOTs ``i → (i + rng) mod n``, i = 0…n−1 in order: ``ψ' = ψ[:, p]``."""
    perm = torch.arange(2**n)
    index = torch.arange(2**n)
    for control in range(n):
        target = (control + rng) % n
        bit_c = (index >> (n - 1 - control)) & 1
        flipped = index ^ (bit_c << (n - 1 - target))
        perm = perm[flipped]
    return perm


def layer_range(layer: int, n: int) -> int:
    """The CNOT range ``r`` of layer ``layer`` (PennyLane's default ``l mod (n − 1) + 1``)."""
    return layer % (n - 1) + 1 if n > 1 else 0


@lru_cache(maxsize=16)
def z_signs(n: int) -> torch.Tensor:
    """``(2**n, n)`` float64: the eigenvalue of ``Z_i`` (+1 for bit 0, −1 for bit 1) on each basis state."""
    index = torch.arange(2**n)[:, None]
    bits = (index >> (n - 1 - torch.arange(n))[None, :]) & 1
    return (1 - 2 * bits).to(torch.float64)


def kron_all(gates: torch.Tensor) -> torch.Tensor:
    """``gates[0] ⊗ gates[1] ⊗ …`` for ``(k, 2, 2)``: ``(2**k, 2**k)``."""
    out = gates[0]
    for gate in gates[1:]:
        out = torch.kron(out, gate)
    return out


def variational_layer(state: torch.Tensor, weights: torch.Tensor, layer: int) -> torch.Tensor:
    """One strongly-entangling layer: ``Rot`` on every wire with ``weights`` ``(n, 3)``, then the CNOT ring.

    The n rotations are one tensor product ``A ⊗ B`` (A on the first ⌊n/2⌋ wires, B on the rest),
    applied to the state reshaped to ``(batch, 2**⌊n/2⌋, 2**⌈n/2⌉)`` as ``A S Bᵀ``: a few large
    operations instead of n small ones (3× faster at n = 8; equal to :func:`apply_single_qubit`
    wire by wire, tested).
    """
    n = weights.shape[0]
    gates = rot_matrices(weights)
    if n == 1:
        state = state @ gates[0].T
    else:
        half = n // 2
        a, b = kron_all(gates[:half]), kron_all(gates[half:])
        square = state.reshape(len(state), 2**half, 2 ** (n - half))
        state = (a @ square @ b.T).reshape(len(state), 2**n)
    if n > 1:
        # index_select, not state[:, p]: advanced indexing is 100× slower under deterministic mode
        state = torch.index_select(state, 1, cnot_ring_permutation(n, layer_range(layer, n)).to(state.device))
    return state


def expval_z(state: torch.Tensor) -> torch.Tensor:
    """⟨Z_i⟩ ``(B, n)`` float64 of states ``(B, 2**n)``."""
    n = round(math.log2(state.shape[1]))
    probs = state.real**2 + state.imag**2
    # a broadcast sum, not a matmul: a tiny float64 BLAS call is slow when the cores are shared
    return (probs[:, :, None] * z_signs(n).to(probs.device)).sum(1)


def circuit_states(angles: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    """States ``(B, 2**n)`` complex128 after the embedding and after each of the L layers (L + 1 tensors).

    ``angles`` ``(B, n)``; ``weights`` ``(L, n, 3)``.
    """
    states = [embed_angles(angles)]
    for layer in range(weights.shape[0]):
        states.append(variational_layer(states[-1], weights[layer], layer))
    return states


class StronglyEntanglingVQC(nn.Module):
    """RX angle embedding → ``n_layers`` strongly-entangling layers → ⟨Z⟩ per qubit.

    Input angles ``(B, n_qubits)``, output ⟨Z⟩ ``(B, n_qubits)`` in the input's dtype. ``weights``
    ``(n_layers, n_qubits, 3)`` start uniform in [0, 2π) (as ``qml.qnn.TorchLayer``).

    >>> layer = StronglyEntanglingVQC(3, 2)
    >>> layer(torch.zeros(4, 3)).shape
    torch.Size([4, 3])
    >>> [s.shape[1] for s in layer.states(torch.zeros(4, 3))]
    [8, 8, 8]
    """

    is_quantum_layer = True  # what find_quantum_layers looks for

    def __init__(self, n_qubits: int, n_layers: int) -> None:
        super().__init__()
        if not 1 <= n_qubits <= MAX_QUBITS:
            raise QxaiError(f"qubits must be between 1 and {MAX_QUBITS}, got {n_qubits}")
        if n_layers < 0:
            raise QxaiError(f"qlayers must be ≥ 0, got {n_layers}")
        self.n_qubits = n_qubits
        self.n_layers = n_layers
        self.weights = nn.Parameter(torch.rand(n_layers, n_qubits, 3) * (2 * math.pi))

    def states(self, angles: torch.Tensor) -> list[torch.Tensor]:
        """The L + 1 states ``(B, 2**n)`` complex128: after the embedding and after each layer."""
        return circuit_states(angles, self.weights)

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        if angles.ndim != 2 or angles.shape[1] != self.n_qubits:
            raise QxaiError(f"the quantum layer takes angles (B, {self.n_qubits}), got {tuple(angles.shape)}")
        state = embed_angles(angles)
        for layer in range(self.n_layers):
            state = variational_layer(state, self.weights[layer], layer)
        return expval_z(state).to(angles.dtype)

    def extra_repr(self) -> str:
        return f"qubits={self.n_qubits}, layers={self.n_layers}, strongly-entangling, RX embedding"


class HybridVQC(nn.Module):
    """Conv trunk → n qubit angles → variational circuit → ⟨Z⟩ → BatchNorm → Linear (``--arch hybrid-vqc``).

    Input ``(B, C, H, W)``, logits ``(B, K)``. ``qubits`` (default 8) and ``qlayers`` (default 4) are
    its hyper-parameters; ``freeze_quantum=True`` keeps the circuit at its random initial weights
    (the ablation of docs/quantum.md).

    >>> net = HybridVQC(1, 10, (28, 28), qubits=4, qlayers=2)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    default_layer = "conv2"
    analysis_layers = ("conv1", "conv2", "quantum")

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], qubits: int = 8,
        qlayers: int = 4, freeze_quantum: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        quantum = StronglyEntanglingVQC(qubits, qlayers)  # validates qubits and qlayers first
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        with torch.no_grad():
            flat = self._features(torch.zeros(1, in_channels, *image_size)).shape[1]
        self.encode = nn.Linear(flat, qubits)
        self.quantum = quantum
        self.quantum.weights.requires_grad_(not freeze_quantum)
        # ⟨Z⟩ of a random circuit is small; a per-qubit affine normalisation of the readout lets the
        # classifier learn at the trunk's pace (mnist, 5 epochs: 74 % without it, 96 % with it)
        self.readout_norm = nn.BatchNorm1d(qubits)
        self.classifier = nn.Linear(qubits, num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool2(self.conv2(self.pool1(self.conv1(x)))), 1)

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding angles ``(B, qubits)`` in (−π, π) of images ``(B, C, H, W)``."""
        return math.pi * torch.tanh(self.encode(self._features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.readout_norm(self.quantum(self.angles(x))))


def _pennylane_torch_layer() -> type | None:
    # only when the user's code has imported PennyLane already: detection never costs its import
    if "pennylane" not in sys.modules:
        return None
    from pennylane.qnn import TorchLayer

    return TorchLayer


def find_quantum_layers(model: nn.Module) -> list[str]:
    """Names of the quantum layers in ``model``: ours (``is_quantum_layer``) and PennyLane ``TorchLayer``s.

    >>> find_quantum_layers(HybridVQC(1, 2, (8, 8), qubits=2, qlayers=1))
    ['quantum']
    >>> find_quantum_layers(nn.Linear(2, 2))
    []
    """
    torch_layer = _pennylane_torch_layer()
    found = []
    for name, module in model.named_modules():
        if getattr(module, "is_quantum_layer", False) or (torch_layer and isinstance(module, torch_layer)):
            found.append(name)
    return found
