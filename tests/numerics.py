"""Tolerances for comparing float results of two routes that cannot be bit-identical by construction.

Two routes that put every image in the same batch, in one process, give bit-identical numbers (the
stream and resume tests assert exactly that, under the ``batch_coupled`` fixture). Routes that run
the same batches with another thread count or another CPU kernel — a Ray actor holds one thread,
the driver two; a cluster node may have another SIMD width — may round differently, and are
compared here with a tolerance derived from float32 arithmetic, never read off one machine:

Each network output is a chain of ``L`` dot products (convolutions, linear layers) of length at most
``K``. One float32 dot product computed in any order has a relative error of at most
``γ_K = K·u / (1 − K·u)`` with ``u = eps/2`` relative to ``Σ|w_i x_i|`` (Higham, *Accuracy and
Stability of Numerical Algorithms*, §3.1); to first order the errors of the ``L`` layers add, so each
route is within ``L·γ_K`` of the exact value and two routes within ``2·L·γ_K`` of each other. What
the evaluation derives from the outputs (softmax probabilities, means, bootstrap percentiles,
min–max normalised maps) is Lipschitz with constant ≤ 1 in these units, so the same bound holds,
normwise, for every array (``max |a − b| ≤ tol · max(1, max |a|)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

UNIT_ROUNDOFF = float(np.finfo(np.float32).eps) / 2


def route_tolerance(model: torch.nn.Module) -> float:
    """``2·L·γ_K`` for ``model``: ``L`` its conv/linear layers, ``K`` their largest fan-in.

    >>> net = torch.nn.Sequential(torch.nn.Linear(100, 10), torch.nn.Linear(10, 2))
    >>> 1e-5 < route_tolerance(net) < 1e-4
    True
    """
    fan_ins = [
        m.weight[0].numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    if not fan_ins:
        raise ValueError("the model has no conv or linear layer to derive a tolerance from")
    k = max(fan_ins)
    gamma = k * UNIT_ROUNDOFF / (1 - k * UNIT_ROUNDOFF)
    return 2 * len(fan_ins) * gamma


def assert_arrays_close(a: np.ndarray, b: np.ndarray, tol: float, what: str = "") -> None:
    """``a`` and ``b`` agree normwise: ``max |a − b| ≤ tol · max(1, max |a|)``; integers exactly."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind not in "fc":
        np.testing.assert_array_equal(a, b, err_msg=what)
        return
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=what)
    finite = np.isfinite(a)
    if not finite.any():
        return
    scale = max(1.0, float(np.abs(a[finite]).max()))
    err = float(np.abs(a[finite] - b[finite]).max())
    assert err <= tol * scale, f"{what}: max |a − b| = {err:.3g} > {tol:.3g} × {scale:.3g}"


def assert_npz_close(a: Any, b: Any, tol: float) -> None:
    """Every array of two ``.npz`` files agrees by :func:`assert_arrays_close` (timings skipped)."""
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            if "seconds" not in key:
                assert_arrays_close(x[key], y[key], tol, key)


def assert_docs_close(a: Any, b: Any, tol: float, path: str = "") -> None:
    """Two JSON-like documents are equal in structure and strings, and their numbers agree within
    ``tol`` relative to ``max(1, |a|)`` (NaN equals NaN). Booleans and ints compare exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (path, sorted(a), sorted(b))
        for key in a:
            assert_docs_close(a[key], b[key], tol, f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_docs_close(x, y, tol, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert isinstance(b, float | int) and not isinstance(b, bool), (path, a, b)
        if math.isnan(a) or math.isnan(float(b)):
            assert math.isnan(a) and math.isnan(float(b)), (path, a, b)
        else:
            assert abs(a - b) <= tol * max(1.0, abs(a)), f"{path}: {a} vs {b} (tol {tol:.3g})"
    else:
        assert a == b, (path, a, b)
