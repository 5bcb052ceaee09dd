"""The latent space of a model without an encoder (GANs; diffusion, whose code is the starting noise).

Such a model has no codes of test images, so its tools start from the prior instead: an end point
is a seed (the z that ``model.prior_noise`` draws with it) or a saved vector, and a map shows draws
z ~ N(0, I) coloured by the class that a classifier trained on the dataset (the cached one of the
sample-quality metrics) sees in the image generated from each z.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..errors import GenlabError, check_seed
from ..models.base import GenerativeModel
from .codes import decode_codes, require_latent_space
from .maps import latent_scatter


def seed_code(model: GenerativeModel, seed: int) -> torch.Tensor:
    """The code (latent_dim,) on the CPU that ``model.prior_noise(1, Generator().manual_seed(seed))`` draws."""
    check_seed(seed)
    return model.prior_noise(1, torch.Generator().manual_seed(seed))[0].float().cpu()


def draw_codes(model: GenerativeModel, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` codes (n, latent_dim) from the prior on the CPU and, for a conditional model, the classes
    to decode them with (n,): every class in turn, so the draws cover the classes evenly."""
    require_latent_space(model, encoder=False)
    if n < 1:
        raise GenlabError(f"draw at least one code from the prior, got {n}")
    check_seed(seed)
    z = model.prior_noise(n, torch.Generator().manual_seed(seed)).float().cpu()
    labels = torch.arange(n) % model.config.num_classes if model.conditional else None
    return z, labels


@torch.no_grad()
def predict_classes(classifier, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """The class (N,) a classifier (images -> logits) gives each image (N, C, H, W) in [0, 1]."""
    return np.concatenate([classifier(images[i:i + batch_size]).argmax(1).cpu().numpy()
                           for i in range(0, len(images), batch_size)])


def prior_map(model: GenerativeModel, train_data, test_data, n: int = 5000, method: str = "pca", seed: int = 0,
              size_px: tuple[int, int] = (560, 480)) -> tuple[Image.Image, dict]:
    """A scatter (PIL image) of ``n`` draws of z, projected to 2-D when wider, each coloured by the
    class that the dataset's feature classifier (trained once, then cached; see
    :func:`genlab.metrics.features.feature_classifier`) predicts for the image decoded from it.
    Uncoloured when the dataset has no labels. Also returns the codes (n, d), the predicted classes
    (n,) or None, and the classifier's test accuracy (fraction) or None."""
    from ..metrics.features import feature_classifier

    z, labels = draw_codes(model, n, seed)
    width = z.shape[1]
    how = "" if width <= 2 else f", {'PCA' if method == 'pca' else 't-SNE'} projection"
    head = f"{model.name}: {n} draws of z ~ N(0, I), {width}-d{how}"
    predicted, accuracy = None, None
    if train_data.labels is None:
        title = f"{head}\nuncoloured: {train_data.name} has no class labels"
    else:
        classifier, accuracy = feature_classifier(train_data, test_data)
        model.eval()
        predicted = predict_classes(classifier, decode_codes(model, z, labels))
        title = f"{head}\ncolour: the class a classifier ({100 * accuracy:.0f}% on test) sees in its image"
    image = latent_scatter(z, predicted, train_data.class_names, method, title, size_px=size_px, seed=seed)
    return image, {"codes": z, "predicted": predicted, "classifier_accuracy": accuracy}
