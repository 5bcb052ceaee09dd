"""The data as progan takes it: square images whose side is the power of two it grows to."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ...data.base import ImageDataset
from ...errors import GenlabError

#: images converted at a time (a large photo set is not turned into floats all at once)
CHUNK = 1024


def target_side(side: int, settings: Mapping[str, Any]) -> int:
    """The side images of side ``side`` are brought to: ``image_size``; else the side of the
    model's ``image_shape`` when the settings hold one (a run folder's, a model's); else the power
    of two nearest ``side`` (on a log scale), at least 4."""
    if settings.get("image_size"):
        return int(settings["image_size"])
    shape = settings.get("image_shape")
    if shape:
        return int(shape[-1])
    return max(4, 2 ** round(math.log2(side)))


def fit_images(images: torch.Tensor, size: int, how: str = "auto") -> torch.Tensor:
    """(N, C, H, W) images (uint8, or float in [0, 1]) as (N, C, size, size) of the same type: a
    centre crop to a square, then ``pad`` (replicating the border, centred), ``resize``
    (bilinear, antialiased when shrinking) or ``auto`` (pad when the side falls short of ``size``
    by at most an eighth, as MNIST's 28 of 32, else resize)."""
    n, c, h, w = images.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[:, :, top:top + side, left:left + side]
    if side == size:
        return images.contiguous()
    pad = how == "pad" or (how == "auto" and side < size and 8 * side >= 7 * size)
    if pad and side > size:
        raise GenlabError(f"images of side {side} cannot be padded to `image_size` {size}; "
                          "use `image_fit=resize`")
    out = torch.empty(n, c, size, size, dtype=images.dtype)
    for start in range(0, n, CHUNK):
        x = images[start:start + CHUNK].float()
        if pad:
            before = (size - side) // 2
            x = F.pad(x, (before, size - side - before, before, size - side - before), mode="replicate")
        else:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < side)
        if images.dtype == torch.uint8:
            x = x.round().clamp(0, 255)
        else:
            x = x.clamp(0, 1)
        out[start:start + CHUNK] = x.to(images.dtype)
    return out


def prepare(data: ImageDataset, settings: Mapping[str, Any], data_dir=None, seed: int = 0) -> ImageDataset:
    """The family's ``prepare_data`` hook: ``data`` with its images brought to the side progan
    grows to (:func:`target_side`, :func:`fit_images`); labels and the rest kept."""
    if data.images.ndim != 4:
        raise GenlabError(f"progan is built for 2-D images (C, H, W); this data has shape {tuple(data.image_shape)}")
    size = target_side(min(data.image_shape[1:]), settings)
    if size < 4 or size & (size - 1):
        raise GenlabError(f"`image_size` must be a power of two of at least 4 (4, 8, 16, 32, ...), got {size}")
    if data.image_shape[1:] == (size, size):
        return data
    images = fit_images(data.images, size, settings.get("image_fit", "auto"))
    return dataclasses.replace(data, images=images)
