"""Data-parallel training on PyTorch's own engine: torchrun, DistributedDataParallel, gloo or NCCL.

``torchrun --nproc-per-node N -m genlab train ...`` (or ``genlab train ... --nproc N``, which runs
that command) starts N processes; :func:`init` joins them into one process group (NCCL on GPUs,
gloo on CPUs). The trainer then wraps the model in ``DistributedDataParallel``, which averages
the gradients, and gives each process its share of every global batch.

Batch norm must see the whole global batch for N processes to equal one: on CUDA torch's
``SyncBatchNorm`` does it; on CPU, where that layer refuses to run, :class:`GlobalBatchNorm` does
the same with ``all_reduce``: the batch mean and variance are sums over every process, and the
gradient of a sum over processes is the sum of the processes' gradients, one more ``all_reduce``
in the backward pass (:func:`all_reduce_sum`). Either keeps the parameter and buffer names, so checkpoints do not change.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import torch
import torch.distributed as dist
from torch import nn

from ..errors import GenlabError


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a distributed launch."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment (a no-op without one, or if
    already joined); returns (rank, world size). On CUDA each process takes the GPU of its local
    rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return rank_and_world()


def shutdown() -> None:
    """Leave the process group, once every process has arrived (a no-op without one). Exiting
    without it let gloo's threads abort a process at exit now and then ("terminate called
    without an active exception"), and torchrun then reported the finished run as failed."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """The device of this process: under torchrun on CUDA, the GPU of its local rank."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ and device.index is None:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over every process, differentiable: the gradient of each process's ``x``
    is the sum of every process's gradient of the result."""
    return _AllReduceSum.apply(x)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of all processes, on any device (for CPUs; CUDA uses
    ``nn.SyncBatchNorm``). In eval mode, or in one process, it is plain batch norm."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = all_reduce_sum
        x = x.float()  # statistics in 32 bits, also under autocast
        dims = [0, *range(2, x.dim())]
        count = all_reduce(torch.tensor(float(x.numel() // x.shape[1]), device=x.device))
        mean = all_reduce(x.sum(dims)) / count
        shape = (1, -1, *[1] * (x.dim() - 2))
        centred = x - mean.reshape(shape)
        var = all_reduce(centred.pow(2).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / max(float(count) - 1, 1.0), m)
        y = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y


def synchronise_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every batch-norm layer of ``module`` made to use the global batch (in place where possible;
    returns the module). The parameters (the same objects, so an optimizer built before still
    holds them), buffers and their names stay as they were."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            layer = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            layer.weight, layer.bias = child.weight, child.bias
            for key, buffer in child.named_buffers(recurse=False):
                setattr(layer, key, buffer)
            layer.train(child.training)
            setattr(module, name, layer)
        else:
            synchronise_batch_norm(child, device)
    return module


def sum_over_processes(values: dict[str, float]) -> dict[str, float]:
    """``values`` summed over every process (one all-reduce); unchanged in one process."""
    if rank_and_world()[1] == 1 or not values:
        return values
    keys = sorted(values)
    total = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(total)
    return dict(zip(keys, total.tolist()))


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()


#: the stop signals the launcher passes on to torchrun, which passes them on to its workers
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def launch(argv: list[str], nproc: int) -> int:
    """Run ``genlab`` with ``argv`` in ``nproc`` processes under torchrun on this machine; returns
    its exit code (raises if a stop signal ended it).

    torchrun runs as a child in a process group of its own, and a stop signal this process gets
    (SIGTERM from a scheduler, SIGHUP, Ctrl-C) goes to it: torchrun passes it on to its workers,
    which finish their step, write a checkpoint and exit, and this process returns only once
    torchrun has. A second signal goes to the whole group, workers included: they stop at once.
    (Its own group: Ctrl-C at a terminal reaches this process only, so that the workers get it
    once, from torchrun, not twice, which would mean "stop at once".)"""
    if nproc < 1:
        raise GenlabError(f"nproc must be at least 1, got {nproc}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "genlab", *argv]
    env = dict(os.environ)
    # The cores shared out among the processes (torchrun would give each one thread, with a banner).
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # DDP warns on every run of a model trained by turns that its check for unused weights found
    # none in some objective; the check is needed (the other network's weights sit out each turn).
    env.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    own_group = os.name == "posix"
    child: subprocess.Popen | None = None
    received: list[int] = []

    def send(signum: int, count: int) -> None:
        try:
            if count > 1 and own_group:
                os.killpg(child.pid, signum)
            else:
                child.send_signal(signum)
        except ProcessLookupError:  # it has just ended
            pass

    def forward(signum, frame) -> None:
        received.append(signum)
        if child is not None:
            send(signum, len(received))

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in FORWARDED_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, forward)
    try:
        child = subprocess.Popen(command, env=env, **({"process_group": 0} if own_group else {}))
        for count, signum in enumerate(received, 1):  # any that came while it started
            send(signum, count)
        code = child.wait()
        if received and code:
            raise GenlabError(f"the data-parallel run was stopped by {signal.Signals(received[0]).name} "
                              "(its processes' messages above say how to continue it)")
        return code
    finally:
        if child is not None and child.returncode is None:  # this process is failing: not alone
            send(signal.SIGTERM, 1)
            child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
