"""The explanation QUBO of SPEC §1 (steps 2–6), built from arrays with no model in sight.

Given the Grad-CAM channel weights ``α`` (N,) and the feature maps ``A`` (N, H, W) of one image:

* keep the maps with ``α > 0`` (their layer indices are ``kept``, ``d = len(kept)``);
* normalise ``α̃ = α / max α`` (``"max"``, default) or min–max (``"minmax"``);
* ``J_pq = |cos(A^p, A^q)|`` with a zero diagonal (:func:`redundancy`);
* ``E(x) = (1 − β) Σ_{p<q} J_pq x_p x_q − β Σ_p α̃_p x_p`` (+ ``λ (Σ_p x_p − k)²`` when a
  cardinality ``penalty=(λ, k)`` is given).

The result is a BINARY :class:`dimod.BinaryQuadraticModel` whose variables are the ints in
``kept``; the Ising form of step 6 is ``bqm.spin`` (dimod's conversion).

>>> import numpy as np
>>> bqm, kept = explanation_qubo(np.array([0.5, -1.0, 1.0]), np.eye(3).reshape(3, 1, 3))
>>> kept.tolist(), [float(bqm.linear[v]) for v in kept]
([0, 2], [-0.35, -0.7])
"""

from __future__ import annotations

from typing import Any

import dimod
import numpy as np

from qxai.errors import QxaiError

NORMALISATIONS = ("max", "minmax")


