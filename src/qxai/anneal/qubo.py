"""The explanation QUBO of SPEC §1 (steps 2–6), built from arrays with no model in sight.

Given the Grad-CAM channel weights ``α`` (N,) and the feature maps ``A`` (N, H, W) of one image:

* keep the maps with ``α > 0`` that are not dead (all-zero up to ``dead_eps``, see
  :class:`QuboOptions`); their layer indices are ``kept``, ``d = len(kept)``;
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

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import dimod
import numpy as np

from qxai.errors import QxaiError

NORMALISATIONS = ("max", "minmax")
#: the authors' importance vs redundancy strength β (SPEC §1), the default
AUTHORS_BETA = 0.7


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


@dataclass(frozen=True)
class QuboOptions:
    """The settings of an explanation QUBO, with their defaults written once.

    Attributes:
        beta: importance vs redundancy strength β in [0, 1] (the authors: 0.7).
        normalise: ``max`` (α / max α, default) or ``minmax`` (the authors' older code).
        penalty: optional cardinality penalty ``(λ, k)`` adding ``λ (Σx − k)²``.
        dead_eps: a map whose L2 norm is at most ``dead_eps`` times the largest map norm of the
            same image is *dead* (all zero after a ReLU, say) and is not a variable: its |cos| with
            every map is 0, so it would be selected for free whenever α > 0 while adding nothing to
            the saliency map. ``0`` keeps every map with α > 0 (only exactly-zero maps are dropped).

    >>> QuboOptions(beta=0.5).beta, QuboOptions.of(None, beta=0.6).beta
    (0.5, 0.6)
    >>> QuboOptions(beta=2.0)
    Traceback (most recent call last):
    qxai.errors.QxaiError: beta must lie in [0, 1], got 2.0; the authors use 0.7
    """

    beta: float = AUTHORS_BETA
    normalise: str = "max"
    penalty: tuple[float, int] | None = None
    dead_eps: float = 1e-6

    def __post_init__(self) -> None:
        beta = float(self.beta)
        if not np.isfinite(beta) or not 0.0 <= beta <= 1.0:
            raise QxaiError(f"beta must lie in [0, 1], got {self.beta}; the authors use {AUTHORS_BETA}")
        if self.normalise not in NORMALISATIONS:
            raise QxaiError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got '{self.normalise}'")
        if self.penalty is not None:
            try:
                lam, k = self.penalty
            except (TypeError, ValueError):
                raise QxaiError(
                    f"penalty must be a pair (λ, k), got {self.penalty!r}; e.g. (5.0, 3)"
                ) from None
            if not np.isfinite(lam) or lam < 0 or int(k) != k or k < 0:
                raise QxaiError(
                    f"penalty must be (λ ≥ 0, k ≥ 0 an integer), got {self.penalty}; e.g. (5.0, 3)"
                )
            object.__setattr__(self, "penalty", (float(lam), int(k)))
        if not np.isfinite(self.dead_eps) or not 0.0 <= self.dead_eps < 1.0:
            raise QxaiError(f"dead_eps must lie in [0, 1), got {self.dead_eps}; the default is 1e-6")
        object.__setattr__(self, "beta", beta)

    @classmethod
    def of(cls, options: QuboOptions | dict[str, Any] | None = None, **overrides: Any) -> QuboOptions:
        """``options`` (an instance, a dict such as a stage JSON's ``"qubo"`` entry, or None for the
        defaults) with ``overrides`` applied; None-valued overrides are ignored. Unknown keys are a
        :class:`QxaiError`."""
        base = options if isinstance(options, QuboOptions) else None
        given = dict(options) if isinstance(options, dict) else {}
        given.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise QxaiError(
                f"unknown QUBO option(s) {', '.join(unknown)}; the options are {', '.join(sorted(known))}"
            )
        if "penalty" in given and given["penalty"] is not None:
            given["penalty"] = tuple(given["penalty"])
        return replace(base, **given) if base is not None else cls(**given)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``penalty`` as a list or None), as every stage stores it."""
        out = asdict(self)
        out["penalty"] = list(self.penalty) if self.penalty is not None else None
        return out

    @classmethod
    def resolve(
        cls, source: str | Path | None = None, *, beta: float | None = None, normalise: str | None = None,
        penalty: str | tuple[float, int] | None = None, dead_eps: float | None = None,
    ) -> QuboOptions:  # fmt: skip
        """The QUBO options of a command line, read the same way by every command that builds QUBOs:
        the defaults, or those of an earlier run's JSON ``source`` (``--qubo-from``), with each option
        the user gave (not None) applied on top. ``penalty`` may be the CLI text ``"λ,k"``.

        >>> QuboOptions.resolve() == QuboOptions()
        True
        >>> QuboOptions.resolve(beta=0.5, penalty="5,3").penalty
        (5.0, 3)
        """
        if isinstance(penalty, str):
            penalty = parse_penalty(penalty)
        base = qubo_from_run(source) if source is not None else None
        return cls.of(base, beta=beta, normalise=normalise, penalty=penalty, dead_eps=dead_eps)


def qubo_from_run(path: str | Path) -> QuboOptions:
    """The QUBO options stored under ``"qubo"`` in an earlier run's JSON (explanations.json, metrics.json,
    anneal.json), so the same problems are rebuilt.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "m.json"
    >>> _ = p.write_text('{"qubo": {"beta": 0.6, "normalise": "minmax", "penalty": null}}')
    >>> qubo_from_run(p).beta, qubo_from_run(p).normalise
    (0.6, 'minmax')
    """
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as err:
        raise QxaiError(
            f"cannot read {path} ({err.strerror}); pass an explanations.json or metrics.json"
        ) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise QxaiError(f"{path} is not JSON; pass the explanations.json or metrics.json of a run") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("qubo"), dict):
        raise QxaiError(
            f'{path} has no "qubo" settings; pass the explanations.json or metrics.json of a qxai run'
        )
    return QuboOptions.of(doc["qubo"])


