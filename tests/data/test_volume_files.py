"""3-D volumes: reading and writing, segmentation, cubes, ``volume:`` datasets, cube symmetries."""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from genlab.data import load_dataset
from genlab.families.porous.volumes import (CUBE_SYMMETRIES, cube_symmetry, load_volume_dataset, parse_volume_spec, phase_record, random_cube_symmetry, read_volume, read_volume_spec, subvolumes, write_volume)
from genlab.errors import GenlabError, GenlabWarning


def random_volume(shape=(12, 10, 9), porosity=0.3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < porosity


def one_line(error) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# ---- reading and writing -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["v.npy", "v.tif", "v.tiff"])
def test_write_then_read_gives_the_volume_back(tmp_path, name):
    volume = random_volume()
    assert write_volume(volume, tmp_path / name) == tmp_path / name
    back = read_volume(tmp_path / name)
    assert back.dtype == bool and back.shape == volume.shape and np.array_equal(back, volume)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_tiff_is_one_page_per_slice_with_0_for_pore(tmp_path):
    volume = random_volume()
    write_volume(volume, tmp_path / "v.tif")
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert len(tif.pages) == volume.shape[0]
    pages = tifffile.imread(tmp_path / "v.tif")
    assert pages.dtype == np.uint8 and np.array_equal(pages == 0, volume) and set(np.unique(pages)) == {0, 255}


def test_tiff_written_page_by_page(tmp_path):
    volume = random_volume((3, 8, 8))
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:
        for page in volume:
            tif.write(np.where(page, 0, 255).astype(np.uint8))  # one series per page
    assert np.array_equal(read_volume(tmp_path / "pages.tif"), volume)
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:
        tif.write(np.zeros((8, 8), np.uint8))
        tif.write(np.zeros((9, 8), np.uint8))
    with pytest.raises(GenlabError, match=r"the 2 pages of .* differ in size \(8x8, 9x8\)"):
        read_volume(tmp_path / "mixed.tif")


def test_write_accepts_0_1_and_0_255_and_refuses_grey_levels(tmp_path):
    volume = random_volume()
    write_volume(volume.astype(np.float32), tmp_path / "a.npy")
    write_volume(torch.from_numpy(volume.astype(np.uint8) * 255), tmp_path / "b.npy")  # dataset images
    assert np.array_equal(read_volume(tmp_path / "a.npy"), volume)
    assert np.array_equal(read_volume(tmp_path / "b.npy"), volume)
    with pytest.raises(GenlabError, match="threshold it first") as error:
        write_volume(np.random.default_rng(0).random((4, 4, 4)), tmp_path / "c.npy")
    one_line(error)
    with pytest.raises(GenlabError, match="use .npy or .tif"):
        write_volume(volume, tmp_path / "v.png")


def test_write_replaces_an_existing_file(tmp_path):
    write_volume(random_volume(seed=1), tmp_path / "v.npy")
    write_volume(random_volume(seed=2), tmp_path / "v.npy")
    assert np.array_equal(read_volume(tmp_path / "v.npy"), random_volume(seed=2))


def test_raw_round_trip(tmp_path):
    grey = np.random.default_rng(0).integers(0, 20000, (6, 5, 4)).astype(np.uint16)
    grey.tofile(tmp_path / "scan.raw")
    assert np.array_equal(read_volume(tmp_path / "scan.raw", shape=(6, 5, 4), dtype="uint16", threshold=9000),
                          grey < 9000)
    assert np.array_equal(read_volume(tmp_path / "scan.raw", shape="6x5x4", dtype="uint16", threshold=9000,
                                      pore="high"), grey >= 9000)
    # Any suffix is raw when a shape is given; uint8 by default.
    volume = random_volume((6, 5, 4))
    np.where(volume, 0, 255).astype(np.uint8).tofile(tmp_path / "scan.img")
    assert np.array_equal(read_volume(tmp_path / "scan.img", shape=(6, 5, 4)), volume)


def test_raw_size_mismatch_names_both_sizes(tmp_path):
    np.zeros(100, np.uint8).tofile(tmp_path / "scan.raw")
    with pytest.raises(GenlabError) as error:
        read_volume(tmp_path / "scan.raw", shape=(5, 5, 5), dtype="uint16")
    message = one_line(error)
    assert "holds 100 bytes" in message and "needs 250 bytes" in message
    with pytest.raises(GenlabError, match="give its size, shape=DxHxW"):
        read_volume(tmp_path / "scan.raw")


def test_bad_files(tmp_path):
    tifffile.imwrite(tmp_path / "page.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(GenlabError, match="is one 2-D page, not a stack of pages; a volume needs one page per "
                                          "slice") as error:
        read_volume(tmp_path / "page.tif")
    one_line(error)
    with pytest.raises(GenlabError, match="volume file not found"):
        read_volume(tmp_path / "none.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(GenlabError, match="cannot read .* as a TIFF"):
        read_volume(tmp_path / "junk.tif")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), bool))
    with pytest.raises(GenlabError, match=r"shape \(4, 4\); a volume is \(D, H, W\)"):
        read_volume(tmp_path / "flat.npy")
    (tmp_path / "v.png").write_bytes(b"")
    with pytest.raises(GenlabError, match="cannot tell the format"):
        read_volume(tmp_path / "v.png")
    write_volume(random_volume(), tmp_path / "v.npy")
    with pytest.raises(GenlabError, match="not the shape 2x2x2"):
        read_volume(tmp_path / "v.npy", shape=(2, 2, 2))


