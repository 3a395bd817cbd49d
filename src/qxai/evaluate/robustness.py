"""Robustness of an explanation to small input changes, with Quantus' definitions, batched.

Six scores of a map explanation ``e(x)`` (lower is more robust), each the worst (or mean) over ``S``
perturbed copies ``x_s`` of an image, explained for the same target (Quantus 0.6.0 is the reference;
``tests/evaluate/test_robustness.py`` shows equality with it on fixed perturbations):

- max / avg sensitivity (Yeh et al. 2019): ``‖e(x) − e(x_s)‖₂ / ‖e(x)‖₂``, max (avg) over ``s``;
  ``x_s = x + U(−0.2, 0.2)`` per pixel; a perturbation that changes the prediction is kept.
- local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018): ``‖ê(x) − ê(x_s)‖₂ / (‖x − x_s‖₂ + 1e−10)``,
  max over ``s``; ``ê = e / max|e|`` (Quantus normalises by the maximum); ``x_s = x + N(0, 0.1²)``.
- relative input / output / representation stability (Agarwal et al. 2022):
  ``‖(e(x) − e(x_s)) ⊘ e(x)‖₂`` over, respectively, ``‖(x − x_s) ⊘ x‖₂``, ``‖z(x) − z(x_s)‖₂`` (the
  logits) and ``‖(h(x) − h(x_s)) ⊘ h(x)‖₂`` (every hidden module's output), max over ``s``, where a
  zero in a divisor is replaced by 1e−6 (so is a zero norm); ``x_s = x + U(0.02, 0.2)``; an image any
  of whose perturbations changes the prediction scores NaN (Quantus' default for these three).

What differs from Quantus, on purpose: the ``S·B`` copies are explained in batches of any size
(Quantus loops over ``s`` in Python, one explainer call per sample); each image's noise comes from its
own generator ``(seed, "robustness", family, image id)``, so a sharded run or another batch size draws
the same copies; :math:`ê` is normalised per image (Quantus divides a whole batch by its one
maximum, so an image's score depends on its batch-mates; per image equals Quantus called per image);
hidden outputs are copied when captured (Quantus keeps a view, which a later in-place ReLU changes).

>>> import torch
>>> torch.manual_seed(0) and None
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
>>> x, t = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
>>> explain = lambda xs, ts: xs[:, 0].numpy() * net[1].weight[ts].detach().view(-1, 4, 4).numpy()
>>> s = perturb_and_explain(net, explain, x, t, explain(x, t), FAMILIES["sensitivity"], samples=4, seed=0)
>>> s.explanations.shape, bool((sensitivity(s, "max") >= sensitivity(s, "mean")).all())
((4, 2, 16), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.evaluate.statistics import column_reduce
from qxai.probe import eval_mode
from qxai.seeding import numpy_rng

#: Quantus' divisor guard (``eps_min``) of the relative stabilities and the Lipschitz estimate's ``eps``
EPS_MIN = 1e-6
LIPSCHITZ_EPS = 1e-10

Explain = Callable[[torch.Tensor, torch.Tensor], np.ndarray]


@dataclass(frozen=True)
class Perturbation:
    """One noise family: ``uniform`` on ``[low, high]`` or ``gaussian`` with ``mean`` and ``std``."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    std: float = 0.0

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, size=shape)
        return rng.normal(self.mean, self.std, size=shape)

    def describe(self) -> str:
        if self.kind == "uniform":
            return f"x + U({self.low:g}, {self.high:g}) per pixel"
        return f"x + N({self.mean:g}, {self.std:g}²) per pixel"


#: Quantus 0.6.0's default perturbation of each metric family (``batch_uniform_noise`` with
#: ``lower_bound=0.2``; ``batch_gaussian_noise`` with ``perturb_std=0.1``; ``batch_uniform_noise``
#: with ``upper_bound=0.2`` over the default ``lower_bound=0.02``)
FAMILIES: dict[str, Perturbation] = {
    "sensitivity": Perturbation("uniform", low=-0.2, high=0.2),
    "lipschitz": Perturbation("gaussian", mean=0.0, std=0.1),
    "stability": Perturbation("uniform", low=0.02, high=0.2),
}


@dataclass
class PerturbedSample:
    """The copies of ``B`` images and what the model and the explainer give on them.

    ``inputs`` (B, P) and ``perturbed`` (S, B, P) float64 pixels; ``explanation`` (B, Q) and
    ``explanations`` (S, B, Q) the maps, flattened; ``logits`` (B, K) and ``perturbed_logits`` (S, B, K)
    (None when the copies were not run through the model);
    ``representation_change`` (S, B): ``‖(h(x) − h(x_s)) ⊘ h(x)‖₂`` over every hidden module's output
    ``h`` (only when asked for; the outputs themselves are not kept); ``flipped`` (S, B): the copy's
    predicted class differs from the image's; ``extras``: the explainer's per-copy extras in the
    copies' order (``s``-major), e.g. QA's selected sets.
    """

    inputs: np.ndarray
    perturbed: np.ndarray
    explanation: np.ndarray
    explanations: np.ndarray
    logits: np.ndarray
    perturbed_logits: np.ndarray | None
    flipped: np.ndarray | None
    representation_change: np.ndarray | None = None
    extras: dict | None = None


