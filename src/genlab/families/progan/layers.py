"""The parts of the progressive GAN that are not in ``nn/``: equalised-learning-rate layers, pixelwise
feature normalisation, the minibatch standard deviation feature, and the growth schedule.

Equalised learning rate (Karras et al. 2018, section 4.1): every weight is stored as a draw of
N(0, 1) and multiplied at run time by He's constant c = gain / sqrt(fan_in). The forward pass is
that of a plain layer with weight c * w, but Adam's step, which is invariant to the scale of a
parameter's gradient, moves each stored weight by about the learning rate whatever the layer's
fan-in: every layer learns at the same speed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: He's gain for LeakyReLU(0.2) layers, as the paper's code uses (sqrt 2, the ReLU gain)
HE_GAIN = math.sqrt(2.0)


class EqualizedConv2d(nn.Module):
    """A k x k convolution ("same" padding) whose weight (out, in, k, k) is stored N(0, 1) and
    scaled by ``gain / sqrt(in * k * k)`` in each forward pass; bias starts at 0."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = HE_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A dense layer whose weight (out, in) is stored N(0, 1) and scaled by ``gain / sqrt(in)``
    in each forward pass; bias starts at 0."""

    def __init__(self, in_features: int, out_features: int, gain: float = HE_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each pixel's feature vector scaled to unit root mean square over the channels (dim 1):
    x / sqrt(mean_c x^2 + eps), for (N, C, H, W) maps or (N, C) vectors (section 4.2)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_std(x: torch.Tensor, group: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """(N, C, H, W) -> (N, C + 1, H, W): one more feature map, constant over each image, that holds
    the standard deviation of the features across images, averaged over features and pixels
    (section 3). D can then tell a batch of too-similar fakes from a batch of real images.

    The images form groups of ``group`` (0: the whole batch, as in the paper; a size that does not
    divide N shrinks to the largest that does): per group, the population standard deviation over
    its images of every (channel, pixel), then the mean of those. The groups are strided, as in
    StyleGAN's code: image i with i + N/g, i + 2N/g, ... So a data-parallel run, which deals each
    of its W processes every W-th image of the batch, forms the same groups as one process (when
    g divides each process's share); the micro-batches of gradient accumulation form their own."""
    n = x.shape[0]
    g = min(group, n) if group > 0 else n
    while n % g:
        g -= 1
    y = x.float().reshape(g, n // g, *x.shape[1:])
    std = (y.var(dim=0, unbiased=False) + eps).sqrt()     # (N/g, C, H, W)
    feature = std.flatten(1).mean(dim=1).repeat(g)        # (N,): image i gets its group's, i mod N/g
    maps = feature.to(x.dtype).view(n, 1, 1, 1).expand(n, 1, *x.shape[2:])
    return torch.cat([x, maps], dim=1)


def schedule(images: int, last_stage: int, fade_images: int, stable_images: int) -> tuple[int, float]:
    """(stage, alpha) after ``images`` training images: stage s works at side 4 * 2^s.

    Stage 0 (4 x 4) trains for ``stable_images``; then each next stage fades in over
    ``fade_images`` (alpha rising linearly from 0 to 1) and trains at alpha 1 for ``stable_images``;
    the last stage (``last_stage``) then trains for ever. A pure function of whole numbers, so a
    run that stores the count of images seen resumes at the same stage and alpha."""
    if last_stage == 0 or images < stable_images:
        return 0, 1.0
    period = fade_images + stable_images
    if period == 0:
        return last_stage, 1.0
    phase, within = divmod(images - stable_images, period)
    stage = 1 + phase
    if stage > last_stage:
        return last_stage, 1.0
    return stage, (within / fade_images if within < fade_images else 1.0)
