"""Principal component analysis: the linear baseline, fitted in closed form.

With data mean m and the top-p eigenvectors U (p, D) of the data covariance,
encode(x) = U (x - m), decode(z) = m + U^T z. Reconstruction with p components is the best
rank-p linear reconstruction in squared error. ``sample`` draws z ~ N(0, diag(lambda)) with
lambda the component variances, a Gaussian on the principal subspace.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import GenlabError
from ...data.batch import Batch, as_batch
from ...models.base import Capabilities, GenerativeModel, ModelConfig


@dataclass
class PCAConfig(ModelConfig):
    latent_dim: int = 30

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ema_decay:
            raise GenlabError("PCA is fitted in closed form; ema_decay does not apply")
        if self.latent_dim < 1:
            raise GenlabError(f"latent_dim must be at least 1, got {self.latent_dim}")


class PCA(GenerativeModel):
    family = "pca"
    config_class = PCAConfig

    def __init__(self, config: PCAConfig, name: str | None = None):
        super().__init__(config, name)
        d, p = config.num_pixels, config.latent_dim
        if p > d:
            raise GenlabError(f"PCA with {p} components needs at least {p} pixels; images have {d}")
        self.register_buffer("mean_", torch.zeros(d))
        self.register_buffer("components_", torch.zeros(p, d))
        self.register_buffer("explained_variance_", torch.zeros(p))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(encoder=True, decoder=True, prior=True, closed_form=True, latent_space=True,
                            held_out_loss=True)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> "PCA":
        """Fit on (N, C, *spatial) images; eigen-decomposition of the covariance in float64."""
        self.check_images(images)
        x = images.reshape(len(images), -1).to(torch.float64)
        if len(x) < 2:
            raise GenlabError("PCA needs at least 2 images to fit")
        mean = x.mean(0)
        xc = x - mean
        cov = xc.T @ xc / (len(x) - 1)
        eigvals, eigvecs = torch.linalg.eigh(cov)                   # ascending order
        top = torch.flip(eigvecs[:, -self.latent_dim:], dims=[1]).T  # (p, D), largest first
        # Fix each component's sign (largest |entry| positive) so fits are reproducible.
        signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
        device = self.mean_.device
        self.mean_.copy_(mean.float().to(device))
        self.components_.copy_((top * signs).float().to(device))
        self.explained_variance_.copy_(torch.flip(eigvals[-self.latent_dim:], dims=[0]).clamp_min(0).float().to(device))
        return self

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_images(x)
        return (x.reshape(len(x), -1) - self.mean_) @ self.components_.T

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_latents(z)
        return (self.mean_ + z @ self.components_).reshape(-1, *self.config.image_shape)

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The projection onto the principal subspace (not clipped, so that it matches the
        textbook and scikit-learn's ``inverse_transform``)."""
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        z = self.prior_noise(n, generator) * self.explained_variance_.sqrt()
        return self.decode(z).clamp(0, 1)

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """Squared reconstruction error per image (for validation; PCA is fitted by ``fit``)."""
        x = as_batch(batch, labels).images
        sq_error = (self.reconstruct(x) - x).pow(2).sum() / len(x)
        return {"loss": sq_error, "sq_error": sq_error}
