"""Hugging Face datasets (``hf:``): saved with save_to_disk or as parquet files, their splits,
image and label columns, through the same cache and options as a folder."""
import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import load_dataset
from genlab.errors import GenlabError

datasets = pytest.importorskip("datasets")


def pictures(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (int(rng.integers(12, 30)), int(rng.integers(12, 30)), 3),
                                        dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A DatasetDict of 12 train and 4 test pictures of mixed sizes with class labels, saved to disk."""
    features = datasets.Features({"picture": datasets.Image(), "kind": datasets.ClassLabel(names=["x", "y", "z"])})
    splits = {name: datasets.Dataset.from_dict({"picture": pictures(n, seed), "kind": [i % 3 for i in range(n)]},
                                               features=features)
              for name, n, seed in (("train", 12, 0), ("test", 4, 1))}
    path = tmp_path_factory.mktemp("hf") / "saved"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path, splits


def test_a_saved_dataset_gives_its_splits_columns_and_classes(saved):
    path, splits = saved
    train = load_dataset(f"hf:{path},size=8", "train")
    test = load_dataset(f"hf:{path},size=8", "test")
    assert (len(train), len(test)) == (12, 4) and train.image_shape == (3, 8, 8)
    assert train.class_names == ["x", "y", "z"] and train.labels.tolist() == [i % 3 for i in range(12)]
    # The same pixels as the picture itself, resized and cropped as a folder's are.
    from genlab.data.folders import pixels_of

    expected = pixels_of(splits["test"][2]["picture"], 8, grey=False)
    assert torch.equal(test.images[2], torch.from_numpy(expected))
    assert train.name == f"hf:{path},size=8"


def test_one_split_is_drawn_from_and_labels_can_be_left_out(saved):
    path, _ = saved
    train = load_dataset(f"hf:{path},split=train,label=none,size=8", "train")
    test = load_dataset(f"hf:{path},split=train,label=none,size=8", "test")
    assert (len(train), len(test)) == (11, 1) and train.labels is None and train.class_names is None


def test_parquet_files_in_a_folder(tmp_path):
    data = datasets.Dataset.from_dict({"image": pictures(5), "label": [0, 1, 1, 0, 2]},
                                      features=datasets.Features({"image": datasets.Image(),
                                                                  "label": datasets.Value("int64")}))
    (tmp_path / "data").mkdir()
    data.to_parquet(str(tmp_path / "data" / "train.parquet"))
    loaded = load_dataset(f"hf:{tmp_path / 'data'},size=8", "train")
    assert len(loaded) == 4 and loaded.class_names == ["0", "1", "2"]


@pytest.mark.parametrize("options, message", [
    (",split=valid", "no split 'valid'; its splits: train, test"),
    (",image=photo", "no column 'photo'"),
    (",label=picture", "not class indices"),
])
def test_bad_choices_get_one_line(saved, options, message):
    path, _ = saved
    with pytest.raises(GenlabError, match=message):
        load_dataset(f"hf:{path}{options},size=8", "train")


def test_a_missing_dataset_gets_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(GenlabError, match="cannot load the Hugging Face dataset"):
        load_dataset(f"hf:{tmp_path / 'nothing-here'}", "train")
