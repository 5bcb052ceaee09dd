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

from ..errors import GenlabError, first_line
from ..models.base import DAMAGED, WEIGHTS_FILE, load_state, save_weights_atomic, write_json_atomic

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


def optimizer_tensors(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], str]:
    """Flatten named optimizers' states into tensors ``NAME/INDEX.KEY`` and their param groups
    (and which values were plain numbers) into JSON."""
    tensors, meta = {}, {}
    for opt_name, optimizer in optimizers.items():
        sd = optimizer.state_dict()
        scalars = []
        for index, per_param in sd["state"].items():
            for key, value in per_param.items():
                name = f"{opt_name}/{index}.{key}"
                if not torch.is_tensor(value):
                    scalars.append(name)
                    value = torch.tensor(value)
                tensors[name] = value
        meta[opt_name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, json.dumps(meta)


def load_optimizers(optimizers: dict[str, torch.optim.Optimizer], path: Path) -> None:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["optimizers"])
        if set(meta) != set(optimizers):
            raise GenlabError(f"{path} holds optimizers {sorted(meta)}, the model has {sorted(optimizers)}")
        states: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in meta}
        for name in f.keys():
            opt_name, rest = name.split("/", 1)
            index, key = rest.split(".", 1)
            value = f.get_tensor(name)
            scalar = name in meta[opt_name]["scalars"]
            states[opt_name].setdefault(int(index), {})[key] = value.item() if scalar else value
    for opt_name, optimizer in optimizers.items():
        optimizer.load_state_dict({"state": states[opt_name], "param_groups": meta[opt_name]["param_groups"]})


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    rng: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    step = {"step": str(state["step"])}
    tensors, meta = optimizer_tensors(optimizers)
    save_weights_atomic(tensors, directory / OPTIMIZER_FILE, {**step, "optimizers": meta})
    save_weights_atomic(rng, directory / RNG_FILE, step)
    save_weights_atomic(model.state_dict(), directory / WEIGHTS_FILE, step)
    write_json_atomic(directory / STATE_FILE, state)


def has_checkpoint(directory: Path) -> bool:
    return (directory / STATE_FILE).exists()


def read_state(directory: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint, with one clear line if it is not what the trainer wrote."""
    path = directory / STATE_FILE
    try:
        state = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GenlabError(f"{path} cannot be read ({err}); {DAMAGED}") from None
    expected = {"epoch": int, "batch": int, "step": int, "elapsed_s": (int, float), "sums": dict, "seen": int,
                "done": bool}
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) or isinstance(state.get(k), bool) != (t is bool)
                                          for k, t in expected.items()):
        raise GenlabError(f"{path} does not hold a trainer state (epoch, batch, step, ... as numbers); {DAMAGED}")
    return state


def load_checkpoint(directory: Path, model, optimizers: dict[str, torch.optim.Optimizer]
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model and optimizers in place; return the trainer state and the RNG tensors."""
    state = read_state(directory)
    files = [directory / WEIGHTS_FILE, directory / OPTIMIZER_FILE, directory / RNG_FILE]
    for path in files:
        if not path.exists():
            raise GenlabError(f"{path} is missing; the run folder {directory} is incomplete")
        try:
            with safe_open(str(path), framework="pt") as f:
                saved_step = (f.metadata() or {}).get("step")
        except Exception as err:  # safetensors' own errors, and OSError
            raise GenlabError(f"{path} is not a readable safetensors file ({first_line(err)}); "
                              f"{DAMAGED}") from None
        if saved_step != str(state["step"]):
            raise GenlabError(
                f"{path.name} is from step {saved_step} but {STATE_FILE} from step {state['step']}: "
                f"the run was stopped while saving; it cannot resume exactly, start a new run"
            )
    load_state(model, files[0])
    try:
        load_optimizers(optimizers, files[1])
        with safe_open(str(files[2]), framework="pt") as f:
            rng = {k: f.get_tensor(k) for k in f.keys()}
        if not {"torch_cpu", "shuffle_epoch_start"} <= set(rng):
            raise ValueError("the random states are missing")
    except GenlabError:
        raise
    except Exception as err:  # a file whose header parses but whose contents do not fit
        raise GenlabError(f"the optimizer or random state in {directory} cannot be restored "
                          f"({first_line(err)}); {DAMAGED}") from None
    return state, rng
