"""Deterministic autoencoders: dense or convolutional, optionally denoising.

The encoder maps an image to a code of ``latent_dim`` numbers, the decoder maps it back. A
denoising autoencoder corrupts its input during training (``noise``: ``gaussian`` with standard
deviation ``noise_level`` or ``masking`` of a ``noise_level`` fraction of pixels) and learns to
output the clean image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.transforms import NOISE_KINDS, corrupt
from ..errors import GenlabError
from .base import GenerativeModel
from .blocks import Decoder, Encoder, NetworkConfig


@dataclass
class AutoencoderConfig(NetworkConfig):
    """Attributes (beyond :class:`NetworkConfig`):
        recon_loss: ``"mse"`` (squared error per image) or ``"bce"`` (binary cross-entropy,
            often faster to train on near-binary images such as digits).
        noise, noise_level: training-time input corruption for a denoising autoencoder.
    """

    latent_dim: int = 30
    recon_loss: str = "mse"
    noise: str = "none"
    noise_level: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recon_loss not in ("mse", "bce"):
            raise GenlabError(f"unknown recon_loss '{self.recon_loss}'; choose 'mse' or 'bce'")
        if self.noise not in NOISE_KINDS:
            raise GenlabError(f"unknown noise '{self.noise}'; choose one of: {', '.join(NOISE_KINDS)}")


class Autoencoder(GenerativeModel):
    family = "autoencoder"
    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        self.encoder = Encoder(config, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_images(x)
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_latents(z)
        return self.decoder(z)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``loss`` (the training objective, per image), ``sq_error`` (per image, summed over
        pixels) and ``bce`` (per image, nats) for the batch."""
        cfg = self.config
        noisy = corrupt(x, cfg.noise, cfg.noise_level) if self.training else x
        logits = self.decoder(self.encoder(noisy))
        recon = torch.sigmoid(logits)
        n = x.shape[0]
        sq_error = (recon - x).pow(2).sum() / n
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        return {"loss": sq_error if cfg.recon_loss == "mse" else bce, "sq_error": sq_error, "bce": bce}
