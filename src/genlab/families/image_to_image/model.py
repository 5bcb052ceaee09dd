"""Image-to-image translation: denoising, super-resolution, colorization and paired translation
(pix2pix) (the ``image-to-image`` family), one class per task.

A model of this family maps a condition image (a noisy image, a small one, a grey one, or the
paired source image) to an image of the training data. :class:`ImageToImage` holds what every
task shares (the networks, the residual over a trivial baseline, the loss, the adversarial term,
the checks, the file protocol of ``genlab translate``) with :class:`ImageToImageConfig`, the
settings every task shares; each task is a subclass with its own config, which validates its own
settings: :class:`Denoise` (:class:`DenoiseConfig`), :class:`SuperResolution`
(:class:`SuperResolutionConfig`), :class:`Colorize` (:class:`ColorizeConfig`) and
:class:`Pix2Pix` (:class:`Pix2PixConfig`). Settings written before the tasks were classes carry
``task`` and every task's settings: the task's config takes them (dropping the other tasks'),
and ``ImageToImage.from_config`` builds the class their ``task`` names.

The first three tasks learn from clean images alone: :meth:`ImageToImage.degrade` makes the
condition on the fly with the batch's random draws, so every image gets the same corruption in
one process or several, and in a resumed run. pix2pix learns from pairs: the batch's
``condition`` (a dataset's ``conditions``, such as the grey digit of each ``digits-m`` blend) is
the input and the image the target.

Tasks (the model names, each its class):

- ``denoise``: the condition is the clean image with ``noise`` (``gaussian`` of standard deviation
  ``noise_level``, clipped to [0, 1]; ``salt-pepper``, a ``noise_level`` fraction of the pixels set
  to 0 or 1; ``masking``, a ``noise_level`` fraction set to 0). Network: a small U-Net (``arch``
  ``unet``): two 3x3 convolutions per level, max-pooling down, the ``upsample`` layer up, skip
  connections by concatenation; ``channels`` gives one width per level, so (32, 64, 128) halves the
  image twice. Sides that are not a multiple of 2^levels are padded (replicating the border) and
  the output cropped back; sides below 2^levels are refused.
- ``superres``: the condition is the clean image made ``scale`` (2 or 4) times smaller
  (``downsample``): by the bicubic resizing of the super-resolution literature (``matlab-bicubic``,
  the default: MATLAB's ``imresize``, :mod:`genlab.families.image_to_image.resize`), whose
  enlargement is then the baseline too; or, as runs before it did, by area averaging (``area``)
  or PyTorch's antialiased bicubic (``bicubic``), enlarged by PyTorch's bicubic. Network
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
  change it). The loss is taken on the chrominance. Conversions: :mod:`genlab.families.image_to_image.colour`
  (scikit-image's matrices, in torch). Colour data only: a 1-channel dataset is refused.
- ``pix2pix`` (Isola et al. 2017): the condition is the dataset's paired source image (any channel
  count, the image's size), the U-Net maps it to the target, and the loss is L1 plus
  ``adv_weight`` (0.01, the paper's 1 : 100) times an adversarial term. The baseline is the source
  itself, brought to the target's channels (grey repeated to RGB; RGB to its mean).

The adversarial term (``adv_weight`` > 0; any task, pix2pix by default) adds a PatchGAN
discriminator D (:class:`~genlab.nn.patchgan.PatchDiscriminator`) that scores overlapping patches
of the pair (condition, image), the condition enlarged to the image's size for superres: real
pairs high, the model's outputs low, with the non-saturating loss; the model minimises ``loss`` +
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

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...config import check_at_least
from ...data.batch import Batch, as_batch
from ...data.transforms import corrupt
from ...errors import GenlabError
from ...metrics.image_quality import batch_psnr
from ...models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported, OptimizerGroup, require_planar
from ...nn.adversarial import discriminator_loss, frozen, generator_loss
from ...nn.blocks import ACTIVATIONS, UPSAMPLERS, upsampler
from ...nn.patchgan import PatchDiscriminator, patch_layers
from ...nn.unet import UNet, adapt_channels, on_padded, zero_last_layer
from . import colour
from .resize import imresize

DENOISE_NOISES = ("gaussian", "salt-pepper", "masking")
ARCHS = ("unet", "espcn")
DOWNSAMPLERS = ("matlab-bicubic", "area", "bicubic")
LOSSES = ("l1", "mse")


# --------------------------------------------------------------------- settings
@dataclass
class ImageToImageConfig(ModelConfig):
    """The settings every image-to-image task shares; each task's config adds its own.

    Attributes (``None``: the default for ``arch``):
        arch: the network: ``unet`` (every task) or ``espcn`` (superres only, its default).
        channels: widths: one per U-Net level (default (32, 64, 128)), or of the ESPCN's
            low-resolution convolutions (default (64, 32)).
        upsample: the layer that doubles the resolution: ``transposed``, ``resize-conv`` or
            ``pixel-shuffle`` (defaults: ``transposed`` in the U-Net, ``pixel-shuffle`` in ESPCN).
        activation: after each hidden convolution (default relu).
        residual: predict a correction of the trivial baseline (default true).
        loss: ``mse`` (default: what PSNR measures) or ``l1`` (pix2pix's default), per pixel, mean
            per image.
        condition_shape: (C', H, W) of the dataset's paired condition images, from the data:
            pix2pix's input; the tasks that make their input from the image do not read it.
        adv_weight: weight of the adversarial term (default 0; pix2pix 0.01).
        d_channels: width of D's first layer; each stride-2 layer doubles it (at most 8 times).
        d_layers: D's stride-2 layers (default: 3, the 70x70 PatchGAN, or fewer on images under
            64 pixels a side, so that D scores patches, not the whole image).
    """

    #: the task's name: its model name, in messages and beside its measures
    task: ClassVar[str] = "image-to-image"
    #: the networks this task takes
    archs: ClassVar[tuple[str, ...]] = ("unet",)

    arch: Literal["unet", "espcn"] = "unet"
    channels: tuple[int, ...] | None = None
    upsample: Literal["transposed", "resize-conv", "pixel-shuffle"] | None = None
    activation: Literal["relu", "silu", "leaky_relu", "gelu", "tanh", "sigmoid"] = "relu"
    residual: bool = True
    loss: Literal["mse", "l1"] = "mse"
    condition_shape: tuple[int, ...] | None = None
    adv_weight: float = 0.0
    d_channels: int = 64
    d_layers: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        c, h, w = require_planar(self, f"the {self.task} task")
        if self.condition_shape is not None:
            self.condition_shape = tuple(self.condition_shape)
        self._check_data(c, h, w)
        check_at_least(self, 0, "adv_weight")
        check_at_least(self, 1, "d_channels")
        if self.adv_weight > 0:
            if min(h, w) < 8:
                raise GenlabError(f"the adversarial term's PatchGAN needs images of at least 8x8, got {h}x{w}; "
                                  "set `adv_weight=0`")
            if self.d_layers is not None:
                check_at_least(self, 1, "d_layers")
            self.d_layers = patch_layers(h, w, self.d_layers)
        if self.arch not in ARCHS:
            raise GenlabError(f"unknown arch '{self.arch}' for the {self.task} task; choose one of: "
                              f"{', '.join(self.archs)}")
        if self.arch not in self.archs:
            raise GenlabError(f"`arch` {self.arch} upsamples, so it serves the superres task; {self.task} takes "
                              "`arch=unet`")
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
        self._check_task(h, w)
        if self.arch == "unet" and min(h, w) < 2 ** self.levels:
            raise GenlabError(f"`channels` {list(self.channels)} make a U-Net that halves the image {self.levels} "
                              f"times, which needs sides of at least {2 ** self.levels}; this data is {h}x{w}")

    def _check_data(self, c: int, h: int, w: int) -> None:
        """The task's demands on the data (C, H, W), checked first."""

    def _check_task(self, h: int, w: int) -> None:
        """The task's own settings."""

    @property
    def levels(self) -> int:
        """How many times the U-Net halves the image (0 for ESPCN)."""
        return len(self.channels) - 1 if self.arch == "unet" else 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ImageToImageConfig:
        """The settings ``values``, a setting of another task refused in one line naming it. Those
        written before one class per task name their ``task`` and hold every task's settings:
        the task's config takes them, without the other tasks' (this class's own config must be
        that task's; the shared config becomes it)."""
        if not isinstance(values, dict):
            return super().from_dict(values)
        own = _fields(cls)
        if "task" not in values:
            for key in values:
                task = next((t for t, config in CONFIGS.items() if key not in own and key in _fields(config)), None)
                if task is not None:
                    raise GenlabError(f"`{key}` is a setting of the {task} task; a {cls.task} model does not take it")
            return super().from_dict(values)
        task = values["task"]
        if task not in CONFIGS:
            raise GenlabError(f"unknown task '{task}'; choose one of: {', '.join(CONFIGS)}")
        if cls is ImageToImageConfig:
            return CONFIGS[task].from_dict(values)
        if task != cls.task:
            raise GenlabError(f"settings of the {task} task given to a {cls.task} model; build a {task} model")
        others = {name for config in CONFIGS.values() for name in _fields(config)} - own
        return super().from_dict({k: v for k, v in values.items() if k != "task" and k not in others})


def _fields(config: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config)}


