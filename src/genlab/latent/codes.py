"""Latent codes of a dataset, the common first step of every latent-space tool."""
from __future__ import annotations

import torch

from ..data import ImageDataset
from ..errors import GenlabError
from ..models.base import GenerativeModel, NotSupported


def require_latent_space(model: GenerativeModel, encoder: bool = True, purpose: str = "latent-space tools") -> int:
    """The model's code width; a clear error for a model without a latent space, or (when
    ``encoder``) without an encoder. ``purpose`` names what needs it, for the message."""
    able = model.capabilities
    if not able.latent_space:
        raise GenlabError(f"{_no_latent_space(model)}; {purpose} need a model with a latent space "
                          "(pca, ae, vae, gan, ...)")
    if encoder and not able.encoder:
        raise GenlabError(f"a {model.name} model has no encoder; {purpose} need one to compute the codes "
                          "of images (pca, ae, vae, ...)")
    return model.latent_dim


def _no_latent_space(model: GenerativeModel) -> str:
    """The model's own words for why it has no latent space (what its ``latent_dim`` raises),
    for a model whose capabilities say it has none."""
    try:
        model.latent_dim
    except NotSupported as err:
        return str(err)
    return f"a {model.name} model has no latent space"


def labels_for(model: GenerativeModel, labels: torch.Tensor | None) -> torch.Tensor | None:
    """Labels to pass to encode/decode: the true classes for a conditional model, else None."""
    if model.conditional and labels is None:
        raise GenlabError(f"this conditional {model.name} model needs class labels, and the data has none")
    return model.class_indices(labels)


@torch.no_grad()
def encode_images(model: GenerativeModel, images: torch.Tensor, labels: torch.Tensor | None = None,
                  batch_size: int = 500) -> torch.Tensor:
    """Codes (N, latent_dim) on the CPU of images (N, C, H, W) in [0, 1]."""
    require_latent_space(model)
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(model.device)
        y = None if labels is None else labels[start:start + batch_size]
        out.append(model.encode(x, labels_for(model, y)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.latent_dim)


def encode_dataset(model: GenerativeModel, data: ImageDataset, limit: int | None = None,
                   batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Codes (N, latent_dim) of the first ``limit`` images of ``data`` (all by default), and
    their labels (N,) or None."""
    x, y = data.tensors(slice(0, limit))
    return encode_images(model, x, y, batch_size), y


@torch.no_grad()
def decode_codes(model: GenerativeModel, z: torch.Tensor, labels: torch.Tensor | None = None,
                 batch_size: int = 500) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] on the CPU decoded from codes (N, latent_dim)."""
    out = []
    for start in range(0, len(z), batch_size):
        y = None if labels is None else labels[start:start + batch_size]
        x = model.decode(z[start:start + batch_size].to(model.device), labels_for(model, y))
        out.append(x.clamp(0, 1).cpu())
    return torch.cat(out)
