"""Paths between two latent codes.

Both functions take codes ``a`` and ``b`` of shape (d,) and return ``steps`` codes (steps, d)
whose first row is ``a`` and last row is ``b``.

Spherical interpolation (slerp) moves the *direction* along the great circle from a to b and the
*norm* linearly from |a| to |b|. For endpoints of equal norm every code on the path keeps that
norm, which is the point of slerp for Gaussian priors: in high dimensions N(0, I) puts almost
all its mass near the sphere of radius sqrt(d), while the straight line between two typical codes
cuts through the low-norm interior that the decoder rarely saw in training.
"""
from __future__ import annotations

import torch

from ..errors import GenlabError
from .codes import decode_codes

#: Below this angle (radians) between a and b, slerp falls back to normalised linear
#: interpolation of the directions: sin(theta) -> 0 makes the slerp weights ill-conditioned.
PARALLEL_ANGLE = 1e-4


def _weights(steps: int, like: torch.Tensor) -> torch.Tensor:
    if steps < 2:
        raise GenlabError(f"an interpolation needs at least 2 steps (its two end points), got {steps}")
    return torch.linspace(0, 1, steps, dtype=like.dtype, device=like.device)[:, None]


def linear_interpolate(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, d): a + t (b - a) for t evenly spaced in [0, 1], exactly a and b at the ends (lerp
    computes the second half from b's side)."""
    t = _weights(steps, a)
    return torch.lerp(a[None], b[None], t)


def spherical_interpolate(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, d): great-circle interpolation of the directions of a and b, with the norm going
    linearly from |a| to |b|. Near-parallel (or zero) endpoints give linear interpolation of
    the directions, renormalised; antipodal endpoints have no unique great circle, and take the
    one towards their smallest coordinate axis."""
    t = _weights(steps, a)
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(), b64.norm()
    if na == 0 or nb == 0 or len(a) == 1:  # no direction to rotate: the line is the only path
        return linear_interpolate(a, b, steps)
    ua, ub = a64 / na, b64 / nb
    theta = torch.arccos((ua @ ub).clamp(-1, 1))
    t64 = t.double()
    if theta < PARALLEL_ANGLE:
        direction = ua[None] + t64 * (ub - ua)[None]
    else:
        if torch.pi - theta < PARALLEL_ANGLE:  # antipodal: pick a perpendicular to pass through
            axis = torch.zeros_like(ua)
            axis[int(ua.abs().argmin())] = 1.0
            perp = axis - (axis @ ua) * ua
            ub_perp = perp / perp.norm()
            direction = torch.cos(t64 * theta) * ua[None] + torch.sin(t64 * theta) * ub_perp[None]
        else:
            direction = (torch.sin((1 - t64) * theta) * ua[None] + torch.sin(t64 * theta) * ub[None]) / torch.sin(theta)
    direction = direction / direction.norm(dim=1, keepdim=True)
    path = (direction * (na + t64 * (nb - na))).to(a.dtype)
    path[0], path[-1] = a, b  # exact end points, free of rounding
    return path


def interpolation_path(model, za: torch.Tensor, zb: torch.Tensor, steps: int, spherical: bool = False,
                       labels: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (steps, d) from ``za`` to ``zb`` (each (d,)) and their decoded images
    (steps, C, H, W). A conditional model decodes the first half of the path with A's class and
    the second half with B's (its code holds the style, the label the class)."""
    z = (spherical_interpolate if spherical else linear_interpolate)(za.float(), zb.float(), steps)
    y = None
    if model.conditional:
        y = torch.tensor([labels[0] if i < steps / 2 else labels[1] for i in range(steps)])
    return z, decode_codes(model, z, y)
