"""``qxai report DIR``: rebuild the HTML page from a run's saved results, without recomputing."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command()
    def report(
        run_dir: Path = typer.Argument(..., help="A folder written by `qxai demo`."),
        screenshot: Path = typer.Option(None, help="Also save a PNG screenshot (needs Chromium)."),
        headline: bool = typer.Option(False, help="Print the headline numbers as Markdown."),
    ) -> None:
        """Write RUN_DIR/report.html from the saved stage results."""
        from qxai.report import build_report

        page = build_report(run_dir)
        typer.echo(f"report: {page}")
        if screenshot is not None:
            from qxai.report.browser import screenshot as take

            typer.echo(f"screenshot: {take(page, screenshot)}")
        if headline:
            from qxai.report.headline import headline_markdown

            typer.echo(headline_markdown(run_dir))
