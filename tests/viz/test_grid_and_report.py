import numpy as np
import torch
from PIL import Image

from genlab.viz import Section, make_grid, save_gif, save_grid, write_report


def test_grid_places_each_image():
    images = torch.zeros(5, 1, 4, 4)
    for i in range(5):
        images[i] = i / 4
    grid = make_grid(images, nrow=3, padding=1, scale=2)
    assert grid.size == (3 * 9 + 1, 2 * 9 + 1) and grid.mode == "L"
    pixels = np.asarray(grid)
    assert pixels[1, 1] == 0 and pixels[1, 10] == 64 and pixels[10, 10] == 255  # image 0, 1, 4
    colour = make_grid(torch.rand(2, 3, 4, 4))
    assert colour.mode == "RGB"


def test_png_gif_and_report(tmp_path):
    images = torch.rand(4, 1, 8, 8)
    png = save_grid(images, tmp_path / "g.png")
    assert Image.open(png).size[0] > 8 * 2
    gif = save_gif([images, 1 - images, images * 0.5], tmp_path / "a.gif")
    assert Image.open(gif).n_frames == 3
    page = write_report(tmp_path / "r.html", "T <1>", [Section("S", "note", [(make_grid(images), "cap & co")],
                                                               [(["a", "b"], [["x", 1.23456]])])])
    text = page.read_text()
    assert "T &lt;1&gt;" in text and "data:image/png;base64," in text and "cap &amp; co" in text
    assert "1.235" in text
