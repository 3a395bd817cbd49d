"""Empty and degenerate explanations, named with their likely cause and the fix.

An explanation that says nothing — no map selected, every map of the layer zero, a saliency map
that is the same value everywhere — is never reported as a success. :func:`image_flags` marks each
image of an explanation with the first degeneracy that applies (or None), reading only what the
explanation carries (the QA extras when present, else the saliency map); :func:`diagnose` turns
the flags into one record per kind — how many images, the likely cause, the fix — for the summary
line, the JSON and the report; :func:`nothing_meaningful` is the one-line error when no image is
left.

>>> flags = image_flags({"live_maps": [0, 4], "positive_weights": [0, 3], "num_variables": [0, 2],
...                      "selected": [[], [1]]}, np.array([np.zeros((2, 2)), np.eye(2)]))
>>> flags
['dead_layer', None]
>>> diagnose(flags, layer="act2")[0]["sentence"]  # doctest: +ELLIPSIS
"layer 'act2': every map is zero on 1 of 2 images — the layer is dead ... pick another with --layer"
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qxai.errors import QxaiError

#: kind → (what is wrong, likely cause and fix). ``{layer}`` is the explained layer.
KINDS: dict[str, tuple[str, str]] = {
    "dead_layer": (
        "every map is zero",
        "the layer is dead (e.g. a ReLU after a large negative bias) or before any activation; "
        "pick another with --layer",
    ),
    "zero_gradient": (
        "the class logit's gradient is zero on every map",
        "nothing after the layer reads its spatial positions (a Transformer's last block, whose head "
        "reads only the class token); pick an earlier layer, e.g. that block's input norm, with --layer",
    ),
    "no_positive_weight": (
        "no map has a positive Grad-CAM weight α",
        "the class logit does not grow with any map there (e.g. a patch embedding, or a layer that "
        "feeds the class mostly through inhibition); pick another with --layer",
    ),
    "supporting_maps_dead": (
        "every map with α > 0 is zero on the image",
        "the maps that support the class are inactive on it; pick another with --layer, or lower "
        "--dead-eps if they are merely faint",
    ),
    "over_solver_limit": (
        "the QUBO has more variables than the solver's size limit, so it was not solved",
        "use a solver without a size limit (e.g. --solver batch-sa or exact-mip), or a layer with fewer maps",
    ),
    "empty_selection": (
        "the QUBO's optimum selects no map",
        "β gives importance too little weight against redundancy, or a cardinality penalty asks for "
        "k = 0; raise --beta or drop the penalty",
    ),
    "constant_map": (
        "the saliency map is the same value everywhere",
        "the method found no evidence for the class on the image (its attributions are zero or "
        "negative everywhere); check the model's outputs on these images",
    ),
}


_PICK_BLOCKS = "pick other blocks with --method-option qa-heads.blocks=all (or a block index)"

#: the same kinds when the selection's variables are attention heads (``qa-heads``), whose fix is
#: another choice of blocks, not --layer
HEAD_KINDS: dict[str, tuple[str, str]] = {
    "dead_layer": (
        "every head's output is zero",
        f"the chosen attention blocks are inactive on these images; {_PICK_BLOCKS}",
    ),
    "zero_gradient": (
        "the class logit's gradient is zero on every head",
        f"nothing after the chosen blocks reads their heads for this class; {_PICK_BLOCKS}",
    ),
    "no_positive_weight": (
        "no head has a positive weight α_h",
        f"the class logit does not grow with any head there; {_PICK_BLOCKS}",
    ),
    "supporting_maps_dead": (
        "every head with α_h > 0 is zero on the image",
        f"the heads that support the class are inactive on it; {_PICK_BLOCKS}, or lower --dead-eps",
    ),
    "over_solver_limit": (
        "the QUBO has more variables than the solver's size limit, so it was not solved",
        "use a solver without a size limit (e.g. --solver batch-sa or exact-mip), or qa-heads.blocks=last",
    ),
    "empty_selection": (
        "the QUBO's optimum selects no head",
        "β gives importance too little weight against redundancy, or a cardinality penalty asks for "
        "k = 0; raise --beta or drop the penalty",
    ),
    "constant_map": KINDS["constant_map"],
}

#: what the variables of a selection are → the texts of its degeneracies
UNITS: dict[str, dict[str, tuple[str, str]]] = {"map": KINDS, "head": HEAD_KINDS}


def selection_unit(extras: Mapping[str, Any]) -> str:
    """``"head"`` for an explanation over attention heads (its extras name them), else ``"map"``."""
    return "head" if extras.get("head_labels") is not None else "map"


def _column(extras: Mapping[str, Any], key: str, n: int) -> list[Any] | None:
    value = extras.get(key)
    if value is None:
        return None
    items = list(value)
    return items if len(items) == n else None


def constant_maps(saliency: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: maps of ``(N, H, W)`` that are the same value everywhere (NaN counts as blank).

    >>> constant_maps(np.stack([np.zeros((2, 2)), np.eye(2)])).tolist()
    [True, False]
    """
    flat = np.asarray(saliency, dtype=np.float64).reshape(len(saliency), -1)
    finite = np.isfinite(flat)
    high = np.where(finite, flat, -np.inf).max(axis=1, initial=-np.inf)
    low = np.where(finite, flat, np.inf).min(axis=1, initial=np.inf)
    return ~(high > low)


