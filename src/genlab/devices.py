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
