"""`qxai anneal` (being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `anneal` command to `app`."""
