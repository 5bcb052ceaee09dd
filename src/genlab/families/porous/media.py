"""Synthetic two-phase media whose statistics are known in closed form.

Each generator returns a bool volume of shape (D, H, W), True for pore, False for grain, the
convention of :mod:`genlab.families.porous.statistics`. Voxel (i, j, k) is the point (i, j, k) of space:
the medium is sampled at voxel centres, so the two-point probability of the volume at integer
lags is exactly the model's S2 and its measured statistics can be checked against the formulas.

* ``overlapping-spheres``: a Boolean model. Grain is the union of balls of radius R centred at
  the points of a Poisson process of intensity n; a point is pore when no centre lies within R,
  which has probability ``phi = exp(-n 4/3 pi R^3)``.
* ``gaussian-field``: white noise smoothed by a Gaussian kernel of standard deviation sigma and
  thresholded: pore where the field is below ``Phi^-1(phi)`` times its standard deviation.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy import ndimage, special, stats

from ...errors import GenlabError, check_seed
from ...memory import available_bytes

__all__ = [
    "MEDIA", "make_volume", "closed_form", "overlapping_spheres", "overlapping_spheres_porosity",
    "overlapping_spheres_s2", "overlapping_spheres_surface", "gaussian_field", "gaussian_field_s2",
    "gaussian_field_surface",
]

#: The kinds of medium :func:`make_volume` makes.
MEDIA = ("overlapping-spheres", "gaussian-field")
# Options of each kind and their defaults.
_OPTIONS: dict[str, dict[str, float]] = {
    "overlapping-spheres": {"radius": 5.0},
    "gaussian-field": {"correlation_length": 3.0},
}


# ---- checks ------------------------------------------------------------------------------------

def _shape(size: int | tuple[int, int, int]) -> tuple[int, int, int]:
    """``size`` (a side, or three sides) as a shape, each side at least 4."""
    shape = (size,) * 3 if isinstance(size, (int, np.integer)) else tuple(size)
    if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) for s in shape):
        raise GenlabError(f"size must be an integer or three integers (D, H, W), not {size!r}")
    if min(shape) < 4:
        raise GenlabError(f"size {tuple(shape)} is too small; every side must be at least 4 voxels")
    return tuple(int(s) for s in shape)


def _check_memory(need: float, shape: tuple[int, int, int], fix: str = "a smaller `size`") -> None:
    """Refuse to make a volume of ``shape`` that needs ``need`` bytes, more than the memory left."""
    free = available_bytes()
    if free is not None and need > free:
        raise GenlabError(f"a {'x'.join(map(str, shape))} volume needs about {need / 2 ** 30:,.1f} GiB of memory to "
                          f"make, more than the {free / 2 ** 30:.1f} GiB left; choose {fix}")


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GenlabError(f"{name} must be a number, not {value!r}") from None


def _check_porosity(porosity: float) -> float:
    phi = _number("porosity", porosity)
    if not 0 < phi < 1:
        raise GenlabError(f"porosity must lie strictly between 0 and 1, not {porosity!r}")
    return phi


def _check_positive(name: str, value: float) -> float:
    x = _number(name, value)
    if not x > 0 or not math.isfinite(x):
        raise GenlabError(f"{name} must be a positive number of voxels, not {value!r}")
    return x


# ---- overlapping spheres (Boolean model) -------------------------------------------------------

def overlapping_spheres_porosity(n: float, radius: float) -> float:
    """Pore fraction of a Boolean model of balls: ``exp(-n * 4/3 pi R^3)``, the probability
    that a Poisson process of intensity n puts no centre within R of a point."""
    return math.exp(-n * 4.0 / 3.0 * math.pi * radius ** 3)


def overlapping_spheres_s2(r: Any, porosity: float, radius: float) -> np.ndarray:
    """Pore S2 of the Boolean model of balls at distance(s) ``r``.

    Two points r apart are both pore when no centre falls in the union of the two balls of
    radius R around them, of volume V (2 - K(r)), V = 4/3 pi R^3, where K(r) is the fraction of
    a ball shared with a ball shifted by r:

        K(r) = 1 - 3 r / (4 R) + r^3 / (16 R^3) for r < 2 R, and 0 beyond,

    so ``S2(r) = exp(-n V (2 - K(r))) = porosity ** (2 - K(r))``."""
    x = np.abs(np.asarray(r, dtype=np.float64)) / radius
    k = np.where(x < 2, 1 - 0.75 * x + x ** 3 / 16, 0.0)
    return porosity ** (2 - k)


def overlapping_spheres_surface(porosity: float, radius: float) -> float:
    """Specific surface of the Boolean model of balls: ``S_v = -3 phi ln(phi) / R``.

    Each ball has area 4 pi R^2 and a point of its sphere is on the interface when it is not
    covered by another ball, with probability phi: ``S_v = n 4 pi R^2 phi`` with
    ``n = -ln(phi) / (4/3 pi R^3)``. The same follows from ``S_v = -4 S2'(0)``: K'(0) = -3/(4R)
    and S2'(0) = phi ln(phi) (-K'(0))."""
    return -3.0 * porosity * math.log(porosity) / radius


def overlapping_spheres(size: int | tuple[int, int, int], porosity: float, radius: float,
                        seed: int = 0) -> np.ndarray:
    """A Boolean model of overlapping balls (grain) of radius ``radius`` with pore fraction
    ``porosity`` in expectation, as a bool volume (True = pore).

    Centres are drawn from a Poisson process of intensity ``n = -ln(phi) / (4/3 pi R^3)`` in the
    box enlarged by R on every side, so that balls centred outside the volume cut into it as
    they would in an unbounded medium (no edge effects). Each ball is rasterised exactly on the
    voxels of its bounding box: a voxel centre at distance at most R is grain."""
    shape = _shape(size)
    phi = _check_porosity(porosity)
    radius = _check_positive("radius", radius)
    rng = np.random.default_rng(seed)
    low = np.full(3, -radius)
    high = np.asarray(shape, dtype=np.float64) - 1 + radius
    intensity = -math.log(phi) / (4.0 / 3.0 * math.pi * radius ** 3)
    expected = intensity * float(np.prod(high - low))
    # the volume, and three float64 coordinates for each centre
    _check_memory(math.prod(shape) + 24 * expected, shape, "a smaller `size` or a larger `radius`")
    count = rng.poisson(expected)
    centres = rng.uniform(low, high, size=(count, 3))
    pore = np.ones(shape, dtype=bool)
    r2 = radius * radius
    for c in centres:
        lo = np.maximum(np.ceil(c - radius), 0).astype(int)
        hi = np.minimum(np.floor(c + radius), np.asarray(shape) - 1).astype(int) + 1
        if np.any(hi <= lo):
            continue
        d2 = sum(np.square(np.arange(lo[a], hi[a]) - c[a]).reshape([-1 if b == a else 1 for b in range(3)])
                 for a in range(3))
        pore[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] &= d2 > r2
    return pore


# ---- thresholded Gaussian field ----------------------------------------------------------------

def gaussian_field_s2(r: Any, porosity: float, correlation_length: float) -> np.ndarray:
    """Pore S2 of the thresholded Gaussian field at distance(s) ``r``.

    White noise smoothed by a Gaussian kernel of std sigma has the kernel's autocorrelation, a
    Gaussian of variance 2 sigma^2, as correlation: rho(r) = exp(-r^2 / (4 sigma^2)). With
    t = Phi^-1(phi), S2(r) = P(X < t, Y < t) for standard normals X, Y of correlation rho.
    Owen's formula for the bivariate normal with equal limits gives

        P(X < t, Y < t) = Phi(t) - 2 T(t, a),  a = sqrt((1 - rho) / (1 + rho)),

    with Owen's T function (``scipy.special.owens_t``): S2(0) = phi (a = 0), and S2 -> phi^2
    as rho -> 0 (T(t, 1) = Phi(t) (1 - Phi(t)) / 2). With rho = exp(-u), u = r^2 / (4 sigma^2),
    a = sqrt(tanh(u / 2)), which keeps its precision at small r (1 - rho would not)."""
    t = stats.norm.ppf(porosity)
    u = np.square(np.asarray(r, dtype=np.float64)) / (4.0 * correlation_length ** 2)
    a = np.sqrt(np.tanh(u / 2.0))
    return porosity - 2.0 * special.owens_t(t, a)


def gaussian_field_surface(porosity: float, correlation_length: float) -> float:
    """Specific surface of the thresholded Gaussian field: ``sqrt(2) exp(-t^2/2) / (pi sigma)``.

    Rice's formula: a line crosses the level t of a unit-variance smooth field
    ``P_L = sqrt(-rho''(0)) exp(-t^2/2) / pi`` times per unit length; -rho''(0) = 1/(2 sigma^2)
    and ``S_v = 2 P_L``. The same follows from S2 near 0: a = r / (2 sqrt(2) sigma) + O(r^3),
    T(t, a) = a exp(-t^2/2) / (2 pi) + O(a^3), so S2'(0) = -exp(-t^2/2) / (2 sqrt(2) pi sigma)
    and S_v = -4 S2'(0)."""
    t = stats.norm.ppf(porosity)
    return math.sqrt(2.0) * math.exp(-t * t / 2.0) / (math.pi * correlation_length)