@dataclass
class DenoiseConfig(ImageToImageConfig):
    """The denoise task's settings.

    Attributes (beyond :class:`ImageToImageConfig`'s):
        noise, noise_level: the corruption: ``gaussian`` (level = standard deviation),
            ``salt-pepper`` or ``masking`` (level = fraction of the pixels).
    """

    task: ClassVar[str] = "denoise"

    noise: Literal["gaussian", "salt-pepper", "masking"] = "gaussian"
    noise_level: float = 0.3

    def _check_task(self, h: int, w: int) -> None:
        if self.noise not in DENOISE_NOISES:
            raise GenlabError(f"the denoise task needs `noise` to be one of: {', '.join(DENOISE_NOISES)}; "
                              f"got '{self.noise}'")
        if not self.noise_level > 0:
            raise GenlabError(f"`noise_level` must be above 0 for the denoise task, got {self.noise_level}")
        if self.noise != "gaussian" and self.noise_level > 1:
            raise GenlabError(f"{self.noise} noise replaces a fraction of the pixels: `noise_level` must lie in "
                              f"(0, 1], got {self.noise_level}")


@dataclass
class SuperResolutionConfig(ImageToImageConfig):
    """The superres task's settings (``arch`` ``espcn`` by default).

    Attributes (beyond :class:`ImageToImageConfig`'s):
        scale: the factor, 2 or 4; the image sides must be divisible by it.
        downsample: how the input is made: ``matlab-bicubic`` (default: the literature's
            bicubic, antialiased, with symmetric borders; the baseline enlarges by it too),
            ``area`` (the mean of each scale x scale block) or ``bicubic`` (PyTorch's,
            antialiased); with these two the baseline is PyTorch's bicubic (a = -0.75).
    """

    task: ClassVar[str] = "superres"
    archs: ClassVar[tuple[str, ...]] = ARCHS

    arch: Literal["unet", "espcn"] = "espcn"
    scale: int = 2
    downsample: Literal["matlab-bicubic", "area", "bicubic"] = "matlab-bicubic"

    def _check_task(self, h: int, w: int) -> None:
        if self.scale not in (2, 4):
            raise GenlabError(f"`scale` must be 2 or 4, got {self.scale}")
        if h % self.scale or w % self.scale:
            raise GenlabError(f"`scale` {self.scale} needs image sides divisible by {self.scale}; this data is "
                              f"{h}x{w}")
        if self.downsample not in DOWNSAMPLERS:
            raise GenlabError(f"unknown downsample '{self.downsample}'; choose one of: {', '.join(DOWNSAMPLERS)}")


