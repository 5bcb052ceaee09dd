"""Batch transforms: dynamic binarization and the corruptions used by denoising models.

Each takes float images in [0, 1] and an optional source of random draws: a ``torch.Generator``
(default: the global RNG), or ``draws``, a :class:`~genlab.data.Batch` whose per-image draws a
training step shares out; and returns a new tensor of the same shape.
"""
from __future__ import annotations

import torch

from ..errors import GenlabError

NOISE_KINDS = ("none", "gaussian", "masking", "salt-pepper")


def _rand_like(x: torch.Tensor, generator: torch.Generator | None, draws=None) -> torch.Tensor:
    if draws is not None:
        return draws.rand(*x.shape[1:])
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _randn_like(x: torch.Tensor, generator: torch.Generator | None, draws=None) -> torch.Tensor:
    if draws is not None:
        return draws.randn(*x.shape[1:])
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
    """A fresh Bernoulli draw with each pixel's grey level as its probability of being 1."""
    return (_rand_like(x, generator, draws) < x).to(x.dtype)


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
    """Additive Gaussian noise of standard deviation ``std``, clipped back to [0, 1]."""
    return (x + std * _randn_like(x, generator, draws)).clamp_(0.0, 1.0)


def masking_noise(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None,
                  draws=None) -> torch.Tensor:
    """Set a random ``fraction`` of the pixels to 0 (each pixel independently)."""
    return x * (_rand_like(x, generator, draws) >= fraction).to(x.dtype)


def salt_pepper_noise(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None,
                      draws=None, salt: float = 0.5) -> torch.Tensor:
    """Impulse noise: each pixel independently (each channel of a colour image too) is replaced
    with probability ``fraction``, by 1 (salt) with probability ``salt``, else by 0 (pepper); the
    rest keep their values. Two uniform draws per pixel: which are hit, then salt or pepper."""
    if not 0.0 <= fraction <= 1.0:
        raise GenlabError(f"salt-and-pepper noise replaces a fraction of the pixels: `noise_level` must lie in "
                          f"[0, 1], got {fraction}")
    hit = _rand_like(x, generator, draws) < fraction
    white = (_rand_like(x, generator, draws) < salt).to(x.dtype)
    return torch.where(hit, white, x)


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None,
            draws=None) -> torch.Tensor:
    """Apply the named corruption: ``gaussian`` (level = std), ``masking`` (level = fraction),
    ``salt-pepper`` (level = fraction, half salt, half pepper)."""
    if kind == "none" or level == 0:
        return x
    if kind == "gaussian":
        return gaussian_noise(x, level, generator, draws)
    if kind == "masking":
        return masking_noise(x, level, generator, draws)
    if kind == "salt-pepper":
        return salt_pepper_noise(x, level, generator, draws)
    raise GenlabError(f"unknown noise '{kind}'; choose one of: {', '.join(NOISE_KINDS)}")
