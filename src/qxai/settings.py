"""Reading the defaults of the settings dataclasses, the one place every default is written.

Each stage's settings class (``TrainSettings``, ``ExplainSettings``, ``QuboOptions`` …) holds its
defaults as field defaults. The CLI, the docs and the tests read them through :func:`field_default`
rather than restating them, so a default cannot differ between the API and the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from qxai.errors import QxaiError, unknown_name


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (a fresh value for a ``default_factory``).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class S:
    ...     steps: int = 20
    >>> field_default(S, "steps")
    20
    >>> field_default(S, "step")
    Traceback (most recent call last):
    ...
    KeyError: "S has no field 'step'"
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            if f.default is dataclasses.MISSING:
                raise KeyError(f"{cls.__name__}.{name} has no default")
            return f.default
    raise KeyError(f"{cls.__name__} has no field '{name}'")


def parse_assignments(
    texts: Iterable[str] | None, declared: Mapping[str, Mapping[str, Any]], option: str
) -> dict[str, dict[str, Any]]:
    """``["lime.samples=64"]`` → ``{"lime": {"samples": 64}}``, checked against what each registry
    entry ``declared`` (``{entry: {key: default}}``); a value takes its default's type.

    >>> parse_assignments(["peak.q=0.5", "peak.strict=yes"], {"peak": {"q": 1.0, "strict": False}}, "--x")
    {'peak': {'q': 0.5, 'strict': True}}
    >>> parse_assignments(["peak.z=1"], {"peak": {"q": 1.0}}, "--metric-option")
    Traceback (most recent call last):
    ...
    qxai.errors.QxaiError: --metric-option peak.z: peak has no setting 'z'; its settings: q
    """
    out: dict[str, dict[str, Any]] = {}
    for text in texts or ():
        name_key, sep, value = text.partition("=")
        name, dot, key = name_key.strip().partition(".")
        if not (sep and dot and name and key):
            raise QxaiError(f"{option} takes NAME.KEY=VALUE, e.g. {option} lime.samples=64; got '{text}'")
        if name not in declared:
            raise unknown_name(f"entry of {option}", name, declared)
        if key not in declared[name]:
            keys = ", ".join(declared[name]) or "none"
            raise QxaiError(f"{option} {name}.{key}: {name} has no setting '{key}'; its settings: {keys}")
        out.setdefault(name, {})[key] = _cast(value.strip(), declared[name][key], f"{option} {name_key}")
    return out


def _cast(text: str, default: Any, what: str) -> Any:
    """``text`` as a value of ``default``'s type (bool: 1/0, true/false, yes/no)."""
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise QxaiError(f"{what} takes true or false, got '{text}'")
    if isinstance(default, int | float):
        try:
            return type(default)(text)
        except ValueError:
            raise QxaiError(f"{what} takes a number like {default!r}, got '{text}'") from None
    return text
