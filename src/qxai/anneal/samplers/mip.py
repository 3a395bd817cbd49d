"""Certified optima of QUBOs beyond enumeration: a structured branch and bound, OR-Tools CP-SAT or HiGHS.

- ``auto`` (default): ``bnb`` when every coupling of the BINARY model is ``≥ 0`` (explanation QUBOs:
  redundancy couplings are ``β·|cos| ≥ 0``), ``cp-sat`` otherwise.
- ``bnb``: :func:`qxai.anneal.samplers.certify.branch_and_bound` — persistencies (first-order
  dominance) fix what they can, then a depth-first set-enumeration search that drops every candidate
  whose marginal is ``≥ 0`` (sound because couplings are ``≥ 0``) and cuts with a Gilmore–Lawler bound
  per cardinality. It proves the optimum of explanation QUBOs of 128- and 256-map layers (d ≈ 58 and
  ≈ 136) in well under a second to a few seconds (BENCHMARKS.md, P2c), where both MIP engines below
  prove none within 10 s. Its bound is the optimum minus a few float eps of the model's scale.
- ``cp-sat``: CP-SAT on the linearised QUBO (BINARY form, a product variable ``y_ij = x_i x_j`` per
  coupling: ``y ≤ x_i, y ≤ x_j`` where the coupling is negative, ``y ≥ x_i + x_j − 1`` where it is
  positive), hinted with batch-sa's best solution, one worker (deterministic). It scales the float
  objective to integers, so its proven bound is good to about 1e-6 of the coefficients' scale;
  ``optimal`` is its OPTIMAL status. Any signs.
- ``highs``: HiGHS MIP one cardinality at a time on the same linearisation. The plain
  linearisation's LP bound is weak on explanation QUBOs (dense, positive redundancy couplings); with
  ``Σx = k`` fixed, the RLT equalities ``Σ_{j≠i} y_ij = (k − 1) x_i`` make it tight. A cheap bound
  per ``k`` (the ``k`` smallest linear biases plus the ``k(k−1)/2`` smallest couplings) drops the
  ``k`` that cannot beat the incumbent; each remaining ``k`` gets its LP relaxation and, if that can
  still win, the MIP with the incumbent as cutoff. Its bound is exact to 1e-9. Any signs.

On 64-map layers (d ≈ 35) CP-SAT proves every QUBO tried within 10 s (median ≈ 3 s) and HiGHS per
cardinality few; neither closes d ≈ 58 in 10 s (``benchmarks/p2c_certified.py --compare N``).

The answer is the best solution found, its energy recomputed from the model by dimod, and in
``SampleSet.info``: ``optimal``, ``bound`` (proven lower bound on the minimum energy), ``gap``
(energy − bound, ≥ 0), ``status``, ``seconds``, ``engine`` (the one that ran), ``cardinalities``
(HiGHS: how many ``k`` needed an LP or MIP; 0 for the others), ``nodes`` (bnb: search nodes; 0 for
the others). A time limit that binds
makes the result depend on the machine's speed; a proven optimum's energy does not.

>>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -1}, {("a", "b"): 3}, 0.0, "BINARY")
>>> ss = ExactMIPSampler().sample(bqm)
>>> float(ss.first.energy), ss.info["optimal"]
(-1.0, True)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import dimod
import numpy as np

from qxai.errors import QxaiError

#: Relative gap HiGHS is asked to close (``mip_rel_gap``, ``mip_abs_gap``).
GAP_TOLERANCE = 1e-9
#: Relative gap (energy − bound) / max(1, |energy|) below which a solution counts as proven optimal:
#: HiGHS's own gap has another denominator, so ours allows ten times its tolerance.
OPTIMAL_TOLERANCE = 1e-8
#: Default time limit in seconds per model.
DEFAULT_TIME_LIMIT = 10.0
#: ``auto`` (default: ``bnb`` when every coupling is ≥ 0, else ``cp-sat``), ``bnb`` (structured branch and
#: bound, couplings ≥ 0 only), ``cp-sat`` (OR-Tools CP-SAT on the plain linearisation) or ``highs`` (HiGHS
#: per cardinality).
ENGINES = ("auto", "bnb", "cp-sat", "highs")


def _new_highs() -> Any:
    """A silent ``highspy.Highs``. Its constructor prints a banner on the process's standard output
    (at the C level) the first time; that line is dropped so that the CLI's output stays ours."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            solver = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    solver.setOptionValue("output_flag", False)
    return solver


