"""The settings that flags set: every field of the training settings and of each registered
model config, with how a flag reads it (its type, its ``Literal`` choices) and its help (the
description in its dataclass's ``Attributes:`` docstring section). The CLI makes its flags from
these, so a new setting needs no edit of the CLI."""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

#: config fields that describe the training data: a run reads them from its dataset, not from flags
DATA_FIELDS = ("image_shape", "num_classes", "condition_shape")


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` sections of the docstrings of ``cls`` and
    its bases (a subclass's description wins), as one line of plain text each. An entry is
    ``name: text`` (or ``a, b: text`` for several), continued on more deeply indented lines."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_parse_attributes(klass.__dict__.get("__doc__") or ""))
    return docs


def _parse_attributes(doc: str) -> dict[str, str]:
    lines = doc.expandtabs().splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"\s*Attributes\b.*:\s*$", line)), None)
    if start is None:
        return {}
    entries: dict[str, list[str]] = {}
    indent, current = None, []
    for line in lines[start + 1:]:
        if not line.strip():
            if current:
                break   # a blank line ends the section
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        entry = re.fullmatch(r"([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*:\s*(.*)", line.strip())
        if depth == indent and entry:
            current = [entry[2]]
            for name in re.split(r"\s*,\s*", entry[1]):
                entries[name] = current
        elif current:
            current.append(line.strip())
    return {name: _plain(" ".join(text)) for name, text in entries.items()}


def _plain(text: str) -> str:
    """reStructuredText markup as plain text: ``x`` -> x, :class:`~a.B` -> B."""
    text = re.sub(r":\w+:`~?([^`]*\.)?([^`.]+)`", r"\2", text)
    return re.sub(r"\s+", " ", text.replace("``", "")).strip()


def flag_kind(hint: Any) -> tuple[str, tuple]:
    """How a flag reads a setting of type ``hint``: (``bool``, ``int``, ``float``, ``str``,
    ``ints`` or ``floats`` (comma-separated), ``choice`` (with the choices) or ``json``, choices)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return merged_kind([flag_kind(a) for a in options]) if options else ("json", ())
    if origin is typing.Literal:
        return "choice", args
    if hint in (bool, int, float, str):
        return hint.__name__, ()
    if origin is tuple:
        items = {a for a in args if a is not Ellipsis}
        if items and items <= {int}:
            return "ints", ()
        if items and items <= {int, float}:
            return "floats", ()
    return "json", ()


def merged_kind(kinds: list[tuple[str, tuple]]) -> tuple[str, tuple]:
    """The most general of several ways to read a setting (one name, several types)."""
    names = {name for name, _ in kinds}
    if names == {"choice"}:
        return "choice", tuple(dict.fromkeys(c for _, choices in kinds for c in choices))
    if len(names) == 1:
        return kinds[0]
    if names == {"str", "choice"}:
        return "str", ()   # each config refuses what it does not take
    if names & {"ints", "floats"} and names <= {"int", "float", "ints", "floats"}:
        return ("ints" if names <= {"int", "ints"} else "floats"), ()   # a list wins: one number is a list of one
    return "json", ()


def setting_fields() -> dict[str, dict[str, Any]]:
    """Every setting a flag of ``genlab train`` sets: ``{field: {"training": bool, "hints": [...],
    "help": str}}``, from :class:`~genlab.train.TrainConfig` (first) and the config classes of
    every registered family's model classes; the fields that describe the data
    (:data:`DATA_FIELDS`) are not settings. The help is the field's description, with the models
    that take it when not all do (a description for each group of models where they differ)."""
    from .registry import FAMILIES
    from .train import TrainConfig

    configs: dict[type, list[str] | None] = {TrainConfig: None}   # None: every model
    for record in FAMILIES:
        for cls in record.classes():
            configs.setdefault(cls.config_class, [])
        for preset in record.presets:
            configs.setdefault(record.model_class_of(preset).config_class, []).append(preset)
    every = [preset for record in FAMILIES for preset in record.presets]
    fields: dict[str, dict[str, Any]] = {}
    for config, models in configs.items():
        docs, hints = attribute_docs(config), typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            if f.name not in DATA_FIELDS:
                entry = fields.setdefault(f.name, {"training": config is TrainConfig, "hints": [], "docs": {}})
                entry["hints"].append(hints[f.name])
                entry["docs"].setdefault(docs.get(f.name, ""), []).extend(every if models is None else models)
    for entry in fields.values():
        docs = entry.pop("docs")
        models = [m for group in docs.values() for m in group]
        described = {doc: group for doc, group in docs.items() if doc}
        if len(described) > 1:
            entry["help"] = "; ".join(f"{', '.join(group)}: {doc.rstrip('.')}" for doc, group in described.items())
        elif set(models) >= set(every):
            entry["help"] = "".join(described)
        else:
            entry["help"] = f"{''.join(described)} [{', '.join(models)}]".lstrip()
    return fields
