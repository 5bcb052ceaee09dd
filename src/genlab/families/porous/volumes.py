"""3-D porous media: segmented volumes, the cubes cut from them, and the 48 symmetries of a cube.

Conventions. A volume in NumPy is (D, H, W) ``bool`` with True = pore. A volume dataset holds
images (N, 1, D, H, W) uint8 with 255 = pore and 0 = grain, so its float view is 1 = pore.

Reading (:func:`read_volume`). The format follows the suffix: a multi-page TIFF (``.tif``,
``.tiff``; one page per slice), a NumPy array (``.npy``), or raw binary (``.raw``, ``.bin``,
``.dat``, or any other suffix when ``shape`` is given) of ``shape`` (D, H, W) and ``dtype``.

Which voxels are pore. Conventions differ between scanners and segmentation tools, so say so
when the default is wrong:

* a volume with exactly two values: the smaller value is pore by default (0 = pore, 255 = grain,
  as in the Ketton limestone data of Mosser et al. 2017); ``pore=V`` names the pore value, and
  ``pore="low"``/``"high"`` the smaller/larger one. A ``bool`` array is read as True = pore.
* a grey-level volume (more than two values) needs ``threshold=T``: voxels below T are pore, or,
  with ``pore="high"``, voxels at or above T.

Dataset names (:func:`load_volume_dataset`): ``volume:PATH[,key=value...]`` with the keys
``edge`` (cube edge, default 64), ``stride`` (default edge // 2), ``pore``, ``threshold``,
``shape`` (``DxHxW``, raw files) and ``dtype`` (raw files, default uint8), e.g.
``volume:rock.tif,edge=64,stride=32,pore=0`` or
``volume:scan.raw,shape=300x300x300,dtype=uint16,threshold=9000``.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ...errors import GenlabError, GenlabWarning, first_line
from ...files import write_atomic
from ...data.base import ImageDataset
from ...memory import available_bytes

TIFF_SUFFIXES = (".tif", ".tiff")
NPY_SUFFIXES = (".npy",)
RAW_SUFFIXES = (".raw", ".bin", ".dat")
SPEC_KEYS = ("edge", "stride", "pore", "threshold", "shape", "dtype")
DEFAULT_EDGE = 64
CUBE_SYMMETRIES = 48
#: a pore fraction above this is warned about when a volume is read (see :func:`read_volume`)
MOST_PORE = 0.5

PoreValue = int | float | str | None


# ---- reading -----------------------------------------------------------------------------------

def _shape_text(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def _check_shape(shape) -> tuple[int, int, int]:
    if isinstance(shape, str):
        shape = re.split(r"\s*[xX*]\s*", shape.strip())
    try:
        dims = tuple(int(s) for s in shape)
        whole = all(float(s) == int(s) for s in shape)
    except (TypeError, ValueError):
        dims, whole = (), False
    if len(dims) != 3 or not whole or min(dims) < 1:
        raise GenlabError(f"shape {shape!r} is not a volume's size; give three sides of at least 1, "
                          f"(D, H, W) or DxHxW, e.g. 256x256x256")
    return dims  # type: ignore[return-value]


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biuf":
        raise GenlabError(f"unknown voxel dtype '{dtype}'; use e.g. uint8, uint16, int16 or float32 "
                          f"(>u2 for big-endian 16-bit)")
    return dt


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            volume = tif.asarray()
            pages = len(tif.pages)
            if volume.ndim == 2 and pages > 1:
                # Pages written one by one may each form a series of their own: stack them all.
                sizes = sorted({page.shape for page in tif.pages})
                if len(sizes) > 1:
                    listing = ", ".join(_shape_text(s) for s in sizes[:4])
                    raise GenlabError(f"the {pages} pages of {path} differ in size ({listing}); a volume "
                                      f"needs pages of one size")
                volume = tif.asarray(key=range(pages))
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as e:
        raise GenlabError(f"cannot read {path} as a TIFF: {first_line(e)}") from None
    if volume.ndim == 2:
        raise GenlabError(f"{path} is one 2-D page, not a stack of pages; a volume needs one page per "
                          f"slice (a multi-page TIFF)")
    if volume.ndim != 3:
        raise GenlabError(f"{path} holds an array of shape {volume.shape}; a volume needs grey pages, "
                          f"(D, H, W) (colour pages are not a segmented volume)")
    return volume


def _read_npy(path: Path) -> np.ndarray:
    try:
        volume = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise GenlabError(f"cannot read {path} as a NumPy .npy array: {first_line(e)}") from None
    if not isinstance(volume, np.ndarray):  # an .npz archive under an .npy name
        volume.close()
        raise GenlabError(f"{path} is an .npz archive, not an .npy array; save the volume with np.save")
    if volume.ndim != 3:
        raise GenlabError(f"{path} holds an array of shape {volume.shape}; a volume is (D, H, W)")
    if volume.dtype.kind not in "biuf":
        raise GenlabError(f"{path} holds {volume.dtype} values; a volume needs bool or numbers")
    return volume


def _read_raw(path: Path, shape, dtype) -> np.ndarray:
    if shape is None:
        raise GenlabError(f"{path} is raw binary: give its size, shape=DxHxW (and dtype, default uint8)")
    dims = _check_shape(shape)
    dt = _check_dtype("uint8" if dtype is None else dtype)
    voxels = int(np.prod(dims, dtype=np.int64))
    need, size = voxels * dt.itemsize, path.stat().st_size
    if size != need:
        raise GenlabError(
            f"{path} holds {size} bytes, but shape {_shape_text(dims)} of {dt.name} needs {need} bytes "
            f"({voxels} voxels x {dt.itemsize}); check shape and dtype"
        )
    return np.fromfile(path, dtype=dt, count=voxels).reshape(dims)


def _segment(volume: np.ndarray, source: str, pore: PoreValue, threshold) -> tuple[np.ndarray, PoreValue, PoreValue]:
    """True = pore, following the rules in the module's docstring; with the ``pore`` setting that
    chose it (the default made explicit) and the setting that would read the other phase as pore."""
    if volume.size == 0:
        raise GenlabError(f"{source} is empty (shape {volume.shape})")
    if isinstance(pore, str) and pore not in ("low", "high"):
        raise GenlabError(f"pore='{pore}' is not a value; give the pore value (a number), 'low' or 'high'")
    if volume.dtype.kind == "f" and not np.isfinite(volume).all():
        raise GenlabError(f"{source} holds NaN or infinite values; a volume's values must be finite")
    if threshold is not None:
        return _threshold(volume, source, pore, threshold)
    # Exactly two values? (found in a few passes, without sorting 16M voxels)
    low = volume.flat[0]
    is_first = volume == low
    if is_first.all():
        raise GenlabError(f"{source} holds one value only ({low}); a volume needs two phases, pore and grain")
    other = volume.flat[int(np.argmin(is_first))]
    if not (is_first | (volume == other)).all():
        count = len(np.unique(volume))
        raise GenlabError(
            f"{source} has {count} distinct values (grey levels); give a threshold (`threshold=T`: "
            f"voxels below T are pore) or segment it first"
        )
    if other < low:
        low, other, is_first = other, low, ~is_first
    # is_first is now "== low"
    if pore is None:
        pore = "high" if volume.dtype == bool else "low"
    if pore == "low":
        return is_first, "low", "high"
    if pore == "high":
        return ~is_first, "high", "low"
    if pore == low:
        return is_first, pore, _value(other)
    if pore == other:
        return ~is_first, pore, _value(low)
    raise GenlabError(f"pore={pore} is not a value of {source} (values: {low} and {other}); choose one of them")


def _threshold(volume: np.ndarray, source: str, pore: PoreValue, threshold) -> tuple[np.ndarray, str, str]:
    """A grey-level volume cut at ``threshold`` (see :func:`_segment`)."""
    if pore is not None and not isinstance(pore, str):
        raise GenlabError(f"with a threshold, pore is 'low' (voxels below it, the default) or 'high' "
                          f"(voxels at or above it), not the value {pore}")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise GenlabError(f"threshold {threshold!r} is not a number") from None
    mask = volume < t if pore in (None, "low") else volume >= t
    if mask.all() or not mask.any():
        phase = "pore" if mask.all() else "grain"
        raise GenlabError(f"threshold {threshold} makes every voxel of {source} {phase} (values "
                          f"{volume.min()}..{volume.max()}); choose a threshold between them")
    return (mask, "low", "high") if pore in (None, "low") else (mask, "high", "low")


def _value(value) -> int | float:
    """A voxel value as a ``pore=`` setting (a bool as 0 or 1)."""
    return int(value) if float(value) == int(value) else float(value)


def _check_pore_fraction(mask: np.ndarray, source: str, pore: PoreValue, flip: PoreValue) -> None:
    """One line of warning when more than half of a volume reads as pore: few porous media hold
    more pore than grain, and a phase read the wrong way round gives plausible statistics."""
    fraction = float(mask.mean())
    if fraction > MOST_PORE and os.environ.get("RANK", "0") == "0":
        warnings.warn(GenlabWarning(
            f"{source} reads as porosity {fraction:.4f} with pore={pore}, and {1 - fraction:.4f} with pore={flip}: "
            f"more pore than grain; if the pore is the other phase, set pore={flip}"), stacklevel=4)


def _read_segmented(path: str | os.PathLike, shape, dtype, pore: PoreValue,
                    threshold) -> tuple[np.ndarray, PoreValue]:
    """:func:`read_volume`'s volume and the ``pore`` setting that read it (the default made explicit)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GenlabError(f"volume file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES or suffix in NPY_SUFFIXES:
        volume = _read_tiff(path) if suffix in TIFF_SUFFIXES else _read_npy(path)
        if shape is not None and volume.shape != _check_shape(shape):
            raise GenlabError(f"{path} is {_shape_text(volume.shape)}, not the shape "
                              f"{_shape_text(_check_shape(shape))} asked for; drop shape= (it is for raw files)")
        if dtype is not None and volume.dtype != _check_dtype(dtype):
            raise GenlabError(f"{path} holds {volume.dtype}, not the dtype {_check_dtype(dtype).name} "
                              f"asked for; drop dtype= (it is for raw files)")
    elif suffix in RAW_SUFFIXES or shape is not None:
        volume = _read_raw(path, shape, dtype)
    else:
        raise GenlabError(
            f"cannot tell the format of {path} from its suffix '{path.suffix}'; use a multi-page TIFF "
            f"(.tif), a .npy array, or raw binary (.raw, .bin, .dat, or any file with shape=DxHxW)"
        )
    mask, setting, flip = _segment(volume, str(path), pore, threshold)
    _check_pore_fraction(mask, str(path), setting, flip)
    return np.ascontiguousarray(mask), setting


