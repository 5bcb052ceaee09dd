"""The ELBO of a VAE over a dataset, in nats per image and bits per dimension."""
from __future__ import annotations

import math

import torch

from ..data.base import ImageDataset
from ..data.transforms import binarize
from ..models.likelihood import bits_per_dim


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
