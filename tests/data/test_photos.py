"""The embedded photos (image-to-image tasks) and the digits blended into them (digits-m, mnist-m)."""
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from genlab.data import get_info, load_dataset, photos


@pytest.fixture(scope="module")
def photos_train():
    return load_dataset("photos", "train")


@pytest.fixture(scope="module")
def digits_m_train():
    return load_dataset("digits-m", "train")


def grey_uint8(ds):
    return (ds.images[:, 0] * 255).round().numpy().astype(np.uint8)


def row_corr(a, b):
    a = a.reshape(len(a), -1).astype(float)
    b = b.reshape(len(b), -1).astype(float)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


# ---- photos ---------------------------------------------------------------------------------

def test_photos_splits_shapes_and_values(photos_train):
    test = load_dataset("photos", "test")
    assert photos_train.images.shape == (photos.TRAIN_PATCHES, 3, 64, 64) and photos_train.images.dtype == torch.uint8
    assert test.images.shape == (len(photos.TEST_PHOTOS), 3, 256, 256) and test.images.dtype == torch.float32
    assert photos_train.labels is None and test.labels is None
    for ds in (photos_train, test):
        x, _ = ds.tensors(slice(0, 50))
        assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.std() > 0.05
    info = get_info("photos")
    assert info.image_shape == (3, 64, 64) and info.splits == {"train": 4000, "test": 2}
    assert "256x256" in info.description


def test_photos_are_deterministic(photos_train):
    assert torch.equal(photos_train.images, load_dataset("photos", "train").images)
    assert torch.equal(load_dataset("photos", "test").images, load_dataset("photos", "test").images)


def test_test_photos_are_held_out_whole():
    from skimage import data

    assert not set(photos.TEST_PHOTOS) & set(photos.TRAIN_PHOTOS)
    train_shapes = {p.shape for p in photos.source_photos("train")}
    assert not train_shapes & {p.shape for p in photos.source_photos("test")}
    # The test images are the centre 256x256 crops of scikit-image's astronaut and chelsea.
    test = load_dataset("photos", "test").images
    for i, image in enumerate((data.astronaut(), data.chelsea())):
        top, left = (image.shape[0] - 256) // 2, (image.shape[1] - 256) // 2
        crop = torch.from_numpy(image[top:top + 256, left:left + 256].transpose(2, 0, 1).astype(np.float32) / 255)
        assert torch.equal(test[i], crop)


def find_patch(patch, sources):
    """(source index, top, left, flipped) where the (3, S, S) patch occurs exactly, else None."""
    size = patch.shape[-1]
    for flipped in (False, True):
        p = patch[..., ::-1] if flipped else patch
        for k, photo in enumerate(sources):
            rows = sliding_window_view(photo, size, axis=1)  # (H, W - S + 1, 3, S)
            for top, left in zip(*np.nonzero((rows == p[:, 0, :]).all(axis=(2, 3)))):
                if top + size <= photo.shape[0] and np.array_equal(photo[top:top + size, left:left + size], p.transpose(1, 2, 0)):
                    return k, int(top), int(left), flipped
    return None


def test_patches_are_crops_of_the_training_photos(photos_train):
    source, top, left, flipped = photos.train_patch_plan()
    sources = photos.source_photos("train")
    assert 0.4 < flipped.mean() < 0.6 and set(source.tolist()) == {0, 1, 2}
    # Every patch is the window its plan names (flipped where it says so).
    for i in range(0, photos.TRAIN_PATCHES, 97):
        crop = sources[source[i]][top[i]:top[i] + 64, left[i]:left[i] + 64].transpose(2, 0, 1)
        assert np.array_equal(photos_train.images[i].numpy(), crop[..., ::-1] if flipped[i] else crop)
    # And, found by searching the photos without the plan: in the training photos, not the test ones.
    for i in range(3):
        patch = photos_train.images[i].numpy()
        assert find_patch(patch, sources) == (source[i], top[i], left[i], bool(flipped[i]))
        assert find_patch(patch, photos.source_photos("test")) is None