def _as_array(value: Any, name: str) -> np.ndarray:
    """A float64 numpy copy of a numpy array or a torch tensor (detached, on the CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise QxaiError(f"{name} contains NaN or infinite values; check the model's inputs and outputs")
    return arr


def redundancy(maps: Any) -> np.ndarray:
    """``|cos|`` between flattened maps: ``(N, H, W)`` or ``(N, H*W)`` → ``(N, N)``, zero diagonal.

    An all-zero map has no direction; its row and column are 0 (it is redundant with nothing).

    >>> redundancy(np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, 0.0]])).round(3).tolist()
    [[0.0, 0.707, 0.0], [0.707, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    arr = _as_array(maps, "maps")
    if arr.ndim < 2:
        raise QxaiError(f"maps must be (N, H, W) or (N, H*W), got shape {arr.shape}; pass one map per row")
    return redundancies(arr[None])[0]


def redundancies(maps: Any) -> np.ndarray:
    """Batched :func:`redundancy`: ``(B, N, ...)`` → ``(B, N, N)`` with one einsum."""
    arr = _as_array(maps, "maps")
    flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
    norms = np.linalg.norm(flat, axis=2, keepdims=True)
    # dividing by 1 leaves an all-zero map at zero, so its cosines are 0 rather than NaN
    unit = flat / np.where(norms > 0, norms, 1.0)
    cos = np.abs(np.einsum("bnk,bmk->bnm", unit, unit))
    idx = np.arange(cos.shape[1])
    cos[:, idx, idx] = 0.0
    # rounding can push |cos| of parallel maps a hair above 1
    return np.minimum(cos, 1.0)


def _check_options(beta: float, normalise: str, penalty: tuple[float, int] | None) -> None:
    if not 0.0 <= beta <= 1.0:
        raise QxaiError(f"beta must lie in [0, 1], got {beta}; the authors use 0.7")
    if normalise not in NORMALISATIONS:
        raise QxaiError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got '{normalise}'")
    if penalty is not None:
        lam, k = penalty
        if lam < 0 or int(k) != k or k < 0:
            raise QxaiError(f"penalty must be (λ ≥ 0, k ≥ 0 an integer), got {penalty}; e.g. (5.0, 3)")


def _normalise(alpha: np.ndarray, normalise: str) -> np.ndarray:
    """Scale positive weights: max → ``α / max α``; minmax → ``(α − min) / (max − min)``.

    With min–max, equal weights (including a single kept map) have no spread; they all become 1.
    """
    if normalise == "max":
        return alpha / alpha.max()
    spread = alpha.max() - alpha.min()
    return (alpha - alpha.min()) / spread if spread > 0 else np.ones_like(alpha)


def _build(
    alpha: np.ndarray,
    cos: np.ndarray,
    beta: float,
    normalise: str,
    penalty: tuple[float, int] | None,
) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
    """One model from one image's weights ``(N,)`` and its full ``(N, N)`` |cos| matrix."""
    kept = np.flatnonzero(alpha > 0)
    d = kept.size
    if d == 0:
        return dimod.BinaryQuadraticModel(dimod.BINARY), kept
    linear = -beta * _normalise(alpha[kept], normalise)
    rows, cols = np.triu_indices(d, k=1)
    quad = (1.0 - beta) * cos[np.ix_(kept, kept)][rows, cols]
    offset = 0.0
    if penalty is not None:
        # λ(Σx − k)² = λ[Σx_p + 2Σ_{p<q} x_p x_q − 2kΣx_p + k²] using x_p² = x_p
        lam, k = float(penalty[0]), int(penalty[1])
        linear = linear + lam * (1 - 2 * k)
        quad = quad + 2 * lam
        offset = lam * k * k
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
        linear, (rows, cols, quad), offset, dimod.BINARY, variable_order=kept.tolist()
    )
    return bqm, kept


def explanation_qubo(
    alpha: Any,
    maps: Any,
    *,
    beta: float = 0.7,
    normalise: str = "max",
    penalty: tuple[float, int] | None = None,
) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
    """The selection QUBO of one image: ``alpha (N,)``, ``maps (N, H, W)`` or ``(N, H*W)``.

    Returns ``(bqm, kept)``: ``kept`` (d,) int64 are the layer indices with ``α > 0`` and also the
    model's variable labels; with no ``α > 0`` the model is empty and ``kept`` is empty.

    >>> bqm, kept = explanation_qubo(np.array([1.0, 2.0]), np.ones((2, 3, 3)), beta=0.5)
    >>> float(bqm.energy({0: 1, 1: 1}))  # 0.5·|cos| − 0.5·(0.5 + 1)
    -0.25
    """
    a = _as_array(alpha, "alpha")
    m = _as_array(maps, "maps")
    if a.ndim != 1 or m.ndim not in (2, 3) or m.shape[0] != a.shape[0]:
        raise QxaiError(
            f"alpha must be (N,) and maps (N, H, W) or (N, H*W); got {a.shape} and {m.shape}"
        )
    _check_options(beta, normalise, penalty)
    return _build(a, redundancies(m[None])[0], beta, normalise, penalty)


def explanation_qubos(
    alpha: Any,
    activations: Any,
    *,
    beta: float = 0.7,
    normalise: str = "max",
    penalty: tuple[float, int] | None = None,
) -> list[tuple[dimod.BinaryQuadraticModel, np.ndarray]]:
    """One :func:`explanation_qubo` per image: ``alpha (B, N)``, ``activations (B, N, H, W)``.

    All ``B`` |cos| matrices come from one einsum; only the per-image model assembly loops.

    >>> out = explanation_qubos(np.ones((2, 3)), np.random.default_rng(0).random((2, 3, 4, 4)))
    >>> [len(bqm) for bqm, _ in out]
    [3, 3]
    """
    a = _as_array(alpha, "alpha")
    acts = _as_array(activations, "activations")
    if a.ndim != 2 or acts.ndim not in (3, 4) or acts.shape[:2] != a.shape:
        raise QxaiError(
            f"alpha must be (B, N) and activations (B, N, H, W); got {a.shape} and {acts.shape}"
        )
    _check_options(beta, normalise, penalty)
    cos = redundancies(acts)
    return [_build(a[b], cos[b], beta, normalise, penalty) for b in range(a.shape[0])]