def read_volume(path: str | os.PathLike, shape=None, dtype=None, pore: PoreValue = None,
                threshold: float | None = None) -> np.ndarray:
    """A segmented 3-D volume from a file, as (D, H, W) bool with True = pore.

    Args:
        path: a multi-page TIFF (``.tif``, ``.tiff``), a NumPy ``.npy`` array, or raw binary
            (``.raw``, ``.bin``, ``.dat``, or any suffix when ``shape`` is given).
        shape: (D, H, W) or ``"DxHxW"`` of a raw file (C order, W fastest); for a TIFF or
            ``.npy`` file, the shape it must have.
        dtype: a raw file's voxel type (default uint8), e.g. ``"uint16"``, ``">u2"``; for a TIFF
            or ``.npy`` file, the type it must hold.
        pore: which voxels are pore. With two values: the pore value, or ``"low"`` (the default:
            the smaller value, e.g. 0 = pore as in the Ketton data) or ``"high"``; a bool array
            is True = pore unless told. With ``threshold``: ``"low"`` (default) or ``"high"``.
            Conventions differ between scanners and tools: check the porosity you get.
        threshold: for a grey-level volume: voxels below it are pore (``pore="high"``: voxels at
            or above it).

    Raises:
        GenlabError: a missing or unreadable file, a single 2-D page, a raw file whose size does
            not match, a grey-level volume without a threshold, a ``pore`` value not present, or a
            volume of one value.

    A volume that reads as more pore than grain gets one line of warning
    (:class:`~genlab.errors.GenlabWarning`) with both readings and the setting that swaps them.
    """
    return _read_segmented(path, shape, dtype, pore, threshold)[0]