def perturbations(
    images: torch.Tensor, family: Perturbation, samples: int, seed: int, ids: Sequence[int] | None = None,
    stream: str = "",
) -> np.ndarray:  # fmt: skip
    """``(S, B, C, H, W)`` float64 copies ``x + noise``; image ``b``'s noise from the generator
    ``(seed, "robustness", stream, ids[b])`` alone (``ids`` default ``0..B−1``), its ``S`` draws in order.

    >>> p = perturbations(torch.zeros(3, 1, 2, 2), FAMILIES["stability"], 5, seed=0, ids=[4, 5, 6])
    >>> p.shape, bool((p >= 0.02).all() and (p <= 0.2).all())
    ((5, 3, 1, 2, 2), True)
    >>> bool(np.array_equal(p[:, 1], perturbations(torch.zeros(1, 1, 2, 2), FAMILIES["stability"], 5,
    ...                                                   seed=0, ids=[5])[:, 0]))
    True
    """
    x = images.detach().cpu().numpy().astype(np.float64)
    ids = list(range(len(x))) if ids is None else [int(i) for i in ids]
    if len(ids) != len(x):
        raise QxaiError(f"{len(ids)} image ids for {len(x)} images; give one id per image")
    out = np.empty((samples, *x.shape))
    for b, item in enumerate(ids):
        rng = numpy_rng(seed, "robustness", stream or family.kind, item)
        out[:, b] = x[b] + family.draw(rng, (samples, *x.shape[1:]))
    return out


