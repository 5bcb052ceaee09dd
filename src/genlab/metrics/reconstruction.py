"""Reconstruction error over a dataset."""
from __future__ import annotations

import math

import torch

from ..data.base import ImageDataset
from ..models.base import GenerativeModel


@torch.no_grad()
def reconstruction_error(model: GenerativeModel, data: ImageDataset, batch_size: int = 500) -> dict[str, float]:
    """Squared error per image, summed over pixels (values in [0, 1]) and averaged over the
    images of ``data``: ``sq_error_per_image`` and its standard error ``sq_error_stderr``.

    The model's reconstruction is taken as it is (PCA's projection is not clipped to [0, 1]), so
    PCA's figure is the textbook one: 13.87 on MNIST with 30 components, as in Hinton and
    Salakhutdinov (2006)."""
    model.eval()
    errors = []
    for batch in data.batches(batch_size, model.device):
        x = batch.images
        errors.append((model.reconstruct(x, batch.labels) - x).pow(2).flatten(1).sum(1).double().cpu())
    e = torch.cat(errors)
    return {"sq_error_per_image": float(e.mean()),
            "sq_error_stderr": float(e.std() / math.sqrt(len(e))) if len(e) > 1 else 0.0}
