"""Image-to-image translation: denoising, super-resolution, colorization and paired translation
(pix2pix) (the ``image2image`` family).

A model of this family maps a condition image (a noisy image, a small one, a grey one, or the
paired source image) to an image of the training data. The first three tasks learn from clean
images alone: :meth:`Image2Image.degrade` makes the condition on the fly with the batch's random
draws, so every image gets the same corruption in one process or several, and in a resumed run.
pix2pix learns from pairs: the batch's ``condition`` (a dataset's ``conditions``, such as the grey
digit of each ``digits-m`` blend) is the input and the image the target.

Tasks (``task``):

- ``denoise``: the condition is the clean image with ``noise`` (``gaussian`` of standard deviation
  ``noise_level``, clipped to [0, 1]; ``salt-pepper``, a ``noise_level`` fraction of the pixels set
  to 0 or 1; ``masking``, a ``noise_level`` fraction set to 0). Network: a small U-Net (``arch``
  ``unet``): two 3x3 convolutions per level, max-pooling down, the ``upsample`` layer up, skip
  connections by concatenation; ``channels`` gives one width per level, so (32, 64, 128) halves the
  image twice. Sides that are not a multiple of 2^levels are padded (replicating the border) and
  the output cropped back; sides below 2^levels are refused.
- ``superres``: the condition is the clean image made ``scale`` (2 or 4) times smaller by area
  averaging (``downsample`` ``area``) or antialiased bicubic resampling (``bicubic``). Network
  (``arch`` ``espcn``, after Shi et al. 2016): convolutions at the low resolution (a 5x5 one, then
  3x3 ones, widths ``channels``), then one (x2) or two (x4) ``upsample`` layers (``pixel-shuffle`` by
  default, as in ESPCN; ``transposed`` or ``resize-conv`` too). ``arch`` ``unet`` instead runs the
  U-Net on the bicubic enlargement (pre-upsampling, as SRCNN does).
- ``colorize``: the condition is the grey image (1 channel) of the colour image: the grey level of
  the same luminance in ``color_space`` (``lab``, the default: L of CIE Lab; ``yuv``: Y), made
  without random draws. The U-Net maps it to the two chrominance channels (a and b divided by 100;
  U and V divided by their largest magnitude, so about [-1, 1]); the output is the colour of the
  given luminance and the predicted chrominance, back in sRGB, with each out-of-gamut pixel's
  chrominance shrunk until it fits (so the luminance is kept exactly, where clipping RGB would
  change it). The loss is taken on the chrominance. Conversions: :mod:`genlab.data.colour`
  (scikit-image's matrices, in torch). Colour data only: a 1-channel dataset is refused.
- ``pix2pix`` (Isola et al. 2017): the condition is the dataset's paired source image (any channel
  count, the image's size), the U-Net maps it to the target, and the loss is L1 plus
  ``adv_weight`` (0.01, the paper's 1 : 100) times an adversarial term. The baseline is the source
  itself, brought to the target's channels (grey repeated to RGB; RGB to its mean).

The adversarial term (``adv_weight`` > 0; any task, pix2pix by default) adds a PatchGAN
discriminator D (:class:`PatchDiscriminator`) that scores overlapping patches of the pair
(condition, image), the condition enlarged to the image's size for superres: real pairs high,
the model's outputs low, with the non-saturating loss; the model minimises ``loss`` +
``adv_weight`` * softplus(-D(condition, output)), averaged over the patches.

All predict a residual (``residual``, on by default): the output is the trivial baseline (the
noisy input itself; the bicubic enlargement of the small input) plus the network's correction,
the standard trick of DnCNN and VDSR; colorize's baseline is the grey image (chrominance 0), so it
predicts the chrominance itself. The network's last layer starts at zero, so a fresh model
*is* the baseline and training can only move away from it as far as the loss rewards. Both
networks are fully convolutional: any image size the network can take works, not only the
training size.

The loss (``loss``) is the mean squared (``mse``, the default) or absolute (``l1``) error per pixel
of the output against the clean image, averaged over the images; ``psnr`` and ``baseline_psnr``
(per image, in dB, averaged) are logged beside it. L1 has a trap here: against salt-and-pepper
noise, a model that starts as the identity stays there (0.0 dB gain after 3 epochs on digits28),
because most pixels are already right and L1 charges any change to them at full slope from the
first step, while MSE's charge starts at zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...config import check_at_least
from . import colour
from ...data.batch import Batch, as_batch
from ...data.transforms import corrupt
from ...errors import GenlabError
from ...models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported, OptimizerGroup, require_planar
from ...nn.blocks import ACTIVATIONS, UPSAMPLERS, upsampler
from ...nn.adversarial import discriminator_loss, frozen, generator_loss
from ...nn.patchgan import PatchDiscriminator, patch_layers
from ...metrics.image_quality import MAX_PSNR_DB, batch_psnr
from ...nn.unet import UNet, adapt_channels, on_padded, pad_to_multiple, zero_last_layer

TASKS = ("denoise", "superres", "colorize", "pix2pix")
DENOISE_NOISES = ("gaussian", "salt-pepper", "masking")
ARCHS = ("unet", "espcn")
DOWNSAMPLERS = ("area", "bicubic")
LOSSES = ("l1", "mse")
#: PSNR of an exact match: the squared error is floored at 1e-10, so the figure stays finite
@dataclass
class Image2ImageConfig(ModelConfig):
    """Attributes (``None``: the task's default):
        task: ``denoise``, ``superres``, ``colorize`` or ``pix2pix``.
        condition_shape: (C', H, W) of the paired source images (pix2pix; from the data).
        noise, noise_level: the denoise task's corruption: ``gaussian`` (level = standard
            deviation), ``salt-pepper`` or ``masking`` (level = fraction of the pixels).
        scale: the superres task's factor, 2 or 4; the image sides must be divisible by it.
        downsample: how the superres input is made: ``area`` (the mean of each scale x scale
            block) or ``bicubic`` (antialiased).
        color_space: the colorize task's space: ``lab`` (default; L in, a and b predicted) or
            ``yuv`` (Y in, U and V predicted).
        arch: ``unet`` (default for denoise and colorize) or ``espcn`` (default for superres;
            superres only).
        channels: widths: one per U-Net level (default (32, 64, 128)), or of the ESPCN's
            low-resolution convolutions (default (64, 32)).
        upsample: the layer that doubles the resolution: ``transposed``, ``resize-conv`` or
            ``pixel-shuffle`` (defaults: ``transposed`` in the U-Net, ``pixel-shuffle`` in ESPCN).
        activation: after each hidden convolution (default relu).
        residual: predict a correction of the trivial baseline (default true).
        loss: ``mse`` (default: what PSNR measures) or ``l1`` (pix2pix's default), per pixel, mean
            per image.
        adv_weight: weight of the adversarial term (default 0; pix2pix 0.01).
        d_channels: width of D's first layer; each stride-2 layer doubles it (at most 8 times).
        d_layers: D's stride-2 layers (default: 3, the 70x70 PatchGAN, or fewer on images under
            64 pixels a side, so that D scores patches, not the whole image).
    """

    task: str = "denoise"
    noise: str = "gaussian"
    noise_level: float = 0.3
    scale: int = 2
    downsample: str = "area"
    color_space: str = "lab"
    arch: str | None = None
    channels: tuple[int, ...] | None = None
    upsample: str | None = None
    activation: str = "relu"
    residual: bool = True
    loss: str | None = None
    condition_shape: tuple[int, ...] | None = None
    adv_weight: float | None = None
    d_channels: int = 64
    d_layers: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task not in TASKS:
            raise GenlabError(f"unknown task '{self.task}'; choose one of: {', '.join(TASKS)}")
        c, h, w = require_planar(self, f"the {self.task} task")
        self._check_pairs(h, w)
        if self.loss is None:
            self.loss = "l1" if self.task == "pix2pix" else "mse"
        if self.adv_weight is None:
            self.adv_weight = 0.01 if self.task == "pix2pix" else 0.0
        check_at_least(self, 0, "adv_weight")
        check_at_least(self, 1, "d_channels")
        if self.adv_weight > 0:
            if min(h, w) < 8:
                raise GenlabError(f"the adversarial term's PatchGAN needs images of at least 8x8, got {h}x{w}; "
                                  "set `adv_weight=0`")
            if self.d_layers is not None:
                check_at_least(self, 1, "d_layers")
            self.d_layers = patch_layers(h, w, self.d_layers)
        if self.task == "colorize" and c != 3:
            raise GenlabError(f"colorize needs colour images; digits-m or photos, not a {c}-channel dataset")
        if self.arch is None:
            self.arch = "espcn" if self.task == "superres" else "unet"
        if self.arch not in ARCHS:
            raise GenlabError(f"unknown arch '{self.arch}' for the {self.task} task; choose one of: "
                              f"{', '.join(ARCHS if self.task == 'superres' else ARCHS[:1])}")
        if self.arch == "espcn" and self.task != "superres":
            raise GenlabError(f"`arch` espcn upsamples, so it serves the superres task; {self.task} takes `arch=unet`")
        if self.channels is None:
            self.channels = (32, 64, 128) if self.arch == "unet" else (64, 32)
        self.channels = tuple(self.channels)
        if not self.channels:
            raise GenlabError("`channels` needs at least one width")
        check_at_least(self, 1, "channels")
        if self.upsample is None:
            self.upsample = "transposed" if self.arch == "unet" else "pixel-shuffle"
        if self.upsample not in UPSAMPLERS:
            raise GenlabError(f"unknown upsample '{self.upsample}'; choose one of: {', '.join(UPSAMPLERS)}")
        if self.activation not in ACTIVATIONS:
            raise GenlabError(f"unknown activation '{self.activation}'; choose one of: {', '.join(ACTIVATIONS)}")
        if self.loss not in LOSSES:
            raise GenlabError(f"unknown loss '{self.loss}'; choose one of: {', '.join(LOSSES)}")
        if self.task == "colorize":
            if self.color_space not in colour.SPACES:
                raise GenlabError(f"unknown color_space '{self.color_space}'; choose one of: "
                                  f"{', '.join(colour.SPACES)}")
        elif self.task == "denoise":
            if self.noise not in DENOISE_NOISES:
                raise GenlabError(f"the denoise task needs `noise` to be one of: {', '.join(DENOISE_NOISES)}; "
                                  f"got '{self.noise}'")
            if not self.noise_level > 0:
                raise GenlabError(f"`noise_level` must be above 0 for the denoise task, got {self.noise_level}")
            if self.noise != "gaussian" and self.noise_level > 1:
                raise GenlabError(f"{self.noise} noise replaces a fraction of the pixels: `noise_level` must lie in "
                                  f"(0, 1], got {self.noise_level}")
        else:
            if self.scale not in (2, 4):
                raise GenlabError(f"`scale` must be 2 or 4, got {self.scale}")
            if h % self.scale or w % self.scale:
                raise GenlabError(f"`scale` {self.scale} needs image sides divisible by {self.scale}; this data is "
                                  f"{h}x{w}")
            if self.downsample not in DOWNSAMPLERS:
                raise GenlabError(f"unknown downsample '{self.downsample}'; choose one of: {', '.join(DOWNSAMPLERS)}")
        if self.arch == "unet" and min(h, w) < 2 ** self.levels:
            raise GenlabError(f"`channels` {list(self.channels)} make a U-Net that halves the image {self.levels} "
                              f"times, which needs sides of at least {2 ** self.levels}; this data is {h}x{w}")

    def _check_pairs(self, h: int, w: int) -> None:
        """pix2pix needs paired source images of the target's size."""
        if self.task != "pix2pix":
            return
        if self.condition_shape is None:
            raise GenlabError("pix2pix learns from pairs: train it on a dataset with paired condition images "
                              "(digits-m, mnist-m: the grey digit of each blend)")
        self.condition_shape = tuple(self.condition_shape)
        if len(self.condition_shape) != 3 or tuple(self.condition_shape[1:]) != (h, w):
            raise GenlabError(f"pix2pix maps a source image to a target of the same size; the pairs are "
                              f"{tuple(self.condition_shape)} and {(self.image_shape[0], h, w)}")

    @property
    def levels(self) -> int:
        """How many times the U-Net halves the image (0 for ESPCN)."""
        return len(self.channels) - 1 if self.arch == "unet" else 0


class ESPCN(nn.Module):
    """(N, C, h, w) -> (N, C, scale h, scale w): convolutions at the low resolution (5x5, then
    3x3), then ``log2(scale)`` upsampling layers, the last one to C channels."""

    def __init__(self, channels: int, widths: tuple[int, ...], scale: int, upsample: str, activation: str):
        super().__init__()
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 5, padding=2), act()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), act()]
        for _ in range(int(math.log2(scale)) - 1):
            layers += [upsampler(upsample, widths[-1], widths[-1]), act()]
        layers.append(upsampler(upsample, widths[-1], channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Image2Image(GenerativeModel):
    """Denoising, super-resolution, colorization or paired translation of images (C, H, W); see
    the module's description."""

    family = "image-to-image"
    config_class = Image2ImageConfig
    train_defaults = {"epochs": 20}

    def __init__(self, config: Image2ImageConfig, name: str | None = None):
        super().__init__(config, name)
        c = config.image_shape[0]
        if config.task == "colorize":  # grey in, two chrominance channels out
            self.net = UNet(1, 2, config.channels, config.upsample, config.activation)
        elif config.task == "pix2pix":
            self.net = UNet(config.condition_shape[0], c, config.channels, config.upsample, config.activation)
        elif config.arch == "unet":
            self.net = UNet(c, c, config.channels, config.upsample, config.activation)
        else:
            self.net = ESPCN(c, config.channels, config.scale, config.upsample, config.activation)
        if config.residual:
            zero_last_layer(self.net)
        # Built only when used, so a model without the term has the same weights and draws.
        self.discriminator = (PatchDiscriminator(self.condition_channels + c, config.d_channels, config.d_layers)
                              if config.adv_weight > 0 else None)
        self.keep_average("net")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(condition_image=True)

    @property
    def latent_dim(self) -> int:
        raise NotSupported(f"a {self.name} model has no latent space: it maps images to images "
                           "(translate(x); genlab translate RUN IMAGES)")

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotSupported(f"a {self.name} model has no encoder: it maps images to images "
                           "(translate(x); genlab translate RUN IMAGES)")

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def scale(self) -> int:
        """How many times larger the output is than the condition image (1 for denoise and colorize)."""
        return self.config.scale if self.config.task == "superres" else 1

    @property
    def paired(self) -> bool:
        """True when the condition images come from the data (pix2pix), not from :meth:`degrade`."""
        return self.task == "pix2pix"

    @property
    def condition_channels(self) -> int:
        """Channels of a condition image: 1 (grey) for colorize, the sources' for pix2pix, else the data's."""
        if self.paired:
            return self.config.condition_shape[0]
        return 1 if self.task == "colorize" else self.config.image_shape[0]

    @property
    def baseline_name(self) -> str:
        """What the trivial baseline is, in words."""
        if self.task == "colorize":
            return f"the grey image (chrominance 0, {self.config.color_space})"
        if self.paired:
            return "the source image"
        return "the noisy input" if self.task == "denoise" else f"bicubic upscaling x{self.scale}"

    @property
    def min_condition_side(self) -> int:
        """The smallest side of a condition image the network takes."""
        return max(1, -(-2 ** self.config.levels // self.scale))

    def check_images(self, x: torch.Tensor) -> None:
        """Clean images the networks take: the data's channels, any size the network can take
        (both networks are fully convolutional, so a held-out split of larger images, such as
        the 256x256 test photos of ``photos``, works)."""
        c = self.config.image_shape[0]
        if x.ndim != 4 or x.shape[1] != c:
            raise GenlabError(f"images of shape {tuple(x.shape[1:])} given to a {self.task} model built for "
                              f"{c}-channel images {tuple(self.config.image_shape)}; train a model on this dataset")
        h, w = x.shape[-2:]
        if self.scale > 1 and (h % self.scale or w % self.scale):
            raise GenlabError(f"`scale` {self.scale} needs image sides divisible by {self.scale}, got {h}x{w}")
        if min(h, w) < 2 ** self.config.levels:
            raise GenlabError(f"{h}x{w} images are too small for this {self.task} model: its U-Net halves the image "
                              f"{self.config.levels} times, so it needs sides of at least {2 ** self.config.levels}")

    # ----------------------------------------------------------------- the task
    def degrade(self, images: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
        """The condition images of clean ``images`` (N, C, H, W): noisy ones (random draws from
        ``draws``, a :class:`~genlab.data.Batch`, or ``generator``), ``scale`` times smaller ones,
        or grey ones (N, 1, H, W; no draws). pix2pix has no such input: its pairs come from the data."""
        cfg = self.config
        if self.paired:
            raise NotSupported("pix2pix takes its input from paired data (the batch's condition images), "
                               "not from the target image")
        if cfg.task == "colorize":
            if images.shape[1] != 3:
                raise GenlabError(f"colorize makes its grey input from colour images (3 channels), got "
                                  f"{images.shape[1]} channel(s)")
            return colour.grey(images, cfg.color_space)
        if cfg.task == "denoise":
            return corrupt(images, cfg.noise, cfg.noise_level, generator=generator, draws=draws)
        h, w = images.shape[-2:]
        if h % cfg.scale or w % cfg.scale:
            raise GenlabError(f"`scale` {cfg.scale} needs image sides divisible by {cfg.scale}, got {h}x{w}")
        if cfg.downsample == "area":
            return F.avg_pool2d(images, cfg.scale)
        small = F.interpolate(images, size=(h // cfg.scale, w // cfg.scale), mode="bicubic", align_corners=False,
                              antialias=True)
        return small.clamp(0, 1)

    def upscale(self, condition: torch.Tensor) -> torch.Tensor:
        """Bicubic enlargement of ``condition`` by ``scale`` (not clamped); the condition itself
        for denoise and colorize."""
        if self.scale == 1:
            return condition
        return F.interpolate(condition, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def baseline(self, condition: torch.Tensor) -> torch.Tensor:
        """The trivial baseline in [0, 1]: the noisy input itself, its bicubic enlargement, or the
        grey image as colour (its luminance with chrominance 0: R = G = B in YUV; in Lab, grey to
        3e-5, the gap between scikit-image's sRGB matrix and its D65 white)."""
        if self.task == "colorize":
            space = self.config.color_space
            luminance = colour.luminance_of_grey(condition.float(), space)
            zero = luminance.new_zeros(len(luminance), 2, *luminance.shape[2:])
            return colour.join(luminance, zero, space).clamp(0, 1)   # grey is in the gamut: nothing to shrink
        if self.paired:
            return adapt_channels(condition, self.config.image_shape[0]).clamp(0, 1)
        return self.upscale(condition).clamp(0, 1)

    def check_condition(self, condition: torch.Tensor) -> None:
        """A clear error for condition images the network cannot take."""
        c = self.condition_channels
        if condition.ndim != 4:
            raise GenlabError(f"the {self.task} task takes images (N, C, H, W), got shape {tuple(condition.shape)}")
        if condition.shape[1] != c:
            if self.task == "colorize":
                raise GenlabError(f"colorize takes grey images (1 channel), got {condition.shape[1]} channel(s); "
                                  "make them with degrade(x)")
            raise GenlabError(f"images with {condition.shape[1]} channel(s) given to a {self.task} model that takes "
                              f"{c}-channel images")
        h, w = condition.shape[-2:]
        side = self.min_condition_side
        if min(h, w) < side:
            raise GenlabError(f"a {h}x{w} image is too small for this {self.task} model: its U-Net halves the image "
                              f"{self.config.levels} times, so it needs sides of at least {side}")

    def _unet(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net on ``x``, padded to a multiple of 2^levels (replicating the border), cropped back."""
        return on_padded(self.network("net"), x, self.config.levels)

    def chrominance(self, condition: torch.Tensor) -> torch.Tensor:
        """colorize: the predicted chrominance (N, 2, H, W) of grey images (N, 1, H, W), in the
        network's units (a, b / 100; U, V / their largest magnitude)."""
        if self.task != "colorize":
            raise NotSupported(f"a {self.task} model predicts no chrominance; colorize does")
        self.check_condition(condition)
        return self._unet(condition)

    def _chroma_scale(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(colour.chroma_scale(self.config.color_space), dtype=like.dtype,
                            device=like.device).view(1, 2, 1, 1)

    def target_chrominance(self, images: torch.Tensor) -> torch.Tensor:
        """colorize: the chrominance (N, 2, H, W) of colour ``images``, in the network's units."""
        return colour.split(images, self.config.color_space)[1] / self._chroma_scale(images)

    def colorize(self, condition: torch.Tensor, chrominance: torch.Tensor) -> torch.Tensor:
        """sRGB (N, 3, H, W) in [0, 1] of the luminance of grey images ``condition`` (N, 1, H, W)
        and ``chrominance`` (N, 2, H, W, the network's units); a pixel outside the gamut has its
        chrominance shrunk until it fits, so the luminance is kept."""
        space = self.config.color_space
        luminance = colour.luminance_of_grey(condition, space)
        return colour.fit_in_gamut(luminance, chrominance * self._chroma_scale(chrominance), space)

    def predict(self, condition: torch.Tensor) -> torch.Tensor:
        """The output for ``condition`` (N, C, h, w), not clamped: (N, C, scale h, scale w);
        colorize: (N, 1, h, w) grey in, (N, 3, h, w) colour out (in [0, 1], by construction)."""
        if self.task == "colorize":
            chrominance = self.chrominance(condition)
            with torch.autocast(condition.device.type, enabled=False):   # colour conversions in full precision
                return self.colorize(condition.float(), chrominance.float())
        self.check_condition(condition)
        cfg, net = self.config, self.network("net")
        if self.paired:
            correction = self._unet(condition)
            return self.baseline(condition) + correction if cfg.residual else correction
        base = self.upscale(condition)
        if cfg.arch == "espcn":
            correction = net(condition)
        else:  # the U-Net, on the (enlarged) input, padded to a multiple of 2^levels
            correction = self._unet(base)
        return base + correction if cfg.residual else correction

    def translate(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition images (N, C, h, w) in [0, 1] (noisy, small, or grey) to outputs in [0, 1]
        (N, C, scale h, scale w; colour for colorize)."""
        return self.predict(condition).clamp(0, 1)

    @torch.no_grad()
    def preview(self, batch: Batch, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Rows to look at (each (N, C, H, W), the images' channels): the inputs (small ones
        enlarged, nearest neighbour; grey ones repeated), the outputs and the targets of
        ``batch``; noise drawn from ``generator``."""
        x = batch.images
        condition = batch.condition if self.paired else self.degrade(x, generator=generator)
        shown = F.interpolate(condition, size=x.shape[-2:], mode="nearest") if self.scale > 1 else condition
        return [adapt_channels(shown, x.shape[1]), self.translate(condition), x]

    # ----------------------------------------------------------------- training
    def condition_of(self, batch: Batch) -> torch.Tensor:
        """The condition images of a training batch: its paired ones (pix2pix), else made from
        its clean images with its draws."""
        if not self.paired:
            return self.degrade(batch.images, draws=batch)
        if batch.condition is None:
            raise GenlabError("pix2pix learns from pairs, and this batch has no condition images; train it on a "
                              "dataset with paired condition images (digits-m, mnist-m)")
        self.check_condition(batch.condition)
        if batch.condition.shape[-2:] != batch.images.shape[-2:]:
            raise GenlabError(f"pix2pix pairs must have the same size; got sources of "
                              f"{tuple(batch.condition.shape[-2:])} for targets of {tuple(batch.images.shape[-2:])}")
        return batch.condition

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """``loss`` (L1 or squared error per pixel, mean per image; for colorize on the two
        chrominance channels), ``psnr`` of the output and ``baseline_psnr`` of the trivial
        baseline (dB, mean per image, in RGB). The condition image is made from the batch's
        clean images with its draws, or, for pix2pix, is the batch's own."""
        return self._terms(as_batch(batch, labels))[0]

    def _terms(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(the loss terms, the output with its graph (colour for colorize), the condition)."""
        x = batch.images
        self.check_images(x)
        condition = self.condition_of(batch)
        if self.task == "colorize":
            predicted = self.chrominance(condition)
            with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
                target = self.target_chrominance(x.float())
            diff = predicted - target
            # With a discriminator, it judges the colour image, so the colour keeps its graph.
            with torch.set_grad_enabled(self.discriminator is not None and torch.is_grad_enabled()), \
                    torch.autocast(x.device.type, enabled=False):
                out = self.colorize(condition.float(), predicted.float())
        else:
            out = self.predict(condition)
            diff = out - x
        error = diff.abs() if self.config.loss == "l1" else diff.pow(2)
        with torch.no_grad():
            psnr = batch_psnr(out.detach().clamp(0, 1), x).mean()
            baseline_psnr = batch_psnr(self.baseline(condition), x).mean()
        terms = {"loss": error.flatten(1).mean(1).mean(), "psnr": psnr, "baseline_psnr": baseline_psnr}
        return terms, out, condition

    # ----------------------------------------------------------------- the adversarial term
    def _pair(self, condition: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """What D sees: the condition (enlarged to the image's size) beside the image."""
        return torch.cat([self.upscale(condition).to(images.dtype), images], dim=1)

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        if self.discriminator is None:
            return super().optimizer_groups()
        # Adam's betas of pix2pix and DCGAN for both networks.
        return {"model": OptimizerGroup(list(self.net.parameters()), betas=(0.5, 0.999)),
                "discriminator": OptimizerGroup(list(self.discriminator.parameters()), betas=(0.5, 0.999),
                                                weight_decay=0.0)}

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Without a discriminator, :meth:`loss`. With one: first the model minimises ``loss`` =
        the pixel loss (logged as ``pixel_loss``) + ``adv_weight`` * ``adv``; then D learns to tell
        the real pairs from those outputs, logging ``d_loss`` and ``d_real``/``d_fake`` (mean raw
        patch scores)."""
        if self.discriminator is None:
            return super().objective(name, batch, step)
        D = self.discriminator
        if name == "discriminator":
            condition, fake = batch.scratch.pop("condition"), batch.scratch.pop("output")
            s_real, s_fake = D(self._pair(condition, batch.images)), D(self._pair(condition, fake))
            d_loss = discriminator_loss("non-saturating", s_real, s_fake)
            return d_loss, {"d_loss": d_loss.detach(), "d_real": s_real.mean().detach(),
                            "d_fake": s_fake.mean().detach()}
        terms, out, condition = self._terms(batch)
        batch.scratch.update(condition=condition.detach(), output=out.detach())
        with frozen(D):
            adv = generator_loss("non-saturating", D(self._pair(condition, out)))
        loss = terms["loss"] + self.config.adv_weight * adv
        terms = {**terms, "pixel_loss": terms["loss"], "adv": adv, "loss": loss}
        return loss, {k: v.detach() for k, v in terms.items()}
