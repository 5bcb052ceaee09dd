"""IDX reading, checksums, downloads (all faked: the tests never use the network) and real MNIST."""
import gzip
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import idx, load_dataset
from genlab.data.registry import get_info
from genlab.errors import GenlabError

SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared/datasets/mnist"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url, timeout=None):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(idx, "download", refuse)


def idx_bytes(array):
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()


def tiny_spec(folder, n_train=6, n_test=3, md5=True, gz_md5=()):
    """A 4x4, 3-class dataset written to ``folder / 'tiny'``; returns its IdxDataset."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n in [("train", n_train), ("test", n_test)]:
        images_stem, labels_stem = idx.IdxDataset.stems(split)
        data[images_stem] = idx_bytes(rng.integers(0, 256, (n, 4, 4), dtype=np.uint8))
        data[labels_stem] = idx_bytes(np.arange(n, dtype=np.uint8) % 3)
    (folder / "tiny").mkdir(parents=True, exist_ok=True)
    for stem, raw in data.items():
        (folder / "tiny" / f"{stem}.gz").write_bytes(gzip.compress(raw, mtime=0))
    sums = tuple((s, hashlib.md5(raw).hexdigest()) for s, raw in data.items()) if md5 else ()
    return idx.IdxDataset(name="tiny", description="tiny", mirrors=("https://example.invalid/",),
                          class_names=("a", "b", "c"), counts=(("train", n_train), ("test", n_test)),
                          image_size=(4, 4), md5=sums, gz_md5=gz_md5), data


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_read_idx_round_trips(tmp_path, dtype, name):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        array = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    idx.write_idx(tmp_path / name, array)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\0\0")
    out = idx.read_idx(tmp_path / name)
    assert out.dtype == dtype and out.shape == (2, 3, 5) and out.flags.writeable
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00\x08\x01", "magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "element type"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated or corrupt"),
])
def test_read_idx_rejects_bad_files(tmp_path, data, message):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(GenlabError, match=message):
        idx.read_idx(tmp_path / "bad")


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(GenlabError, match="not found"):
        idx.read_idx(tmp_path / "nope.gz")


def test_load_split_shapes_and_cache(tmp_path):
    spec, _ = tiny_spec(tmp_path)
    train = idx.load_split(spec, "train", tmp_path)
    assert train.images.shape == (6, 1, 4, 4) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [0, 1, 2, 0, 1, 2] and train.class_names == ["a", "b", "c"]
    assert idx.load_split(spec, "test", tmp_path).images.shape == (3, 1, 4, 4)
    assert (tmp_path / "tiny" / idx.CACHE_NAME).exists()
    assert idx.locate(spec, tmp_path) == (True, str(tmp_path / "tiny"))


def test_checksum_is_on_decompressed_contents(tmp_path):
    spec, data = tiny_spec(tmp_path)
    stem = "train-images-idx3-ubyte"
    # Compressed again with another header and level: a different .gz, the same contents.
    (tmp_path / "tiny" / f"{stem}.gz").write_bytes(gzip.compress(data[stem], compresslevel=1, mtime=12345))
    idx.load_split(spec, "train", tmp_path)
    # The decompressed form is accepted too.
    (tmp_path / "tiny" / f"{stem}.gz").unlink()
    (tmp_path / "tiny" / stem).write_bytes(data[stem])
    idx.load_split(spec, "train", tmp_path)


def test_corrupt_file_fails_even_after_verification(tmp_path):
    spec, data = tiny_spec(tmp_path)
    idx.load_split(spec, "train", tmp_path)  # verified and remembered
    stem = "train-images-idx3-ubyte"
    corrupt = bytearray(data[stem])
    corrupt[-1] ^= 0xFF
    path = tmp_path / "tiny" / f"{stem}.gz"
    path.write_bytes(gzip.compress(bytes(corrupt), mtime=0))
    os.utime(path, ns=(1, 1))  # a new mtime even on coarse clocks
    with pytest.raises(GenlabError, match="checksum mismatch") as error:
        idx.load_split(spec, "train", tmp_path)
    assert "\n" not in str(error.value)


def test_wrong_shape_is_reported(tmp_path):
    spec, _ = tiny_spec(tmp_path, md5=False)
    idx.write_idx(tmp_path / "tiny" / "train-images-idx3-ubyte.gz", np.zeros((6, 5, 5), np.uint8))
    with pytest.raises(GenlabError, match=r"expected uint8 values of shape \(6, 4, 4\)"):
        idx.load_split(spec, "train", tmp_path)


def test_missing_files_message(tmp_path):
    folder = tmp_path / "mnist"
    assert idx.locate(idx.MNIST, tmp_path) == (False, str(folder))
    with pytest.raises(GenlabError) as error:
        load_dataset("mnist", "train", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    for stem in idx.MNIST.all_stems:
        assert f"{stem}.gz" in message
    assert str(folder) in message and "--data-dir" in message and "GENLAB_DATA" in message


def test_download_writes_verified_files(tmp_path, monkeypatch):
    source = tmp_path / "mirror"
    spec, data = tiny_spec(source)
    gz_sums = tuple((s, hashlib.md5((source / "tiny" / f"{s}.gz").read_bytes()).hexdigest()) for s in data)
    spec = replace(spec, mirrors=("https://bad.invalid/", "https://good.invalid/"), gz_md5=gz_sums)
    calls = []

    def fake_download(url, timeout=None):
        calls.append(url)
        if url.startswith("https://bad"):
            return b"not the file"  # fails its checksum: the next mirror is tried
        return (source / "tiny" / url.rsplit("/", 1)[1]).read_bytes()

    monkeypatch.setattr(idx, "download", fake_download)
    root = tmp_path / "data"
    train = idx.load_split(spec, "train", root)
    assert len(train) == 6 and len(calls) == 8
    assert sorted(p.name for p in (root / "tiny").iterdir()) == sorted([f"{s}.gz" for s in data] + [idx.CACHE_NAME])
    calls.clear()
    idx.load_split(spec, "test", root)
    assert calls == []


def test_registry_lists_idx_datasets():
    mnist, fashion = get_info("mnist"), get_info("fashion-mnist")
    assert mnist.image_shape == fashion.image_shape == (1, 28, 28)
    assert mnist.splits == fashion.splits == {"train": 60_000, "test": 10_000}
    assert idx.FASHION_MNIST.class_names[0] == "T-shirt/top" and idx.FASHION_MNIST.class_names[9] == "Ankle boot"


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no shared copy of MNIST")
def test_real_mnist(tmp_path):
    # Symlinks, so that the verification cache is written here, not in the shared folder.
    (tmp_path / "mnist").mkdir()
    for f in SHARED_MNIST.iterdir():
        if not f.name.startswith("."):
            (tmp_path / "mnist" / f.name).symlink_to(f)
    assert get_info("mnist").locate(tmp_path) == (True, str(tmp_path / "mnist"))
    train = load_dataset("mnist", "train", data_dir=tmp_path)
    test = load_dataset("mnist", "test", data_dir=tmp_path)
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert test.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    x, _ = train.tensors(slice(0, 10))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() == 1
