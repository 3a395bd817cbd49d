"""Simulated annealing of many small dense QUBOs in one call, over problems × reads.

Every model becomes dense BINARY arrays (``h`` (d,), symmetric ``Q`` (d, d), zero diagonal), padded
to the largest ``d`` of its size group; padded variables never flip. Two backends share one contract:
``numba`` (CPU, default there; fields updated only after an actual flip, from the dense row of
``Q`` or — for a sparse group, chosen by density — from neighbour lists, ``O(degree)`` per flip, built
straight from the pairs (a sparse group never forms the dense ``Q``);
problems spread over threads) and ``torch`` (any device; all problems × reads advance one variable
per vectorised step).

Budget: with neither ``num_reads`` nor ``num_sweeps`` given, the numba backend follows each problem
(:func:`adaptive_budget`): reads in rounds, the sweeps doubling from round to round, until a round
does not lower the best energy while enough reads hold it — an easy problem stops after two short
rounds, a hard one spends up to twice the fixed budget's sweeps. Given either, every model gets the
fixed budget (:func:`default_budget`).

Physics: Metropolis sweeps at a geometric schedule of inverse temperatures, per problem, derived
from that problem's own biases: at the hot end the typical flip cost of a random state (its RMS,
:func:`default_beta_ranges`) is accepted with probability 1/2, at the cold end a typical smallest one
with probability 1/100. (dwave-samplers puts the hot end at the largest *possible* flip cost, which
on the planted QUBOs overstates the first moves several-fold and spends many sweeps above the
temperatures where anything is decided; BENCHMARKS.md, P2b.) After the last sweep, greedy sweeps
(strictly downhill flips only) put every read in a local minimum. Energies returned are computed
afresh in float64 from each model's own biases (not from the kernel's running fields); the tests
check them against dimod's ``bqm.energies``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import dimod
import numpy as np
import torch
from dimod.variables import Variables

from qxai.anneal.samplers._sa_kernel import (
    anneal_kernel,
    bias_scales_kernel,
    csr_energies_kernel,
    csr_pad_kernel,
    csr_scales_kernel,
    energies_kernel,
    pad_kernel,
)
from qxai.errors import QxaiError
from qxai.seeding import numpy_rng
from qxai.threads import numba_threads, threads_for

BACKENDS = ("auto", "numba", "torch")
KERNELS = ("auto", "dense", "sparse")
SCHEDULES = ("geometric", "linear")

#: Reads per model unless the caller gives ``num_reads``.
DEFAULT_READS = 8
#: Up to this many variables a model gets :data:`SMALL_SWEEPS` sweeps (the P2 explanation QUBOs of
#: 16-map layers, d ≤ 12, reach their exact optimum at this budget: BENCHMARKS.md, P2).
SMALL_D = 16
SMALL_SWEEPS = 16
#: Up to this many variables (and above :data:`SMALL_D`) a model gets :data:`MEDIUM_SWEEPS` sweeps.
MEDIUM_D = 32
MEDIUM_SWEEPS = 32
#: Sweeps above :data:`MEDIUM_D`: at least :data:`LARGE_SWEEPS`, and ``d / 2`` rounded up to a power
#: of two beyond d = 256. Fitted on planted QUBOs (BENCHMARKS.md, P2b, ``benchmarks/p2b_planted.py
#: --grid``, instances disjoint from the benchmark's): the fewest sweeps (8 reads) that solved all
#: 20 frustrated-loop and 20 Wishart instances were 32/16, 128/16, 64/32, 64/64 at d = 32/64/128/256;
#: the rule is their envelope, extended ∝ d past the measured sizes.
LARGE_SWEEPS = 128
#: The adaptive budget (both ``num_reads`` and ``num_sweeps`` left to the sampler, see
#: :func:`adaptive_budget`), in three regimes of ``d``: up to :data:`SMALL_D`, up to
#: :data:`FIRST_SWEEPS_D`, and above. Each runs rounds of ``ROUND_READS*`` reads, the first at
#: ``FIRST_SWEEPS*`` sweeps, doubling every round up to :data:`MAX_SWEEPS_FACTOR` × the fixed
#: budget's sweeps; a problem stops after a round that did not lower its best energy once
#: ``AGREE*`` reads hold it, else at :data:`MAX_READS` reads. Measured (BENCHMARKS.md, P2, P2b):
#: the small and middle regimes on the P2 explanation QUBOs (in the middle one, rounds of 6 reads
#: of which 4 must agree: best known at d > 20 99.3–100 % over solver seeds 0–4, where 4 of which 3
#: gave 98.7 % at seed 2); the large one on planted loops and Wishart QUBOs of d = 64–256 (chosen on
#: instance seeds 1000 and 2000, disjoint from the benchmark's): with the typical-cost hot end,
#: rounds of 2 reads from 16 sweeps, at about a third of the sweeps of the earlier 4 reads from 64.
ROUND_READS_SMALL = 2
AGREE_SMALL = 2
ROUND_READS = 6
AGREE = 4
AGREE_LARGE = 2
ROUND_READS_LARGE = 2
FIRST_SWEEPS = 8
FIRST_SWEEPS_D = 48
FIRST_SWEEPS_LARGE = 16
MAX_SWEEPS_FACTOR = 2
MAX_READS = 32
#: A group runs the sparse kernel (neighbour lists, ``O(degree)`` per flip) when at most this
#: fraction of its possible couplings is non-zero, else the dense one (``O(d)`` vectorised rows).
SPARSE_DENSITY = 0.1
#: Site visits (models × reads × sweeps × d) a numba thread must get before a second one starts.
MIN_WORK_PER_THREAD = 1 << 18

#: Cap on P·R·D elements of one vectorised group (memory ≈ 3 × 4 bytes × this).
MAX_GROUP_ELEMENTS = 2**22


class Problems(NamedTuple):
    """The BINARY forms of some models as flat arrays (``m`` models, ``L`` variables, ``P`` pairs).

    ``sizes`` (m,) int64; ``linear`` (L,) float64, model by model; ``rows``/``cols`` (P,) int64
    positions within their model and ``values`` (P,) float64; ``pairs`` (m,) int64 pairs per model;
    ``offsets`` (m,) float64. Position ``p`` of model ``i`` is its ``p``-th variable in
    ``bqm.variables`` order.
    """

    sizes: np.ndarray
    linear: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    pairs: np.ndarray
    offsets: np.ndarray


class Budget(NamedTuple):
    """Reads and sweeps of one group (see :func:`qxai.anneal.samplers._sa_kernel.anneal_kernel`)."""

    round_reads: int
    max_reads: int
    first_sweeps: int
    max_sweeps: int
    agree: int
    quorum: int


def binary_vectors(
    bqm: dimod.BinaryQuadraticModel,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], float]:
    """``(h (d,), (rows, cols, values) (P,), offset)`` of the BINARY form of ``bqm``, positions in
    ``bqm.variables`` order.

    A SPIN model is converted in numpy (``s = 2x − 1``: ``Q = 4J``, ``h' = 2h − 2 Σ_j J_ij``,
    ``c' = c − Σh + ΣJ``): dimod's ``bqm.binary`` is a view whose ``to_numpy_vectors`` loops over
    the pairs in Python (13 s for 20 dense 256-variable models, against milliseconds here).

    >>> spin = dimod.BinaryQuadraticModel({0: 1.0, 1: -0.5}, {(0, 1): 2.0}, 0.25, "SPIN")
    >>> h, (r, c, v), off = binary_vectors(spin)
    >>> ref = spin.binary
    >>> h.tolist() == [ref.linear[0], ref.linear[1]], v.tolist() == [ref.quadratic[0, 1]]
    (True, True)
    >>> off == float(ref.offset)
    True
    """
    # sort_labels=False: positions in bqm.variables order (the default sorts sortable labels)
    h, (rows, cols, values), offset = bqm.to_numpy_vectors(sort_labels=False)
    h = np.asarray(h, dtype=np.float64)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if bqm.vartype is dimod.BINARY:
        return h, (rows, cols, values), float(offset)
    pull = np.bincount(rows, values, minlength=len(h)) + np.bincount(cols, values, minlength=len(h))
    return 2.0 * h - 2.0 * pull, (rows, cols, 4.0 * values), float(offset - h.sum() + values.sum())


def flatten(bqms: Sequence[dimod.BinaryQuadraticModel]) -> Problems:
    """All models as one :class:`Problems`: one dimod call per model, no Python loop over pairs.

    >>> bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": -1.0}, {("a", "b"): 2.0}, 0.5, "BINARY")
    >>> flatten([bqm, bqm]).values.tolist()
    [2.0, 2.0]
    """
    linear, rows, cols, values, offsets = [], [], [], [], []
    for bqm in bqms:  # one dimod call per model; a SPIN model is converted (binary_vectors)
        if bqm.vartype is dimod.BINARY:
            h, (r, c, v), off = bqm.to_numpy_vectors(sort_labels=False)
        else:
            h, (r, c, v), off = binary_vectors(bqm)
        linear.append(h)
        rows.append(r)
        cols.append(c)
        values.append(v)
        offsets.append(off)
    if not bqms:
        empty = np.zeros(0)
        return Problems(
            np.zeros(0, np.int64),
            empty,
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            empty,
            np.zeros(0, np.int64),
            empty,
        )
    return Problems(
        sizes=np.fromiter(map(len, linear), dtype=np.int64, count=len(linear)),
        linear=np.concatenate(linear).astype(np.float64, copy=False),
        rows=np.concatenate(rows).astype(np.int64, copy=False),
        cols=np.concatenate(cols).astype(np.int64, copy=False),
        values=np.concatenate(values).astype(np.float64, copy=False),
        pairs=np.fromiter(map(len, values), dtype=np.int64, count=len(values)),
        offsets=np.array(offsets, dtype=np.float64),
    )


def pad(problems: Problems, members: np.ndarray, d_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense zero-padded ``h`` (n, d_max) and symmetric ``Q`` (n, d_max, d_max) of models
    ``members`` (n,) of ``problems`` (compiled: a numpy fancy assignment costs several times more).

    >>> p = flatten([dimod.BinaryQuadraticModel({0: -1.0, 1: 2.0}, {(0, 1): 3.0}, 0.0, "BINARY")])
    >>> h, q = pad(p, np.array([0]), 3)
    >>> h.tolist(), q[0].tolist()
    ([[-1.0, 2.0, 0.0]], [[0.0, 3.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    """
    var_start = np.concatenate([[0], np.cumsum(problems.sizes)])
    pair_start = np.concatenate([[0], np.cumsum(problems.pairs)])
    p = problems
    return pad_kernel(p.linear, p.rows, p.cols, p.values, var_start, pair_start, members, d_max)


def default_beta_ranges(h: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(β_hot, β_cold)`` per problem from padded biases ``h`` (n, D), symmetric ``Q`` (n, D, D) → (n, 2).

    In a uniformly random state bit ``p``'s flip cost is its field ``h_p + Σ_k Q_pk x_k``, whose
    mean square is ``(h_p + ½ Σ_k Q_pk)² + ¼ Σ_k Q_pk²``: at ``β_hot`` the mean over variables of
    its root (the typical first move) is accepted with probability 1/2. The smallest non-zero bias
    of each variable approximates the cost of its cheapest excitation near a minimum: at ``β_cold``
    the median of those is accepted with probability 1/100. The ratio is capped at 10^4 so no
    sweeps are wasted frozen, and ``β_cold ≥ β_hot``.

    >>> default_beta_ranges(np.array([[-1.0]]), np.zeros((1, 1, 1))).round(3).tolist()
    [[0.693, 4.605]]
    >>> q = np.array([[[0.0, 4.0], [4.0, 0.0]]])  # field 0 or 4: RMS √8, so β_hot = ln 2 / √8
    >>> default_beta_ranges(np.zeros((1, 2)), q).round(3).tolist()
    [[0.245, 1.151]]
    """
    return _beta_ranges(h, q, _max_cost(h, q))


def default_budget(d: int) -> tuple[int, int]:
    """``(num_reads, num_sweeps)`` of batch-sa's fixed budget for a model of ``d`` variables (used when
    the caller gives ``num_reads`` or ``num_sweeps``, and by the torch backend; it also caps the
    adaptive budget's sweeps, :func:`adaptive_budget`).

    The rule: :data:`DEFAULT_READS` reads; 16 sweeps up to ``d = 16``, 32 up to ``d = 32``, above
    it ``max(128, d/2 rounded up to a power of two)``. The energy
    scale needs no term: the temperatures are derived from each model's own biases
    (:func:`default_beta_ranges`), so multiplying a model by a constant changes nothing.

    >>> default_budget(10), default_budget(30), default_budget(64), default_budget(1000)
    ((8, 16), (8, 32), (8, 128), (8, 512))
    """
    if d <= SMALL_D:
        return DEFAULT_READS, SMALL_SWEEPS
    if d <= MEDIUM_D:
        return DEFAULT_READS, MEDIUM_SWEEPS
    return DEFAULT_READS, max(LARGE_SWEEPS, 1 << math.ceil(math.log2(d / 2)))


def adaptive_budget(d: int) -> Budget:
    """The rounds batch-sa runs for a model of ``d`` variables when the caller gives neither
    ``num_reads`` nor ``num_sweeps`` (see :data:`ROUND_READS` and
    :func:`qxai.anneal.samplers._sa_kernel.anneal_kernel`).

    >>> adaptive_budget(10), adaptive_budget(256).first_sweeps
    (Budget(round_reads=2, max_reads=32, first_sweeps=8, max_sweeps=32, agree=2, quorum=33), 16)
    """
    small = d <= SMALL_D
    first = FIRST_SWEEPS if d <= FIRST_SWEEPS_D else FIRST_SWEEPS_LARGE
    return Budget(
        round_reads=ROUND_READS_SMALL if small else ROUND_READS if d <= FIRST_SWEEPS_D else ROUND_READS_LARGE,
        max_reads=MAX_READS,
        first_sweeps=first,
        max_sweeps=max(first, MAX_SWEEPS_FACTOR * default_budget(d)[1]),
        agree=AGREE_SMALL if small else AGREE if d <= FIRST_SWEEPS_D else AGREE_LARGE,
        quorum=MAX_READS + 1,  # off: a round must fail to lower the best energy (see anneal_kernel)
    )


def _max_cost(h: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The largest possible flip cost of each problem, ``max_p |h_p| + Σ_k |Q_pk|`` → (n,)."""
    return (np.abs(h) + np.abs(q).sum(axis=2)).max(axis=1)


def _beta_ranges(h: np.ndarray, q: np.ndarray, max_cost: np.ndarray) -> np.ndarray:
    """:func:`default_beta_ranges` given ``max_cost`` (:func:`_max_cost`), in numpy."""
    absq = np.abs(q)
    absh = np.abs(h)
    smallest = np.minimum(np.where(absh > 0, absh, np.inf), np.where(absq > 0, absq, np.inf).min(axis=2))
    rms = np.sqrt((h + 0.5 * q.sum(axis=2)) ** 2 + 0.25 * (q * q).sum(axis=2))  # (n, D)
    with np.errstate(all="ignore"):  # a model with every bias zero has no typical cost: NaN
        typical = np.where(rms > 0, rms, 0.0).sum(axis=1) / (rms > 0).sum(axis=1)
    # inf (padded/zero rows) left out of the median; zero rows (padding) out of the typical cost
    return _ranges_from_scales(max_cost, _finite_median(smallest), typical)


def _ranges_from_scales(max_cost: np.ndarray, min_cost: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """``(β_hot, β_cold)`` (n, 2) from the largest, the typical smallest and the typical flip cost
    (n,) each (:func:`default_beta_ranges`)."""
    with np.errstate(all="ignore"):
        hot = np.log(2.0) / np.where(typical > 0, typical, max_cost)
        cold = np.clip(np.log(100.0) / min_cost, hot, hot * 1e4)
    # a model with all biases zero has no scale: any range is as good as another
    zero = ~(max_cost > 0)
    hot[zero], cold[zero] = 0.1, 1.0
    return np.stack([hot, cold], axis=1)


def _finite_median(a: np.ndarray) -> np.ndarray:
    """Median of the finite entries of each row of ``a`` (n, D), NaN for a row with none: what
    ``np.nanmedian`` gives with ±inf as NaN, from one sort instead of its slow per-row path."""
    count = np.isfinite(a).sum(axis=1)
    ordered = np.sort(a, axis=1)  # finite entries first (there are no NaN, only +inf)
    rows = np.arange(len(a))
    low = ordered[rows, np.maximum(count - 1, 0) // 2] if a.shape[1] else np.full(len(a), np.nan)
    high = ordered[rows, np.minimum(count // 2, max(a.shape[1] - 1, 0))] if a.shape[1] else low
    return np.where(count > 0, (low + high) / 2, np.nan)


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
        kernel: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise QxaiError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
        if kernel not in KERNELS:
            raise QxaiError(f"kernel must be one of {', '.join(KERNELS)}, got '{kernel}'")
        self.device = torch.device(device)
        self.dtype = dtype
        self.backend = ("numba" if self.device.type == "cpu" else "torch") if backend == "auto" else backend
        if self.backend == "numba" and self.device.type != "cpu":
            raise QxaiError(f"the numba backend runs on the CPU only, not {self.device}; use backend='torch'")
        self.kernel = kernel

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return {"num_reads": [], "num_sweeps": [], "beta_range": [], "beta_schedule_type": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"device": str(self.device), "dtype": str(self.dtype), "backend": self.backend,
                "kernel": self.kernel}  # fmt: skip

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Anneal one model; parameters as in :meth:`sample_many`."""
        return self.sample_many([bqm], **parameters)[0]

    def sample_many(
        self,
        bqms: Sequence[dimod.BinaryQuadraticModel],
        *,
        num_reads: int | None = None,
        num_sweeps: int | None = None,
        beta_range: tuple[float, float] | None = None,
        beta_schedule_type: str = "geometric",
        seed: int | None = None,
        **kwargs: Any,
    ) -> list[dimod.SampleSet]:
        """Anneal every model of ``bqms`` (any sizes, BINARY or SPIN); one SampleSet each, in order.

        With neither ``num_reads`` nor ``num_sweeps`` given (the default) the budget follows each
        problem (numba backend, :func:`adaptive_budget`): reads in rounds, sweeps doubling every
        round, until a round does not lower the best energy while enough reads hold it (or
        :data:`MAX_READS` reads); a SampleSet then holds the 4…:data:`MAX_READS` reads its problem
        took (at least two rounds). Given either, every model gets exactly ``num_reads`` reads
        (default :data:`DEFAULT_READS`) of ``num_sweeps`` sweeps (default
        :func:`default_budget` of its size group's largest ``d``); the torch backend always does.
        ``beta_range`` overrides the per-problem :func:`default_beta_ranges` for all problems;
        ``beta_schedule_type`` spaces the inverse temperatures ``geometric`` (default) or ``linear``
        between its ends.
        Problems are grouped by size so that little work is spent on padding. The per-model Python
        work is one dimod call to read the biases and one SampleSet; padding, energies and records
        are built for a whole group at once.
        """
        self.remove_unknown_kwargs(**kwargs)
        if (num_reads is not None and num_reads < 1) or (num_sweeps is not None and num_sweeps < 1):
            raise QxaiError(f"num_reads and num_sweeps must be ≥ 1, got {num_reads} and {num_sweeps}")
        if beta_range is not None and not 0 < beta_range[0] <= beta_range[1]:
            raise QxaiError(f"beta_range must be (low, high) with 0 < low ≤ high, got {beta_range}")
        if beta_schedule_type not in SCHEDULES:
            raise QxaiError(
                f"beta_schedule_type must be one of {', '.join(SCHEDULES)}, got '{beta_schedule_type}'"
            )
        adaptive = num_reads is None and num_sweeps is None and self.backend == "numba"
        num_reads = DEFAULT_READS if num_reads is None else int(num_reads)
        bqms = list(bqms)
        problems = flatten(bqms)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        group_seeds = numpy_rng(int(seed), "batch-sa").integers(0, 2**62, size=len(bqms))
        samples: list[np.ndarray | None] = [None] * len(bqms)  # (reads, d) BINARY int8 per model
        energies: list[np.ndarray | None] = [None] * len(bqms)  # (reads,) per model
        for i in np.flatnonzero(problems.sizes == 0):  # nothing to anneal: the single empty assignment
            samples[i] = np.zeros((1, 0), dtype=np.int8)
            energies[i] = np.array([problems.offsets[i]])
        for g, group in enumerate(_groups(problems.sizes, MAX_READS if adaptive else num_reads)):
            d_max = int(problems.sizes[group].max())
            if adaptive:
                budget = adaptive_budget(d_max)
            else:
                sweeps = num_sweeps or default_budget(d_max)[1]
                budget = Budget(num_reads, num_reads, sweeps, sweeps, num_reads, num_reads)
            x, done, e = self._anneal(problems, group, budget, beta_range, beta_schedule_type,
                                      int(group_seeds[g]))  # fmt: skip
            for j, i in enumerate(group.tolist()):
                samples[i] = x[j, : done[j], : problems.sizes[i]]
                energies[i] = e[j, : done[j]]
        return _samplesets(bqms, samples, energies)

    def _anneal(
        self,
        problems: Problems,
        group: np.ndarray,
        budget: Budget,
        beta_range: tuple[float, float] | None,
        schedule: str,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anneal models ``group`` (n,) of ``problems``; returns their ``(n, R, D)`` int8 BINARY
        samples, the reads each took ``(n,)`` (the first of the ``R`` rows) and ``(n, R)`` energies,
        computed afresh in float64 from the models' own biases."""
        sizes = problems.sizes[group]
        n, d_max = len(group), int(sizes.max())
        sparse = self.backend == "numba" and self._sparse(problems, group)
        if sparse:  # neighbour lists from the pairs: the dense Q would cost n·d² for a few % non-zeros
            h, ptr, idx, val = layout_sparse(problems, group, d_max)
            max_cost, min_cost, typical = csr_scales_kernel(h, ptr, idx, val, sizes)
            qk = np.zeros((n, 1, 1))
        else:
            h, q = pad(problems, group, d_max)
            # compiled, in one pass over Q: the numpy _beta_ranges costs about as much as annealing
            max_cost, min_cost, typical = bias_scales_kernel(h, q, sizes)
            ptr, idx, val = np.zeros((n, 1), np.int64), np.zeros(0, np.int64), np.zeros(0)
            qk = q
        ranges = (np.tile(beta_range, (n, 1)) if beta_range
                  else _ranges_from_scales(max_cost, min_cost, typical))  # fmt: skip
        # the greedy phase only takes flips that gain more than a few ulps of the largest field
        eps = np.finfo(np.float64).eps if self.backend == "numba" else torch.finfo(self.dtype).eps
        tol = 8 * eps * max_cost
        if self.backend == "numba":
            # one region for the whole group: threads only where each gets enough site visits
            work = float(sizes.sum()) * budget.round_reads * budget.first_sweeps * 3
            with numba_threads(threads_for(work, MIN_WORK_PER_THREAD)):
                x, done, _ = anneal_kernel(
                    h, qk, ptr, idx, val, sparse, sizes, ranges, schedule == "geometric", tol,
                    1e-9 * max_cost, budget.round_reads, budget.max_reads, budget.first_sweeps,
                    budget.max_sweeps, budget.agree, budget.quorum, seed,
                )  # fmt: skip
        else:
            from qxai.anneal.samplers._sa_torch import anneal_torch

            fraction = np.linspace(0.0, 1.0, budget.first_sweeps)[None, :]
            if schedule == "geometric":
                betas = ranges[:, :1] * (ranges[:, 1:] / ranges[:, :1]) ** fraction  # (n, sweeps)
            else:
                betas = ranges[:, :1] + (ranges[:, 1:] - ranges[:, :1]) * fraction
            x = anneal_torch(h, q, sizes, betas, tol, budget.max_reads, seed, self.device, self.dtype)
            done = np.full(n, budget.max_reads, dtype=np.int64)
        # E = offset + h·x + Σ_{p<k} Q_pk x_p x_k from the model's float64 biases, never from the
        # kernel's fields (compiled: over the set bits of the reads taken only)
        if sparse:
            return x, done, csr_energies_kernel(x, done, h, ptr, idx, val, problems.offsets[group])
        return x, done, energies_kernel(x, done, h, q, problems.offsets[group])

    def _sparse(self, problems: Problems, group: np.ndarray) -> bool:
        """Whether group ``group`` runs the sparse kernel (``kernel``, or its density when "auto")."""
        if self.kernel != "auto":
            return self.kernel == "sparse"
        d = problems.sizes[group].astype(np.float64)
        possible = float((d * (d - 1)).sum()) / 2
        return possible > 0 and float(problems.pairs[group].sum()) <= SPARSE_DENSITY * possible


def _groups(sizes: Any, reads: int) -> list[np.ndarray]:
    """Indices of the non-empty problems grouped by size (sorted, stable) so that padding wastes at
    most about half the work, with at most :data:`MAX_GROUP_ELEMENTS` elements per group."""
    sizes = sizes.tolist()  # Python ints: this loop runs once per model
    order = [i for i in np.argsort(sizes, kind="stable").tolist() if sizes[i] > 0]
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
    return [np.array(g, dtype=np.int64) for g in groups]


def layout_sparse(
    problems: Problems, members: np.ndarray, d_max: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zero-padded ``h`` (n, d_max) and neighbour lists ``ptr`` (n, d_max + 1), ``idx``, ``val`` of
    models ``members`` (n,), straight from their pairs: the non-zero entries of each row of the dense
    ``Q`` of :func:`pad`, in increasing column order.

    >>> p = flatten([dimod.BinaryQuadraticModel({0: -1.0, 1: 2.0}, {(0, 1): 3.0}, 0.0, "BINARY")])
    >>> h, ptr, idx, val = layout_sparse(p, np.array([0]), 3)
    >>> ptr.tolist(), idx.tolist(), val.tolist()
    ([[0, 1, 2, 2]], [1, 0], [3.0, 3.0])
    """
    var_start = np.concatenate([[0], np.cumsum(problems.sizes)])
    pair_start = np.concatenate([[0], np.cumsum(problems.pairs)])
    p = problems
    return csr_pad_kernel(p.linear, p.rows, p.cols, p.values, var_start, pair_start, members, d_max)


def _samplesets(
    bqms: list[dimod.BinaryQuadraticModel],
    samples: list[np.ndarray | None],
    energies: list[np.ndarray | None],
) -> list[dimod.SampleSet]:
    """One SampleSet per model from its BINARY ``samples`` (reads, d) and ``energies`` (reads,).

    The energies come from the models' own float64 biases (the BINARY form has the same energy
    function as a SPIN model); the tests check them against dimod's ``bqm.energies``. Models with
    the same ``d`` and number of reads share one record array, filled at once, whose slices become
    their records: its dtype is already ``np.record``, so viewing a slice as a recarray costs about a
    microsecond,
    where ``SampleSet.from_samples`` costs ~100 µs per model.
    """
    out: list[dimod.SampleSet | None] = [None] * len(bqms)
    shapes = np.array([s.shape for s in samples], dtype=np.int64).reshape(-1, 2)  # type: ignore[union-attr]
    for reads, d in np.unique(shapes, axis=0).tolist():
        members = np.flatnonzero((shapes[:, 0] == reads) & (shapes[:, 1] == d))
        dtype = np.dtype(
            (np.record, [("sample", np.int8, (d,)), ("energy", np.float64), ("num_occurrences", np.int64)])
        )
        record = np.empty(len(members) * reads, dtype=dtype)
        x = np.stack([samples[i] for i in members]).reshape(len(members) * reads, d)  # type: ignore[misc]
        spin = np.repeat([bqms[i].vartype is dimod.SPIN for i in members], reads)
        record["sample"] = np.where(spin[:, None], 2 * x - 1, x) if spin.any() else x
        record["energy"] = np.concatenate([energies[i] for i in members])  # type: ignore[misc]
        record["num_occurrences"] = 1
        for j, i in enumerate(members.tolist()):
            bqm = bqms[i]
            rec = record[j * reads : (j + 1) * reads].view(np.recarray)
            out[i] = _sampleset(rec, bqm.variables, bqm.vartype)
    return out  # type: ignore[return-value]


def _public_sampleset(record: np.recarray, variables: Any, vartype: dimod.Vartype) -> dimod.SampleSet:
    return dimod.SampleSet(record, variables, {}, vartype)


def _direct_sampleset(record: np.recarray, variables: Any, vartype: dimod.Vartype) -> dimod.SampleSet:
    """What ``dimod.SampleSet(record, variables, {}, vartype)`` builds, without its checks (the
    record is ours and valid by construction) nor its slow recarray field access: ~3 µs, not ~20."""
    ss = object.__new__(dimod.SampleSet)
    ss.__dict__.update(_record=record, _variables=Variables(variables), _info={}, _vartype=vartype)
    return ss


def _choose_sampleset_builder() -> Any:
    """The direct builder when it gives exactly what dimod's constructor gives on this dimod
    version (same instance attributes, same values), else the public constructor."""
    dtype = np.dtype(
        (np.record, [("sample", np.int8, (2,)), ("energy", np.float64), ("num_occurrences", np.int64)])
    )
    record = np.zeros(1, dtype=dtype).view(np.recarray)
    public = _public_sampleset(record, ["a", 1], dimod.SPIN)
    direct = _direct_sampleset(record, ["a", 1], dimod.SPIN)
    same = vars(public).keys() == vars(direct).keys() and all(
        getattr(public, k) is getattr(direct, k) or getattr(public, k) == getattr(direct, k)
        for k in ("_info", "_vartype", "_variables")
    )
    return _direct_sampleset if same else _public_sampleset


_sampleset = _choose_sampleset_builder()
