"""Progress bars (rich) for long work; quiet when output is not a terminal unless forced."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars show on a terminal, or everywhere when ``QXAI_PROGRESS=1``; ``QXAI_PROGRESS=0`` hides them."""
    flag = os.environ.get("QXAI_PROGRESS")
    if flag is not None:
        return flag == "1"
    return sys.stderr.isatty()


def make_progress() -> Progress:
    """A rich Progress with a description, a bar, a count and the elapsed time, on stderr."""
    from rich.console import Console

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not progress_enabled(), transient=False,
    )  # fmt: skip


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar.

    >>> list(track([1, 2], "counting"))
    [1, 2]
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
