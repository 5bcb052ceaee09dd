"""The parts every adversarial model shares: the DCGAN discriminator, the GAN losses, and
``frozen`` (a network run only to pass gradients to its input)."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


LOSSES = ("non-saturating", "hinge", "wgan-gp", "least-squares")


def num_stages(height: int, width: int) -> int:
    """Stride-2 stages between a map of side >= 4 and the image: halve while the side stays even
    and at least 4 (8 -> 1, 28 -> 2, 32 -> 3, 64 -> 4)."""
    k, h, w = 0, height, width
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= 4:
        h, w, k = h // 2, w // 2, k + 1
    return k


class Discriminator(nn.Module):
    """Images (N, C, H, W) [+ labels (N,)] -> scores (N,), real high.

    With ``num_classes``, the label enters as K constant one-hot maps beside the image's channels
    (Mirza & Osindero 2014), so D judges whether the image fits its label from the first layer on.
    With a projection discriminator instead (a class term embed(y) . h(x) added to the score), G
    collapsed on MNIST within 400 steps: to one image per class beside a learned class embedding,
    to one digit for every class beside a one-hot label. Label maps kept it diverse."""

    def __init__(self, image_shape: tuple[int, int, int], channels: int, spectral_norm: bool = False,
                 num_classes: int | None = None):
        super().__init__()
        c, h, w = image_shape
        k = num_stages(h, w)
        self.num_classes = num_classes or 0
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda layer: layer)
        layers: list[nn.Module] = [sn(nn.Conv2d(c + self.num_classes, channels, 3, padding=1)), nn.LeakyReLU(0.2)]
        for i in range(k):
            a = channels << i
            layers += [sn(nn.Conv2d(a, 2 * a, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten(), sn(nn.Linear((channels << k) * (h >> k) * (w >> k), 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            maps = F.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], dim=1)
        return self.body(x).squeeze(1).float()  # the losses in fp32, also under bf16 autocast


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Inside, the weights of ``modules`` need no gradient: a graph built there carries gradients
    through them to their inputs only. G's objective runs D so, since D's weight gradients from G's
    step would be thrown away before D's next step (about half of the backward pass through D)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _gradient_norm2(scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared norm of d scores.sum() / d x per image, (N,); keeps the graph for the penalty's gradient."""
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1)


def discriminator_loss(kind: str, s_real: torch.Tensor, s_fake: torch.Tensor) -> torch.Tensor:
    """D's objective (batch mean) from its scores of real and generated images, (N,) each (or
    (N, 1, h, w) patch scores: the mean is over every score)."""
    if kind == "least-squares":
        return (s_real - 1).pow(2).mean() + s_fake.pow(2).mean()
    if kind == "non-saturating":
        return F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
    if kind == "hinge":
        return F.relu(1 - s_real).mean() + F.relu(1 + s_fake).mean()
    return s_fake.mean() - s_real.mean()


def generator_loss(kind: str, s_fake: torch.Tensor) -> torch.Tensor:
    """G's objective (batch mean) from D's scores of generated images, (N,)."""
    if kind == "least-squares":
        return (s_fake - 1).pow(2).mean()
    return F.softplus(-s_fake).mean() if kind == "non-saturating" else -s_fake.mean()
