"""CycleGAN's data: the training data (domain A) with the second domain's images as each batch's
condition images."""
from __future__ import annotations

from ...data.base import ImageDataset, unpaired
from ...data.registry import load_dataset


def second_domain(data: ImageDataset, domain_b: str | None, data_dir=None, seed: int = 0) -> ImageDataset:
    """``data`` joined with the same split of the dataset ``domain_b`` by :func:`unpaired`
    (``data`` itself when ``domain_b`` is None): what a CycleGAN trains and is measured on."""
    if not domain_b:
        return data
    return unpaired(data, load_dataset(domain_b, data.split, data_dir), seed)