def _impulse_energy(length: int, sigma: float) -> float:
    """Sum of squares of the weights of ``gaussian_filter`` along one periodic axis of
    ``length``: the filter's response to a unit impulse, wrapped as the filter wraps."""
    impulse = np.zeros(length)
    impulse[0] = 1.0
    return float(np.square(ndimage.gaussian_filter1d(impulse, sigma, mode="wrap")).sum())


def gaussian_field(size: int | tuple[int, int, int], porosity: float, correlation_length: float,
                   seed: int = 0) -> np.ndarray:
    """A thresholded Gaussian random field with pore fraction ``porosity`` in expectation, as a
    bool volume (True = pore).

    Standard white noise is smoothed by ``scipy.ndimage.gaussian_filter`` with standard deviation
    ``correlation_length`` (periodic, ``mode='wrap'``). The smoothed field is Gaussian with
    variance the sum of the squared filter weights, computed exactly (not estimated from the
    sample), so thresholding at ``Phi^-1(phi)`` times that standard deviation makes every voxel
    pore with probability exactly phi; one volume's porosity fluctuates around it. The field's
    correlation is close to exp(-r^2 / (4 sigma^2)) for lags small against the side (the filter
    wraps around), so its S2 is :func:`gaussian_field_s2`."""
    shape = _shape(size)
    phi = _check_porosity(porosity)
    sigma = _check_positive("correlation_length", correlation_length)
    _check_memory(32 * math.prod(shape), shape)   # the noise, the field, the filter's work space (float64)
    noise = np.random.default_rng(seed).standard_normal(shape)
    field = ndimage.gaussian_filter(noise, sigma, mode="wrap")
    std = math.sqrt(math.prod(_impulse_energy(s, sigma) for s in shape))
    return field < stats.norm.ppf(phi) * std


