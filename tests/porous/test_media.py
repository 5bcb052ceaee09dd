"""Synthetic two-phase media (genlab.families.porous.media): their closed forms are self-consistent and the
volumes they make have the statistics the closed forms promise."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from genlab.families.porous.media import (MEDIA, closed_form, gaussian_field, gaussian_field_s2, gaussian_field_surface, make_volume, overlapping_spheres, overlapping_spheres_porosity, overlapping_spheres_s2, overlapping_spheres_surface)
from genlab.errors import GenlabError
from genlab.families.porous.statistics import porosity, specific_surface_from_s2, two_point

PHI = 0.3


def _slope_at_zero(s2, h: float = 1e-6) -> float:
    """dS2/dr at r = 0 by a one-sided difference (S2 has a corner at 0: it depends on |r|)."""
    return float((s2(h) - s2(0.0)) / h)


# ---- closed forms ------------------------------------------------------------------------------

def test_overlapping_spheres_closed_forms_agree():
    radius = 5.0
    n = -math.log(PHI) / (4 / 3 * math.pi * radius ** 3)
    assert overlapping_spheres_porosity(n, radius) == pytest.approx(PHI, rel=1e-12)
    s2 = lambda r: overlapping_spheres_s2(r, PHI, radius)
    assert s2(0.0) == pytest.approx(PHI, rel=1e-12)
    # points 2R or more apart are independent
    np.testing.assert_allclose(s2([2 * radius, 3 * radius, 40.0]), PHI ** 2, rtol=1e-12)
    surface = overlapping_spheres_surface(PHI, radius)
    assert surface == pytest.approx(n * 4 * math.pi * radius ** 2 * PHI, rel=1e-12)  # uncovered sphere area
    assert surface == pytest.approx(-4 * _slope_at_zero(s2), rel=1e-5)  # S_v = -4 S2'(0)
    assert np.all(np.diff(s2(np.arange(11.0))) < 0)  # decreasing up to 2R


def test_gaussian_field_s2_is_the_bivariate_normal_probability():
    sigma = 2.5
    t = stats.norm.ppf(PHI)
    for r in (0.5, 2.0, 4.0, 7.0):
        rho = math.exp(-r * r / (4 * sigma ** 2))
        expected = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf([t, t])
        assert gaussian_field_s2(r, PHI, sigma) == pytest.approx(expected, abs=1e-7)
    assert gaussian_field_s2(0.0, PHI, sigma) == pytest.approx(PHI, rel=1e-12)
    assert gaussian_field_s2(60.0, PHI, sigma) == pytest.approx(PHI ** 2, rel=1e-9)
    s2 = lambda r: gaussian_field_s2(r, PHI, sigma)
    # Rice's formula agrees with S_v = -4 S2'(0)
    assert gaussian_field_surface(PHI, sigma) == pytest.approx(-4 * _slope_at_zero(s2), rel=1e-5)


def test_closed_form_gives_the_statistics_by_name():
    cf = closed_form("overlapping-spheres", PHI, max_lag=12, radius=4.0)
    json.dumps(cf)
    assert cf["porosity"] == PHI and cf["lags"] == list(range(13)) and len(cf["s2"]) == 13
    assert cf["specific_surface"] == pytest.approx(overlapping_spheres_surface(PHI, 4.0))
    np.testing.assert_allclose(cf["s2"], overlapping_spheres_s2(np.arange(13), PHI, 4.0))
    assert cf["chord_pore"] == pytest.approx(4 * PHI / cf["specific_surface"])
    assert cf["chord_grain"] == pytest.approx(4 * (1 - PHI) / cf["specific_surface"])
    # the 5-lag fit of a convex S2 is less steep than its tangent
    assert 0.6 * cf["specific_surface"] < cf["specific_surface_s2"] < cf["specific_surface"]
    assert cf["chord_pore_s2"] == pytest.approx(4 * PHI / cf["specific_surface_s2"])
    gf = closed_form("gaussian_field", 0.4, correlation_length=2.0)  # '_' is accepted for '-'
    assert gf["kind"] == "gaussian-field" and len(gf["s2"]) == 31
    assert gf["specific_surface"] == pytest.approx(gaussian_field_surface(0.4, 2.0))


# ---- volumes -----------------------------------------------------------------------------------

def test_overlapping_spheres_volume_has_the_closed_form_statistics():
    v = overlapping_spheres((128, 120, 112), PHI, 5.0, seed=3)
    assert v.dtype == bool and v.shape == (128, 120, 112)
    # The porosity of one 128^3 volume has a standard deviation of 0.0056 (the sum of
    # S2(r) - phi^2 over the lags); S2's error is mostly that fluctuation, the curve's shape
    # follows the closed form at the volume's own porosity more closely.
    measured = porosity(v)
    assert measured == pytest.approx(PHI, abs=0.02)
    s2 = two_point(v, max_lag=20)
    lags = np.arange(21)
    assert np.abs(s2 - overlapping_spheres_s2(lags, PHI, 5.0)[:, None]).max() < 0.015
    assert np.abs(s2 - overlapping_spheres_s2(lags, measured, 5.0)[:, None]).max() < 0.006


def test_overlapping_spheres_has_no_edge_effect():
    # Balls centred outside the volume cut into it: the faces are as porous as the middle.
    v = np.stack([overlapping_spheres(48, PHI, 4.0, seed=s) for s in range(4)])
    faces = np.concatenate([v[:, 0].ravel(), v[:, -1].ravel(), v[:, :, 0].ravel(), v[:, :, -1].ravel()])
    assert faces.mean() == pytest.approx(PHI, abs=0.03)


def test_gaussian_field_volume_has_the_closed_form_statistics():
    v = gaussian_field(96, PHI, 2.0, seed=0)
    assert v.dtype == bool and v.shape == (96, 96, 96)
    assert porosity(v) == pytest.approx(PHI, abs=0.03)  # one volume's porosity: long-range fluctuations
    cf = closed_form("gaussian-field", PHI, max_lag=20, correlation_length=2.0)
    assert np.abs(two_point(v, max_lag=20).mean(1) - np.asarray(cf["s2"])).max() < 0.02
    assert specific_surface_from_s2(v) == pytest.approx(cf["specific_surface_s2"], rel=0.06)


def test_gaussian_field_porosity_is_exact_in_expectation():
    values = [porosity(gaussian_field(40, PHI, 1.0, seed=s)) for s in range(8)]
    assert np.mean(values) == pytest.approx(PHI, abs=0.006)


def test_make_volume_dispatches_by_name_and_is_reproducible():
    a = make_volume("overlapping-spheres", 24, PHI, seed=1, radius=3.0)
    assert np.array_equal(a, overlapping_spheres(24, PHI, 3.0, seed=1))
    assert np.array_equal(a, make_volume("overlapping-spheres", (24, 24, 24), PHI, seed=1, radius=3.0))
    assert not np.array_equal(a, make_volume("overlapping-spheres", 24, PHI, seed=2, radius=3.0))
    b = make_volume("gaussian-field", (16, 20, 24), PHI, seed=1, correlation_length=1.5)
    assert np.array_equal(b, gaussian_field((16, 20, 24), PHI, 1.5, seed=1))
    assert make_volume("gaussian-field", 16, PHI).shape == (16, 16, 16)  # default options
    assert set(MEDIA) == {"overlapping-spheres", "gaussian-field"}


@pytest.mark.parametrize("call, message", [
    (lambda: make_volume("voronoi", 16, PHI), "overlapping-spheres, gaussian-field"),
    (lambda: make_volume("overlapping-spheres", 16, 0.0), "porosity"),
    (lambda: make_volume("overlapping-spheres", 16, 1.0), "porosity"),
    (lambda: make_volume("gaussian-field", 16, 1.3), "porosity"),
    (lambda: make_volume("overlapping-spheres", 3, PHI), "at least 4"),
    (lambda: make_volume("overlapping-spheres", (16, 16), PHI), "three integers"),
    (lambda: make_volume("overlapping-spheres", 16, PHI, radius=0), "radius"),
    (lambda: make_volume("overlapping-spheres", 16, PHI, radius=-2.0), "radius"),
    (lambda: make_volume("gaussian-field", 16, PHI, correlation_length=0), "correlation_length"),
    (lambda: make_volume("gaussian-field", 16, PHI, radius=2.0), "radius"),
    (lambda: make_volume("overlapping-spheres", 16, "high"), "porosity must be a number"),
    (lambda: closed_form("cubes", PHI), "choose one of"),
    (lambda: closed_form("overlapping-spheres", 2.0), "porosity"),
])
def test_bad_requests_raise_a_genlab_error(call, message):
    with pytest.raises(GenlabError, match=message):
        call()