def image_flags(extras: Mapping[str, Any], saliency: np.ndarray) -> list[str | None]:
    """Per image, the first degeneracy that applies (a key of :data:`KINDS`) or None.

    Reads the QA extras ``live_maps``, ``positive_weights``, ``num_variables``,
    ``over_solver_limit`` and ``selected``, and the gradient methods' ``channel_weights`` (all
    exactly zero: ``zero_gradient``), where the explanation has them (the cause is then precise),
    and the saliency map of every method (``constant_map``).
    """
    n = len(saliency)
    blank = constant_maps(saliency)
    live = _column(extras, "live_maps", n)
    positive = _column(extras, "positive_weights", n)
    variables = _column(extras, "num_variables", n)
    selected = _column(extras, "selected", n)
    over = _column(extras, "over_solver_limit", n)
    weights = extras.get("channel_weights")
    zero = (
        ~np.asarray(weights).reshape(n, -1).any(axis=1)
        if weights is not None and len(weights) == n and np.size(weights)
        else np.zeros(n, dtype=bool)
    )
    flags: list[str | None] = []
    for i in range(n):
        flag: str | None = None
        if live is not None and int(live[i]) == 0:
            flag = "dead_layer"
        elif zero[i]:
            flag = "zero_gradient"
        elif positive is not None and int(positive[i]) == 0:
            flag = "no_positive_weight"
        elif variables is not None and int(variables[i]) == 0:
            flag = "supporting_maps_dead"
        elif over is not None and over[i]:
            flag = "over_solver_limit"
        elif selected is not None and len(selected[i]) == 0:
            flag = "empty_selection"
        elif blank[i]:
            flag = "constant_map"
        flags.append(flag)
    return flags


def diagnose(
    flags: Sequence[str | None], *, layer: str | None = None, unit: str = "map"
) -> list[dict[str, Any]]:
    """One record per degeneracy found: ``{"kind", "images", "of", "cause", "sentence"}``, most
    frequent first; ``sentence`` is the one line a person reads. ``unit``: what the selection's
    variables are (:data:`UNITS`: ``"map"`` or ``"head"``, :func:`selection_unit`).

    >>> diagnose(["empty_selection"], unit="head")[0]["sentence"]  # doctest: +ELLIPSIS
    "the QUBO's optimum selects no head on all 1 images — β gives importance too little weight ..."
    """
    counts = Counter(f for f in flags if f is not None)
    where = f"layer '{layer}': " if layer else ""
    texts = UNITS[unit]
    out = []
    for kind, count in counts.most_common():
        what, cause = texts[kind]
        span = f"all {len(flags)} images" if count == len(flags) else f"{count} of {len(flags)} images"
        out.append({
            "kind": kind, "images": count, "of": len(flags), "cause": cause,
            "sentence": f"{where}{what} on {span} — {cause}",
        })  # fmt: skip
    return out


def nothing_meaningful(flags: Sequence[str | None], *, layer: str | None = None, what: str = "qa") -> None:
    """Raise the one-line :class:`QxaiError` when no image has a meaningful explanation."""
    if flags and all(f is not None for f in flags):
        first = diagnose(flags, layer=layer)[0]["sentence"]
        raise QxaiError(f"{what} explains none of the {len(flags)} images: {first}")


__all__ = [
    "HEAD_KINDS", "KINDS", "UNITS", "constant_maps", "diagnose", "image_flags", "nothing_meaningful",
    "selection_unit",
]
