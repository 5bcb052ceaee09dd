"""Settings dataclasses from JSON-like dicts: one reader for model and training settings, which
checks each value against the field's type before the dataclass sees it; and the fields every
model config has (:class:`ModelConfig`, also :mod:`genlab.models`'), which shared layers (``nn/``)
build on without importing the models."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
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
        if not ok and _choices(hints[name]):
            shown = f"'{value}'" if isinstance(value, str) else repr(value)
            raise GenlabError(f"unknown {name} {shown}; choose one of: {', '.join(map(str, _choices(hints[name])))}")
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
    if origin is typing.Literal:  # one of the choices, of the choice's own type (True is not 1; 2.0 is 2)
        for choice in args:
            if value == choice and (type(value) is type(choice) or (type(value), type(choice)) == (float, int)):
                return True, choice
        return False, value
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


def _choices(hint: Any) -> tuple:
    """The choices of a ``Literal`` setting (or of one that may also be None); () for others."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return args
    if origin in (typing.Union, types.UnionType):
        return tuple(c for a in args for c in _choices(a))
    return ()


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
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


@dataclass
class ModelConfig:
    """Fields every model config has.

    Attributes:
        image_shape: (C, *spatial) of one image: (C, H, W), or (C, D, H, W) for a volume.
        num_classes: classes of the labels, for a class-conditional model.
        ema_decay: decay of the moving average of the weights that evaluation and sampling use,
            reached after a warm-up (the decay after n updates is min(ema_decay, (1 + n) / (10 + n)));
            0 turns it off.
    """

    image_shape: tuple[int, ...] = (1, 28, 28)
    num_classes: int | None = None
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        shape = tuple(self.image_shape)
        if len(shape) < 2 or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise GenlabError(f"image_shape must be (C, *spatial) with positive integers, e.g. (1, 28, 28); "
                              f"got {self.image_shape}")
        self.image_shape = shape
        if not 0.0 <= self.ema_decay < 1.0:
            raise GenlabError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        return from_dict(cls, values)

    #: the values that settings added since had in runs saved before them (a default that changed
    #: later must not change an old run): a saved config lacking one gets it from here
    SAVED_BEFORE: typing.ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> "ModelConfig":
        """The config of a run's saved settings: those it lacks as they were before they existed."""
        return cls.from_dict({**cls.SAVED_BEFORE, **values})

    @property
    def num_pixels(self) -> int:
        """Numbers per image: C times the product of the spatial sides."""
        return math.prod(self.image_shape)

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return len(self.image_shape) - 1


def require_planar(config: ModelConfig, what: str) -> tuple[int, int, int]:
    """(C, H, W) of a config whose networks are 2-D; a clear error for volumes."""
    if config.spatial_dims != 2:
        raise GenlabError(f"{what} is built for 2-D images (C, H, W); this data has shape "
                          f"{tuple(config.image_shape)}")
    return config.image_shape  # type: ignore[return-value]
