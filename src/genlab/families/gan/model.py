"""Generative adversarial networks: DCGAN and the class-conditional GAN.

A generator G maps z ~ N(0, I) (and, when conditional, a class label) to an image in [0, 1]; a
discriminator D scores images, real ones high and generated ones low. The two are trained by turns
(``training_step``): D takes a step on a real batch and a generated one, then G takes a step to
raise D's score of its images. Three objectives, on D's raw scores (logits) s:

- ``non-saturating`` (Goodfellow et al. 2014): D minimises softplus(-s_real) + softplus(s_fake),
  G minimises softplus(-s_fake), which keeps G's gradients alive when D wins early.
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 - s_real) + relu(1 + s_fake),
  G minimises -s_fake.
- ``least-squares`` (LSGAN, Mao et al. 2017): D minimises (s_real - 1)^2 + s_fake^2, G minimises
  (s_fake - 1)^2; CycleGAN's loss.
- ``wgan-gp`` (Gulrajani et al. 2017): D (a critic) minimises s_fake - s_real plus
  ``gp_lambda`` * (||grad D(x_hat)|| - 1)^2 on points between real and fake images; G minimises -s_fake.

Options: spectral norm on D's layers, an R1 penalty (``r1_gamma``/2 * ||grad D(x_real)||^2,
Mescheder et al. 2018), ``n_critic`` D steps per G step, and an exponential moving average of G's
weights (``ema_decay``) that ``sample`` and ``decode`` use. The conditional GAN gives the label to
both networks as a one-hot code: beside z in G, as constant maps beside the image in D.

Architecture (after Radford et al. 2016, DCGAN): G is a linear layer to a (C0, h0, w0) map, then
stride-2 transposed convolutions with batch norm and ReLU, each doubling the side, then a 3x3
convolution and a sigmoid. D mirrors it with stride-2 convolutions and LeakyReLU(0.2), without
batch norm (the gradient penalties are per image, and batch norm would mix images). The number of
stages follows the image side: 8 -> 1 (from 4x4), 28 -> 2 (from 7x7), 32 -> 3, 64 -> 4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...config import check_at_least
from ...errors import GenlabError
from ...data.batch import Batch
from ...models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported, OptimizerGroup, require_planar
from ...nn.adversarial import (LOSSES, Discriminator, _gradient_norm2, discriminator_loss, frozen, generator_loss,
                               num_stages)

@dataclass
class GANConfig(ModelConfig):
    """Attributes (beyond :class:`ModelConfig`):
        latent_dim: width of z.
        channels: width of the stage nearest the image; each stage further away doubles it. 32
            by default (``cgan``: 24), with batches of 64 and a learning rate of 2e-4 (the
            family's training defaults): the GAN benchmark's recipe on 2 cores. Width 64 with
            batches of 128 and 1e-3, the defaults before, took 1.2 s a step there and had not
            reached in 6 minutes the FID a plain loop of width 24 reached in 3
            (benchmarks/time_to_quality.py).
        loss: ``non-saturating``, ``hinge`` or ``wgan-gp``.
        spectral_norm: spectral normalisation of every layer of D (Miyato et al. 2018); on by
            default: without it, a DCGAN on MNIST collapsed to one image within 300 steps.
        r1_gamma: weight of the R1 penalty on real images (Mescheder et al. 2018); 0 turns it
            off. The ``dcgan`` preset sets 1: without it the DCGAN collapsed on MNIST at 32 x 32
            (FID 942 after 18 CPU minutes, against 75 with it after 15: benchmarks/progan.py), and
            in short probes at 28 x 28 it drew sharper, more varied digits. ``cgan`` keeps 0, the
            recipe its benchmark measured (its label maps kept it diverse).
        r1_every: the R1 penalty on every k-th D step only, weighted k times (StyleGAN2's lazy
            regularisation): nearly the same penalty for a k-th of its cost (a second backward pass
            through D). Its logged ``r1`` is k times the penalty on those steps and 0 on the others,
            so the epoch's mean estimates the penalty's.
        gp_lambda: weight of the gradient penalty of ``wgan-gp``.
        n_critic: D steps per G step; G steps on every n_critic-th batch.
        ema_decay: (see :class:`ModelConfig`) averages G's weights, for sampling; the trainer
            updates the average after every step (with ``n_critic`` > 1, also after the steps in
            which only D moves). 0.999 by default, as the GAN benchmark trains.
        d_lr_ratio: D's learning rate over G's (the trainer's ``lr`` is G's).
        betas: Adam's betas for both networks. (0.0, 0.9), after Miyato et al. 2018: on digits
            it gave every loss a lower FID than DCGAN's (0.5, 0.999), and it kept wgan-gp from
            collapsing in seeds where DCGAN's betas collapsed it.
        conditional: class label into both networks (needs ``num_classes``).
    """

    latent_dim: int = 64
    channels: int | tuple[int] = 32  # `--channels 32` gives (32,)
    loss: Literal["non-saturating", "hinge", "wgan-gp", "least-squares"] = "non-saturating"
    spectral_norm: bool = True  # without it D wins early on MNIST and G collapses to one image
    r1_gamma: float = 0.0
    r1_every: int = 16
    gp_lambda: float = 10.0
    n_critic: int = 1
    d_lr_ratio: float = 1.0
    betas: tuple[float, float] = (0.0, 0.9)
    ema_decay: float = 0.999
    conditional: bool = False
    #: runs saved before lazy R1 took the penalty on every step (and before the moving average, none)
    SAVED_BEFORE = {"r1_every": 1, "ema_decay": 0.0}

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.channels, (tuple, list)):  # `--channels 32` parses as a tuple
            if len(self.channels) != 1:
                raise GenlabError(f"a GAN takes one width, `channels=C` (each stage doubles it), got {self.channels}")
            self.channels = int(self.channels[0])
        check_at_least(self, 0, "r1_gamma", "gp_lambda")
        if not self.d_lr_ratio > 0:
            raise GenlabError(f"`d_lr_ratio` must be positive, got {self.d_lr_ratio}")
        if self.loss not in LOSSES:
            raise GenlabError(f"unknown loss '{self.loss}'; choose one of: {', '.join(LOSSES)}")
        if self.latent_dim < 1 or self.channels < 1 or self.n_critic < 1 or self.r1_every < 1:
            raise GenlabError("latent_dim, channels, n_critic and r1_every must be at least 1")
        if self.conditional and not self.num_classes:
            raise GenlabError("a conditional GAN needs a labelled dataset (num_classes is unknown)")
        self.check_shape()

    def check_shape(self) -> None:
        """The 2-D networks' needs: planar images of at least 4x4 (the 3-D GAN has its own)."""
        _, h, w = require_planar(self, "the DCGAN")
        if min(h, w) < 4:
            raise GenlabError(f"a GAN needs images of at least 4x4, got {h}x{w}")


class Generator(nn.Module):
    """z (N, latent_dim) [+ one-hot label (N, K)] -> images (N, C, H, W) in [0, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, channels: int, extra: int = 0):
        super().__init__()
        c, h, w = image_shape
        k = num_stages(h, w)
        top, h0, w0 = channels * 2 ** k, h >> k, w >> k
        layers: list[nn.Module] = [nn.Linear(latent_dim + extra, top * h0 * w0), nn.Unflatten(1, (top, h0, w0)),
                                   nn.BatchNorm2d(top), nn.ReLU()]
        for i in range(k):
            a = top >> i
            layers += [nn.ConvTranspose2d(a, a // 2, 4, stride=2, padding=1), nn.BatchNorm2d(a // 2), nn.ReLU()]
        layers += [nn.Conv2d(channels, c, 3, padding=1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(z if extra is None else torch.cat([z, extra], dim=1))


class GAN(GenerativeModel):
    family = "gan"
    config_class = GANConfig
    #: bf16 autocast where the hardware has it, and channels-last convolutions: together 1.5-1.9x
    #: the plain fp32 step on CPU, with the FID after a fixed training within the spread between
    #: seeds (benchmarks/throughput.py and benchmarks/precision.py); batches of 64 at 2e-4, the
    #: GAN benchmark's (see ``channels``)
    train_defaults = {"precision": "auto", "channels_last": True, "batch_size": 64, "lr": 2e-4}

    def __init__(self, config: GANConfig, name: str | None = None):
        super().__init__(config, name)
        self.generator, self.discriminator = self.build_networks(config)
        self.keep_average("generator")

    def build_networks(self, config: GANConfig) -> tuple[nn.Module, nn.Module]:
        """(G, D) for ``config``."""
        k = config.num_classes if config.conditional else 0
        # The label enters G as a one-hot vector beside z. A learned embedding as wide as z
        # (N(0, 1) at the start) let G draw one image per class and ignore z on MNIST.
        return (Generator(config.image_shape, config.latent_dim, config.channels, k),
                Discriminator(config.image_shape, config.channels, config.spectral_norm, k or None))

    @property
    def capabilities(self) -> Capabilities:
        conditional = self.config.conditional
        return Capabilities(decoder=True, prior=True, labels=conditional, class_interpolation=conditional,
                            latent_space=True)  # no held-out loss: its losses are a game

    # ----------------------------------------------------------------- the common surface
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def _generate(self, z: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
        """G (its moving average in eval mode) at z (N, latent_dim) and class indices (N,) or None."""
        extra = None if classes is None else F.one_hot(classes, self.config.num_classes).to(z.dtype)
        return self.network("generator")(z, extra)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] from z (N, latent_dim); without labels, a conditional
        GAN draws the classes in turn (0, 1, ..., K-1, 0, ...)."""
        self.check_latents(z)
        return self._generate(z, self.class_indices(labels, len(z), in_turn=True))

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.prior_noise(n, generator), labels)

    def interpolate_classes(self, z: torch.Tensor, a: int, b: int, steps: int = 8) -> torch.Tensor:
        """Images (steps, C, H, W) from one z (latent_dim,) while the label input moves linearly
        from class ``a``'s one-hot vector to class ``b``'s: same style, changing class."""
        if not self.conditional:
            raise NotSupported("interpolating between classes needs a conditional GAN (cgan)")
        ends = self.one_hot(torch.tensor([a, b]))  # checks the range
        t = torch.linspace(0, 1, steps, device=self.device)[:, None]
        extra = (1 - t) * ends[0] + t * ends[1]
        return self.network("generator")(z.reshape(1, -1).to(self.device).expand(steps, -1), extra)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one z as G takes it: (latent_dim,) here, a grid for the 3-D GAN."""
        return (self.config.latent_dim,)

    def seen_by_discriminator(self, fake: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Generated images as D sees them: as they are here (the 3-D GAN adds noise)."""
        return fake

    def real_images(self, batch: Batch) -> torch.Tensor:
        """The real images D sees on a training step: the batch's (the 3-D GAN may turn them)."""
        return batch.images

    def loss(self, batch, labels=None, step=None) -> dict[str, torch.Tensor]:
        raise NotSupported("a GAN has no held-out loss; measure its samples with "
                           "`genlab evaluate RUN --metrics fid,kid,pr`")

    # ----------------------------------------------------------------- training
    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        cfg = self.config
        return {"generator": OptimizerGroup(list(self.generator.parameters()), betas=cfg.betas),
                "discriminator": OptimizerGroup(list(self.discriminator.parameters()), lr_scale=cfg.d_lr_ratio,
                                                betas=cfg.betas)}

    def update_order(self, step: int) -> tuple[str, ...]:
        """A D step on every batch; a G step after it on every ``n_critic``-th."""
        return ("discriminator", "generator") if (step + 1) % self.config.n_critic == 0 else ("discriminator",)

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's objective on ``batch`` (N, C, H, W) and fresh fakes (left in ``batch.scratch`` with
        their graph when G updates on this step), or G's on those fakes after D's step. Logs batch
        means: ``d_loss`` (with penalties), ``g_loss``, ``gp`` or ``r1`` when used, ``d_real`` and
        ``d_fake`` (D's mean raw scores), and ``loss`` = ``g_loss``. On a step without a G update,
        ``g_loss`` is G's objective on the scores D gave the fakes before its step."""
        if name == "generator":
            y, fake = batch.scratch["classes"], batch.scratch.pop("fake")
            with frozen(self.discriminator):
                scores = self.discriminator(self.seen_by_discriminator(fake, batch), y)
            g_loss = generator_loss(self.config.loss, scores)
            return g_loss, {"g_loss": g_loss.detach(), "loss": g_loss.detach()}
        return self._discriminator_objective(batch, step)

    def _discriminator_objective(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, D, x = self.config, self.discriminator, self.real_images(batch)
        y = self.class_indices(batch.labels, len(x))
        z = batch.randn(*self.latent_shape)
        update_g = "generator" in self.update_order(step)
        with torch.set_grad_enabled(update_g):
            fake = self._generate(z, y)
        if update_g:
            batch.scratch.update(fake=fake, classes=y)

        r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
        real = x.detach().requires_grad_(r1)
        # One pass over real and generated images together (D has no batch norm, so this equals
        # two passes; spectral norm takes one power-iteration step instead of two).
        both = D(torch.cat([real, self.seen_by_discriminator(fake.detach(), batch)]), None if y is None else torch.cat([y, y]))
        s_real, s_fake = both[:len(x)], both[len(x):]
        d_loss = discriminator_loss(cfg.loss, s_real, s_fake)
        terms = {"d_real": s_real.mean().detach(), "d_fake": s_fake.mean().detach()}
        if cfg.loss == "wgan-gp":
            eps = batch.rand(*(1,) * (x.ndim - 1))
            mixed = (eps * x.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
            terms["gp"] = (_gradient_norm2(D(mixed, y), mixed).sqrt() - 1).pow(2).mean()
            d_loss = d_loss + cfg.gp_lambda * terms["gp"]
        if r1:
            terms["r1"] = _gradient_norm2(s_real, real).mean() * cfg.r1_every
            d_loss = d_loss + 0.5 * cfg.r1_gamma * terms["r1"]
        elif cfg.r1_gamma > 0:
            terms["r1"] = torch.zeros((), device=d_loss.device)
        terms["d_loss"] = d_loss
        terms["g_loss"] = generator_loss(cfg.loss, s_fake.detach())
        terms = {k: v.detach() for k, v in terms.items()}
        terms["loss"] = terms["g_loss"]
        return d_loss, terms
