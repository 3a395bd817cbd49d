"""Simulated annealing of many small dense QUBOs in one call, over problems × reads.

Every model becomes dense BINARY arrays (``h`` (d,), symmetric ``Q`` (d, d), zero diagonal), padded
to the largest ``d`` of its size group; padded variables never flip. Two kernels share one contract:
``numba`` (CPU, default there; fields updated only after an actual flip, problems spread over
threads) and ``torch`` (any device; all problems × reads advance one variable per vectorised step).

Physics: Metropolis sweeps at a geometric schedule of inverse temperatures, per problem, derived
from that problem's own bias scale (as dwave-samplers does): at the hot end the largest possible
flip cost is accepted with probability 1/2, at the cold end a typical smallest one with probability
1/100. After the last sweep, greedy sweeps (strictly downhill flips only) put every read in a local
minimum. Energies returned are computed afresh in float64 from each model's own biases (not from
the kernel's running fields); the tests check them against dimod's ``bqm.energies``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dimod
import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.seeding import numpy_rng

BACKENDS = ("auto", "numba", "torch")

#: Cap on P·R·D elements of one vectorised group (memory ≈ 3 × 4 bytes × this).
MAX_GROUP_ELEMENTS = 2**22


Sparse = tuple[list[Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]


def _vectors(bqm: dimod.BinaryQuadraticModel) -> Sparse:
    """``(variables, linear (d,), rows, cols, values, offset)`` of the BINARY form of ``bqm``."""
    binary = bqm.binary if bqm.vartype is dimod.SPIN else bqm
    order = list(binary.variables)
    linear, (rows, cols, values), offset = binary.to_numpy_vectors(variable_order=order)
    return order, np.asarray(linear, dtype=float), rows, cols, np.asarray(values, dtype=float), float(offset)


def default_beta_ranges(h: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(β_hot, β_cold)`` per problem from padded biases ``h`` (n, D), symmetric ``Q`` (n, D, D) → (n, 2).

    A flip of bit ``p`` costs at most ``|h_p| + Σ_k |Q_pk|``: at ``β_hot`` the largest such cost is
    accepted with probability 1/2. The smallest non-zero bias of each variable approximates the
    cost of its cheapest excitation near a minimum: at ``β_cold`` the median of those is accepted
    with probability 1/100. The ratio is capped at 10^4 so no sweeps are wasted frozen.

    >>> default_beta_ranges(np.array([[-1.0]]), np.zeros((1, 1, 1))).round(3).tolist()
    [[0.693, 4.605]]
    """
    absq = np.abs(q)
    max_cost = (np.abs(h) + absq.sum(axis=2)).max(axis=1)  # (n,)
    both = np.concatenate([np.abs(h)[..., None], absq], axis=2)
    smallest = np.where(both > 0, both, np.inf).min(axis=2)  # (n, D); inf for padded/zero rows
    smallest = np.where(np.isfinite(smallest), smallest, np.nan)
    with np.errstate(all="ignore"):
        min_cost = np.nanmedian(smallest, axis=1) if smallest.size else np.full(len(h), np.nan)
        hot = np.log(2.0) / max_cost
        cold = np.clip(np.log(100.0) / min_cost, hot, hot * 1e4)
    # a model with all biases zero has no scale: any range is as good as another
    zero = ~(max_cost > 0)
    hot[zero], cold[zero] = 0.1, 1.0
    return np.stack([hot, cold], axis=1)


