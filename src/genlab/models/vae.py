"""Variational autoencoders: dense or convolutional, optionally class-conditional.

The encoder gives the mean ``mu`` and log-variance ``log sigma^2`` of q(z|x), a diagonal Gaussian;
z = mu + sigma * eps (the reparameterization) keeps sampling differentiable. The decoder gives
p(x|z): Bernoulli (for binary pixels) or Gaussian with a fixed or a learned standard deviation.
The ELBO, in nats per image, is

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)),

with the expectation estimated from ``mc_samples`` draws and the KL in closed form. Training
minimises ``-(recon_weight * E_q[log p(x|z)] - beta * KL)``; ``beta = 1`` (and ``recon_weight = 1``)
is the ELBO, ``beta > 1`` a beta-VAE. The ELBO ablation (``genlab experiment elbo-ablation``)
switches off one term: ``beta = 0`` trains on reconstruction only, ``recon_weight = 0`` on KL only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GenlabError
from .base import GenerativeModel
from .blocks import Decoder, Encoder, NetworkConfig
from .likelihood import bernoulli_log_likelihood, gaussian_log_likelihood, kl_standard_normal


@dataclass
class VAEConfig(NetworkConfig):
    """Attributes (beyond :class:`NetworkConfig`):
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        sigma: the Gaussian's standard deviation (in pixel units), fixed unless ``learn_sigma``;
            then it is the starting value of one learned standard deviation per pixel.
        beta: weight of the KL term in the training objective.
        recon_weight: weight of the reconstruction term; 1 except in ablations (0: KL only).
        mc_samples: draws of z per image in the Monte-Carlo estimate of E_q[log p(x|z)].
        conditional: feed one-hot class labels to encoder and decoder (needs ``num_classes``).
    """

    latent_dim: int = 16
    likelihood: str = "bernoulli"
    sigma: float = 0.1
    learn_sigma: bool = False
    beta: float = 1.0
    recon_weight: float = 1.0
    mc_samples: int = 1
    conditional: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise GenlabError(f"unknown likelihood '{self.likelihood}'; choose 'bernoulli' or 'gaussian'")
        if self.conditional and not self.num_classes:
            raise GenlabError("a conditional VAE needs a labelled dataset (num_classes is unknown)")
        if self.mc_samples < 1 or self.sigma <= 0:
            raise GenlabError("mc_samples must be >= 1 and sigma > 0")


class VAE(GenerativeModel):
    family = "vae"
    config_class = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        extra = config.num_classes if config.conditional else 0
        self.encoder = Encoder(config, 2 * config.latent_dim, extra)
        self.decoder = Decoder(config, config.latent_dim, extra)
        if config.likelihood == "gaussian":
            log_sigma = torch.full(config.image_shape, math.log(config.sigma))
            if config.learn_sigma:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)

    @property
    def wants_binary_data(self) -> bool:  # type: ignore[override]
        return self.config.likelihood == "bernoulli"

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    # ------------------------------------------------------------------ the two networks
    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): ``mu`` and ``logvar``, each (N, latent_dim)."""
        self.check_images(x)
        h = self.encoder(x, self.one_hot(labels, len(x)))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder output before the sigmoid, (..., C, H, W) for z of shape (..., latent_dim)."""
        lead = z.shape[:-1]
        z2 = z.reshape(-1, z.shape[-1])
        self.check_latents(z2)
        extra = self.one_hot(labels, len(z2))
        if extra is not None and len(extra) != len(z2):
            extra = extra.repeat(len(z2) // len(extra), 1)
        return self.decoder(z2, extra).reshape(*lead, *self.config.image_shape)

    def log_likelihood(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image in nats, given decoder logits (..., C, H, W)."""
        if self.config.likelihood == "bernoulli":
            return bernoulli_log_likelihood(logits, x)
        return gaussian_log_likelihood(torch.sigmoid(logits), self.log_sigma, x)

    # ------------------------------------------------------------------ common surface
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean: the usual deterministic code of a VAE."""
        return self.posterior(x, labels)[0]

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of p(x|z), (N, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z, labels))

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder means at n draws z ~ N(0, I). A conditional model needs ``labels``."""
        if self.conditional and labels is None:
            labels = torch.arange(n) % self.config.num_classes
        return self.decode(self.prior_noise(n, generator), labels)

    def elbo_terms(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                   mc_samples: int | None = None) -> dict[str, torch.Tensor]:
        """Per-image terms in nats, each (N,): ``log_px_z`` (E_q log p(x|z), by Monte Carlo),
        ``kl`` (closed form) and ``elbo``."""
        k = mc_samples or self.config.mc_samples
        mu, logvar = self.posterior(x, labels)
        eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps                    # (K, N, d)
        log_px_z = self.log_likelihood(self.decode_logits(z, labels), x).mean(0)
        kl = kl_standard_normal(mu, logvar)
        return {"log_px_z": log_px_z, "kl": kl, "elbo": log_px_z - kl}

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Batch means: ``loss`` = -(recon_weight E log p(x|z) - beta KL), ``recon`` = -E log p(x|z),
        ``kl`` and ``neg_elbo``, all in nats per image."""
        t = self.elbo_terms(x, labels)
        recon, kl = -t["log_px_z"].mean(), t["kl"].mean()
        loss = self.config.recon_weight * recon + self.config.beta * kl
        return {"loss": loss, "recon": recon, "kl": kl, "neg_elbo": recon + kl}
