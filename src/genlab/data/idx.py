"""IDX files (the MNIST format) and the datasets stored in them: ``mnist`` and ``fashion-mnist``.

Files are read from ``data_dir / name`` (e.g. ``~/.cache/genlab/data/mnist/``), each either
gzip-compressed (``train-images-idx3-ubyte.gz``) or plain (``train-images-idx3-ubyte``). Missing
files are downloaded from public mirrors.

What is verified:

- ``mnist``: the MD5 of every file's *decompressed* contents, so a copy compressed again by
  someone else (different gzip header, different .gz checksum) still passes.
- ``fashion-mnist``: only the MD5s of the published ``.gz`` files are known, so a download is
  checked against them before it is written; local files are checked for structure only.
- Both: the IDX header (magic, element type, dimensions), the counts (60,000 / 10,000), the
  28x28 size and the labels (0..9).

A checksum takes ~0.1 s for the training images, so it is computed once per file and remembered
in ``.verified.json`` next to the files, keyed by size and modification time (skipped silently
where the folder is read-only).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError
from ..files import write_atomic
from .base import DatasetInfo, ImageDataset

# IDX element types: the third byte of the magic number. Values are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
DOWNLOAD_TIMEOUT_S = 10.0
CACHE_NAME = ".verified.json"


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array of its dimensions.

    The array has the native byte order of the file's element type (uint8 stays uint8) and owns
    its memory.
    """
    if len(data) < 4 or data[:2] != b"\0\0":
        raise GenlabError(f"{source}: not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise GenlabError(f"{source}: unknown IDX element type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise GenlabError(f"{source}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise GenlabError(
            f"{source}: IDX header says {'x'.join(map(str, dims))} values of {dtype.itemsize} byte(s) "
            f"but the file holds {len(data) - header} bytes of data; the file is truncated or corrupt"
        )
    values = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    # astype copies into native byte order, so the result is writable and torch-compatible.
    return values.astype(dtype.newbyteorder("="))


def read_bytes(path: Path) -> bytes:
    """The decompressed contents of ``path``, gzip-compressed or plain (told by its first bytes)."""
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise GenlabError(f"{path}: broken gzip file ({e}); delete it and download it again") from e
    return data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array, e.g. (60000, 28, 28) uint8 for MNIST images."""
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"IDX file not found: {path}")
    return parse_idx(read_bytes(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``compress`` (default: name ends .gz)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    array = np.asarray(array)
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(_IDX_DTYPES[code]).tobytes()
    path = Path(path)
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(data) if compress else data)


@dataclass(frozen=True)
class IdxDataset:
    """An image-classification dataset published as four IDX files.

    ``md5`` holds the MD5 of each file's decompressed contents (checked on every new local file);
    ``gz_md5`` the MD5 of the published ``.gz`` (checked on downloads). Keys are file stems such
    as ``"train-images-idx3-ubyte"``.
    """

    name: str
    description: str
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    counts: tuple[tuple[str, int], ...] = (("train", 60_000), ("test", 10_000))
    image_size: tuple[int, int] = (28, 28)
    md5: tuple[tuple[str, str], ...] = ()
    gz_md5: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def stems(split: str) -> tuple[str, str]:
        """File stems of the images and labels of ``split``."""
        prefix = "train" if split == "train" else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    @property
    def all_stems(self) -> list[str]:
        return [stem for split, _ in self.counts for stem in self.stems(split)]


def find_file(folder: Path, stem: str) -> Path | None:
    """The plain file if present (faster to read), else the ``.gz``, else None."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def locate(spec: IdxDataset, data_dir: Path) -> tuple[bool, str]:
    """Whether all four files of ``spec`` are in ``data_dir / name``, and that folder."""
    folder = Path(data_dir) / spec.name
    return all(find_file(folder, s) for s in spec.all_stems), str(folder)


# ---- checksums, computed once per file --------------------------------------------------------

def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _cache_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_cache(folder: Path) -> dict:
    try:
        return json.loads((folder / CACHE_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _remember(path: Path, digest: str) -> None:
    if not path.parent.stat().st_mode & stat.S_IWUSR:
        return  # a folder marked read-only (a shared copy) stays untouched, even for root
    cache = _read_cache(path.parent)
    cache[path.name] = {**_cache_key(path), "md5": digest}
    try:
        text = json.dumps(cache, indent=1).encode()
        write_atomic(path.parent / CACHE_NAME, lambda f: f.write(text))
    except OSError:
        pass  # not writable: verify again next time, still correct


def _verified(path: Path, expected: str) -> bool:
    entry = _read_cache(path.parent).get(path.name)
    return bool(entry) and entry == {**_cache_key(path), "md5": expected}


def read_verified(path: Path, expected_md5: str | None) -> bytes:
    """Decompressed contents of ``path``; raises GenlabError if their MD5 is not ``expected_md5``."""
    data = read_bytes(path)
    if expected_md5 and not _verified(path, expected_md5):
        digest = _md5(data)
        if digest != expected_md5:
            raise GenlabError(
                f"{path}: checksum mismatch (MD5 of the decompressed contents is {digest}, expected "
                f"{expected_md5}); the file is corrupt or a different version: delete it to download it again"
            )
        _remember(path, digest)
    return data


# ---- download ----------------------------------------------------------------------------------

def download(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The bytes at ``url`` (tests replace this function; they never use the network)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _fetch(spec: IdxDataset, folder: Path, stem: str) -> None:
    """Download ``stem.gz`` from the first mirror that serves the right bytes, and store it."""
    md5, gz_md5 = dict(spec.md5).get(stem), dict(spec.gz_md5).get(stem)
    reasons = []
    for mirror in spec.mirrors:
        url = f"{mirror}{stem}.gz"
        try:
            data = download(url)
            if gz_md5 and _md5(data) != gz_md5:
                raise ValueError("checksum mismatch")
            if md5 and _md5(gzip.decompress(data)) != md5:
                raise ValueError("checksum mismatch")
        except Exception as e:  # any failure of one mirror: try the next
            reasons.append(f"{url}: {' '.join(str(e).split())}")  # one line, whatever the error
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.gz"
        write_atomic(path, lambda f: f.write(data))  # readers never see half a file
        if md5:
            _remember(path, md5)
        return
    raise OSError("; ".join(reasons) or "no mirrors")


def ensure_files(spec: IdxDataset, folder: Path) -> None:
    """Download whichever of the four files are missing from ``folder``, or explain what to do."""
    missing = [s for s in spec.all_stems if find_file(folder, s) is None]
    if not missing:
        return
    try:
        for stem in missing:
            _fetch(spec, folder, stem)
    except OSError as e:
        names = ", ".join(f"{s}.gz" for s in spec.all_stems)
        raise GenlabError(
            f"{spec.name} files are missing and could not be downloaded ({e}); put {names} "
            f"(or their decompressed forms) in {folder}, or choose the folder that holds "
            f"'{spec.name}/' with --data-dir or GENLAB_DATA"
        ) from None


# ---- loading -----------------------------------------------------------------------------------

def load_split(spec: IdxDataset, split: str, data_dir: Path) -> ImageDataset:
    """Images (N, 1, H, W) uint8 and labels (N,) int64 of one split, downloading files if needed."""
    folder = Path(data_dir) / spec.name
    ensure_files(spec, folder)
    count, (height, width) = dict(spec.counts)[split], spec.image_size
    arrays, stems = [], spec.stems(split)
    for stem, shape in zip(stems, [(count, height, width), (count,)]):
        path = find_file(folder, stem)
        array = parse_idx(read_verified(path, dict(spec.md5).get(stem)), str(path))
        if array.shape != shape or array.dtype != np.uint8:
            raise GenlabError(
                f"{path}: expected uint8 values of shape {shape}, found {array.dtype} {array.shape}; "
                f"this is not {spec.name}'s {stem}: replace it"
            )
        arrays.append(array)
    images, labels = arrays
    if labels.max(initial=0) >= len(spec.class_names):
        last = len(spec.class_names) - 1
        raise GenlabError(f"{find_file(folder, stems[1])}: labels outside 0..{last}; replace the file")
    return ImageDataset(
        images=torch.from_numpy(images).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        name=spec.name,
        split=split,
        class_names=list(spec.class_names),
    )


MNIST = IdxDataset(
    name="mnist",
    description="MNIST handwritten digits, 28x28 grey (LeCun, Cortes, Burges)",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    class_names=tuple(str(i) for i in range(10)),
    md5=(
        ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
        ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
        ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
        ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
    ),
)
FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    description="Fashion-MNIST clothing images, 28x28 grey (Zalando Research)",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                 "Bag", "Ankle boot"),
    # Only the published .gz checksums are known (decompressed ones are not published).
    gz_md5=(
        ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
)


def _info(spec: IdxDataset) -> DatasetInfo:
    return DatasetInfo(
        name=spec.name,
        description=spec.description,
        image_shape=(1, *spec.image_size),
        splits=dict(spec.counts),
        num_classes=len(spec.class_names),
        load=lambda split, root: load_split(spec, split, root),
        locate=lambda root: locate(spec, root),
    )


#: the datasets this module reads, for the registry (genlab.data.registry)
DATASETS = [_info(MNIST), _info(FASHION_MNIST)]
