"""Statistics of two-phase media (genlab.families.porous.statistics): checked against direct sums, shapes whose
answers are known, the closed forms of synthetic media and, when the data is on the machine, the
reference statistics of the Ketton limestone published with Mosser et al. (2017)."""
import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.families.porous.media import closed_form, overlapping_spheres
from genlab.errors import GenlabError
from genlab.families.porous.statistics import (EULER_METHODS, as_binary, chord_lengths, chord_lengths_from_s2, compare,
                                               describe, euler_characteristic, euler_table, porosity, s2_slope,
                                               specific_surface_from_s2, specific_surface_mesh, two_point)

PHI, RADIUS = 0.3, 5.0


@pytest.fixture(scope="module")
def spheres():
    """A Boolean model of balls, 128^3, radius 5, porosity 0.3 (about 0.2 s to make)."""
    return overlapping_spheres(128, PHI, RADIUS, seed=0)


@pytest.fixture(scope="module")
def spheres_closed():
    return closed_form("overlapping-spheres", PHI, max_lag=20, radius=RADIUS)


def _grid(n: int) -> np.ndarray:
    """Coordinates of the voxel centres of an n^3 volume, centred on the volume's middle."""
    return np.indices((n, n, n)) - (n - 1) / 2


def _direct_s2(x: np.ndarray, max_lag: int) -> np.ndarray:
    """S2 along each axis by the plain sum over pairs (the definition)."""
    columns = []
    for axis in range(3):
        lines = np.moveaxis(x, axis, -1).astype(np.float64)
        length = lines.shape[-1]
        columns.append([(lines[..., :length - r] * lines[..., r:]).sum() / (lines[..., 0].size * (length - r))
                        for r in range(max_lag + 1)])
    return np.array(columns).T


# ---- input -------------------------------------------------------------------------------------

def test_as_binary_accepts_bools_zero_one_integers_floats_tensors_and_a_channel():
    x = np.random.default_rng(0).random((4, 5, 6))
    expected = x >= 0.5
    for form in (expected, expected.astype(np.uint8), expected.astype(np.int64), x, x.astype(np.float32),
                 torch.from_numpy(x), torch.from_numpy(expected), x[None]):
        got = as_binary(form)
        assert got.dtype == bool and got.shape == (4, 5, 6)
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((2, 4, 4, 4)), np.zeros((1, 1, 4, 4, 4)),
                                 np.zeros((0, 4, 4)), np.full((4, 4, 4), 255, np.uint8),
                                 np.full((4, 4, 4), 1.5), np.full((4, 4, 4), np.nan), np.full((4, 4, 4), "a")])
def test_bad_volumes_raise_a_genlab_error(bad):
    with pytest.raises(GenlabError):
        porosity(bad)


def test_bad_arguments_raise_a_genlab_error():
    v = np.ones((6, 6, 6), bool)
    with pytest.raises(GenlabError, match="max_lag"):
        two_point(v, max_lag=6)
    with pytest.raises(GenlabError, match="phase"):
        two_point(v, phase=2)
    with pytest.raises(GenlabError, match="connectivity"):
        euler_characteristic(v, connectivity=2)
    with pytest.raises(GenlabError, match="unknown Euler method 'imagej'; choose 'morpholibj'"):
        euler_characteristic(v, method="imagej")
    with pytest.raises(GenlabError, match="unknown Euler method"):
        describe([v], euler_method="padded")
    with pytest.raises(GenlabError, match="unknown statistic"):
        describe([v], metrics=("porosity", "lacunarity"))
    with pytest.raises(GenlabError):
        describe(np.ones((6, 6, 6)))  # one volume, not a batch
    with pytest.raises(GenlabError):
        s2_slope([1.0, 0.9], n=5)
    with pytest.raises(GenlabError, match="too small"):
        describe([np.ones((4, 8, 8), bool)])
    assert describe([np.ones((4, 8, 8), bool)], metrics="porosity")["porosity"]["mean"] == 1.0


# ---- porosity and S2 ---------------------------------------------------------------------------

def test_fft_s2_equals_the_direct_sum_for_both_phases():
    x = np.random.default_rng(1).random((12, 10, 9)) < 0.4
    for phase, data in ((1, x), (0, ~x)):
        s2 = two_point(x, phase=phase, max_lag=8)
        assert s2.shape == (9, 3)
        np.testing.assert_allclose(s2, _direct_s2(data, 8), rtol=0, atol=1e-10)
        np.testing.assert_allclose(s2[0], data.mean(), rtol=0, atol=1e-12)


