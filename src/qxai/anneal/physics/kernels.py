"""Numba kernels on the state vector: H(s)·v by bit flips, and one split-operator step.

Every kernel works on the little-endian state index of :mod:`qxai.anneal.enumerate`: σx on qubit
``p`` maps index ``i`` to ``i ^ (1 << p)``. Nothing here builds a ``2^d × 2^d`` matrix; the cost
of one call is ``O(d 2^d)``.

Why numba and not numpy slicing: numpy needs a temporary per qubit and makes ``d`` passes over the
vector; the split-operator kernel below applies the diagonal phase and the rotations of all low
qubits inside one cache-sized block (``2^BLOCK_BITS`` amplitudes), so a step reads the vector from
memory ``1 + (d − BLOCK_BITS)`` times instead of ``d + 1``. ``benchmarks/p3_statevector.py``
measures the gain against the scipy reference.

Threads: the blocks of :func:`split_step`, the pair loops of the high qubits and the rows of
:func:`apply_hamiltonian` are independent, so they run under ``prange`` (no reductions: the result
does not depend on the thread count); how many threads follows :mod:`qxai.threads` — more than one
only from :data:`MIN_WORK_PER_THREAD` amplitude updates per thread, and only on free cores.
The diagonal phase ``exp(−iθE)`` changes every step (θ
follows ``B(s)``), so it cannot be tabulated; :func:`_cis` evaluates it branch-free (range reduction,
Taylor series at an eighth of the angle, three angle doublings), which LLVM vectorises, instead of
a libm ``cos`` and ``sin`` per amplitude (measured 4–5× faster on the phase pass, error ≈ 1e-15).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from qxai.threads import numba_threads, threads_for

#: Amplitudes per cache block in :func:`split_step` (2^13 complex128 = 128 KiB, inside L2).
BLOCK_BITS = 13


#: Amplitude updates (``d · 2^d`` per step or matvec) a thread must get before a region is split:
#: about a millisecond of one core's work here, so that fork-join overhead is small on a free core.
#: Late threads on a busy machine are avoided by counting only free cores (:mod:`qxai.threads`).
MIN_WORK_PER_THREAD = 1 << 19


def state_threads(d: int) -> int:
    """Threads for one ``O(d 2^d)`` kernel call on ``d`` qubits (:func:`qxai.threads.threads_for`).

    >>> state_threads(10)
    1
    """
    return threads_for(d * (1 << d), MIN_WORK_PER_THREAD)


def apply_hamiltonian(
    v: np.ndarray, out: np.ndarray, energies: np.ndarray, a: float, b: float, d: int
) -> None:
    """``out = a · Σ_p σx_p v + b · diag(energies) v`` for real or complex ``v`` of shape ``(2^d,)``,
    on :func:`state_threads` threads.

    >>> v = np.array([1.0, 0.0]); out = np.empty(2)
    >>> apply_hamiltonian(v, out, np.array([2.0, 3.0]), 1.0, 1.0, 1); out.tolist()
    [2.0, 1.0]
    """
    before = numba.get_num_threads()
    numba.set_num_threads(min(state_threads(d), numba.config.NUMBA_NUM_THREADS))
    try:
        apply_hamiltonian_kernel(v, out, energies, a, b, d)
    finally:
        numba.set_num_threads(before)


@numba.njit(cache=True, nogil=True, parallel=True)
def apply_hamiltonian_kernel(
    v: np.ndarray, out: np.ndarray, energies: np.ndarray, a: float, b: float, d: int
) -> None:
    """:func:`apply_hamiltonian` on numba's current number of threads."""
    n = v.shape[0]
    for i in numba.prange(n):
        acc = v[i] * 0.0
        for p in range(d):
            acc += v[i ^ (1 << p)]
        out[i] = a * acc + b * energies[i] * v[i]


