"""A 3-D GAN for porous media, after Mosser, Dubrule and Blunt (2017).

G maps a grid of latent vectors z (latent_dim, m, m, m), each N(0, I), to a volume
(1, m 2^k, m 2^k, m 2^k) of pore probabilities: a 3x3x3 convolution on the grid, then k stride-2
transposed 3-D convolutions (batch norm and ReLU between them), each doubling the side and
halving the width, the last one to the volume's channel, and a sigmoid. D mirrors it with
stride-2 3-D convolutions and LeakyReLU(0.2) down to a 4^3 map, then a linear score. Losses, spectral norm, moving average and the trainer's
step are the 2-D GAN's (:mod:`genlab.families.gan.model`).

G is fully convolutional, so a larger latent grid generates a larger volume than the training
cubes: ``generate_volume(size=192)`` on a model trained on 64^3 cubes (a 4^3 grid) uses a 12^3
grid. The paper starts from a single latent vector (1^3) that a 4x4x4 transposed convolution
spreads over a 4^3 map; a larger grid there sums up to 64 overlapping contributions per voxel,
which G never saw while training. Here training already uses a grid (one vector per 16^3 voxels
for k = 4), so every voxel of a larger volume is made the way the training voxels were.

D sees every cube, real or generated, through Gaussian noise of std ``instance_noise`` (instance
noise, Sonderby et al. 2017). Real cubes are binary and generated ones are not, so without it D
told them apart by their grey values alone: its loss fell to 0 within a few hundred steps, and G
answered by turning ever more voxels to grain, past the rock's porosity (exploratory runs on
32^3 cubes). Noise of std 0.5 hides the grey values: in the 90-minute runs of
``benchmarks/porous.py`` D's epoch-mean loss fell no lower than 0.21 (64^3 cubes) and 1.06 (32^3).
G's output stays soft at pore edges, though, which costs porosity when volumes are cut at 0.5
(docs/porous.md). ``instance_noise_steps`` anneals the noise linearly to 0 over that many steps
(Sonderby et al. anneal it too), so that late in training D sees the cubes as they are again and
asks G for sharp pore edges; 0 keeps it constant.

With ``symmetries`` each real cube D sees is turned by a random one of the cube's 48 symmetries
(rotations and reflections): a rock's statistics do not depend on the axes of the scan, so this
multiplies the training cubes by up to 48 without changing what G should learn.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
from torch import nn

from ...config import check_at_least
from ...data.batch import Batch
from ...errors import GenlabError
from ...memory import available_bytes
from ...models.base import Capabilities, NotSupported
from ..gan.model import GAN, GANConfig


def volume_stages(edge: int) -> tuple[int, int]:
    """(k, m): the stride-2 stages and the latent grid side for cubes of side ``edge`` = m 2^k,
    with a 4^3 grid when the edge allows it (8 -> (1, 4), 32 -> (3, 4), 64 -> (4, 4)), else
    the most stages that keep m at least 4."""
    k = 0
    while edge % 2 == 0 and edge // 2 >= 4:
        edge, k = edge // 2, k + 1
    return k, edge


def _whole(value, name: str, what: str) -> int:
    """``value`` as an int (any integer type), or one line naming the setting."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise GenlabError(f"{name} ({what}) must be a whole number, got {value!r}") from None


