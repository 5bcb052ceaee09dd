"""The PatchGAN discriminator (Isola et al. 2017) of the image-to-image tasks and CycleGAN."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import GenlabError


class PatchDiscriminator(nn.Module):
    """(N, C, H, W) -> scores (N, 1, h, w), one per overlapping patch, real high (the PatchGAN of
    Isola et al. 2017): 4x4 convolutions, ``layers`` of stride 2 (widths ``channels``, doubling,
    at most 8x), then one of stride 1 and a 1-channel one; instance norm after all but the first
    and the last (per image, so no batch statistics mix real and generated images), LeakyReLU(0.2).
    With 3 layers each score sees a 70x70 patch; with 2, 34x34; with 1, 16x16."""

    def __init__(self, in_channels: int, channels: int = 64, layers: int = 3):
        super().__init__()
        widths = [channels * min(2 ** i, 8) for i in range(layers + 1)]
        body: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            body += [nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1),
                     nn.InstanceNorm2d(widths[i], affine=True), nn.LeakyReLU(0.2)]
        body.append(nn.Conv2d(widths[-1], 1, 4, padding=1))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def patch_layers(h: int, w: int, layers: int | None = None) -> int:
    """The stride-2 layers of a :class:`PatchDiscriminator` for h x w images: ``layers`` checked,
    or by default the most, up to 3 (the 70x70 PatchGAN), that leave a map of at least 4x4."""
    fits = [n for n in (1, 2, 3) if min(h, w) >> n >= 4]
    if not fits:
        raise GenlabError(f"a PatchGAN needs images of at least 8x8, got {h}x{w}")
    if layers is None:
        return fits[-1]
    if min(h, w) >> layers < 4:
        raise GenlabError(f"`d_layers` {layers} halves {h}x{w} images below 4x4; choose at most {fits[-1]}")
    return layers
