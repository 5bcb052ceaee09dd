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

For likelihood, training can instead maximise the K-sample importance-weighted bound of Burda et
al. (2015), ``iw_samples = K``:

    L_K(x) = E[ log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) ],   z_1..z_K ~ q(z|x),

which equals the ELBO at K = 1 and tightens towards log p(x) as K grows. Two aids against
inactive latent units: a linear KL warm-up (``kl_warmup_steps``: the prior and posterior terms are
weighted from 0 up to ``beta``, by the trainer's step, so a resumed run continues the same
schedule) and free bits (``free_bits``: nats per latent dimension below which the batch-mean KL of
that dimension is not penalised; Kingma et al. 2016). With ``ema_decay`` an exponential moving
average of the weights is kept in the state dict; a model in eval mode (evaluation, sampling,
encoding) uses the averaged weights, a model in train mode the live ones.

With ``autoregressive`` the Bernoulli decoder becomes p(x|z) = prod_i p(x_i | z, x_<i): a masked
network over the earlier pixels adds to each pixel's logit (:mod:`genlab.families.vae.autoregressive`).
Every bound above keeps its form; ``decode`` then gives the probabilities of a deterministic
pixel-by-pixel pass and ``sample`` draws binary images pixel by pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...config import check_at_least
from ...errors import GenlabError
from ...data.batch import Batch, as_batch
from ...models.base import Capabilities, GenerativeModel
from .autoregressive import PixelContext
from ...nn.blocks import Decoder, Encoder, NetworkConfig, _act
from ...models.distributions import (bernoulli_log_likelihood, gaussian_log_density, gaussian_log_likelihood, kl_standard_normal, standard_normal_log_density)


def soft_bound(x: torch.Tensor, c: float) -> torch.Tensor:
    """c tanh(x / c): close to x near 0 (within 1 % for |x| < c / 6), never beyond +-c; c = 0: x."""
    return c * torch.tanh(x / c) if c else x


@dataclass
class VAEConfig(NetworkConfig):
    """Attributes (beyond :class:`NetworkConfig`):
        likelihood: ``"bernoulli"`` (binary pixels: grey images are binarized afresh each batch),
            ``"gaussian"``, or ``"auto"``: Gaussian for colour images (which binarizing would
            reduce to 8 colours), Bernoulli for grey ones. A run records the one chosen.
        sigma: the Gaussian's standard deviation (in pixel units), fixed unless ``learn_sigma``;
            then it is the starting value of one learned standard deviation per pixel.
        beta: weight of the KL term in the training objective.
        recon_weight: weight of the reconstruction term; 1 except in ablations (0: KL only).
        mc_samples: draws of z per image in the Monte-Carlo estimate of E_q[log p(x|z)].
        conditional: feed one-hot class labels to encoder and decoder (needs ``num_classes``).
        iw_samples: K of the importance-weighted training bound; 1 trains on the ELBO.
        kl_warmup_steps: steps over which the KL weight rises linearly from 0 to ``beta``; 0: none.
        free_bits: nats per latent dimension of KL left unpenalised (ELBO training only); 0: none.
        autoregressive: each pixel's Bernoulli logit also depends on the earlier pixels (raster
            order) through direct linear connections; Bernoulli likelihood only.
        ar_hidden: width of a masked hidden layer added to those connections; 0: none.
        mean_bound: a soft bound c on the posterior mean, mu = c tanh(mu_raw / c); 0: none.
            Without it an input unlike the training images can get a mean far out in the prior's
            tail, where the decoder extrapolates (docs/likelihood.md).
        logit_bound: the same soft bound on the decoder's logits (before any autoregressive
            context), so that no pixel can cost more than about c nats through the decoder; 0: none.
    """

    latent_dim: int = 16
    likelihood: Literal["auto", "bernoulli", "gaussian"] = "auto"
    sigma: float = 0.1
    learn_sigma: bool = False
    beta: float = 1.0
    recon_weight: float = 1.0
    mc_samples: int = 1
    conditional: bool = False
    iw_samples: int = 1
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    autoregressive: bool = False
    ar_hidden: int = 0
    mean_bound: float = 0.0
    logit_bound: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, 0, "beta", "recon_weight")
        if self.likelihood not in ("auto", "bernoulli", "gaussian"):
            raise GenlabError(f"unknown likelihood '{self.likelihood}'; choose 'auto', 'bernoulli' or 'gaussian'")
        if self.likelihood == "auto":
            colour = bool(self.image_shape) and self.image_shape[0] == 3 and not self.autoregressive
            self.likelihood = "gaussian" if colour else "bernoulli"
        if self.conditional and not self.num_classes:
            raise GenlabError("a conditional VAE needs a labelled dataset (num_classes is unknown)")
        if self.mc_samples < 1 or self.sigma <= 0:
            raise GenlabError("mc_samples must be >= 1 and sigma > 0")
        if self.iw_samples < 1 or self.kl_warmup_steps < 0 or self.free_bits < 0:
            raise GenlabError("iw_samples must be >= 1, kl_warmup_steps >= 0 and free_bits >= 0")
        if self.iw_samples > 1 and (self.free_bits or self.recon_weight != 1.0):
            raise GenlabError("free_bits and recon_weight apply to ELBO training (iw_samples=1); "
                              "with the importance-weighted bound use kl_warmup_steps and beta")
        if self.autoregressive and self.likelihood != "bernoulli":
            raise GenlabError("autoregressive needs the Bernoulli likelihood (`likelihood=bernoulli`)")
        if self.ar_hidden < 0 or (self.ar_hidden and not self.autoregressive):
            raise GenlabError(f"ar_hidden must be >= 0 and needs autoregressive=true, got {self.ar_hidden}")
        if self.mean_bound < 0 or self.logit_bound < 0:
            raise GenlabError("mean_bound and logit_bound must be >= 0 (0 turns the bound off)")


