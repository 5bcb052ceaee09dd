"""Augmentation of training batches: random crops, flips and the eight symmetries of the square.

Every draw comes from a generator seeded by (run seed, step), made for the whole global batch and
shared out by each image's position in it, as the model's own draws are (:class:`StepNoise`): an
image gets the same crop and flip in one process or several, and a resumed run the same as an
uninterrupted one. Evaluation and validation batches are never augmented.
"""
from __future__ import annotations

import torch

from ..errors import GenlabError

#: what ``augment=`` takes: a horizontal flip, a vertical flip (each with probability 1/2), or
#: one of the 8 flips and quarter turns of the square, each with probability 1/8 (square images)
AUGMENTS = ("hflip", "vflip", "dihedral")
#: uniform draws per image and step: the crop's top and left, then one per flip
DRAWS = 4
#: keeps the augmentation's stream apart from the step's other draws
_STREAM = 0x5DEECE66D


def step_draws(seed: int, step: int, size: int) -> torch.Tensor:
    """(size, DRAWS) uniform numbers in [0, 1) for the images of the global batch of ``step``."""
    generator = torch.Generator().manual_seed(((seed * 1_000_003 + step) % 2 ** 62) ^ _STREAM)
    return torch.rand(size, DRAWS, generator=generator, dtype=torch.float64)


def check_augment(kinds: tuple[str, ...], source: str) -> tuple[str, ...]:
    """``kinds`` if each is one of :data:`AUGMENTS` (and dihedral stands alone); else one line."""
    for kind in kinds:
        if kind not in AUGMENTS:
            raise GenlabError(f"unknown augmentation '{kind}' in {source}; choose from {', '.join(AUGMENTS)} "
                              "(several joined by +, e.g. augment=hflip+vflip)")
    if "dihedral" in kinds and len(kinds) > 1:
        raise GenlabError(f"augment=dihedral in {source} already holds both flips; give it alone")
    return tuple(dict.fromkeys(kinds))


def crop_offsets(u: torch.Tensor, room: tuple[int, int]) -> torch.Tensor:
    """(N, 2) crop corners (top, left), uniform over the ``room`` (H - h + 1, W - w + 1) positions."""
    top = (u[:, 0] * room[0]).long().clamp_(max=room[0] - 1)
    left = (u[:, 1] * room[1]).long().clamp_(max=room[1] - 1)
    return torch.stack([top, left], dim=1)


def augment(images: torch.Tensor, kinds: tuple[str, ...], u: torch.Tensor) -> torch.Tensor:
    """``images`` (N, C, H, W) with the flips ``kinds`` applied as the draws ``u`` (N, DRAWS) say."""
    if not kinds:
        return images
    if "dihedral" in kinds:
        k = (u[:, 2] * 8).long().clamp_(max=7)
        return _by_group(images, k, _symmetry)
    if "hflip" in kinds:
        images = _by_group(images, (u[:, 2] < 0.5).long(), lambda x, f: x.flip(-1) if f else x)
    if "vflip" in kinds:
        images = _by_group(images, (u[:, 3] < 0.5).long(), lambda x, f: x.flip(-2) if f else x)
    return images


def _symmetry(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 symmetries of the square: k % 4 quarter turns, after a transpose if k >= 4."""
    if k >= 4:
        x = x.transpose(-2, -1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _by_group(images: torch.Tensor, which: torch.Tensor, apply) -> torch.Tensor:
    """``apply(images[i], which[i])`` for every image, one call per distinct value of ``which``."""
    values = torch.unique(which).tolist()
    if values == [0]:
        return images
    out = torch.empty_like(images)
    for value in values:
        chosen = (which == value).nonzero().view(-1).to(images.device)
        out[chosen] = apply(images[chosen], value).contiguous()
    return out
