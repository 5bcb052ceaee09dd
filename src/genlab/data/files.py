"""The user's own data: a folder of images (``folder:PATH``) or a NumPy archive (``npz:PATH``).

Splits. A folder with ``train/`` and ``test/`` sub-folders, or an archive with ``x_train`` and
``x_test``, gives its own splits. Otherwise the data is split deterministically: a permutation
drawn with seed 0 puts 10% of the images (at least one) in ``test`` and the rest in ``train``,
so every run and every machine sees the same split.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import GenlabError
from .base import ImageDataset

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
TEST_FRACTION = 0.1
SPLIT_SEED = 0
_GREY_MODES = {"1", "L", "LA"}
_WIDE_GREY_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def split_index(n: int, split: str, source: str = "the data") -> np.ndarray:
    """Indices of ``split`` among ``n`` items: a seed-0 permutation, 10% (at least 1) for test."""
    if n < 2:
        raise GenlabError(f"{source} holds {n} image(s); at least 2 are needed to split off a test set")
    n_test = max(1, round(n * TEST_FRACTION))
    order = np.random.RandomState(SPLIT_SEED).permutation(n)
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


# ---- folders of images -------------------------------------------------------------------------

def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and _image_files(p))


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError) as e:
        raise GenlabError(f"cannot read image {path}: {e}") from None


def _check_sizes(paths: list[Path], source: Path) -> None:
    """All images must share one size; only headers are read, so this is cheap."""
    sizes = {}
    for p in paths:
        with _open(p) as img:
            sizes.setdefault(img.size, []).append(p)
    if len(sizes) > 1:
        by_count = sorted(sizes.items(), key=lambda item: -len(item[1]))
        listing = ", ".join(f"{w}x{h}: {len(ps)}" for (w, h), ps in by_count)
        (w, h), _ = by_count[0]
        raise GenlabError(
            f"images in {source} have different sizes (WxH {listing}; e.g. {by_count[1][1][0]}); "
            f"resize them to one size first, e.g. {w}x{h}"
        )


def _read_image(path: Path) -> np.ndarray:
    """(H, W) uint8 for a grey image (also an RGB one whose channels are equal), else (H, W, 3)."""
    with _open(path) as img:
        try:
            if img.mode in _WIDE_GREY_MODES:  # 16-bit (or 32-bit integer) grey: scale, not clip, to 8 bits
                wide = np.asarray(img).astype(np.float64)
                full = 65535.0 if img.mode.startswith("I;16") or wide.max(initial=0) <= 65535 else 2.0 ** 32 - 1
                return np.clip(np.round(wide * (255.0 / full)), 0, 255).astype(np.uint8)
            if img.mode == "F":  # 32-bit float grey: taken as values in [0, 1]
                return np.clip(np.round(np.asarray(img) * 255.0), 0, 255).astype(np.uint8)
            if img.mode in _GREY_MODES:
                return np.asarray(img.convert("L"))
            rgb = np.asarray(img.convert("RGB"))  # alpha is dropped; palettes are expanded
        except OSError as e:
            raise GenlabError(f"cannot read image {path}: {e}") from None
    grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0].copy() if grey else rgb


def _stack(paths: list[Path]) -> torch.Tensor:
    """Read ``paths`` into one (N, C, H, W) uint8 tensor, C = 1 if every image is grey, else 3."""
    arrays = [_read_image(p) for p in paths]
    if any(a.ndim == 3 for a in arrays):
        arrays = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return torch.from_numpy(np.stack(arrays)).unsqueeze(1)


def _scan(folder: Path, class_names: list[str] | None) -> tuple[list[Path], list[int] | None]:
    """Image paths in ``folder`` and their labels (None when the images lie loose in it)."""
    loose = _image_files(folder)
    if class_names is None:
        return loose, None
    if loose:
        raise GenlabError(
            f"{folder} holds both images and class sub-folders; move the loose images "
            f"(e.g. {loose[0].name}) into a class folder, or the sub-folders out"
        )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        if (folder / name).is_dir():
            files = _image_files(folder / name)
            paths += files
            labels += [label] * len(files)
    return paths, labels


def load_folder(path: Path, split: str) -> ImageDataset:
    """A folder of images as (N, C, H, W) uint8, C = 1 (all grey) or 3; labels from sub-folders.

    Layouts: ``PATH/<class>/*.png`` (labelled; classes are the sorted sub-folder names),
    ``PATH/*.png`` (unlabelled), and either of those under ``PATH/train`` and ``PATH/test``.
    Only images directly in a folder count (no deeper nesting). Extensions: png, jpg, jpeg,
    bmp, gif (first frame), webp. All images must have one size.
    """
    path = Path(path)
    if not path.is_dir():
        raise GenlabError(f"image folder not found: {path}")
    has_splits = (path / "train").is_dir() and (path / "test").is_dir()
    roots = [path / "train", path / "test"] if has_splits else [path]
    # Classes come from every split's folders, so that a label means the same class in both.
    names = sorted({p.name for root in roots for p in _class_folders(root)}) or None
    scans = {root: _scan(root, names) for root in roots}
    for root, (paths, _) in scans.items():
        if not paths:
            raise GenlabError(f"no images in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    _check_sizes([p for paths, _ in scans.values() for p in paths], path)
    paths, labels = scans[path / split if has_splits else path]
    if not has_splits:
        index = split_index(len(paths), split, str(path))
        paths = [paths[i] for i in index]
        labels = None if labels is None else [labels[i] for i in index]
    return ImageDataset(
        images=_stack(paths),
        labels=None if labels is None else torch.tensor(labels, dtype=torch.int64),
        name=f"folder:{os.path.abspath(path)}",  # absolute: a run reloads it from any folder
        split=split,
        class_names=names,
    )


# ---- arrays ------------------------------------------------------------------------------------

def _to_nchw(x: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3, 4 -> (N, C, H, W), alpha dropped.

    A 4-D array whose second and last axes could both be channels (images of at most 4 pixels a
    side) is read as (N, C, H, W), PyTorch's convention.
    """
    channels = (1, 3, 4)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in channels and x.shape[3] in channels:
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4 or x.shape[1] not in channels:
        raise GenlabError(
            f"{source}: x has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
            f"with C = 1, 3 or 4"
        )
    return np.ascontiguousarray(x[:, :3])


def _to_pixels(x: np.ndarray, source: str) -> torch.Tensor:
    """uint8 stays uint8 (0..255); integers in 0..255 become uint8; floats must lie in [0, 1]."""
    if x.dtype == np.uint8:
        return torch.from_numpy(x)
    if np.issubdtype(x.dtype, np.integer) and x.size and (x.min() < 0 or x.max() > 255):
        raise GenlabError(f"{source}: integer pixels must lie in 0..255, found {x.min()}..{x.max()}")
    if np.issubdtype(x.dtype, np.integer):
        return torch.from_numpy(x.astype(np.uint8))
    if not np.issubdtype(x.dtype, np.floating):
        raise GenlabError(f"{source}: x has dtype {x.dtype}; use uint8 (0..255) or float (0..1)")
    if x.size and not np.isfinite(x).all():
        raise GenlabError(f"{source}: x holds NaN or infinite values; float pixels must lie in [0, 1]")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise GenlabError(
            f"{source}: float pixels must lie in [0, 1], found {x.min():g}..{x.max():g}; "
            f"rescale them (e.g. divide 0..255 values by 255) or store uint8"
        )
    return torch.from_numpy(x.astype(np.float32))


def _to_labels(y: np.ndarray, n: int, source: str) -> torch.Tensor:
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
        raise GenlabError(f"{source}: y must be {n} non-negative integer labels, got {y.dtype} {y.shape}")
    return torch.from_numpy(y.astype(np.int64))


def load_npz(path: Path, split: str) -> ImageDataset:
    """Images from a NumPy archive: ``x`` (and labels ``y``) or ``x_train``/``x_test`` (``y_*``).

    ``x`` is (N, H, W), (N, H, W, C) or (N, C, H, W), C = 1, 3 or 4 (alpha dropped), uint8 in
    0..255 or float in [0, 1]; ``y`` is (N,) integer. An optional ``class_names`` string array
    names the classes. Result: (N, C, H, W) images, uint8 or float32.
    """
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise GenlabError(f"cannot read {path} as a NumPy .npz archive: {e}") from None
    if "x_train" in arrays or "x_test" in arrays:
        key = f"x_{split}"
        if key not in arrays:
            raise GenlabError(f"{path} has no array '{key}' (arrays: {', '.join(sorted(arrays))})")
        x, y = arrays[key], arrays.get(f"y_{split}")
        all_y = [arrays[k] for k in ("y_train", "y_test") if k in arrays]
    elif "x" in arrays:
        x, y = arrays["x"], arrays.get("y")
        all_y = [] if y is None else [y]
    else:
        names = ", ".join(sorted(arrays)) or "none"
        raise GenlabError(f"{path} has no array 'x' (or 'x_train'/'x_test'); arrays: {names}")
    images = _to_pixels(_to_nchw(x, str(path)), str(path))
    labels = None if y is None else _to_labels(y, len(images), str(path))
    if "x" in arrays and "x_train" not in arrays and "x_test" not in arrays:
        index = torch.from_numpy(split_index(len(images), split, str(path)))
        images, labels = images[index], None if labels is None else labels[index]
    class_names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else None
    if labels is not None and class_names is None:
        # From every split's labels, so that both splits agree on the number of classes.
        class_names = [str(i) for i in range(max(int(a.max(initial=0)) for a in all_y) + 1)]
    return ImageDataset(images=images, labels=labels, name=f"npz:{os.path.abspath(path)}", split=split,
                        class_names=class_names)
