"""The CelebA loader on a tiny folder in the standard layout, and its missing-files error."""
import numpy as np
import pytest
from PIL import Image

from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.latent import attribute_masks

NAMES = ["Smiling", "Male", "Eyeglasses"]


def make_celeba(root, n=10, partition=True):
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        pixels[109 - 20:109 + 20, 89 - 20:89 + 20] = (255, 0, 0) if i % 2 else (0, 0, 255)  # a red or blue face
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)
        rows.append(f"{name} " + " ".join("1" if (i + k) % 2 else "-1" for k in range(len(NAMES))))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(NAMES)}\n" + "\n".join(rows) + "\n")
    if partition:  # the official codes: 0 train, 1 validation, 2 test
        codes = ["0"] * (n - 4) + ["1", "1", "2", "2"]
        (folder / "list_eval_partition.txt").write_text(
            "".join(f"{i:06d}.jpg {c}\n" for i, c in zip(range(1, n + 1), codes)))
    return folder


def test_loads_cropped_64x64_rgb_with_attributes_and_official_splits(tmp_path):
    folder = make_celeba(tmp_path)
    train, test = load_dataset("celeba", "train", tmp_path), load_dataset("celeba", "test", tmp_path)
    assert train.images.shape == (6, 3, 64, 64) and test.images.shape == (2, 3, 64, 64)
    assert train.attribute_names == NAMES and train.attributes.shape == (6, 3) and train.labels is None
    assert train.attributes[0].tolist() == [1.0, -1.0, 1.0]  # 000001.jpg: "1 -1 1"
    x, _ = train.tensors(slice(0, 1))
    centre = x[0, :, 32, 32]  # the red square of image 1 lands in the centre of the crop
    assert centre[0] > 0.8 and centre[2] < 0.2
    # Attributes select images: 000001 is smiling, 000002 is not.
    assert attribute_masks(train, "Smiling")[0][:2].tolist() == [True, False]
    # The decoded split is cached as uint8 next to the data, and later loads read it.
    assert np.load(folder / "cache-64-train.npy").shape == (6, 3, 64, 64)
    (folder / "img_align_celeba" / "000001.jpg").unlink()
    assert load_dataset("celeba", "train", tmp_path).images.shape == (6, 3, 64, 64)


def test_without_partition_file_the_last_tenth_is_test(tmp_path):
    make_celeba(tmp_path, n=10, partition=False)
    assert len(load_dataset("celeba", "train", tmp_path)) == 9
    assert len(load_dataset("celeba", "test", tmp_path)) == 1


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(GenlabError, match=r"put the aligned JPEGs in .*celeba/img_align_celeba"):
        load_dataset("celeba", "train", tmp_path)
    folder = make_celeba(tmp_path)
    (folder / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(GenlabError, match="1 image.* missing .*000003.jpg"):
        load_dataset("celeba", "train", tmp_path)
