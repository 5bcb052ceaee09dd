"""The embedded default: scikit-learn's bundled handwritten digits (no network needed).

1,797 grey images of 8x8 pixels with 17 grey levels (0..16), scaled to [0, 1]. The split is
fixed: a permutation drawn with seed 0 puts 1,497 images in ``train`` and 300 in ``test``.
``digits28`` is the same data resized to 28x28 (bilinear) so that MNIST-shaped models run on it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import DatasetInfo, ImageDataset

TEST_SIZE = 300
TOTAL = 1797


@lru_cache(maxsize=1)
def _arrays() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = np.random.RandomState(0).permutation(len(images))
    return images, labels, order


def load_digits_split(split: str, size: int = 8) -> ImageDataset:
    images, labels, order = _arrays()
    index = torch.from_numpy(order[TEST_SIZE:] if split == "train" else order[:TEST_SIZE])
    x = images[index]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return ImageDataset(
        images=x.contiguous(),
        labels=labels[index],
        name="digits" if size == 8 else f"digits{size}",
        split=split,
        class_names=[str(i) for i in range(10)],
    )


def _locate(_: Path) -> tuple[bool, str]:
    return True, "bundled with scikit-learn"


#: the datasets this module reads, for the registry (genlab.data.registry)
DATASETS = [DatasetInfo(
    name="digits",
    description="scikit-learn's handwritten digits, 8x8, 17 grey levels (embedded default)",
    image_shape=(1, 8, 8),
    splits={"train": TOTAL - TEST_SIZE, "test": TEST_SIZE},
    num_classes=10,
    load=lambda split, root: load_digits_split(split, 8),
    locate=_locate,
), DatasetInfo(
    name="digits28",
    description="the digits resized to 28x28 (bilinear), MNIST-shaped",
    image_shape=(1, 28, 28),
    splits={"train": TOTAL - TEST_SIZE, "test": TEST_SIZE},
    num_classes=10,
    load=lambda split, root: load_digits_split(split, 28),
    locate=_locate,
)]