def test_s2_of_uniform_volumes_and_of_a_single_plane():
    assert two_point(np.ones((10, 8, 8), bool)).shape == (5, 3)  # default max_lag = min(shape) // 2
    np.testing.assert_array_equal(two_point(np.ones((10, 8, 8), bool)), 1.0)
    np.testing.assert_array_equal(two_point(np.zeros((10, 8, 8), bool)), 0.0)
    np.testing.assert_array_equal(two_point(np.zeros((10, 8, 8), bool), phase=0), 1.0)
    plane = np.zeros((10, 8, 8), bool)
    plane[3] = True  # one pore plane across axis 0
    s2 = two_point(plane, max_lag=7)
    np.testing.assert_allclose(s2[:, 0], [0.1] + [0.0] * 7, atol=1e-15)  # no pair across the plane
    np.testing.assert_allclose(s2[:, 1:], 0.1, atol=1e-15)  # every pair within it
    assert porosity(plane) == pytest.approx(0.1)


def test_s2_of_overlapping_spheres_matches_the_closed_form(spheres, spheres_closed):
    assert porosity(spheres) == pytest.approx(PHI, abs=0.02)
    s2 = two_point(spheres, max_lag=20)
    expected = np.asarray(spheres_closed["s2"])[:, None]
    assert np.abs(s2 - expected).max() < 0.01  # every axis, r = 0..20


def test_s2_slope_is_the_least_squares_line_through_s2_0():
    r = np.arange(10.0)
    assert s2_slope(0.4 - 0.03 * r) == pytest.approx(-0.03, rel=1e-12)
    curve = 0.4 - 0.03 * r + 0.002 * r ** 2
    # fitted over r = 0..4 only: slope + curvature * sum r^3 / sum r^2 = -0.03 + 0.002 * 100 / 30
    assert s2_slope(curve) == pytest.approx(-0.03 + 0.002 * 100 / 30, rel=1e-12)
    fitted = np.polyfit(r[:5], curve[:5] - curve[0], 1)  # an independent fit, with free intercept
    assert s2_slope(curve) != pytest.approx(fitted[0], rel=1e-3)  # the intercept is held at S2(0)


def test_surface_and_chords_from_s2_match_the_fitted_closed_form(spheres, spheres_closed):
    # The 5-lag fit is less steep than the tangent when balls are 5 voxels in radius, so the
    # estimate tends to the closed form's fitted value, well below the exact S_v.
    surface = specific_surface_from_s2(spheres)
    assert surface == pytest.approx(spheres_closed["specific_surface_s2"], rel=0.03)
    assert surface < 0.8 * spheres_closed["specific_surface"]
    chords = chord_lengths_from_s2(spheres)
    assert chords["pore"] == pytest.approx(spheres_closed["chord_pore_s2"], rel=0.03)
    assert chords["grain"] == pytest.approx(spheres_closed["chord_grain_s2"], rel=0.03)


# ---- measured surface, chords and topology -----------------------------------------------------

def test_mesh_surface_of_a_plane_is_exact_and_leaves_out_the_faces():
    v = np.zeros((20, 16, 16), bool)
    v[:10] = True
    # a plane at x = 9.5, spanning the voxel centres: 15 x 15; the volume's faces are not counted
    assert specific_surface_mesh(v) == pytest.approx(15 * 15 / v.size, rel=1e-9)
    assert specific_surface_mesh(np.ones((8, 8, 8), bool)) == 0.0


def test_mesh_surface_of_a_ball_is_close_to_4_pi_r2():
    ball = (_grid(40) ** 2).sum(0) <= 15 ** 2
    ratio = specific_surface_mesh(ball) * ball.size / (4 * math.pi * 15 ** 2)
    # marching cubes on a binary volume is faceted, so it overestimates (here by 9.8 %)
    assert 1.0 < ratio < 1.12


def test_mesh_surface_of_overlapping_spheres_is_close_to_the_closed_form(spheres, spheres_closed):
    assert specific_surface_mesh(spheres) == pytest.approx(spheres_closed["specific_surface"], rel=0.06)


