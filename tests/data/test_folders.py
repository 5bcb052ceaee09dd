"""Folders of any images: resized and cropped, augmented by the step's draws, decoded once into a
cache that later loads read on demand, and shared out by position under data parallelism."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import folders, load_dataset
from genlab.data.augment import DRAWS, augment, step_draws
from genlab.data.records import ImageRecords
from genlab.errors import GenlabError, GenlabWarning


def photo(path, w, h, seed=0, mode="RGB", **save):
    """A random image of W x H at ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode in ("RGB", "RGBA") else (h, w)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).convert(mode).save(path, **save)


@pytest.fixture
def mixed(tmp_path):
    """12 photos of mixed sizes and formats in class folders at several depths."""
    sizes = [(40, 30), (30, 50), (64, 64), (90, 20), (33, 47), (50, 50)]
    for i in range(12):
        w, h = sizes[i % 6]
        where = tmp_path / "photos" / ("cats" if i % 2 else "dogs/2019/june")
        photo(where / f"{i}.{['png', 'jpg', 'webp', 'bmp', 'tiff', 'png'][i % 6]}", w, h, seed=i)
    return tmp_path / "photos"


def test_mixed_sizes_become_squares_with_labels_from_nested_folders(mixed):
    train = load_dataset(f"folder:{mixed},size=16", "train")
    test = load_dataset(f"folder:{mixed},size=16", "test")
    assert train.image_shape == (3, 16, 16) and len(train) + len(test) == 12 and len(test) == 1
    assert train.class_names == ["cats", "dogs"] and isinstance(train.images, ImageRecords)
    x, y = train.tensors()
    assert x.shape == (11, 3, 16, 16) and 0 <= x.min() and x.max() <= 1 and set(y.tolist()) == {0, 1}
    assert train.name == f"folder:{mixed},size=16"   # what a run records, and reloads
    assert load_dataset(train.name, "train").name == train.name


def test_the_shorter_side_is_resized_and_the_centre_kept(tmp_path):
    """A 200 x 100 image, black on its left half and white on its right: resized to 100 x 50,
    its centre 50 x 50 spans x = 25..75 of the resized image, so the left half of the crop is black
    and the right half white (but for the resampling's blur at the edge)."""
    for i in range(2):
        pixels = np.zeros((100, 200), np.uint8)
        pixels[:, 100:] = 255
        (tmp_path / "f").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "f" / f"{i}.png")
    x = load_dataset(f"folder:{tmp_path / 'f'},size=50", "train").tensors()[0][0, 0]
    assert x.shape == (50, 50)
    assert (x[:, :22] < 0.01).all() and (x[:, 28:] > 0.99).all()


def test_exif_orientation_is_applied(tmp_path):
    for i in range(2):
        img = Image.new("L", (40, 20), 0)
        img.paste(255, (0, 0, 10, 20))   # a white band on the left of the stored pixels
        exif = Image.Exif()
        exif[0x0112] = 6                   # shown turned a quarter clockwise: the band on top
        (tmp_path / "f").mkdir(exist_ok=True)
        img.save(tmp_path / "f" / f"{i}.jpg", exif=exif, quality=95)
    data = load_dataset(f"folder:{tmp_path / 'f'}", "train")
    assert data.image_shape == (1, 40, 20)
    x = data.tensors()[0][0, 0]
    assert x[:8].mean() > 0.9 and x[12:].mean() < 0.1


def test_channels_are_decided_over_both_splits(tmp_path):
    """A grey folder with one colour (RGBA) image is colour in both splits, and channels=1 makes
    it grey; RGB files whose channels are equal are grey."""
    for i in range(9):
        photo(tmp_path / "a" / f"{i}.png", 8, 8, seed=i, mode="L")
    photo(tmp_path / "a" / "9.png", 8, 8, seed=9, mode="RGBA")
    shapes = {load_dataset(f"folder:{tmp_path / 'a'}", s).image_shape for s in ("train", "test")}
    assert shapes == {(3, 8, 8)}
    assert load_dataset(f"folder:{tmp_path / 'a'},channels=1", "test").image_shape == (1, 8, 8)
    (tmp_path / "b").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i, i, i)).save(tmp_path / "b" / f"{i}.png")
    assert load_dataset(f"folder:{tmp_path / 'b'}", "train").image_shape == (1, 8, 8)
    assert load_dataset(f"folder:{tmp_path / 'b'},channels=3", "train").image_shape == (3, 8, 8)


def test_the_cache_is_reused_until_a_file_changes(mixed, monkeypatch):
    first = load_dataset(f"folder:{mixed},size=8", "train").tensors()[0]
    decoded = []
    read = folders.pixels_of
    monkeypatch.setattr(folders, "pixels_of", lambda *a: decoded.append(a) or read(*a))
    assert torch.equal(load_dataset(f"folder:{mixed},size=8", "train").tensors()[0], first)
    assert decoded == []
    photo(mixed / "cats" / "1.jpg", 40, 30, seed=99)   # another picture under the same name
    again = load_dataset(f"folder:{mixed},size=8", "train").tensors()[0]
    assert len(decoded) == 12 and not torch.equal(again, first)


def test_worker_processes_decode_the_same_pixels(mixed, monkeypatch, tmp_path):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "one"))
    monkeypatch.setenv("GENLAB_WORKERS", "0")
    here = load_dataset(f"folder:{mixed},size=12", "train").tensors()[0]
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "two"))
    monkeypatch.setenv("GENLAB_WORKERS", "2")
    assert torch.equal(load_dataset(f"folder:{mixed},size=12", "train").tensors()[0], here)


