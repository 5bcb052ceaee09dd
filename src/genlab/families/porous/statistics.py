"""Statistics of a two-phase porous medium: porosity, two-point probability function, specific
surface, chord lengths, Euler characteristic.

Convention. A volume is an array of shape (D, H, W) whose voxels are 1 (or True) for pore and 0
for grain. :func:`as_binary` accepts bool arrays, integer 0/1 arrays, float arrays in [0, 1]
(pore where the value is at least 0.5), torch tensors, and a single-channel (1, D, H, W) array.
Lengths are in voxels, areas in voxel faces, and "per voxel" means divided by the number of
voxels, so a specific surface is an area per unit volume in inverse voxels.

The S2-based estimates follow Mosser, Dubrule and Blunt, Phys. Rev. E 96, 043309 (2017), so that
numbers computed here are comparable with the paper's reference statistics:

* S2(r), non-periodic, along each axis (:func:`two_point`);
* the slope of the direction-averaged S2 at the origin, fitted over lags 0..4 (:func:`s2_slope`);
* specific surface ``S_v = -4 * slope`` of the pore S2, and mean chord length of a phase
  ``-S2(0) / slope`` of that phase's S2.

The factor 4 is stereology: a line meets the interface ``P_L = S_v / 2`` times per unit length
in an isotropic medium, and ``S2(r) = phi - P_L * r / 2 + ...`` for small r, since a pair at a
small distance r straddles the interface with probability ``P_L * r`` and half of such pairs
start in the pore phase. The mean chord of a phase is its length fraction over the number of
chords per unit length: ``phi / (P_L / 2) = 4 phi / S_v = -phi / S2'(0)``.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import fft as sfft

from ...errors import GenlabError

__all__ = [
    "checked_volume", "as_binary", "porosity", "two_point", "s2_slope", "specific_surface_from_s2", "chord_lengths_from_s2",
    "specific_surface_mesh", "chord_lengths", "euler_characteristic", "euler_table", "describe",
    "describe_sections", "compare", "METRICS", "S2_FIT_LAGS", "EULER_METHODS",
]

#: Number of lags (0..S2_FIT_LAGS-1) of the line fitted to S2 at the origin, as in the paper.
S2_FIT_LAGS = 5
#: The statistics :func:`describe` knows.
METRICS = ("porosity", "s2", "surface", "chords", "euler")
# Elements per chunk of the FFT in two_point: bounds its memory to a few hundred MB at 256^3.
_FFT_CHUNK = 1 << 22


# ---- input -------------------------------------------------------------------------------------

def checked_volume(volume: Any, name: str = "a volume") -> np.ndarray:
    """``volume`` as a NumPy array of shape (D, H, W), checked: bool, integers 0 and 1, or finite
    floats in [0, 1] (1 = pore); a torch tensor or a single-channel (1, D, H, W) array is accepted.
    Anything else raises :class:`GenlabError` with one line (``name`` says which volume)."""
    if hasattr(volume, "detach") and hasattr(volume, "numpy"):  # a torch tensor, without importing torch
        volume = volume.detach().cpu().numpy()
    v = np.asarray(volume)
    if v.ndim == 4 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 3:
        raise GenlabError(f"{name} must have shape (D, H, W) or (1, D, H, W), not {tuple(v.shape)}; "
                          "pass one 3-D array per volume")
    if v.size == 0:
        raise GenlabError(f"{name} of shape {tuple(v.shape)} has no voxels; pass a volume with voxels")
    if v.dtype == bool:
        return v
    if np.issubdtype(v.dtype, np.integer):
        if v.min() < 0 or v.max() > 1:
            raise GenlabError(f"an integer volume must hold only 0 (grain) and 1 (pore), found values "
                              f"{v.min()}..{v.max()}; convert it first, e.g. volume == 0 where 0 marks pore")
        return v
    if np.issubdtype(v.dtype, np.floating):
        if not np.isfinite(v).all() or v.min() < 0 or v.max() > 1:
            raise GenlabError(f"{name} must hold finite values in [0, 1] (1 = pore); rescale it first, "
                              "e.g. (volume + 1) / 2 for values in [-1, 1]")
        return v
    raise GenlabError(f"{name} has dtype {v.dtype}; pass bool, 0/1 integers or floats in [0, 1]")


def as_binary(volume: Any) -> np.ndarray:
    """``volume`` (as :func:`checked_volume` accepts it) as a bool array (D, H, W), True where
    there is pore; floats are thresholded at 0.5 (pore where the value is >= 0.5)."""
    v = checked_volume(volume)
    return v if v.dtype == bool else (v >= 0.5 if np.issubdtype(v.dtype, np.floating) else v.astype(bool))


def _phase(volume: Any, phase: int) -> np.ndarray:
    """The voxels of ``phase`` (1 pore, 0 grain) as a bool array."""
    if phase not in (0, 1):
        raise GenlabError(f"phase must be 1 (pore) or 0 (grain), not {phase!r}")
    v = as_binary(volume)
    return v if phase == 1 else ~v


# ---- porosity and the two-point probability function --------------------------------------------

def porosity(volume: Any) -> float:
    """Fraction of voxels that are pore."""
    return float(as_binary(volume).mean())


def two_point(volume: Any, phase: int = 1, max_lag: int | None = None) -> np.ndarray:
    """The two-point probability function S2(r) of ``phase`` (1 pore, 0 grain) along each axis.

    For axis a and lag r, S2_a(r) is the probability that two voxels r apart along axis a both
    lie in the phase. It is estimated without periodic wrap-around: each line along axis a (of
    length L) holds L - r pairs at lag r, all lines have the same length, so

        S2_a(r) = (sum over lines and i < L - r of x[i] x[i + r]) / (number of lines * (L - r)).

    S2_a(0) is the phase's volume fraction. Returns an array of shape (max_lag + 1, 3) whose
    columns are the axes 0, 1, 2, which the paper's reference files call x, y, z (their y and z
    are the axes 2 and 1 of ketton.tif as tifffile reads it). ``max_lag`` defaults to
    min(shape) // 2 and must be smaller than every side.

    Computation: the pair sums of all lags at once are an autocorrelation, obtained by FFT along
    the axis with zero padding to at least L + max_lag (so that no pair wraps around for the lags
    kept) and summing the power spectra of all lines before one inverse transform. The sums are
    counts of pairs, hence integers; they are rounded to the nearest integer, which makes the
    result equal to the direct sum (the FFT's rounding error is far below one half at any
    practical size)."""
    x = _phase(volume, phase)
    if max_lag is None:
        max_lag = min(x.shape) // 2
    max_lag = int(max_lag)
    if not 0 <= max_lag < min(x.shape):
        raise GenlabError(f"max_lag {max_lag} does not fit a volume of shape {x.shape}; "
                          f"use a lag from 0 to {min(x.shape) - 1}")
    return np.stack([_axis_s2(x, axis, max_lag) for axis in range(3)], axis=1)


def _axis_s2(x: np.ndarray, axis: int, max_lag: int) -> np.ndarray:
    """S2 along one axis of the bool volume ``x`` for lags 0..max_lag (see :func:`two_point`)."""
    lines = np.moveaxis(x, axis, -1)
    length = lines.shape[-1]
    n_lines = x.size // length
    n_fft = sfft.next_fast_len(length + max_lag, real=True)
    power = np.zeros(n_fft // 2 + 1)
    step = max(1, _FFT_CHUNK // (lines.shape[1] * length))
    for start in range(0, lines.shape[0], step):
        spectrum = sfft.rfft(lines[start:start + step].astype(np.float64), n=n_fft, axis=-1)
        power += (spectrum.real ** 2 + spectrum.imag ** 2).sum(axis=(0, 1))
    counts = np.rint(sfft.irfft(power, n=n_fft)[:max_lag + 1])
    return counts / (n_lines * (length - np.arange(max_lag + 1)))


def _mean_s2(volume: Any, phase: int, max_lag: int | None = None) -> np.ndarray:
    """S2 of ``phase`` averaged over the three axes."""
    return two_point(volume, phase, max_lag).mean(axis=1)


def s2_slope(s2_mean: Sequence[float] | np.ndarray, n: int = S2_FIT_LAGS) -> float:
    """Slope at the origin of a (direction-averaged) S2 curve.

    A straight line through (0, S2(0)) with slope a is fitted by least squares to lags
    r = 0..n-1: minimising sum_r (S2(r) - S2(0) - a r)^2 gives

        a = sum_r r (S2(r) - S2(0)) / sum_r r^2.

    With n = 5 this is how the paper's reference slopes were computed."""
    s = np.asarray(s2_mean, dtype=np.float64).ravel()
    if n < 2 or len(s) < n:
        raise GenlabError(f"the S2 slope needs n >= 2 lags and a curve at least that long "
                          f"(n={n}, {len(s)} lags given); compute S2 up to lag {max(n, 2) - 1} or more")
    r = np.arange(n)
    return float((r * (s[:n] - s[0])).sum() / (r * r).sum())


