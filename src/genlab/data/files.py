"""The user's own arrays: a NumPy archive (``npz:PATH``). Folders of images are :mod:`.folders`.

Splits. An archive with ``x_train`` and ``x_test`` gives its own splits. Otherwise the data is
split deterministically (:func:`split_index`): a permutation drawn with seed 0 puts 10% of the
images (at least one) in ``test`` and the rest in ``train``, so every run and every machine sees
the same split.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError
from .base import ImageDataset
from .folders import split_index

#: the most classes an archive's labels may make
MAX_CLASSES = 100_000

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
    if len(x) == 0:
        raise GenlabError(f"{path}: its {'x_' + split if 'x' not in arrays else 'x'} array holds no images; "
                          "give it at least one")
    images = _to_pixels(_to_nchw(x, str(path)), str(path))
    labels = None if y is None else _to_labels(y, len(images), str(path))
    if "x" in arrays and "x_train" not in arrays and "x_test" not in arrays:
        index = torch.from_numpy(split_index(len(images), split, str(path)))
        images, labels = images[index], None if labels is None else labels[index]
    class_names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else None
    if labels is not None and class_names is None:
        # From every split's labels, so that both splits agree on the number of classes.
        count = max(int(a.max(initial=0)) for a in all_y) + 1
        if count > MAX_CLASSES:
            raise GenlabError(f"{path}: the largest label, {count - 1:,}, would make {count:,} classes (at most "
                              f"{MAX_CLASSES:,}); labels are class indices 0, 1, ..., K-1: number the classes so")
        class_names = [str(i) for i in range(count)]
    return ImageDataset(images=images, labels=labels, name=f"npz:{os.path.abspath(path)}", split=split,
                        class_names=class_names)
