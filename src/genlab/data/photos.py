"""Embedded colour photographs for image-to-image tasks, and digits blended into them (MNIST-M).

``photos``: the natural colour photographs that ship inside the scikit-image package (no
download needed):

- test (held out whole, the role Set5 plays in super-resolution papers): ``astronaut``
  (512x512) and ``chelsea`` (300x451), each centre-cropped to 256x256 (a multiple of 4, so x2
  and x4 super-resolution divide it), float RGB in [0, 1], shape (2, 3, 256, 256);
- train: 4,000 random 64x64 patches (so x4 super-resolution has 16x16 inputs), each flipped
  left-right with probability 1/2, cut with a fixed seed from ``coffee`` (400x600), ``rocket``
  (427x640) and the left view of ``stereo_motorcycle`` (500x741): uint8 RGB, (4000, 3, 64, 64).
  A source is drawn with probability proportional to its number of patch positions, so every
  position of every training photo is equally likely.

``photos-sr``: super-resolution's photos, more of them, turned as they are drawn:

- test: ``photos``' test split (the same two held-out photos, so figures stay comparable);
- train: 8,000 random 64x64 patches (``superres_patches`` takes another side and count) of
  ``SUPERRES_PHOTOS``: the three training photos above and scikit-image's grey natural
  photographs ``camera`` (512x512), ``moon`` (512x512), ``coins`` (303x384), ``text``
  (172x448), ``page`` (191x384), ``brick``, ``grass`` and ``gravel`` (512x512 each), repeated
  to R = G = B; uint8 RGB, (8000, 3, 64, 64), no flips stored. Each training batch turns its
  patches by the 8 flips and quarter turns of the square (``augment=dihedral``, drawn per image
  and step); superres makes its small input from the turned patch, so input and target turn
  together.

Left out: the other images of ``skimage.data`` that ship with it are not natural photos
(``hubble_deep_field``: astronomy, mostly black; ``retina``, ``microaneurysms``: fundus
photographs; ``immunohistochemistry``, ``cell``: microscopy; ``colorwheel``, ``logo``,
``checkerboard``, ``shepp_logan_phantom``, ``horse``: graphics or binary), are blurred on purpose
(``clock``: camera motion) or too small (``lfw_subset``: 25x25 faces), or repeat one in use
(``cat`` is ``chelsea``; the right view of ``stereo_motorcycle`` is the left one shifted); those
that need a download (``eagle``, ``lily``, ``skin``, ``kidney``, ``palisades_of_vogt``,
``brain``, ``cells3d``, ``human_mitosis``, ...) are not used.

``digits-m`` and ``mnist-m`` follow MNIST-M (Ganin & Lempitsky 2015): each 28x28 digit is
blended into a random 28x28 patch of the photos as ``|patch - digit|`` per channel, uint8 RGB
(N, 3, 28, 28), labels kept. Training digits take patches of the training photos, test digits
of the (whole) test photos, so no photo is shared between the splits. ``digits-m`` uses the
embedded ``digits28``; ``mnist-m`` uses MNIST's IDX files and is there when ``mnist`` is. Each
carries its grey digits as paired ``conditions`` (uint8, (N, 1, 28, 28)): pix2pix's sources.
Patches are drawn with a fixed seed per split, so every load gives the same images.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError
from . import digits as _digits
from . import idx as _idx
from .base import DatasetInfo, ImageDataset

TEST_PHOTOS = ("astronaut", "chelsea")
TRAIN_PHOTOS = ("coffee", "rocket", "motorcycle_left")
#: the grey natural photographs of scikit-image that ship with it (no download)
GREY_PHOTOS = ("camera", "moon", "coins", "text", "page", "brick", "grass", "gravel")
#: the photos ``photos-sr`` cuts its patches from (for upscaling); none of ``TEST_PHOTOS``
SUPERRES_PHOTOS = TRAIN_PHOTOS + GREY_PHOTOS
SUPERRES_PATCHES = 8000
TEST_SIZE = 256
PATCH_SIZE = 64
TRAIN_PATCHES = 4000
PATCH_SEED = 0
BLEND_SEEDS = {"train": 1, "test": 2}


def _read_photo(name: str) -> np.ndarray:
    """One photograph of ``skimage.data`` as (H, W, 3) uint8 (a grey one repeated to R = G = B)."""
    from skimage import data

    try:
        image = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
    except Exception as e:  # a broken or trimmed scikit-image installation
        raise GenlabError(f"cannot read scikit-image's photograph '{name}' ({' '.join(str(e).split())}); "
                          f"reinstall scikit-image") from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise GenlabError(f"scikit-image's '{name}' is not a photograph (shape {image.shape}); reinstall scikit-image")
    return image


@lru_cache(maxsize=3)
def read_photos(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The photographs ``names`` of ``skimage.data``, each (H, W, 3) uint8.

    Read-only arrays (they are cached): copy before writing.
    """
    photos = tuple(_read_photo(n) for n in names)
    for p in photos:
        p.setflags(write=False)
    return photos


