"""Latent diffusion (Rombach et al. 2022): diffusion on the codes of an autoencoder, not on pixels.

One run trains two networks, one after the other:

1. **The autoencoder** (the first ``autoencoder_steps`` steps): a convolutional VAE whose code is
   a feature map, (``code_channels``, H / f, W / f) with f = 2 ** (levels - 1): 4 by default, so
   a 64 x 64 colour image becomes a 4 x 16 x 16 code, 12 times fewer numbers. Its loss is the
   squared error per image (a Gaussian likelihood) plus ``kl_weight`` times the KL divergence of
   the posterior from N(0, I), in nats per image. The weight is tiny (1e-6, Stable Diffusion's):
   the KL keeps the posterior from collapsing to a point and the codes from drifting to any scale;
   the codes are not meant to follow N(0, I).
2. **The denoiser** (the steps after): the diffusion U-Net and process of :mod:`.model`, with all
   their settings (schedule, prediction, samplers, guidance, moving average), on the posterior
   means of the frozen encoder, multiplied by ``latent_scale``. That factor is measured at the
   first step of the second stage, as 1 / the standard deviation of that batch's codes (Stable
   Diffusion's scale factor, measured the same way on its first batch), so the denoiser sees codes
   of unit variance whatever scale the autoencoder learned. It is a buffer, saved with the weights.

Sampling denoises a code from noise with any sampler and decodes it: images =
decoder(code / latent_scale). The stage is the step's (``update_order``), so a checkpoint, which
holds the step, the weights and ``latent_scale``, resumes exactly on either side of the boundary.

``autoencoder=RUN`` takes the autoencoder of an earlier latent-diffusion run instead of training
one: its settings are copied when the config is made and its weights when the model is built,
and it stays frozen (the run records the folder as ``autoencoder_from``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ...config import check_at_least
from ...data.batch import Batch, as_batch
from ...errors import GenlabError
from ...metrics.image_quality import batch_psnr
from ...models.base import OptimizerGroup
from ...models.distributions import kl_standard_normal
from ...runs import read_config
from .model import Diffusion, DiffusionConfig, _group_norm, _zero

#: the settings of the autoencoder, which ``autoencoder=RUN`` copies from that run
AUTOENCODER_SETTINGS = ("autoencoder_channels", "code_channels", "kl_weight")
#: groups of the autoencoder's group norms (fewer where a width has fewer channels), fixed so that
#: a run's autoencoder computes the same in another run whatever its U-Net's ``groups``
AUTOENCODER_GROUPS = 8


@dataclass
class LatentDiffusionConfig(DiffusionConfig):
    """The U-Net settings of :class:`DiffusionConfig` shape the denoiser of the codes.

    Attributes (beyond :class:`DiffusionConfig`):
        autoencoder_channels: widths of the autoencoder's levels; every level but the last halves
            H and W, so the code is f = 2 ** (levels - 1) times smaller a side (4 by default).
        code_channels: channels of the code.
        kl_weight: weight of the KL term (nats per image) beside the squared error per image.
        autoencoder_steps: training steps of the autoencoder, the first stage; the run's later
            steps train the denoiser, so a run needs more steps than this (epochs x images /
            batch_size).
        autoencoder: a latent-diffusion run folder whose trained autoencoder to use as it is
            (frozen; the first stage is skipped); empty: train one first.
        autoencoder_from: the folder the autoencoder came from (recorded, never read again).
    """

    autoencoder_channels: tuple[int, ...] = (32, 64, 64)
    code_channels: int = 4
    kl_weight: float = 1e-6
    autoencoder_steps: int = 1000
    autoencoder: str = ""
    autoencoder_from: str = ""

    def __post_init__(self) -> None:
        self.autoencoder_channels = tuple(int(c) for c in self.autoencoder_channels)
        self._given: Path | None = None
        if self.autoencoder:
            self._take_settings_of(Path(self.autoencoder).expanduser())
        check_at_least(self, 1, "autoencoder_channels", "code_channels")
        check_at_least(self, 0, "kl_weight", "autoencoder_steps")
        sides = tuple(self.image_shape)[1:]
        factor = self.code_factor * 2 ** (len(self.channel_mults) - 1)
        if len(sides) == 2 and any(side % factor for side in sides):
            raise GenlabError(f"latent diffusion needs image sides divisible by {factor} (the autoencoder's "
                              f"{self.code_factor}, times {factor // self.code_factor} for the U-Net's levels on the "
                              f"code), got {sides[0]}x{sides[1]}; use fewer autoencoder_channels or channel_mults, "
                              "or resize the images")
        super().__post_init__()

    def _take_settings_of(self, folder: Path) -> None:
        """The autoencoder's settings from the run in ``folder``; its weights are read by the model."""
        saved = read_config(folder)
        settings = saved.get("model", {})
        if saved.get("name") != "latent-diffusion":
            raise GenlabError(f"`autoencoder={folder}` holds a {saved.get('name')} model; give the folder of a "
                              "latent-diffusion run, whose autoencoder is used as it is")
        channels = (settings.get("image_shape") or [None])[0]
        if channels != tuple(self.image_shape)[0]:
            raise GenlabError(f"the autoencoder of {folder} takes {channels}-channel images and these have "
                              f"{tuple(self.image_shape)[0]}; give a run trained on images like these")
        for name in AUTOENCODER_SETTINGS:
            value = settings.get(name, getattr(self, name))
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self._given, self.autoencoder_from = folder, str(folder.resolve())
        self.autoencoder, self.autoencoder_steps = "", 0

    @property
    def code_factor(self) -> int:
        """f: how many times smaller a side of the code is than a side of the image."""
        return 2 ** (len(self.autoencoder_channels) - 1)

    @property
    def denoised_shape(self) -> tuple[int, int, int]:
        """(code_channels, H / f, W / f): the code the process noises and the U-Net denoises."""
        _, h, w = self.image_shape
        return self.code_channels, h // self.code_factor, w // self.code_factor


class ConvBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, residual: the U-Net's block without the time embedding."""

    def __init__(self, in_ch: int, out_ch: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(
            _group_norm(in_ch, groups), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1),
            _group_norm(out_ch, groups), nn.SiLU(), _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1)))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class KLAutoencoder(nn.Module):
    """Images (N, C, H, W) in [0, 1] <-> codes (N, code_channels, H / f, W / f), the layout of
    Stable Diffusion's autoencoder in small: a block per level, stride-2 convolutions down, nearest
    upsampling and a convolution up, one more block at the code's resolution on each side."""

    def __init__(self, cfg: LatentDiffusionConfig):
        super().__init__()
        c, widths, g = cfg.image_shape[0], cfg.autoencoder_channels, AUTOENCODER_GROUPS
        layers: list[nn.Module] = [nn.Conv2d(c, widths[0], 3, padding=1)]
        for i, width in enumerate(widths):
            layers.append(ConvBlock(widths[max(i - 1, 0)], width, g))
            if i < len(widths) - 1:
                layers.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        layers += [ConvBlock(widths[-1], widths[-1], g), _group_norm(widths[-1], g), nn.SiLU(),
                   nn.Conv2d(widths[-1], 2 * cfg.code_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*layers)
        layers = [nn.Conv2d(cfg.code_channels, widths[-1], 3, padding=1), ConvBlock(widths[-1], widths[-1], g)]
        for i in reversed(range(len(widths))):
            layers.append(ConvBlock(widths[min(i + 1, len(widths) - 1)], widths[i], g))
            if i > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(widths[i], widths[i], 3, padding=1)]
        layers += [_group_norm(widths[0], g), nn.SiLU(), nn.Conv2d(widths[0], c, 3, padding=1)]
        self.decoder = nn.Sequential(*layers)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log variance) of q(code | x), each (N, code_channels, H / f, W / f)."""
        mean, logvar = self.encoder(2 * x - 1).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)  # Stable Diffusion's bounds: exp stays finite

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] of codes."""
        return torch.sigmoid(self.decoder(code))


