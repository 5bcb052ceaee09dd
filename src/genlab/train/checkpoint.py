"""Run-folder checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is four files, each replaced atomically (temp file, then ``os.replace``):
``optimizer.safetensors``, ``rng.safetensors``, ``model.safetensors`` and, last,
``trainer_state.json``, the commit point. Each safetensors file records the step it belongs to,
so a resume can tell a consistent checkpoint from one interrupted between two renames.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..errors import GenlabError
from ..models.base import WEIGHTS_FILE, load_state, save_weights_atomic, write_json_atomic

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Flatten an optimizer's state into named tensors and its param groups into JSON."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, []
    for index, per_param in sd["state"].items():
        for key, value in per_param.items():
            name = f"state.{index}.{key}"
            if not torch.is_tensor(value):
                scalars.append(name)
                value = torch.tensor(value)
            tensors[name] = value
    return tensors, json.dumps({"param_groups": sd["param_groups"], "scalars": scalars})


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["optimizer"])
        state: dict[int, dict[str, Any]] = {}
        for name in f.keys():
            _, index, key = name.split(".", 2)
            value = f.get_tensor(name)
            state.setdefault(int(index), {})[key] = value.item() if name in meta["scalars"] else value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    rng: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    step = {"step": str(state["step"])}
    tensors, groups = optimizer_tensors(optimizer)
    save_weights_atomic(tensors, directory / OPTIMIZER_FILE, {**step, "optimizer": groups})
    save_weights_atomic(rng, directory / RNG_FILE, step)
    save_weights_atomic(model.state_dict(), directory / WEIGHTS_FILE, step)
    write_json_atomic(directory / STATE_FILE, state)


def has_checkpoint(directory: Path) -> bool:
    return (directory / STATE_FILE).exists()


def load_checkpoint(directory: Path, model, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model and optimizer in place; return the trainer state and the RNG tensors."""
    state = json.loads((directory / STATE_FILE).read_text())
    files = [directory / WEIGHTS_FILE, directory / OPTIMIZER_FILE, directory / RNG_FILE]
    for path in files:
        if not path.exists():
            raise GenlabError(f"{path} is missing; the run folder {directory} is incomplete")
        with safe_open(str(path), framework="pt") as f:
            saved_step = (f.metadata() or {}).get("step")
        if saved_step != str(state["step"]):
            raise GenlabError(
                f"{path.name} is from step {saved_step} but {STATE_FILE} from step {state['step']}: "
                f"the run was stopped while saving; it cannot resume exactly, start a new run"
            )
    load_state(model, files[0])
    load_optimizer(optimizer, files[1])
    with safe_open(str(files[2]), framework="pt") as f:
        rng = {k: f.get_tensor(k) for k in f.keys()}
    return state, rng
