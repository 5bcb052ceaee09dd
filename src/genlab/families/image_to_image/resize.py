"""Bicubic resizing as the super-resolution literature makes and enlarges its small images
(MATLAB's ``imresize(x, s, 'bicubic')``), in torch, so that genlab's figures sit beside the
published ones.

Along each axis, output pixel j (0-based) samples the input at u = (j + 1/2) / s - 1/2, with the
cubic kernel of a = -1/2 (Keys 1981). Shrinking (s < 1) widens the kernel by 1/s and scales it by
s, which averages away what the smaller grid cannot hold (antialiasing). Taps that fall outside
the image read its mirror image, the border pixel repeated (symmetric padding), and each output's
weights are normalised to sum to 1. The two axes are resized one after the other, in full
precision, without rounding in between.

PyTorch's antialiased bicubic and Pillow's use the same kernel, but clip the taps at the border
and renormalise, so they agree with this one only where no tap reaches the border.
"""
from __future__ import annotations

import math

import torch


def cubic(x: torch.Tensor) -> torch.Tensor:
    """The cubic convolution kernel with a = -1/2: support [-2, 2], 1 at 0, 0 at the other integers."""
    x = x.abs()
    near = 1.5 * x ** 3 - 2.5 * x ** 2 + 1
    far = -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def taps(size: int, out_size: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, weights), each (out_size, taps): the input pixels each output pixel of one axis
    reads (mirrored into [0, size)) and their weights (float64, each row summing to 1)."""
    width = 4.0 / scale if scale < 1 else 4.0   # the kernel's support, in input pixels
    u = (torch.arange(out_size, dtype=torch.float64) + 0.5) / scale - 0.5
    first = torch.floor(u - width / 2)
    index = first[:, None] + torch.arange(math.ceil(width) + 2, dtype=torch.float64)
    distance = u[:, None] - index
    weight = scale * cubic(scale * distance) if scale < 1 else cubic(distance)
    weight = weight / weight.sum(1, keepdim=True)
    mirrored = index.long().remainder(2 * size)
    mirrored = torch.where(mirrored < size, mirrored, 2 * size - 1 - mirrored)
    return mirrored, weight


def _resize_axis(x: torch.Tensor, dim: int, out_size: int, scale: float) -> torch.Tensor:
    index, weight = taps(x.shape[dim], out_size, scale)
    index, weight = index.to(x.device), weight.to(x.device, x.dtype)
    shape = [1] * x.ndim
    shape[dim] = out_size
    out = torch.zeros((), dtype=x.dtype, device=x.device)
    for t in range(index.shape[1]):   # a handful of taps: a weighted sum of shifted copies
        out = out + x.index_select(dim, index[:, t]) * weight[:, t].view(shape)
    return out


def imresize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Images (N, C, H, W) resized by ``scale`` (1/2: half the size; 4: four times), bicubic as
    described above, to (ceil(scale H), ceil(scale W)); not clipped (the kernel overshoots at
    edges). Differentiable; computed in float32 at least, returned in ``x``'s float dtype."""
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    h, w = x.shape[-2:]
    work = _resize_axis(work, -2, math.ceil(h * scale - 1e-9), scale)
    work = _resize_axis(work, -1, math.ceil(w * scale - 1e-9), scale)
    return work.to(x.dtype) if x.dtype.is_floating_point else work
