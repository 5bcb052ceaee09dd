"""Deterministic autoencoders: dense or convolutional, optionally denoising.

The encoder maps an image to a code of ``latent_dim`` numbers, the decoder maps it back. A
denoising autoencoder corrupts its input during training (``noise``: ``gaussian`` with standard
deviation ``noise_level`` or ``masking`` of a ``noise_level`` fraction of pixels) and learns to
output the clean image.

With ``adv_weight`` > 0 the autoencoder also trains against a discriminator on its outputs
(sharper reconstructions, as in Larsen et al. 2016): the discriminator (the DCGAN discriminator, see
:mod:`genlab.nn.adversarial`) learns to tell inputs from reconstructions with the non-saturating loss,
and the autoencoder minimises ``loss + adv_weight * adv``, where ``adv`` = softplus(-D(recon)) per
image (the trainer's ``train/loss``; validation still reports the reconstruction objective). With
``adv_weight`` = 0 (the default) nothing of this is built or run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ...data.transforms import NOISE_KINDS, corrupt
from ...config import check_at_least
from ...errors import GenlabError
from ...data.batch import Batch, as_batch
from ...models.base import Capabilities, GenerativeModel, OptimizerGroup
from ...nn.blocks import Decoder, Encoder, NetworkConfig
from ...nn.adversarial import Discriminator, discriminator_loss, frozen, generator_loss


@dataclass
class AutoencoderConfig(NetworkConfig):
    """Attributes (beyond :class:`NetworkConfig`):
        recon_loss: ``"mse"`` (squared error per image) or ``"bce"`` (binary cross-entropy,
            often faster to train on near-binary images such as digits).
        noise, noise_level: training-time input corruption for a denoising autoencoder.
        adv_weight: weight of the adversarial term; 0 (default) trains without a discriminator.
        adv_channels: width of the discriminator's first stage.
    """

    latent_dim: int = 30
    recon_loss: Literal["mse", "bce"] = "mse"
    noise: Literal["none", "gaussian", "masking", "salt-pepper"] = "none"
    noise_level: float = 0.0
    adv_weight: float = 0.0
    adv_channels: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, 0, "noise_level")
        check_at_least(self, 1, "adv_channels")
        if self.noise == "masking" and self.noise_level > 1:
            raise GenlabError(f"masking noise hides a fraction of the pixels: noise_level must lie in [0, 1], "
                              f"got {self.noise_level}")
        if self.recon_loss not in ("mse", "bce"):
            raise GenlabError(f"unknown recon_loss '{self.recon_loss}'; choose 'mse' or 'bce'")
        if self.noise not in NOISE_KINDS:
            raise GenlabError(f"unknown noise '{self.noise}'; choose one of: {', '.join(NOISE_KINDS)}")
        if self.adv_weight < 0:
            raise GenlabError(f"adv_weight must be >= 0, got {self.adv_weight}")


class Autoencoder(GenerativeModel):
    family = "autoencoder"
    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig, name: str | None = None):
        super().__init__(config, name)
        self.encoder = Encoder(config, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)
        # Built only when used, so that a plain autoencoder's weights and random draws are unchanged.
        self.discriminator = (Discriminator(config.image_shape, config.adv_channels)
                              if config.adv_weight > 0 else None)
        self.keep_average("encoder", "decoder")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(encoder=True, decoder=True, latent_space=True, held_out_loss=True)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_images(x)
        return self.network("encoder")(x)

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_latents(z)
        return self.network("decoder")(z)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """``loss`` (the reconstruction objective, per image), ``sq_error`` (per image, summed over
        pixels) and ``bce`` (per image, nats) for the batch."""
        return self._terms(as_batch(batch, labels))[0]

    def _terms(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The loss terms and the reconstructions (N, C, *spatial); in training the input is
        corrupted with ``noise`` (draws from the batch)."""
        cfg, x = self.config, batch.images
        noisy = corrupt(x, cfg.noise, cfg.noise_level, draws=batch) if self.training else x
        logits = self.network("decoder")(self.network("encoder")(noisy))
        recon = torch.sigmoid(logits)
        n = x.shape[0]
        sq_error = (recon - x).pow(2).sum() / n
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        return {"loss": sq_error if cfg.recon_loss == "mse" else bce, "sq_error": sq_error, "bce": bce}, recon

    # ----------------------------------------------------------------- adversarial training
    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        if self.discriminator is None:
            return super().optimizer_groups()
        return {"model": OptimizerGroup([*self.encoder.parameters(), *self.decoder.parameters()]),
                "discriminator": OptimizerGroup(list(self.discriminator.parameters()), betas=(0.5, 0.999),
                                                weight_decay=0.0)}

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Without a discriminator, the reconstruction objective. With one: first the autoencoder
        minimises ``loss`` = reconstruction objective + ``adv_weight`` * ``adv`` (logging also
        ``recon_loss`` and ``adv``), then the discriminator learns to tell the inputs (real) from
        those reconstructions (fake), logging ``d_loss`` (batch means)."""
        if self.discriminator is None:
            return super().objective(name, batch, step)
        D = self.discriminator
        if name == "discriminator":
            d_loss = discriminator_loss("non-saturating", D(batch.images), D(batch.scratch.pop("recon")))
            return d_loss, {"d_loss": d_loss.detach()}
        terms, recon = self._terms(batch)
        batch.scratch["recon"] = recon.detach()
        with frozen(D):
            adv = generator_loss("non-saturating", D(recon))
        loss = terms["loss"] + self.config.adv_weight * adv
        terms = {**terms, "recon_loss": terms["loss"], "adv": adv, "loss": loss}
        return loss, {k: v.detach() for k, v in terms.items()}
