"""QA feature-map selection (arXiv 2604.25649, SPEC §1): which feature maps explain a decision.

For a batch at one convolutional layer: one forward + backward pass gives the maps ``A`` (B, N, H, W)
and the Grad-CAM channel weights ``α`` (B, N); each image becomes an explanation QUBO
(:func:`qxai.anneal.qubo.explanation_qubos`), all QUBOs are solved by one
:func:`qxai.anneal.samplers.sample_many` call, and the selected maps ``S`` give the QA-fGradCAM map
``normalise(Σ_{k∈S} ReLU(α_k A^k))``, upsampled bilinearly to the input size.

>>> import torch
>>> torch.manual_seed(0) and None
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(),
...                           torch.nn.Linear(4 * 6 * 6, 3))
>>> exp = QAFeatureMapExplainer(net, "0", solver="exact").explain(torch.rand(2, 1, 6, 6), target=0)
>>> exp.saliency.shape, len(exp.extras["selected"])
((2, 6, 6), 2)
>>> exp.extras["energy"] == exp.extras["ground_energy"]
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dimod
import numpy as np
import torch
import torch.nn.functional as F

from qxai.anneal.enumerate import MAX_ENUMERATION_VARIABLES, enumerate_energies
from qxai.anneal.qubo import QuboOptions, explanation_qubos, live_maps
from qxai.anneal.samplers import get_sampler, sample_many
from qxai.errors import QxaiError
from qxai.explain.base import Explainer, Explanation, check_inputs, normalise_maps, resolve_targets
from qxai.probe import capture_gradients, eval_mode, resolve_layer

#: With ``ground_truth="auto"``, the exact ground state is enumerated up to this many variables
#: (2^20 energies ≈ 8 MiB and well under a second per image).
GROUND_TRUTH_MAX_VARIABLES = 20
GROUND_TRUTH_MODES = ("auto", "always", "never")
#: Seconds per image the certified solver (``exact-mip``) may take above the enumeration limit.
GROUND_TIME_LIMIT = 10.0


@dataclass
class QuboBatch:
    """The explanation QUBOs of a batch and what they were built from.

    Attributes:
        qubos: one ``(bqm, kept)`` per image; ``kept`` (d,) are the layer indices with ``α > 0``
            whose map is not dead, and also the BQM's variable labels.
        channel_weights: ``(B, N)`` raw Grad-CAM weights ``α``.
        activations: ``(B, N, H', W')`` the layer's feature maps (detached, float32).
        targets: ``(B,)`` the class each QUBO explains.
        logits: ``(B, K)`` the model's pre-softmax outputs.
    """

    qubos: list[tuple[dimod.BinaryQuadraticModel, np.ndarray]]
    channel_weights: np.ndarray
    activations: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor
    live: np.ndarray  # (B, N) bool: maps that are not dead (QuboOptions.dead_eps)

    @property
    def dead_dropped(self) -> list[int]:
        """Per image, how many maps with ``α > 0`` were left out of the QUBO as dead."""
        return [int(n) for n in ((self.channel_weights > 0) & ~self.live).sum(axis=1)]


def forward_backward(
    model: torch.nn.Module, layer: str, inputs: torch.Tensor, targets: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`qxai.probe.capture_gradients`: the layer read as ``B×N×h×w`` maps (a convolution's, or a
    Transformer's token grid, :mod:`qxai.probe.tokens`); a layer with fewer than two maps is refused."""
    logits, acts, grads, chosen = capture_gradients(model, layer, inputs, targets)
    if acts.shape[1] < 2:
        raise QxaiError(
            f"layer '{layer}' has {acts.shape[1]} feature map, so there is nothing to select among; "
            "pick a layer with several maps (--layer)"
        )
    return logits, acts, grads, chosen


def qa_fgradcam(
    activations: torch.Tensor, alpha: torch.Tensor, selected: torch.Tensor, size: tuple[int, int]
) -> np.ndarray:
    """QA-fGradCAM maps (SPEC §1 step 8): ``(B, size)`` float32 in ``[0, 1]``.

    ``activations`` (B, N, H', W'), ``alpha`` (B, N), ``selected`` (B, N) bool. The sum
    ``Σ_{k∈S} ReLU(α_k A^k)`` is upsampled bilinearly and min–max normalised per image; an empty
    selection (or a map that is zero everywhere) gives an all-zero map. The step-8 normalisation
    before upsampling is a positive scaling, which bilinear upsampling and the final min–max undo,
    so it is folded into the final min–max.

    >>> a = torch.ones(1, 2, 2, 2); a[0, 1, 0, 0] = 3.0
    >>> qa_fgradcam(a, torch.tensor([[1.0, 1.0]]), torch.tensor([[False, True]]), (2, 2)).tolist()
    [[[1.0, 0.0], [0.0, 0.0]]]
    """
    weighted = torch.relu(alpha[:, :, None, None] * activations) * selected[:, :, None, None]
    cam = weighted.sum(dim=1, keepdim=True)
    up = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
    return normalise_maps(up)


