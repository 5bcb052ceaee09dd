"""The growing generator and discriminator (Karras et al. 2018, table 2, at any width).

Stage s works on images of side 4 * 2^s; ``widths[s]`` is the number of feature maps there. Both
networks hold every stage's layers from the start and run the first ``stage + 1`` of them; the
newest stage is blended in with weight ``alpha`` (section 2, figure 2):

- G: the output of the new block's toRGB, beside the previous stage's toRGB output upsampled
  (nearest): alpha * new + (1 - alpha) * old. At alpha 0 G's images are those of the smaller G,
  upsampled.
- D: the new block on fromRGB of the image, beside the previous stage's fromRGB of the image
  average-pooled by 2: alpha * new + (1 - alpha) * old. At alpha 0 D scores an image as the
  smaller D scores it average-pooled.

G works in the paper's [-1, 1] range, with a linear toRGB; the model maps it to [0, 1].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import EqualizedConv2d, EqualizedLinear, minibatch_std, pixel_norm

_SLOPE = 0.2  # LeakyReLU's, throughout both networks


def stage_widths(image_size: int, channels: int, max_channels: int) -> list[int]:
    """Feature maps at each stage, from 4 x 4 to ``image_size``: ``channels`` at the image's side,
    doubling with each halving of the side, at most ``max_channels``."""
    last = int(math.log2(image_size)) - 2
    return [min(max_channels, channels << (last - s)) for s in range(last + 1)]


class _GeneratorBlock(nn.Module):
    """Stage s >= 1: upsample x2 (nearest), then two 3x3 convolutions, each with LeakyReLU and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = pixel_norm(F.leaky_relu(self.conv1(h), _SLOPE))
        return pixel_norm(F.leaky_relu(self.conv2(h), _SLOPE))


class ProgressiveGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, 4 * 2^stage, 4 * 2^stage), about [-1, 1].

    Stage 0: pixel norm of z, a dense layer to a 4x4 map (the paper's 4x4 convolution of a 1x1
    input), a 3x3 convolution, each with LeakyReLU and pixel norm. Each later stage: a
    :class:`_GeneratorBlock`. Every stage has its own toRGB (a linear 1x1 convolution)."""

    def __init__(self, latent_dim: int, widths: list[int], image_channels: int):
        super().__init__()
        self.widths = widths
        # gain sqrt(2) / 4 for the dense 4x4 layer, as the paper's code sets it
        self.dense = EqualizedLinear(latent_dim, widths[0] * 16, gain=math.sqrt(2) / 4)
        self.conv = EqualizedConv2d(widths[0], widths[0], 3)
        self.blocks = nn.ModuleList([_GeneratorBlock(widths[s - 1], widths[s]) for s in range(1, len(widths))])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(w, image_channels, 1, gain=1.0) for w in widths])

    def features(self, z: torch.Tensor, stage: int) -> torch.Tensor:
        """The feature maps of ``stage`` (N, widths[stage], side, side), before toRGB."""
        h = F.leaky_relu(self.dense(pixel_norm(z)), _SLOPE).view(len(z), self.widths[0], 4, 4)
        h = pixel_norm(F.leaky_relu(self.conv(pixel_norm(h)), _SLOPE))
        for s in range(1, stage + 1):
            h = self.blocks[s - 1](h)
        return h

    def forward(self, z: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        if stage == 0:
            return self.to_rgb[0](self.features(z, 0))
        h = self.features(z, stage - 1)
        new = self.to_rgb[stage](self.blocks[stage - 1](h))
        if alpha >= 1.0:
            return new
        old = F.interpolate(self.to_rgb[stage - 1](h), scale_factor=2, mode="nearest")
        return old + alpha * (new - old)   # exactly ``old`` at alpha 0


class _DiscriminatorBlock(nn.Module):
    """Stage s >= 1: two 3x3 convolutions with LeakyReLU (to the previous stage's width), then
    2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(h), _SLOPE)
        return F.avg_pool2d(F.leaky_relu(self.conv2(h), _SLOPE), 2)


class ProgressiveDiscriminator(nn.Module):
    """Images (N, C, 4 * 2^stage, 4 * 2^stage) -> scores (N,), real high.

    Each stage has its own fromRGB (1x1 convolution, LeakyReLU); each later stage a
    :class:`_DiscriminatorBlock`; the 4x4 stage ends with the minibatch standard deviation
    feature, a 3x3 convolution, a dense layer over the 4x4 map and a linear output. No batch
    norm: the gradient penalty is per image."""

    def __init__(self, widths: list[int], image_channels: int, mbstd_group: int = 4):
        super().__init__()
        self.mbstd_group = mbstd_group
        self.from_rgb = nn.ModuleList([EqualizedConv2d(image_channels, w, 1) for w in widths])
        self.blocks = nn.ModuleList([_DiscriminatorBlock(widths[s], widths[s - 1]) for s in range(1, len(widths))])
        self.conv = EqualizedConv2d(widths[0] + 1, widths[0], 3)
        self.dense = EqualizedLinear(widths[0] * 16, widths[0])
        self.out = EqualizedLinear(widths[0], 1, gain=1.0)

    def forward(self, x: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        h = F.leaky_relu(self.from_rgb[stage](x), _SLOPE)
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if alpha < 1.0:
                old = F.leaky_relu(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)), _SLOPE)
                h = old + alpha * (h - old)   # exactly ``old`` at alpha 0
        for s in range(stage - 1, 0, -1):
            h = self.blocks[s - 1](h)
        h = F.leaky_relu(self.conv(minibatch_std(h, self.mbstd_group)), _SLOPE)
        h = F.leaky_relu(self.dense(h.flatten(1)), _SLOPE)
        return self.out(h).squeeze(1).float()   # the losses in fp32, also under bf16 autocast