def hidden_outputs(model: torch.nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (B, K), hidden (B, R))``: one forward, every module's output flattened and joined in
    the order the modules run, except containers (``nn.Sequential``, modules of the model's own class)
    — Quantus' ``get_hidden_representations`` with no layer named."""
    skip = (type(model), torch.nn.Sequential)
    captured: list[torch.Tensor] = []

    def keep(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> None:
        captured.append(out.detach().reshape(len(inputs), -1).clone())

    modules = [m for name, m in model.named_modules() if name and not isinstance(m, skip)]
    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        with torch.no_grad():
            logits = model(inputs)
    finally:
        for h in handles:
            h.remove()
    if not captured:
        raise QxaiError("the model has no hidden module to read a representation from; "
                        "relative_representation_stability needs one")  # fmt: skip
    return logits, torch.cat(captured, dim=1)


def perturb_and_explain(
    model: torch.nn.Module, explain: Explain, images: torch.Tensor, targets: torch.Tensor,
    explanation: np.ndarray, family: Perturbation, *, samples: int, seed: int,
    ids: Sequence[int] | None = None, batch_size: int = 128, hidden: bool = False, outputs: bool = True,
    extras: Callable[[], dict] | None = None,
) -> PerturbedSample:  # fmt: skip
    """Draw ``samples`` copies of each of ``images`` (B, C, H, W), explain them all for ``targets``
    (B,) in batches of ``batch_size`` and run the model on them.

    ``explain(x, t) -> (n, H', W')`` maps; ``explanation`` (B, H', W') the images' own maps.
    ``hidden``: also measure the change of every hidden module's output (representation stability);
    ``outputs=False``: skip the copies' forwards (no logits, ``flipped`` None) when no score reads them.
    ``extras``: called after the explanations, its dict is kept as :attr:`PerturbedSample.extras`.
    """
    if samples < 1:
        raise QxaiError(f"samples must be ≥ 1, got {samples}")
    b = len(images)
    copies = perturbations(images, family, samples, seed, ids)
    flat = torch.as_tensor(copies.reshape(samples * b, *images.shape[1:]), dtype=torch.float32)
    repeated = torch.as_tensor(targets).repeat(samples)
    maps = np.concatenate([
        np.asarray(explain(flat[s : s + batch_size], repeated[s : s + batch_size]), dtype=np.float64)
        for s in range(0, len(flat), batch_size)
    ])  # fmt: skip
    kept = extras() if extras is not None else None

    def run(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        with eval_mode(model):
            if hidden:
                z, h = hidden_outputs(model, x)
                return z.double().numpy(), h.double().numpy()
            with torch.no_grad():
                return model(x).double().numpy(), None

    clean = [run(images[s : s + batch_size].float()) for s in range(0, b, batch_size)]
    logits_x = np.concatenate([p[0] for p in clean])
    hidden_x = np.concatenate([p[1] for p in clean]) if hidden else None  # type: ignore[misc]
    # the copies' forwards only where a score reads them (the flip rule, ROS, RRS): the sensitivity
    # and Lipschitz scores keep a flipped copy, as Quantus does, and need the explanations alone
    logits_xs = flipped = change = None
    if outputs or hidden:
        logits_xs = np.empty((samples * b, logits_x.shape[1]))
        change = np.empty(samples * b) if hidden else None
        for start in range(0, len(flat), batch_size):
            z, h = run(flat[start : start + batch_size])
            logits_xs[start : start + len(z)] = z
            if hidden_x is not None and change is not None and h is not None:
                # each copy's relative representation change, kept instead of the (S·B, R) outputs
                ref = hidden_x[np.arange(start, start + len(z)) % b]
                change[start : start + len(z)] = _norm((ref - h) / _safe(ref))
        logits_xs = logits_xs.reshape(samples, b, -1)
        flipped = logits_xs.argmax(axis=-1) != logits_x.argmax(axis=-1)[None, :]
    return PerturbedSample(
        images.detach().cpu().numpy().astype(np.float64).reshape(b, -1), copies.reshape(samples, b, -1),
        np.asarray(explanation, dtype=np.float64).reshape(b, -1), maps.reshape(samples, b, -1),
        logits_x, logits_xs, flipped, None if change is None else change.reshape(samples, b), extras=kept,
    )  # fmt: skip


def _norm(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a, axis=-1)


def _safe(a: np.ndarray) -> np.ndarray:
    """``a`` with its zeros replaced by :data:`EPS_MIN` (Quantus' ``a + (a == 0)·eps_min``)."""
    return a + (a == 0) * EPS_MIN


def sensitivity(s: PerturbedSample, reduce: str = "max") -> np.ndarray:
    """``(B,)`` max (``reduce="max"``) or mean sensitivity; NaN for an all-zero explanation (0/0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _norm(s.explanation[None] - s.explanations) / _norm(s.explanation)[None]
    return column_reduce(ratio, np.nanmax if reduce == "max" else np.nanmean)


def max_normalised(a: np.ndarray) -> np.ndarray:
    """Each row (last axis) divided by its largest |value|; an all-zero row is left as it is."""
    peak = np.abs(a).max(axis=-1, keepdims=True)
    return np.divide(a, peak, out=np.array(a, dtype=np.float64, copy=True), where=peak > 0)


def local_lipschitz(s: PerturbedSample, normalise: bool = True) -> np.ndarray:
    """``(B,)`` the local Lipschitz estimate (max over the copies)."""
    e_x, e_xs = (max_normalised(s.explanation), max_normalised(s.explanations)) if normalise else (
        s.explanation, s.explanations)  # fmt: skip
    ratio = _norm(e_x[None] - e_xs) / (_norm(s.inputs[None] - s.perturbed) + LIPSCHITZ_EPS)
    return column_reduce(ratio, np.nanmax)


def _explanation_change(s: PerturbedSample) -> np.ndarray:
    return _norm((s.explanation[None] - s.explanations) / _safe(s.explanation)[None])


def _relative(s: PerturbedSample, denominator: np.ndarray) -> np.ndarray:
    """Max over the copies of ``‖Δe ⊘ e‖ / denominator``; NaN where any copy flips the prediction."""
    ratio = _explanation_change(s) / _safe(denominator)
    if s.flipped is None:
        raise QxaiError("the sample holds no predictions of its copies; draw it with outputs=True")
    ratio = np.where(s.flipped, np.nan, ratio)
    return np.max(ratio, axis=0)  # NaN propagates: one flipped copy makes the image NaN (Quantus)


def relative_input_stability(s: PerturbedSample) -> np.ndarray:
    """``(B,)`` RIS: explanation change over the relative input change."""
    return _relative(s, _norm((s.inputs[None] - s.perturbed) / _safe(s.inputs)[None]))


def relative_output_stability(s: PerturbedSample) -> np.ndarray:
    """``(B,)`` ROS: explanation change over the change of the logits."""
    if s.perturbed_logits is None:
        raise QxaiError("the sample holds no predictions of its copies; draw it with outputs=True")
    return _relative(s, _norm(s.logits[None] - s.perturbed_logits))


def relative_representation_stability(s: PerturbedSample) -> np.ndarray:
    """``(B,)`` RRS: explanation change over the relative change of every hidden output."""
    if s.representation_change is None:
        raise QxaiError("the sample holds no hidden outputs; draw it with hidden=True")
    return _relative(s, s.representation_change)


__all__ = [
    "EPS_MIN", "FAMILIES", "Perturbation", "PerturbedSample", "hidden_outputs", "local_lipschitz",
    "max_normalised", "perturb_and_explain", "perturbations", "relative_input_stability",
    "relative_output_stability", "relative_representation_stability", "sensitivity",
]  # fmt: skip
