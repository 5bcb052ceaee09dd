"""How well a translation between two domains works (an unpaired or a paired translation), always next
to the trivial answer: the source image itself, brought to the target's channels.

For each direction (``a_to_b``, and ``b_to_a`` for a two-way model), on the test images:

- ``fid``: Frechet distance between the translated images and the target domain's real test
  images, in the features of genlab's classifier of the target domain (trained on its training
  split and cached, :func:`~genlab.metrics.features.feature_classifier`); ``fid_floor``, the same
  distance from as many real training images of the target to its test images, the best a
  model can expect; ``fid_x_floor``, their ratio; ``baseline_fid`` for the untranslated sources.
- ``content_kept``: the share of translated images that the target domain's classifier puts in
  the source image's class (for MNIST <-> MNIST-M: still the same digit); ``baseline_content_kept``
  for the untranslated sources; ``classifier_accuracy``: that classifier's accuracy on the
  target's own test images, the ceiling of both.
- ``cycle_l1``: the mean absolute error per pixel of the round trip back to the source domain
  (two-way models only).
"""
from __future__ import annotations

import torch

from ..data.base import ImageDataset
from .features import FeatureExtractor, accuracy, feature_classifier
from .sample_quality import fid


@torch.no_grad()
def _translated(fn, images: torch.Tensor, device, batch_size: int) -> torch.Tensor:
    out = [fn(images[i:i + batch_size].to(device)).clamp(0, 1).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def direction_quality(translate, baseline, source: ImageDataset, target_train: ImageDataset,
                      target_test: ImageDataset, device="cpu", back=None, batch_size: int = 250) -> dict:
    """The figures of one direction: ``translate`` and ``baseline`` map a batch of ``source``
    images to the target domain; ``back``, if given, maps the translations back (the cycle)."""
    x = source.tensors()[0]
    fake = _translated(translate, x, device, batch_size)
    trivial = _translated(baseline, x, device, batch_size)
    classifier, classifier_accuracy = feature_classifier(target_train, target_test)
    features = FeatureExtractor(classifier.features, f"classifier:{target_train.name}", classifier_accuracy)
    real = features(target_test.tensors()[0])
    floor_images = target_train.tensors(slice(0, min(len(target_train), len(fake))))[0]
    out = {"fid": fid(real, features(fake)), "baseline_fid": fid(real, features(trivial)),
           "fid_floor": fid(real, features(floor_images)), "classifier_accuracy": classifier_accuracy,
           "num_images": len(fake)}
    out["fid_x_floor"] = out["fid"] / out["fid_floor"] if out["fid_floor"] > 0 else float("nan")
    if source.labels is not None and target_train.labels is not None:
        out["content_kept"] = accuracy(classifier, fake, source.labels)
        out["baseline_content_kept"] = accuracy(classifier, trivial, source.labels)
    if back is not None:
        returned = _translated(back, fake, device, batch_size)
        out["cycle_l1"] = float((returned - x).abs().mean())
    return out