class BatchSimulatedAnnealingSampler(dimod.Sampler):
    """Simulated annealing for many dense QUBOs in one vectorised call; a dimod Sampler for one.

    Args:
        device: torch device of the arrays ("cpu", "cuda", …).
        dtype: torch float type of the torch kernel's fields (float32 is plenty: the greedy phase
            starts from fresh fields and energies are recomputed by dimod); numba uses float64.
        backend: "numba" (CPU), "torch" (any device) or "auto" (numba on the CPU, torch elsewhere).

    >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -1}, {("a", "b"): 3}, 0.0, "BINARY")
    >>> float(BatchSimulatedAnnealingSampler().sample(bqm, num_reads=4, seed=0).first.energy)
    -1.0
    """

    #: its energies are recomputed from each model's own biases (sample_many need not redo them)
    energies_from_bqm = True

    def __init__(
        self,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise QxaiError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
        self.device = torch.device(device)
        self.dtype = dtype
        self.backend = ("numba" if self.device.type == "cpu" else "torch") if backend == "auto" else backend
        if self.backend == "numba" and self.device.type != "cpu":
            raise QxaiError(f"the numba backend runs on the CPU only, not {self.device}; use backend='torch'")

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return {"num_reads": [], "num_sweeps": [], "beta_range": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"device": str(self.device), "dtype": str(self.dtype), "backend": self.backend}

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Anneal one model; parameters as in :meth:`sample_many`."""
        return self.sample_many([bqm], **parameters)[0]

    def sample_many(
        self,
        bqms: Sequence[dimod.BinaryQuadraticModel],
        *,
        num_reads: int = 8,
        num_sweeps: int = 32,
        beta_range: tuple[float, float] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> list[dimod.SampleSet]:
        """Anneal every model of ``bqms`` (any sizes, BINARY or SPIN); one SampleSet of
        ``num_reads`` reads each, in order.

        ``beta_range`` overrides the per-problem :func:`default_beta_ranges` for all problems.
        Problems are grouped by size so that little work is spent on padding.
        """
        self.remove_unknown_kwargs(**kwargs)
        if num_reads < 1 or num_sweeps < 1:
            raise QxaiError(f"num_reads and num_sweeps must be ≥ 1, got {num_reads} and {num_sweeps}")
        if beta_range is not None and not 0 < beta_range[0] <= beta_range[1]:
            raise QxaiError(f"beta_range must be (low, high) with 0 < low ≤ high, got {beta_range}")
        dense = [_vectors(bqm) for bqm in bqms]
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        group_seeds = numpy_rng(int(seed), "batch-sa").integers(0, 2**62, size=len(bqms))
        results: list[dimod.SampleSet | None] = [None] * len(bqms)
        for i, (order, *_) in enumerate(dense):
            if not order:  # nothing to anneal: the single empty assignment
                empty = np.zeros((1, 0), dtype=np.int8)
                results[i] = _sampleset(bqms[i], order, empty, np.array([float(bqms[i].offset)]))
        for g, group in enumerate(_groups([len(v[0]) for v in dense], num_reads)):
            problems = [dense[i] for i in group]
            xs, energies = self._anneal(problems, num_reads, num_sweeps, beta_range, int(group_seeds[g]))
            for i, x, e in zip(group, xs, energies, strict=True):
                results[i] = _sampleset(bqms[i], dense[i][0], x, e)
        return results  # type: ignore[return-value]

    def _anneal(
        self,
        problems: list[Sparse],
        reads: int,
        sweeps: int,
        beta_range: tuple[float, float] | None,
        seed: int,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Anneal one group; returns each problem's ``(reads, d)`` int8 BINARY samples and the
        ``(n, reads)`` energies, computed afresh in float64 from the models' own biases."""
        sizes = np.array([len(v[0]) for v in problems])
        n, d_max = len(problems), int(sizes.max())
        h = np.zeros((n, d_max))
        q = np.zeros((n, d_max, d_max))  # symmetric; a BQM holds each pair once, so assignment is safe
        for i, (_, linear, rows, cols, values, _) in enumerate(problems):
            h[i, : sizes[i]] = linear
            q[i, rows, cols] = values
            q[i, cols, rows] = values
        ranges = default_beta_ranges(h, q) if beta_range is None else np.tile(beta_range, (n, 1))
        fraction = np.linspace(0.0, 1.0, sweeps)[None, :]
        betas = ranges[:, :1] * (ranges[:, 1:] / ranges[:, :1]) ** fraction  # (n, sweeps), geometric
        # the greedy phase only takes flips that gain more than a few ulps of the largest field
        eps = np.finfo(np.float64).eps if self.backend == "numba" else torch.finfo(self.dtype).eps
        tol = 8 * eps * (np.abs(h) + np.abs(q).sum(axis=2)).max(axis=1)
        if self.backend == "numba":
            from qxai.anneal.samplers._sa_kernel import anneal_kernel

            x = anneal_kernel(h, q, sizes.astype(np.int64), betas, tol, reads, seed)
        else:
            from qxai.anneal.samplers._sa_torch import anneal_torch

            x = anneal_torch(h, q, sizes, betas, tol, reads, seed, self.device, self.dtype)
        # E = offset + h·x + ½ xᵀQx, from the model's float64 biases, never from the kernel's fields
        xf = x.astype(np.float64)
        offsets = np.array([v[5] for v in problems])
        energies = offsets[:, None] + np.einsum("nrd,nd->nr", xf, h) + 0.5 * ((xf @ q) * xf).sum(axis=2)
        return [x[i, :, : sizes[i]].copy() for i in range(n)], energies


def _groups(sizes: list[int], reads: int) -> list[list[int]]:
    """Indices of the non-empty problems grouped by size (sorted, stable) so that padding wastes at
    most about half the work, with at most :data:`MAX_GROUP_ELEMENTS` elements per group."""
    order = sorted((i for i in range(len(sizes)) if sizes[i] > 0), key=lambda i: sizes[i])
    groups: list[list[int]] = []
    for i in order:
        if groups:
            last = groups[-1]
            d = sizes[i]
            low = sizes[last[0]]
            if d <= max(2 * low, 8) and (len(last) + 1) * reads * d <= MAX_GROUP_ELEMENTS:
                last.append(i)
                continue
        groups.append([i])
    return groups


def _sampleset(
    bqm: dimod.BinaryQuadraticModel, order: list[Any], x: np.ndarray, energies: np.ndarray
) -> dimod.SampleSet:
    """SampleSet of BINARY samples ``x`` (reads, d) in ``bqm``'s vartype with their ``energies``.

    The energies come from the model's own float64 biases (the BINARY form has the same energy
    function as a SPIN model); the tests check them against dimod's ``bqm.energies``. The record is
    filled as a plain structured array and viewed as a recarray once: ``from_samples_bqm`` costs
    about four times as much, which matters when a thousand models take a fraction of a second.
    """
    samples = (2 * x - 1 if bqm.vartype is dimod.SPIN else x).astype(np.int8)
    fields = [("sample", np.int8, (len(order),)), ("energy", np.float64), ("num_occurrences", np.int64)]
    record = np.empty(len(samples), dtype=fields)
    record["sample"] = samples
    record["energy"] = energies
    record["num_occurrences"] = 1
    return dimod.SampleSet(record.view(np.recarray), order, {}, bqm.vartype)
