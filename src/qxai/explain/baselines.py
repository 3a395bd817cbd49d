"""The established explainers, each from its reference library, behind the one-verb interface.

=============  ==================  ===========================================================
name           library             pixel map ``(B, H, W)``
=============  ==================  ===========================================================
``gradcam``    pytorch-grad-cam    ReLU(Σ_k α_k A^k) at ``layer``, upsampled (bilinear)
``gradcam++``  pytorch-grad-cam    as GradCAM with the GradCAM++ weights
``eigencam``   pytorch-grad-cam    first principal component of the maps (no gradient)
``ig``         captum              positive part of the channel sum of Integrated Gradients
``shap``       captum              positive part of the channel sum of GradientShap
``lime``       captum (Lime)       positive part of the per-segment Lasso weights
``lrp``        zennit              positive part of the channel sum of EpsilonPlusFlat relevance
=============  ==================  ===========================================================

The CAMs read the layer as ``(B, N, h, w)`` maps whatever its layout — a Transformer's patch tokens
or a channels-last stage through :func:`qxai.probe.tokens.layer_maps`, given to pytorch-grad-cam as
its ``reshape_transform`` — so they run unchanged on ViT- and Swin-style models. Every map is
min–max normalised to ``[0, 1]`` per image. The "positive part" keeps the evidence
*for* the target class, which is what deletion/insertion and the pointing game measure; pass
``reduce="abs"`` to the pixel methods for ``Σ_c |attr|`` instead. Randomised methods (SHAP, LIME) draw
from the explainer's ``seed`` only, in a scoped generator: same seed, same map.

>>> import torch
>>> torch.manual_seed(0) and None
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
...                           torch.nn.Linear(4 * 6 * 6, 3))
>>> exp = GradCAMExplainer(net, "1").explain(torch.rand(2, 1, 6, 6), target=0)
>>> exp.saliency.shape, exp.extras["channel_weights"].shape
((2, 6, 6), (2, 4))
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.explain.base import Explainer, Explanation, normalise_maps, resolve_targets
from qxai.probe import Target, eval_mode, resolve_layer
from qxai.probe.tokens import layer_maps

REDUCTIONS = ("positive", "abs")


@contextlib.contextmanager
def scoped_rng(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators for the block, then restore them.

    captum draws from the global generators (GradientShap from ``np.random``, Lime from
    ``torch.bernoulli``), so this is the only way to make them follow our seed without side effects.
    """
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(state)


def reduce_channels(attr: torch.Tensor, how: str) -> np.ndarray:
    """``(B, C, H, W)`` attributions → ``(B, H, W)`` maps in ``[0, 1]``.

    ``positive``: ReLU of the channel sum (evidence for the class); ``abs``: sum of ``|attr|``.

    >>> reduce_channels(torch.tensor([[[[1.0, -2.0]], [[1.0, 0.0]]]]), "positive").tolist()
    [[[1.0, 0.0]]]
    """
    if how == "positive":
        maps = attr.sum(dim=1).clamp(min=0)
    elif how == "abs":
        maps = attr.abs().sum(dim=1)
    else:
        raise QxaiError(f"reduce must be one of {', '.join(REDUCTIONS)}, got '{how}'")
    return normalise_maps(maps.detach().float())


def _check_reduce(how: str) -> str:
    if how not in REDUCTIONS:
        raise QxaiError(f"reduce must be one of {', '.join(REDUCTIONS)}, got '{how}'")
    return how


# --------------------------------------------------------------------------- CAMs (pytorch-grad-cam)


