"""2-D sections of a porous medium, the training data of SliceGAN: ``image:PATH[,key=value...]``.

One image is a section of an isotropic medium: every section, in any direction, looks alike.
Three images, ``image:X.png,Y.png,Z.png``, are sections of an anisotropic medium, one across
each axis of the volume (D, H, W), in the orientation NumPy gives ``volume[i]``,
``volume[:, j]`` and ``volume[:, :, k]``: the first an H x W section (rows along H, columns
along W), the second D x W, the third D x H.

Which pixels are pore follows the volumes' rules (:mod:`.volumes`, the same code): an image of
two values has the smaller as pore (black = pore) unless ``pore=V``, ``low`` or ``high`` says
otherwise; a grey-level image needs ``threshold=T``; an image that reads as more pore than grain
gets one line of warning with both readings. PNG, TIFF (one page), BMP, ... are read by Pillow,
their values as stored (16-bit grey included); JPEG's compression leaves grey levels, so a JPEG
needs a threshold.

Keys: ``edge`` (the patches' side, which is the side of the generator's training volumes,
default 64), ``patches`` (random patches cut from each image, default 2048; the same every time
for the same images), ``pore`` and ``threshold``. The dataset holds (patches, C, edge, edge)
uint8 with 255 = pore, C the number of images: item n holds one patch of each image.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ...data.base import ImageDataset
from ...errors import GenlabError
from ...memory import available_bytes
from .volumes import PoreValue, _check_pore_fraction, _number, _segment, spec_options

SECTION_KEYS = ("edge", "patches", "pore", "threshold")
DEFAULT_EDGE = 64
DEFAULT_PATCHES = 2048
#: the patches' corners are drawn from this seed, so a name always gives the same patches
PATCH_SEED = 0
#: the largest image read (its header is read before its pixels)
MAX_PIXELS = 2 ** 28


@dataclass(frozen=True)
class SectionSpec:
    """A parsed ``image:PATH[,PATH,PATH][,key=value...]`` name; ``absolute`` is the name with the
    files' absolute paths (the dataset's name, from which a run loads its data again)."""

    spec: str
    paths: tuple[Path, ...]
    edge: int = DEFAULT_EDGE
    patches: int = DEFAULT_PATCHES
    pore: PoreValue = None
    threshold: float | None = None
    absolute: str = ""


def parse_section_spec(spec: str) -> SectionSpec:
    """Parse ``image:PATH[,PATH,PATH][,key=value...]`` (the prefix may be left off): one image
    or three, then the keys of :data:`SECTION_KEYS`. A path holding a comma works for one image
    (when the whole of it names a file)."""
    rest = spec[len("image:"):] if spec.startswith("image:") else spec
    name = f"image:{rest}"
    head, *items = re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", rest)
    parts = [head] if Path(head).expanduser().is_file() else head.split(",")
    if not all(p.strip() for p in parts):
        raise GenlabError(f"'{name}' names no image; write image:SECTION.png (an isotropic medium) or "
                          f"image:X.png,Y.png,Z.png (one section across each axis)")
    if len(parts) not in (1, 3):
        raise GenlabError(f"'{name}' names {len(parts)} images; give one (an isotropic medium) or three "
                          f"(sections across axes 0, 1 and 2), e.g. image:X.png,Y.png,Z.png")
    given = spec_options(items, SECTION_KEYS, name)
    options: dict = {}
    for key, low in (("edge", 8), ("patches", 1)):
        if key in given:
            if not re.fullmatch(r"\d+", given[key]) or int(given[key]) < low:
                raise GenlabError(f"{key}={given[key]} in {name}: {key} must be a whole number of at least {low}")
            options[key] = int(given[key])
    if "pore" in given:
        try:
            options["pore"] = given["pore"] if given["pore"] in ("low", "high") else _number(given["pore"])
        except ValueError:
            raise GenlabError(f"pore={given['pore']} in {name}: pore must be the pore value (a number), "
                              f"'low' or 'high'") from None
    if "threshold" in given:
        try:
            options["threshold"] = _number(given["threshold"])
        except ValueError:
            raise GenlabError(f"threshold={given['threshold']} in {name}: threshold must be a number") from None
    paths = tuple(Path(p.strip()).expanduser() for p in parts)
    absolute = "image:" + ",".join(os.path.abspath(p) for p in paths) + rest[len(head):]
    return SectionSpec(spec=name, paths=paths, absolute=absolute, **options)


def _grey_values(path: Path) -> np.ndarray:
    """The pixel values of the image file at ``path`` as stored, (H, W); one line if it is no
    single grey (or grey-valued colour) image."""
    from ...image_files import decode_image

    if not path.is_file():
        raise GenlabError(f"image file not found: {path}")
    image = decode_image(path, str(path), max_pixels=MAX_PIXELS)
    if getattr(image, "n_frames", 1) > 1:
        raise GenlabError(f"{path} holds {image.n_frames} pages; a section is one 2-D image "
                          f"(for a 3-D scan, train porous-gan on volume:{path})")
    if image.mode == "1" or image.mode == "P":   # bilevel as 0/255; a palette as its colours
        image = image.convert("L" if image.mode == "1" else "RGB")
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        colour = pixels[..., :3] if image.mode != "LA" else pixels[..., :1]
        if not (colour == colour[..., :1]).all():
            raise GenlabError(f"{path} is a colour image; a section needs the two phases as grey values: "
                              f"segment it, or save it as grey")
        pixels = colour[..., 0]
    return pixels


def read_section(path: str | os.PathLike, pore: PoreValue = None, threshold: float | None = None,
                 ) -> tuple[np.ndarray, PoreValue]:
    """A segmented 2-D image, (H, W) bool with True = pore, binarised as a volume is
    (:func:`~genlab.families.porous.volumes.read_volume`: ``pore``, ``threshold``, the warning
    for more pore than grain), and the ``pore`` setting that read it (the default made explicit)."""
    path = Path(path).expanduser()
    mask, setting, flip = _segment(_grey_values(path), str(path), pore, threshold)
    _check_pore_fraction(mask, str(path), setting, flip)
    return np.ascontiguousarray(mask), setting


def read_section_spec(spec: str | SectionSpec) -> tuple[list[np.ndarray], SectionSpec]:
    """The images an ``image:`` name refers to, each (H, W) bool True = pore, and its options,
    ``pore`` resolved (a name without one gets the default's, recorded in ``absolute``)."""
    options = spec if isinstance(spec, SectionSpec) else parse_section_spec(spec)
    read = [read_section(p, options.pore, options.threshold) for p in options.paths]
    sections = [mask for mask, _ in read]
    for path, mask in zip(options.paths, sections):
        if min(mask.shape) < options.edge:
            raise GenlabError(f"{path} is {mask.shape[0]}x{mask.shape[1]}, smaller than the patches' edge "
                              f"{options.edge}; give a smaller edge, e.g. `image:...,edge={_fitting_edge(mask.shape)}`")
    if options.pore is None:
        options = replace(options, pore=read[0][1], absolute=f"{options.absolute or options.spec},pore={read[0][1]}")
    return sections, options


def _fitting_edge(shape: tuple[int, ...]) -> int:
    edge = 8
    while edge * 2 <= min(shape):
        edge *= 2
    return edge


def random_patches(section: np.ndarray, edge: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` square patches (count, edge, edge) of ``section`` at corners drawn uniformly."""
    rows = rng.integers(0, section.shape[0] - edge + 1, count)
    cols = rng.integers(0, section.shape[1] - edge + 1, count)
    windows = np.lib.stride_tricks.sliding_window_view(section, (edge, edge))
    return windows[rows, cols]


def load_section_dataset(spec: str, split: str = "train") -> ImageDataset:
    """The patches of an ``image:`` name as a dataset of images (patches, C, edge, edge) uint8,
    255 = pore, C = 1 or 3 images (see the module's docstring). Both splits are the same
    patches: a medium is judged by its statistics, not by held-out patches."""
    if split not in ("train", "test"):
        raise GenlabError(f"unknown split '{split}'; choose 'train' or 'test'")
    sections, options = read_section_spec(spec)
    need, free = options.patches * len(sections) * options.edge ** 2, available_bytes()
    if free is not None and need > free:
        raise GenlabError(f"{options.patches:,} patches of {options.edge}^2 take {need / 2 ** 30:,.1f} GiB, more than "
                          f"the {free / 2 ** 30:.1f} GiB of memory left; give fewer, e.g. `image:...,patches=1024`")
    rng = np.random.default_rng(PATCH_SEED)
    patches = np.stack([random_patches(s, options.edge, options.patches, rng) for s in sections], axis=1)
    images = torch.from_numpy(patches.view(np.uint8) * np.uint8(255))
    return ImageDataset(images=images, labels=None, name=options.absolute or options.spec, split=split)
