"""Folders of images: ``folder:PATH[,key=value...]``, any layout, sizes and formats, streamed from disk.

Layout. Class sub-folders give labels (their images may lie at any depth below them); images
loose in the folder are unlabelled; either may sit under ``train/`` and ``test/``, which give the
splits. Otherwise a seed-0 permutation puts 10% of the images in ``test`` (:func:`split_index`).
Formats: PNG, JPEG, WebP, BMP, TIFF, GIF (first frame), with their EXIF orientation applied;
palettes are expanded and alpha is dropped; 16-bit grey is scaled to 8 bits.

Options (after the path, as ``,key=value``; the CLI's ``--image-size``, ``--crop``,
``--channels``, ``--augment`` add them):

- ``size=S``: square images of side S: the shorter side resized to S (bicubic, antialiased),
  then the centre S x S. Without it every image must have one size.
- ``crop=random``: training takes a random S x S crop of an image resized to ``load`` (default
  S + S/8) instead of the centre one (evaluation takes the centre); ``load=L`` sets that side.
- ``channels=1|3``: grey or colour; by default grey when every image is grey, else colour.
- ``augment=hflip|vflip|hflip+vflip|dihedral``: random flips of training batches (dihedral: the 8
  flips and quarter turns of the square).
- ``strict=1``: refuse a folder with unreadable files (by default they are skipped, counted and
  named in one line).

The cache. The images are decoded once, in worker processes (PyTorch's ``DataLoader``;
``$GENLAB_WORKERS``, default one per core for large folders), resized, and written as uint8
records to a file in ``$GENLAB_CACHE/images/`` (default ``~/.cache/genlab/images/``), named by a
hash of the folder's files (names, sizes, times) and the options that change the pixels.
Training then reads each batch's rows from that file (:class:`ImageRecords`), at memory speed
once the file is in the page cache, and the process's memory does not grow with the folder.
Later runs on the same files reuse the cache; a changed file makes a new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import GenlabError, GenlabWarning
from ..files import cache_dir, write_json_atomic
from .augment import check_augment
from .base import ImageDataset
from .records import ImageRecords

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TEST_FRACTION = 0.1
SPLIT_SEED = 0
KEYS = ("size", "load", "crop", "channels", "augment", "strict")
#: the largest image a folder may hold (its header is read before its pixels)
MAX_PIXELS = 2 ** 28
#: bump when the decoding changes: older caches are then written anew
CACHE_FORMAT = 1
#: folders of at most this many images are decoded in the process itself (starting workers costs more)
SMALL_FOLDER = 256
#: images a decoding worker hands back at a time
CHUNK = 64
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ROTATED = {5, 6, 7, 8}   # EXIF orientations that swap width and height


def split_index(n: int, split: str, source: str = "the data") -> np.ndarray:
    """Indices of ``split`` among ``n`` items: a seed-0 permutation, 10% (at least 1) for test."""
    if n < 2:
        raise GenlabError(f"{source} holds {n} image(s); at least 2 are needed to split off a test set")
    n_test = max(1, round(n * TEST_FRACTION))
    order = np.random.RandomState(SPLIT_SEED).permutation(n)
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


# ---- the spec ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSpec:
    """What ``folder:PATH[,key=value...]`` (or another kind of image source with these options,
    such as ``hf:``) asks for (see the module's doc). ``extra`` holds the options of the kind's own."""

    path: Path
    size: int | None = None
    load: int | None = None
    crop: str = "center"
    channels: int | None = None
    augment: tuple[str, ...] = ()
    strict: bool = False
    kind: str = "folder"
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def side(self) -> int | None:
        """The side of the records in the cache: ``load``, else ``size`` (+ 1/8 for random crops)."""
        if self.size is None:
            return None
        if self.load is not None:
            return self.load
        return self.size + self.size // 8 if self.crop == "random" else self.size

    @property
    def name(self) -> str:
        """The dataset's name: the folder's absolute path (a run reloads it from any folder) and
        the options given, in a fixed order."""
        options = {"size": self.size, "load": self.load, "crop": None if self.crop == "center" else self.crop,
                   "channels": self.channels, "augment": "+".join(self.augment) or None,
                   "strict": 1 if self.strict else None}
        source = os.path.abspath(self.path) if self.kind == "folder" or self.path.exists() else str(self.path)
        return f"{self.kind}:{source}" + "".join(f",{k}={v}" for k, v in (*self.extra, *options.items())
                                                 if v is not None)


def parse_folder_spec(text: str, kind: str = "folder", own_keys: tuple[str, ...] = ()) -> ImageSpec:
    """The :class:`ImageSpec` of ``PATH[,key=value...]`` (the part after ``folder:``); ``kind``
    and its ``own_keys`` for another source of images with the same options."""
    head, *items = re.split(r",(?=\s*[a-z_]+\s*=)", text)
    source = f"{kind}:{text}"
    given: dict[str, str] = {}
    for item in items:
        key, _, value = (s.strip() for s in item.partition("="))
        if key not in KEYS + own_keys:
            raise GenlabError(f"unknown option '{key}' in {source}; options: {', '.join(KEYS + own_keys)}")
        if key in given:
            raise GenlabError(f"option '{key}' is given twice in {source}")
        given[key] = value

    def whole(key: str, low: int, high: int) -> int | None:
        if key not in given:
            return None
        if not re.fullmatch(r"\d+", given[key]) or not low <= int(given[key]) <= high:
            raise GenlabError(f"{key}={given[key]} in {source}: {key} must be a whole number from {low} to {high}")
        return int(given[key])

    size, load = whole("size", 2, 4096), whole("load", 2, 8192)
    crop = given.get("crop", "center")
    if crop not in ("center", "random"):
        raise GenlabError(f"crop={crop} in {source}: choose crop=center or crop=random")
    channels = whole("channels", 1, 3)
    if channels == 2:
        raise GenlabError(f"channels=2 in {source}: choose channels=1 (grey) or channels=3 (colour)")
    augment = check_augment(tuple(a for a in given.get("augment", "").split("+") if a and a != "none"), source)
    strict = given.get("strict", "0").lower()
    if strict not in ("0", "1", "true", "false", "yes", "no"):
        raise GenlabError(f"strict={given['strict']} in {source}: choose strict=1 or strict=0")
    if size is None and (load is not None or crop == "random"):
        raise GenlabError(f"{source}: {'load' if load is not None else 'crop=random'} needs size=S, the side of "
                          "the images to train on (e.g. --image-size 64)")
    if load is not None and size is not None and load < size:
        raise GenlabError(f"{source}: load={load} is smaller than size={size}, so a crop of {size} would be larger "
                          f"than the image; give load={size} or more")
    return ImageSpec(path=Path(head).expanduser(), size=size, load=load, crop=crop, channels=channels,
                     augment=augment, strict=strict in ("1", "true", "yes"), kind=kind,
                     extra=tuple((k, given[k]) for k in own_keys if k in given))


# ---- finding the images --------------------------------------------------------------------------

def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _images_below(folder: Path) -> list[Path]:
    """The image files at any depth below ``folder``, in a fixed order; hidden files and folders
    are skipped, and each folder is visited once (a link back up the tree is not followed again)."""
    found, seen = [], set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / n for n in sorted(names) if _is_image(Path(n)) and os.path.isfile(os.path.join(root, n))]
    return found


def _loose_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p))


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and _images_below(p))


def scan(path: Path) -> tuple[dict[str, list[tuple[Path, int]]] | None, list[Path], list[int], list[str] | None]:
    """The folder's images: ``(splits, paths, labels, class_names)``. ``splits`` maps ``train`` and
    ``test`` to their positions in ``paths`` when the folder has those sub-folders, else None;
    labels are -1 for unlabelled images."""
    if not path.is_dir():
        raise GenlabError(f"image folder not found: {path}")
    has_splits = (path / "train").is_dir() and (path / "test").is_dir()
    roots = [path / "train", path / "test"] if has_splits else [path]
    # Classes come from every split's folders, so that a label means the same class in both.
    names = sorted({p.name for root in roots for p in _class_folders(root)}) or None
    paths: list[Path] = []
    labels: list[int] = []
    splits: dict[str, list[int]] = {}
    for root in roots:
        start = len(paths)
        loose = _loose_images(root)
        if names is None:
            paths += loose
            labels += [-1] * len(loose)
        elif loose:
            raise GenlabError(f"{root} holds both images and class sub-folders; move the loose images "
                              f"(e.g. {loose[0].name}) into a class folder, or the sub-folders out")
        else:
            for label, name in enumerate(names):
                if (root / name).is_dir():
                    found = _images_below(root / name)
                    paths += found
                    labels += [label] * len(found)
        if len(paths) == start:
            raise GenlabError(f"no images in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, "
                              "in class sub-folders at any depth or loose)")
        splits[root.name] = list(range(start, len(paths)))
    return (splits if has_splits else None), paths, labels, names


# ---- reading one image ---------------------------------------------------------------------------

def _open(path: Path) -> Image.Image:
    """``path`` with its header read and its size checked (``GenlabError`` if it is no image)."""
    from ..image_files import open_image

    return open_image(path, str(path), max_pixels=MAX_PIXELS)


def _header(img: Image.Image) -> tuple[tuple[int, int], bool]:
    """((height, width) as shown, after the EXIF orientation; whether the image is grey)."""
    w, h = img.size
    try:
        turned = img.getexif().get(0x0112) in _ROTATED
    except Exception:   # a broken EXIF block: the image itself may still read
        turned = False
    return ((w, h) if turned else (h, w)), img.mode in _GREY_MODES


def _eight_bit(img: Image.Image, grey: bool) -> Image.Image:
    """``img`` as 8-bit ``L`` (grey) or ``RGB``: wide grey scaled (not clipped), float grey taken
    in [0, 1], palettes expanded, alpha dropped."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        wide = np.asarray(img).astype(np.float64)
        full = 65535.0 if img.mode.startswith("I;16") or wide.max(initial=0) <= 65535 else 2.0 ** 32 - 1
        img = Image.fromarray(np.clip(np.round(wide * (255.0 / full)), 0, 255).astype(np.uint8))
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.round(np.asarray(img) * 255.0), 0, 255).astype(np.uint8))
    return img.convert("L" if grey else "RGB")


