"""Metrics with a name, a direction and a definition, and the runner that applies them all."""

from qxai.evaluate.metrics import GROUPS, METRICS, Metric, select_metrics
from qxai.evaluate.runner import EvalSettings, Evaluation, MethodResult, evaluate_methods

__all__ = [
    "GROUPS", "METRICS", "EvalSettings", "Evaluation", "MethodResult", "Metric", "evaluate_methods",
    "select_metrics",
]  # fmt: skip