def parse_penalty(text: str | None) -> tuple[float, int] | None:
    """``"5,3"`` → ``(5.0, 3)``; None stays None.

    >>> parse_penalty("5, 3")
    (5.0, 3)
    """
    if text is None:
        return None
    try:
        lam, k = (t.strip() for t in text.split(","))
        return float(lam), int(k)
    except ValueError:
        raise QxaiError(f"--penalty expects 'λ,k', e.g. --penalty 5,3; got '{text}'") from None


def live_maps(maps: Any, dead_eps: float) -> np.ndarray:
    """``(B, N)`` bool: which maps of ``(B, N, ...)`` activations are not dead (see :class:`QuboOptions`).

    >>> live_maps(np.array([[[1.0, 0.0], [0.0, 0.0], [1e-9, 0.0]]]), 1e-6).tolist()
    [[True, False, False]]
    """
    arr = _as_array(maps, "maps")
    norms = np.linalg.norm(arr.reshape(arr.shape[0], arr.shape[1], -1), axis=2)
    top = norms.max(axis=1, keepdims=True)
    return (norms > dead_eps * top) & (norms > 0)


def _normalise(alpha: np.ndarray, normalise: str) -> np.ndarray:
    """Scale positive weights: max → ``α / max α``; minmax → ``(α − min) / (max − min)``.

    With min–max, equal weights (including a single kept map) have no spread; they all become 1.
    """
    if normalise == "max":
        return alpha / alpha.max()
    spread = alpha.max() - alpha.min()
    return (alpha - alpha.min()) / spread if spread > 0 else np.ones_like(alpha)


def _build(
    alpha: np.ndarray, cos: np.ndarray, live: np.ndarray, options: QuboOptions
) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
    """One model from one image's weights ``(N,)``, its ``(N, N)`` |cos| matrix and live mask ``(N,)``."""
    beta, normalise, penalty = options.beta, options.normalise, options.penalty
    kept = np.flatnonzero((alpha > 0) & live)
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
    alpha: Any, maps: Any, options: QuboOptions | dict[str, Any] | None = None, **overrides: Any
) -> tuple[dimod.BinaryQuadraticModel, np.ndarray]:
    """The selection QUBO of one image: ``alpha (N,)``, ``maps (N, H, W)`` or ``(N, H*W)``.

    ``options``: a :class:`QuboOptions` (default: its defaults); ``overrides`` replace its fields
    (``beta=0.5``). Returns ``(bqm, kept)``: ``kept`` (d,) int64 are the layer indices with
    ``α > 0`` whose map is not dead, and also the model's variable labels; with none the model is
    empty and ``kept`` is empty.

    >>> bqm, kept = explanation_qubo(np.array([1.0, 2.0]), np.ones((2, 3, 3)), beta=0.5)
    >>> float(bqm.energy({0: 1, 1: 1}))  # 0.5·|cos| − 0.5·(0.5 + 1)
    -0.25
    """
    a = _as_array(alpha, "alpha")
    m = _as_array(maps, "maps")
    if a.ndim != 1 or m.ndim not in (2, 3) or m.shape[0] != a.shape[0]:
        raise QxaiError(f"alpha must be (N,) and maps (N, H, W) or (N, H*W); got {a.shape} and {m.shape}")
    opts = QuboOptions.of(options, **overrides)
    live = live_maps(m[None], opts.dead_eps)[0]
    return _build(a, redundancies(m[None])[0], live, opts)


def explanation_qubos(
    alpha: Any, activations: Any, options: QuboOptions | dict[str, Any] | None = None, **overrides: Any
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
        raise QxaiError(f"alpha must be (B, N) and activations (B, N, H, W); got {a.shape} and {acts.shape}")
    opts = QuboOptions.of(options, **overrides)
    cos = redundancies(acts)
    live = live_maps(acts, opts.dead_eps)
    return [_build(a[b], cos[b], live[b], opts) for b in range(a.shape[0])]