def test_chords_of_slabs_are_their_thicknesses():
    i = np.arange(30)[:, None, None]
    slabs = np.broadcast_to((i + 1) % 8 < 3, (30, 12, 12))  # 3 pore, 5 grain, cut at both ends
    assert chord_lengths(slabs) == {"pore": 3.0, "grain": 5.0}  # runs along axes 1, 2 touch faces
    assert math.isnan(chord_lengths(np.ones((6, 6, 6), bool))["pore"])


def test_measured_chords_of_overlapping_spheres_match_the_closed_form(spheres, spheres_closed):
    chords = chord_lengths(spheres)
    assert chords["pore"] == pytest.approx(spheres_closed["chord_pore"], rel=0.1)    # 4 phi / S_v
    assert chords["grain"] == pytest.approx(spheres_closed["chord_grain"], rel=0.1)  # 4 (1 - phi) / S_v


def _torus(n: int = 40, big: float = 12.0, small: float = 5.0) -> np.ndarray:
    x, y, z = _grid(n)
    return (np.hypot(x, y) - big) ** 2 + z ** 2 <= small ** 2


def _ball(n: int, radius: float, centre=None) -> np.ndarray:
    """Voxels within ``radius`` of ``centre`` (default the volume's middle) in an n^3 volume."""
    centre = np.zeros(3) if centre is None else np.asarray(centre, float) - (n - 1) / 2
    return ((_grid(n) - centre[:, None, None, None]) ** 2).sum(0) <= radius ** 2


@pytest.mark.parametrize("method", EULER_METHODS)
@pytest.mark.parametrize("connectivity", [1, 3])
def test_euler_characteristic_of_a_ball_a_torus_and_a_shell(method, connectivity):
    ball, shell = _ball(40, 12), _ball(40, 15) & ~_ball(40, 9)
    for shape, chi in ((ball, 1), (_torus(), 0), (shell, 2)):
        assert euler_characteristic(shape, method, phase=1, connectivity=connectivity) == chi


def test_each_euler_method_counts_its_own_phase_by_default():
    v = np.zeros((7, 7, 7), bool)
    v[2, 2, 2] = v[3, 3, 3] = True  # two pore voxels touching at a corner
    assert euler_characteristic(v, "skimage", connectivity=3) == 1
    assert euler_characteristic(v, "skimage", connectivity=1) == 2
    assert euler_characteristic(v, "skimage") == 1             # the pore, 26-connected
    # The grain, 26-connected: a block holding two cavities (the pore voxels do not share a
    # face). skimage's padding closes the block (1 + 2); inside the volume alone the block
    # meets every face and counts 0 (see below), so the cavities are left.
    assert euler_characteristic(v, "skimage", phase=0) == 3
    assert euler_characteristic(v) == euler_characteristic(v, "morpholibj", phase=0) == 2
    assert euler_characteristic(v, phase=1) == 1
    assert isinstance(euler_characteristic(v), float)


def test_euler_table_is_the_26_neighbourhood_count_of_each_configuration():
    from skimage.measure import euler_number

    table = euler_table(3)
    for code in range(256):
        cell = np.zeros((4, 4, 4), bool)  # the configuration alone, away from the faces
        for bit, (a, b, c) in enumerate(itertools.product((0, 1), repeat=3)):
            cell[1 + a, 1 + b, 1 + c] = bool(code >> bit & 1)
        assert euler_number(cell, connectivity=3) == euler_characteristic(cell, phase=1)
    assert table[0] == 0 and table[1] == 1 and table[255] == 0   # empty, one voxel, full
    assert np.array_equal(euler_table(1), table[::-1])            # the complement's, face-connected


@pytest.mark.parametrize("connectivity", [1, 3])
def test_euler_inside_equals_skimage_for_a_phase_away_from_the_faces(connectivity):
    from skimage.measure import euler_number

    rng = np.random.default_rng(0)
    for _ in range(30):
        v = np.zeros((12, 13, 14), bool)
        v[1:-1, 1:-1, 1:-1] = rng.random((10, 11, 12)) < rng.uniform(0.1, 0.9)
        expected = euler_number(v, connectivity=connectivity)
        assert euler_characteristic(v, phase=1, connectivity=connectivity) == expected
        assert euler_characteristic(v, "skimage", connectivity=connectivity) == expected