class QAFeatureMapExplainer(Explainer):
    """Select the feature maps that explain each decision by annealing an explanation QUBO.

    Args:
        model: any torch classifier (run in eval mode while explaining).
        layer: name of a layer whose output reads as ``(B, N, h, w)`` maps: a convolutional block, or a
            Transformer block / norm whose patch tokens form a grid (:mod:`qxai.probe.tokens`).
        solver: a name of :func:`qxai.anneal.samplers.get_sampler` (``batch-sa``, ``exact``, ``sa``,
            ``tabu``, ``sqa``, ``sqa-openjij``, ``statevector``, ``qpu``).
        qubo: the QUBO settings (:class:`qxai.anneal.qubo.QuboOptions`: ``beta``, ``normalise``,
            ``penalty``, ``dead_eps``); its fields may also be given as keywords (``beta=0.5``).
        seed: seed of the solver (same seed, same explanation).
        solver_options: keywords for ``get_sampler`` (constructor options or default sample
            parameters, e.g. ``{"num_reads": 16}``).
        ground_truth: ``"auto"`` enumerates the exact ground energy when ``d ≤ 20`` and runs the
            certified solver ``exact-mip`` above (proven optimum, or best found and proven bound
            within ``ground_time_limit`` seconds); ``"always"`` enumerates up to ``d ≤ 26`` and runs
            ``exact-mip`` above; ``"never"`` skips it.
        ground_time_limit: seconds per image for ``exact-mip`` (default :data:`GROUND_TIME_LIMIT`).

    ``explain`` returns an :class:`Explanation` whose extras hold, per image: ``selected`` (sorted
    layer indices), ``energy`` (of the selection, from the BQM), ``ground_energy`` (None when not
    computed; above enumeration the best energy known, certified or not), ``ground_certified`` (True
    when ``ground_energy`` is the proven minimum), ``ground_gap`` (best known − proven lower bound:
    0 when certified, None when not computed), ``ground_bound`` (the proven lower bound),
    ``num_variables`` (d), ``over_solver_limit`` (True when d exceeds the solver's declared limit:
    that image is not solved, its selection is empty and its energy None), ``dead_maps`` (maps with
    α > 0 left out as dead), ``live_maps`` (maps that are not dead), ``positive_weights`` (maps with
    α > 0; :mod:`qxai.explain.quality` reads these to name why an image got no explanation),
    ``solver_seconds`` (the batch's solver time shared equally), ``ground_seconds`` (the time of
    the exact-optimum check, which is not part of the method and is excluded from
    ``Explanation.seconds``), plus ``channel_weights`` (B, N) and ``solver`` (the name).
    """

    name = "qa"

    def __init__(
        self,
        model: torch.nn.Module,
        layer: str,
        *,
        solver: str = "batch-sa",
        qubo: QuboOptions | dict[str, Any] | None = None,
        seed: int = 0,
        solver_options: dict[str, Any] | None = None,
        ground_truth: str = "auto",
        ground_time_limit: float = GROUND_TIME_LIMIT,
        **qubo_fields: Any,
    ) -> None:
        super().__init__(model)
        resolve_layer(model, layer)
        if ground_truth not in GROUND_TRUTH_MODES:
            raise QxaiError(
                f"ground_truth must be one of {', '.join(GROUND_TRUTH_MODES)}, got '{ground_truth}'"
            )
        self.qubo = QuboOptions.of(qubo, **qubo_fields)  # validated here, before any model work
        self.layer = layer
        self.solver = solver
        self.seed = seed
        self.solver_options = dict(solver_options or {})
        self.ground_truth = ground_truth
        if not ground_time_limit > 0:
            raise QxaiError(f"ground_time_limit must be > 0 seconds, got {ground_time_limit}; give e.g. 10")
        self.ground_time_limit = float(ground_time_limit)
        # built once: unknown names and a qpu without a token fail here, not mid-run
        self.sampler = get_sampler(solver, **self.solver_options)

    def build_qubos(self, inputs: torch.Tensor, target: Any = None) -> QuboBatch:
        """One forward + backward pass for ``inputs`` (B, C, H, W) and one QUBO per image.

        ``target``: None (predicted class, read from the same forward pass), an int, or (B,)
        per-example classes.
        """
        inputs = check_inputs(inputs)
        with eval_mode(self.model):
            return self._build_qubos(inputs, target)

    def explain(self, inputs: torch.Tensor, target: Any = None) -> Explanation:
        """Explain a batch ``(B, C, H, W)`` for ``target`` (None: the predicted class, int, or (B,)).

        Unlike the base class, the predicted class comes from the pass that also gives the
        gradients, so the batch costs one forward and one backward pass in all.
        """
        inputs = check_inputs(inputs)
        start = time.perf_counter()
        with eval_mode(self.model):
            result = self._solve(self._build_qubos(inputs, target), tuple(inputs.shape[2:]))
        # the exact-optimum check is a measurement of the solver, not part of the method's cost
        result.seconds = time.perf_counter() - start - sum(result.extras["ground_seconds"])
        return result

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        return self._solve(self._build_qubos(inputs, targets), tuple(inputs.shape[2:]))

    def _build_qubos(self, inputs: torch.Tensor, target: Any) -> QuboBatch:
        targets = None if target is None else resolve_targets(self.model, inputs, target)
        logits, acts, grads, targets = forward_backward(self.model, self.layer, inputs, targets)
        alpha = grads.float().mean(dim=(2, 3))  # Grad-CAM weight: spatial mean of ∂z_c/∂A^k
        alpha_np, acts = alpha.cpu().numpy(), acts.float().cpu()
        qubos = explanation_qubos(alpha_np, acts.numpy(), self.qubo)
        live = live_maps(acts.numpy(), self.qubo.dead_eps)
        return QuboBatch(qubos, alpha_np, acts, targets.cpu(), logits.cpu(), live)

    def _solve(self, batch: QuboBatch, size: tuple[int, int]) -> Explanation:
        """One ``sample_many`` call for the batch, then the selections, energies and maps."""
        bqms = [bqm for bqm, _ in batch.qubos]
        over = self._over_limit(bqms)
        chosen, selected, energies, solver_seconds = solve_selections(
            self.sampler, bqms, over, batch.channel_weights.shape[1], self.seed
        )
        b = len(bqms)
        saliency = qa_fgradcam(
            batch.activations, torch.as_tensor(batch.channel_weights), torch.as_tensor(chosen), size
        )
        ground, ground_seconds = ground_truth_extras(
            bqms, energies, self.ground_truth, self.ground_time_limit
        )
        return Explanation(
            saliency,
            batch.targets.numpy(),
            self.name,
            extras={
                "selected": selected,
                "energy": energies,
                **ground,
                "num_variables": [len(bqm.variables) for bqm in bqms],
                "over_solver_limit": over,
                "dead_maps": batch.dead_dropped,
                "live_maps": [int(n) for n in batch.live.sum(axis=1)],
                "positive_weights": [int(n) for n in (batch.channel_weights > 0).sum(axis=1)],
                "channel_weights": batch.channel_weights,
                "solver": self.solver,
                "solver_seconds": [solver_seconds / max(b, 1)] * b,
                "ground_seconds": [ground_seconds / max(b, 1)] * b,
            },
        )

    def _over_limit(self, bqms: list[dimod.BinaryQuadraticModel]) -> list[bool]:
        """Per image, whether its QUBO is larger than the solver's declared ``max_variables``: such an
        image is not solved (the others are) and is flagged ``over_solver_limit`` with the cause."""
        limit = solver_max_variables(self.sampler)
        return [limit is not None and len(bqm.variables) > limit for bqm in bqms]


