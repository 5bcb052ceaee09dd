"""Colour spaces in torch for the colorize task: sRGB to and from CIE Lab and YUV, split into a
luminance and two chrominance channels, on images (N, 3, H, W) with the channel axis 1.

The matrices and the reference white are scikit-image's (``skimage.color.colorconv``:
``xyz_from_rgb``, ``rgb_from_xyz``, ``yuv_from_rgb``, ``rgb_from_yuv``, and
``xyz_tristimulus_values("D65", "2")``), and the steps follow ``skimage.color.rgb2lab`` /
``lab2rgb`` (the sRGB transfer function with its 0.04045 threshold, Lab's cube root with
scikit-image's 0.008856 threshold and 7.787 slope), so the results agree with scikit-image to
float precision (the tests check 1e-4). Two differences, both on purpose: nothing is clipped
(``lab_to_rgb`` extends the curves linearly below zero and returns colours outside [0, 1] as they
are, so that :func:`fit_in_gamut` can see them), and everything stays in torch (any device,
batched).

Luminance and grey: the *grey image* of a colour image in a space is the grey (R = G = B) of the
same luminance. In YUV it is Y itself (0.299 R + 0.587 G + 0.114 B, the rows of
``rgb_from_yuv`` start with 1, so Y of (g, g, g) is g). In Lab it is the sRGB encoding of the
relative luminance (the Y row of ``xyz_from_rgb``, which sums to 1), so L of (g, g, g) is the L of
the colour image. Back from (L, a = 0, b = 0), Lab gives a grey only to 3e-5: scikit-image's sRGB
matrix and its D65 white differ in the fifth digit.
"""
from __future__ import annotations

import functools

import torch

from ...errors import GenlabError

SPACES = ("lab", "yuv")


def _colorconv():
    # Imported on first use: scikit-image's colour module brings in SciPy, which would add about
    # half a second to every `genlab` command (this module is imported with the models).
    from skimage.color import colorconv
    return colorconv


@functools.cache
def chroma_scale(space: str) -> tuple[float, float]:
    """What each chrominance channel is divided by for the network: a and b of Lab by 100; U and
    V by their largest magnitude over the RGB cube, the sum of the positive entries of their row."""
    _check_space(space)
    if space == "lab":
        return (100.0, 100.0)
    u, v = (float(row.clip(min=0).sum()) for row in _colorconv().yuv_from_rgb[1:])
    return (u, v)


_LAB_EPSILON = 0.008856   # scikit-image's thresholds and slope of the cube root (xyz2lab, lab2xyz)
_LAB_KAPPA = 7.787
_LAB_CUBE_THRESHOLD = 0.2068966


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise GenlabError(f"unknown color_space '{space}'; choose one of: {', '.join(SPACES)}")


