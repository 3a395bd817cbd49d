"""The report: a self-contained HTML page built from a run folder's saved results."""

from qxai.report.html import build_report, render_report

__all__ = ["build_report", "render_report"]
