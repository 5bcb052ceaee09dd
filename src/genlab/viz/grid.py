"""Image grids and GIFs: float tensors in [0, 1] (N, C, H, W) to PNG and GIF files.

A picture grid is 2-D: volumes (N, C, D, H, W) are shown by their middle slice along D
(:func:`planar`)."""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def planar(images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) as they are; volumes (N, C, D, H, W) as their middle slices (N, C, H, W)."""
    if images.ndim == 5:
        return images[:, :, images.shape[2] // 2]
    if images.ndim != 4:
        raise ValueError(f"a picture grid shows images (N, C, H, W) or volumes (N, C, D, H, W), "
                         f"got shape {tuple(images.shape)}")
    return images


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float in [0, 1] -> (N, H, W, C) uint8 (C = 1 or 3); volumes by their middle slice."""
    x = planar(images).detach().float().cpu().clamp(0, 1)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels to be shown, got {x.shape[1]}")
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1,
              pad_value: int = 255) -> Image.Image:
    """Tile N images into a grid of ``nrow`` per row (default: a near-square grid), each enlarged
    ``scale`` times with nearest-neighbour (so pixels stay crisp)."""
    pixels = to_uint8(images)
    n, h, w, c = pixels.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    h2, w2 = h * scale, w * scale
    canvas = np.full((rows * (h2 + padding) + padding, nrow * (w2 + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        tile = pixels[i].repeat(scale, 0).repeat(scale, 1)
        top, left = padding + r * (h2 + padding), padding + col * (w2 + padding)
        canvas[top:top + h2, left:left + w2] = tile
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")


def auto_scale(images: torch.Tensor, target: int = 56) -> int:
    """An integer enlargement that brings small images (8x8 digits) to about ``target`` pixels."""
    return max(1, target // max(planar(images).shape[-2:]))


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
              scale: int | None = None, padding: int = 2) -> Path:
    """Write a PNG grid of ``images`` (N, C, H, W) in [0, 1]; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_grid(images, nrow, padding, scale or auto_scale(images)).save(path)
    return path


def save_gif(frames: list[torch.Tensor], path: str | os.PathLike, nrow: int | None = None,
             scale: int | None = None, duration_ms: int = 120, loop: int = 0) -> Path:
    """Write an animated GIF whose frames are grids of the given image batches."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    s = scale or auto_scale(frames[0])
    pictures = [make_grid(f, nrow, 2, s).convert("P") for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=duration_ms, loop=loop)
    return path


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
