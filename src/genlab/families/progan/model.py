"""Progressive growing of GANs (Karras, Aila, Laine and Lehtinen, ICLR 2018).

G and D start at 4 x 4 and grow by doubling the side up to ``image_size``; each new block is faded
in (alpha 0 -> 1 over ``fade_images`` training images) and then trained at alpha 1 for
``stable_images`` (:func:`~.layers.schedule`). With the paper's equalised learning rate, pixelwise
feature normalisation in G, the minibatch standard deviation feature in D (:mod:`.layers`), and
its loss: WGAN-GP (D minimises D(fake) - D(real) + ``gp_lambda`` * (||grad D(x_hat)|| - 1)^2 +
``eps_drift`` * D(real)^2, G minimises -D(fake)), or the non-saturating loss.

Where the run stands is one count, ``images_seen`` (a buffer of the model, so it is saved in
``model.safetensors`` with every checkpoint): the stage and alpha of a training step are the
schedule's at the images seen before it, and the count grows by the step's global batch (the
batch's ``noise.size``: the same in one process or several, in one batch or in micro-batches).
An interrupted run therefore resumes at the same stage and alpha, mid-fade included.

During training, D sees real images average-pooled to the stage's side and, during a fade,
blended with their half-size version upsampled, as G's output is (section 2). Sampling and
``decode`` give images at ``image_size`` in [0, 1]: G's output at the current stage, upsampled
(nearest), so snapshots show each stage as it trains.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ...config import check_at_least
from ...data.batch import Batch
from ...errors import GenlabError
from ...models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported, OptimizerGroup, require_planar
from ...nn.adversarial import _gradient_norm2, discriminator_loss, frozen, generator_loss
from .layers import schedule
from .networks import ProgressiveDiscriminator, ProgressiveGenerator, stage_widths


@dataclass
class ProGANConfig(ModelConfig):
    """Attributes (beyond :class:`ModelConfig`):
        image_size: side of the square images the networks grow to, a power of two of at least
            4; the training data are padded or resized to it. 0: the power of two nearest the
            data's side (8 for digits, 32 for MNIST's 28).
        image_fit: how images of another side are brought to ``image_size`` (after a centre crop
            to a square): ``pad`` (replicating the border), ``resize`` (bilinear, antialiased),
            or ``auto``: pad when the side falls short by at most an eighth (28 -> 32), else resize.
        latent_dim: width of z.
        channels: feature maps at the image's side; each halving of the side doubles them, up
            to ``max_channels``.
        max_channels: feature maps of the widest (smallest) stages (the paper's 512).
        fade_images: training images over which each new block fades in (alpha 0 -> 1).
        stable_images: training images of each side at alpha 1 (4 x 4 first, then after each fade);
            the last side then trains until the run ends.
        loss: ``wgan-gp`` (the paper's, with the drift term) or ``non-saturating``.
        gp_lambda: weight of WGAN-GP's gradient penalty.
        eps_drift: weight of the drift term eps * D(x_real)^2 of ``wgan-gp``, which keeps D's
            scores near 0.
        mbstd_group: images per group of the minibatch standard deviation feature (0: the whole
            batch, as in the paper). Strided groups: a data-parallel run forms those of one
            process; gradient accumulation's micro-batches form their own.
        n_critic: D steps per G step.
        betas: Adam's betas for both networks (the paper's (0, 0.99)).
    """

    image_shape: tuple[int, ...] = (1, 32, 32)
    image_size: int = 0
    image_fit: Literal["auto", "pad", "resize"] = "auto"
    latent_dim: int = 128
    channels: int | tuple[int] = 32  # `--channels 32` gives (32,)
    max_channels: int = 256
    fade_images: int = 60_000
    stable_images: int = 60_000
    loss: Literal["wgan-gp", "non-saturating"] = "wgan-gp"
    gp_lambda: float = 10.0
    eps_drift: float = 0.001
    mbstd_group: int = 4
    n_critic: int = 1
    betas: tuple[float, float] = (0.0, 0.99)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.channels, (tuple, list)):  # `--channels 32` parses as a tuple
            if len(self.channels) != 1:
                raise GenlabError(f"progan takes one width, `channels=C` (each smaller side doubles it), "
                                  f"got {self.channels}")
            self.channels = int(self.channels[0])
        check_at_least(self, 1, "latent_dim", "channels", "max_channels", "n_critic")
        check_at_least(self, 0, "fade_images", "stable_images", "gp_lambda", "eps_drift", "mbstd_group")
        if self.image_size and not is_side(self.image_size):
            raise GenlabError(f"`image_size` must be a power of two of at least 4 (4, 8, 16, 32, ...), "
                              f"got {self.image_size}")
        _, h, w = require_planar(self, "progan")
        if h != w or not is_side(h):
            raise GenlabError(f"progan grows square images whose side is a power of two of at least 4; got "
                              f"{h}x{w}: set `image_size` (training pads or resizes the data to it)")
        if self.image_size and h != self.image_size:
            raise GenlabError(f"image_shape {tuple(self.image_shape)} does not match `image_size` {self.image_size}")

    @property
    def last_stage(self) -> int:
        """The stage of the full side: 0 for 4 x 4, 3 for 32 x 32."""
        return int(math.log2(self.image_shape[-1])) - 2


def is_side(n: int) -> bool:
    """Whether ``n`` is a side progan grows to: a power of two of at least 4."""
    return n >= 4 and n & (n - 1) == 0


class ProGAN(GenerativeModel):
    """The progressive GAN: G and D that grow from 4 x 4, trained by turns (D, then G)."""

    family = "progan"
    config_class = ProGANConfig
    #: the paper's learning rate (with its betas, ``betas``)
    train_defaults = {"lr": 1e-3}

    def __init__(self, config: ProGANConfig, name: str | None = None):
        super().__init__(config, name)
        widths = stage_widths(config.image_shape[-1], config.channels, config.max_channels)
        channels = config.image_shape[0]
        self.generator = ProgressiveGenerator(config.latent_dim, widths, channels)
        self.discriminator = ProgressiveDiscriminator(widths, channels, config.mbstd_group)
        #: training images seen so far: where the growth schedule stands (saved with the weights)
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self._seen = 0          # the same count on the host, so that no step reads the device
        self._counted_step: int | None = None
        self._step_start = 0    # images seen before the step being trained
        self.register_load_state_dict_post_hook(_read_count)
        self.keep_average("generator")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(decoder=True, prior=True, latent_space=True)  # no held-out loss: its losses are a game

    # ----------------------------------------------------------------- where the growth stands
    def schedule_at(self, images: int) -> tuple[int, float]:
        """(stage, alpha) after ``images`` training images."""
        cfg = self.config
        return schedule(images, cfg.last_stage, cfg.fade_images, cfg.stable_images)

    def growth(self) -> dict[str, float]:
        """Where the run stands: ``images_seen``, ``stage``, ``alpha`` and ``side`` (of G's images
        before upsampling) of the next training step, which sampling uses too."""
        stage, alpha = self.schedule_at(self._seen)
        return {"images_seen": self._seen, "stage": stage, "alpha": alpha, "side": 4 << stage}

    def _count(self, step: int, batch: Batch) -> tuple[int, float]:
        """The stage and alpha of training ``step``; the first objective of a step adds its global
        batch to ``images_seen`` (later micro-batches and objectives of the step find it counted)."""
        if step != self._counted_step:
            size = batch.noise.size if batch.noise is not None else len(batch)
            self._counted_step, self._step_start = step, self._seen
            self._seen += size
            self.images_seen.fill_(self._seen)
        return self.schedule_at(self._step_start)

    # ----------------------------------------------------------------- the common surface
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def to_images(self, y: torch.Tensor) -> torch.Tensor:
        """G's output (N, C, s, s), about [-1, 1], as images (N, C, image_size, image_size) in [0, 1]."""
        side = self.config.image_shape[-1]
        if y.shape[-1] != side:
            y = F.interpolate(y, size=(side, side), mode="nearest")
        return ((y.float() + 1) / 2).clamp(0, 1)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, image_size, image_size) in [0, 1] from z (N, latent_dim), by G (its moving
        average in eval mode) at the current stage and alpha."""
        self.check_latents(z)
        stage, alpha = self.schedule_at(self._seen)
        return self.to_images(self.network("generator")(z, stage, alpha))

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.prior_noise(n, generator))

    def loss(self, batch, labels=None, step=None) -> dict[str, torch.Tensor]:
        raise NotSupported("a GAN has no held-out loss; measure its samples with "
                           "`genlab evaluate RUN --metrics fid,kid,pr`")

    def real_at(self, images: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        """Real images (N, C, S, S) in [0, 1] as D sees them at ``stage`` and ``alpha``: in [-1, 1],
        average-pooled to side 4 * 2^stage and, during a fade, blended with their half-size version
        upsampled (nearest)."""
        x = images * 2 - 1
        factor = images.shape[-1] >> (2 + stage)
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        if stage > 0 and alpha < 1.0:
            coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
            x = coarse + alpha * (x - coarse)
        return x

    # ----------------------------------------------------------------- training
    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        betas = self.config.betas
        return {"generator": OptimizerGroup(list(self.generator.parameters()), betas=betas),
                "discriminator": OptimizerGroup(list(self.discriminator.parameters()), betas=betas)}

    def update_order(self, step: int) -> tuple[str, ...]:
        """A D step on every batch; a G step after it on every ``n_critic``-th."""
        return ("discriminator", "generator") if (step + 1) % self.config.n_critic == 0 else ("discriminator",)

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's objective on ``batch`` and fresh fakes (left in ``batch.scratch`` when G updates on
        this step), or G's on those fakes after D's step. Logs ``d_loss``, ``g_loss`` (= ``loss``),
        ``d_real``, ``d_fake``, ``gp`` and ``drift`` (wgan-gp), and the ``stage`` and ``alpha``."""
        if name == "generator":
            fake, stage, alpha = batch.scratch.pop("fake"), batch.scratch["stage"], batch.scratch["alpha"]
            with frozen(self.discriminator):
                scores = self.discriminator(fake, stage, alpha)
            g_loss = generator_loss(self.config.loss, scores)
            return g_loss, {"g_loss": g_loss.detach(), "loss": g_loss.detach()}
        return self._discriminator_objective(batch, step)

    def _discriminator_objective(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, D = self.config, self.discriminator
        stage, alpha = self._count(step, batch)
        real = self.real_at(batch.images, stage, alpha)
        z = batch.randn(cfg.latent_dim)
        update_g = "generator" in self.update_order(step)
        with torch.set_grad_enabled(update_g):
            fake = self.generator(z, stage, alpha)
        if update_g:
            batch.scratch.update(fake=fake, stage=stage, alpha=alpha)
        # Two passes, not one over both: the minibatch feature must not mix real and fake images.
        s_real, s_fake = D(real, stage, alpha), D(fake.detach(), stage, alpha)
        d_loss = discriminator_loss(cfg.loss, s_real, s_fake)
        terms = {"d_real": s_real.mean(), "d_fake": s_fake.mean()}
        if cfg.loss == "wgan-gp":
            eps = batch.rand(1, 1, 1)
            mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
            terms["gp"] = (_gradient_norm2(D(mixed, stage, alpha), mixed).sqrt() - 1).pow(2).mean()
            terms["drift"] = s_real.pow(2).mean()
            d_loss = d_loss + cfg.gp_lambda * terms["gp"] + cfg.eps_drift * terms["drift"]
        terms["d_loss"] = d_loss
        terms["g_loss"] = generator_loss(cfg.loss, s_fake.detach())
        terms = {k: v.detach() for k, v in terms.items()}
        terms["loss"] = terms["g_loss"]
        terms["stage"] = torch.full((), float(stage), device=d_loss.device)
        terms["alpha"] = torch.full((), alpha, device=d_loss.device)
        return d_loss, terms


def _read_count(model: ProGAN, incompatible_keys) -> None:
    """After weights are loaded (a checkpoint, a run folder): the host's count of images seen
    from the loaded buffer; the next training step counts afresh."""
    model._seen = int(model.images_seen)
    model._counted_step = None
