"""``genlab translate RUN IMAGES...``: an image-to-image run applied to image files.

For a denoise run each file is the noisy input and the result has its size; for a superres run
each file is the small input and the result is ``scale`` times larger; for a colorize run each
file is the grey input (a colour file is first made grey, the grey of its luminance in the run's
colour space, and a note says so) and the result is in colour. Any size the network can
take works: the U-Net pads sides that are not a multiple of 2^levels (replicating the border) and
crops its output back, and refuses sides below 2^levels; ESPCN takes any size. Results are PNG
files beside their inputs (``NAME-denoise.png``, ``NAME-x2.png``, ``NAME-color.png``) or in ``out_dir``.

Files are read as the folder loader reads them: grey modes (and RGB images whose three channels
are equal) are grey; 16-bit grey is scaled to [0, 1]; alpha is dropped; palettes are expanded.
A colour image given to a grey model is refused; a grey image given to a colour model is taken
with its grey level in all three channels. Every input is read and checked before any result is
written, so a bad file stops the command with one line and nothing half done.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import GenlabError
from ..models.base import GenerativeModel, NotSupported
from ..train import Run

_GREY_MODES = {"1", "L", "LA", "F", "I", "I;16", "I;16B", "I;16L", "I;16N"}


class NotAnImage(GenlabError):
    """A file or upload that is not an image genlab can read."""


def require_translation(model: GenerativeModel) -> None:
    """A clear error for a model that is not an image-to-image task."""
    if not model.capabilities.condition_image:
        raise NotSupported(f"a {model.name} model is not an image-to-image task; translate takes a run of "
                           "denoise, superres or colorize")


def decode_image(content: bytes | os.PathLike | str, name: str = "the upload") -> Image.Image:
    """The image in ``content`` (bytes, or a file path), fully read; :class:`NotAnImage` if it is not one."""
    try:
        image = Image.open(io.BytesIO(content) if isinstance(content, bytes) else content)
        image.load()
    except FileNotFoundError:
        raise GenlabError(f"no file at {name}") from None
    except IsADirectoryError:
        raise GenlabError(f"{name} is a folder, not an image file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise NotAnImage(f"{name} is not an image genlab can read (PNG, JPEG, ...)") from None
    return image


def image_tensor(image: Image.Image, channels: int, name: str = "the image") -> torch.Tensor:
    """``image`` as (1, ``channels``, H, W) float in [0, 1]; a clear error for a colour image
    given to a grey model."""
    if image.mode in _GREY_MODES:
        if image.mode == "F":
            pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
        elif image.mode.startswith("I"):
            wide = np.asarray(image, dtype=np.float64)
            full = 65535.0 if image.mode.startswith("I;16") or wide.max(initial=0) <= 65535 else 2.0 ** 32 - 1
            pixels = np.clip(wide / full, 0, 1)
        else:
            pixels = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
        pixels = pixels[None]
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        pixels = rgb[None, ..., 0] if grey else np.moveaxis(rgb, -1, 0)
    if pixels.shape[0] != channels:
        if pixels.shape[0] == 1 and channels == 3:
            pixels = np.repeat(pixels, 3, axis=0)
        else:
            raise GenlabError(f"{name} is a colour ({image.mode}) image, and this model was trained on "
                              f"{channels}-channel (grey) images; give it grey images")
    return torch.from_numpy(np.ascontiguousarray(pixels)).float()[None]


def condition_tensor(model: GenerativeModel, image: Image.Image, name: str = "the image"
                     ) -> tuple[torch.Tensor, bool]:
    """The condition image (1, C, H, W) that ``model`` takes for ``image``, and whether a colour
    image was made grey for it (colorize: a colour image becomes the grey of its luminance in the
    model's colour space, the grey input the model was trained on)."""
    if model.task != "colorize":
        return image_tensor(image, model.condition_channels, name), False
    x = image_tensor(image, 3, name)
    if torch.equal(x[:, :1].expand_as(x), x):   # a grey file (as read, all three channels equal)
        return x[:, :1].contiguous(), False
    return model.degrade(x), True


def check_size(model: GenerativeModel, x: torch.Tensor, name: str = "the image") -> None:
    """A clear error, naming ``name``, for an input the network cannot take."""
    side = model.min_condition_side
    h, w = x.shape[-2:]
    if min(h, w) < side:
        raise GenlabError(f"{name} is {w}x{h}, too small for this {model.task} model: its network halves the image "
                          f"{model.config.levels} times and needs sides of at least {side} pixels")


@torch.no_grad()
def translate_images(model: GenerativeModel, x: torch.Tensor, direction: str | None = None) -> torch.Tensor:
    """Condition images (N, C, h, w) in [0, 1] to the model's outputs in [0, 1], on the CPU;
    ``direction`` (``a-to-b`` or ``b-to-a``) for a two-domain model (CycleGAN)."""
    require_translation(model)
    model.eval()
    if direction is None:
        return model.translate(x.to(model.device)).cpu()
    return model.translate(x.to(model.device), direction).cpu()


def png_of(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1], C = 1 or 3, as an 8-bit PIL image."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0].numpy(), mode="L")
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def result_name(model: GenerativeModel, source: Path, direction: str | None = None) -> str:
    """``NAME-denoise.png``, ``NAME-x2.png``, ``NAME-color.png``, ``NAME-pix2pix.png`` or, for a
    CycleGAN, ``NAME-a-to-b.png`` for the input ``source``."""
    if model.task == "cyclegan":
        return f"{source.stem}-{direction or 'a-to-b'}.png"
    suffix = {"denoise": "denoise", "colorize": "color", "pix2pix": "pix2pix"}.get(model.task, f"x{model.scale}")
    return f"{source.stem}-{suffix}.png"


def output_folder(out_dir: str | os.PathLike | None) -> Path | None:
    """``out_dir`` as a folder, made if missing (None: results go beside their inputs); one clear
    line if it is a file."""
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise GenlabError(f"`out_dir={folder}` is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def translate_files(run: Run | GenerativeModel, images: list[str | os.PathLike],
                    out_dir: str | os.PathLike | None = None,
                    note: Callable[[str], None] | None = None, direction: str | None = None) -> list[Path]:
    """Apply ``run`` (or a model) to each image file; write each result beside its input or into
    ``out_dir``; return the paths written. Every input is checked before anything is written.
    ``note`` is told, in one line, of each colour file a colorize run makes grey first.
    ``direction``: ``a-to-b`` (default) or ``b-to-a``, for a two-domain run (CycleGAN) only."""
    model = run.model if isinstance(run, Run) else run
    require_translation(model)
    two_way = model.capabilities.domain_transfer
    if direction is not None and not two_way:
        raise GenlabError(f"`direction` is for a CycleGAN run, which translates both ways; a {model.task} run "
                          "has one direction")
    if two_way and direction is not None and direction not in ("a-to-b", "b-to-a"):
        raise GenlabError(f"unknown direction '{direction}'; choose a-to-b or b-to-a")
    if not images:
        raise GenlabError("give at least one image file to translate")
    inputs = []
    for path in map(Path, images):
        if two_way and direction == "b-to-a":
            x, made_grey = image_tensor(decode_image(path, str(path)), model.config.condition_shape[0], str(path)), False
        else:
            x, made_grey = condition_tensor(model, decode_image(path, str(path)), str(path))
        check_size(model, x, str(path))
        if made_grey and note is not None:
            note(f"{path} is a colour image; colorize takes its grey version (the luminance, "
                 f"{'L of Lab' if model.config.color_space == 'lab' else 'Y of YUV'}) as the input")
        inputs.append((path, x))
    folder, written = output_folder(out_dir), []
    for path, x in inputs:
        target = (folder or path.parent) / result_name(model, path, direction)
        png_of(translate_images(model, x, direction if two_way else None)[0]).save(target)
        written.append(target)
    return written
