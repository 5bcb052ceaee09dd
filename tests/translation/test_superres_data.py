"""Super-resolution's training data (issue 35): the 8 flips and quarter turns keep each small
input aligned with its target, and the training photos (photos-sr) hold the test photos out."""
import numpy as np
import pytest
import torch

from genlab.data import ImageDataset, load_dataset, photos
from genlab.data.augment import DRAWS
from genlab.errors import GenlabError
from genlab.families.image_to_image.resize import imresize
from genlab.registry import build_model

# The 8 symmetries of the square, written out: the 4 flips, and the same after a transpose.
SYMMETRIES = [lambda x: x, lambda x: x.flip(-1), lambda x: x.flip(-2), lambda x: x.flip(-2, -1)]
SYMMETRIES += [lambda x, f=f: f(x.transpose(-2, -1)) for f in SYMMETRIES]


@pytest.mark.parametrize("scale", [2, 4])
def test_the_matlab_resize_commutes_with_flips_and_quarter_turns(scale):
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(scale))
    for turn in SYMMETRIES:
        for s in (1 / scale, scale):   # the small input and the bicubic baseline's enlargement
            torch.testing.assert_close(imresize(turn(x), s), turn(imresize(x, s)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 4])
def test_dihedral_augmentation_keeps_superres_pairs_aligned(scale):
    hr = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    model = build_model("superres", image_shape=(3, 16, 16), scale=scale, channels=(4,))
    draws = torch.zeros(8, DRAWS, dtype=torch.float64)
    draws[:, 2] = (torch.arange(8) + 0.5) / 8   # image i gets the i-th of the 8 symmetries
    batch = ImageDataset(images=hr, augment=("dihedral",)).batch(slice(None), draws)
    lr = model.condition_of(batch, draws=batch)   # as training makes it: from the turned target
    used = set()
    for i in range(8):
        k = next(k for k, turn in enumerate(SYMMETRIES) if torch.equal(batch.images[i], turn(hr[i])))
        used.add(k)
        torch.testing.assert_close(lr[i], SYMMETRIES[k](model.degrade(hr[i:i + 1])[0]), rtol=0, atol=1e-6)
    assert len(used) == 8   # all 8 symmetries were drawn, each with its own aligned input


def test_superres_photos_hold_the_test_photos_out():
    assert not set(photos.SUPERRES_PHOTOS) & set(photos.TEST_PHOTOS)
    assert set(photos.TRAIN_PHOTOS) <= set(photos.SUPERRES_PHOTOS)
    train, test = photos.read_photos(photos.SUPERRES_PHOTOS), photos.source_photos("test")
    # By their pixels too, so that no test photo comes back under another name (cat is chelsea).
    assert not any(a.shape == b.shape and np.array_equal(a, b) for a in train for b in test)
    for name, photo in zip(photos.SUPERRES_PHOTOS, train):   # all ship with scikit-image, grey ones as RGB
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8
        assert (name in photos.GREY_PHOTOS) == bool((photo == photo[..., :1]).all())


def test_superres_patches_and_their_errors():
    train = load_dataset("photos-sr", "train")
    assert train.images.shape == (photos.SUPERRES_PATCHES, 3, 64, 64) and train.images.dtype == torch.uint8
    assert train.augment == ("dihedral",) and train.augmented
    assert torch.equal(load_dataset("photos-sr", "test").images, load_dataset("photos", "test").images)
    small = photos.superres_patches(size=32, count=5, seed=1)
    assert small.images.shape == (5, 3, 32, 32)
    assert torch.equal(small.images, photos.superres_patches(size=32, count=5, seed=1).images)
    with pytest.raises(GenlabError, match=r"^superres patches of 200x200 do not fit .* from 1 to 172$"):
        photos.superres_patches(size=200)
    with pytest.raises(GenlabError, match="at least one training patch"):
        photos.superres_patches(count=0)