@dataclass
class PorousGANConfig(GANConfig):
    """Attributes (beyond :class:`~genlab.families.gan.model.GANConfig`):
        latent_dim: width of each latent vector of the grid.
        channels: width of G's stage nearest the volume, and of D's first stage; each stage
            further from the volume doubles it (the paper: 64 on a GPU). On one CPU thread, in
            bf16, 8 trained on about 22 cubes of 64^3 a second and 16 on about 13.
        symmetries: turn each real cube by a random one of the 48 symmetries of the cube.
        instance_noise: std of the Gaussian noise added to every cube D sees, real or generated.
        instance_noise_steps: the noise decays linearly from ``instance_noise`` at step 0 to 0 at
            this step, and stays 0 after it; 0 keeps it constant.
    """

    latent_dim: int = 16
    channels: int | tuple[int] = 8
    ema_decay: float = 0.0  # the rock's statistics were measured without the 2-D GANs' average
    symmetries: bool = True
    instance_noise: float = 0.5
    instance_noise_steps: int = 0
    image_shape: tuple[int, ...] = (1, 64, 64, 64)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, 0, "instance_noise", "instance_noise_steps")

    def check_shape(self) -> None:
        if self.spatial_dims != 3:
            raise GenlabError(f"the 3-D GAN needs volumes (1, D, H, W), got images of shape {self.image_shape}; "
                              "for 2-D images train dcgan, or, for sections of a porous medium, slicegan")
        c, d, h, w = self.image_shape
        if not d == h == w:
            raise GenlabError(f"the 3-D GAN trains on cubes, got {d}x{h}x{w}; cut cubes with `volume:PATH,edge=E`")
        k, m = volume_stages(d)
        if k == 0:
            raise GenlabError(f"the 3-D GAN needs a cube edge of 8 or more with a factor of 2, got {d}; "
                              "use an edge such as 32 or 64")
        if self.conditional:
            raise GenlabError("the 3-D GAN has no conditional form; drop `conditional`")