def _chord_from_curve(s2_mean: np.ndarray) -> float:
    """Mean chord ``-S2(0) / slope`` of the phase whose S2 is ``s2_mean`` (inf without slope)."""
    slope = s2_slope(s2_mean)
    return float(-s2_mean[0] / slope) if slope != 0 else math.inf


def specific_surface_from_s2(volume: Any) -> float:
    """Specific surface per voxel, ``S_v = -4 * slope`` of the pore S2 at the origin."""
    return -4.0 * s2_slope(_mean_s2(volume, 1, S2_FIT_LAGS - 1))


def chord_lengths_from_s2(volume: Any) -> dict[str, float]:
    """Mean chord length of each phase from its own S2: ``-S2(0) / slope`` (voxels).

    A phase whose S2 has zero slope (no interface) has an infinite mean chord."""
    return {name: _chord_from_curve(_mean_s2(volume, phase, S2_FIT_LAGS - 1))
            for name, phase in (("pore", 1), ("grain", 0))}


# ---- measured surface, chords and topology -----------------------------------------------------

def specific_surface_mesh(volume: Any) -> float:
    """Area of the pore-grain interface per voxel, measured on a triangulated isosurface.

    The pore indicator (as float) is triangulated by marching cubes at level 0.5
    (``skimage.measure.marching_cubes``) and the triangles' area summed
    (``skimage.measure.mesh_surface_area``), then divided by the number of voxels. The volume
    is not padded: it is a sample of a larger medium, so its faces are not an interface and the
    surface stops at the outermost voxel centres. A volume of a single phase has no surface."""
    from skimage.measure import marching_cubes, mesh_surface_area

    v = as_binary(volume)
    if min(v.shape) < 2 or v.all() or not v.any():
        return 0.0
    verts, faces, _, _ = marching_cubes(v.astype(np.float32), level=0.5)
    return float(mesh_surface_area(verts, faces) / v.size)


