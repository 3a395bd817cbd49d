"""`qxai report` (being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `report` command to `app`."""
