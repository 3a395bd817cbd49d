"""QA over attention heads (issue 23): the heads of one block, or of every block, as the QUBO's variables.

QA feature-map selection (:mod:`qxai.explain.qa`) chooses among a layer's maps; this explainer
chooses among a Transformer's attention heads, with the same QUBO, built by the same function
(:func:`qxai.anneal.qubo.explanation_qubos`) and solved by the same machinery
(:func:`qxai.anneal.samplers.sample_many` on a :func:`~qxai.anneal.samplers.get_sampler` solver).
Per image, for the target logit ``z``:

* **The heads' outputs** ``O_h`` ``(T, d_head)``, before the heads are merged and projected, are
  read with hooks owned by :class:`HeadHooks` (released on every exit path): ``vit-tiny``'s
  ``blocks.i.attn.heads`` gives them directly; an ``nn.MultiheadAttention`` (torchvision's
  ``VisionTransformer``) does not expose them, so its forward hook recomputes them from the module's
  own ``in_proj``/``out_proj`` weights (:func:`mha_heads`) and returns the output rebuilt from them
  (checked against the module's own output to float eps; ``tests/explain/test_heads.py``).
* **Importance** (the analogue of Grad-CAM's ``α``): ``α_h = ∂z/∂ξ_h`` at ``ξ = 1``, where each head's
  output is scaled by a gate ``ξ_h``, i.e. ``α_h = Σ_{t,j} (∂z/∂O_h)_{tj} · (O_h)_{tj}``, summed over
  the tokens and ``d_head`` (Michel et al. 2019's head-importance score, signed). Why not Grad-CAM's
  literal *mean gradient*: a map's pixels share one meaning, so averaging its gradient over them is
  meaningful, but a head's ``d_head`` coordinates are an arbitrary basis (rotate the value
  projection and counter-rotate the output projection: the same network, a different mean
  gradient), so the mean gradient of a head has no sign one can trust. The gate derivative is
  invariant to that basis, is positive exactly when the head pushes the class logit up (as ``α_k >
  0`` is for a map), is the first-order estimate of the logit drop when the head is zeroed — what
  :func:`qxai.evaluate.heads.head_ablation` measures — and, like ``α``, comes from one backward pass.
* **Redundancy** ``J_pq = |cos(O_p, O_q)|`` over the outputs flattened to ``T × d_head``
  (``redundancy="output"``, the default), or over what each head writes into the residual stream,
  ``O_h W_o[:, h]ᵀ`` flattened to ``T × dim`` (``redundancy="residual"``: one space for all heads,
  so the cosine does not depend on each head's arbitrary basis).
* **Energy**: SPEC §1's ``E(x) = (1 − β) Σ_{p<q} J_pq x_p x_q − β Σ_p α̃_p x_p`` over the heads with
  ``α > 0`` that are not dead; the selected heads ``S`` are the explanation.
* **Saliency**: ``normalise(Σ_{h∈S} α_h · a_h)``, ``a_h`` head ``h``'s attention from the class token to
  the patch tokens on the patch grid (:mod:`qxai.probe.tokens`; the mean over query tokens when the
  model has no class token), upsampled bilinearly to the input.

``blocks="last"`` takes the last attention block's heads (``d = heads``); ``"all"`` takes every
block's (``d = depth × heads``, e.g. 16 for ``vit-tiny``, 144 for ViT-B/16); an int takes that block.
A head's index is its position in that order: block ``l``'s head ``h`` is ``offset_l + h``.

>>> from qxai.models.vit import ViTTiny
>>> torch.manual_seed(0) and None
>>> net = ViTTiny(1, 3, (8, 8), patch_size=2, dim=8, depth=2, heads=2)
>>> exp = QAHeadsExplainer(net, blocks="all", solver="exact").explain(torch.rand(2, 1, 8, 8), target=0)
>>> exp.saliency.shape, exp.extras["head_weights"].shape, exp.extras["head_labels"][2]
((2, 8, 8), (2, 4), 'blocks.1.attn:h0')
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dimod
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qxai.anneal.qubo import QuboOptions, explanation_qubos, live_maps
from qxai.anneal.samplers import get_sampler
from qxai.errors import QxaiError
from qxai.explain.base import Explainer, Explanation, check_inputs, normalise_maps
from qxai.explain.qa import (
    GROUND_TIME_LIMIT,
    GROUND_TRUTH_MODES,
    QAFeatureMapExplainer,
    ground_truth_extras,
    solve_selections,
    solver_max_variables,
)
from qxai.probe import eval_mode, target_classes
from qxai.probe.hooks import refuse_torchscript
from qxai.probe.tokens import detect_layout, model_patch_size, model_prefix_tokens, stated_layout

BLOCK_CHOICES = ("last", "all")
REDUNDANCIES = ("output", "residual")
#: QA's default solver, read from its signature so that the two explainers never disagree.
DEFAULT_SOLVER: str = inspect.signature(QAFeatureMapExplainer).parameters["solver"].default
SUPPORTED = (
    "qxai's vit-tiny attention (blocks.i.attn with its `heads` and `softmax` outputs) or "
    "nn.MultiheadAttention (torchvision's VisionTransformer)"
)


@dataclass(frozen=True)
class HeadSite:
    """One attention module whose heads are variables.

    Attributes:
        name: the module's name in ``model.named_modules()``.
        module: the module itself.
        kind: ``"explicit"`` (a module with ``heads``/``softmax`` children and ``num_heads``, as
            :class:`qxai.models.vit.Attention`) or ``"mha"`` (``nn.MultiheadAttention``).
        num_heads: heads of the module.
    """

    name: str
    module: nn.Module
    kind: str
    num_heads: int

    @property
    def out_weight(self) -> torch.Tensor:
        """``(dim, heads · d_head)`` the projection that merges the heads into the residual stream."""
        proj = self.module.out_proj if self.kind == "mha" else getattr(self.module, "proj", None)
        if not isinstance(proj, nn.Linear):
            raise QxaiError(
                f"attention '{self.name}' has no nn.Linear `proj` after its heads, which "
                "redundancy='residual' needs; use redundancy='output'"
            )
        return proj.weight


def _is_explicit(module: nn.Module) -> bool:
    heads = getattr(module, "num_heads", None)
    return (
        isinstance(heads, int) and heads >= 1 and isinstance(getattr(module, "heads", None), nn.Module)
        and isinstance(getattr(module, "softmax", None), nn.Softmax)
    )  # fmt: skip


def head_sites(model: nn.Module) -> list[HeadSite]:
    """Every attention module whose heads qxai can read, in ``named_modules`` (forward) order.

    >>> from qxai.models.vit import ViTTiny
    >>> [(s.name, s.kind, s.num_heads) for s in head_sites(ViTTiny(1, 2, (8, 8), depth=2, heads=4))]
    [('blocks.0.attn', 'explicit', 4), ('blocks.1.attn', 'explicit', 4)]
    """
    refuse_torchscript(model)
    sites = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            sites.append(HeadSite(name, module, "mha", int(module.num_heads)))
        elif _is_explicit(module):
            sites.append(HeadSite(name, module, "explicit", int(module.num_heads)))
    return sites


def select_sites(model: nn.Module, blocks: str | int = "last") -> list[HeadSite]:
    """The sites ``blocks`` names: ``"last"``, ``"all"`` or a block index (negative from the end); a
    model without reachable heads is a one-line :class:`QxaiError` saying what is supported."""
    sites = head_sites(model)
    if not sites:
        raise QxaiError(
            f"{type(model).__name__} has no attention heads qxai can reach; qa-heads supports {SUPPORTED}"
            " — use qa or gradcam at a layer of this model"
        )
    if blocks == "all":
        return sites
    if blocks == "last":
        return sites[-1:]
    if isinstance(blocks, int) and not isinstance(blocks, bool) and -len(sites) <= blocks < len(sites):
        return [sites[blocks]]
    raise QxaiError(
        f"blocks must be 'last', 'all' or a block index in 0..{len(sites) - 1}, got {blocks!r}; "
        "e.g. blocks='all'"
    )


def head_labels(sites: Sequence[HeadSite]) -> tuple[str, ...]:
    """``("blocks.3.attn:h0", …)``: the variable index → head, in the order of ``sites``."""
    return tuple(f"{s.name}:h{h}" for s in sites for h in range(s.num_heads))


# --------------------------------------------------------------------------- nn.MultiheadAttention


_MHA_SIGNATURE = inspect.signature(nn.MultiheadAttention.forward)


def _mha_arguments(module: nn.MultiheadAttention, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bound = _MHA_SIGNATURE.bind(module, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def mha_heads(
    module: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head outputs ``(B, heads, T, d_head)`` and attention probabilities ``(B, heads, T, S)`` of
    ``module`` on ``query``/``key``/``value`` (``(B, T, E)`` with ``batch_first``, else ``(T, B, E)``),
    recomputed from its weights as ``nn.MultiheadAttention`` computes them in eval mode (no masks):
    ``softmax(q kᵀ / √d_head) v`` per head. ``module.out_proj`` of the merged heads is its output.

    A variant the recomputation would not reproduce (``bias_k``/``bias_v``, ``add_zero_attn``) is a
    one-line :class:`QxaiError`.
    """
    if module.bias_k is not None or module.bias_v is not None or module.add_zero_attn:
        raise QxaiError(
            "nn.MultiheadAttention with bias_k/bias_v or add_zero_attn: qa-heads cannot recompute its "
            "heads; use rollout or a layer method"
        )
    if not module.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    e, h = module.embed_dim, module.num_heads
    dh = e // h
    bias = module.in_proj_bias
    bq, bk, bv = bias.chunk(3) if bias is not None else (None, None, None)
    if module._qkv_same_embed_dim:
        wq, wk, wv = module.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
    b, t, s = query.shape[0], query.shape[1], key.shape[1]
    q = F.linear(query, wq, bq).view(b, t, h, dh).transpose(1, 2)
    k = F.linear(key, wk, bk).view(b, s, h, dh).transpose(1, 2)
    v = F.linear(value, wv, bv).view(b, s, h, dh).transpose(1, 2)
    probs = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(dh), dim=-1)
    return probs @ v, probs