class LatentDiffusion(Diffusion):
    """Diffusion on the codes of its own KL autoencoder; the module's docstring has the whole story.
    The latent code (``decode``, interpolation, the explorer's map) is the starting noise of the
    code, (code_channels * H / f * W / f) numbers."""

    config_class = LatentDiffusionConfig
    #: the codes, of unit variance, are not bounded, so the predictions are not clipped (nor are
    #: they in Stable Diffusion)
    x0_bound = None
    train_defaults = {"precision": "auto", "batch_size": 32}

    def __init__(self, config: LatentDiffusionConfig, name: str | None = None):
        super().__init__(config, name)
        self.autoencoder = KLAutoencoder(config)
        self.register_buffer("latent_scale", torch.ones(()))
        self._stage = "denoiser"
        self._measured_at: int | None = None
        if config.autoencoder_steps == 0:   # a given autoencoder (or none to train): frozen
            self.autoencoder.requires_grad_(False)
        if config._given is not None and not self.latent_scale.is_meta:
            self._load_autoencoder(config._given)

    def _load_autoencoder(self, folder: Path) -> None:
        from ...registry import load_model   # the registry imports the families

        with torch.device("cpu"):
            given = load_model(folder)
        self.autoencoder.load_state_dict(given.autoencoder.state_dict())

    def training_note(self, device: torch.device) -> str | None:
        """None: pixel diffusion's pointer to latent diffusion is not for latent diffusion itself."""
        return None

    # ----------------------------------------------------------------- codes
    def check_images(self, x: torch.Tensor) -> None:
        """Images of the data's channels, of any size the networks take (both are convolutional,
        so the 256 x 256 test photos of ``photos`` are measured as they are)."""
        cfg = self.config
        c, factor = cfg.image_shape[0], cfg.code_factor * 2 ** (len(cfg.channel_mults) - 1)
        if x.ndim != 4 or x.shape[1] != c or x.shape[-2] % factor or x.shape[-1] % factor:
            raise GenlabError(f"images of shape {tuple(x.shape[1:])} given to a latent-diffusion model of {c}-channel "
                              f"images with sides divisible by {factor}; train a model on this dataset")

    @torch.no_grad()
    def scale_images(self, x: torch.Tensor) -> torch.Tensor:
        """The codes the denoiser learns: posterior means of images in [0, 1], times ``latent_scale``."""
        return self.autoencoder.posterior(x)[0] * self.latent_scale

    def _to_images(self, code: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(code / self.latent_scale)

    @torch.no_grad()
    def measure_scale(self, images: torch.Tensor) -> float:
        """Set ``latent_scale`` to 1 / the standard deviation of the codes of ``images`` (of every
        process's share, in data-parallel training) and return it."""
        codes = self.autoencoder.posterior(images)[0].double()
        moments = torch.stack([torch.tensor(codes.numel(), dtype=torch.float64, device=codes.device),
                               codes.sum(), codes.pow(2).sum()])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(moments)
        n, total, squares = moments.tolist()
        variance = (squares - total * total / n) / max(n - 1, 1)
        self.latent_scale.fill_(1 / math.sqrt(max(variance, 1e-12)))
        return float(self.latent_scale)

    # ----------------------------------------------------------------- training
    def autoencoder_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Batch means per image: ``recon`` (squared error, summed over pixels), ``kl`` (nats) and
        ``autoencoder_loss`` = recon + kl_weight * kl; the code is drawn from the posterior with the
        batch's draws."""
        x = batch.images
        self.check_images(x)
        mean, logvar = self.autoencoder.posterior(x)
        code = mean + (0.5 * logvar).exp() * batch.randn(*mean.shape[1:])
        recon = (self.autoencoder.decode(code) - x).pow(2).flatten(1).sum(1).mean()
        kl = kl_standard_normal(mean.flatten(1), logvar.flatten(1)).mean()
        return {"autoencoder_loss": recon + self.config.kl_weight * kl, "recon": recon, "kl": kl}

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """Held out: the denoiser's ``loss`` (as pixel diffusion's, on the scaled codes) and the
        autoencoder's terms (:meth:`autoencoder_terms`)."""
        batch = as_batch(batch, labels)
        return {**self.autoencoder_terms(batch), **super().loss(batch)}

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        groups = {"denoiser": OptimizerGroup(list(self.net.parameters()))}
        if self.config.autoencoder_steps:
            groups["autoencoder"] = OptimizerGroup(list(self.autoencoder.parameters()))
        return groups

    def update_order(self, step: int) -> tuple[str, ...]:
        return ("autoencoder",) if step < self.config.autoencoder_steps else ("denoiser",)

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage 1: the autoencoder's loss (logged as ``loss``, ``recon``, ``kl``). Stage 2: the
        denoiser's, after measuring ``latent_scale`` on the first batch (with gradient
        accumulation, its first micro-batch)."""
        self._stage = name
        if name == "autoencoder":
            terms = self.autoencoder_terms(batch)
            loss = terms.pop("autoencoder_loss")
            return loss, {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
        if step == self.config.autoencoder_steps and self._measured_at != step:
            self.measure_scale(batch.images)
            self._measured_at = step
        terms = super().loss(batch, step=step)   # the denoiser's terms alone
        return terms["loss"], terms

    def update_average(self) -> None:
        # The denoiser does not move in stage 1, so its average (and its warm-up) waits for stage 2.
        if self._stage != "autoencoder":
            super().update_average()


@torch.no_grad()
def autoencoder_quality(model: Diffusion, data, seed: int = 0, data_dir=None) -> dict[str, float]:
    """``genlab evaluate``'s figure of a latent-diffusion run: the mean PSNR (dB) of its autoencoder's
    reconstructions of ``data`` (from the posterior means), a ceiling on its samples' detail;
    nothing for pixel diffusion."""
    if not isinstance(model, LatentDiffusion):
        return {}
    model.eval()
    psnr = [batch_psnr(model.autoencoder.decode(model.autoencoder.posterior(b.images)[0]), b.images)
            for b in data.batches(64, model.device)]
    return {"autoencoder_psnr_db": float(torch.cat(psnr).mean())}
