"""SliceGAN: 2-D sections as data (``image:``), a volume's slices as the critics see them, the
generator's side for a latent grid and its uniform edges, a few training steps on a synthetic
image, and the commands on its runs."""
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data import load_dataset
from genlab.errors import GenlabError, GenlabWarning
from genlab.families.porous.sections import read_section
from genlab.families.porous.slicegan import SliceGenerator, slice_stages, volume_slices
from genlab.registry import build_model
from genlab.train import load_run, train

SMALL = {"channels": 4, "latent_dim": 4}


def discs(side=48, count=14, seed=0) -> np.ndarray:
    """A grey image of black discs (pore, 0) on white (grain, 255)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    image = np.full((side, side), 255, np.uint8)
    for cy, cx, r in zip(rng.integers(0, side, count), rng.integers(0, side, count), rng.integers(2, 5, count)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 0
    return image


@pytest.fixture
def section(tmp_path):
    path = tmp_path / "discs.png"
    Image.fromarray(discs()).save(path)
    return path


def one_line(error) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# ---- the slices a critic sees ------------------------------------------------------------------

def test_the_slices_across_each_axis_are_the_volumes_sections():
    volumes = torch.zeros(2, 1, 5, 6, 7)
    volumes[1, 0, 2, 3, 4] = 1.0   # volume 1, voxel (d, h, w) = (2, 3, 4)
    across = [volume_slices(volumes, a) for a in range(3)]
    assert [tuple(s.shape) for s in across] == [(10, 1, 6, 7), (12, 1, 5, 7), (14, 1, 5, 6)]
    # Slice j of volume i is image i * side + j; the voxel lies in slice d, h or w, at the other two.
    assert across[0][1 * 5 + 2, 0, 3, 4] == 1 and across[0].sum() == 1
    assert across[1][1 * 6 + 3, 0, 2, 4] == 1 and across[1].sum() == 1
    assert across[2][1 * 7 + 4, 0, 2, 3] == 1 and across[2].sum() == 1
    v = torch.rand(2, 1, 4, 4, 4)
    assert torch.equal(volume_slices(v, 1)[4 + 2], v[1, :, :, 2])
    assert torch.equal(volume_slices(v, 2)[3], v[0, :, :, :, 3])


# ---- the generator -----------------------------------------------------------------------------

@pytest.mark.parametrize("edge", [8, 16, 32])
def test_a_latent_grid_of_side_m_makes_volumes_of_side_2_to_the_L_times_m_minus_2(edge):
    layers, m = slice_stages(edge)
    assert m == 4 and 2 ** layers * (m - 2) == edge
    g = SliceGenerator(latent_dim=2, channels=2, layers=layers).eval()
    for side in (3, 4, 6):
        with torch.no_grad():
            assert g(torch.randn(1, 2, side, side, side)).shape[-3:] == (2 ** layers * (side - 2),) * 3
    assert slice_stages(64) == (5, 4) and slice_stages(48) == (4, 5)


def test_the_volumes_edges_are_made_as_their_interior():
    """Kernel 4, stride 2, padding 2: every voxel is reached by as many inputs as any other, so a
    constant latent grid gives a volume of period 2^L up to its faces (not so with padding 1)."""
    torch.manual_seed(0)
    g = SliceGenerator(latent_dim=3, channels=4, layers=3).eval()
    with torch.no_grad():
        v = g(torch.ones(1, 3, 6, 6, 6))[0, 0]   # 32^3, period 8
    blocks = v.reshape(4, 8, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(64, 8, 8, 8)
    assert torch.allclose(blocks, blocks[:1].expand_as(blocks), atol=1e-6)


def test_the_model_makes_larger_volumes_from_larger_grids():
    model = build_model("slicegan", image_shape=(1, 16, 16), **SMALL).eval()
    assert model.config.image_shape == (1, 16, 16, 16) and model.config.slice_images == 1
    assert (model.stages, model.grid_side) == (3, 4)
    assert model.edge_for(40) == 40 and model.latent_grid(1, 40).shape[-1] == 7
    assert model.generate_volume(size=24, n=1).shape == (1, 1, 24, 24, 24)
    assert build_model("slicegan", image_shape=(3, 16, 16), **SMALL).config.slice_images == 3


@pytest.mark.parametrize("settings, message", [
    ({"image_shape": (2, 16, 16)}, "one image .isotropic. or three"),
    ({"image_shape": (1, 16, 12)}, "square patches"),
    ({"image_shape": (1, 10, 10)}, "edge of 8 or more with a factor of 4"),
    ({"image_shape": (1, 16, 16), "r1_gamma": 1.0}, "drop `r1_gamma`"),
])
def test_settings_it_cannot_take_are_refused_in_one_line(settings, message):
    with pytest.raises(GenlabError, match=message) as err:
        build_model("slicegan", **settings)
    one_line(err)


# ---- the data ----------------------------------------------------------------------------------

def test_image_data_are_patches_of_the_binarised_images(section, tmp_path):
    data = load_dataset(f"image:{section},edge=16,patches=10")
    assert data.images.shape == (10, 1, 16, 16) and data.images.dtype == torch.uint8
    assert set(np.unique(data.images.numpy())) <= {0, 255}
    assert data.name == f"image:{section},edge=16,patches=10,pore=low"   # the default made explicit
    # Each patch is a window of the image, pore (black) as 255.
    pore = (discs() == 0)
    windows = np.lib.stride_tricks.sliding_window_view(pore, (16, 16)).reshape(-1, 16, 16)
    assert all((windows == (p[0].numpy() == 255)).all(axis=(1, 2)).any() for p in data.images)
    assert torch.equal(load_dataset(data.name).images, data.images)   # the same patches every time
    y, z = tmp_path / "y.png", tmp_path / "z.png"
    Image.fromarray(discs(seed=1)).save(y)
    Image.fromarray(discs(seed=2)).save(z)
    three = load_dataset(f"image:{section},{y},{z},edge=16,patches=4")
    assert three.images.shape == (4, 3, 16, 16)


def test_pore_setting_and_the_phase_warning_are_the_volumes(section, tmp_path):
    mask, pore = read_section(section)
    assert pore == "low" and np.array_equal(mask, discs() == 0)
    with pytest.warns(GenlabWarning, match=r"reads as porosity 0\.\d+ with pore=high, .* set pore=low"):
        flipped, _ = read_section(section, pore="high")
    assert np.array_equal(flipped, ~mask)
    grey = tmp_path / "grey.png"
    Image.fromarray((np.arange(48 * 48) % 200).reshape(48, 48).astype(np.uint8)).save(grey)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenlabWarning)
        cut, _ = read_section(grey, threshold=100)
    assert np.array_equal(cut, (np.arange(48 * 48) % 200).reshape(48, 48) < 100)


def bad(tmp_path, section):
    grey = tmp_path / "grey.png"
    Image.fromarray((np.arange(48 * 48) % 200).reshape(48, 48).astype(np.uint8)).save(grey)
    colour = tmp_path / "colour.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3)).astype(np.uint8)).save(colour)
    return [
        (f"image:{section},{section}", "names 2 images; give one .* or three"),
        (f"image:{tmp_path}/missing.png", "image file not found"),
        (f"image:{section},stride=4", "unknown key 'stride' .* keys: edge, patches, pore, threshold"),
        (f"image:{section},edge=64",
         r"is 48x48, smaller than the patches' edge 64; give a smaller edge, e.g. `image:...,edge=32`"),
        (f"image:{section},edge=x", "edge must be a whole number"),
        (f"image:{section},pore=7", "pore=7 is not a value of"),
        (f"image:{grey}", "give a threshold"),
        (f"image:{colour}", "is a colour image; .* segment it, or save it as grey"),
    ]


def test_bad_image_specs_get_one_line_naming_the_fix(tmp_path, section):
    for spec, message in bad(tmp_path, section):
        with pytest.raises(GenlabError, match=message) as err:
            load_dataset(spec)
        one_line(err)


def test_the_3d_gan_on_images_points_to_slicegan(tmp_path, section, capsys):
    assert main(["train", "porous-gan", "--data", f"image:{section},edge=16", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    assert "for sections of a porous medium, slicegan" in capsys.readouterr().err


# ---- training and the commands -----------------------------------------------------------------

def test_a_tiny_slicegan_trains_resumes_exactly_and_samples_volumes(tmp_path, section, capsys):
    data = f"image:{section},edge=16,patches=24"
    settings = {"channels": 4, "latent_dim": 4}
    common = dict(seed=0, progress=False, snapshot_every=-1, model_settings=settings, batch_size=4)
    train("slicegan", data, out_dir=tmp_path / "a", epochs=2, **common)
    train("slicegan", data, out_dir=tmp_path / "b", epochs=1, **common)
    train("slicegan", data, out_dir=tmp_path / "b", epochs=2, resume=True, **common)
    run, again = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    for key, value in run.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 12 and np.isfinite(records[-1]["train/d_loss"])
    assert {"train/gp", "train/porosity"} <= set(records[-1])
    assert run.config["data"]["name"].endswith(",pore=low")

    volume = run.model.generate_volume(size=32, n=1, generator=torch.Generator().manual_seed(0))
    assert volume.shape == (1, 1, 32, 32, 32) and 0 <= float(volume.min()) and float(volume.max()) <= 1
    out = tmp_path / "s"
    assert main(["sample", str(tmp_path / "a"), "--size", "32", "-n", "1", "--out", str(out)]) == 0
    sample = np.load(out / "sample-0-000.npy")
    assert sample.shape == (32, 32, 32) and sample.dtype == bool
    assert json.loads((out / "sample-0.json").read_text())["phase"]["pore"] == "low"
    assert main(["evaluate", str(tmp_path / "a"), "--metrics", "porosity,s2,chords", "--num-samples", "2",
                 "--out", str(tmp_path / "e.json")]) == 0
    assert "against the 2-D statistics of the 1 training image" in capsys.readouterr().out
    results = json.loads((tmp_path / "e.json").read_text())
    assert results["training"]["porosity"]["mean"] == pytest.approx(float((discs() == 0).mean()))
    assert results["phase"]["pore"] == "low" and "chord_pore_s2" in results["comparison"]


def test_section_statistics_estimate_those_of_the_volume():
    """An image's porosity and S2 along its rows and columns are those of the volume's lines."""
    from genlab.families.porous.media import make_volume
    from genlab.families.porous.statistics import describe, describe_sections

    volume = make_volume("overlapping-spheres", 48, 0.3, radius=4, seed=0)
    sections = [volume[24], volume[:, 24], volume[:, :, 24]]
    two = describe_sections(sections, ("porosity", "s2", "surface", "chords"), max_lag=10)
    assert two["porosity"]["values"] == pytest.approx([float(s.mean()) for s in sections])
    whole = describe([volume], ("porosity", "s2"), max_lag=10)
    assert two["porosity"]["mean"] == pytest.approx(whole["porosity"]["mean"], abs=0.03)
    assert np.abs(np.array(two["s2"]["mean"]) - whole["s2"]["mean"]).max() < 0.03
    assert "euler" not in describe_sections(sections) and "specific_surface_mesh" not in two