def solve_selections(
    sampler: dimod.Sampler, bqms: list[dimod.BinaryQuadraticModel], over: list[bool], num_variables: int,
    seed: int | None,
) -> tuple[np.ndarray, list[list[int]], list[float | None], float]:  # fmt: skip
    """Solve every QUBO not ``over`` the solver's limit in one ``sample_many`` call and read each
    one's best sample: ``(chosen (B, num_variables) bool, selected [sorted indices], energies
    [float | None], solver seconds)``. An image over the limit gets no selection and energy None
    (flagged by :mod:`qxai.explain.quality`); an empty QUBO selects nothing at its offset. Shared
    by the map (:class:`QAFeatureMapExplainer`) and head (``qa-heads``) selections.

    >>> bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: 0.5}, {}, 0.0, "BINARY")
    >>> chosen, selected, energies, _ = solve_selections(get_sampler("exact"), [bqm], [False], 2, 0)
    >>> selected, energies, chosen.tolist()
    ([[0]], [-1.0], [[True, False]])
    """
    start = time.perf_counter()
    solved = iter(sample_many(sampler, [q for q, o in zip(bqms, over, strict=True) if not o], seed=seed))
    seconds = time.perf_counter() - start
    chosen = np.zeros((len(bqms), num_variables), dtype=bool)
    selected: list[list[int]] = []
    energies: list[float | None] = []
    for i, bqm in enumerate(bqms):
        if over[i]:
            selected.append([])
            energies.append(None)
            continue
        ss = next(solved)
        # the record, not ss.first, which builds a namedtuple class per call (slow for a batch);
        # sample_many has re-computed every energy from the BQM itself
        best = int(np.argmin(ss.record.energy))
        row = ss.record.sample[best]
        sel = sorted(int(v) for v, bit in zip(ss.variables, row, strict=True) if bit > 0)
        chosen[i, sel] = True
        selected.append(sel)
        energies.append(float(ss.record.energy[best]) if len(row) else float(bqm.offset))
    return chosen, selected, energies, seconds


