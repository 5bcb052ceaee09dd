"""DPM-Solver++ (Lu et al. 2022), multistep, in the data-prediction form.

Sampling with eta = 0 solves the probability-flow ODE. Written in the half log signal-to-noise
ratio lambda = log(alpha / sigma) (alpha = sqrt(abar), sigma = sqrt(1 - abar)), its solution from
lambda_s to lambda_t is exactly

    x_t = (sigma_t / sigma_s) x_s + alpha_t * integral_{lambda_s}^{lambda_t} e^{-(lambda_t - l)} x0(l) dl,

where x0(l) is the network's prediction of the clean image along the path. DDIM takes x0 constant
over a step (first order). DPM-Solver++ expands x0 in lambda around the latest step, with the
slope (and curvature) taken from the predictions of the previous steps, so a step costs one
network evaluation whatever the order:

- ``dpm++2m``: the slope from the last two predictions, in the midpoint form of the paper's
  Algorithm 2; error falling as 1/steps^2.
- ``dpm++3m``: slope and curvature from the last three (a quadratic through them, integrated
  exactly against e^{-(lambda_t - l)}); error falling as 1/steps^3 where the path is smooth.

The steps are evenly spaced in lambda (:func:`log_snr_steps`), as the paper recommends for small
images, not in t as DDIM's: a multistep solver extrapolates from the previous steps, which fails
when a step is much longer than the one before, and DDIM's last step before t = 0 is about 5 times
longer in lambda than the one before it. On a Gaussian data distribution, whose exact solution is
known (tests/diffusion/test_dpm_solver.py), even steps in lambda brought the error of ``dpm++2m`` at
10 steps from 8.8e-2 with DDIM's spacing (DDIM's own: 6.4e-2) to 7.3e-3.

Predictions are clipped to [-1, 1] before use (data prediction allows it; the paper calls it
thresholding). The first steps have fewer predictions behind them and so a lower order; the last
one, onto sigma = 0, is the prediction itself; and with fewer than 15 steps the one before it is at
most 2nd order, since extrapolating a curvature over such large steps overshoots (the rule of
diffusers' ``lower_order_final``).
"""
from __future__ import annotations

import math

import torch

#: the highest order of each multistep sampler
ORDERS = {"dpm++2m": 2, "dpm++3m": 3}
#: the lowest lambda the even spacing starts from: below it (signal-to-noise ratio e^-10) the
#: prediction is all but the data's mean whatever the noise, and the cosine schedule, whose last
#: betas are clipped, reaches lambda = -10 at t = T-1, so even steps from there would waste a third
#: of them (-4 and -6 did about as well in the closed-form check)
LAMBDA_MIN = -5.0


def half_log_snr(abar: float) -> float:
    """lambda = log(alpha / sigma) of a noise level abar in (0, 1]; +inf for the clean image."""
    return math.inf if abar >= 1 else 0.5 * (math.log(abar) - math.log1p(-abar))


def log_snr_steps(abar: torch.Tensor, steps: int) -> list[int]:
    """``steps`` distinct steps from T-1 down to 0 for the noise levels ``abar`` (T,): T-1, then
    evenly spaced in lambda from max(lambda_{T-1}, LAMBDA_MIN) to lambda_0, each level taken at the
    first step t whose lambda is at or below it."""
    last = len(abar) - 1
    if steps == 1:
        return [last]
    lam = 0.5 * (abar.double().log() - (-abar.double()).log1p()).cpu()  # decreasing in t
    levels = torch.linspace(max(lam[-1].item(), LAMBDA_MIN), lam[0].item(), steps, dtype=torch.float64)
    ts = [min(t, last - i) for i, t in enumerate(torch.searchsorted(-lam, -levels).tolist())]
    ts[0], ts[-1] = last, 0
    for i in reversed(range(steps - 1)):  # distinct where levels crowd at the low-noise end
        ts[i] = max(ts[i], ts[i + 1] + 1)
    return ts


def step_order(max_order: int, step: int, steps: int) -> int:
    """The order of step ``step`` (0-based) of ``steps``, as the module's docstring explains."""
    if step == steps - 1:
        return 1
    order = min(max_order, step + 1)
    return min(order, 2) if steps < 15 and step == steps - 2 else order


def dpm_solver_step(x: torch.Tensor, history: list[tuple[float, torch.Tensor]], abar_next: float,
                    order: int) -> torch.Tensor:
    """One step of multistep DPM-Solver++ from the noise level of ``history[-1]`` to ``abar_next``.

    Args:
        x: (N, ...) at the noise level of the latest prediction.
        history: (abar, x0 prediction (N, ...)) of the latest steps, oldest first; ``order`` of
            them are used, the last being the prediction at ``x``.
        abar_next: the noise level reached, 1 for the clean image (then ``order`` must be 1).
    """
    abar, d0 = history[-1]
    if abar_next >= 1:  # sigma = 0: the solution is the prediction itself
        return d0
    lam = [half_log_snr(a) for a, _ in history[-order:]]
    alpha_next = math.sqrt(abar_next)
    h = half_log_snr(abar_next) - lam[-1]
    phi1, phi2 = -math.expm1(-h), h + math.expm1(-h)  # integrals of e^{-(h-u)} and u e^{-(h-u)} over [0, h]
    out = math.sqrt((1 - abar_next) / (1 - abar)) * x + alpha_next * phi1 * d0
    if order == 1:
        return out
    h0 = lam[-1] - lam[-2]
    slope = (d0 - history[-2][1]) / h0
    if order == 2:  # midpoint form: x0 taken at its value half a step on
        return out + alpha_next * phi1 * (h / 2) * slope
    h1 = lam[-2] - lam[-3]
    curvature = (slope - (history[-2][1] - history[-3][1]) / h1) / (h0 + h1)  # half the second derivative
    phi3 = h * h / 2 - h - math.expm1(-h)  # integral of u^2 / 2 e^{-(h-u)}
    return out + alpha_next * (phi2 * (slope + h0 * curvature) + phi3 * 2 * curvature)
