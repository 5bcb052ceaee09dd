"""The run folder: what a training run writes, where, under which name, and how it is read back.

This module alone knows the folder's format; the trainer, the model's ``save``, the registry's
``load_model`` and the tools take every file name, reader and writer from here. A run folder
holds::

    config.json              family, name and model settings; a run adds train, data, versions
    model.safetensors        the weights
    optimizer.safetensors    the optimizers' state    } a checkpoint, for an exact resume
    rng.safetensors          the random states        }
    trainer_state.json       epoch, step, sums...     } (written last: the commit point)
    metrics.jsonl            one JSON line per epoch
    snapshots/               pictures taken while training
    .lock                    held by the process that trains into the folder (its pid and host)

Every file is replaced atomically through :func:`genlab.files.write_atomic` (metrics.jsonl is
appended to, a line at a time). Each safetensors file of a checkpoint records the step it belongs
to, so a resume can tell a consistent checkpoint from one interrupted between two renames. Reading
a damaged or foreign folder gives one clear line naming the file, never a traceback.

One process at a time trains into a folder (:func:`locked`), and a run goes only where nothing but a
run's own files lie (:func:`check_out_dir`): an empty or new folder, a run to resume, or what a run
left before its first checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .data import ImageDataset, load_dataset
from .errors import GenlabError, first_line
from .files import save_weights_atomic, write_json_atomic, write_text_atomic
from .version import __version__

if TYPE_CHECKING:
    from .models.base import GenerativeModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.jsonl"
SNAPSHOTS = "snapshots"
LOCK_FILE = ".lock"
#: the files of a run folder that a tool's `--out` must never name
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE, RNG_FILE, STATE_FILE, METRICS_FILE, LOCK_FILE)

DAMAGED = "the run folder is damaged: restore the file or train the run again"


# --------------------------------------------------------------------- names
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
    ``resume``, the latest one that holds a checkpoint."""
    stem = Path(root) / name
    candidates = [stem] + [stem.with_name(f"{stem.name}-{i}") for i in range(2, 1000)]
    taken = [p for p in candidates if p.exists()]
    if resume:  # the latest that holds a checkpoint (not one that failed before its first)
        runs = [p for p in taken if has_checkpoint(p)]
        return runs[-1] if runs else taken[-1] if taken else stem
    return next(p for p in candidates if not p.exists())


# --------------------------------------------------------------------- the folder
#: a temporary file of :func:`genlab.files.write_atomic`, left by a process that was killed
_TEMPORARY = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")


def check_out_dir(directory: str | os.PathLike, resume: bool | None = False) -> None:
    """Refuse a run folder that cannot take this run, in one line: a file; with ``resume``, a
    folder without a checkpoint; without it, a folder that holds a run, or anything that is not a
    run's own (someone else's config.json, any other file). A new or empty folder, or what a run
    left before its first checkpoint (its config.json, metrics, snapshots), takes a new run.
    ``resume=None``: only whether the folder holds a run or nothing of anyone else's."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise GenlabError(f"{path} is a file, not a folder; choose another `out_dir`")
    if has_checkpoint(path):
        if resume is False:
            raise GenlabError(f"{path} already holds a run; continue it with `resume=True` or choose another "
                              "`out_dir`")
        return
    if resume:
        raise GenlabError(f"nothing to resume in {path}: it holds no checkpoint")
    if not path.exists():
        return
    names = sorted(p.name for p in path.iterdir() if p.name != LOCK_FILE and not _TEMPORARY.match(p.name))
    ours = is_run_config(path / CONFIG_FILE)
    foreign = [n for n in names if not (ours and n in (CONFIG_FILE, METRICS_FILE, SNAPSHOTS))]
    if foreign:
        what = (f"a {CONFIG_FILE} that is not a genlab run's" if foreign == [CONFIG_FILE] else
                f"files that are not a genlab run's ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})")
        raise GenlabError(f"{path} holds {what}; train into a new or empty folder (`out_dir`)")


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is the config.json of a genlab run (a JSON object naming a family and
    holding model and training settings)."""
    try:
        config = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("family"), str) and \
        isinstance(config.get("model"), dict) and isinstance(config.get("train"), dict)


@contextlib.contextmanager
def locked(directory: str | os.PathLike, remove_if_alone: bool = False) -> Iterator[None]:
    """Hold the lock of the run folder ``directory`` (created if need be), which names this
    process (pid and host); another process that holds it gets one line naming it. The lock goes
    with the process, however it ends. ``remove_if_alone``: remove the folder at the end if it
    holds nothing but the lock file (a new run that failed before writing anything)."""
    from filelock import FileLock, Timeout

    path = Path(directory) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)

    def name_holder(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())

    lock = FileLock(str(path), timeout=0, on_acquired=name_holder)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = path.read_text(errors="replace").strip() or "a process"
        except OSError:
            holder = "a process"
        raise GenlabError(f"{directory} is being written by another genlab run ({holder}); wait for it to end, "
                          "or choose another `out_dir`") from None
    try:
        yield
    finally:
        try:
            if remove_if_alone and [p.name for p in path.parent.iterdir()] == [LOCK_FILE]:
                path.unlink()
                path.parent.rmdir()
        except OSError:
            pass
        finally:
            lock.release()


