"""Likelihood of a VAE over a dataset: the ELBO and the importance-weighted bound, in nats per
image and bits per dimension.

Protocol: for a Bernoulli likelihood the test images are binarized once with a fixed seed (the
usual protocol for dynamically binarized MNIST), from a generator of their own, so the binary test
set is the same whatever the batch size, the number of samples or the sampling seed. For a Gaussian likelihood the density is over [0, 1]^D, and
bits/dim count the 256 grey levels of 8-bit pixels: -log P(bin) = -log p(x) + D log 256.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..data.base import ImageDataset
from ..data.transforms import binarize
from ..memory import release_free_memory
from ..models.distributions import bits_per_dim, gaussian_log_density, standard_normal_log_density


BINARIZATION_SEED = 0


def binarized_once(data: ImageDataset, seed: int = BINARIZATION_SEED) -> ImageDataset:
    """``data`` with every pixel drawn once as a Bernoulli of its grey level, from ``seed``."""
    images, labels = data.tensors()
    return ImageDataset(images=binarize(images, torch.Generator().manual_seed(seed)), labels=labels,
                        name=data.name, split=data.split, class_names=data.class_names)


def _per_image(model, data: ImageDataset, seed: int, batch_size: int,
               fn: Callable[[torch.Tensor, torch.Tensor | None], dict[str, torch.Tensor]],
               binarization_seed: int = BINARIZATION_SEED, progress: bool = False,
               ) -> dict[str, torch.Tensor]:
    """Run ``fn(x, labels)`` over ``data`` in batches with fixed random draws (``seed``), leaving
    the caller's random state untouched; concatenate its per-image outputs (float64, CPU).
    ``progress``: a progress bar, shown only on a terminal."""
    model.eval()
    device = model.device
    if model.config.likelihood == "bernoulli":
        data = binarized_once(data, binarization_seed)
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        bar = tqdm(total=len(data), unit="image", desc="evaluating", leave=False, dynamic_ncols=True,
                   disable=None if progress else True)  # None: off when not a terminal
        for i, batch in enumerate(data.batches(batch_size, device)):
            for name, value in fn(batch.images, batch.labels).items():
                parts.setdefault(name, []).append(value.double().cpu())
            bar.update(len(batch))
            if i % 20 == 19:
                release_free_memory()  # or memory grows over thousands of batches (genlab/memory.py)
        bar.close()
    return {name: torch.cat(values) for name, values in parts.items()}


def _mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    n = len(values)
    return float(values.mean()), float(values.std() / math.sqrt(n)) if n > 1 else 0.0


def _bits_per_dim(model, nll: float) -> float:
    d = model.config.num_pixels
    return bits_per_dim(nll + (d * math.log(256) if model.config.likelihood == "gaussian" else 0.0), d)


@torch.no_grad()
def elbo(model, data: ImageDataset, mc_samples: int = 1, seed: int = 0, batch_size: int = 500,
         binarization_seed: int = BINARIZATION_SEED, progress: bool = False) -> dict[str, float]:
    """Mean ELBO over ``data`` with ``mc_samples`` Monte-Carlo draws per image.

    Returns ``elbo``, ``log_px_z`` (E_q log p(x|z)), ``kl``, in nats per image, ``elbo_stderr``,
    and ``bits_per_dim`` of the negative ELBO (an upper bound on the NLL).
    """
    values = _per_image(model, data, seed, batch_size,
                        lambda x, y: model.elbo_terms(x, y, mc_samples=mc_samples), binarization_seed, progress)
    mean, stderr = _mean_and_stderr(values["elbo"])
    return {"elbo": mean, "elbo_stderr": stderr, "log_px_z": float(values["log_px_z"].mean()),
            "kl": float(values["kl"].mean()), "bits_per_dim": _bits_per_dim(model, -mean),
            "mc_samples": mc_samples}


def importance_log_weights(model, x: torch.Tensor, labels: torch.Tensor | None, k: int,
                           chunk: int = 500) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for z_k ~ q(z|x), shape (k, N), in nats.

    The K draws are made ``chunk`` at a time so memory stays bounded for K in the thousands.
    """
    mu, logvar = model.posterior(x, labels)
    std = torch.exp(0.5 * logvar)
    parts = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        z = mu + std * torch.randn((n, *mu.shape), device=mu.device, dtype=mu.dtype)   # (n, N, d)
        log_px_z = model.log_likelihood(model.decode_logits(z, labels), x)             # (n, N)
        parts.append(log_px_z + standard_normal_log_density(z) - gaussian_log_density(z, mu, logvar))
    return torch.cat(parts)


@torch.no_grad()
def importance_weighted_log_likelihood(model, data: ImageDataset, k: int = 5000, seed: int = 0,
                                       batch_size: int = 100, chunk: int = 500,
                                       binarization_seed: int = BINARIZATION_SEED,
                                       progress: bool = False) -> dict[str, float]:
    """The K-sample importance-weighted estimate of log p(x) (Burda et al. 2015) over ``data``.

    log p(x) >= log (1/K) sum_k w_k, a bound that tightens as K grows (K = 1 is the ELBO), computed
    with log-sum-exp in float64.

    Returns ``nll`` (nats per image, the negative estimate), ``nll_stderr`` over the images,
    ``bits_per_dim``, ``importance_samples`` and, for binary pixels, ``binarization_seed``. Memory
    holds ``batch_size * chunk`` decoded images at a time, whatever K.
    """
    def log_px(x, y):
        log_w = importance_log_weights(model, x, y, k, chunk).double()
        return {"log_px": torch.logsumexp(log_w, 0) - math.log(k)}

    values = _per_image(model, data, seed, batch_size, log_px, binarization_seed, progress)["log_px"]
    mean, stderr = _mean_and_stderr(values)
    results = {"nll": -mean, "nll_stderr": stderr, "bits_per_dim": _bits_per_dim(model, -mean),
               "importance_samples": k}
    if model.config.likelihood == "bernoulli":
        results["binarization_seed"] = binarization_seed
    return results
