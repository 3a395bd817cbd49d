"""Explainers: QA feature-map selection and the reference baselines, behind one verb."""

from qxai.explain.base import Explainer, Explanation

__all__ = ["Explainer", "Explanation"]
