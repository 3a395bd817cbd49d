"""The one exception type users see.

Every problem a user can fix (a wrong name, a missing file, an input of the wrong shape) is raised
as :class:`QxaiError` with a one-line message that names the problem and the fix. The CLI turns it
into ``error: <message>`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class QxaiError(Exception):
    """A user-facing error: one line, naming the problem and how to fix it."""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> QxaiError:
    """Build the error for an unknown ``kind`` called ``name``, suggesting close matches.

    >>> str(unknown_name("solver", "batch_sa", ["batch-sa", "exact"]))
    "unknown solver 'batch_sa'; did you mean 'batch-sa'? (choices: batch-sa, exact)"
    """
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ";"
    return QxaiError(f"unknown {kind} '{name}'{hint} (choices: {', '.join(choices)})")
