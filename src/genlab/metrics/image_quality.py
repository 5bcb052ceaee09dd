"""Measures of an image against its clean target: PSNR and SSIM by scikit-image (imported on first
use); PSNR and SSIM on the 8-bit luminance with the border cropped, as the super-resolution
literature measures them; and a batched PSNR in torch for the training logs. An exact match
counts as :data:`MAX_PSNR_DB`, so a mean stays finite."""
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


def luminance_8bit(image: np.ndarray) -> np.ndarray:
    """(H, W) luminance of an image (C, H, W) in [0, 1], in 8-bit units (float64, whole numbers),
    as the super-resolution literature measures it: the image rounded to 8 bits (as a PNG file
    holds it), then for RGB the Y of ITU-R BT.601, 16 + (65.481 R + 128.553 G + 24.966 B) / 255
    for R, G, B in 0..255, rounded (in 16..235); a grey image is its grey level. Halves round up,
    as MATLAB's conversions to 8 bits do."""
    image = np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5)
    if image.shape[0] == 1:
        return image[0]
    r, g, b = image
    return np.floor(16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0 + 0.5)


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border and min(image.shape) > 2 * border else image


def psnr_y(output: np.ndarray, target: np.ndarray, crop: int) -> float:
    """PSNR in dB on the 8-bit luminance (:func:`luminance_8bit`, peak 255) with ``crop`` pixels
    cut from each border: the super-resolution convention (the border is cut by ``scale``)."""
    a, b = _crop(luminance_8bit(output), crop), _crop(luminance_8bit(target), crop)
    mse = float(np.mean((a - b) ** 2))
    return MAX_PSNR_DB if mse == 0 else min(10.0 * math.log10(255.0 ** 2 / mse), MAX_PSNR_DB)


def gaussian_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of two (H, W) images as Wang et al. 2004 define it: local means, variances and
    covariance under an 11x11 Gaussian window of standard deviation 1.5 (normalised, the
    population moments), K1 = 0.01, K2 = 0.03, averaged over the positions where the window lies
    wholly inside the image; nan for images under 11 pixels a side."""
    from scipy.signal import convolve2d

    if min(a.shape) < 11:
        return float("nan")
    g = np.exp(-(np.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g) / g.sum() ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)

    def mean(x):
        return convolve2d(x, window, mode="valid")

    mu_a, mu_b = mean(a), mean(b)
    var_a, var_b, cov = mean(a * a) - mu_a ** 2, mean(b * b) - mu_b ** 2, mean(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim_y(output: np.ndarray, target: np.ndarray, crop: int) -> float:
    """:func:`gaussian_ssim` on the 8-bit luminance with ``crop`` pixels cut from each border."""
    return gaussian_ssim(_crop(luminance_8bit(output), crop), _crop(luminance_8bit(target), crop))


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
