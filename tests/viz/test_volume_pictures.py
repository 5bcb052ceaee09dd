import numpy as np
import pytest
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.families.porous.pictures import (middle_slices, orthogonal_slices, pore_isosurface, pore_mesh, s2_plot, slice_layout, slice_strip, statistics_panels)


def _ball(n=20, radius=6.0):
    z, y, x = np.ogrid[:n, :n, :n]
    c = (n - 1) / 2
    return (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius ** 2


def _grey(path):
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def test_middle_slices_match_indexing():
    v = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    a, b, c = middle_slices(v)
    np.testing.assert_array_equal(a, v[2])
    np.testing.assert_array_equal(b, v[:, 3])
    np.testing.assert_array_equal(c, v[:, :, 3])
    assert [s.shape for s in (a, b, c)] == [(6, 7), (5, 7), (5, 6)]
    t = middle_slices(torch.from_numpy(v)[None])  # a (1, D, H, W) tensor
    np.testing.assert_allclose(t[0], v[2])


def test_orthogonal_slices_show_pore_dark_where_it_is(tmp_path):
    n = 32
    left_pore = np.zeros((n, n, n), bool)
    left_pore[:, :, : n // 2] = True  # pore where x < 16
    full = torch.ones(1, 16, 16, 16)  # a smaller all-pore volume, as a (1, D, H, W) tensor
    path = orthogonal_slices({"training volume": left_pore, "generated": full}, tmp_path / "a" / "slices.png")
    img = _grey(path)
    shapes = [[(n, n)] * 3, [(16, 16)] * 3]
    boxes, width, height, same = slice_layout(shapes)
    assert same and abs(img.shape[1] - width) <= 1 and abs(img.shape[0] - height) <= 1

    def mean_in(box, fx0, fx1):
        x, y, w, h = box
        return img[int(y + 0.2 * h):int(y + 0.8 * h), int(x + fx0 * w):int(x + fx1 * w)].mean()

    row0, row1 = boxes
    for j in (0, 1):  # slices normal to z and y show x along columns: left half dark
        assert mean_in(row0[j], 0.1, 0.4) < 40 and mean_in(row0[j], 0.6, 0.9) > 215
    assert mean_in(row0[2], 0.1, 0.9) > 215  # x = 16 is grain
    assert mean_in(row1[0], 0.1, 0.9) < 40  # all pore
    assert row1[0][2] == pytest.approx(row0[0][2] / 2)  # same voxel scale: half the size
    # Very different sizes: each slice fills its cell.
    boxes, *_, same = slice_layout([[(200, 200)], [(10, 10)]])
    assert not same and boxes[0][0][2] == boxes[1][0][2]


def test_slice_strip_one_row(tmp_path):
    steps = [np.full((8, 12, 10), a, np.float32) for a in (0.0, 0.5, 1.0)]
    path = slice_strip(steps, tmp_path / "strip.png", axis=2, labels=["t=0", "t=0.5", "t=1"])
    w, h = Image.open(path).size
    assert w > 2 * h > 100
    boxes, *_ = slice_layout([[(8, 12)] * 3], target=128, left=14, top=8)
    img = _grey(path)
    values = [img[int(y + hh / 2), int(x + ww / 2)] for x, y, ww, hh in boxes[0]]
    assert values[0] > 240 and 100 < values[1] < 160 and values[2] < 15  # grain white, pore black
    with pytest.raises(GenlabError):
        slice_strip(steps, tmp_path / "bad.png", labels=["one"])
    with pytest.raises(GenlabError):
        slice_strip(steps, tmp_path / "bad.png", axis=3)


def test_isosurface_ball_empty_full_and_large(tmp_path):
    ball = _ball()
    triangles, normals, count = pore_mesh(ball)
    assert count > 100 and triangles.shape == (count, 3, 3) and normals.shape == (count, 3)
    assert triangles.min() > 2 and triangles.max() < 17  # around the ball of radius 6 at 9.5
    for name, v in (("ball", torch.from_numpy(ball)[None]), ("empty", np.zeros((12, 12, 12))),
                    ("full", np.ones((12, 12, 12), np.uint8))):
        w, h = Image.open(pore_isosurface(v, tmp_path / f"{name}.png", title=name)).size
        assert w >= 300 and h >= 300
    assert pore_mesh(np.zeros((6, 6, 6)))[2] == 0
    big = np.zeros((40, 40, 40), bool)
    big[5:10, 5:10, 5:10] = True
    assert pore_isosurface(big, tmp_path / "crop.png", max_edge=16).exists()
    assert pore_isosurface(big, tmp_path / "stride.png", max_edge=16, reduce="stride").exists()


def test_statistics_plots(tmp_path):
    r = np.arange(11)
    s2 = 0.02 + 0.11 * np.exp(-r / 3)
    path = s2_plot(r, {"generated": (s2, np.full(11, 0.01)), "training": (s2 * 1.05, 0.005 * np.ones(11)),
                       "paper's GAN": s2 * 0.95, "closed form": (s2[:5], None, r[:5])},
                   tmp_path / "s2" / "s2.png", title="S2")
    assert Image.open(path).size == (640, 440)
    with pytest.raises(GenlabError):
        s2_plot(r, {"generated": (s2[:5], None)}, tmp_path / "bad.png")
    rng = np.random.default_rng(0)
    panels = [{"name": "porosity", "generated": rng.normal(0.13, 0.01, 8), "training": rng.normal(0.13, 0.005, 20),
               "reference": {"original": 0.131, "paper's GAN": 0.128}},
              {"name": "Euler characteristic", "generated": [-3, -5, float("nan")], "unit": "per volume"},
              {"name": "specific surface", "generated": [], "training": [0.05, 0.06]}]
    w, h = Image.open(statistics_panels(panels, tmp_path / "stats.png", title="statistics")).size
    assert w > h > 200


@pytest.mark.parametrize("bad", [np.zeros((8, 8)), np.zeros((2, 4, 4, 4)), np.full((4, 4, 4), 2.0),
                                 np.full((4, 4, 4), np.nan)])
def test_bad_volumes_raise_one_line(tmp_path, bad):
    for call in (lambda: middle_slices(bad), lambda: orthogonal_slices([bad], tmp_path / "x.png"),
                 lambda: pore_isosurface(bad, tmp_path / "y.png")):
        with pytest.raises(GenlabError) as err:
            call()
        assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing written
