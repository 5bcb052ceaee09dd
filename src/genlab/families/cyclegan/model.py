"""Unpaired translation between two image domains: CycleGAN (Zhu et al. 2017), the ``cyclegan`` family.

Two generators, G_ab from domain A (the training data) to domain B (``domain_b``, another dataset)
and G_ba back, and two PatchGAN discriminators, D_a and D_b
(:class:`~genlab.nn.patchgan.PatchDiscriminator`), learn from batches of A and B images that
are not pairs (:func:`genlab.data.unpaired` puts B's images in each batch's ``condition``). Each
training step has two objectives (three with the semantic term):

- ``generators`` (both at once): the least-squares adversarial terms (D_b(G_ab(a)) - 1)^2 and
  (D_a(G_ba(b)) - 1)^2 (mean over D's patch scores), plus ``cycle_weight`` (lambda = 10) times the
  cycle-consistency error |G_ba(G_ab(a)) - a| + |G_ab(G_ba(b)) - b| (L1, mean per pixel), plus
  ``identity_weight`` * lambda times the identity error |G_ab(b) - b| + |G_ba(a) - a|, which keeps
  colours where a domain's image is already right (0.5 in the paper; only between domains of the
  same channel count, since G_ab cannot take a B image otherwise).
- with ``semantic_weight`` above 0, CyCADA's semantic consistency (Hoffman et al. 2018): the
  generators are asked to make images that a classifier of domain A reads as the class of their
  source, with two classifiers held fixed: f_a (``classifier_a``) learns A's labels from A's
  images, f_b (``classifier_b``) from their translations G_ab(a), so that it reads B. The term is
  the cross-entropy of f_a(G_ab(a)) against a's label plus that of f_a(G_ba(b)) against f_b's
  reading of b (a pseudo-label); both classifiers learn in a third objective of the step,
  ``classifiers``. Only A needs labels. (One classifier trained on both domains, tried first,
  did not help: G_ba could satisfy it without making A-like images.)
- ``discriminators`` (both at once): (D(real) - 1)^2 + D(fake)^2 for each, halved, on generated
  images drawn from a history pool (``pool_size`` 50 per domain, Shrivastava et al. 2017): once
  full, each new image replaces a random stored one half the time, and D sees the stored one
  instead. The pools are buffers, so a checkpoint keeps them and a resumed run goes on as if
  uninterrupted.

Generators (``generator``): ``unet`` (the U-Net of the image-to-image family; widths ``channels``)
or ``resnet`` (Johnson et al. 2016, CycleGAN's: a 7x7 convolution, stride-2 convolutions to the
widths ``channels``, ``blocks`` residual blocks, transposed convolutions back, a 7x7 convolution
out; instance norm and reflection padding). With ``residual`` (the default) each generator
predicts a correction of its input brought to the other domain's channels (a grey image repeated
to RGB, an RGB one averaged), and its last layer starts at zero, so a fresh model is that identity
map and training moves away from it only as far as the losses ask; this keeps the content (which
digit) from the first step. Training defaults follow the paper: Adam (0.5, 0.999) at 2e-4, the
learning rate constant for the first half of the run and decaying linearly to 0 in the second
(``lr_schedule`` ``linear-decay``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...config import check_at_least
from ...data.batch import Batch
from ...errors import GenlabError
from ...models.base import Capabilities, GenerativeModel, ModelConfig, OptimizerGroup, require_planar
from ...nn.adversarial import discriminator_loss, frozen, generator_loss
from ...nn.unet import UNet, zero_last_layer, adapt_channels, on_padded
from ...nn.patchgan import PatchDiscriminator, patch_layers

GENERATORS = ("unet", "resnet")
DIRECTIONS = ("a-to-b", "b-to-a")


@dataclass
class CycleGANConfig(ModelConfig):
    """Attributes (beyond :class:`ModelConfig`, whose ``image_shape`` is domain A's):
        domain_b: the dataset of domain B (a registry name, ``folder:PATH`` or ``npz:PATH``).
        condition_shape: (C, H, W) of B's images (from the data); H and W must be A's.
        generator: ``unet`` (default) or ``resnet``.
        channels: the generators' widths: one per U-Net level, or the ResNet's widths from the
            first convolution down (default (32, 64, 128) for either).
        blocks: residual blocks of the ResNet generator.
        d_channels, d_layers: the PatchGANs' first width and stride-2 layers (default: 3, or
            fewer on images under 64 pixels a side).
        cycle_weight: lambda, the weight of the cycle-consistency error.
        cycle_weight_b: the weight of B's round trip (B -> A -> B) alone, when it should differ
            from A's (default: ``cycle_weight``); see the module's description.
        identity_weight: the identity error's weight, as a fraction of lambda (default 0.5
            between domains of the same channel count, else 0).
        pool_size: generated images kept per domain for D (0: D sees only the newest).
        residual: each generator corrects its input brought to the other domain's channels.
        semantic_weight: the weight of the semantic-consistency term (0: none); needs labels for
            domain A (the data). See the module's description.
    """

    domain_b: str | None = None
    condition_shape: tuple[int, ...] | None = None
    generator: Literal["unet", "resnet"] = "unet"
    channels: tuple[int, ...] = (32, 64, 128)
    blocks: int = 6
    d_channels: int = 64
    d_layers: int | None = None
    cycle_weight: float = 10.0
    cycle_weight_b: float | None = None
    identity_weight: float | None = None
    pool_size: int = 50
    residual: bool = True
    semantic_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        c, h, w = require_planar(self, "CycleGAN")
        if not self.domain_b:
            raise GenlabError("CycleGAN translates between two datasets; name the second with `domain_b` "
                              "(genlab train cyclegan --data mnist --domain-b mnist-m)")
        self.domain_b = _absolute(self.domain_b)
        if self.condition_shape is None:
            raise GenlabError(f"CycleGAN needs the image shape of domain B ({self.domain_b}); train it with "
                              "genlab.train or `genlab train`, which read it from the data")
        self.condition_shape = tuple(self.condition_shape)
        if len(self.condition_shape) != 3 or tuple(self.condition_shape[1:]) != (h, w):
            raise GenlabError(f"CycleGAN's domains must have images of the same size; A is {c}x{h}x{w}, "
                              f"B ({self.domain_b}) is {'x'.join(map(str, self.condition_shape))}")
        if self.generator not in GENERATORS:
            raise GenlabError(f"unknown generator '{self.generator}'; choose one of: {', '.join(GENERATORS)}")
        self.channels = tuple(int(v) for v in self.channels)
        if not self.channels:
            raise GenlabError("`channels` needs at least one width")
        check_at_least(self, 1, "channels", "d_channels")
        if self.cycle_weight_b is None:
            self.cycle_weight_b = self.cycle_weight
        check_at_least(self, 0, "blocks", "cycle_weight", "cycle_weight_b", "pool_size", "semantic_weight")
        if self.semantic_weight > 0 and not self.num_classes:
            raise GenlabError("`semantic_weight` keeps the class of each image through the translation, so it needs "
                              "labels for domain A (the data); this data has none: set `semantic_weight=0`")
        same = self.condition_shape[0] == c
        if self.identity_weight is None:
            self.identity_weight = 0.5 if same else 0.0
        check_at_least(self, 0, "identity_weight")
        if self.identity_weight > 0 and not same:
            raise GenlabError(f"the identity term feeds each generator an image of its own output domain, so it "
                              f"needs domains of one channel count; A has {c}, B ({self.domain_b}) "
                              f"{self.condition_shape[0]}: set `identity_weight=0`")
        if min(h, w) < 2 ** self.levels:
            raise GenlabError(f"`channels` {list(self.channels)} halve the image {self.levels} times, which needs "
                              f"sides of at least {2 ** self.levels}; these images are {h}x{w}")
        if self.d_layers is not None:
            check_at_least(self, 1, "d_layers")
        self.d_layers = patch_layers(h, w, self.d_layers)


    @property
    def levels(self) -> int:
        """How many times the generators halve the image."""
        return len(self.channels) - 1


class ResnetGenerator(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H, W): 7x7 conv, stride-2 convs through ``widths``,
    ``blocks`` residual blocks, transposed convs back, 7x7 conv out (Johnson et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, ...], blocks: int):
        super().__init__()

        def norm_act(ch):
            return [nn.InstanceNorm2d(ch, affine=True), nn.ReLU()]

        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, widths[0], 7), *norm_act(widths[0])]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), *norm_act(b)]
        layers += [_ResnetBlock(widths[-1]) for _ in range(blocks)]
        for a, b in zip(reversed(widths), list(reversed(widths))[1:]):
            layers += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), *norm_act(b)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(widths[0], out_channels, 7)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _ResnetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.branch = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                    nn.InstanceNorm2d(channels, affine=True), nn.ReLU(),
                                    nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                    nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class HistoryPool(nn.Module):
    """The last generated images D trains on (Shrivastava et al. 2017), as buffers: ``images``
    (size, C, H, W) and how many are ``filled``."""

    def __init__(self, size: int, image_shape: tuple[int, ...]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def exchange(self, fakes: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The images D sees for ``fakes`` (N, C, H, W): while the pool fills, the fakes
        themselves (stored); then for each, with probability 1/2, a random stored image, which
        the fake replaces. The draws are the batch's."""
        if self.size == 0:
            return fakes
        coin, slot = batch.rand(), batch.randint(self.size)
        out = fakes.clone()
        for i in range(len(fakes)):
            if int(self.filled) < self.size:
                self.images[int(self.filled)] = fakes[i].to(self.images.dtype)
                self.filled += 1
            elif coin[i] < 0.5:
                j = int(slot[i])
                out[i] = self.images[j].to(out.dtype)
                self.images[j] = fakes[i].to(self.images.dtype)
        return out