# ---- segmentation ------------------------------------------------------------------------------

def test_two_values_smaller_is_pore_unless_told(tmp_path):
    volume = random_volume()
    np.save(tmp_path / "v.npy", np.where(volume, 3, 7).astype(np.int16))
    assert np.array_equal(read_volume(tmp_path / "v.npy"), volume)
    assert np.array_equal(read_volume(tmp_path / "v.npy", pore="low"), volume)
    assert np.array_equal(read_volume(tmp_path / "v.npy", pore=7), ~volume)
    assert np.array_equal(read_volume(tmp_path / "v.npy", pore="high"), ~volume)
    with pytest.raises(GenlabError) as error:
        read_volume(tmp_path / "v.npy", pore=1)
    assert "pore=1 is not a value of" in one_line(error) and "(values: 3 and 7)" in str(error.value)
    # A bool array is True = pore.
    np.save(tmp_path / "b.npy", volume)
    assert np.array_equal(read_volume(tmp_path / "b.npy"), volume)
    assert np.array_equal(read_volume(tmp_path / "b.npy", pore=0), ~volume)


def test_grey_levels_need_a_threshold(tmp_path):
    grey = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    np.save(tmp_path / "g.npy", grey)
    with pytest.raises(GenlabError) as error:
        read_volume(tmp_path / "g.npy")
    assert one_line(error).endswith("has 60 distinct values (grey levels); give a threshold (`threshold=T`: "
                                    "voxels below T are pore) or segment it first")
    assert np.array_equal(read_volume(tmp_path / "g.npy", threshold=20), grey < 20)
    with pytest.raises(GenlabError, match="makes every voxel"):
        read_volume(tmp_path / "g.npy", threshold=100)
    with pytest.raises(GenlabError, match="with a threshold, pore is 'low'"):
        read_volume(tmp_path / "g.npy", threshold=20, pore=3)


