"""Measures of an image against its clean target: PSNR and SSIM by scikit-image (imported on first
use), PSNR on the luminance with the border cropped (the super-resolution convention), and a
batched PSNR in torch for the training logs. An exact match counts as :data:`MAX_PSNR_DB`, so a
mean stays finite."""
from __future__ import annotations

import math

import numpy as np
import torch

MAX_PSNR_DB = 100.0


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of one image against its target, values in [0, 1], any shape (scikit-image);
    :data:`MAX_PSNR_DB` for an exact match."""
    from skimage.metrics import peak_signal_noise_ratio

    if np.array_equal(output, target):
        return MAX_PSNR_DB
    return min(float(peak_signal_noise_ratio(target, output, data_range=1.0)), MAX_PSNR_DB)


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """SSIM of one image (C, H, W) against its target, values in [0, 1] (scikit-image, over the
    channels for colour); a window of the largest odd size up to 7 that fits."""
    from skimage.metrics import structural_similarity

    side = min(target.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return float("nan")
    if target.shape[0] == 1:
        return float(structural_similarity(target[0], output[0], data_range=1.0, win_size=win))
    return float(structural_similarity(target, output, data_range=1.0, channel_axis=0, win_size=win))


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W) luminance in [16/255, 235/255] of an RGB image (C=3, H, W) in [0, 1]: Y of YCbCr
    (``skimage.color.rgb2ycbcr``) / 255; a grey image (1, H, W) as it is."""
    from skimage.color import rgb2ycbcr

    if image.shape[0] == 1:
        return image[0]
    return rgb2ycbcr(np.moveaxis(image, 0, -1))[..., 0] / 255.0


def psnr_y(output: np.ndarray, target: np.ndarray, crop: int) -> float:
    """PSNR on the luminance, ``crop`` pixels cut from each border (the SR convention)."""
    a, b = luminance(output), luminance(target)
    if crop and min(a.shape) > 2 * crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    return psnr(a, b)


def _summary(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def batch_psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image (N,) for values in [0, 1]: 10 log10(1 / mean squared error), with
    the error floored at 1e-10 (at most :data:`MAX_PSNR_DB`)."""
    mse = (output.float() - target.float()).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(10 ** (-MAX_PSNR_DB / 10)))