class CycleGAN(GenerativeModel):
    """Unpaired translation between domain A (the data) and domain B (``domain_b``); see the module's description."""

    family = "cyclegan"
    config_class = CycleGANConfig
    train_defaults = {"epochs": 20, "lr": 2e-4, "batch_size": 16, "lr_schedule": "linear-decay"}

    def __init__(self, config: CycleGANConfig, name: str | None = None):
        super().__init__(config, name)
        ca, cb = config.image_shape[0], config.condition_shape[0]
        self.gen_ab, self.gen_ba = self._generator(ca, cb), self._generator(cb, ca)
        self.disc_a = PatchDiscriminator(ca, config.d_channels, config.d_layers)
        self.disc_b = PatchDiscriminator(cb, config.d_channels, config.d_layers)
        self.pool_a = HistoryPool(config.pool_size, config.image_shape)
        self.pool_b = HistoryPool(config.pool_size, config.condition_shape)
        self.keep_average("gen_ab", "gen_ba")
        if config.semantic_weight > 0:
            from ...metrics.features import Classifier

            self.classifier_a = Classifier(config.image_shape, config.num_classes)
            self.classifier_b = Classifier(config.condition_shape, config.num_classes)

    def _generator(self, a: int, b: int) -> nn.Module:
        cfg = self.config
        net = (UNet(a, b, cfg.channels, "transposed", "relu") if cfg.generator == "unet"
               else ResnetGenerator(a, b, cfg.channels, cfg.blocks))
        if cfg.residual:
            zero_last_layer(net)
        return net

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(condition_image=True, domain_transfer=True, held_out_loss=True, preview=True)

    # ----------------------------------------------------------------- what the tools ask
    @property
    def min_condition_side(self) -> int:
        """The smallest image side the generators take."""
        return 2 ** self.config.levels

    @property
    def baseline_name(self) -> str:
        return "the source image itself"

    def check_condition(self, x: torch.Tensor, direction: str = "a-to-b") -> None:
        """A clear error for images the generator of ``direction`` cannot take."""
        c = self.config.image_shape[0] if direction == "a-to-b" else self.config.condition_shape[0]
        domain = "A" if direction == "a-to-b" else f"B ({self.config.domain_b})"
        if x.ndim != 4 or x.shape[1] != c:
            raise GenlabError(f"images of shape {tuple(x.shape[1:])} given to a CycleGAN whose domain {domain} has "
                              f"{c}-channel images")
        side = self.min_condition_side
        if min(x.shape[-2:]) < side:
            raise GenlabError(f"this CycleGAN's generators halve the image {self.config.levels} times, so image "
                              f"sides must be at least {side}; got {x.shape[-2]}x{x.shape[-1]}")

    # ----------------------------------------------------------------- image files (genlab translate)
    def _direction(self, direction: str | None) -> str:
        direction = direction or "a-to-b"
        if direction not in DIRECTIONS:
            raise GenlabError(f"unknown direction '{direction}'; choose one of: {', '.join(DIRECTIONS)}")
        return direction

    def result_suffix(self, direction: str | None = None) -> str:
        """What ends the name of a translated file: the direction (``a-to-b`` by default)."""
        return self._direction(direction)

    def result_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the output for an input of that size: the same."""
        return height, width

    def condition_from_image(self, image, name: str = "the image", direction: str | None = None
                             ) -> tuple[torch.Tensor, None]:
        """A PIL ``image`` (a file or upload called ``name``) as the input of ``direction`` (an
        image of domain A for ``a-to-b``, the default; of B for ``b-to-a``), taken as it is; one
        clear line naming ``name`` for an image the generator cannot take."""
        from ...image_files import image_tensor

        direction = self._direction(direction)
        channels = self.config.image_shape[0] if direction == "a-to-b" else self.config.condition_shape[0]
        x = image_tensor(image, channels, name)
        side, (h, w) = self.min_condition_side, x.shape[-2:]
        if min(h, w) < side:
            raise GenlabError(f"{name} is {w}x{h}, too small for this {self.name} model: its network halves the image "
                              f"{self.config.levels} times and needs sides of at least {side} pixels")
        return x, None

    # ----------------------------------------------------------------- translation
    def _run(self, name: str, x: torch.Tensor, channels: int) -> torch.Tensor:
        """A generator on ``x``, padded to a multiple of 2^levels (replicating the border) and cropped back."""
        out = on_padded(self.network(name), x, self.config.levels)
        return adapt_channels(x, channels) + out if self.config.residual else out

    def to_b(self, a: torch.Tensor) -> torch.Tensor:
        """G_ab: domain A images (N, C_a, H, W) to domain B (N, C_b, H, W), not clamped."""
        return self._run("gen_ab", a, self.config.condition_shape[0])

    def to_a(self, b: torch.Tensor) -> torch.Tensor:
        """G_ba: domain B images to domain A, not clamped."""
        return self._run("gen_ba", b, self.config.image_shape[0])

    def translate(self, x: torch.Tensor, direction: str = "a-to-b") -> torch.Tensor:
        """Images of one domain (N, C, H, W) in [0, 1] to the other, in [0, 1]: ``a-to-b``
        (default) or ``b-to-a``."""
        if direction not in DIRECTIONS:
            raise GenlabError(f"unknown direction '{direction}'; choose one of: {', '.join(DIRECTIONS)}")
        self.check_condition(x, direction)
        return (self.to_b(x) if direction == "a-to-b" else self.to_a(x)).clamp(0, 1)

    def baseline(self, x: torch.Tensor, direction: str = "a-to-b") -> torch.Tensor:
        """The trivial translation: the image itself, brought to the other domain's channels."""
        c = self.config.condition_shape[0] if direction == "a-to-b" else self.config.image_shape[0]
        return adapt_channels(x, c)

    @torch.no_grad()
    def preview(self, batch: Batch, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Rows to look at: A images, their translations to B, B images, their translations to A
        (all in the larger channel count of the two domains)."""
        a, b = self._domains(batch)
        c = max(a.shape[1], b.shape[1])
        rows = [a, self.translate(a, "a-to-b"), b, self.translate(b, "b-to-a")]
        return [adapt_channels(r, c) for r in rows]

    # ----------------------------------------------------------------- training
    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        betas = (0.5, 0.999)
        groups = {"generators": OptimizerGroup([*self.gen_ab.parameters(), *self.gen_ba.parameters()], betas=betas),
                  "discriminators": OptimizerGroup([*self.disc_a.parameters(), *self.disc_b.parameters()],
                                                   betas=betas, weight_decay=0.0)}
        if self.config.semantic_weight > 0:
            groups["classifiers"] = OptimizerGroup([*self.classifier_a.parameters(), *self.classifier_b.parameters()],
                                                   weight_decay=0.0)
        return groups

    def _domains(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.condition is None:
            raise GenlabError("a CycleGAN batch needs images of both domains: the data's images (A) and, as its "
                              "condition images, those of domain B (genlab.data.unpaired(a, b))")
        return batch.images, batch.condition

    def loss(self, batch, labels=None, step=None) -> dict[str, torch.Tensor]:
        """The generators' terms on a batch of both domains (held-out figures of training)."""
        return self._generator_terms(batch)[1]

    def _generator_terms(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        a, b = self._domains(batch)
        fake_b, fake_a = self.to_b(a), self.to_a(b)
        cycle_a, cycle_b = (self.to_a(fake_b) - a).abs().mean(), (self.to_b(fake_a) - b).abs().mean()
        with frozen(self.disc_a, self.disc_b):
            adv = (generator_loss("least-squares", self.disc_b(fake_b))
                   + generator_loss("least-squares", self.disc_a(fake_a)))
        loss = adv + cfg.cycle_weight * cycle_a + cfg.cycle_weight_b * cycle_b
        terms = {"adv": adv, "cycle": cycle_a + cycle_b, "cycle_a": cycle_a, "cycle_b": cycle_b}
        if cfg.identity_weight > 0:
            identity = (self.to_b(b) - b).abs().mean() + (self.to_a(a) - a).abs().mean()
            loss = loss + cfg.identity_weight * cfg.cycle_weight * identity
            terms["identity"] = identity
        if cfg.semantic_weight > 0:
            labels = self._labels_of_a(batch)
            f_a, f_b = self.classifier_a, self.classifier_b
            with frozen(f_a, f_b):
                with torch.no_grad():
                    read_b = f_b(b).argmax(1)
                semantic = F.cross_entropy(f_a(fake_b), labels) + F.cross_entropy(f_a(fake_a), read_b)
            loss = loss + cfg.semantic_weight * semantic
            terms["semantic"] = semantic
            batch.scratch["translated_a"] = fake_b.detach()   # for the classifiers' objective
        batch.scratch.update(fake_a=fake_a.detach(), fake_b=fake_b.detach())
        terms["loss"] = loss
        return loss, {k: v.detach() for k, v in terms.items()}

    def _labels_of_a(self, batch: Batch) -> torch.Tensor:
        if batch.labels is None:
            raise GenlabError("`semantic_weight` needs labels for domain A (the data); these images have none: "
                              "set `semantic_weight=0`")
        return batch.labels

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``generators``: ``loss`` = ``adv`` + lambda (``cycle`` + identity weight x
        ``identity``) + ``semantic_weight`` x ``semantic``; then ``discriminators``: ``d_loss``,
        half the least-squares loss of each D on its domain's real images and pooled fakes (batch
        means); then, with the semantic term, ``classifiers``: ``c_loss``, the cross-entropy of
        f_a on A's images and of f_b on their translations to B."""
        if name == "generators":
            return self._generator_terms(batch)
        if name == "classifiers":
            a, fake_b = batch.images, batch.scratch.pop("translated_a")
            labels = self._labels_of_a(batch)
            c_loss = F.cross_entropy(self.classifier_a(a), labels) + F.cross_entropy(self.classifier_b(fake_b), labels)
            return c_loss, {"c_loss": c_loss.detach()}
        a, b = self._domains(batch)
        fake_a = self.pool_a.exchange(batch.scratch.pop("fake_a"), batch)
        fake_b = self.pool_b.exchange(batch.scratch.pop("fake_b"), batch)
        d_a = discriminator_loss("least-squares", self.disc_a(a), self.disc_a(fake_a))
        d_b = discriminator_loss("least-squares", self.disc_b(b), self.disc_b(fake_b))
        d_loss = 0.5 * (d_a + d_b)
        return d_loss, {"d_loss": d_loss.detach(), "d_a": d_a.detach(), "d_b": d_b.detach()}


def _absolute(name: str) -> str:
    """A dataset name whose path is relative to this folder (``folder:photos``) with that path made
    absolute, so that the run finds its second domain from any folder; other names as they are."""
    kind, sep, rest = name.partition(":")
    head, comma, options = rest.partition(",")
    path = Path(head).expanduser()
    if not sep or not head or path.is_absolute() or not path.exists():
        return name
    return f"{kind}:{path.resolve()}{comma}{options}"
