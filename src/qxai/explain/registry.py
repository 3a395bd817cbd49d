"""Explainers by name, as given on the command line (``--methods qa,gradcam,…``): one registry,
:data:`EXPLAINERS`, whose entries carry their own code.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
...                           torch.nn.Linear(2 * 4 * 4, 3))
>>> get_explainer("gradcam", net, "1").name
'gradcam'
>>> get_explainer("grad-cam", net, "1")
Traceback (most recent call last):
qxai.errors.QxaiError: unknown method 'grad-cam'; did you mean 'gradcam'? (choices: ...)

Adding an explainer is one entry (see docs/ARCHITECTURE.md, "Extension points"):

>>> from qxai.explain.baselines import IntegratedGradientsExplainer
>>> _ = register_explainer(ExplainerSpec("ig-64", lambda model, layer, seed=0, **kw:
...     IntegratedGradientsExplainer(model, steps=64, **kw), needs_layer=False, help="IG, 64 steps"))
>>> get_explainer("ig-64", net, None).steps
64
>>> del EXPLAINERS["ig-64"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from qxai.errors import QxaiError, unknown_name
from qxai.explain.base import Explainer


@dataclass(frozen=True)
class ExplainerSpec:
    """One explainer of the registry.

    Attributes:
        name: the ``--methods`` name (lower case).
        build: ``build(model, layer, *, seed, **options) -> Explainer``; import heavy libraries
            inside it, so that listing methods stays cheap.
        needs_layer: the method reads a layer of the model (through hooks), so it needs ``layer``
            and a Python model (not TorchScript).
        help: one line for ``--help`` and docs.
        torchscript: the method runs on a TorchScript model (``torch.jit.ScriptModule``, which has
            no hooks); by default, exactly the methods that need no layer.
        options: its budget options and their defaults (``{"samples": 50}``), passed to ``build``
            as keywords; ``qxai evaluate --method-option NAME.KEY=VALUE`` sets one.
        requires: what the model must have for the method to apply (``"attention"``: a Transformer,
            for attention rollout); None: any classifier.
    """

    name: str
    build: Callable[..., Explainer] = field(repr=False)
    needs_layer: bool
    help: str = ""
    torchscript: bool | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    requires: str | None = None

    @property
    def runs_on_torchscript(self) -> bool:
        return (not self.needs_layer) if self.torchscript is None else self.torchscript


def _baseline(class_name: str) -> Callable[..., Explainer]:
    """A builder importing ``qxai.explain.baselines`` (pytorch-grad-cam, captum, zennit) on demand."""

    def build(model: torch.nn.Module, layer: str | None, **options: Any) -> Explainer:
        from qxai.explain import baselines

        return getattr(baselines, class_name)(model, layer, **options)

    build.__name__ = f"build_{class_name}"
    return build


def _qa(model: torch.nn.Module, layer: str | None, **options: Any) -> Explainer:
    from qxai.explain.qa import QAFeatureMapExplainer  # heavy (annealers): imported on demand

    return QAFeatureMapExplainer(model, layer, **options)


def _rollout(model: torch.nn.Module, layer: str | None, **options: Any) -> Explainer:
    from qxai.explain.rollout import AttentionRolloutExplainer

    return AttentionRolloutExplainer(model, layer, **options)


def _qa_heads(model: torch.nn.Module, layer: str | None, **options: Any) -> Explainer:
    from qxai.explain.heads import QAHeadsExplainer  # heavy (annealers): imported on demand

    return QAHeadsExplainer(model, layer, **options)


def _chefer(model: torch.nn.Module, layer: str | None, **options: Any) -> Explainer:
    from qxai.explain.chefer import CheferExplainer

    return CheferExplainer(model, layer, **options)


#: Every explainer by name, in the order help texts list them. Add one with :func:`register_explainer`.
EXPLAINERS: dict[str, ExplainerSpec] = {
    spec.name: spec
    for spec in (
        ExplainerSpec("qa", _qa, True, "QA feature-map selection: an explanation QUBO per image"),
        ExplainerSpec("gradcam", _baseline("GradCAMExplainer"), True, "Grad-CAM (pytorch-grad-cam)"),
        ExplainerSpec("gradcam++", _baseline("GradCAMPlusPlusExplainer"), True,
                      "Grad-CAM++ (pytorch-grad-cam)"),
        ExplainerSpec("eigencam", _baseline("EigenCAMExplainer"), True,
                      "EigenCAM, first principal component of the maps (pytorch-grad-cam)"),
        ExplainerSpec("ig", _baseline("IntegratedGradientsExplainer"), False,
                      "Integrated Gradients (captum)"),
        ExplainerSpec("shap", _baseline("GradientShapExplainer"), False, "GradientShap (captum)"),
        ExplainerSpec("lime", _baseline("LimeExplainer"), False,
                      "LIME on grid cells or superpixels (captum)"),
        # zennit's rules are module hooks: no layer, but no TorchScript either
        ExplainerSpec("lrp", _baseline("LRPExplainer"), False, "LRP EpsilonPlusFlat (zennit)",
                      torchscript=False),
        ExplainerSpec("rollout", _rollout, False, "attention rollout (Abnar & Zuidema 2020), Transformers",
                      torchscript=False, options={"residual": 0.5}, requires="attention"),
        ExplainerSpec("qa-heads", _qa_heads, False,
                      "QA selection over attention heads (the last block's, or every block's), Transformers",
                      torchscript=False, options={"blocks": "last"}, requires="attention"),
        ExplainerSpec("chefer", _chefer, False,
                      "gradient-weighted attention relevance (Chefer, Gur & Wolf 2021), Transformers",
                      torchscript=False, requires="attention"),
    )
}  # fmt: skip


def register_explainer(spec: ExplainerSpec, *, replace: bool = False) -> ExplainerSpec:
    """Add ``spec`` to :data:`EXPLAINERS` (an existing name only with ``replace=True``); returns it."""
    if spec.name != spec.name.strip().lower() or "," in spec.name or not spec.name:
        raise QxaiError(f"explainer name '{spec.name}' must be lower case without commas or spaces")
    if spec.name in EXPLAINERS and not replace:
        raise QxaiError(f"an explainer named '{spec.name}' exists already; choose another name")
    EXPLAINERS[spec.name] = spec
    return spec


def help_text() -> str:
    """``"qa gradcam …"``: the registered method names, for a CLI option's help."""
    return " ".join(EXPLAINERS)