def merge_heads(module: nn.MultiheadAttention, heads: torch.Tensor) -> torch.Tensor:
    """``module.out_proj`` of per-head outputs ``(B, heads, T, d_head)``, in the module's layout."""
    b, h, t, dh = heads.shape
    out = module.out_proj(heads.transpose(1, 2).reshape(b, t, h * dh))
    return out if module.batch_first else out.transpose(0, 1)


# --------------------------------------------------------------------------- hooks


class HeadHooks:
    """Within the block, every forward pass records each site's per-head outputs ``(B, heads, T,
    d_head)`` and attention probabilities ``(B, heads, T, T)`` (detached), and multiplies each head's
    output by its gate (``gates[i]`` ``(B, heads)`` for ``sites[i]``, None: untouched) before the
    heads are merged. The hooks are registered on entry and released on every exit path.

    For an ``nn.MultiheadAttention`` the module's output is replaced by the one rebuilt from the
    recomputed heads (:func:`mha_heads`); with no gate (or all gates 1, the importance pass) the
    rebuilt output is checked against the module's own to :func:`mha_tolerance`, so a module the
    recomputation does not reproduce is an
    error, never a silent wrong answer.
    """

    def __init__(
        self, sites: Sequence[HeadSite], gates: Sequence[torch.Tensor | None] | None = None,
        *, check: bool = True,
    ) -> None:  # fmt: skip
        self.sites = list(sites)
        self.gates = list(gates) if gates is not None else [None] * len(self.sites)
        if len(self.gates) != len(self.sites):
            raise QxaiError(
                f"{len(self.gates)} gates for {len(self.sites)} attention blocks; give one per block"
            )
        self.check = check
        self.outputs: list[torch.Tensor | None] = [None] * len(self.sites)
        self.probs: list[torch.Tensor | None] = [None] * len(self.sites)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> HeadHooks:
        try:
            for i, site in enumerate(self.sites):
                if site.kind == "mha":
                    self._handles.append(
                        site.module.register_forward_hook(self._mha_hook(i), with_kwargs=True)
                    )
                else:
                    self._handles.append(site.module.heads.register_forward_hook(self._heads_hook(i)))
                    self._handles.append(site.module.softmax.register_forward_hook(self._probs_hook(i)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Release every hook (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _gate(self, i: int, heads: torch.Tensor) -> torch.Tensor:
        site, gate = self.sites[i], self.gates[i]
        if heads.ndim != 4 or heads.shape[1] != site.num_heads:
            raise QxaiError(
                f"attention '{site.name}' gives per-head outputs {tuple(heads.shape)}, not (B, "
                f"{site.num_heads}, T, d_head); qa-heads supports {SUPPORTED}"
            )
        self.outputs[i] = heads.detach()
        if gate is None:
            return heads
        if gate.shape != heads.shape[:2]:
            raise QxaiError(
                f"gate of '{site.name}' is {tuple(gate.shape)}, expected (B, heads) {tuple(heads.shape[:2])}"
            )
        return heads * gate.to(heads.dtype)[:, :, None, None]

    def _heads_hook(self, i: int) -> Any:
        def hook(_m: nn.Module, _args: object, output: torch.Tensor) -> torch.Tensor:
            return self._gate(i, output)

        return hook

    def _probs_hook(self, i: int) -> Any:
        def hook(_m: nn.Module, _args: object, output: torch.Tensor) -> None:
            self.probs[i] = output.detach()

        return hook

    def _mha_hook(self, i: int) -> Any:
        site = self.sites[i]

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            bound = _mha_arguments(module, args, kwargs)
            masked = [k for k in ("key_padding_mask", "attn_mask") if bound[k] is not None]
            if masked or bound["is_causal"]:
                raise QxaiError(
                    f"attention '{site.name}' is called with {', '.join(masked) or 'is_causal'}; qa-heads "
                    "recomputes unmasked vision attention only"
                )
            heads, probs = mha_heads(module, bound["query"], bound["key"], bound["value"])
            self.probs[i] = probs.detach()
            out = merge_heads(module, self._gate(i, heads))
            gate = self.gates[i]
            if self.check and (gate is None or bool((gate.detach() == 1).all())):
                own = output[0]
                err = float((out.detach() - own.detach()).abs().max())
                if not err <= mha_tolerance(module, own):
                    raise QxaiError(
                        f"attention '{site.name}': the heads recomputed from its weights rebuild its output "
                        f"only to {err:.3g}; it is not a standard nn.MultiheadAttention, so qa-heads cannot "
                        "read its heads"
                    )
            return (out, *tuple(output[1:]))

        return hook


def mha_tolerance(module: nn.MultiheadAttention, output: torch.Tensor) -> float:
    """How far a recomputation of ``module``'s output may differ from torch's in ``output``'s dtype:
    ``8 · E · eps · max(1, max|output|)`` — a dot product of length ``E`` (the embedding size, the
    longest accumulation: the in- and out-projections) rounds differently in a different kernel by
    up to about ``E · eps`` of its scale; the factor covers the three projections and the softmax.
    """
    eps = torch.finfo(output.dtype).eps
    return 8.0 * module.embed_dim * eps * max(1.0, float(output.detach().abs().max()))


@contextlib.contextmanager
def gated_heads(
    model: nn.Module, sites: Sequence[HeadSite], gates: Sequence[torch.Tensor | None]
) -> Iterator[HeadHooks]:
    """:class:`HeadHooks` as a plain context manager (eval mode is the caller's)."""
    refuse_torchscript(model)
    with HeadHooks(sites, gates) as hooks:
        yield hooks


# --------------------------------------------------------------------------- one forward + backward


@dataclass
class HeadPass:
    """What one forward + backward pass gives for a batch of ``B`` images over ``d`` heads.

    Attributes:
        weights: ``(B, d)`` float64 importances ``α_h = ∂z/∂ξ_h``.
        outputs: per site, ``(B, heads, T, d_head)`` the heads' outputs (detached).
        probs: per site, ``(B, heads, T, T)`` the heads' attention probabilities (detached).
        logits: ``(B, K)``; targets: ``(B,)``.
    """

    weights: np.ndarray
    outputs: list[torch.Tensor]
    probs: list[torch.Tensor]
    logits: torch.Tensor
    targets: torch.Tensor


def head_pass(
    model: nn.Module, sites: Sequence[HeadSite], inputs: torch.Tensor, target: Any = None
) -> HeadPass:
    """One forward + one backward pass: the heads' outputs, probabilities and importances for the
    ``target`` logit (None: predicted class, from this pass; an int; or ``(B,)``). Call in eval mode."""
    b = len(inputs)
    gates = [torch.ones(b, s.num_heads, dtype=inputs.dtype, device=inputs.device, requires_grad=True)
             for s in sites]  # fmt: skip
    with HeadHooks(sites, gates) as hooks, torch.enable_grad():
        logits = model(inputs.detach())
        missing = [s.name for s, o in zip(sites, hooks.outputs, strict=True) if o is None]
        if missing:
            raise QxaiError(
                f"attention '{missing[0]}' did not run for this input; pick blocks on the forward path"
            )
        chosen = target_classes(target, b, logits.detach()).to(logits.device)
        grads = torch.autograd.grad(logits.gather(1, chosen.view(-1, 1)).sum(), gates, allow_unused=True)
    weights = torch.cat(
        [torch.zeros_like(g) if d is None else d for g, d in zip(gates, grads, strict=True)], dim=1
    )
    return HeadPass(
        weights.detach().double().cpu().numpy(), [o for o in hooks.outputs if o is not None],
        [p for p in hooks.probs if p is not None], logits.detach(), chosen.cpu(),
    )  # fmt: skip


def head_features(sites: Sequence[HeadSite], outputs: Sequence[torch.Tensor], redundancy: str) -> np.ndarray:
    """``(B, d, F)`` float64: each head's vector for the |cos| redundancy — its output flattened over
    ``T × d_head`` (``"output"``) or its write into the residual stream ``O_h W_o[:, h]ᵀ`` over
    ``T × dim`` (``"residual"``)."""
    feats = []
    for site, out in zip(sites, outputs, strict=True):
        b, h, _, dh = out.shape
        if redundancy == "residual":
            w = site.out_weight.detach().to(out).view(-1, h, dh)  # (dim, heads, d_head)
            out = torch.einsum("bhtj,dhj->bhtd", out, w)
        feats.append(out.reshape(b, h, -1).double().cpu())
    sizes = {f.shape[2] for f in feats}
    if len(sizes) > 1:
        raise QxaiError(
            "the chosen attention blocks have heads of different sizes; pick blocks='last' or one block"
        )
    return torch.cat(feats, dim=1).numpy()


# --------------------------------------------------------------------------- the explainer


class QAHeadsExplainer(Explainer):
    """Select the attention heads that explain each decision by annealing an explanation QUBO.

    Args:
        model: a Transformer classifier with reachable heads (:data:`SUPPORTED`).
        layer: ignored (the heads are chosen by ``blocks``); accepted so the registry can pass it.
        blocks: ``"last"`` (default), ``"all"`` or a block index.
        solver, qubo, seed, solver_options, ground_truth, ground_time_limit, ``**qubo_fields``: as
            :class:`qxai.explain.qa.QAFeatureMapExplainer` (default solver: QA's).
        redundancy: ``"output"`` (default) or ``"residual"`` (see the module docstring).

    ``explain`` returns an :class:`Explanation` whose extras hold, per image: ``selected`` (sorted
    head indices, see ``head_labels``), ``energy``, ``ground_energy``, ``ground_certified``,
    ``num_variables``, ``over_solver_limit``, ``live_maps``/``dead_maps`` (heads not dead / with
    α > 0 left out as dead), ``positive_weights``, ``degenerate`` (:func:`qxai.explain.quality.image_flags`
    of the image: None, or why it has no explanation — empty selection, all-zero importance, …),
    ``solver_seconds``, ``ground_seconds``; ``head_weights`` ``(B, d)`` (also as
    ``channel_weights``, which :mod:`qxai.explain.quality` reads); and, for the batch,
    ``head_labels`` (a tuple of ``d`` names), ``blocks`` (the attention modules) and ``solver``.
    """

    name = "qa-heads"

    def __init__(
        self, model: nn.Module, layer: str | None = None, *, blocks: str | int = "last",
        solver: str = DEFAULT_SOLVER, qubo: QuboOptions | dict[str, Any] | None = None, seed: int = 0,
        solver_options: dict[str, Any] | None = None, ground_truth: str = "auto",
        ground_time_limit: float = GROUND_TIME_LIMIT, redundancy: str = "output", **qubo_fields: Any,
    ) -> None:  # fmt: skip
        super().__init__(model)
        self.sites = select_sites(model, blocks)
        self.blocks = blocks
        if ground_truth not in GROUND_TRUTH_MODES:
            raise QxaiError(
                f"ground_truth must be one of {', '.join(GROUND_TRUTH_MODES)}, got '{ground_truth}'"
            )
        if redundancy not in REDUNDANCIES:
            raise QxaiError(f"redundancy must be one of {', '.join(REDUNDANCIES)}, got '{redundancy}'")
        if not ground_time_limit > 0:
            raise QxaiError(f"ground_time_limit must be > 0 seconds, got {ground_time_limit}; give e.g. 10")
        if redundancy == "residual":
            for site in self.sites:
                _ = site.out_weight  # a missing projection fails here, not mid-run
        self.qubo = QuboOptions.of(qubo, **qubo_fields)
        self.redundancy = redundancy
        self.solver = solver
        self.seed = seed
        self.solver_options = dict(solver_options or {})
        self.ground_truth = ground_truth
        self.ground_time_limit = float(ground_time_limit)
        self.sampler = get_sampler(solver, **self.solver_options)
        self.labels = head_labels(self.sites)

    @property
    def num_heads(self) -> int:
        """``d``, the number of candidate heads."""
        return len(self.labels)

    def build_qubos(
        self, inputs: torch.Tensor, target: Any = None
    ) -> tuple[HeadPass, list[tuple[dimod.BinaryQuadraticModel, np.ndarray]], np.ndarray]:
        """``(pass, qubos, live)`` for ``inputs`` (B, C, H, W): the head pass, one ``(bqm, kept)`` per
        image (:func:`qxai.anneal.qubo.explanation_qubos`) and ``(B, d)`` which heads are not dead."""
        inputs = check_inputs(inputs)
        with eval_mode(self.model):
            return self._build(inputs, target)

    def _build(
        self, inputs: torch.Tensor, target: Any
    ) -> tuple[HeadPass, list[tuple[dimod.BinaryQuadraticModel, np.ndarray]], np.ndarray]:
        hp = head_pass(self.model, self.sites, inputs, target)
        feats = head_features(self.sites, hp.outputs, self.redundancy)
        return hp, explanation_qubos(hp.weights, feats, self.qubo), live_maps(feats, self.qubo.dead_eps)

    def explain(self, inputs: torch.Tensor, target: Any = None) -> Explanation:
        """Explain ``(B, C, H, W)`` for ``target`` (None: predicted class; int; ``(B,)``), one forward +
        one backward pass in all; ``seconds`` excludes the exact-optimum check (as QA's)."""
        inputs = check_inputs(inputs)
        start = time.perf_counter()
        with eval_mode(self.model):
            result = self._solve(*self._build(inputs, target), inputs)
        result.seconds = time.perf_counter() - start - sum(result.extras["ground_seconds"])
        return result

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        return self._solve(*self._build(inputs, targets), inputs)

    def _solve(
        self, hp: HeadPass, qubos: list[tuple[dimod.BinaryQuadraticModel, np.ndarray]], live: np.ndarray,
        inputs: torch.Tensor,
    ) -> Explanation:  # fmt: skip
        from qxai.explain.quality import image_flags

        bqms = [bqm for bqm, _ in qubos]
        limit = solver_max_variables(self.sampler)
        over = [limit is not None and len(bqm.variables) > limit for bqm in bqms]
        chosen, selected, energies, solver_seconds = solve_selections(
            self.sampler, bqms, over, hp.weights.shape[1], self.seed
        )
        b = len(bqms)
        saliency = self._saliency(hp, chosen, inputs)
        ground, ground_seconds = ground_truth_extras(
            bqms, energies, self.ground_truth, self.ground_time_limit
        )
        extras: dict[str, Any] = {
            "selected": selected,
            "energy": energies,
            **ground,
            "num_variables": [len(bqm.variables) for bqm in bqms],
            "over_solver_limit": over,
            "dead_maps": [int(n) for n in ((hp.weights > 0) & ~live).sum(axis=1)],
            "live_maps": [int(n) for n in live.sum(axis=1)],
            "positive_weights": [int(n) for n in (hp.weights > 0).sum(axis=1)],
            "head_weights": hp.weights,
            "channel_weights": hp.weights,
            "head_labels": self.labels,
            "blocks": tuple(s.name for s in self.sites),
            "solver": self.solver,
            "solver_seconds": [solver_seconds / max(b, 1)] * b,
            "ground_seconds": [ground_seconds / max(b, 1)] * b,
        }
        extras["degenerate"] = image_flags(extras, saliency)
        return Explanation(saliency, hp.targets.numpy(), self.name, extras=extras)

    def _saliency(self, hp: HeadPass, chosen: np.ndarray, inputs: torch.Tensor) -> np.ndarray:
        """``normalise(Σ_{h∈S} α_h a_h)`` upsampled: ``(B, H, W)`` float32 (all zero for an empty ``S``)."""
        b, t = hp.probs[0].shape[0], hp.probs[0].shape[-1]
        size = (int(inputs.shape[2]), int(inputs.shape[3]))
        layout = detect_layout(
            (b, t, 1), size, b, layer=self.sites[0].name, patch=model_patch_size(self.model),
            prefix=model_prefix_tokens(self.model), stated=stated_layout(self.model),
        )  # fmt: skip
        rows = torch.cat([p[:, :, 0, :] if layout.prefix else p.mean(dim=2) for p in hp.probs], dim=1)
        rows = rows[:, :, layout.prefix :].double().cpu()  # (B, d, h·w)
        weight = torch.as_tensor(hp.weights * chosen)  # zero outside S
        grid = torch.einsum("bd,bdk->bk", weight, rows).reshape(b, 1, *layout.grid).float()
        up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0]
        return normalise_maps(up)


__all__ = [
    "BLOCK_CHOICES",
    "DEFAULT_SOLVER",
    "HeadHooks",
    "HeadPass",
    "HeadSite",
    "QAHeadsExplainer",
    "gated_heads",
    "head_features",
    "head_labels",
    "head_pass",
    "head_sites",
    "merge_heads",
    "mha_heads",
    "mha_tolerance",
    "select_sites",
]