def ground_truth(
    bqm: dimod.BinaryQuadraticModel, found: float, mode: str = "auto", time_limit: float = GROUND_TIME_LIMIT
) -> tuple[float | None, bool, float | None, float | None]:
    """``(ground_energy, certified, gap, bound)`` of one QUBO; ``found`` is the solver's energy.

    ``mode`` (:data:`GROUND_TRUTH_MODES`): ``"auto"`` enumerates up to
    :data:`GROUND_TRUTH_MAX_VARIABLES`, ``"always"`` up to enumeration's own limit; above it
    ``exact-mip`` gives its proven optimum, or — when ``time_limit`` binds — the lower of its best
    and ``found`` with its proven bound, recorded as not certified. ``"never"``:
    ``(None, False, None, None)``.

    >>> bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: 0.5}, {(0, 1): -1.0}, 0.0, "BINARY")
    >>> ground_truth(bqm, -0.5)
    (-1.5, True, 0.0, -1.5)
    """
    d = len(bqm.variables)
    if d == 0:
        return float(bqm.offset), True, 0.0, float(bqm.offset)
    if mode == "never":
        return None, False, None, None
    limit = GROUND_TRUTH_MAX_VARIABLES if mode == "auto" else MAX_ENUMERATION_VARIABLES
    if d <= limit:
        ground = float(enumerate_energies(bqm)[1].min())
        return ground, True, 0.0, ground
    from qxai.anneal.samplers.mip import OPTIMAL_TOLERANCE, ExactMIPSampler

    info = (ss := ExactMIPSampler(time_limit=time_limit).sample(bqm)).info
    best = min(float(ss.first.energy), float(found))
    bound = min(float(info["bound"]), best)
    certified = bool(info["optimal"]) or best - bound <= OPTIMAL_TOLERANCE * max(1.0, abs(best))
    return best, certified, (0.0 if certified else best - bound), bound


def ground_truth_extras(
    bqms: list[dimod.BinaryQuadraticModel], energies: list[float | None], mode: str, time_limit: float
) -> tuple[dict[str, list[Any]], float]:
    """The ``ground_energy``, ``ground_certified``, ``ground_gap`` and ``ground_bound`` extras of a
    batch — :func:`ground_truth` of each solved image, ``None``/False for one not solved (energy
    None) — and the seconds the check took (not part of the method's cost).

    >>> bqm = dimod.BinaryQuadraticModel({0: -1.0}, {}, 0.0, "BINARY")
    >>> ground_truth_extras([bqm, bqm], [-1.0, None], "auto", 10.0)[0]["ground_certified"]
    [True, False]
    """
    start = time.perf_counter()
    ground = [(None, False, None, None) if e is None else ground_truth(bqm, e, mode, time_limit)
              for bqm, e in zip(bqms, energies, strict=True)]  # fmt: skip
    keys = ("ground_energy", "ground_certified", "ground_gap", "ground_bound")
    return {key: [g[j] for g in ground] for j, key in enumerate(keys)}, time.perf_counter() - start


def solver_max_variables(sampler: dimod.Sampler) -> int | None:
    """The size limit a sampler (or the child of a composite) declares, if any.

    >>> solver_max_variables(get_sampler("exact")), solver_max_variables(get_sampler("sa"))
    (26, None)
    """
    while True:
        props = sampler.properties
        for key in ("max_variables", "max_qubits"):  # enumeration's limit, the state vector's
            if key in props:
                return int(props[key])
        children = getattr(sampler, "children", None)
        if not children:
            return None
        sampler = children[0]


__all__ = [
    "GROUND_TRUTH_MAX_VARIABLES",
    "QAFeatureMapExplainer",
    "QuboBatch",
    "forward_backward",
    "ground_truth",
    "qa_fgradcam",
    "solve_selections",
    "solver_max_variables",
]