class _CAMExplainer(Explainer):
    """A pytorch-grad-cam method on one layer; records the library's own channel weights."""

    cam_class: Any = None

    def __init__(self, model: torch.nn.Module, layer: str, *, seed: int = 0) -> None:
        super().__init__(model)
        self.layer = layer
        self.module = resolve_layer(model, layer)
        self.seed = seed

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        recorded: list[np.ndarray] = []
        # the layer read as (B, N, h, w) maps whatever its layout (token grid, channels-last stage)
        to_maps = layer_maps(self.model, self.layer, inputs)
        cam = _recording(self.cam_class, recorded)(self.model, [self.module], reshape_transform=to_maps)
        try:
            maps = cam(inputs, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        except QxaiError as err:  # the layout of the layer (qxai.probe.tokens), said for this method
            text, own = str(err), f"layer '{self.layer}' "
            text = f"it {text[len(own) :]}" if text.startswith(own) else text
            raise QxaiError(f"{self.name} cannot use layer '{self.layer}': {text}") from None
        except (ValueError, IndexError) as err:  # numpy AxisError is both
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise QxaiError(
                f"{self.name} cannot use layer '{self.layer}' ({first}); choose a convolutional layer "
                "(B×N×H×W) or a Transformer block"
            ) from None
        finally:
            cam.activations_and_grads.release()  # the library's __exit__ would swallow IndexError
        extras: dict[str, Any] = {}
        if recorded:
            extras["channel_weights"] = np.asarray(recorded[0], dtype=np.float32)
        return Explanation(normalise_maps(maps), targets.numpy(), self.name, extras=extras)


def _recording(cam_class: Any, recorded: list[np.ndarray]) -> Any:
    """A subclass of ``cam_class`` that keeps the weights its ``get_cam_weights`` returns."""

    class Recording(cam_class):  # type: ignore[misc, valid-type]
        def get_cam_weights(self, *args: Any, **kwargs: Any) -> np.ndarray:
            weights = super().get_cam_weights(*args, **kwargs)
            recorded.append(np.array(weights, copy=True))
            return weights

    return Recording


class GradCAMExplainer(_CAMExplainer):
    """Grad-CAM (pytorch-grad-cam): ``ReLU(Σ_k α_k A^k)``, ``α_k`` the spatial mean gradient.

    extras: ``channel_weights`` ``(B, N_f)`` — the library's α, used as "activated maps" (α > 0).
    """

    name = "gradcam"

    def __init__(self, model: torch.nn.Module, layer: str, *, seed: int = 0) -> None:
        from pytorch_grad_cam import GradCAM

        self.cam_class = GradCAM
        super().__init__(model, layer, seed=seed)


class GradCAMPlusPlusExplainer(_CAMExplainer):
    """Grad-CAM++ (pytorch-grad-cam); extras ``channel_weights`` ``(B, N_f)``: the ++ weights, which are
    mostly positive but not by construction (the coefficients' denominator 2g² + ΣA·g³ can be negative)."""

    name = "gradcam++"

    def __init__(self, model: torch.nn.Module, layer: str, *, seed: int = 0) -> None:
        from pytorch_grad_cam import GradCAMPlusPlus

        self.cam_class = GradCAMPlusPlus
        super().__init__(model, layer, seed=seed)


class EigenCAMExplainer(_CAMExplainer):
    """EigenCAM (pytorch-grad-cam): projection on the first principal component; class-agnostic.

    ``sign_ambiguous``: a principal component's sign is arbitrary, so two EigenCAM maps of different
    models may be inverted copies; rank-correlation sanity checks do not apply to it.
    """

    name = "eigencam"
    sign_ambiguous = True

    def __init__(self, model: torch.nn.Module, layer: str, *, seed: int = 0) -> None:
        from pytorch_grad_cam import EigenCAM

        self.cam_class = EigenCAM
        super().__init__(model, layer, seed=seed)


# --------------------------------------------------------------------------- pixel methods (captum)


#: Integrated Gradients steps when none are given (the explainer and the layer analyses share it).
IG_STEPS = 32


def integrated_gradients(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: Target = None,
    *,
    steps: int = IG_STEPS,
    baseline: float | torch.Tensor = 0.0,
    internal_batch_size: int | None = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients (captum) of the target logits along the straight path from ``baseline``.

    ``inputs`` ``(B, ...)``; ``targets`` as :func:`qxai.probe.target_classes` takes them (None: the
    predicted class); ``baseline`` a number or a tensor broadcastable to ``inputs``. Runs in eval
    mode and gives the caller's mode back. Returns ``(attributions like inputs, delta (B,))``, where
    ``delta = Σ attr − (f(x) − f(baseline))`` is captum's completeness gap.

    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> attr, delta = integrated_gradients(net, torch.rand(2, 1, 2, 2), 1, steps=8)
    >>> attr.shape, bool(delta.abs().max() < 1e-4)  # a linear model: IG is exact
    (torch.Size([2, 1, 2, 2]), True)
    """
    from captum.attr import IntegratedGradients

    if steps < 2:
        raise QxaiError(f"IG steps must be at least 2, got {steps}")
    with eval_mode(model):
        chosen = resolve_targets(model, inputs, targets)
        base = baseline.to(inputs) if isinstance(baseline, torch.Tensor) else float(baseline)
        attr, delta = IntegratedGradients(model).attribute(
            inputs, baselines=base, target=chosen, n_steps=steps,
            internal_batch_size=internal_batch_size, return_convergence_delta=True,
        )  # fmt: skip
    return attr.detach(), delta.detach()


class IntegratedGradientsExplainer(Explainer):
    """Integrated Gradients (captum) from a black baseline; map = positive part of the channel sum.

    extras: ``delta`` ``(B,)`` — captum's completeness gap ``Σ attr − (f(x) − f(baseline))``;
    ``attribution_sum`` ``(B,)``. Computed by :func:`integrated_gradients`.
    """

    name = "ig"

    def __init__(
        self, model: torch.nn.Module, layer: str | None = None, *, seed: int = 0, steps: int = IG_STEPS,
        baseline: float = 0.0, reduce: str = "positive", internal_batch_size: int = 512,
    ) -> None:  # fmt: skip
        super().__init__(model)
        if steps < 2:
            raise QxaiError(f"IG steps must be at least 2, got {steps}")
        self.steps, self.baseline, self.reduce = steps, baseline, _check_reduce(reduce)
        self.internal_batch_size = internal_batch_size

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        attr, delta = integrated_gradients(
            self.model, inputs, targets, steps=self.steps, baseline=self.baseline,
            internal_batch_size=self.internal_batch_size,
        )  # fmt: skip
        extras = {"delta": delta.float().numpy(), "attribution_sum": attr.sum(dim=(1, 2, 3)).numpy()}
        return Explanation(reduce_channels(attr, self.reduce), targets.numpy(), self.name, extras=extras)


class GradientShapExplainer(Explainer):
    """SHAP values by captum's GradientShap (expected gradients over a baseline distribution).

    ``baselines`` ``(M, C, H, W)``: the background images (the pipeline passes training images);
    when None, ``M`` seeded uniform-noise images. Map = positive part of the channel sum.
    """

    name = "shap"

    def __init__(
        self, model: torch.nn.Module, layer: str | None = None, *, seed: int = 0, samples: int = 16,
        baselines: torch.Tensor | None = None, stdevs: float = 0.0, reduce: str = "positive",
        num_baselines: int = 16,
    ) -> None:  # fmt: skip
        super().__init__(model)
        if samples < 1:
            raise QxaiError(f"SHAP samples must be at least 1, got {samples}")
        self.seed, self.samples, self.stdevs = seed, samples, stdevs
        self.baselines, self.num_baselines, self.reduce = baselines, num_baselines, _check_reduce(reduce)

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        from captum.attr import GradientShap

        from qxai.seeding import torch_generator

        base = self.baselines
        if base is None:
            base = torch.rand((self.num_baselines, *inputs.shape[1:]), generator=torch_generator(self.seed))
        with scoped_rng(self.seed):
            attr = GradientShap(self.model).attribute(
                inputs, baselines=base.to(inputs), target=targets, n_samples=self.samples, stdevs=self.stdevs
            )
        return Explanation(reduce_channels(attr, self.reduce), targets.numpy(), self.name)


def feature_segments(images: torch.Tensor, segments: str = "grid", cell: int | None = None) -> torch.Tensor:
    """Interpretable features for LIME: ``(B, 1, H, W)`` long segment ids per image.

    ``grid``: square cells of ``cell`` pixels (default ≈ H/7, so about 49 features); ``slic``:
    scikit-image SLIC superpixels (deterministic) of about that many segments.

    >>> feature_segments(torch.zeros(1, 1, 4, 4), cell=2)[0, 0].tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    """
    b, c, h, w = images.shape
    size = cell or max(1, round(h / 7))
    if segments == "grid":
        rows = torch.arange(h) // size
        cols = torch.arange(w) // size
        ids = rows[:, None] * int(cols.max() + 1) + cols[None, :]
        return ids.expand(b, 1, h, w).clone()
    if segments == "slic":
        from skimage.segmentation import slic

        n = int(np.ceil(h / size) * np.ceil(w / size))
        out = np.zeros((b, 1, h, w), dtype=np.int64)
        for i, img in enumerate(images.detach().cpu().numpy()):
            out[i, 0] = slic(img.transpose(1, 2, 0), n_segments=n, compactness=0.1 if c == 1 else 10,
                             channel_axis=-1, start_label=0)  # fmt: skip
        return torch.from_numpy(out)
    raise QxaiError(f"LIME segments must be 'grid' or 'slic', got '{segments}'")


class LimeExplainer(Explainer):
    """LIME (captum ``Lime``, Lasso surrogate) on grid cells or SLIC superpixels, seeded.

    Each segment is switched off at random — set to ``baseline``: a value, or ``"blur"`` (a Gaussian
    blur of the image, σ = H/8) or ``"mean"`` (its channel means) for images where black is far
    outside the data — and the map is the positive part of the surrogate's weight of each segment,
    painted onto its pixels.
    """

    name = "lime"

    def __init__(
        self, model: torch.nn.Module, layer: str | None = None, *, seed: int = 0, samples: int = 200,
        segments: str = "grid", cell: int | None = None, baseline: float | str = 0.0,
        reduce: str = "positive", perturbations_per_eval: int = 64,
    ) -> None:  # fmt: skip
        super().__init__(model)
        if samples < 2:
            raise QxaiError(f"LIME samples must be at least 2, got {samples}")
        if segments not in ("grid", "slic"):
            raise QxaiError(f"LIME segments must be 'grid' or 'slic', got '{segments}'")
        if isinstance(baseline, str) and baseline not in ("blur", "mean"):
            raise QxaiError(f"LIME baseline must be a number, 'blur' or 'mean', got '{baseline}'")
        self.seed, self.samples, self.segments, self.cell = seed, samples, segments, cell
        self.baseline, self.reduce, self.per_eval = baseline, _check_reduce(reduce), perturbations_per_eval

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        from captum.attr import Lime

        mask = feature_segments(inputs, self.segments, self.cell).expand_as(inputs).contiguous()
        lime = Lime(self.model)
        base: float | torch.Tensor = self.baseline
        if self.baseline == "mean":
            base = inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs).contiguous()
        elif self.baseline == "blur":
            from scipy.ndimage import gaussian_filter

            s = inputs.shape[-2] / 8
            base = torch.from_numpy(gaussian_filter(inputs.numpy(), sigma=(0, 0, s, s), mode="nearest"))
        with scoped_rng(self.seed), warnings.catch_warnings():
            # captum's Lime fits one surrogate per example (it warns that this is slow); expected here
            warnings.filterwarnings("ignore", message="You are providing multiple inputs")
            attr = lime.attribute(
                inputs, target=targets, baselines=base, feature_mask=mask,
                n_samples=self.samples, perturbations_per_eval=self.per_eval,
            )  # fmt: skip
        # the channel sum would count one segment weight C times; a single channel is the weight
        return Explanation(reduce_channels(attr[:, :1], self.reduce), targets.numpy(), self.name)


# --------------------------------------------------------------------------- LRP (zennit)

#: Leaf module types zennit's EpsilonPlusFlat has a rule for or that relevance passes unchanged.
_LRP_PASS = (torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.Flatten, torch.nn.Identity, torch.nn.Unflatten)


def lrp_unsupported(model: torch.nn.Module) -> list[str]:
    """Names (and types) of leaf modules zennit's standard composite has no rule for."""
    from zennit import types as zt

    known = (zt.Convolution, zt.Linear, zt.BatchNorm, zt.AvgPool, zt.MaxPool, zt.Activation, *_LRP_PASS)
    bad = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue  # containers: only leaves carry rules
        if isinstance(module, torch.nn.MultiheadAttention) or not isinstance(module, known):
            bad.append(f"{name} ({type(module).__name__})")
    return bad


class LRPExplainer(Explainer):
    """Layer-wise relevance propagation (zennit ``EpsilonPlusFlat``: flat rule on the first layer,
    z⁺ on convolutions, ε on dense layers); torchvision ResNet blocks get zennit's ResNetCanonizer.

    Relevance starts at 1 on the target logit (zennit's convention; extras ``relevance_sum`` ``(B,)``
    shows how much of it reached the input, ``logit`` ``(B,)`` the explained logit). Map = positive
    part of the channel sum of the input relevance. A model with a leaf layer that
    has no LRP rule (an LSTM, attention, layer norm, …) is refused with a :class:`QxaiError`.
    """

    name = "lrp"

    def __init__(
        self, model: torch.nn.Module, layer: str | None = None, *, seed: int = 0, epsilon: float = 1e-6,
        reduce: str = "positive",
    ) -> None:  # fmt: skip
        super().__init__(model)
        bad = lrp_unsupported(model)
        if bad:
            raise QxaiError(
                f"LRP (zennit EpsilonPlusFlat) has no rule for {', '.join(bad[:3])}; "
                "skip 'lrp' for this model or use a model of conv/linear/pooling/activation layers"
            )
        self.epsilon, self.reduce = epsilon, _check_reduce(reduce)

    def _canonizers(self) -> list[Any]:
        from torchvision.models.resnet import BasicBlock, Bottleneck
        from zennit.canonizers import SequentialMergeBatchNorm

        if any(isinstance(m, BasicBlock | Bottleneck) for m in self.model.modules()):
            from zennit.torchvision import ResNetCanonizer

            return [ResNetCanonizer()]
        return [SequentialMergeBatchNorm()]

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        from zennit.attribution import Gradient
        from zennit.composites import EpsilonPlusFlat

        composite = EpsilonPlusFlat(epsilon=self.epsilon, canonizers=self._canonizers())
        x = inputs.detach().clone().requires_grad_(True)

        def one_hot(logits: torch.Tensor) -> torch.Tensor:
            out = torch.zeros_like(logits)
            out[torch.arange(len(logits)), targets] = 1.0
            return out

        with Gradient(model=self.model, composite=composite) as attributor, torch.enable_grad():
            logits, relevance = attributor(x, one_hot)
        if not torch.isfinite(relevance).all():
            raise QxaiError("LRP produced non-finite relevance for this model; skip 'lrp' for it")
        extras = {"relevance_sum": relevance.sum(dim=(1, 2, 3)).detach().numpy(),
                  "logit": logits.gather(1, targets[:, None])[:, 0].detach().numpy()}  # fmt: skip
        return Explanation(reduce_channels(relevance, self.reduce), targets.numpy(), self.name, extras=extras)
