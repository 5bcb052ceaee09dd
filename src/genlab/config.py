"""Settings dataclasses from JSON-like dicts: one reader for model and training settings."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from .errors import GenlabError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any], kind: str = "") -> T:
    """``cls(**values)``, refusing unknown names with the known ones, and restoring the tuples
    that JSON stores as lists (so that a config equals itself after a round trip). ``kind``
    names the settings in messages (``"training"``)."""
    kind = f"{kind} " if kind else ""
    if not isinstance(values, dict):
        raise GenlabError(f"{kind}settings for {cls.__name__} must be a mapping of names to values, "
                          f"got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise GenlabError(f"unknown {kind}setting(s) {', '.join(unknown)} for {cls.__name__}; "
                          f"known: {', '.join(sorted(names))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)