#: Rows per task in the block kernels below (a task's scratch, ``ROW_CHUNK × 2m`` doubles, stays in
#: L2). Partial sums are added in chunk order, so results do not depend on the number of threads.
#: Loops run down a column (contiguous in Fortran order), which LLVM vectorises.
ROW_CHUNK = 1 << 12


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def residual_preconditioned(
    buf: np.ndarray, m: int, theta: np.ndarray, diag: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """LOBPCG block step, one pass: ``W = (HX − XΘ) / (diag − σ)``; returns ``(‖r_j‖², ‖w_j‖²)``.

    ``buf`` is the ``(2^d, 6m)`` Fortran-order buffer ``[X W P | HX HW HP]``; ``W`` is written in place.
    """
    n = buf.shape[0]
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    part_r = np.zeros((chunks, m))
    part_w = np.zeros((chunks, m))
    for t in numba.prange(chunks):
        lo = t * ROW_CHUNK
        hi = min(n, lo + ROW_CHUNK)
        for c in range(m):
            th = theta[c]
            acc_r = 0.0
            acc_w = 0.0
            for i in range(lo, hi):
                r = buf[i, 3 * m + c] - th * buf[i, c]
                w = r / (diag[i] - sigma)
                buf[i, m + c] = w
                acc_r += r * r
                acc_w += w * w
            part_r[t, c] = acc_r
            part_w[t, c] = acc_w
    rn = np.zeros(m)
    wn = np.zeros(m)
    for t in range(chunks):
        rn += part_r[t]
        wn += part_w[t]
    return rn, wn


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def orthogonalize_scaled(buf: np.ndarray, m: int, overlap: np.ndarray, scale: np.ndarray) -> None:
    """In place: ``W ← (W − X · overlap) · diag(scale)`` (``overlap = XᵀW``), one pass."""
    n = buf.shape[0]
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for t in numba.prange(chunks):
        lo = t * ROW_CHUNK
        hi = min(n, lo + ROW_CHUNK)
        for c in range(m):
            for k in range(m):
                o = overlap[k, c]
                for i in range(lo, hi):
                    buf[i, m + c] -= o * buf[i, k]
            sc = scale[c]
            for i in range(lo, hi):
                buf[i, m + c] *= sc


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _combine(out: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
    # out = cols @ weights, one contiguous column at a time (vectorised axpy)
    out[:] = 0.0
    for k in range(cols.shape[1]):
        f = weights[k]
        col = cols[:, k]
        for i in range(out.shape[0]):
            out[i] += f * col[i]


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def rotate_basis(buf: np.ndarray, m: int, width: int, coeff: np.ndarray) -> None:
    """In place on both halves of ``[X W P | HX HW HP]``: ``[X P] ← [X W P][:, :width] · coeff``.

    ``coeff`` is ``(width, 2m)``; the image half gets the same rotation, so ``HX``/``HP`` stay the
    images of ``X``/``P`` without a matvec. Each output row needs only the same input row.
    """
    n = buf.shape[0]
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for t in numba.prange(chunks):
        lo = t * ROW_CHUNK
        hi = min(n, lo + ROW_CHUNK)
        new = np.empty((2 * m, hi - lo))  # C order: each row contiguous
        for half in range(2):
            base = 3 * m * half
            for c in range(2 * m):
                _combine(new[c], buf[lo:hi, base : base + width], coeff[:, c])
            for c in range(m):
                buf[lo:hi, base + c] = new[c]
                buf[lo:hi, base + 2 * m + c] = new[m + c]


TWO_PI_HI = 6.283185307179586
TWO_PI_LO = 2.4492935982947064e-16  # 2π − TWO_PI_HI: Cody–Waite reduction keeps large angles exact
ROUND_MAGIC = 6755399441055744.0  # 1.5 · 2^52: (u + M) − M rounds u to the nearest integer, |u| < 2^51
# Taylor coefficients ±1/k! of sin (odd k) and cos (even k)
S3, S5, S7, S9, S11, S13 = (-1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800, 1 / 6227020800)
C2, C4, C6, C8, C10, C12 = (-1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800, 1 / 479001600)


@numba.njit(cache=True, nogil=True, inline="always")
def _cis(x: float) -> tuple[float, float]:
    # (cos x, sin x): reduce to r ∈ [−π, π], Taylor series of y = r/8 (|y| ≤ 0.393, truncation
    # below 1e-18), then three doublings (each at most doubles the relative error: ≈ 1e-15 in all)
    # round to nearest by the 1.5·2^52 trick: math.floor would return an int and stop vectorisation
    k = (x * 0.15915494309189535 + ROUND_MAGIC) - ROUND_MAGIC
    r = (x - k * TWO_PI_HI) - k * TWO_PI_LO
    y = r * 0.125
    z = y * y
    s = y * (1.0 + z * (S3 + z * (S5 + z * (S7 + z * (S9 + z * (S11 + z * S13))))))
    c = 1.0 + z * (C2 + z * (C4 + z * (C6 + z * (C8 + z * (C10 + z * C12)))))
    for _ in range(3):
        s, c = 2.0 * s * c, (c - s) * (c + s)
    return c, s


@numba.njit(cache=True, nogil=True)
def cis(x: np.ndarray) -> np.ndarray:
    """``exp(i x)`` elementwise with :func:`_cis` (exposed for the accuracy test)."""
    out = np.empty(x.shape[0], dtype=np.complex128)
    for i in range(x.shape[0]):
        c, s = _cis(x[i])
        out[i] = complex(c, s)
    return out


@numba.njit(cache=True, nogil=True)
def _phase(psi: np.ndarray, energies: np.ndarray, start: int, stop: int, theta: float) -> None:
    # psi ← exp(−iθE) psi on [start, stop), in real arithmetic so that the loop vectorises
    for i in range(start, stop):
        c, s = _cis(theta * energies[i])
        x = psi[i]
        psi[i] = complex(c * x.real + s * x.imag, c * x.imag - s * x.real)


@numba.njit(cache=True, nogil=True, inline="always")
def _rot(x: complex, y: complex, c: float, s: float) -> tuple[complex, complex]:
    # (x, y) ← (c x − i s y, c y − i s x): exp(−iφσx) on one pair, in real arithmetic
    return (
        complex(c * x.real + s * y.imag, c * x.imag - s * y.real),
        complex(c * y.real + s * x.imag, c * y.imag - s * x.real),
    )


@numba.njit(cache=True, nogil=True)
def _rotate(psi: np.ndarray, start: int, stop: int, p: int, c: float, s: float) -> None:
    # exp(-i φ σx_p) = cos φ − i sin φ σx_p on the pairs (j, j + 2^p) inside [start, stop)
    step = 1 << p
    for base in range(start, stop, 2 * step):
        for j in range(base, base + step):
            psi[j], psi[j + step] = _rot(psi[j], psi[j + step], c, s)


@numba.njit(cache=True, nogil=True, inline="always")
def _rotate_quad(psi: np.ndarray, j: int, lo: int, hi: int, c: float, s: float) -> None:
    # the rotations of the two qubits with strides lo and hi on the quadruple (j, j+lo, j+hi, j+hi+lo)
    x0, x1 = _rot(psi[j], psi[j + lo], c, s)
    x2, x3 = _rot(psi[j + hi], psi[j + hi + lo], c, s)
    x0, x2 = _rot(x0, x2, c, s)
    x1, x3 = _rot(x1, x3, c, s)
    psi[j] = x0
    psi[j + lo] = x1
    psi[j + hi] = x2
    psi[j + hi + lo] = x3


@numba.njit(cache=True, nogil=True)
def _rotate_pair(psi: np.ndarray, start: int, stop: int, p: int, c: float, s: float) -> None:
    # the rotations of qubits p and p+1 together on each quadruple: half the passes over memory
    lo = 1 << p
    hi = lo << 1
    for base in range(start, stop, 2 * hi):
        for j in range(base, base + lo):
            _rotate_quad(psi, j, lo, hi, c, s)


@numba.njit(cache=True, nogil=True)
def _rotate_range(psi: np.ndarray, start: int, stop: int, first: int, last: int, c: float, s: float) -> None:
    # qubits first … last−1, two at a time, the odd one out alone
    p = first
    while p + 1 < last:
        _rotate_pair(psi, start, stop, p, c, s)
        p += 2
    if p < last:
        _rotate(psi, start, stop, p, c, s)


@numba.njit(cache=True, nogil=True, parallel=True)
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
    for b in numba.prange(n // block):  # the blocks are independent: one per thread at a time
        start = b * block
        _phase(psi, energies, start, start + block, theta)
        if phi != 0.0:
            _rotate_range(psi, start, start + block, 0, low, c, s)
    if phi != 0.0:
        _rotate_high(psi, low, d, c, s)


@numba.njit(cache=True, nogil=True, parallel=True)
def _rotate_high(psi: np.ndarray, first: int, d: int, c: float, s: float) -> None:
    # qubits first … d−1, two per pass over memory; a pass visits the tuples (j, j+lo, j+hi, j+hi+lo)
    # whose rotated bits are zero, numbered by m (j = m with zero bits inserted at p), in chunks of
    # 2^first consecutive m (contiguous j, since 2^first ≤ 2^p): one chunk per thread at a time
    n = psi.shape[0]
    chunk = 1 << first
    p = first
    while p < d:
        width = 2 if p + 1 < d else 1
        lo = 1 << p
        groups = n >> width  # number of index tuples whose rotated bits are all zero
        for g in numba.prange(groups // chunk):
            # the tuple base: insert `width` zero bits at position p into the group index
            for r in range(chunk):
                m = g * chunk + r
                j = ((m >> p) << (p + width)) | (m & (lo - 1))
                if width == 2:
                    _rotate_quad(psi, j, lo, lo << 1, c, s)
                else:
                    x0, x1 = _rot(psi[j], psi[j + lo], c, s)
                    psi[j] = x0
                    psi[j + lo] = x1
        p += width


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


#: Seconds of work between two thread decisions of :func:`run_steps` (at ~50 ns per amplitude).
CHUNK_SECONDS = 0.25


def run_steps(psi: np.ndarray, energies: np.ndarray, thetas: np.ndarray, phis: np.ndarray, d: int) -> None:
    """Apply :func:`split_step` for every ``(thetas[k], phis[k])`` in order.

    Steps run in compiled chunks of about :data:`CHUNK_SECONDS`; before each chunk the thread count
    is chosen again (:func:`state_threads`), so a long anneal follows the machine's load. The
    result does not depend on the thread count.

    >>> psi = np.array([1.0, 0.0], dtype=complex)
    >>> run_steps(psi, np.zeros(2), np.zeros(1), np.array([np.pi / 2]), 1); np.round(psi, 12).tolist()
    [0j, -1j]
    """
    per_chunk = max(1, int(CHUNK_SECONDS / (5e-8 * (1 << d))))
    for start in range(0, thetas.shape[0], per_chunk):
        with numba_threads(state_threads(d)):
            stop = start + per_chunk
            run_steps_kernel(psi, energies, thetas[start:stop], phis[start:stop], d)


@numba.njit(cache=True, nogil=True)
def run_steps_kernel(
    psi: np.ndarray, energies: np.ndarray, thetas: np.ndarray, phis: np.ndarray, d: int
) -> None:
    """:func:`split_step` for every ``(thetas[k], phis[k])`` on numba's current number of threads."""
    for k in range(thetas.shape[0]):
        split_step(psi, energies, thetas[k], phis[k], d)
