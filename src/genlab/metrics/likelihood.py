"""Likelihood of a VAE over a dataset: the ELBO and the importance-weighted bound, in nats per
image and bits per dimension."""
from __future__ import annotations

import math

import torch

from ..data.base import ImageDataset
from ..data.transforms import binarize
from ..models.likelihood import bits_per_dim, gaussian_log_density, standard_normal_log_density


@torch.no_grad()
def elbo(model, data: ImageDataset, mc_samples: int = 1, seed: int = 0, batch_size: int = 500) -> dict[str, float]:
    """Mean ELBO over ``data`` with ``mc_samples`` Monte-Carlo draws per image.

    For a Bernoulli likelihood the images are binarized once with ``seed`` (the usual protocol
    for binarized MNIST). For a Gaussian likelihood the density is over [0, 1]^D, and bits/dim
    count the 256 grey levels of 8-bit pixels: -log P(bin) = -log p(x) + D log 256.

    Returns ``elbo``, ``log_px_z`` (E_q log p(x|z)), ``kl``, in nats per image, ``elbo_stderr``,
    and ``bits_per_dim`` of the negative ELBO (an upper bound on the NLL).
    """
    model.eval()
    device = model.device
    devices = [device] if device.type == "cuda" else []
    parts: dict[str, list[torch.Tensor]] = {"elbo": [], "log_px_z": [], "kl": []}
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, len(data), batch_size):
            x, y = data.batch(slice(start, start + batch_size))
            x = x.to(device)
            if model.config.likelihood == "bernoulli":
                x = binarize(x)
            terms = model.elbo_terms(x, None if y is None else y.to(device), mc_samples=mc_samples)
            for k in parts:
                parts[k].append(terms[k].double().cpu())
    values = {k: torch.cat(v) for k, v in parts.items()}
    d = model.config.num_pixels
    nll_bound = -float(values["elbo"].mean())
    if model.config.likelihood == "gaussian":
        nll_bound += d * math.log(256)
    n = len(values["elbo"])
    return {
        "elbo": float(values["elbo"].mean()),
        "elbo_stderr": float(values["elbo"].std() / math.sqrt(n)) if n > 1 else 0.0,
        "log_px_z": float(values["log_px_z"].mean()),
        "kl": float(values["kl"].mean()),
        "bits_per_dim": bits_per_dim(nll_bound, d),
        "mc_samples": mc_samples,
    }


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
                                       batch_size: int = 100, chunk: int = 500) -> dict[str, float]:
    """The K-sample importance-weighted estimate of log p(x) (Burda et al. 2015) over ``data``.

    log p(x) >= log (1/K) sum_k w_k, a bound that tightens as K grows (K = 1 is the ELBO), computed
    with log-sum-exp. Bernoulli models see the images binarized once with ``seed``; bits/dim of a
    Gaussian model count 256 grey levels, as in :func:`elbo`.

    Returns ``nll`` (nats per image, the negative estimate), ``nll_stderr`` over the images,
    ``bits_per_dim`` and ``importance_samples``.
    """
    model.eval()
    device = model.device
    devices = [device] if device.type == "cuda" else []
    values = []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, len(data), batch_size):
            x, y = data.batch(slice(start, start + batch_size))
            x = x.to(device)
            if model.config.likelihood == "bernoulli":
                x = binarize(x)
            log_w = importance_log_weights(model, x, None if y is None else y.to(device), k, chunk)
            values.append((torch.logsumexp(log_w.double(), 0) - math.log(k)).cpu())
    log_px = torch.cat(values)
    nll = -float(log_px.mean())
    d = model.config.num_pixels
    offset = d * math.log(256) if model.config.likelihood == "gaussian" else 0.0
    return {"nll": nll, "nll_stderr": float(log_px.std() / math.sqrt(len(log_px))) if len(log_px) > 1 else 0.0,
            "bits_per_dim": bits_per_dim(nll + offset, d), "importance_samples": k}
