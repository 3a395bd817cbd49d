"""The ``qxai`` command. Each sub-command lives in its own module with a ``register(app)``.

User errors (:class:`qxai.errors.QxaiError`) print one line, ``error: …``, and exit with code 2;
anything unexpected prints one line too (exit 1) unless ``QXAI_DEBUG=1`` asks for the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from qxai import __version__
from qxai.cli import analyze, anneal, demo, evaluate, explain, report, train
from qxai.errors import QxaiError

app = typer.Typer(
    name="qxai",
    help="Explain trained neural networks with quantum and quantum-inspired methods, and measure them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (train, explain, evaluate, anneal, analyze, demo, report):
    module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qxai {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """qxai: quantum and quantum-inspired explanations of neural networks."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and ``python -m qxai``."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    try:
        # standalone mode: click itself reports usage errors (exit 2) and handles Ctrl-C
        app(args=argv, prog_name="qxai")
    except QxaiError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except Exception as err:  # anything unexpected: one line, unless debugging
        if os.environ.get("QXAI_DEBUG") == "1":
            raise
        line = f"internal error: {type(err).__name__}: {err}".splitlines()[0]
        typer.echo(f"{line} (QXAI_DEBUG=1 shows the traceback)", err=True)
        sys.exit(1)
