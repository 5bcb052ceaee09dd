"""Image quality of an image-to-image model against the clean images: PSNR and SSIM, always next
to the trivial baseline.

The test images are corrupted with seeded draws: image ``i`` of the split gets its own generator
seeded by (seed, i), so every model of the same task settings sees the same noisy (or small)
images, whatever the batch size. The model's output and the baseline (the noisy input for
denoise; bicubic upscaling for superres) are each compared with the clean image by scikit-image:
``peak_signal_noise_ratio`` and ``structural_similarity`` with ``data_range=1`` (colour images with
``channel_axis``; the default 7x7 uniform window, smaller for images under 7 pixels a side). The
figures are means over the images (PSNR is averaged in dB, per image, as super-resolution papers
do), with the standard error of the mean. For superres, ``psnr_y`` and ``ssim_y`` are also given,
measured as the super-resolution literature measures: on the 8-bit luminance (the Y of ITU-R
BT.601 in 16..235, rounded; a grey image as it is) with ``scale`` pixels cropped from each border,
SSIM with the 11x11 Gaussian window of Wang et al. 2004 (:mod:`genlab.metrics.image_quality`).
An exact match (zero error) counts as 100 dB, so a mean stays finite.

For colorize the condition is the grey image (no draws) and the baseline the grey image as colour
(chrominance 0). The mean of per-image dB is then ruled by the nearly grey test images, where the
baseline is close to exact and any colour costs tens of dB, so four more figures are given:
``psnr_pooled`` (10 log10(1 / the squared error per pixel over the whole split), and the
baseline's), ``images_improved`` (the share of images whose PSNR beats the baseline's),
``chroma_rmse`` (the root mean square error of the chrominance over the split, in the colour
space's units: a and b of Lab, or U and V; the baseline's is that of the true chrominance), and
``mean_chroma`` / ``true_mean_chroma`` (the mean length of the chrominance vector,
sqrt(a^2 + b^2), of the output and of the truth), whose ratio ``chroma_ratio`` says how
desaturated the output is.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ...data.base import ImageDataset
from ...data.registry import load_dataset
from ...metrics.domain_transfer import direction_quality
from ...metrics.image_quality import MAX_PSNR_DB, _summary, psnr, psnr_y, ssim, ssim_y
from . import colour
from .model import Colorize


SEED_STRIDE = 1_000_003


class SeededDraws:
    """Random draws for a run of images of a split, each from its own generator seeded by
    (seed, index): the protocol of :class:`~genlab.data.Batch` (``rand``, ``randn``: shapes
    without the image axis), so :func:`~genlab.data.transforms.corrupt` takes it as ``draws``."""

    def __init__(self, seed: int, indices, device: torch.device | str = "cpu", dtype=torch.float32):
        self.generators = [torch.Generator().manual_seed((seed * SEED_STRIDE + int(i)) % 2 ** 63) for i in indices]
        self.device, self.dtype = device, dtype

    def _draw(self, fn, shape) -> torch.Tensor:
        values = torch.stack([fn(shape, generator=g) for g in self.generators])
        return values.to(self.device, self.dtype)

    def rand(self, *shape: int) -> torch.Tensor:
        return self._draw(torch.rand, shape)

    def randn(self, *shape: int) -> torch.Tensor:
        return self._draw(torch.randn, shape)


@torch.no_grad()
def seeded_conditions(model, images: torch.Tensor, start: int = 0, seed: int = 0) -> torch.Tensor:
    """The condition images of clean ``images`` (rows ``start``, ``start + 1``, ... of a split),
    each corrupted with its own seeded draws: the same for every model of the same task settings."""
    draws = SeededDraws(seed, range(start, start + len(images)), images.device, images.dtype)
    return model.degrade(images, draws=draws)


@torch.no_grad()
def image_quality(model, data: ImageDataset, seed: int = 0, batch_size: int = 250) -> dict:
    """PSNR and SSIM of ``model``'s output (and of the trivial baseline) against the clean
    images of ``data``, whose condition images are made with seeded draws (``seed``; pix2pix's
    are the data's own); the gains in dB and SSIM; for a task with a ``luminance_crop``
    (superres) also PSNR and SSIM on the 8-bit luminance with that border crop; for colorize the
    colour figures."""
    model.eval()
    crop, colours = model.luminance_crop, isinstance(model, Colorize)
    rows: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "baseline_psnr", "baseline_ssim",
                                                     "psnr_y", "baseline_psnr_y", "ssim_y", "baseline_ssim_y",
                                                     "chroma", "true_chroma")}
    sums = {"error": 0.0, "baseline_error": 0.0, "chroma_error": 0.0, "true_chroma_square": 0.0, "pixels": 0}
    start = 0
    for batch in data.batches(batch_size, model.device):
        x = batch.images
        condition = model.condition_of(batch, draws=SeededDraws(seed, range(start, start + len(x)), x.device, x.dtype))
        start += len(x)
        output, base = model.translate(condition), model.baseline(condition)
        pairs = (("", output), ("baseline_", base))
        clean = x.double().cpu().numpy()
        if colours:
            _add_colour_sums(model, x, output, base, rows, sums)
        for prefix, images in pairs:
            got = images.double().cpu().numpy()
            for a, b in zip(got, clean):
                rows[prefix + "psnr"].append(psnr(a, b))
                rows[prefix + "ssim"].append(ssim(a, b))
                if crop is not None:
                    rows[prefix + "psnr_y"].append(psnr_y(a, b, crop))
                    rows[prefix + "ssim_y"].append(ssim_y(a, b, crop))
    results: dict = {"task": model.task, "baseline": model.baseline_name, **model.task_settings()}
    luminance = ("psnr_y", "baseline_psnr_y", "ssim_y", "baseline_ssim_y") if crop is not None else ()
    for key in ("psnr", "baseline_psnr", "ssim", "baseline_ssim") + luminance:
        mean, stderr = _summary(rows[key])
        results[key] = mean
        if key in ("psnr", "baseline_psnr"):
            results[key + "_stderr"] = stderr
    results["psnr_gain_db"] = results["psnr"] - results["baseline_psnr"]
    results["ssim_gain"] = results["ssim"] - results["baseline_ssim"]
    if colours:
        results.update(_colour_figures(rows, sums))
    if crop is not None:
        results["psnr_y_gain_db"] = results["psnr_y"] - results["baseline_psnr_y"]
        results["ssim_y_gain"] = results["ssim_y"] - results["baseline_ssim_y"]
        results["y_border_crop"] = crop
    results["corruption_seed"] = seed
    return results


def _add_colour_sums(model, x, output, base, rows: dict, sums: dict) -> None:
    """Add a batch's chrominance lengths (per image) and squared errors (over the split)."""
    space = model.config.color_space
    chroma_out, true = colour.split(output.double(), space)[1], colour.split(x.double(), space)[1]
    for key, chroma in (("chroma", chroma_out), ("true_chroma", true)):
        rows[key] += chroma.pow(2).sum(1).sqrt().flatten(1).mean(1).tolist()
    sums["error"] += float((output.double() - x.double()).pow(2).sum())
    sums["baseline_error"] += float((base.double() - x.double()).pow(2).sum())
    sums["chroma_error"] += float((chroma_out - true).pow(2).sum())
    sums["true_chroma_square"] += float(true.pow(2).sum())
    sums["pixels"] += x[:, 0].numel()


def _colour_figures(rows: dict, sums: dict) -> dict:
    """The pooled PSNR, the share of images improved, the chrominance error and saturation."""
    results: dict = {}
    n = max(sums["pixels"], 1)
    for key, error in (("psnr_pooled", sums["error"]), ("baseline_psnr_pooled", sums["baseline_error"])):
        results[key] = min(-10 * math.log10(max(error / (3 * n), 10 ** (-MAX_PSNR_DB / 10))), MAX_PSNR_DB)
    results["psnr_pooled_gain_db"] = results["psnr_pooled"] - results["baseline_psnr_pooled"]
    results["images_improved"] = float(np.mean(np.asarray(rows["psnr"]) > np.asarray(rows["baseline_psnr"])))
    results["chroma_rmse"] = math.sqrt(sums["chroma_error"] / (2 * n))
    results["baseline_chroma_rmse"] = math.sqrt(sums["true_chroma_square"] / (2 * n))
    results["mean_chroma"], _ = _summary(rows["chroma"])
    results["true_mean_chroma"], _ = _summary(rows["true_chroma"])
    results["chroma_ratio"] = results["mean_chroma"] / results["true_mean_chroma"]
    return results


def paired_transfer_quality(model, data: ImageDataset, data_dir=None) -> dict:
    """The figures of :func:`direction_quality` for a paired model (pix2pix) on ``data``, whose
    condition images are the sources and whose images (with the labels) are the target domain;
    the classifier trains on the training split of ``data``'s dataset (by name, cached)."""
    model.eval()
    source = ImageDataset(images=data.conditions, labels=data.labels, name=data.name, split=data.split)
    target = ImageDataset(images=data.images, labels=data.labels, name=data.name, split=data.split,
                          class_names=data.class_names)
    train = load_dataset(data.name, "train", data_dir)
    figures = direction_quality(model.translate, model.baseline, source, train, target, model.device)
    return {f"transfer/{k}": v for k, v in figures.items()}
