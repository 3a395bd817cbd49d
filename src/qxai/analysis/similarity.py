"""Similarity between layers of any widths, compared on their N×N sample-by-sample structure.

Two layers with activations ``X`` ``(N, D1)`` and ``Y`` ``(N, D2)`` over the same N inputs cannot be
compared unit by unit, but their Gram matrices ``K = Xc Xcᵀ`` and ``L = Yc Ycᵀ`` (``Xc``: centred per
unit) are both ``N × N``.

* :func:`gram_cosine` — the cosine between the flattened centred Gram matrices,
  ``⟨K, L⟩_F / (‖K‖_F ‖L‖_F)``: the **RV coefficient** (Robert & Escoufier 1976), which equals the
  (biased) linear CKA of Kornblith et al. (2019). It is in [0, 1]; 0 means the layers' centred
  representations are "orthogonal" (no linear relation at all). It is biased upwards when the widths
  are large compared to N.
* :func:`linear_cka` — the **debiased** linear CKA (Song et al. 2012 unbiased HSIC, as used by
  Nguyen, Raghu & Kornblith 2021): the same cosine on U-centred Gram matrices with zero diagonal,
  which removes the finite-N bias; it can be slightly negative for unrelated layers.

Both are invariant to orthogonal transforms and isotropic scaling of either layer. A constant layer
has a zero Gram matrix: both functions return 0 instead of NaN (it is similar to nothing) and
:func:`similarity_matrices` reports it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    xc = x - x.mean(axis=0, keepdims=True)
    # units constant up to rounding become exact zeros, so a constant layer has a zero Gram matrix
    scale = max(1.0, float(np.abs(x).max(initial=0.0)))
    xc[:, np.ptp(x, axis=0) <= 1e-12 * scale] = 0.0
    return xc


def centred_gram(x: np.ndarray) -> np.ndarray:
    """``Xc Xcᵀ`` ``(N, N)`` of activations ``x`` ``(N, ...)`` centred per unit."""
    xc = _centred(x)
    return xc @ xc.T


def u_centre(gram: np.ndarray) -> np.ndarray:
    """The U-centred Gram matrix (zero diagonal) of the unbiased HSIC estimator; needs N ≥ 4.

    Follows Kornblith's reference ``center_gram(gram, unbiased=True)``.
    """
    n = gram.shape[0]
    g = gram.astype(np.float64, copy=True)
    np.fill_diagonal(g, 0.0)
    means = g.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    g -= means[:, None]
    g -= means[None, :]
    np.fill_diagonal(g, 0.0)
    return g


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return 0.0  # a constant layer: no structure to compare (reported by the caller)
    return float(np.clip((a * b).sum() / (na * nb), -1.0, 1.0))


def gram_cosine(x: np.ndarray, y: np.ndarray) -> float:
    """RV coefficient = cosine of the centred Gram matrices of ``x`` ``(N, D1)`` and ``y`` ``(N, D2)``.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 5))
    >>> round(gram_cosine(x, 3 * x @ np.linalg.qr(rng.normal(size=(5, 5)))[0]), 6)
    1.0
    """
    return _cosine(centred_gram(x), centred_gram(y))


def linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = True) -> float:
    """Linear CKA of ``x`` ``(N, D1)`` and ``y`` ``(N, D2)``; debiased by default (needs N ≥ 4).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 8))
    >>> round(linear_cka(x, x), 6), abs(linear_cka(x, rng.normal(size=(200, 8)))) < 0.05
    (1.0, True)
    """
    k, l_ = centred_gram(x), centred_gram(y)
    if debiased:
        if len(k) < 4:
            from qxai.errors import QxaiError

            raise QxaiError(f"debiased CKA needs at least 4 samples, got {len(k)}; use more inputs")
        k, l_ = u_centre(k), u_centre(l_)
    return _cosine(k, l_)


def similarity_matrices(acts: Mapping[str, np.ndarray], debiased: bool = True) -> dict[str, object]:
    """Gram cosine (RV) and linear CKA between every pair of layers in ``acts`` (name → ``(N, D)``).

    Returns ``{"layers": names, "cosine": (L, L), "cka": (L, L), "constant_layers": [...]}``; the
    diagonal of a constant layer is 0, not 1.

    >>> rng = np.random.default_rng(0)
    >>> m = similarity_matrices({"a": rng.normal(size=(30, 4)), "b": np.ones((30, 2))})
    >>> m["constant_layers"], round(float(m["cka"][0, 0]), 6), float(m["cka"][1, 1])
    (['b'], 1.0, 0.0)
    """
    names = list(acts)
    grams = {n: centred_gram(a) for n, a in acts.items()}
    ugrams = {n: u_centre(g) for n, g in grams.items()} if debiased else grams
    size = len(names)
    cos, cka = np.zeros((size, size)), np.zeros((size, size))
    for i, a in enumerate(names):
        for j in range(i, size):
            b = names[j]
            cos[i, j] = cos[j, i] = _cosine(grams[a], grams[b])
            cka[i, j] = cka[j, i] = _cosine(ugrams[a], ugrams[b])
    constant = [n for n, g in grams.items() if not np.any(g)]
    return {"layers": names, "cosine": cos, "cka": cka, "constant_layers": constant}
