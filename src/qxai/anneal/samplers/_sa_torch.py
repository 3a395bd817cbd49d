"""The torch kernel of batch-sa, for any device (a GPU where there is one).

The state is variable-major, ``x`` (D, n, R), beside the local fields ``f = h + Q x`` (flipping bit
``p`` costs ``(1 − 2x_p) f_p``), updated after every step for all problems × reads at once: a sweep
is ``D`` vectorised steps of ``O(D · n · R)`` work each. On a CPU the numba kernel is faster, since it
only updates fields after an actual flip; on a GPU this one is.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def anneal_torch(
    h: np.ndarray,
    q: np.ndarray,
    sizes: np.ndarray,
    betas: np.ndarray,
    tol: np.ndarray,
    reads: int,
    seed: int,
    device: torch.device,
    dtype: torch.dtype,
) -> np.ndarray:
    """Same contract as :func:`qxai.anneal.samplers._sa_kernel.anneal_kernel`: ``(n, reads, D)`` int8."""
    n, d_max = h.shape
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    q_cols = torch.as_tensor(q.transpose(1, 2, 0), dtype=dtype).to(device).contiguous()  # [p, k, i]
    active = torch.as_tensor(np.arange(d_max)[:, None] < sizes[None, :], device=device)  # (D, n)
    x = (torch.rand((d_max, n, reads), generator=gen, device=device) < 0.5).to(dtype) * active[..., None]
    h_t = torch.as_tensor(h.T, dtype=dtype).to(device)[..., None]
    f = h_t + torch.einsum("pki,kir->pir", q_cols, x)
    q_cols = q_cols.unsqueeze(-1)  # (D, D, n, 1): broadcast over reads in the field update
    beta_t = torch.as_tensor(betas.T, dtype=dtype).to(device)  # (S, n)
    blocked = ~active[..., None]  # padded variables never flip
    for beta in beta_t:
        u = torch.rand((d_max, n, reads), generator=gen, device=device, dtype=dtype)
        # Metropolis: flip when cost < −ln(1−u)/β, i.e. with probability min(1, e^{−β·cost})
        thr = (-torch.log1p(-u) / beta[None, :, None]).masked_fill_(blocked, -math.inf)
        _sweep(x, f, q_cols, thr)
    # greedy descent from fresh fields (no accumulated float32 rounding): strictly downhill flips
    f = h_t + torch.einsum("pki,kir->pir", q_cols[..., 0], x)
    tol_t = torch.as_tensor(tol, dtype=dtype).to(device)
    downhill = (-tol_t)[None, :, None].expand_as(f).clone().masked_fill_(blocked, -math.inf)
    for _ in range(4 * d_max):  # ends in far fewer sweeps than this cap
        if not _sweep(x, f, q_cols, downhill, track=True):
            break
    return x.to(torch.int8).permute(1, 2, 0).cpu().numpy()


def _sweep(
    x: torch.Tensor, f: torch.Tensor, q_cols: torch.Tensor, thr: torch.Tensor, track: bool = False
) -> bool:
    """One sequential pass over the variables: flip ``p`` where its cost is below ``thr[p]``.

    ``x``, ``f``, ``thr``: (D, n, R); ``q_cols``: (D, D, n, 1). With ``track``, returns whether
    anything flipped (a device sync per sweep, so only the greedy phase asks).
    """
    flipped = torch.zeros((), dtype=torch.bool, device=x.device)
    for p in range(x.shape[0]):
        sign = 1.0 - 2.0 * x[p]  # +1 switches the bit on, −1 off
        step = sign * (sign * f[p] < thr[p])
        x[p] += step
        f.addcmul_(q_cols[p], step.unsqueeze(0))  # f_k += Q_kp · Δx_p for every k
        if track:
            flipped |= step.any()
    return bool(flipped)