def _runs(x: np.ndarray, axis: int) -> tuple[int, int]:
    """Total length and number of the runs of True along ``axis`` that touch neither end.

    Padding each line with False and differencing marks a run's start (+1) and its end (-1);
    starts and ends pair up in order, since runs do not nest."""
    lines = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    padded = np.zeros((lines.shape[0], lines.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = lines
    edges = np.diff(padded, axis=1)
    starts = np.nonzero(edges == 1)[1]   # row-major: line by line, in order along each line
    ends = np.nonzero(edges == -1)[1]    # index one past the run's last voxel
    inner = (starts > 0) & (ends < lines.shape[1])
    return int((ends - starts)[inner].sum()), int(inner.sum())


def chord_lengths(volume: Any) -> dict[str, float]:
    """Mean measured chord (run) length of each phase, in voxels, along the three axes.

    A chord is a maximal run of voxels of one phase along a line parallel to an axis. Runs that
    touch a face of the volume are cut by the sampling window, so they are left out; the mean is
    the total length of the remaining runs of all three axes over their number. (Leaving out cut
    runs slightly favours short chords when chords are not small compared with the volume.) A
    phase without any complete run gets NaN."""
    v = as_binary(volume)
    out = {}
    for name, x in (("pore", v), ("grain", ~v)):
        total, count = map(sum, zip(*(_runs(x, axis) for axis in range(3))))
        out[name] = total / count if count else math.nan
    return out


#: The Euler characteristic's methods (see :func:`euler_characteristic`); the first is the default.
EULER_METHODS = ("morpholibj", "skimage")
#: The phase each Euler method counts unless told: the grain for MorphoLibJ's (as Mosser et al.
#: counted the 255 label of their scans), the pore for scikit-image's (genlab's earlier figures).
_EULER_PHASE = {"morpholibj": 0, "skimage": 1}
#: The eight voxels of a 2x2x2 cell, as offsets from its first voxel; bit i of a cell's code is
#: the voxel at offset _CELL_CORNERS[i].
_CELL_CORNERS = tuple(itertools.product((0, 1), repeat=3))


def euler_characteristic(volume: Any, method: str = "morpholibj", phase: int | None = None,
                         connectivity: int = 3) -> float:
    """Euler characteristic of ``phase`` (1 pore, 0 grain): components - tunnels + cavities.

    ``connectivity`` 1 joins voxels sharing a face (6-neighbourhood), 3 also those sharing an
    edge or a corner (26-neighbourhood). ``method``:

    * ``"morpholibj"`` (default): the count of Mosser et al.'s reference figures, MorphoLibJ's 3-D
      Euler number as of 2017: ``phase`` defaults to the grain, and the sum of :func:`euler_table`
      over the 2x2x2 cells lying inside the volume, divided by 8, with no padding and no edge
      correction, so the value is a multiple of 1/8. A closed shape X meeting one face counts
      chi(X) - chi(S)/2, S its section in the face; a volume full of the phase counts 0.
    * ``"skimage"``: ``skimage.measure.euler_number``, whose ``phase`` defaults to the pore. It
      pads the volume with the other phase, so it counts the phase as an object cut out of the
      medium: always a whole number.

    Given the same phase, the two agree when it touches none of the volume's faces. Returns a
    float either way."""
    _check_euler_method(method)
    _check_connectivity(connectivity)
    x = _phase(volume, _EULER_PHASE[method] if phase is None else phase)
    if method == "skimage":
        from skimage.measure import euler_number

        return float(euler_number(x, connectivity=connectivity))
    return float(euler_table(connectivity) @ _cell_counts(x)) / 8


def _check_euler_method(method: str) -> None:
    if method not in EULER_METHODS:
        raise GenlabError(f"unknown Euler method {method!r}; choose 'morpholibj' (the paper's: cells inside "
                          "the volume, grain phase) or 'skimage' (padded, pore phase)")


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in (1, 3):
        raise GenlabError(f"connectivity must be 1 (6-neighbourhood) or 3 (26-neighbourhood), "
                          f"not {connectivity!r}")


def _cell_faces() -> list[list[int]]:
    """The six faces of a 2x2x2 cell, each as the bits of its four voxels in a cell's code."""
    return [[bit for bit, corner in enumerate(_CELL_CORNERS) if corner[axis] == side]
            for axis in range(3) for side in (0, 1)]


def _euler_table_6() -> np.ndarray:
    """8 x the Euler characteristic that each of the 256 configurations of a 2x2x2 cell adds, for
    6-connectivity (integers; bit i of a configuration is the voxel at ``_CELL_CORNERS[i]``).

    A 6-connected phase is the cell complex whose vertices are its voxels, whose edges join two
    of them sharing a face, whose squares are four of them in a 2x2 square and whose cubes are
    eight in a 2x2x2 cell. A vertex lies in 8 cells, an edge in 4, a square in 2 and a cube in 1,
    so chi = sum over the cells of v/8 - e/4 + f/2 - c, counting in each cell the vertices, edges,
    squares and cube it holds (Ohser and Muecklich's local Euler contributions)."""
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    pairs = [(i, j) for i, j in itertools.combinations(range(8), 2)
             if sum(a != b for a, b in zip(_CELL_CORNERS[i], _CELL_CORNERS[j])) == 1]
    edges = sum(bits[:, i] & bits[:, j] for i, j in pairs)
    squares = sum(bits[:, face].all(axis=1) for face in _cell_faces())
    return bits.sum(1) - 2 * edges + 4 * squares - 8 * bits.all(axis=1)


def euler_table(connectivity: int = 3) -> np.ndarray:
    """8 x the Euler characteristic each 2x2x2 configuration adds (256 integers), for
    ``connectivity`` 1 (6-neighbourhood) or 3 (26-neighbourhood) of the phase counted.

    26-connectivity is the topology of the phase's voxels taken as closed unit cubes. A corner,
    edge, face or cube of the voxel grid belongs to that union unless all the voxels around it
    (8, 4, 2 or 1) are of the other phase, and those are, with the dimension reversed, the cells
    of the other phase's 6-connected complex. All the cells around a corner add 1 - 3 + 3 - 1 = 0,
    so a configuration adds, with 26-connectivity, what its complement adds with 6-connectivity."""
    _check_connectivity(connectivity)
    table = _euler_table_6()
    return table if connectivity == 1 else table[::-1].copy()


def _cell_counts(x: np.ndarray) -> np.ndarray:
    """How many of the 2x2x2 cells lying inside the bool volume ``x`` hold each of the 256
    configurations (bit i: the voxel at offset ``_CELL_CORNERS[i]`` of the cell)."""
    n0, n1, n2 = (max(side - 1, 0) for side in x.shape)
    codes = np.zeros((n0, n1, n2), np.uint8)
    for bit, (a, b, c) in enumerate(_CELL_CORNERS):
        codes |= x[a:a + n0, b:b + n1, c:c + n2].view(np.uint8) << np.uint8(bit)
    return np.bincount(codes.ravel(), minlength=256)


# ---- many volumes ------------------------------------------------------------------------------

def _volumes(volumes: Any) -> list[np.ndarray]:
    """A list or an (N, D, H, W) / (N, 1, D, H, W) array of volumes as bool arrays."""
    if hasattr(volumes, "detach") and hasattr(volumes, "numpy"):
        volumes = volumes.detach().cpu().numpy()
    if isinstance(volumes, np.ndarray):
        if volumes.ndim not in (4, 5):
            raise GenlabError(f"an array of volumes must have shape (N, D, H, W) or (N, 1, D, H, W), "
                              f"not {volumes.shape}; wrap a single volume in a list")
        volumes = list(volumes)
    items = [as_binary(v) for v in volumes]
    if not items:
        raise GenlabError("no volumes were given; pass a list of at least one (D, H, W) volume")
    return items


def _summary(values: Iterable[float]) -> dict[str, Any]:
    """Per-volume values, their mean and sample standard deviation (0 for a single volume)."""
    vals = [float(x) for x in values]
    a = np.asarray(vals)
    return {"values": vals, "mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def describe(volumes: Any, metrics: Sequence[str] = METRICS, max_lag: int = 30,
             euler_method: str = EULER_METHODS[0]) -> dict[str, Any]:
    """Statistics of a set of volumes (a list, or an (N, D, H, W) array), as a JSON-ready dict.

    Always ``num_volumes`` and ``shapes``. Each scalar statistic is a dict ``{"values": [one per
    volume], "mean": ..., "std": ...}`` (sample standard deviation, 0 for one volume):

    * ``porosity``;
    * ``surface``: ``specific_surface_s2`` (-4 x slope of pore S2) and ``specific_surface_mesh``;
    * ``chords``: ``chord_pore_s2``, ``chord_grain_s2`` (-S2(0)/slope of each phase) and the
      measured ``chord_pore``, ``chord_grain``;
    * ``euler``: ``euler``, by :func:`euler_characteristic` with ``euler_method`` and that
      method's phase, 26-connectivity; ``euler_method`` records the method.

    ``s2`` gives ``{"lags": [0..max_lag], "mean": [...], "std": [...]}``, the mean and standard
    deviation over the volumes of the direction-averaged pore S2; ``max_lag`` is lowered to the
    largest lag every volume has when a volume is too small for it."""
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise GenlabError(f"unknown statistic(s) {', '.join(map(repr, unknown))}; "
                          f"choose from {', '.join(METRICS)}")
    _check_euler_method(euler_method)
    vols = _volumes(volumes)
    out: dict[str, Any] = {"num_volumes": len(vols), "shapes": [list(v.shape) for v in vols]}
    if "euler" in metrics:
        out["euler_method"] = euler_method
    smallest = min(min(v.shape) for v in vols)
    if smallest < S2_FIT_LAGS and {"s2", "surface", "chords"} & set(metrics):
        raise GenlabError(f"a volume {smallest} voxels across is too small for the S2 statistics; "
                          f"use volumes at least {S2_FIT_LAGS} voxels on every side")
    lag = min(int(max_lag), smallest - 1)
    per_volume = [_volume_stats(v, metrics, lag, euler_method) for v in vols]
    for key in per_volume[0]:
        if key != "s2":
            out[key] = _summary(stats[key] for stats in per_volume)
    if "s2" in metrics:
        curves = np.stack([stats["s2"] for stats in per_volume])
        out["s2"] = {"lags": list(range(lag + 1)), "mean": curves.mean(0).tolist(),
                     "std": (curves.std(0, ddof=1) if len(vols) > 1 else np.zeros(lag + 1)).tolist()}
    return out


def describe_sections(sections: Sequence[Any], metrics: Sequence[str] = METRICS,
                      max_lag: int = 30) -> dict[str, Any]:
    """The 3-D statistics that 2-D sections (a list of (H, W) images, True = pore) estimate, in
    :func:`describe`'s layout, one value per image: the porosity (an area fraction estimates the
    volume fraction), S2 along the images' rows and columns (a line lies in a plane, so its pairs
    of points are the medium's), the specific surface and chords from S2's slope, and the
    measured chords along rows and columns. The mesh surface and the Euler characteristic have
    no such estimate and are left out. Three sections, one across each axis, hold each axis
    twice, so their mean S2 weighs the three axes alike, as :func:`describe` does."""
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    images = [np.asarray(s).astype(bool)[None] for s in sections]   # (1, H, W): lines along axes 1 and 2
    lag = min(int(max_lag), *(min(x.shape[1:]) - 1 for x in images))
    fit = max(lag, S2_FIT_LAGS - 1)

    def s2(x: np.ndarray) -> np.ndarray:
        return np.mean([_axis_s2(x, axis, fit) for axis in (1, 2)], axis=0)

    per_image = []
    for x in images:
        pore, stats = s2(x), {}
        if "porosity" in metrics:
            stats["porosity"] = float(x.mean())
        if "surface" in metrics:
            stats["specific_surface_s2"] = -4.0 * s2_slope(pore)
        if "chords" in metrics:
            stats["chord_pore_s2"], stats["chord_grain_s2"] = _chord_from_curve(pore), _chord_from_curve(s2(~x))
            for name, phase in (("chord_pore", x), ("chord_grain", ~x)):
                total, count = map(sum, zip(*(_runs(phase, axis) for axis in (1, 2))))
                stats[name] = total / count if count else math.nan
        per_image.append((stats, pore[:lag + 1]))
    out: dict[str, Any] = {"num_volumes": len(images), "shapes": [list(x.shape[1:]) for x in images]}
    for key in per_image[0][0]:
        out[key] = _summary(stats[key] for stats, _ in per_image)
    if "s2" in metrics:
        curves = np.stack([curve for _, curve in per_image])
        out["s2"] = {"lags": list(range(lag + 1)), "mean": curves.mean(0).tolist(),
                     "std": (curves.std(0, ddof=1) if len(images) > 1 else np.zeros(lag + 1)).tolist()}
    return out


def _volume_stats(v: np.ndarray, metrics: Sequence[str], lag: int, euler_method: str) -> dict[str, Any]:
    """The statistics of one bool volume that :func:`describe` gathers, computing each S2 once."""
    stats: dict[str, Any] = {}
    if "porosity" in metrics:
        stats["porosity"] = porosity(v)
    pore = _mean_s2(v, 1, max(lag, S2_FIT_LAGS - 1)) if {"s2", "surface", "chords"} & set(metrics) else None
    if "s2" in metrics:
        stats["s2"] = pore[:lag + 1]
    if "surface" in metrics:
        stats["specific_surface_s2"] = -4.0 * s2_slope(pore)
        stats["specific_surface_mesh"] = specific_surface_mesh(v)
    if "chords" in metrics:
        measured = chord_lengths(v)
        stats["chord_pore_s2"] = _chord_from_curve(pore)
        stats["chord_grain_s2"] = _chord_from_curve(_mean_s2(v, 0, S2_FIT_LAGS - 1))
        stats["chord_pore"], stats["chord_grain"] = measured["pore"], measured["grain"]
    if "euler" in metrics:
        stats["euler"] = euler_characteristic(v, euler_method)
    return stats


def compare(generated: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Compare two :func:`describe` results, statistic by statistic.

    For each scalar statistic present in both: ``{"generated": mean, "reference": mean,
    "relative_error": (generated - reference) / |reference|}`` (signed: positive when the
    generated volumes have more; None when the reference mean is 0). For ``s2``:
    ``{"mae": mean absolute difference of the two mean curves over their common lags,
    "lags": number of lags compared}``."""
    out: dict[str, Any] = {}
    for key, g in generated.items():
        r = reference.get(key)
        if not (isinstance(g, dict) and isinstance(r, dict)):
            continue
        if key == "s2":
            n = min(len(g["mean"]), len(r["mean"]))
            diff = np.abs(np.asarray(g["mean"][:n]) - np.asarray(r["mean"][:n]))
            out["s2"] = {"mae": float(diff.mean()), "lags": n}
        elif "mean" in g and "mean" in r:
            gm, rm = float(g["mean"]), float(r["mean"])
            out[key] = {"generated": gm, "reference": rm,
                        "relative_error": (gm - rm) / abs(rm) if rm != 0 else None}
    return out