@dataclass
class ColorizeConfig(ImageToImageConfig):
    """The colorize task's settings.

    Attributes (beyond :class:`ImageToImageConfig`'s):
        color_space: ``lab`` (default; L in, a and b predicted) or ``yuv`` (Y in, U and V predicted).
    """

    task: ClassVar[str] = "colorize"

    color_space: Literal["lab", "yuv"] = "lab"

    def _check_data(self, c: int, h: int, w: int) -> None:
        if c != 3:
            raise GenlabError(f"colorize needs colour images; digits-m or photos, not a {c}-channel dataset")

    def _check_task(self, h: int, w: int) -> None:
        if self.color_space not in colour.SPACES:
            raise GenlabError(f"unknown color_space '{self.color_space}'; choose one of: {', '.join(colour.SPACES)}")


@dataclass
class Pix2PixConfig(ImageToImageConfig):
    """The pix2pix task's settings: :class:`ImageToImageConfig`'s, with L1 and the adversarial
    term (0.01) by default, and ``condition_shape`` required (the paired sources, from the data)."""

    task: ClassVar[str] = "pix2pix"

    loss: Literal["mse", "l1"] = "l1"
    adv_weight: float = 0.01

    def _check_data(self, c: int, h: int, w: int) -> None:
        """pix2pix needs paired source images of the target's size."""
        if self.condition_shape is None:
            raise GenlabError("pix2pix learns from pairs: train it on a dataset with paired condition images "
                              "(digits-m, mnist-m: the grey digit of each blend)")
        if len(self.condition_shape) != 3 or tuple(self.condition_shape[1:]) != (h, w):
            raise GenlabError(f"pix2pix maps a source image to a target of the same size; the pairs are "
                              f"{tuple(self.condition_shape)} and {(c, h, w)}")