def describe() -> str:
    """One line per explainer: ``name: help``."""
    return "\n".join(f"{spec.name}: {spec.help}" for spec in EXPLAINERS.values())


def __getattr__(name: str) -> Any:
    # METHOD_NAMES is derived from the registry on every access, so it includes registered methods
    if name == "METHOD_NAMES":
        return tuple(EXPLAINERS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def torchscript_methods() -> list[str]:
    """Names of the methods that run on a TorchScript model."""
    return [name for name, spec in EXPLAINERS.items() if spec.runs_on_torchscript]


def parse_methods(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"qa, gradcam"`` or a list → validated, de-duplicated names in the given order.

    >>> parse_methods("qa, gradcam,qa")
    ['qa', 'gradcam']
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(n.strip().lower() for n in items if n.strip()))
    if not names:
        raise QxaiError(f"no method given; choose from {', '.join(EXPLAINERS)}")
    for name in names:
        if name not in EXPLAINERS:
            raise unknown_name("method", name, EXPLAINERS)
    return names


def get_explainer(
    name: str, model: torch.nn.Module, layer: str | None, *, seed: int = 0, **options: Any
) -> Explainer:
    """Build the explainer ``name`` for ``model`` at ``layer`` (read by the methods that need one).

    ``options`` go to the explainer's constructor (e.g. ``steps`` for ig, ``samples`` for shap and
    lime, ``solver``/``beta`` for qa); an option it does not take is a :class:`QxaiError`. A method
    that needs hooks on a TorchScript model is a :class:`QxaiError` naming the methods that apply.
    """
    key = name.strip().lower()
    spec = EXPLAINERS.get(key)
    if spec is None:
        raise unknown_name("method", name, EXPLAINERS)
    if isinstance(model, torch.jit.ScriptModule) and not spec.runs_on_torchscript:
        raise QxaiError(
            f"method '{key}' needs hooks on the model's layers, which a TorchScript model does not "
            f"have; on TorchScript use {', '.join(torchscript_methods())}, or pass the model's "
            "Python class for the layer methods"
        )
    if spec.needs_layer and not layer:
        raise QxaiError(f"method '{key}' reads a layer of the model; name one (a convolutional layer)")
    try:
        return spec.build(model, layer, seed=seed, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise QxaiError(f"method '{key}' does not take option(s) {sorted(options)}; {err}") from None
        raise
