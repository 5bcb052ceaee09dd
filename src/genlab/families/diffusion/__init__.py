"""Denoising diffusion: DDPM training, DDIM, DPM-Solver++ and ancestral sampling, classifier-free
guidance; and latent diffusion, on the codes of its own autoencoder."""
from ...family import Family
from .latent import LatentDiffusion, LatentDiffusionConfig, autoencoder_quality
from .model import Diffusion, DiffusionConfig

FAMILY = Family(
    name="diffusion", model_class=Diffusion,
    presets={"diffusion": {}, "cdiffusion": {"conditional": True, "guidance": 2.0},
             "latent-diffusion": {"channels": 64, "channel_mults": (1, 2, 2)}},
    aliases={"ddpm": "diffusion", "ddim": "diffusion", "dm": "diffusion", "diffusion-model": "diffusion",
             "conditional-diffusion": "cdiffusion", "cddpm": "cdiffusion", "classifier-free-guidance": "cdiffusion",
             "ldm": "latent-diffusion", "latent-diffusion-model": "latent-diffusion"},
    model_classes={"latent-diffusion": LatentDiffusion},
    measures=autoencoder_quality,
)

__all__ = ["FAMILY", "Diffusion", "DiffusionConfig", "LatentDiffusion", "LatentDiffusionConfig"]