#: each task's config, by task name
CONFIGS: dict[str, type[ImageToImageConfig]] = {
    config.task: config for config in (DenoiseConfig, SuperResolutionConfig, ColorizeConfig, Pix2PixConfig)}


# --------------------------------------------------------------------- networks
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


# --------------------------------------------------------------------- the tasks
class ImageToImage(GenerativeModel):
    """What every image-to-image task shares; each task is a subclass (see the module's
    description). Building this class from settings that name their ``task`` builds that task's
    class."""

    family = "image-to-image"
    config_class = ImageToImageConfig
    train_defaults = {"epochs": 20}
    #: what ends the name of a translated file (``NAME-SUFFIX.png``)
    suffix: ClassVar[str] = "translated"

    def __init__(self, config: ImageToImageConfig, name: str | None = None):
        super().__init__(config, name)
        self.net = self._network()
        if config.residual:
            zero_last_layer(self.net)
        # Built only when used, so a model without the term has the same weights and draws.
        c = config.image_shape[0]
        self.discriminator = (PatchDiscriminator(self.condition_channels + c, config.d_channels, config.d_layers)
                              if config.adv_weight > 0 else None)
        self.keep_average("net")

    @classmethod
    def from_config(cls, config: ImageToImageConfig | dict[str, Any], name: str | None = None) -> ImageToImage:
        if isinstance(config, dict):
            config = cls.config_class.from_dict(config)
        if not isinstance(config, cls.config_class):
            raise GenlabError(f"{type(config).__name__} given to {cls.__name__}, which takes {cls.config_class.__name__}")
        if cls is ImageToImage:  # the task's own class builds it
            if type(config).task not in TASK_MODELS:
                raise GenlabError(f"image-to-image settings name their task; choose one of: {', '.join(TASK_MODELS)}")
            cls = TASK_MODELS[type(config).task]
        return cls(config, name=name)

    def _network(self) -> nn.Module:
        """The network: a U-Net from the condition's channels to the image's."""
        cfg = self.config
        return UNet(self.condition_channels, cfg.image_shape[0], cfg.channels, cfg.upsample, cfg.activation)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(condition_image=True, held_out_loss=True, preview=True)

    @property
    def latent_dim(self) -> int:
        raise NotSupported(f"a {self.name} model has no latent space: it maps images to images "
                           "(translate(x); genlab translate RUN IMAGES)")

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotSupported(f"a {self.name} model has no encoder: it maps images to images "
                           "(translate(x); genlab translate RUN IMAGES)")

    @property
    def task(self) -> str:
        """The task's name (its model name)."""
        return self.config.task

    @property
    def condition_channels(self) -> int:
        """Channels of a condition image (the data's, unless the task says otherwise)."""
        return self.config.image_shape[0]

    @property
    def baseline_name(self) -> str:
        """What the trivial baseline is, in words."""
        raise NotImplementedError

    @property
    def min_condition_side(self) -> int:
        """The smallest side of a condition image the network takes."""
        return 2 ** self.config.levels

    def check_images(self, x: torch.Tensor) -> None:
        """Clean images the networks take: the data's channels, any size the network can take
        (both networks are fully convolutional, so a held-out split of larger images, such as
        the 256x256 test photos of ``photos``, works)."""
        c = self.config.image_shape[0]
        if x.ndim != 4 or x.shape[1] != c:
            raise GenlabError(f"images of shape {tuple(x.shape[1:])} given to a {self.task} model built for "
                              f"{c}-channel images {tuple(self.config.image_shape)}; train a model on this dataset")
        h, w = x.shape[-2:]
        self._check_sides(h, w)
        if min(h, w) < 2 ** self.config.levels:
            raise GenlabError(f"{h}x{w} images are too small for this {self.task} model: its U-Net halves the image "
                              f"{self.config.levels} times, so it needs sides of at least {2 ** self.config.levels}")

    def _check_sides(self, h: int, w: int) -> None:
        """What the task asks of the sides of a clean image (beyond the network's minimum)."""

    # ----------------------------------------------------------------- the task
    def degrade(self, images: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
        """The condition images of clean ``images`` (N, C, H, W): random draws from ``draws`` (a
        :class:`~genlab.data.Batch` or seeded draws) or ``generator``."""
        raise NotSupported(f"a {self.task} model makes no input from a target image")

    def condition_of(self, batch: Batch, draws=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """The condition images of ``batch``: made from its clean images with ``draws`` (in
        training the batch itself; seeded per image in evaluation) or ``generator``."""
        return self.degrade(batch.images, generator=generator, draws=draws)

    def upscale(self, condition: torch.Tensor) -> torch.Tensor:
        """``condition`` brought to the output's size (not clamped): itself, unless the task enlarges."""
        return condition

    def baseline(self, condition: torch.Tensor) -> torch.Tensor:
        """The trivial baseline in [0, 1]: the input itself (enlarged, for a task that enlarges)."""
        return self.upscale(condition).clamp(0, 1)

    def check_condition(self, condition: torch.Tensor) -> None:
        """A clear error for condition images the network cannot take."""
        c = self.condition_channels
        if condition.ndim != 4:
            raise GenlabError(f"the {self.task} task takes images (N, C, H, W), got shape {tuple(condition.shape)}")
        if condition.shape[1] != c:
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

    def _start(self, condition: torch.Tensor) -> torch.Tensor:
        """What the network's correction is added to (with ``residual``)."""
        return self.upscale(condition)

    def _correction(self, condition: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """The network's output: the U-Net on ``start``."""
        return self._unet(start)

    def predict(self, condition: torch.Tensor) -> torch.Tensor:
        """The output for ``condition`` (N, C', h, w), not clamped (N, C, H, W): the start (the
        input, or its enlargement) plus the network's correction, with ``residual``."""
        self.check_condition(condition)
        start = self._start(condition)
        correction = self._correction(condition, start)
        return start + correction if self.config.residual else correction

    def translate(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition images (N, C', h, w) in [0, 1] (noisy, small, grey, or sources) to outputs in [0, 1]."""
        return self.predict(condition).clamp(0, 1)

    @torch.no_grad()
    def preview(self, batch: Batch, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Rows to look at (each (N, C, H, W), the images' channels): the inputs (small ones
        enlarged, nearest neighbour; grey ones repeated), the outputs and the targets of
        ``batch``; noise drawn from ``generator``."""
        x = batch.images
        condition = self.condition_of(batch, generator=generator)
        shown = condition
        if condition.shape[-2:] != x.shape[-2:]:
            shown = F.interpolate(condition, size=x.shape[-2:], mode="nearest")
        return [adapt_channels(shown, x.shape[1]), self.translate(condition), x]

    # ----------------------------------------------------------------- image files (genlab translate)
    def _one_way(self, direction: str | None) -> None:
        if direction is not None:
            raise GenlabError(f"`direction` is for a CycleGAN run, which translates both ways; a {self.task} run "
                              "has one direction")

    def result_suffix(self, direction: str | None = None) -> str:
        """What ends the name of a translated file (``NAME-SUFFIX.png``); a task translates one way,
        so ``direction`` is refused."""
        self._one_way(direction)
        return self.suffix

    def result_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the output for an input of that size."""
        return height, width

    def condition_from_image(self, image, name: str = "the image", direction: str | None = None
                             ) -> tuple[torch.Tensor, str | None]:
        """The condition image (1, C', H, W) of a PIL ``image`` (a file or upload called ``name``),
        and a line saying how the image was changed to make it (None: taken as it is); one
        clear line naming ``name`` for an image the network cannot take."""
        from ...image_files import image_tensor

        self._one_way(direction)
        x = image_tensor(image, self.condition_channels, name)
        self._check_file_size(x, name)
        return x, None

    def _check_file_size(self, x: torch.Tensor, name: str) -> None:
        side = self.min_condition_side
        h, w = x.shape[-2:]
        if min(h, w) < side:
            raise GenlabError(f"{name} is {w}x{h}, too small for this {self.task} model: its network halves the image "
                              f"{self.config.levels} times and needs sides of at least {side} pixels")

    # ----------------------------------------------------------------- measures
    def task_settings(self) -> dict[str, Any]:
        """The settings that make this task's input, reported beside its measures."""
        return {}

    @property
    def luminance_crop(self) -> int | None:
        """The border (pixels) cropped for the luminance PSNR, for a task that reports one (None)."""
        return None

    # ----------------------------------------------------------------- training
    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """``loss`` (L1 or squared error per pixel, mean per image; for colorize on the two
        chrominance channels), ``psnr`` of the output and ``baseline_psnr`` of the trivial
        baseline (dB, mean per image, in RGB). The condition image is made from the batch's
        clean images with its draws, or, for pix2pix, is the batch's own."""
        return self._terms(as_batch(batch, labels))[0]

    def _output_and_error(self, condition: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the output with its graph, the error the loss is taken on)."""
        out = self.predict(condition)
        return out, out - x

    def _terms(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(the loss terms, the output with its graph (colour for colorize), the condition)."""
        x = batch.images
        self.check_images(x)
        condition = self.condition_of(batch, draws=batch)
        out, diff = self._output_and_error(condition, x)
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


class Denoise(ImageToImage):
    """Denoising: the noisy image in, the clean one out."""

    config_class = DenoiseConfig
    suffix = "denoise"

    @property
    def baseline_name(self) -> str:
        return "the noisy input"

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
        """Noisy ``images``: ``noise`` at ``noise_level``, drawn from ``draws`` or ``generator``."""
        cfg = self.config
        return corrupt(images, cfg.noise, cfg.noise_level, generator=generator, draws=draws)

    def task_settings(self) -> dict[str, Any]:
        return {"noise": self.config.noise, "noise_level": self.config.noise_level}


class SuperResolution(ImageToImage):
    """Super-resolution: an image ``scale`` times smaller in, the image out."""

    config_class = SuperResolutionConfig

    def _network(self) -> nn.Module:
        cfg = self.config
        if cfg.arch == "espcn":
            return ESPCN(cfg.image_shape[0], cfg.channels, cfg.scale, cfg.upsample, cfg.activation)
        return super()._network()

    @property
    def suffix(self) -> str:
        return f"x{self.config.scale}"

    @property
    def baseline_name(self) -> str:
        return f"bicubic upscaling x{self.config.scale}"

    @property
    def min_condition_side(self) -> int:
        return max(1, -(-2 ** self.config.levels // self.config.scale))

    def _check_sides(self, h: int, w: int) -> None:
        scale = self.config.scale
        if h % scale or w % scale:
            raise GenlabError(f"`scale` {scale} needs image sides divisible by {scale}, got {h}x{w}")

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
        """``images`` made ``scale`` times smaller (``downsample``; no draws), in [0, 1]."""
        cfg = self.config
        h, w = images.shape[-2:]
        self._check_sides(h, w)
        if cfg.downsample == "matlab-bicubic":
            return imresize(images, 1 / cfg.scale).clamp(0, 1)
        if cfg.downsample == "area":
            return F.avg_pool2d(images, cfg.scale)
        small = F.interpolate(images, size=(h // cfg.scale, w // cfg.scale), mode="bicubic", align_corners=False,
                              antialias=True)
        return small.clamp(0, 1)

    def upscale(self, condition: torch.Tensor) -> torch.Tensor:
        """Bicubic enlargement of ``condition`` by ``scale`` (not clamped): the literature's with
        ``matlab-bicubic`` inputs, PyTorch's (a = -0.75) with the others, as runs made before."""
        if self.config.downsample == "matlab-bicubic":
            return imresize(condition, self.config.scale)
        return F.interpolate(condition, scale_factor=self.config.scale, mode="bicubic", align_corners=False)

    def _correction(self, condition: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """ESPCN on the small input, or the U-Net on its enlargement."""
        if self.config.arch == "espcn":
            return self.network("net")(condition)
        return self._unet(start)

    def result_size(self, height: int, width: int) -> tuple[int, int]:
        return height * self.config.scale, width * self.config.scale

    def task_settings(self) -> dict[str, Any]:
        return {"scale": self.config.scale, "downsample": self.config.downsample}

    @property
    def luminance_crop(self) -> int:
        """``scale`` pixels, the convention of the super-resolution literature."""
        return self.config.scale


class Colorize(ImageToImage):
    """Colorization: a grey image in, colour out (the luminance kept, the chrominance predicted)."""

    config_class = ColorizeConfig
    suffix = "color"

    def _network(self) -> nn.Module:
        cfg = self.config   # grey in, two chrominance channels out
        return UNet(1, 2, cfg.channels, cfg.upsample, cfg.activation)

    @property
    def condition_channels(self) -> int:
        return 1

    @property
    def baseline_name(self) -> str:
        return f"the grey image (chrominance 0, {self.config.color_space})"

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
        """The grey images (N, 1, H, W) of colour ``images`` (no draws)."""
        if images.shape[1] != 3:
            raise GenlabError(f"colorize makes its grey input from colour images (3 channels), got "
                              f"{images.shape[1]} channel(s)")
        return colour.grey(images, self.config.color_space)

    def baseline(self, condition: torch.Tensor) -> torch.Tensor:
        """The grey image as colour (its luminance with chrominance 0: R = G = B in YUV; in Lab,
        grey to 3e-5, the gap between scikit-image's sRGB matrix and its D65 white)."""
        space = self.config.color_space
        luminance = colour.luminance_of_grey(condition.float(), space)
        zero = luminance.new_zeros(len(luminance), 2, *luminance.shape[2:])
        return colour.join(luminance, zero, space).clamp(0, 1)   # grey is in the gamut: nothing to shrink

    def check_condition(self, condition: torch.Tensor) -> None:
        if condition.ndim == 4 and condition.shape[1] != 1:
            raise GenlabError(f"colorize takes grey images (1 channel), got {condition.shape[1]} channel(s); "
                              "make them with degrade(x)")
        super().check_condition(condition)

    def chrominance(self, condition: torch.Tensor) -> torch.Tensor:
        """The predicted chrominance (N, 2, H, W) of grey images (N, 1, H, W), in the network's
        units (a, b / 100; U, V / their largest magnitude)."""
        self.check_condition(condition)
        return self._unet(condition)

    def _chroma_scale(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(colour.chroma_scale(self.config.color_space), dtype=like.dtype,
                            device=like.device).view(1, 2, 1, 1)

    def target_chrominance(self, images: torch.Tensor) -> torch.Tensor:
        """The chrominance (N, 2, H, W) of colour ``images``, in the network's units."""
        return colour.split(images, self.config.color_space)[1] / self._chroma_scale(images)

    def colorize(self, condition: torch.Tensor, chrominance: torch.Tensor) -> torch.Tensor:
        """sRGB (N, 3, H, W) in [0, 1] of the luminance of grey images ``condition`` (N, 1, H, W)
        and ``chrominance`` (N, 2, H, W, the network's units); a pixel outside the gamut has its
        chrominance shrunk until it fits, so the luminance is kept."""
        space = self.config.color_space
        luminance = colour.luminance_of_grey(condition, space)
        return colour.fit_in_gamut(luminance, chrominance * self._chroma_scale(chrominance), space)

    def predict(self, condition: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) grey in, (N, 3, h, w) colour out (in [0, 1], by construction)."""
        chrominance = self.chrominance(condition)
        with torch.autocast(condition.device.type, enabled=False):   # colour conversions in full precision
            return self.colorize(condition.float(), chrominance.float())

    def _output_and_error(self, condition: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss is on the chrominance; the colour output keeps its graph only for a discriminator."""
        predicted = self.chrominance(condition)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            target = self.target_chrominance(x.float())
        # With a discriminator, it judges the colour image, so the colour keeps its graph.
        with torch.set_grad_enabled(self.discriminator is not None and torch.is_grad_enabled()), \
                torch.autocast(x.device.type, enabled=False):
            out = self.colorize(condition.float(), predicted.float())
        return out, predicted - target

    def condition_from_image(self, image, name: str = "the image", direction: str | None = None
                             ) -> tuple[torch.Tensor, str | None]:
        """The grey image of a file: a grey file as it is; a colour one made grey (the grey of its
        luminance in the model's colour space, the input it was trained on), which the line says."""
        from ...image_files import image_tensor

        self._one_way(direction)
        x = image_tensor(image, 3, name)
        if torch.equal(x[:, :1].expand_as(x), x):   # a grey file (as read, all three channels equal)
            grey, note = x[:, :1].contiguous(), None
        else:
            luminance = "L of Lab" if self.config.color_space == "lab" else "Y of YUV"
            grey, note = self.degrade(x), (f"{name} is a colour image; colorize takes its grey version (the "
                                           f"luminance, {luminance}) as the input")
        self._check_file_size(grey, name)
        return grey, note

    def task_settings(self) -> dict[str, Any]:
        return {"color_space": self.config.color_space}


class Pix2Pix(ImageToImage):
    """Paired translation: the dataset's source image in, its target out."""

    config_class = Pix2PixConfig
    suffix = "pix2pix"

    @property
    def condition_channels(self) -> int:
        return self.config.condition_shape[0]

    @property
    def baseline_name(self) -> str:
        return "the source image"

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None = None, draws=None) -> torch.Tensor:
        raise NotSupported("pix2pix takes its input from paired data (the batch's condition images), "
                           "not from the target image")

    def condition_of(self, batch: Batch, draws=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """The batch's paired condition images (no draws)."""
        if batch.condition is None:
            raise GenlabError("pix2pix learns from pairs, and this batch has no condition images; train it on a "
                              "dataset with paired condition images (digits-m, mnist-m)")
        self.check_condition(batch.condition)
        if batch.condition.shape[-2:] != batch.images.shape[-2:]:
            raise GenlabError(f"pix2pix pairs must have the same size; got sources of "
                              f"{tuple(batch.condition.shape[-2:])} for targets of {tuple(batch.images.shape[-2:])}")
        return batch.condition

    def baseline(self, condition: torch.Tensor) -> torch.Tensor:
        """The source itself, brought to the target's channels."""
        return adapt_channels(condition, self.config.image_shape[0]).clamp(0, 1)

    def _start(self, condition: torch.Tensor) -> torch.Tensor:
        return self.baseline(condition)

    def _correction(self, condition: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return self._unet(condition)


#: each task's class, by task name
TASK_MODELS: dict[str, type[ImageToImage]] = {cls.config_class.task: cls
                                              for cls in (Denoise, SuperResolution, Colorize, Pix2Pix)}