def _matrix(name: str, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(getattr(_colorconv(), name), dtype=like.dtype, device=like.device)


def _apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix`` (3, 3) applied to the channels of ``x`` (N, 3, ...)."""
    return torch.einsum("ij,nj...->ni...", matrix, x)


def _white(like: torch.Tensor) -> torch.Tensor:
    from skimage.color import xyz_tristimulus_values

    white = xyz_tristimulus_values(illuminant="D65", observer="2")
    return torch.as_tensor(white, dtype=like.dtype, device=like.device).view(1, 3, *([1] * (like.ndim - 2)))


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer function undone (scikit-image's ``rgb2xyz`` first step); linear below 0.04045."""
    return torch.where(x > 0.04045, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer function (``xyz2rgb``'s last step, not clipped); linear below 0.0031308."""
    return torch.where(x > 0.0031308, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, x * 12.92)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, ...) in [0, 1] to CIE Lab (D65, 2 degrees): L in [0, 100], a and b in about
    [-128, 127], as ``skimage.color.rgb2lab``."""
    xyz = _apply(_matrix("xyz_from_rgb", rgb), srgb_to_linear(rgb)) / _white(rgb)
    f = torch.where(xyz > _LAB_EPSILON, xyz.clamp_min(_LAB_EPSILON) ** (1 / 3), _LAB_KAPPA * xyz + 16 / 116)
    x, y, z = f.unbind(1)
    return torch.stack([116 * y - 16, 500 * (x - y), 200 * (y - z)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (N, 3, ...) to sRGB, as ``skimage.color.lab2rgb`` but without clipping: colours
    outside the sRGB gamut come back outside [0, 1]."""
    L, a, b = lab.unbind(1)
    y = (L + 16) / 116
    f = torch.stack([a / 500 + y, y, y - b / 200], dim=1)
    xyz = torch.where(f > _LAB_CUBE_THRESHOLD, f ** 3, (f - 16 / 116) / _LAB_KAPPA) * _white(lab)
    return linear_to_srgb(_apply(_matrix("rgb_from_xyz", lab), xyz))


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, ...) to YUV (``skimage.color.rgb2yuv``): Y in [0, 1], U, V about ±0.44, ±0.62."""
    return _apply(_matrix("yuv_from_rgb", rgb), rgb)


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """YUV (N, 3, ...) to sRGB (``skimage.color.yuv2rgb``), not clipped."""
    return _apply(_matrix("rgb_from_yuv", yuv), yuv)


def to_space(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """sRGB (N, 3, ...) to ``space`` (``lab`` or ``yuv``): luminance first, then the two chrominances."""
    _check_space(space)
    return rgb_to_lab(rgb) if space == "lab" else rgb_to_yuv(rgb)


def from_space(values: torch.Tensor, space: str) -> torch.Tensor:
    """``space`` (N, 3, ...) back to sRGB, not clipped."""
    _check_space(space)
    return lab_to_rgb(values) if space == "lab" else yuv_to_rgb(values)


def split(rgb: torch.Tensor, space: str) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB (N, 3, ...) to (luminance (N, 1, ...), chrominance (N, 2, ...)) in ``space``'s own units."""
    values = to_space(rgb, space)
    return values[:, :1], values[:, 1:]


def join(luminance: torch.Tensor, chrominance: torch.Tensor, space: str) -> torch.Tensor:
    """(luminance (N, 1, ...), chrominance (N, 2, ...)) in ``space`` to sRGB (N, 3, ...), not clipped."""
    return from_space(torch.cat([luminance, chrominance], dim=1), space)


def grey(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """The grey image (N, 1, ...) in [0, 1] of colour images (N, 3, ...): the grey level whose
    luminance in ``space`` is the image's (Y in YUV; the sRGB-encoded relative luminance in Lab,
    which has the image's L)."""
    _check_space(space)
    if space == "yuv":
        return _apply(_matrix("yuv_from_rgb", rgb), rgb)[:, :1]
    relative = _apply(_matrix("xyz_from_rgb", rgb), srgb_to_linear(rgb))[:, 1:2]
    return linear_to_srgb(relative).clamp(0, 1)


def luminance_of_grey(grey_image: torch.Tensor, space: str) -> torch.Tensor:
    """The luminance in ``space`` (N, 1, ...) of grey images (N, 1, ...) in [0, 1]: L in [0, 100]
    (Lab) or Y = the grey level (YUV)."""
    return to_space(grey_image.expand(-1, 3, *grey_image.shape[2:]), space)[:, :1]


def in_gamut(rgb: torch.Tensor, tolerance: float = 1e-6) -> torch.Tensor:
    """(N, 1, ...) True where all three channels lie in [0, 1] (give or take ``tolerance``)."""
    return ((rgb >= -tolerance) & (rgb <= 1 + tolerance)).all(dim=1, keepdim=True)


def fit_in_gamut(luminance: torch.Tensor, chrominance: torch.Tensor, space: str,
                 iterations: int = 16) -> torch.Tensor:
    """sRGB (N, 3, ...) of the colours (``luminance``, ``chrominance``) in ``space``, each pixel
    outside the sRGB gamut brought inside by shrinking its chrominance towards grey (by the
    largest factor t in [0, 1] that fits, found by bisection) instead of clipping RGB, which
    would change its luminance. Pixels inside keep their colour; grey ones (t = 0) are inside.
    The result is clamped to [0, 1], which moves it by no more than rounding (or, in Lab, the 3e-5
    by which grey is not exactly grey)."""
    rgb = join(luminance, chrominance, space)
    inside = in_gamut(rgb)
    if bool(inside.all()):
        return rgb.clamp(0, 1)
    low = torch.zeros_like(luminance)     # in the gamut (grey)
    high = torch.ones_like(luminance)
    for _ in range(iterations):
        middle = (low + high) / 2
        fits = in_gamut(join(luminance, middle * chrominance, space))
        low, high = torch.where(fits, middle, low), torch.where(fits, high, middle)
    shrink = torch.where(inside, torch.ones_like(low), low)
    return join(luminance, shrink * chrominance, space).clamp(0, 1)