def test_euler_inside_loses_half_the_section_where_a_phase_meets_a_face():
    # Inside the volume alone, a closed set X that meets one face counts chi(X) - chi(S) / 2,
    # S its section in that face (a cell there has half its corners on the face). skimage's
    # padding counts chi(X) of the part inside.
    n = 30
    cut_ball = _ball(n, 8, centre=(3, 15, 15))                 # a ball cut by the face x = 0: S a disc
    x, y, z = _grid(n)
    half_torus = (np.hypot(x + 14.5, y) - 9) ** 2 + z ** 2 <= 4 ** 2   # a C, its ends two discs in the face
    for shape, chi, section in ((cut_ball, 1, 1), (half_torus, 1, 2)):
        assert shape[0].any() and not shape[-1].any() and not shape[:, [0, -1]].any() and not shape[..., [0, -1]].any()
        assert euler_characteristic(shape, "skimage") == chi
        assert euler_characteristic(shape, phase=1) == chi - section / 2
    # A voxel counts 1 inside, 1/2 on a face, 1/4 on an edge and 1/8 at a corner; the whole
    # volume 1 - 6/2 + 12/4 - 8/8 = 0.
    for where, chi in (((2, 2, 2), 1), ((0, 2, 2), 0.5), ((0, 0, 2), 0.25), ((0, 0, 0), 0.125)):
        v = np.zeros((5, 5, 5), bool)
        v[where] = True
        assert euler_characteristic(v, phase=1) == chi and euler_characteristic(v, "skimage") == 1
    assert euler_characteristic(np.ones((5, 5, 5), bool), phase=1) == 0


def test_euler_inside_is_a_multiple_of_one_eighth():
    rng = np.random.default_rng(2)
    values = [euler_characteristic(rng.random((9, 10, 11)) < p) for p in np.linspace(0.1, 0.9, 12)]
    assert all((8 * v).is_integer() for v in values)
    assert any(not v.is_integer() for v in values)


# ---- describe and compare ----------------------------------------------------------------------

def test_describe_gives_values_means_and_stds_in_json():
    a = np.zeros((16, 16, 16), bool)
    a[4:12, 4:12, 4:12] = True       # a cube of 8^3 pore voxels: porosity 1/8
    b = np.zeros((16, 16, 16), bool)
    b[:, :, 2:6] = True              # a slab 4 thick: porosity 1/4
    result = describe([a, b])
    json.dumps(result)
    assert result["num_volumes"] == 2 and result["shapes"] == [[16, 16, 16]] * 2
    assert result["porosity"]["values"] == [0.125, 0.25]
    assert result["porosity"]["mean"] == pytest.approx(0.1875)
    assert result["porosity"]["std"] == pytest.approx(np.std([0.125, 0.25], ddof=1))
    assert result["s2"]["lags"] == list(range(16))  # max_lag 30 lowered to what a 16^3 volume has
    curve = two_point(a, max_lag=15).mean(1) / 2 + two_point(b, max_lag=15).mean(1) / 2
    np.testing.assert_allclose(result["s2"]["mean"], curve, atol=1e-12)
    # The grain inside the volume: around a cavity 1; beside a slab that meets four faces 0
    # (its own 1, less half of its 4 sections in faces, plus a quarter of its 4 in edges).
    assert result["euler"]["values"] == [1.0, 0.0] and result["euler_method"] == "morpholibj"
    assert describe([a, b], metrics="euler", euler_method="skimage")["euler"]["values"] == [1.0, 1.0]
    assert result["chord_pore"]["values"] == [8.0, 4.0]  # along the slab, its runs touch faces
    assert result["specific_surface_mesh"]["values"] == [specific_surface_mesh(a), specific_surface_mesh(b)]
    assert result["specific_surface_s2"]["values"] == [specific_surface_from_s2(a), specific_surface_from_s2(b)]
    for key in ("specific_surface_s2", "chord_pore_s2", "chord_grain_s2", "chord_grain"):
        assert len(result[key]["values"]) == 2

    only = describe(np.stack([a, b])[:, None], metrics=("porosity",))  # an (N, 1, D, H, W) array
    assert set(only) == {"num_volumes", "shapes", "porosity"}
    assert describe([a])["porosity"]["std"] == 0.0