def cardinality_bounds(h: np.ndarray, q: np.ndarray, offset: float) -> np.ndarray:
    """Lower bound on the energy of any selection of exactly ``k`` variables, ``k = 0 … d`` → (d+1,).

    ``h`` (d,) linear biases, ``q`` (d, d) symmetric couplings (zero diagonal) of a BINARY model:
    the ``k`` smallest ``h`` plus the ``k(k−1)/2`` smallest couplings.

    >>> cardinality_bounds(np.array([-1.0, -1.0]), np.array([[0.0, 3.0], [3.0, 0.0]]), 0.0).tolist()
    [0.0, -1.0, 1.0]
    """
    d = len(h)
    k = np.arange(d + 1)
    lin = np.concatenate([[0.0], np.cumsum(np.sort(h))])
    pairs = np.concatenate([[0.0], np.cumsum(np.sort(q[np.triu_indices(d, 1)]))])
    return offset + lin + pairs[k * (k - 1) // 2]


class _CardinalityModel:
    """The linearised QUBO with ``Σx = k`` and the RLT rows, rebuilt cheaply for each ``k``."""

    def __init__(self, h: np.ndarray, q: np.ndarray, offset: float) -> None:
        d = len(h)
        self.d, self.offset = d, offset
        self.iu, self.ju = np.triu_indices(d, 1)
        pairs = len(self.iu)
        self.cost = np.concatenate([h, q[self.iu, self.ju]])
        y = d + np.arange(pairs)
        # rows: y ≤ x_i, y ≤ x_j, y ≥ x_i + x_j − 1 (each pair), then Σx = k, then the d RLT rows
        below_i, below_j = np.stack([y, self.iu], 1).ravel(), np.stack([y, self.ju], 1).ravel()
        above = np.stack([y, self.iu, self.ju], 1).ravel()
        self.fixed_index = np.concatenate([below_i, below_j, above])
        self.fixed_value = np.concatenate(
            [np.tile([1.0, -1.0], 2 * pairs), np.tile([1.0, -1.0, -1.0], pairs)]
        )
        self.fixed_starts = np.concatenate(
            [np.arange(0, 4 * pairs, 2), 4 * pairs + np.arange(0, 3 * pairs, 3)]
        )
        # RLT row i: Σ_{j≠i} y_ij − (k − 1) x_i = 0; the y of row i, grouped
        owner = np.concatenate([self.iu, self.ju])
        ys = np.concatenate([y, y])
        order = np.argsort(owner, kind="stable")
        self.rlt_y = ys[order].reshape(d, d - 1) if d > 1 else np.zeros((d, 0), dtype=np.int64)

    def solve(self, k: int, cutoff: float, limit: float, relax: bool) -> tuple[str, float, np.ndarray | None]:
        """``(status, value or bound, x or None)`` of the model at cardinality ``k``."""
        import highspy

        d, pairs = self.d, len(self.iu)
        inf = highspy.kHighsInf
        rlt_index = np.concatenate([self.rlt_y, np.arange(d)[:, None]], axis=1).ravel()
        rlt_value = np.tile(np.concatenate([np.ones(d - 1), [-(k - 1.0)]]), d)
        index = np.concatenate([self.fixed_index, np.arange(d), rlt_index]).astype(np.int32)
        value = np.concatenate([self.fixed_value, np.ones(d), rlt_value])
        first_rlt = len(self.fixed_index) + d
        starts = np.concatenate([self.fixed_starts, [len(self.fixed_index)], first_rlt + d * np.arange(d),
                                 [len(index)]]).astype(np.int32)  # fmt: skip
        lower = np.concatenate([np.full(2 * pairs, -inf), np.full(pairs, -1.0), [k], np.zeros(d)])
        upper = np.concatenate([np.zeros(2 * pairs), np.full(pairs, inf), [k], np.zeros(d)])
        lp = highspy.HighsLp()
        n = d + pairs
        lp.num_col_, lp.num_row_ = n, len(lower)
        lp.col_cost_, lp.offset_ = self.cost, self.offset
        lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
        lp.row_lower_, lp.row_upper_ = lower, upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, index, value
        if not relax:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        solver = _new_highs()
        solver.setOptionValue("time_limit", max(float(limit), 1e-3))
        solver.setOptionValue("mip_rel_gap", GAP_TOLERANCE)
        solver.setOptionValue("mip_abs_gap", GAP_TOLERANCE)
        solver.setOptionValue("random_seed", 0)
        if not relax:
            solver.setOptionValue("objective_bound", float(cutoff))
        solver.passModel(lp)
        solver.run()
        status = solver.modelStatusToString(solver.getModelStatus())
        info = solver.getInfo()
        if status == "Optimal":
            x = np.asarray(solver.getSolution().col_value[:d]) > 0.5
            return status, float(info.objective_function_value), x
        if status in ("Infeasible", "Objective bound"):
            return status, float(cutoff), None  # nothing at this k beats the cutoff
        found = info.primal_solution_status != 0 and not relax
        x = np.asarray(solver.getSolution().col_value[:d]) > 0.5 if found else None
        bound = float(info.mip_dual_bound) if not relax else -np.inf
        return status, bound if np.isfinite(bound) else -np.inf, x


class ExactMIPSampler(dimod.Sampler):
    """The minimum of a QUBO/Ising model with a proof, or the best found and its proven bound.

    Args:
        time_limit: seconds per model (default :data:`DEFAULT_TIME_LIMIT`); past it the best
            solution found is returned with ``info["optimal"] = False`` and its proven ``bound``.
        engine: ``"auto"`` (default: ``"bnb"`` when every coupling is ≥ 0, else ``"cp-sat"``),
            ``"bnb"`` (structured branch and bound; a model with a negative coupling is a
            :class:`QxaiError`), ``"cp-sat"`` (OR-Tools CP-SAT) or ``"highs"`` (HiGHS per cardinality).

    ``sample(bqm, time_limit=…)`` returns one sample (the best found).
    """

    #: its energies are computed by dimod from the model (sample_many need not redo them)
    energies_from_bqm = True

    def __init__(self, time_limit: float = DEFAULT_TIME_LIMIT, engine: str = "auto") -> None:
        if not time_limit > 0:
            raise QxaiError(f"time_limit must be > 0 seconds, got {time_limit}")
        if engine not in ENGINES:
            raise QxaiError(f"engine must be one of {', '.join(ENGINES)}, got '{engine}'")
        self.time_limit = float(time_limit)
        self.engine = engine

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return {"time_limit": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"time_limit": self.time_limit, "engine": self.engine}

    def sample(self, bqm: dimod.BinaryQuadraticModel, time_limit: float | None = None,
               **kwargs: Any) -> dimod.SampleSet:  # fmt: skip
        """Solve ``bqm`` (BINARY or SPIN) to proven optimality or until ``time_limit`` seconds."""
        from qxai.anneal.samplers.batch_sa import binary_vectors

        self.remove_unknown_kwargs(**kwargs)
        limit = self.time_limit if time_limit is None else float(time_limit)
        if not limit > 0:
            raise QxaiError(f"time_limit must be > 0 seconds, got {time_limit}")
        h, (rows, cols, values), offset = binary_vectors(bqm)
        if not (np.isfinite(h).all() and np.isfinite(values).all() and np.isfinite(offset)):
            raise QxaiError("the model has a NaN or infinite bias; give finite biases")
        engine = self.engine
        if engine == "auto":
            engine = "bnb" if (values >= 0).all() else "cp-sat"
        if engine == "bnb" and not (values >= 0).all():
            raise QxaiError(
                "engine 'bnb' needs every coupling ≥ 0 (explanation QUBOs); use 'auto' or 'cp-sat'"
            )
        if engine == "bnb":
            from qxai.anneal.samplers.certify import compile_search

            compile_search()  # a first call compiles (or loads) the numba search: not part of the time limit
        start = time.perf_counter()
        if len(h) == 0:  # nothing to decide: the empty assignment, at the offset
            x, bound, status, solved = np.zeros(0, dtype=bool), offset, "Optimal", 0
        else:
            q = np.zeros((len(h), len(h)))  # symmetric, zero diagonal: Q_ij = Q_ji = the coupling
            np.add.at(q, (rows, cols), values)
            q = q + q.T
            solve = {"bnb": self._solve_bnb, "cp-sat": self._solve_cpsat, "highs": self._solve}[engine]
            x, bound, status, solved = solve(h, q, (rows, cols, values), offset, limit, start)
        sample = x.astype(np.int8)
        if bqm.vartype is dimod.SPIN:
            sample = 2 * sample - 1
        ss = dimod.SampleSet.from_samples_bqm((sample[None, :], list(bqm.variables)), bqm)
        energy = float(ss.first.energy)
        bound = min(bound, energy)  # the bound can exceed the energy by solver tolerances only
        gap = energy - bound
        optimal = status == "Optimal" or gap <= OPTIMAL_TOLERANCE * max(1.0, abs(energy))
        ss.info.update(optimal=bool(optimal), bound=float(bound), gap=float(gap),
                       status=status if not optimal else "Optimal", seconds=time.perf_counter() - start,
                       engine=engine, cardinalities=solved if engine == "highs" else 0,
                       nodes=solved if engine == "bnb" else 0)  # fmt: skip
        return ss

    def _solve_bnb(self, h: np.ndarray, q: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                   offset: float, limit: float, start: float) -> tuple[np.ndarray, float, str, int]:
        """The structured branch and bound (couplings ≥ 0): ``(x, bound, status, nodes)``."""
        from qxai.anneal.samplers.certify import branch_and_bound

        left = max(limit - (time.perf_counter() - start), 1e-3)
        cert = branch_and_bound(h, q, offset, time_limit=left)
        return (
            cert.x.astype(bool),
            cert.bound,
            "Optimal" if cert.optimal else "Time limit reached",
            cert.nodes,
        )

    def _solve_cpsat(self, h: np.ndarray, q: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                     offset: float, limit: float, start: float) -> tuple[np.ndarray, float, str, int]:
        """CP-SAT on the plain linearisation, hinted with batch-sa's best: ``(x, bound, status, 0)``."""
        from ortools.sat.python import cp_model

        d, (rows, cols, values) = len(h), pairs
        binary = dimod.BinaryQuadraticModel.from_numpy_vectors(h, (rows, cols, values), offset, dimod.BINARY)
        hint_x, _ = _incumbent(binary)
        model = cp_model.CpModel()
        x = [model.NewBoolVar(f"x{i}") for i in range(d)]
        terms = [(float(h[i]), x[i]) for i in range(d)]
        for p in range(len(values)):
            y = model.NewBoolVar(f"y{p}")
            a, b = x[int(rows[p])], x[int(cols[p])]
            if values[p] < 0:  # the objective pushes y up: y ≤ x_i, y ≤ x_j
                model.AddImplication(y, a)
                model.AddImplication(y, b)
            elif values[p] > 0:  # it pushes y down: y ≥ x_i + x_j − 1
                model.AddBoolOr([a.Not(), b.Not(), y])
            terms.append((float(values[p]), y))
        for i in range(d):
            model.AddHint(x[i], bool(hint_x[i]))
        model.Minimize(sum(w * v for w, v in terms))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(limit - (time.perf_counter() - start), 1e-3)
        # one worker: CP-SAT's portfolio with several workers returns whichever worker finishes
        # first, so the answer (among equal optima) would depend on the machine's load
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = 0
        # CP-SAT stops at |best − bound| ≤ absolute_gap_limit, 1e-4 by default: far coarser than the
        # energy differences of explanation QUBOs
        solver.parameters.absolute_gap_limit = GAP_TOLERANCE
        solver.parameters.relative_gap_limit = 0.0
        code = solver.Solve(model)
        # a bound that needs no search: the smallest cardinality bound (valid for every selection)
        floor = float(cardinality_bounds(h, q, offset).min())
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # nothing found in time (measured once)
            return hint_x, floor, solver.StatusName(code), 0
        found = np.array([solver.BooleanValue(v) for v in x])
        if float(binary.energy(found.astype(np.int8))) > float(binary.energy(hint_x.astype(np.int8))):
            found = hint_x
        status = "Optimal" if code == cp_model.OPTIMAL else "Time limit reached"
        return found, max(float(solver.BestObjectiveBound()) + offset, floor), status, 0

    def _solve(self, h: np.ndarray, q: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
               offset: float, limit: float, start: float) -> tuple[np.ndarray, float, str, int]:
        """``(x (d,) 0/1, proven lower bound, status, cardinalities solved)``."""
        del pairs  # HiGHS builds its per-cardinality model from the dense q
        binary = dimod.BinaryQuadraticModel(h, q / 2, offset, dimod.BINARY)  # the halves add up to q
        best_x, best = np.zeros(len(h), dtype=bool), offset
        hint_x, hint = _incumbent(binary)
        if hint < best:
            best_x, best = hint_x, hint
        cheap = cardinality_bounds(h, q, offset)
        bounds = cheap.copy()  # per k: the best proven lower bound so far
        tol = GAP_TOLERANCE * max(1.0, abs(best))
        todo = [k for k in np.argsort(cheap, kind="stable").tolist() if k > 0 and cheap[k] < best - tol]
        bounds[0] = offset
        model = _CardinalityModel(h, q, offset) if todo else None
        status, solved = "Optimal", 0
        for k in todo:
            if bounds[k] >= best - tol:
                continue
            left = limit - (time.perf_counter() - start)
            if left <= 0:
                status = "Time limit reached"
                break
            solved += 1
            _, lp_bound, _ = model.solve(k, best, left, relax=True)
            bounds[k] = max(bounds[k], lp_bound)
            if bounds[k] >= best - tol:
                continue
            left = limit - (time.perf_counter() - start)
            if left <= 0:
                status = "Time limit reached"
                break
            st, value, x = model.solve(k, best, left, relax=False)
            if x is not None:
                energy = float(binary.energy(x.astype(np.int8)))
                if energy < best:
                    best, best_x = energy, x
                    tol = GAP_TOLERANCE * max(1.0, abs(best))
            if st == "Optimal":
                bounds[k] = max(bounds[k], value - tol)
            elif st in ("Infeasible", "Objective bound"):
                bounds[k] = max(bounds[k], best)
            else:
                bounds[k] = max(bounds[k], value)
                status = st
        proven = float(min(best, bounds.min()))
        return best_x, proven, status, solved


def _incumbent(binary: dimod.BinaryQuadraticModel) -> tuple[np.ndarray, float]:
    """batch-sa's best state (d,) bool of a BINARY model and its energy: the MIP engines' start."""
    from qxai.anneal.samplers.batch_sa import BatchSimulatedAnnealingSampler

    ss = BatchSimulatedAnnealingSampler().sample_many([binary], seed=0)[0]
    best = int(np.argmin(ss.record.energy))
    return np.asarray(ss.record.sample[best], dtype=bool), float(ss.record.energy[best])


__all__ = [
    "DEFAULT_TIME_LIMIT",
    "GAP_TOLERANCE",
    "OPTIMAL_TOLERANCE",
    "ExactMIPSampler",
    "cardinality_bounds",
]
