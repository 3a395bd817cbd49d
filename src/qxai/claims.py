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
"""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        """The JSON row (``interval`` as a list)."""
        row = asdict(self)
        if row["interval"] is not None:
            row["interval"] = list(row["interval"])
        return row
