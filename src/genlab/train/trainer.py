"""The training loop: one loop for every gradient-trained family, plus closed-form fits.

The trainer knows nothing of model names or families. A model says what to minimise
(:meth:`~genlab.models.GenerativeModel.objective`, one per named optimizer, in the order of
:meth:`~genlab.models.GenerativeModel.update_order`); the trainer alone does the rest: zero_grad,
backward, gradient clipping, the optimizer step, the learning-rate schedule, mixed precision
(``precision``: autocast to bf16 or fp16 on CPU and CUDA), gradient accumulation, the moving
average of the weights (:meth:`~genlab.models.GenerativeModel.update_average`) and data-parallel
training. A model whose capabilities say ``closed_form`` is fitted by ``model.fit`` instead.

Data-parallel training (``torchrun``, :mod:`genlab.train.distributed`): ``batch_size`` is the
global batch. Every process draws the same permutation of the training split, takes its share of
each global batch, and runs the model wrapped in ``DistributedDataParallel``, which averages the
gradients; batch norm uses the global batch's statistics; the random draws of each image are the
same in any number of processes (:class:`~genlab.data.batch.StepNoise`). So N processes train the
same run as one, up to the order of floating-point sums, and a run can resume with another number
of processes. Only rank 0 writes files.

A run folder (:mod:`genlab.runs`, which owns its format) holds ``config.json`` (model, training
and data settings, seeds, versions), ``model.safetensors``, the optimizer and RNG state,
``trainer_state.json`` and ``metrics.jsonl`` (one JSON line per epoch). A checkpoint is written
every ``checkpoint_minutes`` of training (within an epoch too), every ``checkpoint_every`` steps if
set, at the end of the run, and when the run is interrupted (Ctrl-C, or SIGTERM and SIGHUP, as a
scheduler preempts a job), so ``resume=True`` continues exactly where it stopped: same batches,
same random draws, same losses. Rank 0 holds the run folder's lock while it trains
(:func:`genlab.runs.locked`).

The work at the end of an epoch is kept to a few percent of a run's time
(benchmarks/epoch_overhead.py): validation measures a fixed subset of ``val_images``, and
snapshots are taken as often as ``snapshot_budget`` of the training time pays for (64 samples
take milliseconds from one model, as long as many training steps from another).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from ..config import check_at_least, from_dict
from ..data.augment import step_draws
from .report import Callback, Reporter, check_tensorboard
from ..data.base import ImageDataset
from ..data.batch import Batch, StepNoise
from ..data.transforms import binarize
from ..devices import busy_cores, check_device
from ..errors import GenlabError, check_seed
from ..models.base import Diverged, GenerativeModel, check_finite
from ..viz import save_grid
from . import distributed
from ..registry import build_model, family_of, model_from_config, model_settings
from ..runs import (CONFIG_FILE, SNAPSHOTS, append_metrics, check_out_dir, default_run_dir, has_checkpoint,
                    load_checkpoint, locked, read_config, run_config, run_name, save_checkpoint, truncate_metrics,
                    write_config)

PRECISIONS = ("fp32", "bf16", "fp16", "auto")


LR_SCHEDULES = ("constant", "cosine", "linear-decay")
#: what the run's time counts (``clock``): seconds on the clock, or this process's CPU time
CLOCKS = {"wall": lambda: time.perf_counter(), "cpu": lambda: time.process_time()}


@dataclass
class TrainConfig:
    """Settings of a training run.

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step: the global batch, shared out among the processes of a
            data-parallel run and split into ``grad_accumulation`` micro-batches.
        grad_accumulation: micro-batches per step, whose gradients add up before the step (the
            same step as one batch, in less memory).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (matrix products and convolutions in
            16 bits, sums and losses in 32; fp16 with a gradient scaler); ``auto``: bf16 where the
            device computes it natively (a CUDA GPU that supports it, a CPU with AVX-512 BF16 or
            AMX), otherwise fp32. The run's config.json records the precision used.
        channels_last: keep the weights of 2-D and 3-D convolutions and the batch images
            channels-last (NHWC, NDHWC), the layout oneDNN's and cuDNN's fastest convolution
            kernels use. The results are those of the default layout up to the order of
            floating-point sums; checkpoints are the same.
        fused_optimizer: AdamW's fused kernel (PyTorch's ``fused=True``, on CPU and CUDA): the same
            update in one pass over each weight instead of several; off, the multi-tensor one.
            Data-parallel runs use the multi-tensor one.
        lr: peak learning rate of AdamW.
        lr_schedule: the learning rate over the run: ``constant``, ``cosine`` (decays to 0
            over the run; needs no state) or ``linear-decay`` (constant for the first half of
            the run, then linearly to 0, as CycleGAN trains).
        max_minutes: stop once the training steps have taken this many minutes (0: no limit), with
            a checkpoint, as at the end of the run. With a decaying schedule the learning rate then
            decays over whichever ends first, the steps or the minutes, so that a run cut short by
            the clock still ends near zero; the schedule then depends on the machine's speed.
        max_steps: stop once the run has taken this many steps in all (0: no limit), in the middle
            of an epoch if need be, with a checkpoint. Resumed with a larger ``max_steps`` (or 0),
            the run goes on exactly as if it had not stopped: the schedule spans ``epochs``, not
            ``max_steps``, and the epoch under way continues with its batches (what a benchmark
            that measures a model every N steps, or a job with a step budget, needs).
        clock: what the training time counts (``max_minutes``, ``checkpoint_minutes``, ``time_s``
            in ``metrics.jsonl``, the ETA): ``wall``, seconds on the clock; ``cpu``, this process's
            CPU time, all its threads together. On a machine other work shares, a budget of CPU time
            trains as far whatever else runs (with one thread, it is the time of a core of its own);
            with N threads it is about N times the time on the clock.
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: clip the gradient norm to this value; 0 turns clipping off.
        seed: seeds the batch order and every random draw of the run.
        binarize: draw binary pixels afresh each batch (dynamic binarization); ``None`` means
            "when the model's likelihood is Bernoulli". Validation binarizes once, with a fixed seed.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        checkpoint_every: also checkpoint every this many steps (0: not by steps).
        checkpoint_minutes: checkpoint whenever this many minutes of training have passed since the
            last checkpoint, within an epoch too; 0: at every epoch end instead. A run also
            checkpoints at its end and when it is stopped (Ctrl-C, SIGTERM, SIGHUP); a run killed
            outright (SIGKILL, a power cut) resumes from its last checkpoint, as exactly.
        snapshot_every: write a picture of the model every this many steps (0: at epoch ends, as
            ``snapshot_budget`` allows): samples from a fixed z, or for a model without a prior,
            reconstructions of fixed validation images; ``snapshots/progress.gif`` animates them at
            the end. -1 turns snapshots off.
        snapshot_budget: the share of the training time that epoch-end snapshots may take: an
            epoch ends with one when the training since the last took at least 1/budget times as
            long as that snapshot did (1: every epoch). The first epoch end of a run (or of its
            resumption) and the end of the run always have one.
        val_images: how many images of the validation split the end of each epoch measures: a
            random subset, the same for every epoch and every run (seed 0); 0: the whole split
            (as ``genlab evaluate`` does).
        tensorboard: also write each epoch's numbers as TensorBoard scalars to RUN/tensorboard/
            (needs the ``tensorboard`` package: the extra ``genlab[tensorboard]``).
        threads: CPU threads of a run on the CPU; 0 (auto): PyTorch's number, or fewer when other
            processes keep cores busy as the process's first run starts (measured once, from
            /proc/stat): threads that wait on a busy core hold every step back, and one thread
            on a free core ran the VAE 7x faster than two beside another job (docs/training.md).
            ``OMP_NUM_THREADS``, where set, is kept. Runs with other thread counts give the same
            results up to the order of floating-point sums.
    """

    epochs: int = 20
    batch_size: int = 128
    grad_accumulation: int = 1
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    channels_last: bool = False
    fused_optimizer: bool = True
    lr: float = 1e-3
    lr_schedule: Literal["constant", "cosine", "linear-decay"] = "constant"
    max_minutes: float = 0.0
    max_steps: int = 0
    clock: Literal["wall", "cpu"] = "wall"
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    seed: int = 0
    binarize: bool | None = None
    device: str = "auto"
    checkpoint_every: int = 0
    checkpoint_minutes: float = 5.0
    snapshot_every: int = 0
    snapshot_budget: float = 0.02
    val_images: int = 2000
    tensorboard: bool = False
    threads: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accumulation < 1:
            raise GenlabError("epochs, batch_size and grad_accumulation must be at least 1")
        if self.precision not in PRECISIONS:
            raise GenlabError(f"unknown precision '{self.precision}'; choose one of: {', '.join(PRECISIONS)}")
        if not (self.lr > 0):
            raise GenlabError(f"the learning rate must be positive, got {self.lr}")
        if self.clock not in CLOCKS:
            raise GenlabError(f"unknown clock '{self.clock}'; choose one of: {', '.join(CLOCKS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise GenlabError(f"unknown lr_schedule '{self.lr_schedule}'; choose one of: {', '.join(LR_SCHEDULES)}")
        if not (self.max_minutes >= 0):
            raise GenlabError(f"max_minutes must be >= 0 (0: no limit), got {self.max_minutes}")
        check_at_least(self, 0, "max_steps", "weight_decay", "grad_clip", "checkpoint_every", "checkpoint_minutes",
                       "val_images", "threads")
        check_at_least(self, -1, "snapshot_every")
        if not (self.snapshot_budget > 0):
            raise GenlabError(f"`snapshot_budget` must be above 0 (1: every epoch), got {self.snapshot_budget}")
        check_seed(self.seed)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        return from_dict(cls, values, "training")


def check_processes(config: TrainConfig, world: int) -> None:
    """Refuse settings that a run in ``world`` data-parallel processes cannot take."""
    if world < 1:
        raise GenlabError(f"`nproc` must be at least 1, got {world}")
    if config.batch_size % world:
        raise GenlabError(f"`batch_size` {config.batch_size} does not split evenly over {world} processes; "
                          "choose a multiple of the number of processes")
    if config.max_minutes and world > 1:
        raise GenlabError("`max_minutes` stops each process on its own clock, which data-parallel training "
                          "cannot allow; set `epochs` instead")


def check_before_launch(model: str, nproc: int, out_dir: str | os.PathLike, resume: bool = False,
                        **overrides: Any) -> None:
    """The training settings of a run of ``model`` in ``nproc`` processes (its family's defaults,
    a resumed run's own, ``overrides``), checked once before the processes start: each would
    otherwise say the same thing."""
    saved = _saved_run_config(out_dir) if resume else None
    base = saved.get("train", {}) if saved else {}
    config = TrainConfig.from_dict({**_family_train_defaults(model), **(base if isinstance(base, dict) else {}),
                                    **overrides})
    check_processes(config, nproc)


def resolve_device(name: str = "auto") -> torch.device:
    """The device of the `device` setting, if this machine has it (one line naming those it has
    otherwise: mps or meta on a machine without them fail deep inside torch)."""
    return check_device(name)


@functools.cache
def _busy_at_start() -> float:
    """Other processes' load, in cores, measured at this process's first run (then kept, so that
    the runs of one process take the same threads)."""
    return busy_cores()


def cpu_threads(setting: int, busy: float | None = None) -> tuple[int, str | None]:
    """The threads a CPU run takes under ``threads=setting`` (0: auto) and, when auto chose fewer
    than PyTorch's number, the line that says why. ``busy``: the cores' worth of work of other
    processes (default: measured, once per process)."""
    now = torch.get_num_threads()
    if setting or now == 1 or os.environ.get("OMP_NUM_THREADS"):
        return (setting or now), None
    busy = _busy_at_start() if busy is None else busy
    cores = os.cpu_count() or now
    free = max(1, cores - int(busy + 0.5))
    if free >= now:
        return now, None
    return free, (f"training on {free} CPU thread{'s' * (free > 1)} of {now}: other processes keep about "
                  f"{busy:.1f} of the {cores} cores busy, and a thread waiting on a busy core holds every step "
                  f"back (`--threads N` chooses)")


def _lr_at(config: TrainConfig, step: int, total: int, seconds: float = 0.0) -> float:
    """The learning rate at ``step`` of ``total``, after ``seconds`` of training."""
    if config.lr_schedule == "constant":
        return config.lr
    progress = step / max(total, 1)
    if config.max_minutes:
        progress = max(progress, seconds / (60 * config.max_minutes))
    progress = min(progress, 1.0)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * min(1.0, 2.0 * (1.0 - progress))   # linear-decay


#: the signals that stop a run as Ctrl-C does: a scheduler's preemption (SLURM, Kubernetes send
#: SIGTERM) and a closed terminal (SIGHUP)
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class _Interrupts:
    """Whether Ctrl-C was pressed or a stop signal came (call it), which one (``name``), and
    whether a second one forced its way in."""

    #: a repeat of a first SIGTERM or SIGHUP within this many seconds is the same request, not a
    #: second one: a scheduler that signals every process of a job reaches a data-parallel worker
    #: both directly and through torchrun (a second Ctrl-C, from a person, always stops at once)
    ECHO_S = 1.0

    def __init__(self) -> None:
        self.pressed = 0
        self.forced = False
        self.name = "SIGINT"
        self.first_at = 0.0

    def __call__(self) -> bool:
        return self.pressed > 0

    def press(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.pressed and name == self.name != "SIGINT" and time.monotonic() - self.first_at < self.ECHO_S:
            return
        self.pressed += 1
        if self.pressed == 1:
            self.name, self.first_at = name, time.monotonic()
        else:
            self.forced = True
            raise KeyboardInterrupt

    def stopped(self, step: int) -> str:
        """How the run stopped at ``step``: ``interrupted at step N`` (Ctrl-C) or ``stopped by SIGTERM
        at step N``."""
        return f"interrupted at step {step}" if self.name == "SIGINT" else f"stopped by {self.name} at step {step}"


@contextlib.contextmanager
def interrupts_between_steps(enabled: bool = True):
    """Ctrl-C, SIGTERM and SIGHUP wait for the training step under way to finish, so that a
    checkpoint never holds half a step (batch-norm statistics of a batch that is then trained
    again, say); a second one stops at once. Only in the main thread (else
    they act at once), and not for a signal that is ignored (SIGHUP under nohup, say). The
    processes of a data-parallel run agree on the step to stop at (``Trainer._stop_agreed``)."""
    flag = _Interrupts()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, flag.press)
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _trained_s(state: dict[str, Any]) -> float:
    """Seconds of training steps so far: the finished epochs' and the current one's."""
    return state["trained_s"] + state["elapsed_s"]


def _batches_per_epoch(n: int, batch_size: int) -> int:
    # Drop the ragged last batch (batch norm dislikes tiny batches), unless it is the only one.
    return max(n // batch_size, 1)


def validation_subset(data: ImageDataset, n: int) -> ImageDataset:
    """The ``n`` images of ``data`` that the end of each epoch measures: a random subset, the same
    for every run (seed 0), in the split's order; the whole split when ``n`` is 0 or not below its
    size. Random rather than the first ``n``: a split may be ordered (MNIST's test images run from
    cleaner to harder)."""
    if not n or n >= len(data):
        return data
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n]
    return data.subset(index.sort().values)


@torch.no_grad()
def evaluate_loss(model: GenerativeModel, data: ImageDataset, binary: bool, seed: int = 0,
                  batch_size: int = 500) -> dict[str, float]:
    """Mean of each loss term over ``data`` in eval mode, with fixed random draws (seed), and
    without touching the training run's random state."""
    was_training = model.training
    model.eval()
    device = model.device
    sums: dict[str, float] = {}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for batch in data.batches(batch_size, device):
                if binary:
                    batch.images = binarize(batch.images)
                terms = model.loss(batch)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * len(batch)
    finally:  # also when the model has no held-out loss (a GAN): training goes on in train mode
        model.train(was_training)
    return {k: v / len(data) for k, v in sums.items()}


def build_optimizers(model: GenerativeModel, lr: float, weight_decay: float = 0.0,
                     fused: bool = True) -> dict[str, torch.optim.Optimizer]:
    """One AdamW per named group of :meth:`~genlab.models.GenerativeModel.optimizer_groups`; with
    ``fused``, PyTorch's fused kernel (one pass over each weight, not several) where it has one."""
    optimizers = {}
    for name, group in model.optimizer_groups().items():
        decay = weight_decay if group.weight_decay is None else group.weight_decay
        settings = dict(lr=lr * group.lr_scale, betas=group.betas, weight_decay=decay)
        try:
            optimizers[name] = torch.optim.AdamW(group.params, **settings, fused=fused or None)
        except (RuntimeError, ValueError):  # no fused kernel for these weights' device or type
            optimizers[name] = torch.optim.AdamW(group.params, **settings)
        for g in optimizers[name].param_groups:
            g.setdefault("initial_lr", g["lr"])
    return optimizers


def match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give every gradient and optimizer state the memory layout of its weight. The fused AdamW
    kernel reads them as laid out like the weight, and on CPU does not check: a channels-last
    weight with a contiguous gradient (a data-parallel gradient bucket) or state (loaded from a
    checkpoint) took wrong steps."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None and p.grad.stride() != p.stride():
                p.grad = torch.empty_like(p).copy_(p.grad)
            state = optimizer.state.get(p, {})
            for key, t in state.items():
                if torch.is_tensor(t) and t.shape == p.shape and t.stride() != p.stride():
                    state[key] = torch.empty_like(p).copy_(t)


#: how often (in steps) the host reads back losses checked on the device (off the CPU)
HOST_READS = 25


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products natively (not by converting to fp32)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8  # Ampere and later
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision ``auto`` stands for on ``device`` (bf16 where native, else fp32); others as given."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


#: the channels-last memory format of a tensor of this many dimensions (2-D and 3-D convolutions)
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def to_channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with the weights of its 2-D and 3-D convolutions (4-D and 5-D tensors) stored
    channels-last, in place; the rest as they are.

    A weight with one input channel fits both layouts, and ``contiguous`` leaves it as it is; the
    convolution of a one-channel image by it then writes NCHW, and the next layer copies that to
    NHWC forward and backward (D's largest activation, in the DCGAN). ``to`` gives such a weight the
    channels-last strides, so that the convolution writes NHWC."""
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if t.dim() in CHANNELS_LAST:
                t.data = t.data.to(memory_format=CHANNELS_LAST[t.dim()])
    return module


def channels_last_batch(batch: Batch) -> Batch:
    """``batch`` with its images and condition images (4-D or 5-D) stored channels-last."""
    def convert(t):
        return t.contiguous(memory_format=CHANNELS_LAST[t.dim()]) if t is not None and t.dim() in CHANNELS_LAST \
            else t
    return dataclasses.replace(batch, images=convert(batch.images), condition=convert(batch.condition))


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (disabled for fp32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")


def training_step(model: GenerativeModel, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int,
                  grad_clip: float = 0.0, precision: str = "fp32", accumulation: int = 1,
                  wrapped: torch.nn.Module | None = None, scaler: torch.amp.GradScaler | None = None
                  ) -> dict[str, torch.Tensor]:
    """One optimisation step of ``model`` on ``batch`` at ``step`` (counted from 0): for each
    objective of ``model.update_order(step)``, in order, the gradients of its value (summed over
    ``accumulation`` micro-batches, each weighted by its share of the batch), clipping to
    ``grad_clip``, and that optimizer's step; then the moving average of the weights. Returns the
    logged terms, batch means (later objectives' terms replace earlier ones of the same name).

    ``wrapped`` is the model under ``DistributedDataParallel`` (the gradients are averaged over
    the processes on the last micro-batch); ``scaler`` a gradient scaler for fp16."""
    parts = batch.split(accumulation) if accumulation > 1 else [batch]
    return _train_on_parts(model, parts, optimizers, step, grad_clip, precision, wrapped, scaler)


def _train_on_parts(model: GenerativeModel, parts: list[Batch], optimizers: dict[str, torch.optim.Optimizer],
                    step: int, grad_clip: float, precision: str, wrapped: torch.nn.Module | None,
                    scaler: torch.amp.GradScaler | None, finite: torch.Tensor | None = None
                    ) -> dict[str, torch.Tensor]:
    """``training_step`` on micro-batches. With ``finite`` (a bool tensor on the device) the
    losses' finiteness is and-ed into it instead of checked at once: checking reads the value
    back to the host, which on a GPU waits for the step so far to finish."""
    net = wrapped if wrapped is not None else model
    size = sum(len(p) for p in parts)
    logged: dict[str, torch.Tensor] = {}
    device = parts[0].device
    for name in model.update_order(step):
        optimizer = optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        terms: dict[str, torch.Tensor] = {}
        for i, part in enumerate(parts):
            share = len(part) / size
            last = i == len(parts) - 1
            sync = net.no_sync() if wrapped is not None and not last else contextlib.nullcontext()
            with sync:
                with autocast(device, precision):
                    value, part_terms = net(part, objective=name, step=step)
                if finite is None:
                    check_finite({"loss": value.detach(), **part_terms}, step)
                else:
                    scalars = [value.detach(), *(v for v in part_terms.values() if v.numel() == 1)]
                    finite &= torch.isfinite(torch.stack([v.float() for v in scalars])).all()
                (scaler.scale(value * share) if scaler is not None else value * share).backward()
            for k, v in part_terms.items():
                terms[k] = terms.get(k, 0.0) + v.detach().float() * share
        params = [p for g in optimizer.param_groups for p in g["params"]]
        if scaler is not None:
            scaler.unscale_(optimizer)
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if optimizer.defaults.get("fused"):
            match_layouts(optimizer)
        if scaler is not None:
            scaler.step(optimizer)
        else:
            optimizer.step()
        logged.update(terms)
    if scaler is not None:
        scaler.update()
    model.update_average()
    return logged


class Trainer:
    """Runs one training run into one run folder. Most users call :func:`train`."""

    def __init__(self, model: GenerativeModel, train_data: ImageDataset, val_data: ImageDataset | None,
                 config: TrainConfig, out_dir: str | os.PathLike, progress: bool = True,
                 callbacks: Iterable[Callback] = ()):
        self.model, self.train_data, self.val_data, self.config = model, train_data, val_data, config
        self.val_subset = None if val_data is None else validation_subset(val_data, config.val_images)
        self.out = Path(out_dir)
        self.progress = progress
        self.callbacks = list(callbacks)
        if config.tensorboard:
            check_tensorboard()
        self.wrapped: torch.nn.Module | None = None  # the model under DistributedDataParallel
        self.scaler: torch.amp.GradScaler | None = None
        self.device = distributed.local_device(resolve_device(config.device))
        self.config = config = dataclasses.replace(config, precision=resolve_precision(config.precision, self.device))
        self.rank, self.world = distributed.init(self.device)
        # Off the CPU, the host reads the losses back (finite? their sums) only every HOST_READS
        # steps and before anything is written: each read waits for the device to finish the
        # steps queued so far, so reading at every step would keep the host from running ahead.
        self.defer_reads = self.device.type != "cpu"
        self._first_bad = torch.full((), -1, dtype=torch.long, device=self.device)  # the first non-finite step
        able = model.capabilities
        self.binary = able.binary_likelihood if config.binarize is None else config.binarize
        model.check_images(train_data.images[:1].float())
        if able.labels and train_data.labels is None:
            raise GenlabError(f"a conditional model needs labels, and {train_data.name} has none")
        check_processes(config, self.world)
        smallest = min(config.batch_size, len(train_data)) // self.world // config.grad_accumulation
        if smallest < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            if len(train_data) < 2 * self.world * config.grad_accumulation:   # no batch size would do
                raise GenlabError(f"batch norm needs at least 2 images in each (micro-)batch, and the training split "
                                  f"of {train_data.name} holds {len(train_data)}; give it more images")
            raise GenlabError(f"batch norm needs at least 2 images in each (micro-)batch, and this run has {smallest}; "
                              "raise `batch_size` or lower `grad_accumulation`")
        if config.precision == "fp16" and self.device.type != "cuda":
            raise GenlabError("fp16 training needs a CUDA GPU (its gradient scaler); use `precision=bf16` on a CPU")

    # ------------------------------------------------------------------ files
    def _write(self) -> bool:
        return self.rank == 0

    def _run_config(self) -> dict[str, Any]:
        return run_config(self.model, self.config, self.train_data, self.val_data)

    def _log(self, record: dict[str, Any]) -> None:
        if self._write():
            append_metrics(self.out, record)

    def _truncate_metrics(self, step: int) -> None:
        """Drop the lines logged after the checkpoint we resume from (an interrupted epoch)."""
        if self._write():
            truncate_metrics(self.out, step)

    # ------------------------------------------------------------------ state
    def _rng_state(self, shuffle_epoch_start: torch.Tensor) -> dict[str, torch.Tensor]:
        rng = {"torch_cpu": torch.get_rng_state(), "shuffle_epoch_start": shuffle_epoch_start}
        if self.device.type == "cuda":
            rng["torch_cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _checkpoint(self, optimizers, state: dict[str, Any], shuffle_epoch_start: torch.Tensor) -> None:
        self._checkpoint_at_s = _trained_s(state)
        self._read_back(state)
        if self._write():
            if self.scaler is not None:
                state["grad_scaler"] = self.scaler.state_dict()
            save_checkpoint(self.out, self.model, optimizers, self._rng_state(shuffle_epoch_start), state)

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False) -> GenerativeModel:
        """Train into the run folder (a new run, or with ``resume`` the one there), holding its
        lock (rank 0, the process that writes) throughout. The model's ``run_dir`` is the folder."""
        self.model.run_dir = self.out
        before = torch.get_num_threads()
        if self.device.type == "cpu":
            threads, why = cpu_threads(self.config.threads)
            torch.set_num_threads(threads)
            if why and self.progress and self._write():
                print(why, flush=True)
        note = self.model.training_note(self.device)
        if note and self.progress and self._write():
            print(note, flush=True)
        try:
            if not self._write():
                check_out_dir(self.out, resume)
                return self._run(resume)
            # Nothing of someone else's, before the lock file goes in; then, if no other process
            # trains into it, whether it takes this run.
            check_out_dir(self.out, resume=True if resume else None)
            with locked(self.out, remove_if_alone=not self.out.exists()):
                check_out_dir(self.out, resume)
                return self._run(resume)
        finally:
            torch.set_num_threads(before)

    def _run(self, resume: bool) -> GenerativeModel:
        model, cfg = self.model.to(self.device), self.config
        if model.capabilities.closed_form:
            return self._fit_closed_form()
        if self.world > 1:
            model = self.model = distributed.synchronise_batch_norm(model, self.device)
        if cfg.channels_last:
            to_channels_last(model)
        # One process only: under DistributedDataParallel, channels-last weights' gradients live in
        # its buckets, and the fused kernel's steps there differed from the multi-tensor ones.
        optimizers = build_optimizers(model, cfg.lr, cfg.weight_decay, cfg.fused_optimizer and self.world == 1)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None
        if self.world > 1:
            # Raised for 1x1 convolutions, whose weight gradients differ from the bucket only in the
            # strides of dimensions of size 1, which do not matter.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # a model trained by turns leaves the other network's weights out of each objective
                find_unused_parameters=len(optimizers) > 1, gradient_as_bucket_view=True)
        shuffle = torch.Generator()
        if resume:
            self._check_same_model()
            state, rng = load_checkpoint(self.out, model, optimizers)
            torch.set_rng_state(rng["torch_cpu"])
            if "torch_cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["torch_cuda"], self.device)
            shuffle.set_state(rng["shuffle_epoch_start"])
            if self.scaler is not None and "grad_scaler" in state:
                self.scaler.load_state_dict(state["grad_scaler"])
            if self._already_trained(state):
                model.eval()
                return model
            self._truncate_metrics(state["step"])
        else:
            self._truncate_metrics(0)  # what a run that failed before its first checkpoint logged
            torch.manual_seed(cfg.seed)
            shuffle.manual_seed(cfg.seed)
            state = {"epoch": 0, "batch": 0, "step": 0, "elapsed_s": 0.0, "sums": {}, "seen": 0, "done": False}
        if self._write():  # on resume too: the run may have been given more epochs
            write_config(self.out, self._run_config())
        return self._loop(optimizers, shuffle, state)

    def _already_trained(self, state: dict[str, Any]) -> bool:
        """Whether the checkpoint ``state`` finished this run already (nothing to do); refuse one
        past the run's end (fewer `epochs` than it has trained) or stopped mid-epoch, resumed with
        another batch size (the rest of that epoch would be dropped)."""
        epochs = self.config.epochs
        if state["epoch"] > epochs or (state["epoch"] == epochs and state["batch"] > 0):
            raise GenlabError(f"the run in {self.out} has trained {state['epoch']} epochs already "
                              f"(step {state['step']}), past `epochs={epochs}`; give it more epochs to continue it")
        saved = read_config(self.out).get("train", {}).get("batch_size")
        if state["batch"] > 0 and isinstance(saved, int) and saved != self.config.batch_size:
            raise GenlabError(f"the run in {self.out} stopped in the middle of an epoch of batches of {saved}; "
                              f"resume it with `batch_size={saved}` (another batch size would drop the rest of "
                              "that epoch)")
        return state["done"] and state["epoch"] == epochs

    def _check_same_model(self) -> None:
        saved = read_config(self.out)
        if not family_of(self.model).answers_to(saved.get("family")):
            raise GenlabError(f"{self.out} holds a {saved.get('family')} model, not a {self.model.family}; "
                              "resume it with the model it was trained with")
        # Both sides through the config class, so that settings added to genlab since the run was
        # written (at their defaults) do not count as a difference.
        config_class = type(self.model.config)
        try:
            before = config_class.from_saved(saved.get("model") or {}).to_dict()
        except (TypeError, ValueError, GenlabError):
            before = saved.get("model")
        if json.loads(json.dumps(before)) != json.loads(json.dumps(self.model.config.to_dict())):
            raise GenlabError(f"the model settings differ from those of the run in {self.out}; "
                              "a resumed run keeps its settings")

    def _loop(self, optimizers, shuffle: torch.Generator, state: dict[str, Any]) -> GenerativeModel:
        model, cfg, data = self.model, self.config, self.train_data
        per_epoch = _batches_per_epoch(len(data), cfg.batch_size)
        total = self.total_steps = per_epoch * cfg.epochs
        model.train()
        state.setdefault("trained_s", 0.0)  # the finished epochs' time (absent from older checkpoints)
        self._checkpoint_at_s = _trained_s(state)   # the training time at the last checkpoint
        # the training time at the last snapshot, the seconds it took and its step (none yet)
        self._snapshot_at_s, self._snapshot_s, self._snapshot_step = -math.inf, 0.0, -1
        limit_s = 60 * cfg.max_minutes or math.inf
        first = self.rank == 0
        self.reporter = Reporter(self.out, cfg.epochs, limit_s, show=self.progress and first,
                                 callbacks=self.callbacks if first else [], tensorboard=cfg.tensorboard and first)
        # Ctrl-C, SIGTERM or SIGHUP: the step under way finishes, then a checkpoint (also when one
        # comes between two epochs, while the epoch's record and checkpoint are written).
        # In data-parallel runs every process stops at the same step (:meth:`_stop_agreed`).
        first_step = state["step"]
        with interrupts_between_steps() as interrupted:
            while state["epoch"] < cfg.epochs and _trained_s(state) < limit_s and self._steps_left(state):
                self._epoch(optimizers, shuffle, state, per_epoch, total, limit_s, interrupted)
                if self._stop_agreed(interrupted) and state["epoch"] < cfg.epochs and _trained_s(state) < limit_s:
                    self._checkpoint(optimizers, state, shuffle.get_state())   # the epoch end's may not have been due
                    raise GenlabError(f"{interrupted.stopped(state['step'])}; continue it with `resume=True` "
                                      f"`out_dir={self.out}`")
        if state["epoch"] < cfg.epochs and _trained_s(state) < limit_s:   # stopped by max_steps: not done
            if state["batch"] == 0 and state["step"] > first_step:   # at an epoch end (mid-epoch: _epoch saved it)
                self._checkpoint(optimizers, state, shuffle.get_state())
            distributed.barrier()
            model.eval()
            return model
        if cfg.snapshot_every == 0 and self._snapshot_step != state["step"]:
            self._snapshot(state)   # the final model's, whatever the budget
        state["done"] = True
        self._checkpoint(optimizers, state, shuffle.get_state())
        self._animate_snapshots()
        distributed.barrier()
        model.eval()
        return model

    def _epoch(self, optimizers, shuffle: torch.Generator, state: dict[str, Any], per_epoch: int, total: int,
               limit_s: float, interrupted: _Interrupts) -> None:
        """The rest of the epoch under way (from ``state``): its steps, record and checkpoint."""
        cfg, data = self.config, self.train_data
        epoch_start = shuffle.get_state()
        order = torch.randperm(len(data), generator=shuffle)
        clock = CLOCKS[cfg.clock]
        started = clock() - state["elapsed_s"]
        bar = tqdm(total=per_epoch, initial=state["batch"], desc=f"epoch {state['epoch'] + 1}/{cfg.epochs}",
                   disable=True if not self.progress or self.rank != 0 else None,  # None: off when not a terminal
                   leave=False, dynamic_ncols=True)
        try:
            while state["batch"] < per_epoch and _trained_s(state) < limit_s and self._steps_left(state):
                index = order[state["batch"] * cfg.batch_size:(state["batch"] + 1) * cfg.batch_size]
                terms = self._step(optimizers, index, state["step"], total, _trained_s(state))
                n = len(index) // self.world
                for k, v in terms.items():  # deferred: on the device, in float64 as on the host
                    v = v.double() if self.defer_reads else float(v)
                    state["sums"][k] = state["sums"].get(k, 0.0) + v * n
                state["seen"] += n
                state["batch"] += 1
                state["step"] += 1
                state["elapsed_s"] = clock() - started
                if state["step"] % HOST_READS == 0:
                    self._check_finite()
                if bar.update():  # the loss is read only when the bar is drawn
                    bar.set_postfix(loss=f"{float(terms['loss']):.4g}")
                elif bar.disable:   # not a terminal: a line now and then
                    self.reporter.step(state["epoch"] + 1, state["batch"], per_epoch, lambda: float(terms["loss"]),
                                       state["elapsed_s"])
                if cfg.snapshot_every > 0 and state["step"] % cfg.snapshot_every == 0:
                    self._snapshot(state)
                if state["batch"] < per_epoch and (self._checkpoint_due(state) or cfg.checkpoint_every and
                                                   state["step"] % cfg.checkpoint_every == 0):
                    self._checkpoint(optimizers, state, epoch_start)
                if (self.world == 1 or self.device.type == "cpu" or state["step"] % HOST_READS == 0) and \
                        self._stop_agreed(interrupted):
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            bar.close()
            if interrupted.forced:  # a second signal, inside a step: its changes are half made
                raise GenlabError(f"interrupted during step {state['step'] + 1}; {self._kept()}") from None
            self._checkpoint(optimizers, state, epoch_start)
            raise GenlabError(f"{interrupted.stopped(state['step'])}; continue it with `resume=True` "
                              f"`out_dir={self.out}`") from None
        bar.close()
        if state["batch"] < per_epoch and not self._steps_left(state) and _trained_s(state) < limit_s:
            # stopped by max_steps mid-epoch: the epoch goes on when the run is resumed
            self._checkpoint(optimizers, state, epoch_start)
            return
        if self._snapshot_due(state):
            self._snapshot(state)
        self._end_epoch(state)  # also an epoch cut short by max_minutes: it logs the steps taken
        if not cfg.checkpoint_minutes or self._checkpoint_due(state):
            self._checkpoint(optimizers, state, shuffle.get_state())

    def _steps_left(self, state: dict[str, Any]) -> bool:
        """Whether ``max_steps`` lets the run take another step."""
        return not self.config.max_steps or state["step"] < self.config.max_steps

    def _checkpoint_due(self, state: dict[str, Any]) -> bool:
        """Whether ``checkpoint_minutes`` of training have passed since the last checkpoint."""
        minutes = self.config.checkpoint_minutes
        return minutes > 0 and _trained_s(state) - self._checkpoint_at_s >= 60 * minutes

    def _snapshot_due(self, state: dict[str, Any]) -> bool:
        """Whether an epoch ends with a snapshot (``snapshot_every=0``): when the training since the
        last one took at least 1/``snapshot_budget`` times as long as that one did (the first is due)."""
        cfg = self.config
        since = _trained_s(state) - self._snapshot_at_s
        return cfg.snapshot_every == 0 and (cfg.snapshot_budget >= 1 or since * cfg.snapshot_budget >= self._snapshot_s)

    def _stop_agreed(self, interrupted: _Interrupts) -> bool:
        """Whether to stop now: a stop signal came (to any process of a data-parallel run, which
        then all stop at this step and write one checkpoint: one all-reduce of an int, each step on
        CPUs, every ``HOST_READS`` steps on GPUs, where reading it back waits for the step)."""
        if self.world == 1:
            return interrupted()
        flag = torch.tensor([int(interrupted())], device=self.device)
        distributed.dist.all_reduce(flag, op=distributed.dist.ReduceOp.MAX)
        return bool(flag.item())

    def _step(self, optimizers, index: torch.Tensor, step: int, total: int,
              seconds: float) -> dict[str, torch.Tensor]:
        """One step on the global batch ``index``: this process takes every world-th image."""
        cfg = self.config
        positions = torch.arange(len(index))[self.rank::self.world]
        # The augmentation's draws, like the model's, are made for the global batch and shared out.
        draws = step_draws(cfg.seed, step, len(index))[positions] if self.train_data.augmented else None
        batch = self.train_data.batch(index[positions], draws)
        batch.positions, batch.noise = positions, StepNoise(cfg.seed, step, len(index))
        batch = batch.to(self.device)
        if cfg.channels_last:
            batch = channels_last_batch(batch)
        parts = batch.split(cfg.grad_accumulation)
        if self.binary:  # the first draw of every micro-batch, so that each image gets the same one
            for part in parts:
                part.images = binarize(part.images, draws=part)
        factor = _lr_at(cfg, step, total, seconds) / cfg.lr
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
        finite = torch.ones((), dtype=torch.bool, device=self.device) if self.defer_reads else None
        try:
            terms = _train_on_parts(self.model, parts, optimizers, step, cfg.grad_clip, cfg.precision,
                                    self.wrapped, self.scaler, finite)
        except Diverged as err:
            raise GenlabError(f"{err}; {self._stopped()}") from None
        if finite is not None:
            self._first_bad.masked_fill_(~finite & (self._first_bad < 0), step)
        return terms

    def _check_finite(self) -> None:
        """Raise if a step whose losses were checked on the device only had a non-finite one."""
        if self.defer_reads and (bad := int(self._first_bad)) >= 0:
            raise GenlabError(f"a loss became NaN or infinite at step {bad + 1}; {self._stopped()}")

    def _read_back(self, state: dict[str, Any]) -> None:
        """Before a run's state is written or logged: stop if a loss was not finite, and bring the
        loss sums to the host as numbers (for the JSON files)."""
        self._check_finite()
        state["sums"] = {k: float(v) for k, v in state["sums"].items()}

    def _stopped(self) -> str:
        return f"training stopped and {self._kept()}; try a lower `lr`"

    def _kept(self) -> str:
        """What a run stopped mid-step leaves: its last checkpoint, or nothing yet."""
        if has_checkpoint(self.out):
            return f"the last good checkpoint in {self.out} is kept (continue from it with `resume=True`)"
        return "no checkpoint was written yet"

    @torch.no_grad()
    def _snapshot(self, state: dict[str, Any]) -> None:
        """The model's preview rows of the same images (``preview``: input, output, target, ...),
        samples from the same z (seeded) at every call, or reconstructions of the same images; and
        what it took, for :meth:`_snapshot_due`."""
        if self.rank != 0 or self.config.snapshot_every < 0:
            return
        clock = CLOCKS[self.config.clock]
        started = clock()
        step = state["step"]
        self._check_finite()
        model, able = self.model, self.model.capabilities
        if not (able.preview or able.prior or (able.encoder and able.decoder)):
            return  # nothing to show
        model.eval()
        try:
            if able.preview:
                batch = (self.val_data or self.train_data).batch(slice(0, 8)).to(self.device)
                rows = model.preview(batch, torch.Generator().manual_seed(self.config.seed))
                images = torch.cat([r.cpu() for r in rows])
            elif able.prior:
                labels = torch.arange(64) % model.config.num_classes if able.labels else None
                images = model.sample(64, generator=torch.Generator().manual_seed(self.config.seed), labels=labels)
            else:
                x, y = (self.val_data or self.train_data).tensors(slice(0, 32))
                r = model.reconstruct(x.to(self.device), None if y is None else y.to(self.device)).cpu()
                images = torch.cat([torch.cat([x[i:i + 8], r[i:i + 8]]) for i in range(0, len(x), 8)])
        finally:
            model.train()
        nrow = len(rows[0]) if able.preview else 8
        save_grid(images.clamp(0, 1), self.out / SNAPSHOTS / f"step-{step:07d}.png", nrow=nrow)
        self._snapshot_at_s, self._snapshot_s, self._snapshot_step = \
            _trained_s(state), clock() - started, step

    def _animate_snapshots(self) -> None:
        from PIL import Image

        folder = self.out / SNAPSHOTS
        frames = sorted(folder.glob("step-*.png")) if self.rank == 0 else []
        if len(frames) > 1:
            pictures = [Image.open(f).convert("P") for f in frames]
            pictures[0].save(folder / "progress.gif", save_all=True, append_images=pictures[1:],
                             duration=200, loop=0)

    def _end_epoch(self, state: dict[str, Any]) -> None:
        self._read_back(state)
        record = {"epoch": state["epoch"] + 1, "step": state["step"], "time_s": round(state["elapsed_s"], 3),
                  "lr": _lr_at(self.config, state["step"] - 1, self.total_steps, _trained_s(state))}
        sums = distributed.sum_over_processes({**state["sums"], "_seen": state["seen"]})  # every process's share
        seen = max(sums.pop("_seen"), 1)
        record.update({f"train/{k}": v / seen for k, v in sums.items()})
        # A model without a held-out loss (a GAN) is measured by its samples instead.
        if self.val_subset is not None and self.rank == 0 and self.model.capabilities.held_out_loss:
            val = evaluate_loss(self.model, self.val_subset, self.binary, seed=self.config.seed)
            record.update({f"val/{k}": v for k, v in val.items()})
        self._log(record)
        self.reporter.epoch(record, state["epoch"] + 1, _trained_s(state))
        state.update(epoch=state["epoch"] + 1, batch=0, sums={}, seen=0, elapsed_s=0.0,
                     trained_s=_trained_s(state))

    def _fit_closed_form(self) -> GenerativeModel:
        model = self.model
        started = time.perf_counter()
        images, _ = self.train_data.tensors()
        model.fit(images.to(self.device))
        record = {"epoch": 1, "step": 1, "time_s": round(time.perf_counter() - started, 3)}
        record.update({f"train/{k}": v for k, v in evaluate_loss(model, self.train_data, False).items()})
        if self.val_data is not None:
            record.update({f"val/{k}": v for k, v in evaluate_loss(model, self.val_data, False).items()})
        if self._write():
            write_config(self.out, self._run_config())
            self._log(record)
            save_checkpoint(self.out, model, {}, {"torch_cpu": torch.get_rng_state()},
                            {"epoch": 1, "batch": 0, "step": 1, "elapsed_s": 0.0, "sums": {}, "seen": 0,
                             "done": True})
        model.eval()
        return model


def train(model: GenerativeModel | str | None, data: ImageDataset | str | None = None,
          val_data: ImageDataset | None = None, config: TrainConfig | None = None,
          out_dir: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
          data_dir: str | os.PathLike | None = None, model_settings: dict[str, Any] | None = None,
          callbacks: Iterable[Callback] = (), **overrides: Any) -> GenerativeModel:
    """Train a model into a run folder and return it, as ``genlab train`` does; the folder is
    ``model.run_dir`` (``genlab.load(model.run_dir)`` loads the run).

    Args:
        model: a model, or a model name (``"conv-vae"``) built for the data's image shape with
            ``model_settings`` (e.g. ``{"latent_dim": 2}``); ``None`` with ``resume``: the run's.
        data: a dataset, or a dataset name; a name also provides its test split for validation.
            Default: with ``resume``, the dataset the run records; otherwise ``"digits"``.
        val_data: validation split, measured at the end of every epoch (a fixed subset of
            ``val_images`` of it).
        config: a :class:`TrainConfig`; ``overrides`` set its fields (``epochs=5, lr=3e-4``).
        out_dir: the run folder; default ``runs/<model>-<data>`` (a fresh suffix if taken).
        resume: continue the run in ``out_dir`` from its last checkpoint, with its model, data
            and settings unless given here.
        progress: a progress bar (on a terminal) and a line per epoch with the losses, the time
            and the ETA (and, when the output is not a terminal, a line every minute).
        callbacks: functions called after each epoch with its record (what metrics.jsonl gets:
            ``epoch``, ``step``, ``time_s``, ``train/...`` and ``val/...`` losses), to plug in a logger.
    """
    from ..data import load_dataset

    if model is not None and not isinstance(model, (str, GenerativeModel)):
        raise GenlabError(f"`model` must be a model name (e.g. 'conv-vae') or a genlab model, got {type(model).__name__}")
    if data is not None and not isinstance(data, (str, ImageDataset)):
        raise GenlabError(f"`data` must be a dataset name (e.g. 'digits', 'folder:PATH') or an ImageDataset, "
                          f"got {type(data).__name__}")
    saved = _saved_run_config(out_dir) if resume and out_dir is not None else None
    if model is None:
        if saved is None or not isinstance(saved.get("name"), str):
            raise GenlabError("name the model to train, or the run to continue (`resume=True` with `out_dir`)")
        model = saved["name"]
    if data is None:
        data = _saved_data_name(saved, out_dir) if saved is not None else "digits"
    if isinstance(data, str):
        name = data
        data = load_dataset(name, "train", data_dir)
        if val_data is None:
            val_data = load_dataset(name, "test", data_dir)
    # A resumed run keeps its own settings; only what is given explicitly changes (e.g. epochs).
    base = saved.get("train", {}) if saved else {}
    if not isinstance(base, dict):
        raise GenlabError(f"{Path(out_dir) / CONFIG_FILE} has no 'train' section of settings; the run folder is damaged")
    family_defaults = _family_train_defaults(model)
    config = TrainConfig.from_dict({**family_defaults, **base, **(dataclasses.asdict(config) if config else {}),
                                    **overrides})
    record = family_of(model)
    settings = _model_settings_of(model, model_settings, saved)
    if record.prepare_data is not None:  # the data as this family takes it (e.g. two domains)
        data = record.prepare_data(data, settings, data_dir, config.seed)
        val_data = None if val_data is None else record.prepare_data(val_data, settings, data_dir, config.seed)
    if isinstance(model, str):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # the seed gives the initial weights too
            if saved is not None:
                model = _model_to_resume(model, saved, model_settings or {}, Path(out_dir) / CONFIG_FILE)
            else:
                model = build_model(model, **data_description(model, data), **(model_settings or {}))
    if out_dir is None:
        distributed.init(distributed.local_device(resolve_device(config.device)))
        out_dir = default_run_dir(run_name(model.name, data.name, settings), resume=resume)
        distributed.barrier()  # every process has chosen the folder before rank 0 creates it
    return Trainer(model, data, val_data, config, out_dir, progress=progress, callbacks=callbacks).run(resume=resume)


def _model_settings_of(model: GenerativeModel | str, settings: dict[str, Any] | None,
                       saved: dict[str, Any] | None) -> dict[str, Any]:
    """The model settings of a run: of the model given, of the resumed run, or the model name's
    defaults under ``settings``."""
    if isinstance(model, GenerativeModel):
        return model.config.to_dict()
    if saved is not None:
        return dict(saved.get("model", {}))
    return model_settings(model, **(settings or {}))[1]


def data_description(name: str, data: ImageDataset) -> dict[str, Any]:
    """The settings that describe ``data`` to a fresh model ``name``: ``image_shape``,
    ``num_classes``, and what the model's family reads from data besides (``data_settings``)."""
    described = {"image_shape": data.image_shape, "num_classes": data.num_classes}
    extra = family_of(name).data_settings
    return {**described, **(extra(data) if extra else {})}


def _family_train_defaults(model: GenerativeModel | str) -> dict[str, Any]:
    """The training settings a model's family starts from (``train_defaults``), under the user's."""
    if isinstance(model, str):
        model = model_settings(model)[0]
    return dict(model.train_defaults)


def _saved_data_name(saved: dict[str, Any], out_dir: str | os.PathLike) -> str:
    """The dataset a run to resume was trained on, as its config.json records it."""
    name = saved.get("data", {}).get("name")
    if not isinstance(name, str) or not name or name == "arrays":
        raise GenlabError(f"the run in {out_dir} does not record a dataset it can be loaded from; pass `data`")
    return name


def _saved_run_config(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(out_dir)
    return read_config(path) if (path / CONFIG_FILE).exists() else None


def _model_to_resume(name: str, saved: dict[str, Any], settings: dict[str, Any], source: Path) -> GenerativeModel:
    """Rebuild the model of a run folder; refuse another model name or changed settings."""
    if saved.get("name") != name:
        raise GenlabError(f"the run holds a '{saved.get('name')}' model, not '{name}'; resume it with that name")
    model = model_from_config({**saved, "name": name}, source)
    changed = {k: v for k, v in settings.items() if v is not None and getattr(model.config, k, None) != v}
    if changed:
        raise GenlabError(f"a resumed run keeps its model settings; drop {', '.join(sorted(changed))} "
                          "or start a new run")
    return model
