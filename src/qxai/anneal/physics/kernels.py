"""Numba kernels on the state vector: H(s)·v by bit flips, and one split-operator step.

Every kernel works on the little-endian state index of :mod:`qxai.anneal.enumerate`: σx on qubit
``p`` maps index ``i`` to ``i ^ (1 << p)``. Nothing here builds a ``2^d × 2^d`` matrix; the cost
of one call is ``O(d 2^d)``.

Why numba and not numpy slicing: numpy needs a temporary per qubit and makes ``d`` passes over the
vector; the split-operator kernel below applies the diagonal phase and the rotations of all low
qubits inside one cache-sized block (``2^BLOCK_BITS`` amplitudes), so a step reads the vector from
memory ``1 + (d − BLOCK_BITS)`` times instead of ``d + 1``. ``benchmarks/p3_statevector.py``
measures the gain against the scipy reference.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Amplitudes per cache block in :func:`split_step` (2^13 complex128 = 128 KiB, inside L2).
BLOCK_BITS = 13


@numba.njit(cache=True, nogil=True)
def apply_hamiltonian(
    v: np.ndarray, out: np.ndarray, energies: np.ndarray, a: float, b: float, d: int
) -> None:
    """``out = a · Σ_p σx_p v + b · diag(energies) v`` for real or complex ``v`` of shape ``(2^d,)``."""
    n = v.shape[0]
    for i in range(n):
        acc = v[i] * 0.0
        for p in range(d):
            acc += v[i ^ (1 << p)]
        out[i] = a * acc + b * energies[i] * v[i]


@numba.njit(cache=True, nogil=True)
def _rotate(psi: np.ndarray, start: int, stop: int, p: int, c: float, s: float) -> None:
    # exp(-i φ σx_p) = cos φ − i sin φ σx_p on the pairs (j, j + 2^p) inside [start, stop)
    step = 1 << p
    for base in range(start, stop, 2 * step):
        for j in range(base, base + step):
            x = psi[j]
            y = psi[j + step]
            psi[j] = complex(c * x.real + s * y.imag, c * x.imag - s * y.real)
            psi[j + step] = complex(c * y.real + s * x.imag, c * y.imag - s * x.real)


@numba.njit(cache=True, nogil=True, inline="always")
def _rot(x: complex, y: complex, c: float, s: float) -> tuple[complex, complex]:
    # (x, y) ← (c x − i s y, c y − i s x): exp(−iφσx) on one pair, in real arithmetic
    return (
        complex(c * x.real + s * y.imag, c * x.imag - s * y.real),
        complex(c * y.real + s * x.imag, c * y.imag - s * x.real),
    )


@numba.njit(cache=True, nogil=True)
def _rotate_pair(psi: np.ndarray, start: int, stop: int, p: int, c: float, s: float) -> None:
    # the rotations of qubits p and p+1 together on each quadruple: half the passes over memory
    lo = 1 << p
    hi = lo << 1
    for base in range(start, stop, 2 * hi):
        for j in range(base, base + lo):
            x0, x1 = _rot(psi[j], psi[j + lo], c, s)
            x2, x3 = _rot(psi[j + hi], psi[j + hi + lo], c, s)
            x0, x2 = _rot(x0, x2, c, s)
            x1, x3 = _rot(x1, x3, c, s)
            psi[j] = x0
            psi[j + lo] = x1
            psi[j + hi] = x2
            psi[j + hi + lo] = x3


@numba.njit(cache=True, nogil=True)
def _rotate_range(psi: np.ndarray, start: int, stop: int, first: int, last: int, c: float, s: float) -> None:
    # qubits first … last−1, two at a time, the odd one out alone
    p = first
    while p + 1 < last:
        _rotate_pair(psi, start, stop, p, c, s)
        p += 2
    if p < last:
        _rotate(psi, start, stop, p, c, s)


@numba.njit(cache=True, nogil=True)
def split_step(psi: np.ndarray, energies: np.ndarray, theta: float, phi: float, d: int) -> None:
    """In place: ``psi ← exp(−iφ Σσx) · exp(−iθ diag(energies)) · psi``.

    The driver exponential factorises into one-qubit rotations because the σx_p commute; the
    problem exponential is elementwise. ``phi = 0`` applies only the phase.
    """
    n = psi.shape[0]
    c = math.cos(phi)
    s = math.sin(phi)
    low = min(BLOCK_BITS, d)
    block = 1 << low
    for start in range(0, n, block):
        stop = start + block
        for i in range(start, stop):
            ang = theta * energies[i]
            psi[i] = psi[i] * complex(math.cos(ang), -math.sin(ang))
        if phi != 0.0:
            _rotate_range(psi, start, stop, 0, low, c, s)
    if phi != 0.0:
        _rotate_range(psi, 0, n, low, d, c, s)


@numba.njit(cache=True, nogil=True)
def weighted_norms(psi: np.ndarray, energies: np.ndarray) -> tuple[float, float]:
    """``(Σ|ψ_i|², Σ|ψ_i|² E_i)`` in one pass."""
    norm = 0.0
    mean = 0.0
    for i in range(psi.shape[0]):
        w = psi[i].real * psi[i].real + psi[i].imag * psi[i].imag
        norm += w
        mean += w * energies[i]
    return norm, mean


@numba.njit(cache=True, nogil=True)
def run_steps(psi: np.ndarray, energies: np.ndarray, thetas: np.ndarray, phis: np.ndarray, d: int) -> None:
    """Apply :func:`split_step` for every ``(thetas[k], phis[k])`` in order (no Python loop per step)."""
    for k in range(thetas.shape[0]):
        split_step(psi, energies, thetas[k], phis[k], d)
