"""CycleGAN's figures: both directions measured by :func:`genlab.metrics.domain_transfer.direction_quality`."""
from __future__ import annotations

from ...data.base import ImageDataset
from ...data.registry import load_dataset
from ...metrics.domain_transfer import direction_quality


def domain_transfer_quality(model, data: ImageDataset, data_dir=None) -> dict:
    """Both directions of a two-domain model (a CycleGAN) on ``data``: a test split of domain A
    with domain B's test images as its condition images (:func:`genlab.families.cyclegan.data.second_domain`).
    The classifiers train on both domains' training splits (loaded by name, cached)."""
    model.eval()
    domain_b = model.config.domain_b
    a = ImageDataset(images=data.images, labels=data.labels, name=data.name, split=data.split,
                     class_names=data.class_names)
    b = ImageDataset(images=data.conditions, labels=data.condition_labels, name=domain_b, split=data.split)
    a_train, b_train = load_dataset(data.name, "train", data_dir), load_dataset(domain_b, "train", data_dir)
    device = model.device
    results: dict = {"domain_a": data.name, "domain_b": domain_b}
    to_b = lambda x: model.translate(x, "a-to-b")  # noqa: E731
    to_a = lambda x: model.translate(x, "b-to-a")  # noqa: E731
    for key, value in direction_quality(to_b, lambda x: model.baseline(x, "a-to-b"), a, b_train, b, device,
                                        back=to_a).items():
        results[f"a_to_b/{key}"] = value
    for key, value in direction_quality(to_a, lambda x: model.baseline(x, "b-to-a"), b, a_train, a, device,
                                        back=to_b).items():
        results[f"b_to_a/{key}"] = value
    return results