# ---- digits-m -------------------------------------------------------------------------------

def test_digits_m_shapes_labels_and_determinism(digits_m_train):
    test = load_dataset("digits-m", "test")
    assert digits_m_train.images.shape == (1497, 3, 28, 28) and test.images.shape == (300, 3, 28, 28)
    assert digits_m_train.images.dtype == torch.uint8 and digits_m_train.num_classes == 10
    assert torch.equal(digits_m_train.labels, load_dataset("digits28", "train").labels)
    assert torch.equal(test.labels, load_dataset("digits28", "test").labels)
    assert torch.equal(digits_m_train.images, load_dataset("digits-m", "train").images)
    info = get_info("digits-m")
    assert info.image_shape == (3, 28, 28) and info.splits == {"train": 1497, "test": 300}


def test_blend_is_the_absolute_difference():
    rng = np.random.default_rng(5)
    digits = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = photos.blend_into_photos(digits, "test", seed=3)
    patches = photos.blend_into_photos(np.zeros_like(digits), "test", seed=3)  # |patch - 0| = patch
    assert out.shape == (4, 3, 28, 28) and out.dtype == np.uint8
    assert np.array_equal(out, np.abs(patches.astype(np.int16) - digits[:, None]).astype(np.uint8))
    # The patches are windows of the test photos, and another seed gives others.
    assert all(find_patch(p, photos.source_photos("test")) is not None for p in patches[:2])
    assert find_patch(patches[0], photos.source_photos("train")) is None
    assert not np.array_equal(patches, photos.blend_into_photos(np.zeros_like(digits), "test", seed=4))


def test_digits_m_is_the_blend_of_digits28(digits_m_train):
    grey = grey_uint8(load_dataset("digits28", "train"))
    patches = photos.blend_into_photos(np.zeros_like(grey), "train", photos.BLEND_SEEDS["train"])
    out = digits_m_train.images.numpy()
    assert np.array_equal(out[7], np.abs(patches[7].astype(int) - grey[7]).astype(np.uint8))
    assert np.array_equal(out, np.maximum(patches, grey[:, None]) - np.minimum(patches, grey[:, None]))
    # Training patches come from the training photos only.
    assert find_patch(patches[0], photos.source_photos("train")) is not None


def test_the_digit_stays_visible(digits_m_train):
    grey = grey_uint8(load_dataset("digits28", "train"))
    patches = photos.blend_into_photos(np.zeros_like(grey), "train", photos.BLEND_SEEDS["train"])
    change = np.abs(digits_m_train.images.numpy().astype(int) - patches).mean(axis=1)  # (N, 28, 28)
    own = row_corr(grey, change)
    # The control: another image's digit (digits are centred, so it correlates too, but less).
    other = row_corr(np.roll(grey, 1, axis=0), change)
    assert np.median(own) > 0.8 and (own > 0.5).mean() > 0.95
    assert np.median(own - other) > 0.2 and (own > other).mean() > 0.95


# ---- mnist-m --------------------------------------------------------------------------------

def test_mnist_m_test_split(mnist_dir):
    assert get_info("mnist-m").locate(mnist_dir) == get_info("mnist").locate(mnist_dir)
    ds = load_dataset("mnist-m", "test", mnist_dir)
    assert ds.images.shape == (10_000, 3, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_m_is_not_here_without_mnist(tmp_path):
    assert get_info("mnist-m").locate(tmp_path) == (False, str(tmp_path / "mnist"))
    assert get_info("mnist-m").splits == {"train": 60_000, "test": 10_000}


def test_cli_lists_the_new_datasets(capsys):
    from genlab.cli import main

    assert main(["datasets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    for name in ("photos", "digits-m", "mnist-m"):
        assert name in names
    assert names.index("fashion-mnist") < names.index("photos") < names.index("digits-m") < names.index("mnist-m")
