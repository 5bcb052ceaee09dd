"""SliceGAN: 3-D volumes learnt from 2-D images, after Kench and Cooper, "Generating
three-dimensional structures from a two-dimensional slice with generative adversarial network-based
dimensionality expansion", Nature Machine Intelligence 3, 299 (2021).

The 3-D GAN's generator (a latent grid to a volume) is judged by 2-D critics: every generated
volume (N, 1, E, E, E) is cut into its E slices across each axis, each axis's slices a batch of
2-D images (N E, 1, E, E) (:func:`volume_slices`), and a critic scores them against 2-D patches
of the training images (``image:`` data, :mod:`.sections`). One image (an isotropic medium): one
critic for the three axes. Three images (anisotropic): one critic per axis, each against its own
image. The losses are summed over the axes; WGAN-GP by default (the critic's gradient penalty on
points between a real patch and one generated slice per volume and axis), 5 critic steps per
generator step, Adam (0.9, 0.99), learning rate 1e-4, as the paper.

The generator is SliceGAN's: transposed 3-D convolutions only, kernel 4 and stride 2, padding 2
(3 in the last), batch norm and ReLU between them, a sigmoid at the end. Kernel, stride and
padding obey the paper's rule of uniform information density: a stride smaller than the kernel
and dividing it (k mod s = 0: every voxel of the full output is reached by k/s input voxels
along each axis, no checkerboard), and a padding of at least k - s (the outermost k - s voxels
at each end, which fewer inputs reach, are cut off). So each voxel of a volume, at its centre
or near its faces, is made the same way, and a larger latent grid makes a larger volume without
artefacts at the edges of the training volumes' size. With L layers, a latent grid of side m
makes volumes of side 2^L (m - 2): each layer maps a side s to 2s - 2 (2s - 4 for the last).
Training uses m = 4 where the edge allows it (64 = 2^5 x 2, five layers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...data.augment import augment
from ...data.batch import Batch
from ...errors import GenlabError
from ...nn.adversarial import Discriminator, _gradient_norm2, discriminator_loss, frozen, generator_loss
from .model import PorousGAN, PorousGANConfig

#: kernel, stride and padding of the generator's transposed convolutions (the last pads 3)
KERNEL, STRIDE, PADDING = 4, 2, 2
assert KERNEL % STRIDE == 0 and PADDING >= KERNEL - STRIDE  # uniform information density


def slice_stages(edge: int) -> tuple[int, int]:
    """(L, m): the generator's layers and the latent grid side for training volumes of side
    ``edge`` = 2^L (m - 2): the most layers that leave m - 2 a whole number of at least 2
    (64 -> (5, 4), 32 -> (4, 4), 48 -> (4, 5))."""
    layers = 0
    while edge % 2 == 0 and edge // 2 >= 2:
        edge, layers = edge // 2, layers + 1
    return layers, edge + 2


def volume_slices(volumes: torch.Tensor, axis: int) -> torch.Tensor:
    """The slices of volumes (N, C, D, H, W) across spatial ``axis`` (0, 1, 2) as one batch of
    2-D images: (N D, C, H, W), (N H, C, D, W) or (N W, C, D, H). Slice j of volume i is image
    i * side + j, and is ``volumes[i, :, j]``, ``volumes[i, :, :, j]`` or ``volumes[i, :, :, :, j]``."""
    others = [2 + a for a in range(3) if a != axis]
    cut = volumes.permute(0, 2 + axis, 1, *others)
    return cut.reshape(-1, *cut.shape[2:])


@dataclass
class SliceGANConfig(PorousGANConfig):
    """Attributes (beyond :class:`~genlab.families.porous.model.PorousGANConfig`):
        image_shape: the training volumes G makes, (1, E, E, E). Given the training patches'
            shape (C, E, E), as the trainer describes ``image:`` data, it becomes (1, E, E, E)
            with ``slice_images`` = C.
        slice_images: the training images: 1 (an isotropic medium, one critic for every axis)
            or 3 (one per axis of an anisotropic medium, a critic each).
        symmetries: turn each real patch by a random one of the 8 symmetries of the square (one
            image), or flip it (three images: a transposition would swap the medium's axes).
        instance_noise: 0: SliceGAN's critics see the volumes as they are.
    """

    latent_dim: int = 32
    loss: Literal["non-saturating", "hinge", "wgan-gp", "least-squares"] = "wgan-gp"
    spectral_norm: bool = False
    n_critic: int = 5
    betas: tuple[float, float] = (0.9, 0.99)
    instance_noise: float = 0.0
    slice_images: int = 1

    def __post_init__(self) -> None:
        shape = tuple(self.image_shape)
        if len(shape) == 3:
            c, h, w = shape
            if h != w:
                raise GenlabError(f"SliceGAN trains on square patches, got images of {h}x{w}; "
                                  f"train on `--data image:SECTION.png,edge=E`")
            self.slice_images, self.image_shape = c, (1, h, h, h)
        super().__post_init__()

    def check_shape(self) -> None:
        if self.slice_images not in (1, 3):
            raise GenlabError(f"SliceGAN learns from one image (isotropic) or three (one per axis), got "
                              f"{self.slice_images}; give `image:SECTION.png` or `image:X.png,Y.png,Z.png`")
        if self.spatial_dims != 3 or self.image_shape[0] != 1 or len(set(self.image_shape[1:])) != 1:
            raise GenlabError(f"SliceGAN makes one-channel cubes (1, E, E, E), got {self.image_shape}; "
                              f"train on `--data image:SECTION.png,edge=E`")
        edge = self.image_shape[1]
        if edge < 8 or slice_stages(edge)[0] < 2:
            raise GenlabError(f"SliceGAN needs a patch edge of 8 or more with a factor of 4, got {edge}; "
                              f"use an edge such as 32 or 64 (`image:...,edge=64`)")
        if self.instance_noise:
            raise GenlabError("SliceGAN's critics see the volumes as they are; drop `instance_noise`")
        if self.r1_gamma:
            raise GenlabError("SliceGAN's critics have no R1 penalty; drop `r1_gamma` (wgan-gp has its own)")
        if self.conditional:
            raise GenlabError("SliceGAN has no conditional form; drop `conditional`")


class SliceGenerator(nn.Module):
    """Latent grids (N, latent_dim, m, m, m) -> volumes (N, 1, 2^L (m - 2), ...) in [0, 1]."""

    def __init__(self, latent_dim: int, channels: int, layers: int):
        super().__init__()
        widths = [latent_dim] + [channels << (layers - 2 - i) for i in range(layers - 1)] + [1]
        body: list[nn.Module] = []
        for i in range(layers):
            last = i == layers - 1
            body.append(nn.ConvTranspose3d(widths[i], widths[i + 1], KERNEL, STRIDE, PADDING + last))
            if not last:
                body += [nn.BatchNorm3d(widths[i + 1]), nn.ReLU()]
        self.body = nn.Sequential(*body)

    def forward(self, z: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.body(z.contiguous(memory_format=torch.channels_last_3d)).contiguous())


class SliceGAN(PorousGAN):
    config_class = SliceGANConfig
    stage_rule = staticmethod(slice_stages)
    #: the paper's learning rate (both networks) and a batch of 8 volumes against 8 patches of
    #: each image; channels-last weights as the 3-D GAN's
    train_defaults = {"lr": 1e-4, "batch_size": 8, "channels_last": True}

    def build_networks(self, config: SliceGANConfig) -> tuple[nn.Module, nn.Module]:
        layers, _ = slice_stages(config.image_shape[1])
        patch = (1, config.image_shape[1], config.image_shape[1])
        critics = nn.ModuleList(Discriminator(patch, config.channels, config.spectral_norm)
                                for _ in range(config.slice_images))
        return SliceGenerator(config.latent_dim, config.channels, layers), critics

    # ----------------------------------------------------------------- latent grids
    def grid_of(self, edge: int) -> int:
        return (edge >> self.stages) + 2

    def edge_of(self, grid: int) -> int:
        return (grid - 2) << self.stages

    # ----------------------------------------------------------------- training
    def check_images(self, x: torch.Tensor) -> None:
        c, e = self.config.slice_images, self.config.image_shape[1]
        if tuple(x.shape[1:]) != (c, e, e):
            raise GenlabError(f"images of shape {tuple(x.shape[1:])} given to a SliceGAN built for patches "
                              f"{(c, e, e)} of {c} image(s); train it on `--data image:...,edge={e}`")

    def real_images(self, batch: Batch) -> torch.Tensor:
        """The batch's patches (N, C, E, E), turned or flipped (``symmetries``) with the step's draws."""
        if not self.config.symmetries:
            return batch.images
        kinds = ("dihedral",) if self.config.slice_images == 1 else ("hflip", "vflip")
        return augment(batch.images, kinds, batch.rand(4))

    def critic(self, axis: int) -> nn.Module:
        """The critic of the slices across ``axis``: the one critic of an isotropic medium."""
        return self.discriminator[axis if self.config.slice_images == 3 else 0]

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critics' objective on real patches and fresh volumes' slices, summed over the three
        axes (the volumes left in ``batch.scratch`` when G steps after it), or G's on those
        volumes. Logs ``d_loss``, ``g_loss``, ``gp`` (wgan-gp), ``d_real`` and ``d_fake`` (mean
        scores over the axes), ``porosity`` (the volumes' mean pore probability) and ``loss``."""
        cfg = self.config
        if name == "generator":
            fake = batch.scratch.pop("fake")
            with frozen(self.discriminator):
                g_loss = sum(generator_loss(cfg.loss, self.critic(a)(volume_slices(fake, a))) for a in range(3))
            return g_loss, {"g_loss": g_loss.detach(), "loss": g_loss.detach()}
        real = self.real_images(batch)
        z = batch.randn(*self.latent_shape)
        update_g = "generator" in self.update_order(step)
        with torch.set_grad_enabled(update_g):
            fake = self.network("generator")(z)
        if update_g:
            batch.scratch["fake"] = fake
        fake = fake.detach()
        n, edge = len(fake), fake.shape[-1]
        chosen = batch.randint(edge, 3)        # the slice of each volume and axis in the penalty
        eps = batch.rand(3)
        d_loss, g_loss = 0.0, 0.0
        terms = {"d_real": 0.0, "d_fake": 0.0, "gp": 0.0}
        for a in range(3):
            critic = self.critic(a)
            x = real[:, a:a + 1] if cfg.slice_images == 3 else real
            slices = volume_slices(fake, a)
            scores = critic(torch.cat([x, slices]))
            s_real, s_fake = scores[:n], scores[n:]
            d_loss = d_loss + discriminator_loss(cfg.loss, s_real, s_fake)
            g_loss = g_loss + generator_loss(cfg.loss, s_fake)
            terms["d_real"] += s_real.mean() / 3
            terms["d_fake"] += s_fake.mean() / 3
            if cfg.loss == "wgan-gp":
                one = slices.reshape(n, edge, *slices.shape[1:])[torch.arange(n), chosen[:, a]]
                w = eps[:, a].view(n, 1, 1, 1)
                mixed = (w * x + (1 - w) * one).requires_grad_(True)
                gp = (_gradient_norm2(critic(mixed), mixed).sqrt() - 1).pow(2).mean()
                d_loss = d_loss + cfg.gp_lambda * gp
                terms["gp"] += gp / 3
        if cfg.loss != "wgan-gp":
            del terms["gp"]
        terms.update(d_loss=d_loss, g_loss=g_loss, porosity=fake.float().mean())
        terms = {k: v.detach() for k, v in terms.items()}
        terms["loss"] = terms["g_loss"]
        return d_loss, terms
