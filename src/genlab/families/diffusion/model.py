"""Denoising diffusion: DDPM training, DDPM, DDIM and DPM-Solver++ sampling, classifier-free guidance.

The forward process adds Gaussian noise to an image x0 (scaled to [-1, 1]) over ``timesteps``
steps t = 0 .. T-1 with variances beta_t. Its marginal has a closed form: with
abar_t = prod_{s <= t} (1 - beta_s),

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

A U-Net learns to undo it (Ho et al. 2020): given x_t and t it predicts either the noise eps
(``prediction="eps"``) or the velocity v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0
(``prediction="v"``, Salimans & Ho 2022); either one gives the other and x_0 (see
:func:`split_prediction`). The training loss is the mean squared error of that prediction over
pixels, at a uniformly drawn t.

Schedules: ``linear`` (beta from 1e-4 to 0.02 over 1,000 steps, rescaled for other T; Ho et al.)
and ``cosine`` (abar_t = cos^2(((t + 1) / T + s) / (1 + s) pi / 2), normalised, s = 0.008;
Nichol & Dhariwal 2021), which destroys the image more gradually: better for small images.

Samplers (:meth:`Diffusion.generate`): ancestral ``ddpm`` walks all T steps, drawing x_{t-1}
from the posterior q(x_{t-1} | x_t, x_0 = predicted x_0); ``ddim`` (Song et al. 2021) takes any
number of evenly spaced steps, with ``eta`` scaling its noise: eta = 0 is deterministic, so the
starting noise is a latent code (``decode``), and eta = 1 over all T steps is DDPM again;
``dpm++2m`` and ``dpm++3m`` (DPM-Solver++, Lu et al. 2022; :mod:`.dpm_solver`) solve the same
deterministic path as DDIM with eta = 0, to 2nd and 3rd order instead of 1st (with steps spaced
evenly in log signal-to-noise ratio), so fewer steps reach the same images.

Class conditioning adds a class embedding to the time embedding. With ``label_dropout`` p, a
label is replaced by a learned "no class" token with probability p during training, so one network
predicts both conditionally and unconditionally; classifier-free guidance (Ho & Salimans 2022)
then samples with pred = uncond + s (cond - uncond): s = 1 is the plain conditional model,
s > 1 trades diversity for fidelity to the class, s = 0 ignores the label.

Sampling uses an exponential moving average of the network's weights (``ema_decay``), kept in
the state dict with its update counter, so save/load and resume keep it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...config import check_at_least
from ...errors import GenlabError
from ...data.batch import Batch, as_batch
from ...models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported, require_planar
from .dpm_solver import ORDERS, dpm_solver_step, log_snr_steps, step_order

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")
LOSS_WEIGHTINGS = ("uniform", "min-snr")
SAMPLERS = ("ddim", "ddpm", *ORDERS)


@dataclass
class DiffusionConfig(ModelConfig):
    """Attributes (beyond :class:`ModelConfig`):
        channels: width of the U-Net's first level; level i has ``channels * channel_mults[i]``.
        channel_mults: one entry per resolution level; every level but the last halves H and W,
            so the image sides must be divisible by 2 ** (levels - 1).
        blocks_per_level: residual blocks per level on the way down (one more on the way up).
        attention_resolution: self-attention after the residual blocks of every level whose
            feature map side is at most this (the middle of the U-Net always has one).
        groups: groups of the group norms (reduced to a divisor of the width where needed).
        dropout: dropout inside the residual blocks.
        timesteps: T, steps of the forward process.
        schedule: ``linear`` or ``cosine``.
        prediction: what the network predicts: ``eps`` (the noise) or ``v`` (the velocity). ``v`` by
            default: on 8x8 digits, with the same network and 30 epochs, its samples reached a
            FID of 11.6 against 21.7 for ``eps`` (classifier features, 300 samples).
        loss_weighting: ``uniform`` (every step's squared error of the prediction counts alike)
            or ``min-snr`` (Hang et al. 2023): the step's error weighted so that, as an error
            of the clean image, it counts min(SNR, ``min_snr_gamma``) (SNR = abar / (1 - abar)),
            which stops the nearly clean steps dominating the gradient. ``min-snr`` by default:
            on MNIST, at equal CPU time, its samples had the lower FID at every budget
            (benchmarks/diffusion.py, docs/diffusion.md).
        min_snr_gamma: the cap gamma of ``min-snr`` (the paper's 5).
        sampler: the sampler of ``sample`` and ``decode``: ``ddim``, ``ddpm`` (ancestral, all T
            steps; ``decode`` takes ``ddim`` instead), ``dpm++2m`` or ``dpm++3m`` (DPM-Solver++).
            ``dpm++2m`` with 20 steps by default: on MNIST its samples' FID was 0.99 x DDIM's at
            250 steps (DDIM at 20: 1.08 x), for a twelfth of the cost (benchmarks/diffusion_samplers.py).
        sample_steps: steps (network evaluations) of ``sample`` (1 to T); ``decode`` uses them too.
        eta: DDIM noise of ``sample`` (0: deterministic; 1: as much as DDPM); the other samplers
            ignore it.
        guidance: classifier-free guidance scale of ``sample`` for a conditional model (1: none).
        label_dropout: probability of training on the "no class" token instead of the label.
        ema_decay: (see :class:`ModelConfig`) 0.999 here: sampling uses the averaged network.
        conditional: class label into the network (needs ``num_classes``).

    The default is tiny (width 16 at three levels, 0.28 M weights at 28 x 28), trained in
    batches of 64 at a learning rate of 2e-3 (the family's training defaults): the diffusion
    benchmark's recipe on a CPU. The defaults before (width 32 at two levels, 0.7 M weights,
    batches of 128 at 1e-3) took 1.4 s a step on 2 cores and had not reached in 9 minutes the FID
    a plain loop of this U-Net reached in 3 (benchmarks/time_to_quality.py). For a
    GPU, e.g. ``channels=64, channel_mults=(1, 2, 2), blocks_per_level=2`` for 28x28 or
    ``channels=128, channel_mults=(1, 2, 2, 2)`` for 32x32 and 64x64 colour images.
    """

    channels: int | tuple[int] = 16  # `--channels 32` gives (32,)
    channel_mults: tuple[int, ...] = (1, 2, 2)
    blocks_per_level: int = 1
    attention_resolution: int = 8
    groups: int = 8
    dropout: float = 0.0
    timesteps: int = 1000
    schedule: Literal["linear", "cosine"] = "cosine"
    prediction: Literal["eps", "v"] = "v"
    loss_weighting: Literal["uniform", "min-snr"] = "min-snr"
    min_snr_gamma: float = 5.0
    sampler: str = "dpm++2m"
    sample_steps: int = 20
    eta: float = 0.0
    guidance: float = 1.0
    label_dropout: float = 0.1
    ema_decay: float = 0.999
    conditional: bool = False
    #: runs saved before the samplers and loss weightings: DDIM with 50 steps, the uniform loss
    SAVED_BEFORE = {"sampler": "ddim", "sample_steps": 50, "loss_weighting": "uniform"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.channels, (tuple, list)):  # `--channels 32` parses as a tuple
            if len(self.channels) != 1:
                raise GenlabError(f"a diffusion U-Net takes one width, `channels=C` (levels scale it by "
                                  f"channel_mults), got {self.channels}")
            self.channels = int(self.channels[0])
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        check_at_least(self, 1, "groups")
        check_at_least(self, 0, "attention_resolution")
        if not 0.0 <= self.dropout < 1.0:
            raise GenlabError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.schedule not in SCHEDULES:
            raise GenlabError(f"unknown schedule '{self.schedule}'; choose one of: {', '.join(SCHEDULES)}")
        if self.prediction not in PREDICTIONS:
            raise GenlabError(f"unknown prediction '{self.prediction}'; choose one of: {', '.join(PREDICTIONS)}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise GenlabError(f"unknown loss_weighting '{self.loss_weighting}'; choose one of: "
                              f"{', '.join(LOSS_WEIGHTINGS)}")
        if not self.min_snr_gamma > 0:
            raise GenlabError(f"min_snr_gamma must be positive, got {self.min_snr_gamma}")
        if self.channels < 1 or self.blocks_per_level < 1 or not self.channel_mults or min(self.channel_mults) < 1:
            raise GenlabError("channels, blocks_per_level and every channel_mults entry must be at least 1")
        if self.timesteps < 2:
            raise GenlabError(f"timesteps must be at least 2, got {self.timesteps}")
        check_sampler(self.sampler)
        check_steps(self.sample_steps, self.timesteps)
        check_eta(self.eta)
        if not 0.0 <= self.label_dropout < 1.0:
            raise GenlabError(f"label_dropout must lie in [0, 1), got {self.label_dropout}")
        if self.conditional and not self.num_classes:
            raise GenlabError("a conditional diffusion model needs a labelled dataset (num_classes is unknown)")
        check_guidance(self.guidance, self.conditional, self.label_dropout)
        factor = 2 ** (len(self.channel_mults) - 1)
        _, h, w = require_planar(self, "the diffusion U-Net")
        if h % factor or w % factor:
            raise GenlabError(f"a U-Net with {len(self.channel_mults)} levels needs image sides divisible by "
                              f"{factor}, got {h}x{w}; use fewer channel_mults")

    @property
    def denoised_shape(self) -> tuple[int, ...]:
        """(C, H, W) of what the process noises and the U-Net denoises: the images here (latent
        diffusion: their codes)."""
        return self.image_shape


def check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise GenlabError(f"unknown sampler '{sampler}'; choose one of: {', '.join(SAMPLERS)}")


def check_steps(steps: int, timesteps: int) -> None:
    if not 1 <= steps <= timesteps:
        raise GenlabError(f"the number of sampling steps must lie in 1..{timesteps} (the model's timesteps), "
                          f"got {steps}")


def check_eta(eta: float) -> None:
    if not 0.0 <= eta <= 1.0:
        raise GenlabError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM's noise), got {eta}")


def check_guidance(scale: float, conditional: bool, label_dropout: float) -> None:
    if scale == 1.0:
        return
    if not conditional:
        raise GenlabError("guidance needs a conditional diffusion model (cdiffusion); this one has no labels")
    if label_dropout == 0:
        raise GenlabError("guidance needs a model trained with label_dropout > 0 (it learns no unconditional "
                          "prediction otherwise); set label_dropout, or guidance=1")
    if scale < 0:
        raise GenlabError(f"the guidance scale must be at least 0, got {scale}")


# --------------------------------------------------------------------- the noise process
def noise_schedule(kind: str, timesteps: int) -> torch.Tensor:
    """beta_t for t = 0 .. T-1, float64 (T,)."""
    if kind == "linear":
        scale = 1000 / timesteps  # the 1e-4 .. 0.02 of Ho et al. were chosen for T = 1000
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64).clamp(max=0.999)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]
        # Clipped as in Nichol & Dhariwal: near t = T the ratio would make beta reach 1.
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise GenlabError(f"unknown schedule '{kind}'; choose one of: {', '.join(SCHEDULES)}")


def loss_weights(a: torch.Tensor, s: torch.Tensor, cfg: "DiffusionConfig") -> torch.Tensor | None:
    """Per-image weights (N,) of the squared prediction errors at noise levels (a, s) = (sqrt(abar),
    sqrt(1 - abar)), each (N,); None for ``uniform``. The error of eps is SNR times that of x0, and
    the error of v is (SNR + 1) times it, so ``min-snr``'s weight is min(SNR, gamma) over those."""
    if cfg.loss_weighting == "uniform":
        return None
    snr = (a / s).pow(2)
    return snr.clamp(max=cfg.min_snr_gamma) / (snr if cfg.prediction == "eps" else snr + 1)


def split_prediction(output: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor, s: torch.Tensor,
                     prediction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) from the network's ``output`` at x_t = a x0 + s eps, with a = sqrt(abar_t),
    s = sqrt(1 - abar_t) broadcastable to x_t (a^2 + s^2 = 1)."""
    if prediction == "eps":
        return (x_t - s * output) / a, output
    # v = a eps - s x0  =>  x0 = a x_t - s v,  eps = s x_t + a v
    return a * x_t - s * output, s * x_t + a * output


def velocity(x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """v = a eps - s x0, the target of v-prediction."""
    return a * eps - s * x0


# --------------------------------------------------------------------- the network
def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (N, dim) of integer steps t (N,), as for positions in a Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, groups), channels)


def _zero(module: nn.Module) -> nn.Module:
    # The last layer of a residual branch starts at zero, so every block starts as the identity.
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time (and class) embedding added in between."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = _group_norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = _group_norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, residual."""

    def __init__(self, channels: int, groups: int, head_dim: int = 32):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = _group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(a.transpose(-1, -2).reshape(n, c, h, w))


class DenoisingUNet(nn.Module):
    """The U-Net of diffusion: (x_t (N, C, H, W), t (N,) int [, class index (N,)]) -> prediction (N, C, H, W).

    The class index ``num_classes`` is the "no class" token of classifier-free guidance."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        c, h, _ = cfg.denoised_shape
        ch, g = cfg.channels, cfg.groups
        emb_dim = 4 * ch
        self.base = ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.conditional else None
        self.conv_in = nn.Conv2d(c, ch, 3, padding=1)

        def block(a: int, b: int) -> ResidualBlock:
            return ResidualBlock(a, b, emb_dim, g, cfg.dropout)

        def attention(side: int, width: int) -> nn.Module:
            return SelfAttention(width, g) if side <= cfg.attention_resolution else nn.Identity()

        widths = [ch * m for m in cfg.channel_mults]
        skips, width, side = [ch], ch, h
        self.down = nn.ModuleList()
        for level, out in enumerate(widths):
            for _ in range(cfg.blocks_per_level):
                self.down.append(nn.ModuleList([block(width, out), attention(side, out)]))
                width = out
                skips.append(width)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
                side //= 2
        self.middle = nn.ModuleList([block(width, width), SelfAttention(width, g), block(width, width)])
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            out = widths[level]
            for _ in range(cfg.blocks_per_level + 1):
                self.up.append(nn.ModuleList([block(width + skips.pop(), out), attention(side, out)]))
                width = out
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(width, width, 3, padding=1)))
                side *= 2
        self.out = nn.Sequential(_group_norm(width, g), nn.SiLU(), _zero(nn.Conv2d(width, c, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.base))
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(classes)
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](h, emb))
            else:
                h = layer(h)
            hs.append(h)
        h = self.middle[2](self.middle[1](self.middle[0](h, emb)), emb)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](torch.cat([h, hs.pop()], dim=1), emb))
            else:
                h = layer(h)
        return self.out(h)


# --------------------------------------------------------------------- the model
class Diffusion(GenerativeModel):
    """A denoising diffusion model. Its latent code is the starting noise of DDIM with eta = 0:
    ``decode(z)`` maps z (N, C*H*W) to images deterministically, so interpolating between noises
    (spherically: they lie near the sphere of radius sqrt(C*H*W)) gives a path of images."""

    family = "diffusion"
    config_class = DiffusionConfig
    #: bf16 autocast where the hardware has it: 1.5x the plain fp32 step on CPU, with the FID after
    #: a fixed training within the spread between seeds (benchmarks/throughput.py and
    #: benchmarks/precision.py). Channels-last made this U-Net slower, so it is not used. Batches
    #: of 64 at 2e-3: the diffusion benchmark's (see the config's defaults)
    train_defaults = {"precision": "auto", "batch_size": 64, "lr": 2e-3}
    #: predictions of the clean image are clipped to [-x0_bound, x0_bound]: pixels lie in [-1, 1]
    x0_bound: float | None = 1.0

    def __init__(self, config: DiffusionConfig, name: str | None = None):
        super().__init__(config, name)
        self.net = DenoisingUNet(config)
        self.keep_average("net")
        abar = torch.cumprod(1 - noise_schedule(config.schedule, config.timesteps), 0)
        # Derived from the config, so not saved (persistent=False).
        self.register_buffer("alphas_cumprod", abar.float(), persistent=False)

    def training_note(self, device: torch.device) -> str | None:
        """On a CPU, images of 64 x 64 pixels and more: latent diffusion trains faster (the
        diffusion benchmark's photos64 set)."""
        h, w = self.config.image_shape[-2:]
        if device.type != "cpu" or h * w < 64 * 64:
            return None
        command = "genlab train latent-diffusion" + (" --conditional" if self.config.conditional else "")
        return (f"note: on a CPU, {w}x{h} images train faster as latent diffusion ({command}): "
                "on 64x64 photo patches it reached FID 327 in 30 CPU minutes (400 autoencoder steps) where the default "
                "pixel U-Net reached 588 (docs/diffusion.md)")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(decoder=True, prior=True, labels=self.config.conditional, denoising_sampler=True,
                            latent_space=True, held_out_loss=True)

    # ----------------------------------------------------------------- the common surface
    @property
    def latent_dim(self) -> int:
        return math.prod(self.config.denoised_shape)

    @property
    def timesteps(self) -> int:
        return self.config.timesteps

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotSupported("a diffusion model has no encoder: its code is the starting noise, "
                           "given by a seed or a saved .npy vector")

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] from starting noise z (N, C*H*W), by the config's sampler
        (DDIM with eta = 0 in place of DDPM) and ``sample_steps`` steps: deterministic."""
        self.check_latents(z)
        sampler = "ddim" if self.config.sampler == "ddpm" else self.config.sampler
        return self.generate(z, labels, eta=0.0, sampler=sampler)[0]

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1] by the config's sampler, steps, eta and guidance;
        a conditional model without labels draws classes in turn (0, 1, ..., K-1, 0, ...)."""
        return self.generate(self.prior_noise(n, generator), labels, generator=generator)[0]

    # ----------------------------------------------------------------- the process
    def scale_images(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] to the model's scale, [-1, 1]."""
        return 2 * x - 1

    def coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(abar_t), sqrt(1 - abar_t)) of steps t (N,), each (N, 1, ...) to broadcast over an image."""
        abar = self.alphas_cumprod[t].reshape(-1, *[1] * len(self.config.image_shape))
        return abar.sqrt(), (1 - abar).sqrt()

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A draw of q(x_t | x_0): sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (x0 on the model's scale)."""
        a, s = self.coefficients(t)
        return a * x0 + s * noise

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """Mean squared error (per pixel, on the [-1, 1] scale) of the network's prediction of eps
        or v at a uniformly drawn step; in training, labels are dropped with ``label_dropout``.
        The step, the noise and the dropout are drawn from ``batch``."""
        batch = as_batch(batch, labels)
        x = batch.images
        self.check_images(x)
        x0 = self.scale_images(x)
        n = len(x0)
        t = batch.randint(self.timesteps)
        noise = batch.randn(*x0.shape[1:])
        a, s = self.coefficients(t)
        x_t = a * x0 + s * noise
        classes = self.class_indices(batch.labels, n)
        if classes is not None and self.training and self.config.label_dropout > 0:
            dropped = batch.rand() < self.config.label_dropout
            classes = torch.where(dropped, torch.full_like(classes, self.config.num_classes), classes)
        target = noise if self.config.prediction == "eps" else velocity(x0, noise, a, s)
        error = (self.network("net")(x_t, t, classes) - target).pow(2)
        weight = loss_weights(a.flatten(), s.flatten(), self.config)
        return {"loss": error.mean() if weight is None else (weight * error.flatten(1).mean(1)).mean()}

    # ----------------------------------------------------------------- sampling
    def predict(self, x_t: torch.Tensor, t: int, classes: torch.Tensor | None, guidance: float,
                averaged: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0, eps) predicted at x_t (N, C, H, W) and step t, with x0 clipped to [-1, 1] and eps
        made consistent with it; with ``guidance`` != 1 the conditional and unconditional
        predictions are mixed (classifier-free guidance). ``averaged`` None: the averaged network
        in eval mode (when kept), the live one in train mode."""
        net = self.network("net") if averaged is None else (self.ema["net"] if averaged and self.ema else self.net)
        n = len(x_t)
        steps = torch.full((n,), t, device=x_t.device, dtype=torch.long)
        if classes is not None and guidance != 1.0:
            null = torch.full_like(classes, self.config.num_classes)
            both = net(torch.cat([x_t, x_t]), torch.cat([steps, steps]), torch.cat([classes, null]))
            cond, uncond = both[:n], both[n:]
            output = uncond + guidance * (cond - uncond)
        else:
            output = net(x_t, steps, classes)
        a, s = self.coefficients(steps)
        x0, _ = split_prediction(output, x_t, a, s, self.config.prediction)
        if self.x0_bound is not None:
            x0 = x0.clamp(-self.x0_bound, self.x0_bound)
        return x0, (x_t - a * x0) / s

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None,
                 eta: float | None = None, guidance: float | None = None, sampler: str | None = None,
                 generator: torch.Generator | None = None, frames: int = 0,
                 averaged: bool | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Denoise starting noise (N, C*H*W) or (N, C, H, W) into images (N, C, H, W) in [0, 1].

        Args:
            labels: class indices (N,) or one class for all, for a conditional model.
            steps: steps (network evaluations), 1..T (default ``sample_steps``); ``ddpm`` always
                takes all T.
            eta: DDIM noise in [0, 1] (default the config's); the extra noise is drawn on the CPU
                from ``generator``, so a seed gives the same images on every device. The other
                samplers are deterministic and refuse an eta above 0.
            guidance: classifier-free guidance scale (default the config's).
            sampler: one of :data:`SAMPLERS` (default the config's): ``ddim``, ``ddpm`` (ancestral,
                all T steps), ``dpm++2m`` or ``dpm++3m`` (DPM-Solver++ of 2nd or 3rd order).
            frames: also return about this many intermediate x_t (N, C, H, W) in [0, 1], evenly
                spaced, the first being the noise and the last the images; 0 returns none.
            averaged: use the moving average of the weights (when kept); None: in eval mode.
        Returns:
            (images, frames).
        """
        cfg = self.config
        sampler = cfg.sampler if sampler is None else sampler
        check_sampler(sampler)
        steps = cfg.timesteps if sampler == "ddpm" else (cfg.sample_steps if steps is None else int(steps))
        if sampler in ORDERS and eta:
            raise GenlabError(f"`eta` applies to the ddim sampler; {sampler} is deterministic (leave `eta` at 0, "
                              "or choose `sampler=ddim`)")
        eta = cfg.eta if eta is None else float(eta)
        guidance = cfg.guidance if guidance is None else float(guidance)
        check_steps(steps, cfg.timesteps)
        check_eta(eta)
        check_guidance(guidance, self.conditional, cfg.label_dropout)
        x = noise.reshape(-1, *cfg.denoised_shape).to(self.device, torch.float32)
        classes = self.class_indices(labels, len(x), in_turn=True)
        if sampler in ORDERS:
            schedule = log_snr_steps(self.alphas_cumprod, steps)
        else:  # evenly spaced steps from T-1 down to 0 (all of them for steps = T; T-1 alone for 1 step)
            schedule = torch.linspace(cfg.timesteps - 1, 0, steps, dtype=torch.float64).round().long().tolist()
        keep = set(torch.linspace(0, steps, max(frames, 2)).round().long().tolist()) if frames else set()
        shown = [self._to_images(x)] if 0 in keep else []
        history = []  # (abar, x0) of the latest steps, for DPM-Solver++
        for i, t in enumerate(schedule):
            t_prev = schedule[i + 1] if i + 1 < len(schedule) else -1
            x0, eps = self.predict(x, t, classes, guidance, averaged)
            if sampler == "ddpm":
                x = self._ddpm_step(x, x0, t, generator)
            elif sampler == "ddim":
                x = self._ddim_step(x0, eps, t, t_prev, eta, generator)
            else:
                history = history[-2:] + [(self._abar(t).item(), x0)]
                x = dpm_solver_step(x, history, self._abar(t_prev).item(), step_order(ORDERS[sampler], i, steps))
            if i + 1 in keep:
                shown.append(self._to_images(x))
        return self._to_images(x), shown

    def _abar(self, t: int) -> torch.Tensor:
        return self.alphas_cumprod[t] if t >= 0 else torch.ones((), device=self.device)

    def _noise_like(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator).to(x.device)

    def _ddim_step(self, x0, eps, t: int, t_prev: int, eta: float, generator) -> torch.Tensor:
        """x_{t_prev} = sqrt(abar') x0 + sqrt(1 - abar' - sigma^2) eps + sigma z (Song et al., eq. 12)."""
        abar, abar_prev = self._abar(t), self._abar(t_prev)
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).clamp(min=0).sqrt()
        x = abar_prev.sqrt() * x0 + (1 - abar_prev - sigma ** 2).clamp(min=0).sqrt() * eps
        if eta > 0 and t_prev >= 0:
            x = x + sigma * self._noise_like(x, generator)
        return x

    def _ddpm_step(self, x_t, x0, t: int, generator) -> torch.Tensor:
        """A draw of the posterior q(x_{t-1} | x_t, x0): mean
        sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
        variance beta_t (1 - abar_{t-1}) / (1 - abar_t); no noise on the last step."""
        abar, abar_prev = self._abar(t), self._abar(t - 1)
        alpha = abar / abar_prev
        beta = 1 - alpha
        mean = (abar_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - abar_prev) * x_t) / (1 - abar)
        if t == 0:
            return mean
        variance = beta * (1 - abar_prev) / (1 - abar)
        return mean + variance.sqrt() * self._noise_like(x_t, generator)

    @staticmethod
    def _to_images(x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2).clamp(0, 1)
