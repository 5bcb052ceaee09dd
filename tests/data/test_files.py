"""Folders of images and .npz archives, and how load_dataset dispatches to them."""
import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import files, folders, load_dataset
from genlab.errors import GenlabError, GenlabWarning


def save(path, value, size=(6, 5), mode="L"):
    """A constant image of ``size`` (W, H) at ``path``; an RGB value makes a colour image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


# ---- folders -----------------------------------------------------------------------------------

def test_labelled_folder(tmp_path):
    for i in range(10):
        save(tmp_path / "cat" / f"{i}.png", 10)
        save(tmp_path / "dog" / f"{i}.jpg", 200)
    (tmp_path / "notes.txt").write_text("ignored")
    train = folders.load_folder(tmp_path, "train")
    test = folders.load_folder(tmp_path, "test")
    assert train.class_names == ["cat", "dog"] and test.class_names == ["cat", "dog"]
    assert train.images.shape == (18, 1, 5, 6) and train.images.dtype == torch.uint8
    assert len(test) == 2  # 10% of 20
    # Labels follow the folders, and the split is the same on every call.
    x = torch.cat([train.images[:], test.images[:]])[:, 0, 0, 0]
    y = torch.cat([train.labels, test.labels])
    assert ((x > 100) == (y == 1)).all()
    assert torch.equal(folders.load_folder(tmp_path, "test").images[:], test.images[:])


def test_unlabelled_colour_folder(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", (i, 2 * i, 3 * i), mode="RGB")
    save(tmp_path / "grey.bmp", 7)  # grey images join colour ones as 3 equal channels
    train = folders.load_folder(tmp_path, "train")
    assert train.labels is None and train.class_names is None
    assert train.images.shape == (3, 3, 5, 6)
    assert len(folders.load_folder(tmp_path, "test")) == 1


def test_rgb_files_with_equal_channels_are_grey(tmp_path):
    for i in range(4):
        save(tmp_path / f"{i}.png", (i, i, i), mode="RGB")
    assert folders.load_folder(tmp_path, "train").image_shape == (1, 5, 6)


def test_train_test_subfolders(tmp_path):
    for i in range(3):
        save(tmp_path / "train" / "a" / f"{i}.png", 1)
        save(tmp_path / "train" / "c" / f"{i}.png", 3)
    save(tmp_path / "test" / "b" / "0.png", 2)
    save(tmp_path / "test" / "c" / "0.png", 3)
    train = folders.load_folder(tmp_path, "train")
    test = folders.load_folder(tmp_path, "test")
    # Classes are the union over both splits, so a label means the same in each.
    assert train.class_names == test.class_names == ["a", "b", "c"]
    assert len(train) == 6 and train.labels.tolist() == [0, 0, 0, 2, 2, 2]
    assert test.labels.tolist() == [1, 2]


def test_folder_errors(tmp_path):
    with pytest.raises(GenlabError, match="not found"):
        folders.load_folder(tmp_path / "missing", "train")
    with pytest.raises(GenlabError, match="no images"):
        folders.load_folder(tmp_path, "train")
    save(tmp_path / "a.png", 1, size=(4, 4))
    with pytest.raises(GenlabError, match="at least 2"):
        folders.load_folder(tmp_path, "train")
    save(tmp_path / "b.png", 1, size=(4, 4))
    save(tmp_path / "c.png", 1, size=(8, 4))
    with pytest.raises(GenlabError, match="different sizes.*--image-size") as error:
        folders.load_folder(tmp_path, "train")
    assert "c.png" in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "c.png").unlink()
    save(tmp_path / "cls" / "d.png", 1, size=(4, 4))
    with pytest.raises(GenlabError, match="both images and class sub-folders"):
        folders.load_folder(tmp_path, "train")
    (tmp_path / "cls" / "d.png").write_bytes(b"not an image")
    (tmp_path / "a.png").unlink()
    (tmp_path / "b.png").unlink()
    save(tmp_path / "cls" / "e.png", 1, size=(4, 4))
    with pytest.raises(GenlabError, match="1 of 2 images .* cannot be read, e.g. cls/d.png"):
        folders.load_folder(f"{tmp_path},strict=1", "train")
    with pytest.warns(GenlabWarning, match="skipped 1 of 2 images"), pytest.raises(GenlabError, match="at least 2"):
        folders.load_folder(tmp_path, "train")
    (tmp_path / "cls" / "e.png").unlink()
    with pytest.raises(GenlabError, match="no readable images"):
        folders.load_folder(tmp_path, "train")


# ---- npz ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, layout", [
    ((20, 5, 6), "NHW"), ((20, 5, 6, 1), "NHWC"), ((20, 5, 6, 3), "NHWC"), ((20, 5, 6, 4), "NHWC"),
    ((20, 1, 5, 6), "NCHW"), ((20, 3, 5, 6), "NCHW"),
])
def test_npz_layouts(tmp_path, shape, layout):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(20) % 4)
    train = files.load_npz(tmp_path / "a.npz", "train")
    test = files.load_npz(tmp_path / "a.npz", "test")
    i = int(files.split_index(20, "train")[0])
    expected = {"NHW": lambda a: a[None], "NHWC": lambda a: a.transpose(2, 0, 1)[:3],  # alpha dropped
                "NCHW": lambda a: a}[layout](x[i])
    assert train.images.shape == (18, *expected.shape) and len(test) == 2
    assert train.images.dtype == torch.uint8 and train.class_names == ["0", "1", "2", "3"]
    assert np.array_equal(train.images[0].numpy(), expected)


def test_npz_float_and_named_splits(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x_train=rng.random((7, 4, 4)), y_train=np.arange(7) % 2,
             x_test=rng.random((3, 4, 4)), y_test=np.array([0, 0, 2]), class_names=np.array(["p", "q", "r"]))
    train = files.load_npz(tmp_path / "a.npz", "train")
    test = files.load_npz(tmp_path / "a.npz", "test")
    assert train.images.dtype == torch.float32 and train.images.shape == (7, 1, 4, 4) and len(test) == 3
    assert train.class_names == ["p", "q", "r"] and test.labels.tolist() == [0, 0, 2]


def test_npz_classes_count_over_both_splits(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.array([0, 1]),
             x_test=np.zeros((1, 4, 4), np.uint8), y_test=np.array([3]))
    assert files.load_npz(tmp_path / "a.npz", "train").num_classes == 4


def test_npz_unlabelled(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((10, 4, 4), np.float32))
    data = files.load_npz(tmp_path / "a.npz", "train")
    assert data.labels is None and data.class_names is None and len(data) == 9


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((3, 4, 4))}, "no array 'x'"),
    ({"x": np.full((3, 4, 4), 2.0)}, r"\[0, 1\].*255"),
    ({"x": np.full((3, 4, 4), np.nan)}, "NaN"),
    ({"x": np.full((3, 4, 4), 300)}, "0..255"),
    ({"x": np.zeros((3, 5, 4, 6))}, "expected"),
    ({"x": np.zeros((3, 4))}, "expected"),
    ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.array([0.5, 1, 2])}, "integer labels"),
    ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.array([0, 1])}, "integer labels"),
    ({"x_train": np.zeros((3, 4, 4), np.uint8)}, "no array 'x_test'"),
])
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(GenlabError, match=message):
        files.load_npz(tmp_path / "a.npz", "test")


def test_npz_missing_or_broken_file(tmp_path):
    with pytest.raises(GenlabError, match="not found"):
        files.load_npz(tmp_path / "none.npz", "train")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(GenlabError, match="cannot read"):
        files.load_npz(tmp_path / "bad.npz", "train")


# ---- dispatch ----------------------------------------------------------------------------------

def test_load_dataset_dispatches(tmp_path):
    for i in range(4):
        save(tmp_path / "imgs" / "k" / f"{i}.png", 9)
    np.savez(tmp_path / "a.npz", x=np.zeros((10, 4, 4), np.uint8))
    folder = load_dataset(f"folder:{tmp_path / 'imgs'}", "train")
    assert folder.class_names == ["k"] and folder.name.startswith("folder:") and len(folder) == 3
    arrays = load_dataset(f"npz:{tmp_path / 'a.npz'}", "test")
    assert arrays.name.startswith("npz:") and len(arrays) == 1
    with pytest.raises(GenlabError, match="use one of: folder:PATH, npz:PATH, hf:PATH"):
        load_dataset(f"zip:{tmp_path}")


def test_unknown_dataset_lists_names():
    with pytest.raises(GenlabError, match="unknown dataset 'nope'") as error:
        load_dataset("nope")
    for name in ("digits", "mnist", "fashion-mnist", "folder:PATH", "npz:PATH"):
        assert name in str(error.value)


def test_16_bit_grey_pngs_are_scaled_not_clipped(tmp_path):
    from genlab.data.folders import load_folder

    levels = np.linspace(0, 65535, 64).round().astype(np.uint16).reshape(8, 8)
    for i in range(2):
        Image.fromarray(levels).save(tmp_path / f"{i}.png")
    assert Image.open(tmp_path / "0.png").mode.startswith("I;16")
    data = load_folder(tmp_path, "train")
    x = data.tensors()[0][0, 0].numpy()
    np.testing.assert_allclose(x, levels / 65535.0, atol=0.5 / 255 + 1e-6)  # the 8-bit level nearest each
    assert x.min() == 0 and x.max() == 1 and 0.45 < x.mean() < 0.55


def test_npz_with_an_empty_split_or_a_huge_label_gets_one_line(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((3, 4, 4), np.uint8), x_test=np.zeros((0, 4, 4), np.uint8))
    with pytest.raises(GenlabError, match="x_test array holds no images"):
        files.load_npz(tmp_path / "a.npz", "test")
    np.savez(tmp_path / "b.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.array([0, 1, 10 ** 9]))
    with pytest.raises(GenlabError, match="would make 1,000,000,001 classes"):
        files.load_npz(tmp_path / "b.npz", "train")
