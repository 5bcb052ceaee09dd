"""Image files in and out: reading a file or an upload as a tensor, writing a tensor as a PNG.

Files are read as the folder loader reads them: grey modes (and RGB images whose three channels
are equal) are grey; 16-bit grey is scaled to [0, 1]; alpha is dropped; palettes are expanded.
A colour image given to a grey model is refused; a grey image given to a colour model is taken
with its grey level in all three channels. Used by ``genlab translate``, the server's
``/api/translate`` and the families' own file commands (the codec's ``compress``).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import GenlabError
from .files import write_atomic

_GREY_MODES = {"1", "L", "LA", "F", "I", "I;16", "I;16B", "I;16L", "I;16N"}


#: the most pixels an image read from a file or an upload may have, checked from its header
#: before its pixels are decoded (a small PNG can declare a huge image)
MAX_IMAGE_PIXELS = 2 ** 24


class NotAnImage(GenlabError):
    """A file or upload that is not an image genlab can read."""


class ImageTooLarge(GenlabError):
    """An image whose header declares more pixels than genlab reads."""


def open_image(content: bytes | os.PathLike | str, name: str = "the upload",
               max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """The image in ``content`` (bytes, or a file path), its header read but its pixels not yet
    decoded (:func:`load_image` decodes them): :class:`ImageTooLarge` if the header declares over
    ``max_pixels`` pixels, :class:`NotAnImage` if it is not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # the check below is stricter
            image = Image.open(io.BytesIO(content) if isinstance(content, bytes) else content)
        width, height = image.size
    except FileNotFoundError:
        raise GenlabError(f"no file at {name}") from None
    except IsADirectoryError:
        raise GenlabError(f"{name} is a folder, not an image file") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name} holds an image over the limit of {max_pixels:,} pixels; send a smaller one") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise NotAnImage(f"{name} is not an image genlab can read (PNG, JPEG, ...)") from None
    if width * height > max_pixels:
        raise ImageTooLarge(f"{name} holds a {width}x{height} image, over the limit of {max_pixels:,} pixels; "
                            "send a smaller one")
    return image


def load_image(image: Image.Image, name: str = "the upload") -> Image.Image:
    """``image`` (from :func:`open_image`, its size checked) with its pixels decoded;
    :class:`NotAnImage` if its data is broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise NotAnImage(f"{name} is not an image genlab can read (PNG, JPEG, ...)") from None
    return image


def decode_image(content: bytes | os.PathLike | str, name: str = "the upload",
                 max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """The image in ``content``, fully read: :func:`open_image`, then :func:`load_image`."""
    return load_image(open_image(content, name, max_pixels), name)


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


def png_of(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1], C = 1 or 3, as an 8-bit PIL image."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0].numpy(), mode="L")
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def output_folder(out_dir: str | os.PathLike | None) -> Path | None:
    """``out_dir`` as a folder, made if missing (None: results go beside their inputs); one clear
    line if it is a file."""
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise GenlabError(f"`out_dir={folder}` is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_outputs(pairs: list[tuple[Path, Path]], overwrite: bool = False) -> None:
    """Refuse, before anything is written, each (input, result path) pair whose result would
    replace something: another input's result (two inputs of the same name into one folder), an
    input itself, a folder, or, unless ``overwrite``, any existing file, since a file genlab was
    not told to write is the user's. One line naming the files and the way out."""
    inputs = {Path(os.path.abspath(source)) for source, _ in pairs}
    seen: dict[Path, Path] = {}
    for source, target in pairs:
        key = Path(os.path.abspath(target))
        if key in seen:
            first = seen[key]
            if Path(os.path.abspath(first)) == Path(os.path.abspath(source)):
                raise GenlabError(f"{source} is given twice")
            raise GenlabError(f"{first} and {source} would both be written to {target}; rename one of them, "
                              "or give them separate runs with different `out_dir`")
        seen[key] = source
        if key in inputs:
            raise GenlabError(f"the result of {source} would replace the input {target}; give another `out_dir`")
        if target.is_dir():
            raise GenlabError(f"{target} is a folder, where the result of {source} would be written; "
                              "give another `out_dir`")
        if target.exists() and not overwrite:
            raise GenlabError(f"{target} already exists and is not replaced; give another `out_dir`, "
                              "or `overwrite=True` to replace it")


def save_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """(C, H, W) in [0, 1] as an 8-bit PNG at ``path``, atomically."""
    picture = png_of(image)
    return write_atomic(path, lambda f: picture.save(f, format="PNG"))