class VAE(GenerativeModel):
    family = "vae"
    config_class = VAEConfig
    #: bf16 autocast where the hardware has it: 1.5x the plain fp32 step of the dense VAE on CPU, with
    #: the test ELBO after a fixed training within the spread between seeds (benchmarks/throughput.py
    #: and benchmarks/precision.py). Held-out losses, ELBO and NLL are evaluated in fp32.
    train_defaults = {"precision": "auto"}

    def __init__(self, config: VAEConfig, name: str | None = None):
        super().__init__(config, name)
        extra = config.num_classes if config.conditional else 0
        self.encoder = Encoder(config, 2 * config.latent_dim, extra)
        self.decoder = Decoder(config, config.latent_dim, extra)
        self.context = PixelContext(config.image_shape, config.ar_hidden, _act(config)) if config.autoregressive else None
        if config.likelihood == "gaussian":
            log_sigma = torch.full(config.image_shape, math.log(config.sigma))
            if config.learn_sigma:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)
        averaged = ["encoder", "decoder"] + (["context"] if self.context is not None else [])
        self.keep_average(*averaged, *(["log_sigma"] if config.likelihood == "gaussian" and config.learn_sigma else []))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(encoder=True, decoder=True, prior=True, labels=self.config.conditional,
                            binary_likelihood=self.config.likelihood == "bernoulli", likelihood=True,
                            latent_space=True, held_out_loss=True)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # ------------------------------------------------------------------ the two networks
    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): ``mu`` and ``logvar``, each (N, latent_dim)."""
        self.check_images(x)
        h = self.network("encoder")(x, self.one_hot(labels, len(x)))
        mu, logvar = h.chunk(2, dim=1)
        return soft_bound(mu, self.config.mean_bound), logvar

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder output before the sigmoid, (..., C, H, W) for z of shape (..., latent_dim)."""
        lead = z.shape[:-1]
        z2 = z.reshape(-1, z.shape[-1])
        self.check_latents(z2)
        extra = self.one_hot(labels, len(z2))
        if extra is not None and len(extra) != len(z2):
            extra = extra.repeat(len(z2) // len(extra), 1)
        logits = soft_bound(self.network("decoder")(z2, extra), self.config.logit_bound)
        return logits.reshape(*lead, *self.config.image_shape)

    def _context(self) -> PixelContext | None:
        return None if self.context is None else self.network("context")

    def log_likelihood(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image in nats, given decoder logits (..., C, *spatial) and images x
        (C, *spatial broadcasting against the logits' leading dimensions)."""
        dims = len(self.config.image_shape)
        if self.config.likelihood == "bernoulli":
            context = self._context()
            if context is not None:  # one pass over x, whatever the number of draws of z
                logits = logits + context(x.reshape(-1, *x.shape[-dims:])).view(x.shape)
            return bernoulli_log_likelihood(logits, x, dims)
        return gaussian_log_likelihood(torch.sigmoid(logits), self.network("log_sigma"), x, dims)

    # ------------------------------------------------------------------ common surface
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean: the usual deterministic code of a VAE."""
        return self.posterior(x, labels)[0]

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of p(x|z), (N, C, H, W) in [0, 1]. An autoregressive decoder has no closed-form
        mean: it gives each pixel's probability in a pass that feeds probabilities back as the
        earlier pixels' values."""
        logits = self.decode_logits(z, labels)
        context = self._context()
        if context is None:
            return torch.sigmoid(logits)
        return context.generate(logits, mean_field=True)[1]

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder means at n draws z ~ N(0, I); an autoregressive decoder draws binary pixels one
        at a time instead. A conditional model needs ``labels``."""
        labels = self.class_indices(labels, n, in_turn=True)
        z = self.prior_noise(n, generator)
        context = self._context()
        if context is None:
            return self.decode(z, labels)
        return context.generate(self.decode_logits(z, labels), generator)[0]

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

    def kl_weight(self, step: int | None = None) -> float:
        """The weight of the KL term at training ``step`` (counted from 0): ``beta``, reached
        linearly from 0 over ``kl_warmup_steps``. ``None`` (evaluation) gives ``beta``."""
        warmup = self.config.kl_warmup_steps
        if step is None or not warmup:
            return self.config.beta
        return self.config.beta * min(1.0, step / warmup)

    def importance_weighted_terms(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                                  k: int | None = None, kl_weight: float = 1.0,
                                  noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-image terms in nats, each (N,): ``bound``, the K-sample importance-weighted bound
        log (1/K) sum_k w_k with log w_k = log p(x|z_k) + kl_weight (log p(z_k) - log q(z_k|x)),
        z_k ~ q(z|x) (``kl_weight`` 1: the bound on log p(x)); ``log_px_z`` (mean over the K draws)
        and ``kl`` (closed form). The draws are made as one (K, N, d) tensor, or given as
        standard normal ``noise`` of that shape."""
        k = k or self.config.iw_samples
        mu, logvar = self.posterior(x, labels)
        if noise is None:
            noise = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * noise
        log_px_z = self.log_likelihood(self.decode_logits(z, labels), x)          # (K, N)
        log_ratio = standard_normal_log_density(z) - gaussian_log_density(z, mu, logvar)
        bound = torch.logsumexp(log_px_z + kl_weight * log_ratio, 0) - math.log(k)
        return {"bound": bound, "log_px_z": log_px_z.mean(0), "kl": kl_standard_normal(mu, logvar)}

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """Batch means in nats per image: ``loss`` (the training objective at ``step``; without a
        step, with the full KL weight), ``recon`` = -E log p(x|z), ``kl`` and ``neg_elbo``; with
        ``iw_samples`` K > 1 also ``neg_iw_bound``, the negative K-sample bound (during a warm-up,
        with the step's KL weight), which is the loss then (``recon`` and ``kl`` come from the
        same K draws). The draws of z come from ``batch`` (per image: the same in any split of a
        training step)."""
        batch = as_batch(batch, labels)
        x, labels = batch.images, batch.labels
        weight = self.kl_weight(step)
        if self.config.iw_samples > 1:
            noise = batch.randn(self.config.iw_samples, self.latent_dim, batch_dim=1)   # (K, N, d)
            t = self.importance_weighted_terms(x, labels, kl_weight=weight, noise=noise)
            recon, kl = -t["log_px_z"].mean(), t["kl"].mean()
            neg_bound = -t["bound"].mean()
            return {"loss": neg_bound, "recon": recon, "kl": kl, "neg_elbo": recon + kl, "neg_iw_bound": neg_bound}
        mu, logvar = self.posterior(x, labels)
        eps = batch.randn(self.config.mc_samples, self.latent_dim, batch_dim=1)   # (K, N, d)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = -self.log_likelihood(self.decode_logits(z, labels), x).mean(0).mean()
        kl_dims = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)                  # (N, d)
        kl = kl_dims.sum(-1).mean()
        penalised = kl
        if self.config.free_bits:
            penalised = kl_dims.mean(0).clamp(min=self.config.free_bits).sum()
        loss = self.config.recon_weight * recon + weight * penalised
        return {"loss": loss, "recon": recon, "kl": kl, "neg_elbo": recon + kl}