def test_compare_reports_relative_errors_and_the_s2_gap():
    a = np.zeros((16, 16, 16), bool)
    a[4:12, 4:12, 4:12] = True
    b = np.zeros((16, 16, 16), bool)
    b[:, :, 2:6] = True
    ref, gen = describe([a], max_lag=6), describe([b], max_lag=6)
    result = compare(gen, ref)
    json.dumps(result)
    assert result["porosity"] == {"generated": 0.25, "reference": 0.125, "relative_error": 1.0}
    assert result["euler"]["relative_error"] == -1.0   # the grain inside: 0 beside the slab, 1 around the cube
    gap = np.abs(np.asarray(gen["s2"]["mean"]) - np.asarray(ref["s2"]["mean"])).mean()
    assert result["s2"] == {"mae": pytest.approx(gap), "lags": 7}
    assert compare(ref, ref)["s2"]["mae"] == 0.0
    assert {"specific_surface_s2", "specific_surface_mesh", "chord_pore", "chord_grain_s2"} <= set(result)


# ---- the Ketton reference (skipped when the data is not on this machine) ------------------------

def _porous_data() -> Path:
    """$GENLAB_POROUS, else ../shared/datasets/porous beside the repository; skip when absent."""
    beside = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "porous"
    root = Path(os.environ.get("GENLAB_POROUS", beside))
    if not (root / "ketton.tif").is_file():
        pytest.skip("Ketton data not available (set GENLAB_POROUS to a folder holding ketton.tif, reference/)")
    return root


@pytest.fixture(scope="module")
def ketton():
    import tifffile

    root = _porous_data()
    return tifffile.imread(root / "ketton.tif") == 0, root / "reference"  # 0 marks pore


def test_ketton_porosity_and_s2_match_the_papers_reference(ketton):
    pore, ref = ketton
    assert porosity(pore) == pytest.approx(0.126862049103, abs=1e-11)
    # The reference's columns x, y, z are the axes 0, 2, 1 of the array tifffile reads.
    for phase, name in ((1, "pph"), (0, "gph")):
        expected = np.loadtxt(ref / f"ketton_orig_{name}.csv", delimiter=",", skiprows=1)
        s2 = two_point(pore, phase=phase, max_lag=len(expected) - 1)
        np.testing.assert_allclose(s2[:, [0, 2, 1]], expected, rtol=0, atol=1e-6)


def test_ketton_surface_and_chords_from_s2_match_the_papers_reference(ketton):
    pore, ref = ketton
    expected = json.loads((ref / "ketton_covariance_data.json").read_text())["orig"]
    assert s2_slope(two_point(pore, 1, 4).mean(1)) == pytest.approx(expected["slope_pph"], rel=1e-8)
    assert s2_slope(two_point(pore, 0, 4).mean(1)) == pytest.approx(expected["slope_gph"], rel=1e-8)
    assert specific_surface_from_s2(pore) == pytest.approx(expected["specific_surface"], rel=1e-8)
    chords = chord_lengths_from_s2(pore)
    assert chords["pore"] == pytest.approx(expected["chord_length_pph"], rel=1e-8)
    assert chords["grain"] == pytest.approx(expected["chord_length_gph"], rel=1e-8)


def test_ketton_euler_raw_by_both_methods_and_the_references_sub_volumes(ketton):
    # benchmarks/porous.py --real-only: the corner cube (0, 0, 0) of 200^3, on the segmented scan as it is.
    pore, ref = ketton
    corner = pore[:200, :200, :200]
    assert euler_characteristic(corner) == -1523.0            # MorphoLibJ's count, the grain phase
    assert euler_characteristic(corner, "skimage") == -2153.0  # skimage's, the pore phase
    # The paper's eight 200^3 sub-volumes (-164 to -342) are not windows of this scan as it is:
    # four hold more grain voxels than any 200^3 window of it.
    grain = np.pad(~pore, ((1, 0),) * 3).astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    lo, hi = slice(None, -200), slice(200, None)
    windows = sum((-1) ** (a + b + c) * grain[(hi, lo)[a], (hi, lo)[b], (hi, lo)[c]]
                  for a in (0, 1) for b in (0, 1) for c in (0, 1))
    assert windows[0, 0, 0] == (~corner).sum() and windows.max() == 7046960
    reference = np.loadtxt(ref / "ketton_200_minkowski_original.csv", delimiter=",", skiprows=1, encoding="utf-8-sig")
    assert (reference[:, 2] > windows.max()).sum() == 4