def source_photos(split: str) -> tuple[np.ndarray, ...]:
    """The whole photographs of ``split`` (``TRAIN_PHOTOS`` or ``TEST_PHOTOS``), read-only."""
    if split not in ("train", "test"):
        raise GenlabError(f"unknown split '{split}'; choose 'train' or 'test'")
    return read_photos(TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window of an (H, W, ...) array."""
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    if top < 0 or left < 0:
        raise ValueError(f"image of {image.shape[0]}x{image.shape[1]} is smaller than {size}x{size}")
    return image[top:top + size, left:left + size]


def patch_positions(photos: tuple[np.ndarray, ...], count: int, size: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` random ``size`` x ``size`` windows: (source index, top, left), each (count,) int64.

    A source is drawn with probability proportional to its number of window positions, then the
    corner uniformly, so all positions of all photos are equally likely.
    """
    spans = np.array([(p.shape[0] - size + 1, p.shape[1] - size + 1) for p in photos], dtype=np.int64)
    if (spans < 1).any():
        raise ValueError(f"a photo is smaller than {size}x{size}")
    weights = spans.prod(axis=1) / spans.prod(axis=1).sum()
    source = rng.choice(len(photos), size=count, p=weights)
    u = rng.random((count, 2))
    top = (u[:, 0] * spans[source, 0]).astype(np.int64)
    left = (u[:, 1] * spans[source, 1]).astype(np.int64)
    return source, top, left


def cut_patches(photos: tuple[np.ndarray, ...], source: np.ndarray, top: np.ndarray, left: np.ndarray,
                size: int) -> np.ndarray:
    """The windows ``photos[source][top:top+size, left:left+size]`` as (N, 3, size, size) uint8."""
    out = np.empty((len(source), 3, size, size), dtype=np.uint8)
    offsets = np.arange(size)
    for k, photo in enumerate(photos):
        where = np.flatnonzero(source == k)
        if len(where) == 0:
            continue
        rows = top[where, None] + offsets  # (n, size)
        cols = left[where, None] + offsets
        out[where] = photo[rows[:, :, None], cols[:, None, :]].transpose(0, 3, 1, 2)  # (n, 3, size, size)
    return out


def train_patch_plan(count: int = TRAIN_PATCHES, size: int = PATCH_SIZE, seed: int = PATCH_SEED
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each training patch of ``photos`` comes from: (source, top, left, flipped), each (count,)."""
    rng = np.random.default_rng(seed)
    source, top, left = patch_positions(source_photos("train"), count, size, rng)
    flipped = rng.random(count) < 0.5
    return source, top, left, flipped


def load_photos_split(split: str) -> ImageDataset:
    if split == "train":
        source, top, left, flipped = train_patch_plan()
        patches = cut_patches(source_photos("train"), source, top, left, PATCH_SIZE)
        patches[flipped] = patches[flipped][..., ::-1]
        images = torch.from_numpy(patches)
    else:
        crops = np.stack([center_crop(p, TEST_SIZE) for p in source_photos("test")])  # (N, H, W, 3)
        images = torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    return ImageDataset(images=images.contiguous(), labels=None, name="photos", split=split)


def superres_patches(size: int = PATCH_SIZE, count: int = SUPERRES_PATCHES, seed: int = PATCH_SEED) -> ImageDataset:
    """``photos-sr``'s training split: ``count`` random ``size`` x ``size`` windows of
    ``SUPERRES_PHOTOS`` (every position of every photo equally likely; fixed by ``seed``), uint8
    (count, 3, size, size), with ``augment=dihedral``: training batches turn each patch by one of
    the 8 flips and quarter turns, before superres makes its small input from it."""
    photos = read_photos(SUPERRES_PHOTOS)
    smallest = min(min(p.shape[:2]) for p in photos)
    if not 1 <= size <= smallest:
        raise GenlabError(f"superres patches of {size}x{size} do not fit the training photos (the shortest side is "
                          f"{smallest} pixels); choose a side from 1 to {smallest}")
    if count < 1:
        raise GenlabError(f"superres needs at least one training patch, got count={count}")
    patches = cut_patches(photos, *patch_positions(photos, count, size, np.random.default_rng(seed)), size)
    return ImageDataset(images=torch.from_numpy(patches), name="photos-sr", split="train", augment=("dihedral",))


def load_superres_split(split: str) -> ImageDataset:
    if split == "train":
        return superres_patches()
    return dataclasses.replace(load_photos_split("test"), name="photos-sr")


def blend_into_photos(digits: np.ndarray, split: str, seed: int) -> np.ndarray:
    """Blend grey digits into random patches of the photos of ``split``, as MNIST-M does.

    Args:
        digits: (N, H, W) uint8 grey digits (28x28 for MNIST), 0 = background.
        split: ``"train"`` takes patches of ``TRAIN_PHOTOS``, ``"test"`` of ``TEST_PHOTOS``.
        seed: fixes the patches; they do not depend on the digits' values, so the same seed and
            count give the same patches (``blend_into_photos(zeros, ...)`` returns the patches).

    Returns:
        (N, 3, H, W) uint8: ``|patch - digit|`` per channel.
    """
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.dtype != np.uint8:
        raise ValueError(f"digits must be (N, H, W) uint8, got {digits.dtype} of shape {digits.shape}")
    if digits.shape[1] != digits.shape[2]:
        raise ValueError(f"digits must be square, got {digits.shape[1]}x{digits.shape[2]}")
    photos, size = source_photos(split), digits.shape[1]
    rng = np.random.default_rng(seed)
    patches = cut_patches(photos, *patch_positions(photos, len(digits), size, rng), size)
    d = digits[:, None]
    # |patch - digit| without leaving uint8 (no int16 copy of a 60,000-image split).
    return np.maximum(patches, d) - np.minimum(patches, d)


def _blended(base: ImageDataset, name: str, split: str) -> ImageDataset:
    grey = base.images[:, 0]
    if grey.dtype != torch.uint8:
        grey = (grey.float() * 255).round_().clamp_(0, 255).to(torch.uint8)
    images = blend_into_photos(grey.numpy(), split, BLEND_SEEDS[split])
    # The grey digit of each blend comes along as its paired condition (a paired translation: digit -> blend).
    return ImageDataset(images=torch.from_numpy(images), labels=base.labels, name=name, split=split,
                        class_names=base.class_names, conditions=grey[:, None].contiguous())


def load_digits_m(split: str) -> ImageDataset:
    return _blended(_digits.load_digits_split(split, 28), "digits-m", split)


def load_mnist_m(split: str, root: Path) -> ImageDataset:
    return _blended(_idx.load_split(_idx.MNIST, split, root), "mnist-m", split)


def _bundled(_: Path) -> tuple[bool, str]:
    return True, "bundled with scikit-image"


#: the datasets this module reads, for the registry (genlab.data.registry)
DATASETS = [DatasetInfo(
    name="photos",
    description=(f"scikit-image's colour photos for image-to-image tasks; train: {TRAIN_PATCHES} random "
                 f"{PATCH_SIZE}x{PATCH_SIZE} patches (random flips) of {', '.join(TRAIN_PHOTOS)}; "
                 f"test: {' and '.join(TEST_PHOTOS)} whole, centre-cropped to {TEST_SIZE}x{TEST_SIZE}"),
    image_shape=(3, PATCH_SIZE, PATCH_SIZE),  # the training patches; test images are 3x256x256
    splits={"train": TRAIN_PATCHES, "test": len(TEST_PHOTOS)},
    num_classes=None,
    load=lambda split, root: load_photos_split(split),
    locate=_bundled,
), DatasetInfo(
    name="photos-sr",
    description=(f"photos for super-resolution; train: {SUPERRES_PATCHES} random {PATCH_SIZE}x{PATCH_SIZE} patches "
                 f"of {', '.join(SUPERRES_PHOTOS)} (grey ones as RGB), turned by the 8 flips and quarter turns "
                 f"as batches are drawn; test: as photos"),
    image_shape=(3, PATCH_SIZE, PATCH_SIZE),
    splits={"train": SUPERRES_PATCHES, "test": len(TEST_PHOTOS)},
    num_classes=None,
    load=lambda split, root: load_superres_split(split),
    locate=_bundled,
), DatasetInfo(
    name="digits-m",
    description=("digits28 blended into photo patches, |patch - digit| (MNIST-M style), 28x28 RGB (embedded); "
                 "paired with the grey digits (pix2pix)"),
    image_shape=(3, 28, 28),
    splits={"train": _digits.TOTAL - _digits.TEST_SIZE, "test": _digits.TEST_SIZE},
    num_classes=10,
    load=lambda split, root: load_digits_m(split),
    locate=lambda root: (True, "bundled with scikit-learn and scikit-image"),
), DatasetInfo(
    name="mnist-m",
    description="MNIST blended into photo patches, |patch - digit| (Ganin & Lempitsky 2015), 28x28 RGB; paired with the grey digits",
    image_shape=(3, 28, 28),
    splits=dict(_idx.MNIST.counts),
    num_classes=len(_idx.MNIST.class_names),
    load=load_mnist_m,
    locate=lambda root: _idx.locate(_idx.MNIST, root),
)]
