"""Log-likelihoods and KL divergences, per image, in nats.

All functions return one value per image (summed over pixels or latent dimensions), so that
callers average over the batch themselves.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def _per_image(t: torch.Tensor, dims: int) -> torch.Tensor:
    return t.flatten(start_dim=t.ndim - dims).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor, dims: int = 3) -> torch.Tensor:
    """log p(x | logits) for a product of Bernoullis, (..., C, *spatial) -> (...,), in nats;
    ``dims`` is the number of image dimensions (3 for (C, H, W), 4 for volumes).

    A true likelihood only for binary x; on grey levels it is the cross-entropy, not a density.
    """
    logits, x = torch.broadcast_tensors(logits, x)
    return -_per_image(F.binary_cross_entropy_with_logits(logits, x, reduction="none"), dims)


def gaussian_log_likelihood(mean: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor,
                            dims: int = 3) -> torch.Tensor:
    """log N(x; mean, sigma^2) summed over pixels, (..., C, *spatial) -> (...,), in nats.

    ``log_sigma`` broadcasts against ``mean`` (a scalar, per pixel, or per image).
    """
    z = (x - mean) * torch.exp(-log_sigma)
    return _per_image(-0.5 * (z * z + LOG_2PI) - log_sigma.expand_as(z), dims)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag exp(logvar)) || N(0, I) ) in closed form, (N, d) -> (N,), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension, in nats."""
    return -0.5 * (((z - mu) ** 2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension, in nats."""
    return -0.5 * (z * z + LOG_2PI).sum(-1)


def bits_per_dim(nats_per_image: float, num_pixels: int) -> float:
    """Negative log-likelihood in nats per image -> bits per pixel (dimension)."""
    return nats_per_image / (num_pixels * math.log(2))
