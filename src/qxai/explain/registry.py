"""Explainers by name, as given on the command line (``--methods qa,gradcam,…``).

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
...                           torch.nn.Linear(2 * 4 * 4, 3))
>>> get_explainer("gradcam", net, "1").name
'gradcam'
>>> get_explainer("grad-cam", net, "1")
Traceback (most recent call last):
qxai.errors.QxaiError: unknown method 'grad-cam'; did you mean 'gradcam'? (choices: ...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from qxai.errors import QxaiError, unknown_name
from qxai.explain.base import Explainer

METHOD_NAMES = ("qa", "gradcam", "gradcam++", "eigencam", "ig", "shap", "lime", "lrp")


def _builders() -> dict[str, Callable[..., Explainer]]:
    from qxai.explain import baselines as b

    return {
        "gradcam": b.GradCAMExplainer, "gradcam++": b.GradCAMPlusPlusExplainer,
        "eigencam": b.EigenCAMExplainer, "ig": b.IntegratedGradientsExplainer,
        "shap": b.GradientShapExplainer, "lime": b.LimeExplainer, "lrp": b.LRPExplainer,
    }  # fmt: skip


def parse_methods(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"qa, gradcam"`` or a list → validated, de-duplicated names in the given order.

    >>> parse_methods("qa, gradcam,qa")
    ['qa', 'gradcam']
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(n.strip().lower() for n in items if n.strip()))
    if not names:
        raise QxaiError(f"no method given; choose from {', '.join(METHOD_NAMES)}")
    for name in names:
        if name not in METHOD_NAMES:
            raise unknown_name("method", name, METHOD_NAMES)
    return names


def get_explainer(
    name: str, model: torch.nn.Module, layer: str, *, seed: int = 0, **options: Any
) -> Explainer:
    """Build the explainer ``name`` for ``model`` at ``layer`` (used by qa and the CAMs).

    ``options`` go to the explainer's constructor (e.g. ``steps`` for ig, ``samples`` for shap and
    lime, ``solver``/``beta`` for qa); an option it does not take is a :class:`QxaiError`.
    """
    key = name.strip().lower()
    if key not in METHOD_NAMES:
        raise unknown_name("method", name, METHOD_NAMES)
    if key == "qa":
        from qxai.explain.qa import QAFeatureMapExplainer  # heavy (annealers): imported on demand

        builder: Callable[..., Explainer] = QAFeatureMapExplainer
    else:
        builder = _builders()[key]
    try:
        return builder(model, layer, seed=seed, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise QxaiError(f"method '{key}' does not take option(s) {sorted(options)}; {err}") from None
        raise
