"""CelebA: aligned celebrity faces with 40 binary attributes, read from the standard layout.

    DATA_DIR/celeba/img_align_celeba/000001.jpg ...   the aligned 178x218 JPEGs
    DATA_DIR/celeba/list_attr_celeba.txt              count; 40 names; "file +1/-1 ..." per image
    DATA_DIR/celeba/list_eval_partition.txt           optional: "file 0|1|2" (train, valid, test)

Images are centre-cropped to 140x140 (the face, without most background) and resized to 64x64
RGB. Splits follow the official partition: 0 is ``train``, 2 is ``test`` (1, validation, is not
used). Without the partition file the split is deterministic: the file names sorted, the last
10% are ``test`` (the official partition is also by file number, so this is close to it).
Attributes are +1/-1, in ``ImageDataset.attributes`` (N, 40) with ``attribute_names``.

Decoding 200,000 JPEGs takes minutes, so the first load of a split writes its resized images
as uint8 to ``celeba/cache-64-SPLIT.npy`` (about 2 GB for train, 0.25 GB for test) and later
loads read that (skipped silently where the folder is read-only). The cache is keyed by the
number of files in the split; delete it after changing the images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError
from ..files import write_atomic
from .base import DatasetInfo, ImageDataset

IMAGES, ATTRS, PARTITION = "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
CROP, SIZE = 140, 64
TEST_FRACTION = 0.1


def parse_attributes(lines: list[str], source: str) -> tuple[list[str], list[str], np.ndarray]:
    """File names (N,), attribute names (A,) and values (N, A) int8 in {-1, +1} of the lines of
    a list_attr_celeba.txt file."""
    try:
        count, names = int(lines[0]), lines[1].split()
        rows = [ln.split() for ln in lines[2:2 + count] if ln.strip()]
        values = np.array([[int(v) for v in r[1:]] for r in rows], dtype=np.int8)
    except (ValueError, IndexError) as err:
        raise GenlabError(f"{source} is not in the list_attr_celeba.txt format ({err})") from None
    if len(rows) != count or values.shape[1:] != (len(names),):
        raise GenlabError(f"{source}: header says {count} images of {len(names)} attributes, "
                          f"found {len(rows)} rows of {values.shape[1] if values.ndim == 2 else 0} values")
    return [r[0] for r in rows], names, values


def _folder(root: Path) -> Path:
    return Path(root) / "celeba"


def locate(root: Path) -> tuple[bool, str]:
    folder = _folder(root)
    return (folder / IMAGES).is_dir() and (folder / ATTRS).is_file(), str(folder)


def _split_files(folder: Path, files: list[str], split: str) -> np.ndarray:
    """Indices into ``files`` (in attribute-file order) of the images of ``split``."""
    partition = folder / PARTITION
    if partition.is_file():
        part = dict(line.split()[:2] for line in partition.read_text().splitlines() if line.strip())
        want = "0" if split == "train" else "2"
        return np.array([i for i, f in enumerate(files) if part.get(f) == want], dtype=np.int64)
    order = np.argsort(files, kind="stable")
    n_test = max(1, int(round(TEST_FRACTION * len(files))))
    return np.sort(order[-n_test:] if split == "test" else order[:-n_test])


def _load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        c = min(CROP, w, h)
        left, top = (w - c) // 2, (h - c) // 2
        im = im.crop((left, top, left + c, top + c)).resize((size, size), Image.BICUBIC, reducing_gap=2.0)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def load_celeba(split: str, root: Path, size: int = SIZE) -> ImageDataset:
    folder = _folder(root)
    if not locate(root)[0]:
        raise GenlabError(f"CelebA not found: put the aligned JPEGs in {folder / IMAGES}/ and {ATTRS} "
                          f"(and optionally {PARTITION}) in {folder}/ (from the CelebA site or Kaggle)")
    files, names, values = parse_attributes((folder / ATTRS).read_text().splitlines(), str(folder / ATTRS))
    index = _split_files(folder, files, split)
    if len(index) == 0:
        raise GenlabError(f"no CelebA images in the {split} split; check {folder / PARTITION}")
    cache = folder / f"cache-{size}-{split}.npy"
    images = np.load(cache) if cache.is_file() else None
    if images is None or len(images) != len(index):
        missing = [files[i] for i in index if not (folder / IMAGES / files[i]).is_file()]
        if missing:
            raise GenlabError(f"{len(missing)} image(s) listed in {ATTRS} are missing from "
                              f"{folder / IMAGES}, e.g. {missing[0]}")
        images = np.stack([_load_image(folder / IMAGES / files[i], size) for i in index])
        _write_cache(cache, images)
    return ImageDataset(images=torch.from_numpy(images), labels=None, name="celeba", split=split,
                        attributes=torch.from_numpy(values[index].astype(np.float32)),
                        attribute_names=names)


def _write_cache(path: Path, images: np.ndarray) -> None:
    try:
        write_atomic(path, lambda f: np.save(f, images))
    except OSError:  # a read-only data folder: decode again next time
        pass


#: the datasets this module reads, for the registry (genlab.data.registry)
DATASETS = [DatasetInfo(
    name="celeba",
    description="CelebA aligned faces, centre crop 140, resized to 64x64 RGB; 40 +1/-1 attributes",
    image_shape=(3, SIZE, SIZE),
    splits={"train": 162_770, "test": 19_962},
    num_classes=None,
    load=load_celeba,
    locate=locate,
)]