# ---- by name -----------------------------------------------------------------------------------

def _kind(kind: str) -> str:
    name = str(kind).strip().lower().replace("_", "-")
    if name not in MEDIA:
        raise GenlabError(f"unknown medium {kind!r}; choose one of: {', '.join(MEDIA)}")
    return name


def _options(kind: str, options: dict[str, Any]) -> dict[str, float]:
    """The kind's options: the given ones over the defaults; an option the kind lacks is an error."""
    allowed = _OPTIONS[kind]
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise GenlabError(f"{kind} takes no option {', '.join(extra)}; "
                          f"its options are: {', '.join(allowed)}")
    merged = {**allowed, **options}
    return {name: _check_positive(name, value) for name, value in merged.items()}


def make_volume(kind: str, size: int | tuple[int, int, int], porosity: float, seed: int = 0,
                **options: float) -> np.ndarray:
    """A synthetic medium by name: ``"overlapping-spheres"`` (option ``radius``, default 5) or
    ``"gaussian-field"`` (option ``correlation_length``, default 3). A bool (D, H, W) volume,
    True = pore."""
    name = _kind(kind)
    opts = _options(name, options)
    check_seed(seed)
    if name == "overlapping-spheres":
        return overlapping_spheres(size, porosity, opts["radius"], seed=seed)
    return gaussian_field(size, porosity, opts["correlation_length"], seed=seed)


def closed_form(kind: str, porosity: float, max_lag: int = 30, **options: float) -> dict[str, Any]:
    """The statistics of a medium in closed form, as a JSON-ready dict.

    ``porosity``; ``specific_surface``, the exact S_v = -4 S2'(0) per voxel; ``specific_surface_s2``,
    the value that the S2-based estimate (:func:`genlab.families.porous.statistics.specific_surface_from_s2`)
    tends to: -4 times the slope of the closed-form S2 fitted over lags 0..4 exactly as
    :func:`~genlab.families.porous.statistics.s2_slope` does (the fit over a curved S2 is less steep than
    the tangent); ``chord_pore`` and ``chord_grain``, the mean chord lengths 4 phi / S_v and
    4 (1 - phi) / S_v; ``chord_pore_s2`` and ``chord_grain_s2``, the same with the fitted S_v,
    which the S2-based chord estimates tend to (the grain S2, 1 - 2 phi + S2(r), has the pore
    S2's slope); ``lags`` 0..max_lag and ``s2``, the pore S2 at those lags.

    For features a few voxels across the fit matters: for balls of radius 5 and porosity 0.3
    the fitted S_v is 27 % below the exact one."""
    from .statistics import S2_FIT_LAGS, s2_slope

    name = _kind(kind)
    phi = _check_porosity(porosity)
    opts = _options(name, options)
    if int(max_lag) < 0:
        raise GenlabError(f"max_lag must be 0 or more, not {max_lag!r}")
    if name == "overlapping-spheres":
        s2: Callable[[Any], np.ndarray] = lambda r: overlapping_spheres_s2(r, phi, opts["radius"])
        surface = overlapping_spheres_surface(phi, opts["radius"])
    else:
        s2 = lambda r: gaussian_field_s2(r, phi, opts["correlation_length"])
        surface = gaussian_field_surface(phi, opts["correlation_length"])
    lags = np.arange(max(int(max_lag), S2_FIT_LAGS - 1) + 1)
    curve = s2(lags)
    fitted = -4.0 * s2_slope(curve, S2_FIT_LAGS)
    return {
        "kind": name, "options": opts, "porosity": phi,
        "specific_surface": surface, "specific_surface_s2": fitted,
        "chord_pore": 4.0 * phi / surface, "chord_grain": 4.0 * (1.0 - phi) / surface,
        "chord_pore_s2": 4.0 * phi / fitted, "chord_grain_s2": 4.0 * (1.0 - phi) / fitted,
        "lags": lags[:int(max_lag) + 1].tolist(), "s2": curve[:int(max_lag) + 1].tolist(),
    }