def test_unreadable_files_are_skipped_and_named_or_refused(mixed):
    (mixed / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    photo(mixed / "dogs" / "cut.png", 20, 20)
    (mixed / "dogs" / "cut.png").write_bytes((mixed / "dogs" / "cut.png").read_bytes()[:60])
    with pytest.warns(GenlabWarning, match=r"skipped 2 of 14 images .*broken\.jpg.*cut\.png"):
        data = load_dataset(f"folder:{mixed},size=8", "train")
    assert len(data) == 11
    with pytest.raises(GenlabError, match="2 of 14 images .* cannot be read.*strict=1"):
        load_dataset(f"folder:{mixed},size=8,strict=1", "train")


@pytest.mark.parametrize("options, message", [
    (",size=8,load=4", "load=4 is smaller than size=8.*larger than the image"),
    (",crop=random", "crop=random needs size=S"),
    (",size=8,channels=2", "channels=1.*channels=3"),
    (",size=8,augment=spin", "unknown augmentation 'spin'"),
    (",size=8,augment=dihedral+hflip", "give it alone"),
    (",size=0", "size must be a whole number from 2"),
    (",colour=1", "unknown option 'colour'"),
])
def test_bad_options_get_one_line(mixed, options, message):
    with pytest.raises(GenlabError, match=message) as error:
        load_dataset(f"folder:{mixed}{options}", "train")
    assert "\n" not in str(error.value)


def test_dihedral_needs_square_images(tmp_path):
    for i in range(3):
        photo(tmp_path / f"{i}.png", 8, 6, seed=i)
    with pytest.raises(GenlabError, match="not square"):
        load_dataset(f"folder:{tmp_path},augment=dihedral", "train")


def test_augmentation_draws_give_crops_and_flips():
    """Random crops stay inside the record, and each flip is the one the draws pick."""
    records = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    u = torch.tensor([[0.0, 0.99, 0.2, 0.9], [0.99, 0.0, 0.7, 0.1]], dtype=torch.float64)
    flipped = augment(records.float(), ("hflip", "vflip"), u)
    assert torch.equal(flipped[0], records[0].float().flip(-1))      # u2 < 0.5: flipped left-right
    assert torch.equal(flipped[1], records[1].float().flip(-2))      # u3 < 0.5: flipped upside down
    turns = augment(records.float(), ("dihedral",), torch.tensor([[0, 0, 1 / 8 + 0.01, 0]] * 2, dtype=torch.float64))
    assert torch.equal(turns, torch.rot90(records.float(), 1, dims=(-2, -1)))
    draws = step_draws(0, 5, 64)
    assert draws.shape == (64, DRAWS) and torch.equal(draws, step_draws(0, 5, 64))
    assert not torch.equal(draws, step_draws(0, 6, 64)) and not torch.equal(draws, step_draws(1, 5, 64))


def test_random_crops_and_flips_follow_the_draws_and_split_over_processes(mixed, monkeypatch):
    """Each process of a data-parallel step reads only its share of the global batch, and gets the
    same crops and flips for it as one process gets for those images."""
    data = load_dataset(f"folder:{mixed},size=8,crop=random,augment=hflip", "train")
    assert data.augmented and data.images.record_shape == (3, 9, 9)
    index, draws = torch.tensor([3, 0, 7, 5]), step_draws(0, 2, 4)
    whole = data.batch(index, draws).images
    assert whole.shape == (4, 3, 8, 8) and torch.equal(whole, data.batch(index, draws).images)
    read = []
    pread = folders.ImageRecords.read
    monkeypatch.setattr(folders.ImageRecords, "read", lambda self, pos, off=None: read.append(len(pos)) or
                        pread(self, pos, off))
    for rank in range(2):
        positions = torch.arange(4)[rank::2]
        assert torch.equal(data.batch(index[positions], draws[positions]).images, whole[positions])
    assert read == [2, 2]
    centre = data.batch(index).images      # evaluation: the centre crop, unflipped
    full = data.images.read(data.images.positions(index.numpy()), np.ones((4, 2), np.int64) * 0)
    assert torch.equal(centre.mul(255).round().byte(), data.images[index])
    assert full.shape == (4, 3, 8, 8)


def test_training_on_a_folder_is_seeded_and_resumes_exactly(mixed, tmp_path):
    """The same seed gives the same run with random crops and flips, and a run stopped after its
    first epoch and resumed ends as one that was not."""
    from safetensors.torch import load_file

    from genlab.train import train

    spec = f"folder:{mixed},size=8,crop=random,augment=hflip"
    settings = dict(model_settings={"channels": 8, "latent_dim": 4}, batch_size=4, snapshot_every=-1,
                    progress=False)
    runs = []
    for name in ("a", "b"):
        train("dcgan", spec, out_dir=tmp_path / name, epochs=2, **settings)
        runs.append(load_file(str(tmp_path / name / "model.safetensors")))
    train("dcgan", spec, out_dir=tmp_path / "c", epochs=1, **settings)
    train(None, None, out_dir=tmp_path / "c", epochs=2, resume=True, progress=False)
    runs.append(load_file(str(tmp_path / "c" / "model.safetensors")))
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]) and torch.equal(runs[0][k], runs[2][k]), k
    assert json.loads((tmp_path / "c" / "config.json").read_text())["data"]["name"] == spec