def _pore_warnings(read) -> list[str]:
    """The messages of the GenlabWarnings that ``read()`` gives (each must be one line)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read()
    messages = [str(w.message) for w in caught if issubclass(w.category, GenlabWarning)]
    assert all("\n" not in m for m in messages)
    return messages


def test_a_volume_read_as_more_pore_than_grain_warns_with_both_readings(tmp_path):
    volume = np.zeros((4, 4, 4), bool)
    volume.flat[:32] = True                      # exactly half pore: no warning
    write_volume(volume, tmp_path / "half.tif")  # 0 = pore, 255 = grain
    assert _pore_warnings(lambda: read_volume(tmp_path / "half.tif")) == []
    volume.flat[32] = True                       # 33 of 64 voxels
    write_volume(volume, tmp_path / "v.tif")
    path = tmp_path / "v.tif"
    assert _pore_warnings(lambda: read_volume(path)) == [
        f"{path} reads as porosity 0.5156 with pore=low, and 0.4844 with pore=high: more pore than grain; "
        "if the pore is the other phase, set pore=high"]
    assert _pore_warnings(lambda: read_volume(path, pore="high")) == []
    assert _pore_warnings(lambda: read_volume(path, pore=0))[0].endswith("set pore=255")
    grey = np.where(volume, 10, 200).astype(np.uint8)
    np.save(tmp_path / "g.npy", grey)
    message, = _pore_warnings(lambda: read_volume(tmp_path / "g.npy", threshold=100))
    assert "porosity 0.5156 with pore=low, and 0.4844 with pore=high" in message
    assert _pore_warnings(lambda: read_volume(tmp_path / "g.npy", threshold=100, pore="high")) == []


def test_a_volume_dataset_records_which_phase_is_pore(tmp_path):
    volume = random_volume((8, 8, 8))
    write_volume(volume, tmp_path / "rock.tif")
    np.save(tmp_path / "rock.npy", volume)
    for name, setting in (("rock.tif", "low"), ("rock.npy", "high")):  # the defaults: 0 = pore, True = pore
        data = load_volume_dataset(f"volume:{tmp_path / name},edge=4")
        assert data.name == f"volume:{tmp_path / name},edge=4,pore={setting}"
        assert torch.equal(load_dataset(data.name).images, data.images)
        _, options = read_volume_spec(data.name)
        assert phase_record(options, volume) == {"pore": setting, "data": data.name, "porosity": volume.mean()}
    given = load_volume_dataset(f"volume:{tmp_path / 'rock.tif'},edge=4,pore=255")
    assert given.name == f"volume:{tmp_path / 'rock.tif'},edge=4,pore=255"   # as the user gave it
    old = phase_record(parse_volume_spec("volume:old.tif,edge=4"))   # a name from before the phase was recorded
    assert old == {"pore": None, "data": f"volume:{os.path.abspath('old.tif')},edge=4"}


def test_one_value_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(GenlabError, match=r"holds one value only \(0\)") as error:
        read_volume(tmp_path / "v.npy")
    one_line(error)


# ---- cubes -------------------------------------------------------------------------------------

def test_subvolumes_count_and_content():
    volume = random_volume((20, 20, 20))
    cubes = subvolumes(volume, 8, 4)
    assert cubes.shape == (4 ** 3, 8, 8, 8) and cubes.dtype == bool
    # C order of the corners: cube (i, j, k) starts at (4i, 4j, 4k).
    i, j, k = 2, 1, 3
    assert np.array_equal(cubes[i * 16 + j * 4 + k], volume[8:16, 4:12, 12:20])
    assert np.array_equal(cubes[-1], volume[12:, 12:, 12:])
    cubes[0] = ~cubes[0]  # a copy, not a view
    assert np.array_equal(subvolumes(volume, 8, 4)[0], volume[:8, :8, :8])
    assert subvolumes(np.zeros((256, 100, 70), bool), 64, 32).shape[0] == 7 * 2 * 1
    assert subvolumes(volume, 20, 5).shape == (1, 20, 20, 20)


def test_subvolume_errors():
    volume = np.zeros((256, 256, 256), bool)
    with pytest.raises(GenlabError) as error:
        subvolumes(volume, 300, 32)
    assert one_line(error) == ("cube edge 300 is larger than the volume (256x256x256); give an edge of at most 256 "
                               "in the data's name, e.g. `volume:PATH,edge=256`")
    for edge, stride in ((0, 4), (8, 0), (8, -1), (2.5, 1)):
        with pytest.raises(GenlabError, match="must be a whole number of at least 1"):
            subvolumes(volume[:20, :20, :20], edge, stride)


# ---- volume: datasets --------------------------------------------------------------------------

def test_load_dataset_volume(tmp_path):
    volume = random_volume((20, 20, 20))
    write_volume(volume, tmp_path / "rock.tif")
    spec = f"volume:{tmp_path / 'rock.tif'},edge=8,stride=4"
    train, test = load_dataset(spec, "train"), load_dataset(spec, "test")
    assert train.name == f"{spec},pore=low" and train.labels is None and len(train) == 64
    assert train.images.shape == (64, 1, 8, 8, 8) and train.images.dtype == torch.uint8
    assert torch.equal(train.images, test.images)  # both splits are all the cubes
    images, _ = train.tensors()
    assert set(images.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(images[0, 0] == 1, torch.from_numpy(volume[:8, :8, :8]))
    # The name loads the same data again, and the whole volume is at hand.
    assert torch.equal(load_dataset(train.name).images, train.images)
    whole, options = read_volume_spec(train.name)
    assert np.array_equal(whole, volume) and (options.edge, options.stride) == (8, 4)
    # Defaults: edge 64 (too big here), stride edge // 2.
    assert parse_volume_spec("volume:r.tif").edge == 64 and parse_volume_spec("r.tif,edge=10").stride == 5
    with pytest.raises(GenlabError, match="at most 20 in the data's name, e.g. `volume:PATH,edge=16`"):
        load_volume_dataset(f"volume:{tmp_path / 'rock.tif'}")


def test_volume_spec_options(tmp_path):
    grey = np.random.default_rng(0).integers(0, 20000, (10, 10, 10)).astype(np.uint16)
    grey.tofile(tmp_path / "scan,1.raw")  # a comma in the path is fine
    data = load_volume_dataset(f"volume:{tmp_path / 'scan,1.raw'},shape=10x10x10,dtype=uint16,threshold=9000,"
                               f"edge=5,stride=5")
    assert data.images.shape == (8, 1, 5, 5, 5)
    assert torch.equal(data.images[0, 0] == 255, torch.from_numpy(grey[:5, :5, :5] < 9000))
    options = parse_volume_spec("volume:rock.tif,edge=64,stride=32,pore=0")
    assert (options.path, options.edge, options.stride, options.pore) == (Path("rock.tif"), 64, 32, 0)
    assert parse_volume_spec("rock.tif,pore=high,threshold=0.5").threshold == 0.5


@pytest.mark.parametrize("options, message", [
    ("edge=64,colour=red", "unknown key 'colour' in volume:rock.tif,edge=64,colour=red; keys: edge, stride, pore, "
                           "threshold, shape, dtype"),
    ("edge=big", "edge=big in volume:rock.tif,edge=big: edge must be a whole number of at least 1"),
    ("stride=0", "stride must be a whole number of at least 1"),
    ("shape=10x10", "shape must be three sides DxHxW"),
    ("dtype=complex", "dtype must be a voxel type"),
    ("pore=grain", "pore must be the pore value"),
    ("threshold=", "threshold must be a number"),
    ("edge=8,edge=9", "key 'edge' is given twice"),
])
def test_bad_volume_specs(options, message):
    with pytest.raises(GenlabError) as error:
        parse_volume_spec(f"volume:rock.tif,{options}")
    assert message in one_line(error)


def test_volume_prefix_errors(tmp_path):
    with pytest.raises(GenlabError, match="names no file"):
        load_dataset("volume:")
    with pytest.raises(GenlabError, match="volume file not found"):
        load_dataset(f"volume:{tmp_path / 'none.tif'},edge=8")
    with pytest.raises(GenlabError, match="volume:PATH"):
        load_dataset("zip:x")


# ---- the 48 symmetries of the cube -------------------------------------------------------------

def test_cube_symmetries_are_the_48_distinct_bijections():
    x = torch.randperm(5 ** 3).float().reshape(1, 1, 5, 5, 5)
    all48 = cube_symmetry(x.expand(CUBE_SYMMETRIES, -1, -1, -1, -1), torch.arange(CUBE_SYMMETRIES))
    assert torch.equal(all48[0], x[0]) and torch.equal(cube_symmetry(x, 0), x)
    keys = {tuple(y.flatten().tolist()) for y in all48}
    assert len(keys) == CUBE_SYMMETRIES
    for y in all48:  # a bijection of the voxels
        assert torch.equal(y.flatten().sort().values, x.flatten().sort().values)
    # Closed under composition: s_a(s_b(x)) is some s_c(x).
    index = {key: i for i, key in enumerate(keys)}
    a = torch.arange(CUBE_SYMMETRIES).repeat(CUBE_SYMMETRIES)
    composed = cube_symmetry(all48.repeat_interleave(CUBE_SYMMETRIES, dim=0), a)
    assert all(tuple(y.flatten().tolist()) in index for y in composed)
    # Each single index agrees with the batched result.
    for k in (1, 8, 47):
        assert torch.equal(cube_symmetry(x, k)[0], all48[k])


def test_cube_symmetry_keeps_porosity_and_mixes_indices():
    x = (torch.rand(6, 1, 8, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3).to(torch.uint8)
    index = torch.tensor([0, 5, 17, 5, 47, 30])
    y = cube_symmetry(x, index)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    assert torch.equal(y.flatten(1).sum(1), x.flatten(1).sum(1))
    for i, k in enumerate(index.tolist()):
        assert torch.equal(y[i], cube_symmetry(x[i:i + 1], k)[0])
    z = random_cube_symmetry(x.float(), torch.Generator().manual_seed(1))
    assert torch.equal(z.flatten(1).sum(1), x.float().flatten(1).sum(1))
    with pytest.raises(ValueError):
        cube_symmetry(torch.zeros(1, 1, 4, 4, 5), 0)
    with pytest.raises(ValueError):
        cube_symmetry(x, 48)


# ---- the Ketton limestone, when it is there ----------------------------------------------------

def _ketton() -> Path:
    folder = os.environ.get("GENLAB_POROUS")
    root = Path(folder) if folder else Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "porous"
    path = root / "ketton.tif"
    if not path.is_file():
        pytest.skip("ketton.tif not available (set GENLAB_POROUS to a folder holding it)")
    return path


def test_ketton():
    path = _ketton()
    volume = read_volume(path)
    assert volume.shape == (256, 256, 256)
    assert abs(volume.mean() - 0.1269) <= 1e-4  # 0 = pore in this file
    data = load_dataset(f"volume:{path},edge=64,stride=32")
    assert data.images.shape == (343, 1, 64, 64, 64)  # ((256 - 64) / 32 + 1) ** 3