# ---- writing -----------------------------------------------------------------------------------

def _as_pore_mask(volume) -> np.ndarray:
    """(D, H, W) bool, True = pore, from bool, 0/1 values, or uint8 0/255 (255 = pore)."""
    if torch.is_tensor(volume):
        volume = volume.detach().cpu().numpy()
    v = np.asarray(volume)
    if v.ndim != 3:
        raise GenlabError(f"a volume is (D, H, W); got shape {v.shape}")
    if v.dtype == bool:
        return v
    if v.dtype.kind not in "iuf":
        raise GenlabError(f"a volume holds bool or 0/1 values; got {v.dtype}")
    pore = v != 0
    top = 255 if v.dtype == np.uint8 and (v == 255).any() else 1
    if not (pore == (v == top)).all():
        raise GenlabError("a volume to write holds bool or 0/1 values (True/1 = pore; uint8 0/255 also works); "
                          "threshold it first, e.g. volume > 0.5")
    return pore


def write_volume(volume, path: str | os.PathLike) -> Path:
    """Write a segmented volume (D, H, W), True/1 = pore, atomically; returns the path.

    ``.npy``: a bool array, True = pore. ``.tif``/``.tiff``: a multi-page TIFF of uint8 pages,
    one per slice, with 0 = pore and 255 = grain (the convention of the Ketton data). Either way
    :func:`read_volume` with its default settings gives the same volume back. The input may be
    bool, 0/1 numbers, or uint8 0/255 (255 = pore, as a volume dataset's images); a grey-level
    (float) volume must be thresholded first. The file is written beside ``path`` and moved into
    place, so a reader never sees half a file.
    """
    path = Path(path).expanduser()
    mask = np.ascontiguousarray(_as_pore_mask(volume))
    suffix = path.suffix.lower()
    if suffix in NPY_SUFFIXES:
        write_atomic(path, lambda f: np.save(f, mask, allow_pickle=False))
    elif suffix in TIFF_SUFFIXES:
        import tifffile

        pages = np.where(mask, np.uint8(0), np.uint8(255))
        write_atomic(path, lambda f: tifffile.imwrite(f, pages, photometric="minisblack"))
    else:
        raise GenlabError(f"cannot write a volume as '{path.suffix}'; use .npy or .tif")
    return path