def pixels_of(img: Image.Image, side: int | None, grey: bool, name: str = "the image") -> np.ndarray:
    """The opened image ``img`` as (C, H, W) uint8, C = 1 if ``grey`` else 3, its EXIF orientation
    applied: with ``side``, its shorter side resized to ``side`` (bicubic, antialiased) and the
    centre ``side`` x ``side`` kept."""
    if side is not None and img.format == "JPEG":
        img.draft("L" if grey else "RGB", (side, side))   # decode at a fraction of the size, no smaller than asked
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as e:   # truncated data, a broken orientation tag: the file is unreadable
        raise GenlabError(f"cannot read image {name}: {e}") from None
    try:
        img = _eight_bit(img, grey)
    except (ValueError, OSError) as e:   # a mode Pillow cannot convert
        raise GenlabError(f"cannot read image {name}: its {img.mode} pixels cannot be made grey or RGB ({e})") from None
    if side is not None:
        w, h = img.size
        scale = side / min(w, h)
        size = (max(side, round(w * scale)), max(side, round(h * scale)))
        if size != (w, h):
            img = img.resize(size, Image.BICUBIC, reducing_gap=3.0)
        left, top = (size[0] - side) // 2, (size[1] - side) // 2
        img = img.crop((left, top, left + side, top + side))
    pixels = np.array(img)
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def read_pixels(path: Path, side: int | None, grey: bool) -> np.ndarray:
    """The image file at ``path`` as :func:`pixels_of` gives it."""
    with _open(path) as img:
        return pixels_of(img, side, grey, str(path))


