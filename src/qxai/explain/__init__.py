"""Explainers: QA feature-map selection and the reference baselines, behind one verb.

``get_explainer(name, model, layer, **options)`` builds one by name (registry:
:data:`qxai.explain.registry.EXPLAINERS`); ``qxai.explain.testing.assert_explainer_contract``
checks an explainer, yours included, against the contract.
"""

from qxai.explain.base import Explainer, Explanation
from qxai.explain.registry import EXPLAINERS, ExplainerSpec, get_explainer, parse_methods, register_explainer

__all__ = [
    "EXPLAINERS",
    "Explainer",
    "ExplainerSpec",
    "Explanation",
    "get_explainer",
    "parse_methods",
    "register_explainer",
]