class VolumeGenerator(nn.Module):
    """Latent grids (N, latent_dim, m', m', m') -> volumes (N, C, m' 2^k, ...) in [0, 1], any m'.

    The last transposed convolution writes the volume's channels directly, as in the paper: a
    3x3x3 convolution to one channel after it cost more than the rest of G together on a CPU."""

    def __init__(self, channels_out: int, latent_dim: int, channels: int, stages: int):
        super().__init__()
        top = channels << (stages - 1)
        layers: list[nn.Module] = [nn.Conv3d(latent_dim, top, 3, padding=1), nn.BatchNorm3d(top), nn.ReLU()]
        for i in range(stages - 1):
            a = top >> i
            layers += [nn.ConvTranspose3d(a, a // 2, 4, stride=2, padding=1), nn.BatchNorm3d(a // 2), nn.ReLU()]
        layers += [nn.ConvTranspose3d(channels, channels_out, 4, stride=2, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        # Channels-last 3-D maps run the CPU's convolutions up to twice as fast (oneDNN).
        logits = self.body(z.contiguous(memory_format=torch.channels_last_3d)).contiguous()
        return torch.sigmoid(logits)


class VolumeDiscriminator(nn.Module):
    """Volumes (N, C, E, E, E) -> scores (N,), real high."""

    def __init__(self, image_shape: tuple[int, ...], channels: int, stages: int, spectral_norm: bool):
        super().__init__()
        c, edge = image_shape[0], image_shape[1]
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda layer: layer)
        layers: list[nn.Module] = [sn(nn.Conv3d(c, channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        for i in range(stages - 1):
            a = channels << i
            layers += [sn(nn.Conv3d(a, 2 * a, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        side = edge >> stages
        layers += [nn.Flatten(), sn(nn.Linear((channels << (stages - 1)) * side ** 3, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x.contiguous(memory_format=torch.channels_last_3d)).squeeze(1)


class PorousGAN(GAN):
    family = "porous"
    config_class = PorousGANConfig
    #: what `genlab train porous-gan` starts from: batches of 16 cubes, and a learning rate that
    #: decays to 0 (at 2e-4, G had not moved the porosity after 60 steps at 64^3); fp32, as the
    #: rock's statistics were measured (the 2-D GANs' bf16 is not measured on them); channels-last
    #: weights, without which D's convolutions of the one-channel cubes run NCDHW (oneDNN follows
    #: the weight when the input fits both layouts)
    train_defaults = {"lr": 5e-4, "batch_size": 16, "lr_schedule": "cosine", "channels_last": True}

    def build_networks(self, config: PorousGANConfig) -> tuple[nn.Module, nn.Module]:
        k, _ = volume_stages(config.image_shape[1])
        return (VolumeGenerator(config.image_shape[0], config.latent_dim, config.channels, k),
                VolumeDiscriminator(config.image_shape, config.channels, k, config.spectral_norm))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(decoder=True, prior=True, latent_space=True)  # no held-out loss, as the GAN's

    # ----------------------------------------------------------------- latent grids
    #: (upsampling stages k, latent grid side m) of G for a training edge
    stage_rule = staticmethod(volume_stages)

    @property
    def stages(self) -> int:
        return self.stage_rule(self.config.image_shape[1])[0]

    @property
    def grid_side(self) -> int:
        """m: the latent grid side of a training cube."""
        return self.stage_rule(self.config.image_shape[1])[1]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        m = self.grid_side
        return (self.config.latent_dim, m, m, m)

    @property
    def latent_dim(self) -> int:
        """The width of a flattened training grid: what the common tools (interpolation, the
        explorer) see as one code."""
        m = self.grid_side
        return self.config.latent_dim * m ** 3

    def grid_for(self, size: int, n: int = 1, count: str = "n") -> int:
        """The latent grid side for ``n`` volumes of about ``size`` voxels a side: an edge of
        m 2^k, the nearest one. Refuses a size below one latent vector's 2^k voxels, and volumes
        whose activations, latent grids and results would not fit in the memory left (``count``
        names the setting that gives ``n``)."""
        step = 2 ** self.stages
        size, n = _whole(size, "`size`", "voxels a side"), _whole(n, f"`{count}`", "the number of volumes")
        if size < step:
            raise GenlabError(f"the smallest volume this generator makes is {step}^3 voxels (its smallest latent "
                              f"grid); choose `size` of at least {step}, got {size}")
        if n < 1:
            raise GenlabError(f"`{count}` (the number of volumes) must be a whole number of at least 1, got {n}")
        edge = max(1, round(size / step)) * step
        m = self.grid_of(edge)
        need = self.generation_bytes(edge) + n * self.volume_bytes(edge)
        free = available_bytes()
        if free is not None and need > free:
            what = f"a {edge}^3 volume needs" if n == 1 else f"{n:,} volumes of {edge}^3 need"
            fix = "a smaller `size`" if n == 1 else f"a smaller `{count}` or `size`"
            raise GenlabError(f"{what} about {need / 2 ** 30:,.1f} GiB of memory to generate, "
                              f"more than the {free / 2 ** 30:.1f} GiB left; choose {fix}")
        return m

    def volume_bytes(self, edge: int) -> int:
        """About the memory each volume of a batch of ``edge``^3 voxels keeps until the batch is
        done: its latent grid and its result (float32)."""
        m = self.grid_of(edge)
        return 4 * (self.config.latent_dim * m ** 3 + self.config.image_shape[0] * edge ** 3)

    def generation_bytes(self, edge: int) -> int:
        """About the memory one volume of ``edge``^3 voxels takes to generate in float32: the
        two largest maps at a time (G's last hidden map and the volume), held by a layer's input
        and output, plus a third for the convolutions' work space."""
        hidden = self.config.channels * (edge // 2) ** 3
        volume = self.config.image_shape[0] * edge ** 3
        return int(3 * 4 * (hidden + volume))

    def edge_for(self, size: int) -> int:
        """The edge of the volume generated for ``size``: the nearest multiple of 2^k."""
        return self.edge_of(self.grid_for(size))

    def grid_of(self, edge: int) -> int:
        """The latent grid side that makes volumes of ``edge`` voxels (a multiple of 2^k)."""
        return edge >> self.stages

    def edge_of(self, grid: int) -> int:
        """The edge of the volumes a latent grid of side ``grid`` makes."""
        return grid << self.stages

    def latent_grid(self, n: int, size: int | None = None, generator: torch.Generator | None = None,
                    count: str = "n") -> torch.Tensor:
        """Standard normal latent grids (n, latent_dim, m, m, m) for volumes of about ``size``
        (default: the training edge), drawn on the CPU so a seed gives the same volumes everywhere;
        ``n`` volumes that would not fit in memory are refused first (``count`` names the setting)."""
        m = self.grid_for(self.config.image_shape[1] if size is None else size, n, count)
        return torch.randn(n, self.config.latent_dim, m, m, m, generator=generator).to(self.device)

    def prior_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.latent_grid(n, generator=generator).flatten(1)

    def check_latents(self, z: torch.Tensor) -> None:
        if z.ndim == 2 and z.shape[1] == self.latent_dim:
            return
        if z.ndim == 5 and z.shape[1] == self.config.latent_dim:
            return
        raise GenlabError(f"latent codes of shape {tuple(z.shape)} given to a 3-D GAN; expected flat codes "
                          f"(N, {self.latent_dim}) or grids (N, {self.config.latent_dim}, m, m, m)")

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Volumes (N, 1, E, E, E) in [0, 1] from flat codes (N, latent_dim) (training-size
        cubes) or latent grids (N, latent_dim, m, m, m) (E = m 2^k)."""
        self.check_latents(z)
        if labels is not None:
            raise GenlabError("the 3-D GAN takes no labels")
        if z.ndim == 2:
            z = z.reshape(len(z), *self.latent_shape)
        return self.network("generator")(z.to(self.device))

    @torch.no_grad()
    def generate_volume(self, size: int | None = None, n: int = 1, generator: torch.Generator | None = None,
                        batch_size: int = 1) -> torch.Tensor:
        """``n`` volumes (n, 1, E, E, E) of pore probability, E the nearest multiple of 2^k to
        ``size`` (default the training edge), made ``batch_size`` at a time on the model's device."""
        z = self.latent_grid(n, size, generator)
        parts = [self.decode(z[i:i + batch_size]).cpu() for i in range(0, n, batch_size)]
        return torch.cat(parts)

    def interpolate_classes(self, z, a, b, steps=8):
        raise NotSupported("the 3-D GAN has no classes to interpolate between")

    # ----------------------------------------------------------------- training
    def real_images(self, batch: Batch) -> torch.Tensor:
        x = batch.images
        if self.config.symmetries:
            from .volumes import CUBE_SYMMETRIES, cube_symmetry

            x = cube_symmetry(x, batch.randint(CUBE_SYMMETRIES))
        if self.config.instance_noise:
            x = x + self.noise_std(batch.scratch.get("step", 0)) * batch.randn(*x.shape[1:])
        return x

    def noise_std(self, step: int) -> float:
        """The std of the instance noise at ``step``: ``instance_noise``, decayed linearly to 0
        at ``instance_noise_steps`` when that is set."""
        std, steps = self.config.instance_noise, self.config.instance_noise_steps
        return std * max(0.0, 1.0 - step / steps) if steps else std

    def seen_by_discriminator(self, fake: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Generated cubes through the same instance noise as the real ones (one draw per step,
        shared by D's and G's objectives)."""
        if not self.config.instance_noise:
            return fake
        if "fake_noise" not in batch.scratch:
            batch.scratch["fake_noise"] = batch.randn(*fake.shape[1:])
        return fake + self.noise_std(batch.scratch.get("step", 0)) * batch.scratch["fake_noise"]

    def _discriminator_objective(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The 2-D GAN's D objective, logging also ``porosity``: the mean pore probability of
        the generated cubes (the training volume's porosity is where it should settle)."""
        batch.scratch["step"] = step   # the instance noise's std (noise_std), in D's and G's objectives
        value, terms = super()._discriminator_objective(batch, step)
        if self.config.instance_noise_steps:
            terms["instance_noise"] = torch.tensor(self.noise_std(step))
        if "fake" in batch.scratch:
            terms["porosity"] = batch.scratch["fake"].detach().float().mean()
        return value, terms