# ---- where images come from ----------------------------------------------------------------------

class ImageSource:
    """Images to decode into a cache: a folder's files (:class:`FolderSource`), or the rows of
    another collection (a Hugging Face dataset). Each item has a name (for messages and the
    cache's index), a label (-1: none) and a split (``train``, ``test``, or None to be drawn)."""

    where: str = ""          # the source, for messages
    names: list[str]
    labels: list[int]
    splits: list[str | None]

    def open(self, i: int) -> Image.Image:
        """Item ``i`` as an image whose header is read (``GenlabError`` if it is none)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A string that changes when any item's pixels may have."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.names)


class FolderSource(ImageSource):
    """The image files of a folder (:func:`scan`)."""

    def __init__(self, path: Path):
        splits, paths, self.labels, self.class_names = scan(path)
        self.where, self.paths = str(path), paths
        self.names = [str(p.relative_to(path)) for p in paths]
        self.splits = [None] * len(paths)
        for split, positions in (splits or {}).items():
            for i in positions:
                self.splits[i] = split

    def open(self, i: int) -> Image.Image:
        return _open(self.paths[i])

    def fingerprint(self) -> str:
        digest = hashlib.sha256(os.path.abspath(self.where).encode())
        for p in self.paths:
            st = p.stat()
            digest.update(f"\0{p}\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return digest.hexdigest()


class _Decode(torch.utils.data.Dataset):
    """The items to decode, ``CHUNK`` at a time, for a ``DataLoader`` whose workers decode them:
    each item is one (k, C, H, W) uint8 tensor (one transfer between processes for k images)."""

    def __init__(self, source: ImageSource, items: list[int], side: int | None, grey: bool,
                 shape: tuple[int, int, int]):
        self.source, self.items, self.side, self.grey, self.shape = source, items, side, grey, shape

    def __len__(self) -> int:
        return -(-len(self.items) // CHUNK)

    def __getitem__(self, k: int) -> tuple[int, torch.Tensor, dict[int, str]]:
        """(first row, the pixels of this chunk's images, {row: why it could not be read})."""
        rows = range(k * CHUNK, min(len(self.items), (k + 1) * CHUNK))
        pixels = np.zeros((len(rows), *self.shape), dtype=np.uint8)
        errors = {}
        for j, row in enumerate(rows):
            name = self.source.names[self.items[row]]
            try:
                with self.source.open(self.items[row]) as img:
                    image = pixels_of(img, self.side, self.grey, name)
            except GenlabError as e:
                errors[row] = str(e)
                continue
            if image.shape != self.shape:   # a header that lied about the size
                errors[row] = f"cannot read image {name}: its size differs from its header's"
                continue
            pixels[j] = image
        return rows.start, torch.from_numpy(pixels), errors


def _workers(count: int) -> int:
    """Decoding processes: ``$GENLAB_WORKERS``, else none for a small folder and one per core (at
    most 8) for a large one."""
    env = os.environ.get("GENLAB_WORKERS")
    if env is not None:
        if not env.strip().isdigit():
            raise GenlabError(f"GENLAB_WORKERS={env}: give a whole number of decoding processes (0: none)")
        return int(env)
    return 0 if count <= SMALL_FOLDER else min(8, os.cpu_count() or 1)


# ---- the cache -----------------------------------------------------------------------------------

def _headers(source: ImageSource) -> tuple[list[int], dict[int, str], list[tuple[int, int]], bool]:
    """The readable items, the others' errors, the sizes of the readable ones, and whether all are grey."""
    good, bad, sizes, grey = [], {}, [], True
    for i in range(len(source)):
        try:
            with source.open(i) as img:
                size, is_grey = _header(img)
        except GenlabError as e:
            bad[i] = str(e)
            continue
        good.append(i)
        sizes.append(size)
        grey &= is_grey
    return good, bad, sizes, grey


def _check_sizes(names: list[str], sizes: list[tuple[int, int]], where: str) -> tuple[int, int]:
    """The one size of the images (H, W); a clear line if they differ (when no size is asked)."""
    by_size: dict[tuple[int, int], list[str]] = {}
    for name, s in zip(names, sizes):
        by_size.setdefault(s, []).append(name)
    if len(by_size) > 1:
        by_count = sorted(by_size.items(), key=lambda item: -len(item[1]))
        listing = ", ".join(f"{w}x{h}: {len(ns)}" for (h, w), ns in by_count[:4])
        raise GenlabError(f"images in {where} have different sizes (WxH {listing}; e.g. {by_count[1][1][0]}); "
                          f"give the side to train at, e.g. --image-size {min(min(s) for s in by_size)} "
                          "(or ,size=S after the source)")
    return next(iter(by_size))


def _build(source: ImageSource, spec: "ImageSpec", file: Path, meta: Path) -> dict:
    """Decode the readable images into ``file`` and describe them in ``meta``; returns the description."""
    good, bad, sizes, all_grey = _headers(source)
    if not good:
        raise GenlabError(f"no readable images in {source.where}: {len(bad)} could not be read "
                          f"(e.g. {next(iter(bad.values()))})")
    hw = (spec.side, spec.side) if spec.side is not None else \
        _check_sizes([source.names[i] for i in good], sizes, source.where)
    grey = spec.channels == 1 or (spec.channels is None and all_grey)
    shape = (1 if grey else 3, *hw)
    decoded = np.zeros(len(good), dtype=bool)
    equal_channels = True
    workers = _workers(len(good))
    if len(good) > SMALL_FOLDER and os.environ.get("RANK", "0") == "0":
        warnings.warn(GenlabWarning(f"decoding {len(good):,} images of {source.where} into the image cache, once "
                                    f"({workers} worker processes; --workers sets them)"), stacklevel=3)
    loader = torch.utils.data.DataLoader(_Decode(source, good, spec.side, grey, shape), batch_size=None,
                                         num_workers=workers)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            progress = _progress(len(good), source.where)
            for first, pixels, errors in loader:   # in order: the file is written front to back
                for row, error in errors.items():
                    bad[good[row]] = error
                ok = np.ones(len(pixels), dtype=bool)
                ok[[row - first for row in errors]] = False
                decoded[first:first + len(pixels)] = ok
                if not grey and equal_channels and ok.any():
                    chunk = pixels[torch.from_numpy(ok)]
                    equal_channels = bool((chunk[:, 0] == chunk[:, 1]).all() and (chunk[:, 1] == chunk[:, 2]).all())
                out.write(pixels.numpy().tobytes())
                progress.update(len(pixels))
            progress.close()
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    kept = [i for i, ok in zip(good, decoded) if ok]
    description = {
        "format": CACHE_FORMAT, "source": source.where, "record_shape": list(shape),
        # RGB files whose channels are all equal are grey, unless colour was asked for
        "grey": bool(grey or (spec.channels is None and equal_channels)),
        "images": [source.names[i] for i in kept], "labels": [source.labels[i] for i in kept],
        "splits": [source.splits[i] for i in kept],
        "rows": [r for r, ok in enumerate(decoded) if ok],
        "unreadable": {source.names[i]: bad[i] for i in sorted(bad)},
    }
    write_json_atomic(meta, description)
    return description


def _progress(total: int, where: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"decoding {Path(where).name or where} (once)", unit="img", leave=False,
                disable=True if total <= SMALL_FOLDER else None, dynamic_ncols=True)


def _cached(source: ImageSource, spec: "ImageSpec") -> tuple[dict, Path]:
    """The cache's description and records file for these images: found, or written now (one
    process at a time; another waits for it and then reads it)."""
    from filelock import FileLock

    key = hashlib.sha256(json.dumps([CACHE_FORMAT, source.fingerprint(), spec.side, spec.channels]).encode())
    key = key.hexdigest()[:32]
    folder = cache_dir() / "images"
    file, meta = folder / f"{key}.u8", folder / f"{key}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f"{key}.lock")):
            if not (file.is_file() and meta.is_file()):
                return _build(source, spec, file, meta), file
    except OSError as e:
        if not (file.is_file() and meta.is_file()):
            raise GenlabError(f"cannot write the image cache in {folder} ({e.strerror or e}); set GENLAB_CACHE "
                              "to a folder you can write") from None
    try:
        return json.loads(meta.read_text()), file
    except (OSError, ValueError):
        raise GenlabError(f"the image cache {meta} is damaged; delete it and run again") from None


def load_images(source: ImageSource, spec: "ImageSpec", split: str, class_names: list[str] | None) -> ImageDataset:
    """One split of ``source``'s images, as ``spec`` asks, read from their cache on demand."""
    description, file = _cached(source, spec)
    _report_unreadable(description["unreadable"], len(source), spec, source.where)
    rows = np.asarray(description["rows"], dtype=np.int64)
    labels = np.asarray(description["labels"], dtype=np.int64)
    splits = description["splits"]
    if any(s is not None for s in splits):
        index = np.flatnonzero(np.array([s == split for s in splits], dtype=bool))
        if not len(index):
            raise GenlabError(f"no readable images in the {split} split of {source.where}")
    else:
        index = split_index(len(rows), split, source.where)
    shape = tuple(description["record_shape"])
    crop = (spec.size, spec.size) if spec.size is not None else None
    images = ImageRecords(file, rows[index], shape, crop=crop,
                          channel=0 if description["grey"] and shape[0] == 3 else None)
    if "dihedral" in spec.augment and images.shape[-1] != images.shape[-2]:
        raise GenlabError(f"augment=dihedral turns images by quarter turns, and those in {source.where} are not "
                          "square; use augment=hflip, or give size=S")
    return ImageDataset(images=images, labels=None if class_names is None else torch.from_numpy(labels[index]),
                        name=spec.name, split=split, class_names=class_names, augment=spec.augment)


def load_folder(spec: "ImageSpec | str | os.PathLike", split: str) -> ImageDataset:
    """One split of a folder of images (see the module's doc), read from its cache on demand."""
    if not isinstance(spec, ImageSpec):
        spec = parse_folder_spec(str(spec))
    source = FolderSource(spec.path)
    return load_images(source, spec, split, source.class_names)


def _report_unreadable(unreadable: dict[str, str], total: int, spec: "ImageSpec", where: str) -> None:
    """One line about the images left out (``strict``: refuse them), from the first process only."""
    if not unreadable:
        return
    first, reason = next(iter(unreadable.items()))
    if spec.strict:
        raise GenlabError(f"{len(unreadable)} of {total} images in {where} cannot be read, e.g. {first} "
                          f"({reason}); remove them, or drop strict=1 to skip them")
    if os.environ.get("RANK", "0") != "0":
        return
    names = ", ".join(list(unreadable)[:3]) + (", ..." if len(unreadable) > 3 else "")
    warnings.warn(GenlabWarning(f"skipped {len(unreadable)} of {total} images in {where} that cannot be read "
                                f"({names}); strict=1 refuses them"), stacklevel=2)
