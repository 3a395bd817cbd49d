"""``qxai report DIR``: rebuild the HTML page from a run's saved results, without recomputing."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command()
    def report(
        run_dir: Path = typer.Argument(
            ..., help="A folder written by `qxai demo`, or one command's --out folder (evaluate, explain, …)."
        ),
        screenshot: Path = typer.Option(None, help="Also save a PNG screenshot (needs Chromium)."),
        headline: bool = typer.Option(False, help="Print the headline numbers as Markdown."),
        readme: Path = typer.Option(None, help="Fill the headline block of this README (with --screenshot)."),
    ) -> None:
        """Write RUN_DIR/report.html from the saved stage results."""
        from qxai.io import check_output_file
        from qxai.report import build_report

        check_output_file(run_dir / "report.html", "RUN_DIR")  # writable before anything is rendered
        page = build_report(run_dir)
        typer.echo(f"report: {page}")
        if screenshot is not None:
            from qxai.report.browser import screenshot as take

            typer.echo(f"screenshot: {take(page, screenshot)}")
        if headline:
            from qxai.report.headline import headline_markdown

            typer.echo(headline_markdown(run_dir))
        if readme is not None:
            from qxai.errors import QxaiError
            from qxai.report.headline import update_readme

            if screenshot is None:
                raise QxaiError("--readme needs --screenshot PATH for the picture it shows")
            shown = screenshot.resolve().relative_to(readme.resolve().parent).as_posix()
            typer.echo(f"readme: {update_readme(readme, run_dir, shown)}")
