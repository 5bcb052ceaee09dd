"""The run folder: what a training run writes, where, and under which name.

A run folder holds ``config.json`` (model, training and data settings, seed, versions),
``model.safetensors`` (weights), the optimizer and RNG state for resume (safetensors),
``trainer_state.json``, ``metrics.jsonl`` (one line per epoch) and ``snapshots/``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_name(model_name: str, data_name: str, settings: Mapping[str, Any] | None = None) -> str:
    """The default name of a run folder: ``MODEL-DATA``, or what the model's family makes of it
    (``Family.run_name``: CycleGAN adds its second domain). Data given by a file
    (``volume:scans/rock.tif,edge=64``) is named by the file's stem (``porous-gan-rock``)."""
    from .registry import family_of

    if ":" in data_name:
        data_name = Path(data_name.partition(":")[2].split(",")[0]).stem or data_name.partition(":")[0]
    data_name = data_name.replace(":", "-").replace("/", "_")
    hook = family_of(model_name).run_name
    return hook(model_name, data_name, settings or {}) if hook else f"{model_name}-{data_name}"


def default_run_dir(name: str, resume: bool = False, root: str = "runs") -> Path:
    """``runs/NAME`` (a :func:`run_name`), or with a suffix ``-2``, ``-3``... when taken. With
    ``resume``, the latest existing one."""
    stem = Path(root) / name
    candidates = [stem] + [stem.with_name(f"{stem.name}-{i}") for i in range(2, 1000)]
    taken = [p for p in candidates if p.exists()]
    if resume:
        return taken[-1] if taken else stem
    return next(p for p in candidates if not p.exists())
