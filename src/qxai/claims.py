"""The claim record: one row of the report's first table, built the same way by every stage.

A claim of a source paper, checked on this run: our number and its interval, the paper's figure,
a verdict from :data:`VERDICTS` and one line why. The evaluate, anneal, analyze and planted stages
each store their rows (``Claim.to_dict()``) under ``"claims"`` in their main JSON
(:data:`qxai.stages.STAGES` says which); the demo gathers them for the report.

>>> Claim("F decays", 0.5, [0.4, 0.6], "0.45", HOLDS, "inside the band", "anneal").to_dict()["verdict"]
'holds'
>>> Claim("x", None, None, "", "maybe", "", "anneal")
Traceback (most recent call last):
...
ValueError: verdict 'maybe' is not one of holds, does not hold, not testable

A verdict read from an interval needs a finite one: NaN compares False both ways, so a rule such as
``holds if lo > 0`` silently turns "no interval" into "does not hold" (or, written as ``fails if
lo <= 0``, into "holds"). :func:`side_of_zero` is the one place that reads an interval, and a
holds / does-not-hold row whose interval is not two finite numbers is refused.

>>> side_of_zero([0.1, 0.3]), side_of_zero([-0.2, 0.1]), side_of_zero([-0.3, -0.1])
('above', 'contains', 'below')
>>> side_of_zero([float("nan"), float("nan")]) is None and side_of_zero(None) is None
True
>>> Claim("x", 0.1, [float("nan"), 0.2], "", HOLDS, "", "heads")
Traceback (most recent call last):
...
ValueError: claim 'x' has verdict 'holds' but no finite interval ([nan, 0.2]); say 'not testable'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not testable"
VERDICTS = (HOLDS, FAILS, UNTESTABLE)


@dataclass(frozen=True)
class Claim:
    """One checked claim. ``ours``: our number (None when not testable); ``interval``: its 95 %
    interval ``[low, high]`` or None; ``paper``: the paper's figure as text; ``source``: the stage
    (``evaluate`` | ``anneal`` | ``analyze`` | ``planted``) whose results decide it."""

    claim: str
    ours: Any
    interval: Any
    paper: str
    verdict: str
    why: str
    source: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict '{self.verdict}' is not one of {', '.join(VERDICTS)}")
        if self.interval is not None and self.verdict != UNTESTABLE and side_of_zero(self.interval) is None:
            raise ValueError(
                f"claim '{self.claim}' has verdict '{self.verdict}' but no finite interval "
                f"({_show(self.interval)}); say '{UNTESTABLE}'"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON row (``interval`` as a list)."""
        row = asdict(self)
        row["ours"] = _finite_or_none(row["ours"])
        if row["interval"] is not None:
            row["interval"] = [_finite_or_none(v) for v in row["interval"]]
        return row


def side_of_zero(interval: Any) -> str | None:
    """Where ``interval = [low, high]`` lies against 0: ``"above"`` (low > 0), ``"below"`` (high < 0)
    or ``"contains"``; None when it is missing or not two finite numbers (too few values, a
    degenerate bootstrap) — the caller then says "not testable", never a verdict."""
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return "above" if lo > 0 else ("below" if hi < 0 else "contains")


def _finite_or_none(value: Any) -> Any:
    """NaN and ±inf become None, so a row in memory equals the same row read back from JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _show(interval: Any) -> str:
    try:
        return "[" + ", ".join(f"{float(v):.3g}" for v in interval) + "]"
    except (TypeError, ValueError):
        return repr(interval)
