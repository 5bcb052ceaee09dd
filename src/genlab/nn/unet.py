"""The image-to-image U-Net, and how networks that halve an image take any size (padding)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ACTIVATIONS, upsampler


def zero_last_layer(module: nn.Module) -> None:
    """Zero the weights and bias of the last convolution in ``module``: a fresh residual network
    outputs exactly 0, so the model starts as its baseline."""
    convs = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    nn.init.zeros_(convs[-1].weight)
    if convs[-1].bias is not None:
        nn.init.zeros_(convs[-1].bias)


def pad_to_multiple(x: torch.Tensor, levels: int) -> torch.Tensor:
    """``x`` (N, C, H, W) padded at the bottom and right (replicating the border) to sides that
    are multiples of 2^levels (itself when they are)."""
    h, w = x.shape[-2:]
    m = 2 ** levels
    return F.pad(x, (0, -w % m, 0, -h % m), mode="replicate") if h % m or w % m else x


def on_padded(net, x: torch.Tensor, levels: int) -> torch.Tensor:
    """``net`` on ``x`` padded by :func:`pad_to_multiple`, its output cropped back to H x W: how a
    network that halves the image ``levels`` times takes any size."""
    return net(pad_to_multiple(x, levels))[..., :x.shape[-2], :x.shape[-1]]


def adapt_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Images (N, C, H, W) brought to ``channels``: as they are, grey repeated, or the mean of
    the channels."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    return x.mean(1, keepdim=True).expand(-1, channels, -1, -1)


def _conv_block(a: int, b: int, activation: str) -> nn.Sequential:
    act = ACTIVATIONS[activation]
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), act(), nn.Conv2d(b, b, 3, padding=1), act())


class UNet(nn.Module):
    """(N, C, H, W) -> (N, C_out, H, W), H and W multiples of 2^(len(widths) - 1): a conv block
    per level, max-pooling between levels, ``upsample`` then a conv block on the concatenated skip
    going back up, and a 1x1 convolution out."""

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, ...], upsample: str,
                 activation: str):
        super().__init__()
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(_conv_block(previous, width, activation))
            previous = width
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for deep, shallow in zip(reversed(widths), list(reversed(widths))[1:]):
            self.ups.append(upsampler(upsample, deep, shallow))
            self.up_blocks.append(_conv_block(2 * shallow, shallow, activation))
        self.out = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, block in zip(self.ups, self.up_blocks):
            x = block(torch.cat([up(x), skips.pop()], dim=1))
        return self.out(x)