# ---- cubes -------------------------------------------------------------------------------------

def _whole(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GenlabError(f"{what} must be a whole number of at least 1, got {value!r}")
    return int(value)


def _fitting_edge(shape: tuple[int, ...]) -> int:
    """The largest power of 2 that fits the volume's shortest side: an edge to suggest."""
    edge = 1
    while edge * 2 <= min(shape):
        edge *= 2
    return edge


def subvolumes(volume, edge: int, stride: int) -> np.ndarray:
    """Cubes of side ``edge`` cut every ``stride`` voxels along each axis: (N, edge, edge, edge).

    Cubes are in C order of their corners (depth, then height, then width); a (D, H, W) volume
    gives ((D - edge) // stride + 1) * (same for H) * (same for W) of them, e.g. 7^3 = 343 for
    256^3 with edge 64 and stride 32. The result is a copy, of the volume's dtype.
    """
    v = np.asarray(volume)
    if v.ndim != 3:
        raise GenlabError(f"a volume is (D, H, W); got shape {v.shape}")
    edge, stride = _whole(edge, "cube edge"), _whole(stride, "stride")
    if edge > min(v.shape):
        raise GenlabError(f"cube edge {edge} is larger than the volume ({_shape_text(v.shape)}); give an edge of "
                          f"at most {min(v.shape)} in the data's name, e.g. `volume:PATH,edge={_fitting_edge(v.shape)}`")
    count = math.prod((side - edge) // stride + 1 for side in v.shape)
    need, free = count * edge ** 3 * v.itemsize, available_bytes()
    if free is not None and need > free:
        raise GenlabError(f"cubes of {edge}^3 every {stride} voxels of a {_shape_text(v.shape)} volume are {count:,} "
                          f"cubes, {need / 2 ** 30:,.1f} GiB, more than the {free / 2 ** 30:.1f} GiB of memory left; "
                          f"give a larger stride in the data's name, e.g. `volume:PATH,edge={edge},stride={edge}`")
    windows = np.lib.stride_tricks.sliding_window_view(v, (edge, edge, edge))
    return windows[::stride, ::stride, ::stride].reshape(-1, edge, edge, edge).copy()


# ---- dataset specs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeSpec:
    """A parsed ``volume:PATH[,key=value...]`` name. ``spec`` is the name, with its prefix."""

    spec: str
    path: Path
    edge: int = DEFAULT_EDGE
    stride: int = DEFAULT_EDGE // 2
    pore: PoreValue = None
    threshold: float | None = None
    shape: tuple[int, int, int] | None = None
    dtype: str | None = None
    absolute: str = ""  # the spec with the file's absolute path (the dataset's name)


def _number(text: str) -> int | float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)
    return int(value) if re.fullmatch(r"[+-]?\d+", text.strip()) else value


def spec_options(items: list[str], keys, name: str) -> dict[str, str]:
    """``{key: value}`` of a spec's ``key=value`` items, each key one of ``keys`` and given once."""
    given: dict[str, str] = {}
    for item in items:
        key, _, value = (s.strip() for s in item.partition("="))
        if key not in keys:
            raise GenlabError(f"unknown key '{key}' in {name}; keys: {', '.join(keys)}")
        if key in given:
            raise GenlabError(f"key '{key}' is given twice in {name}")
        given[key] = value
    return given


def parse_volume_spec(spec: str) -> VolumeSpec:
    """Parse ``volume:PATH[,key=value...]`` (the ``volume:`` prefix may be left off).

    Keys: ``edge`` (default 64), ``stride`` (default edge // 2), ``pore`` (a value, ``low`` or
    ``high``), ``threshold`` (a number), ``shape`` (``DxHxW``), ``dtype`` (e.g. ``uint16``). The
    path runs up to the first ``,key=``, so it may itself hold commas.
    """
    rest = spec[len("volume:"):] if spec.startswith("volume:") else spec
    name = f"volume:{rest}"
    head, *items = re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", rest)
    if not head.strip():
        raise GenlabError(f"'{name}' names no file; write volume:PATH[,key=value...], e.g. volume:rock.tif,edge=64")
    given = spec_options(items, SPEC_KEYS, name)

    def bad(key: str, want: str) -> GenlabError:
        return GenlabError(f"{key}={given[key]} in {name}: {key} must be {want}")

    options: dict = {}
    for key in ("edge", "stride"):
        if key in given:
            if not re.fullmatch(r"\d+", given[key]) or int(given[key]) < 1:
                raise bad(key, "a whole number of at least 1")
            options[key] = int(given[key])
    if "pore" in given:
        if given["pore"] in ("low", "high"):
            options["pore"] = given["pore"]
        else:
            try:
                options["pore"] = _number(given["pore"])
            except ValueError:
                raise bad("pore", "the pore value (a number), 'low' or 'high'") from None
    if "threshold" in given:
        try:
            options["threshold"] = _number(given["threshold"])
        except ValueError:
            raise bad("threshold", "a number") from None
    if "shape" in given:
        sides = re.split(r"\s*[x*X]\s*", given["shape"])
        if len(sides) != 3 or not all(re.fullmatch(r"\d+", s) and int(s) >= 1 for s in sides):
            raise bad("shape", "three sides DxHxW, e.g. 300x300x300")
        options["shape"] = tuple(int(s) for s in sides)
    if "dtype" in given:
        try:
            _check_dtype(given["dtype"])
        except GenlabError:
            raise bad("dtype", "a voxel type such as uint8, uint16, int16, float32 or >u2") from None
        options["dtype"] = given["dtype"]
    edge = options.get("edge", DEFAULT_EDGE)
    options.setdefault("stride", max(1, edge // 2))
    path = Path(head).expanduser()
    # The dataset's name holds the file's absolute path: a run reloads it from any folder.
    absolute = f"volume:{os.path.abspath(path)}{rest[len(head):]}"
    return VolumeSpec(spec=name, path=path, absolute=absolute, **options)


def read_volume_spec(spec: str | VolumeSpec) -> tuple[np.ndarray, VolumeSpec]:
    """The whole volume a ``volume:`` name refers to, (D, H, W) bool True = pore, and its options.

    For evaluation: the statistics of generated cubes are compared with the training volume's.
    The options' ``pore`` is the setting that read the volume: a name without one gets the
    default's, ``pore=low`` for instance, so that the name (a run's record of its data) says
    which phase was taken as pore.
    """
    options = spec if isinstance(spec, VolumeSpec) else parse_volume_spec(spec)
    path = options.path
    if not path.is_file() and "," in str(path):
        raise GenlabError(f"volume file not found: {path}; options follow the path as ,key=value "
                          f"(keys: {', '.join(SPEC_KEYS)})")
    volume, pore = _read_segmented(path, options.shape, options.dtype, options.pore, options.threshold)
    if options.pore is None:
        options = replace(options, pore=pore, absolute=f"{options.absolute or options.spec},pore={pore}")
    return volume, options


def phase_record(options: VolumeSpec, volume: np.ndarray | None = None) -> dict:
    """Which voxels a volume's statistics took as pore, for the files that hold them: the
    ``pore`` setting (None for a name from before genlab recorded it, which read the default:
    the smaller value, True in a bool array) and, given the volume, its porosity."""
    record = {"pore": options.pore, "data": options.absolute or options.spec}
    if volume is not None:
        record["porosity"] = float(volume.mean())
    return record


def load_volume_dataset(spec: str, split: str = "train") -> ImageDataset:
    """The cubes of a segmented volume, as a dataset of images (N, 1, e, e, e) uint8, 255 = pore.

    ``spec`` is ``volume:PATH[,key=value...]`` (see :func:`parse_volume_spec`; the prefix may be
    left off), e.g. ``volume:rock.tif,edge=64,stride=32,pore=0``. The cubes are
    :func:`subvolumes` of the whole volume, ``edge`` voxels a side, every ``stride`` voxels.

    Splits: ``train`` and ``test`` are both all the cubes of the whole volume. A porous medium is
    taken to be stationary, so generated samples are judged by comparing their statistics
    (porosity, two-point function, ...) with those of the training volume's cubes of the same
    size; there is no held-out split. The dataset is named with the full spec string (with the
    ``volume:`` prefix and the file's absolute path), so that a run records how to load it again
    from any folder; :func:`read_volume_spec` gives the whole volume.
    """
    if split not in ("train", "test"):
        raise GenlabError(f"unknown split '{split}'; choose 'train' or 'test'")
    volume, options = read_volume_spec(spec)
    cubes = subvolumes(volume, options.edge, options.stride)
    images = torch.from_numpy(cubes.view(np.uint8)).mul_(255).unsqueeze(1)
    return ImageDataset(images=images, labels=None, name=options.absolute or options.spec, split=split)


# ---- the 48 symmetries of the cube -------------------------------------------------------------

_PERMUTATIONS = list(itertools.permutations(range(3)))  # (0, 1, 2) first: index 0 is the identity


def _symmetry(x: torch.Tensor, k: int) -> torch.Tensor:
    perm, flips = _PERMUTATIONS[k // 8], k % 8
    y = x.permute(*range(x.ndim - 3), *(x.ndim - 3 + p for p in perm))
    dims = [x.ndim - 3 + axis for axis in range(3) if flips >> axis & 1]
    return y.flip(dims) if dims else y


def cube_symmetry(x: torch.Tensor, index: torch.Tensor | int) -> torch.Tensor:
    """Apply one of the 48 symmetries of the cube to each of a batch of cubes (N, C, D, H, W).

    ``index`` (an int for all, or (N,) integers in 0..47): ``index // 8`` picks a permutation of
    the three spatial axes (in :func:`itertools.permutations` order) and bit ``a`` of
    ``index % 8`` flips spatial axis ``a`` after it. Index 0 is the identity. Returns a new
    tensor (the identity included) of the same shape, dtype and device.
    """
    if x.ndim != 5 or not (x.shape[2] == x.shape[3] == x.shape[4]):
        raise ValueError(f"cube_symmetry needs cubes (N, C, D, H, W) with D = H = W, got shape {tuple(x.shape)}")
    if not torch.is_tensor(index):
        k = int(index)
        if not 0 <= k < CUBE_SYMMETRIES:
            raise ValueError(f"cube symmetry index must lie in 0..47, got {k}")
        return _symmetry(x, k).contiguous()
    index = index.to(device=x.device, dtype=torch.long).reshape(-1)
    if len(index) != len(x):
        raise ValueError(f"{len(index)} symmetry indices for {len(x)} cubes")
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= CUBE_SYMMETRIES):
        raise ValueError("cube symmetry indices must lie in 0..47")
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    for k in torch.unique(index).tolist():
        chosen = (index == k).nonzero().squeeze(1)
        out[chosen] = _symmetry(x[chosen], k)
    return out


def random_cube_symmetry(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each cube of (N, C, D, H, W) under a symmetry drawn uniformly from the 48 (data augmentation)."""
    index = torch.randint(CUBE_SYMMETRIES, (len(x),), generator=generator)
    return cube_symmetry(x, index)
