"""The devices a user can name (``--device``, ``map_location``), checked where the name enters.

``torch.device("mps")`` and ``torch.device("meta")`` are valid names on any machine; a model
moved to a device the machine lacks fails later, deep inside torch, with a message about
operators or autocast. :func:`check_device` refuses such a name first, in one line that says
which devices this machine has.
"""
from __future__ import annotations

import torch

from .errors import GenlabError


def available_devices() -> list[str]:
    """The devices this machine can train and run models on: ``cpu``, ``cuda`` and each ``cuda:N``
    when PyTorch sees GPUs, ``mps`` on an Apple GPU."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def check_device(name: str | torch.device, setting: str = "device") -> torch.device:
    """The device ``name`` stands for, if this machine has it (``auto``: CUDA when present, else
    the CPU); otherwise one line naming the devices it has (``setting`` is the name of the
    setting in the message)."""
    here = available_devices()
    choices = ", ".join(["auto", *here]) if setting == "device" else ", ".join(here)
    if isinstance(name, str) and name.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name.strip() if isinstance(name, str) else name)
    except (RuntimeError, TypeError, ValueError):
        raise GenlabError(f"unknown device {str(name)!r}; choose `{setting}` from: {choices}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GenlabError(f"device '{device}' asked for, but PyTorch sees no CUDA GPU on this machine; "
                              f"use `{setting}=cpu`")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GenlabError(f"device '{device}' asked for, but this machine has {torch.cuda.device_count()} "
                              f"CUDA GPU(s); choose `{setting}` from: {choices}")
        return device
    if device.type == "cpu" or (device.type == "mps" and "mps" in here):
        return device
    raise GenlabError(f"device '{device}' is not available on this machine; choose `{setting}` from: {choices}")


def free_bytes(device: torch.device | str | None = None) -> int | None:
    """Memory still free where tensors of ``device`` live: the GPU's for CUDA, the system's
    otherwise (None where that is not known)."""
    device = torch.device("cpu") if device is None else torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type == "meta":
        return None
    from .memory import available_bytes

    return available_bytes()


def _cpu_times(stat: str) -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of each core (``cpu0``, ``cpu1``, ...) in the text of /proc/stat."""
    times = {}
    for line in stat.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu" and len(fields) >= 4:
            values = [int(v) for v in fields[:8]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle and iowait
            times[name] = (sum(values) - idle, sum(values))
    return times


def busy_share(before: str, after: str) -> float:
    """How many cores' worth of work ran between two readings of /proc/stat (0 to the core count)."""
    first, second = _cpu_times(before), _cpu_times(after)
    busy = 0.0
    for name, (used, total) in second.items():
        if name in first and total > first[name][1]:
            busy += (used - first[name][0]) / (total - first[name][1])
    return busy


def busy_cores(seconds: float = 0.25) -> float:
    """Cores' worth of work that other processes ran over the next ``seconds`` (this one sleeps
    meanwhile), from /proc/stat; 0 where that file does not exist (not Linux)."""
    import time
    from pathlib import Path

    stat = Path("/proc/stat")
    try:
        before = stat.read_text()
        time.sleep(seconds)
        return busy_share(before, stat.read_text())
    except OSError:
        return 0.0