def check_not_run_file(path: str | os.PathLike) -> None:
    """Refuse an output path that is one of a run folder's own files (``evaluate RUN --out
    RUN/config.json``): writing it would destroy the run."""
    target = Path(path).resolve()
    if target.name in RUN_FILES and (target.parent / CONFIG_FILE).is_file():
        raise GenlabError(f"{path} is a file of the run in {target.parent}; writing it would destroy the run, "
                          "choose another path for `out`")


# --------------------------------------------------------------------- config.json
def versions() -> dict[str, str]:
    import numpy

    return {"genlab": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def run_config(model: GenerativeModel, train: Any, train_data: ImageDataset,
               val_data: ImageDataset | None) -> dict[str, Any]:
    """The config.json of a run: the model's (family, name, settings), the training settings
    (a dataclass), a description of the data and the versions of the libraries."""
    return {
        **model.config_dict(),
        "train": dataclasses.asdict(train),
        "data": {"name": train_data.name, "image_shape": list(train_data.image_shape),
                 "class_names": train_data.class_names, "train_size": len(train_data),
                 "val_size": len(val_data) if val_data else 0},
        "versions": versions(),
    }


def write_config(directory: str | os.PathLike, config: dict[str, Any]) -> None:
    write_json_atomic(Path(directory) / CONFIG_FILE, config)


def folder_path(directory: Any, what: str = "a run folder") -> Path:
    """``directory`` (a str or path-like) as a Path; anything else (None, a number) gets one line."""
    if isinstance(directory, bytes):
        directory = os.fsdecode(directory)
    if not isinstance(directory, (str, os.PathLike)) or not str(directory):
        shown = repr(directory) if isinstance(directory, str) else type(directory).__name__
        raise GenlabError(f"give the path of {what} (a str or pathlib.Path), not {shown}")
    return Path(directory)


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in ``directory/config.json``, with one clear line if it is missing or is
    not a JSON object."""
    path = folder_path(directory, "a model or run folder") / CONFIG_FILE
    if not path.is_file():
        raise GenlabError(f"no {CONFIG_FILE} in {directory}; is it a genlab model or run folder?")
    try:
        config = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GenlabError(f"{path} is not valid JSON ({err}); {DAMAGED}") from None
    if not isinstance(config, dict):
        raise GenlabError(f"{path} holds a JSON {type(config).__name__}, not the object of a run's settings; {DAMAGED}")
    for section in ("model", "train", "data"):
        if not isinstance(config.get(section, {}), dict):
            raise GenlabError(f"{path} has a '{section}' entry that is not a section of settings; {DAMAGED}")
    return config


# --------------------------------------------------------------------- weights
def write_model(directory: str | os.PathLike, config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """``config.json`` and ``model.safetensors`` (what :meth:`GenerativeModel.save` writes)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_config(directory, config)
    save_weights_atomic(state, directory / WEIGHTS_FILE)


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor a safetensors file declares, read from its header
    without loading a tensor; one clear line if the file is missing, truncated or not safetensors."""
    if not path.is_file():
        raise GenlabError(f"no weights at {path}; the run has not written its first checkpoint yet")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as err:  # safetensors raises its own error types, and OSError
        raise GenlabError(f"{path} is not a readable safetensors file ({first_line(err)}); "
                          f"{DAMAGED}") from None


def check_fits_in_memory(model: GenerativeModel, source: Path) -> None:
    """Refuse a model (built on the meta device: no memory yet) whose parameters and buffers
    would not fit in the memory the system has left, naming the sizes."""
    from .memory import available_bytes

    needed = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    free = available_bytes()
    if free is not None and needed > free:
        raise GenlabError(f"the model that {source} describes has {needed / 2**30:.1f} GiB of weights, more than the "
                          f"{free / 2**30:.1f} GiB of memory left; check its settings (widths, latent size)")


def load_state(model: GenerativeModel, path: Path) -> None:
    """Load safetensors weights into ``model``, with one clear line on any mismatch."""
    check_weights(model, path)
    try:
        state = _renamed_legacy_keys(load_file(str(path), device=str(model.device)), model)
    except Exception as err:
        raise GenlabError(f"{path} could not be read ({first_line(err)}); {DAMAGED}") from None
    own = model.state_dict()
    for key in getattr(model, "derived_state", ()):   # weights saved before these buffers existed
        state.setdefault(key, own[key])
    model.load_state_dict(state)


def check_weights(model: GenerativeModel, path: Path) -> None:
    """The tensors the weights file ``path`` declares (read from its header, nothing loaded)
    against those of ``model`` (which may live on the meta device): names, then shapes."""
    own = model.state_dict()
    declared = _renamed_legacy_keys(weight_shapes(path), model)
    missing = sorted(set(own) - set(declared) - set(getattr(model, "derived_state", ())))
    unexpected = sorted(set(declared) - set(own))
    if missing or unexpected:
        raise GenlabError(
            f"the weights in {path} do not belong to this {model.family} model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); check the run folder"
        )
    for key, shape in declared.items():
        if tuple(own[key].shape) != shape:
            raise GenlabError(
                f"weight '{key}' in {path} has shape {shape} but the model "
                f"expects {tuple(own[key].shape)}; the config and the weights disagree"
            )


def _renamed_legacy_keys(state: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """Weights written before the moving average became one mechanism: ``generator_ema.*`` (GAN)
    and ``net_ema.*`` (diffusion) are now ``ema.generator.*`` and ``ema.net.*``; a diffusion model
    without an average used to save its counter anyway."""
    renamed = {}
    for key, tensor in state.items():
        for old, new in (("generator_ema.", "ema.generator."), ("net_ema.", "ema.net.")):
            if key.startswith(old):
                key = new + key[len(old):]
        renamed[key] = tensor
    if "ema_updates" in renamed and "ema_updates" not in model.state_dict():
        del renamed["ema_updates"]
    return renamed


# --------------------------------------------------------------------- metrics.jsonl
def append_metrics(directory: Path, record: dict[str, Any]) -> None:
    """Add one epoch's record as a line of ``metrics.jsonl``."""
    with open(Path(directory) / METRICS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (none if there is no such file yet)."""
    path = Path(directory) / METRICS_FILE
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GenlabError(f"{path} is not one JSON record a line ({err}); the run folder is damaged") from None


def truncate_metrics(directory: Path, step: int) -> None:
    """Drop lines logged after ``step`` (an interrupted epoch, when resuming from a checkpoint at
    ``step``), and any line that is not a record (the tail of a write cut short)."""
    path = Path(directory) / METRICS_FILE
    if path.exists():
        kept = [ln for ln in path.read_text(errors="replace").splitlines() if _record_step(ln) <= step]
        write_text_atomic(path, "".join(ln + "\n" for ln in kept))


def _record_step(line: str) -> float:
    """The step of a metrics line; infinity for a line that is not a record."""
    try:
        record = json.loads(line)
        return float(record["step"]) if isinstance(record, dict) else math.inf
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return math.inf


# --------------------------------------------------------------------- checkpoints
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
    """Optimizers, random states, weights and, last, the trainer state (the commit point)."""
    step = {"step": str(state["step"])}
    tensors, meta = optimizer_tensors(optimizers)
    save_weights_atomic(tensors, directory / OPTIMIZER_FILE, {**step, "optimizers": meta})
    save_weights_atomic(rng, directory / RNG_FILE, step)
    saved = model.saved_state() if hasattr(model, "saved_state") else model.state_dict()
    save_weights_atomic(saved, directory / WEIGHTS_FILE, step)
    write_json_atomic(directory / STATE_FILE, state)


def has_checkpoint(directory: Path) -> bool:
    return (Path(directory) / STATE_FILE).exists()


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


# --------------------------------------------------------------------- a run, loaded
@dataclass
class Run:
    """A run folder: its ``model`` (in eval mode), its ``config`` and its ``metrics``."""

    path: Path
    model: GenerativeModel
    config: dict[str, Any]

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    @property
    def dataset_name(self) -> str:
        name = self.config.get("data", {}).get("name", "")
        return name if isinstance(name, str) else ""

    def dataset(self, split: str = "test", data_dir: str | os.PathLike | None = None) -> ImageDataset:
        """The split of the dataset the run was trained on."""
        from .registry import family_of

        name = self.dataset_name
        if not name or name == "arrays":
            raise GenlabError(f"{self.path} does not record a loadable dataset; pass `data`")
        data = load_dataset(name, split, data_dir)
        prepare = family_of(self.model).prepare_data
        if prepare is None:
            return data
        return prepare(data, self.config.get("model", {}), data_dir, self.config.get("train", {}).get("seed", 0))


def load_run(path: str | os.PathLike, family: str | None = None, map_location: str | None = None) -> Run:
    """Load a run folder. ``family`` (e.g. ``"vae"``) checks that it holds that kind of model."""
    from .registry import FAMILIES, load_model

    path = folder_path(path)
    if not path.is_dir():
        raise GenlabError(f"no run folder at {path}; train one with `genlab train MODEL --out {path}`")
    config = read_config(path)
    if family is not None and not any(f.answers_to(config.get("family")) for f in FAMILIES if f.answers_to(family)):
        raise GenlabError(f"{path} holds a {config.get('family')} model, not a {family} model")
    model = load_model(path, map_location)
    model.run_dir = path
    return Run(path=path, model=model, config=config)
