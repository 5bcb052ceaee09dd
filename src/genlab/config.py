"""Settings dataclasses from JSON-like dicts: one reader for model and training settings, which
checks each value against the field's type before the dataclass sees it."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from .errors import GenlabError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any], kind: str = "") -> T:
    """``cls(**values)``, refusing unknown names (with the known ones) and values of the wrong
    type (with the type), and restoring the tuples that JSON stores as lists, so that a config
    equals itself after a round trip. ``kind`` names the settings in messages (``"training"``)."""
    kind = f"{kind} " if kind else ""
    if not isinstance(values, dict):
        raise GenlabError(f"{kind}settings for {cls.__name__} must be a mapping of names to values, "
                          f"got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise GenlabError(f"unknown {kind}setting(s) {', '.join(unknown)} for {cls.__name__}; "
                          f"known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    checked = {}
    for name, value in values.items():
        ok, value = _conform(value, hints[name])
        if not ok:
            raise GenlabError(f"`{name}` must be {_describe(hints[name])}, got {value!r}")
        checked[name] = value
    return cls(**checked)


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits ``hint``, the value with lists made tuples and whole floats ints)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            ok, conformed = _conform(value, option)
            if ok:
                return True, conformed
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is Any:
        return True, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return True, float(value)
    if hint is str:
        return isinstance(value, str), value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, value
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return False, value
        conformed = [_conform(v, h) for v, h in zip(value, items)]
        return all(ok for ok, _ in conformed), tuple(v for _, v in conformed)
    return True, value  # a type this reader does not check: the dataclass's own checks apply


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} numbers" if all(a in (int, float) for a in args) else f"a list of {len(args)}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_at_least(settings: Any, minimum: float, *names: str) -> None:
    """Refuse any of the named settings (a number, or each number of a tuple) below ``minimum``."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and any(v < minimum for v in (value if isinstance(value, tuple) else (value,))):
            raise GenlabError(f"`{name}` must be at least {minimum:g}, got {value}")
