"""Encoders and decoders shared by the autoencoder and VAE families.

``NetworkConfig`` holds the architecture fields; :func:`build_encoder` and :func:`build_decoder`
turn it into modules. Encoders map images (N, C, H, W) to features (N, out_features); decoders map
codes (N, in_features) to logits (N, C, H, W), which models pass through a sigmoid for images in
[0, 1]. Class conditioning enters as ``extra`` features (one-hot labels) concatenated to the
flattened image (dense) or to the flattened feature map (conv) and to the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import GenlabError
from ..config import ModelConfig, check_at_least, require_planar

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "leaky_relu": lambda: nn.LeakyReLU(0.2),
               "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
UPSAMPLERS = ("transposed", "resize-conv", "pixel-shuffle")


@dataclass
class NetworkConfig(ModelConfig):
    """Architecture of a dense or convolutional encoder/decoder pair.

    Attributes:
        arch: ``"dense"`` (an MLP on flattened pixels), ``"conv"``, or ``"resnet"`` (the conv stages
            with ``blocks_per_stage`` residual blocks each, pre-activation, the last convolution of
            each block initialised to zero so a fresh block is the identity; ``norm`` applies inside
            the blocks).
        latent_dim: width of the code.
        hidden: hidden widths of the dense encoder; the decoder mirrors them. The default is the
            784-1000-500-250-code shape of Hinton and Salakhutdinov (2006).
        channels: channels of the conv encoder's stride-2 stages (each halves H and W); the
            decoder mirrors them.
        blocks_per_stage: extra 3x3 stride-1 convolutions after each stage (more depth, same size).
        norm: ``"batch"`` or ``"none"``, after each hidden layer.
        activation: one of relu, silu, leaky_relu, gelu, tanh, sigmoid.
        upsample: how the conv decoder doubles resolution: ``transposed`` (ConvTranspose2d, k4 s2),
            ``resize-conv`` (nearest upsampling then a 3x3 conv: no checkerboard artifacts), or
            ``pixel-shuffle`` (a 3x3 conv to 4x channels, then depth-to-space).
    """

    arch: Literal["dense", "conv", "resnet"] = "conv"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (1000, 500, 250)
    channels: tuple[int, ...] = (32, 64)
    blocks_per_stage: int = 0
    norm: str = "batch"
    activation: Literal["relu", "silu", "leaky_relu", "gelu", "tanh", "sigmoid"] = "relu"
    upsample: Literal["transposed", "resize-conv", "pixel-shuffle"] = "transposed"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, 1, "hidden", "channels")
        if self.arch not in ("dense", "conv", "resnet"):
            raise GenlabError(f"unknown arch '{self.arch}'; choose 'dense', 'conv' or 'resnet'")
        if self.activation not in ACTIVATIONS:
            raise GenlabError(f"unknown activation '{self.activation}'; choose one of: {', '.join(ACTIVATIONS)}")
        if self.upsample not in UPSAMPLERS:
            raise GenlabError(f"unknown upsample '{self.upsample}'; choose one of: {', '.join(UPSAMPLERS)}")
        if self.norm not in ("batch", "none"):
            raise GenlabError(f"unknown norm '{self.norm}'; choose 'batch' or 'none'")
        if self.latent_dim < 1:
            raise GenlabError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if self.blocks_per_stage < 0:
            raise GenlabError(f"blocks_per_stage must be 0 or more, got {self.blocks_per_stage}")
        if self.arch in ("conv", "resnet"):
            factor = 2 ** len(self.channels)
            _, h, w = require_planar(self, f"arch '{self.arch}'")
            if h % factor or w % factor:
                raise GenlabError(
                    f"a conv model with {len(self.channels)} stride-2 stages needs image sides "
                    f"divisible by {factor}, got {h}x{w}; use fewer --channels or arch 'dense'"
                )


def _act(cfg: NetworkConfig) -> nn.Module:
    return ACTIVATIONS[cfg.activation]()


def _norm1d(cfg: NetworkConfig, width: int) -> nn.Module:
    return nn.BatchNorm1d(width) if cfg.norm == "batch" else nn.Identity()


def _norm2d(cfg: NetworkConfig, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if cfg.norm == "batch" else nn.Identity()


def _mlp(cfg: NetworkConfig, widths: list[int]) -> nn.Sequential:
    """Linear layers between consecutive widths; norm and activation after all but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [_norm1d(cfg, b), _act(cfg)]
    return nn.Sequential(*layers)


def _refine(cfg: NetworkConfig, channels: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for _ in range(cfg.blocks_per_stage):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), _norm2d(cfg, channels), _act(cfg)]
    return layers


def upsampler(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """A layer that doubles H and W: ``transposed``, ``resize-conv`` or ``pixel-shuffle``."""
    if kind == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
    if kind == "resize-conv":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(in_channels, out_channels, 3, padding=1))
    if kind == "pixel-shuffle":
        return nn.Sequential(nn.Conv2d(in_channels, out_channels * 4, 3, padding=1), nn.PixelShuffle(2))
    raise GenlabError(f"unknown upsample '{kind}'; choose one of: {', '.join(UPSAMPLERS)}")


class ResidualBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))), 3x3 convolutions, same channels and size.

    The second convolution starts at zero, so a fresh block is the identity and a deep stack
    trains as stably as a shallow one without normalisation (``norm="none"``)."""

    def __init__(self, cfg: NetworkConfig, channels: int):
        super().__init__()
        last = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.branch = nn.Sequential(_norm2d(cfg, channels), _act(cfg), nn.Conv2d(channels, channels, 3, padding=1),
                                    _norm2d(cfg, channels), _act(cfg), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def _residual(cfg: NetworkConfig, channels: int) -> list[nn.Module]:
    return [ResidualBlock(cfg, channels) for _ in range(cfg.blocks_per_stage)]


def _resnet_encoder_features(cfg: NetworkConfig) -> nn.Sequential:
    """Stride-2 4x4 convolutions between stages, residual blocks within them."""
    layers: list[nn.Module] = []
    previous = cfg.image_shape[0]
    for ch in cfg.channels:
        layers.append(nn.Conv2d(previous, ch, 4, stride=2, padding=1))
        layers += _residual(cfg, ch)
        previous = ch
    layers += [_act(cfg), nn.Flatten()]
    return nn.Sequential(*layers)


def _resnet_decoder_body(cfg: NetworkConfig, n_in: int) -> nn.Sequential:
    """The mirror of :func:`_resnet_encoder_features`: a linear map to the smallest feature map,
    then residual blocks and an upsampler per stage."""
    c, h, w = cfg.image_shape
    factor = 2 ** len(cfg.channels)
    widths = list(reversed(cfg.channels))
    layers: list[nn.Module] = [nn.Linear(n_in, widths[0] * (h // factor) * (w // factor)),
                               nn.Unflatten(1, (widths[0], h // factor, w // factor))]
    for a, b in zip(widths, widths[1:] + [c]):
        layers += _residual(cfg, a)
        layers += [_act(cfg), upsampler(cfg.upsample, a, b)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Images (N, C, H, W) [+ extra (N, E)] -> features (N, out_features); the dense arch takes
    any (N, C, *spatial)."""

    def __init__(self, cfg: NetworkConfig, out_features: int, extra_features: int = 0):
        super().__init__()
        if cfg.arch == "dense":
            self.features = nn.Flatten()
            self.head = _mlp(cfg, [cfg.num_pixels + extra_features, *cfg.hidden, out_features])
            return
        c, h, w = cfg.image_shape
        if cfg.arch == "resnet":
            self.features = _resnet_encoder_features(cfg)
            factor = 2 ** len(cfg.channels)
            self.head = nn.Linear(cfg.channels[-1] * (h // factor) * (w // factor) + extra_features, out_features)
            return
        layers: list[nn.Module] = []
        previous = c
        for ch in cfg.channels:
            layers += [nn.Conv2d(previous, ch, 4, stride=2, padding=1), _norm2d(cfg, ch), _act(cfg)]
            layers += _refine(cfg, ch)
            previous = ch
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        factor = 2 ** len(cfg.channels)
        flat = previous * (h // factor) * (w // factor)
        self.head = nn.Linear(flat + extra_features, out_features)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        if extra is not None:
            h = torch.cat([h, extra], dim=1)
        return self.head(h)


class Decoder(nn.Module):
    """Codes (N, in_features) [+ extra (N, E)] -> logits (N, C, H, W); the dense arch gives any
    (N, C, *spatial)."""

    def __init__(self, cfg: NetworkConfig, in_features: int, extra_features: int = 0):
        super().__init__()
        self.image_shape = tuple(cfg.image_shape)
        n_in = in_features + extra_features
        if cfg.arch == "dense":
            self.body = nn.Sequential(_mlp(cfg, [n_in, *reversed(cfg.hidden), cfg.num_pixels]))
            return
        c, h, w = cfg.image_shape
        if cfg.arch == "resnet":
            self.body = _resnet_decoder_body(cfg, n_in)
            return
        factor = 2 ** len(cfg.channels)
        top = cfg.channels[-1]
        layers: list[nn.Module] = [
            nn.Linear(n_in, top * (h // factor) * (w // factor)), _act(cfg),
            nn.Unflatten(1, (top, h // factor, w // factor)),
        ]
        widths = list(reversed(cfg.channels))
        for a, b in zip(widths[:-1], widths[1:]):
            layers += _refine(cfg, a)
            layers += [upsampler(cfg.upsample, a, b), _norm2d(cfg, b), _act(cfg)]
        layers += _refine(cfg, widths[-1])
        layers.append(upsampler(cfg.upsample, widths[-1], c))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if extra is not None:
            z = torch.cat([z, extra], dim=1)
        return self.body(z).reshape(-1, *self.image_shape)
