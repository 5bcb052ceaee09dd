"""Denoising diffusion: DDPM training, DDIM, DPM-Solver++ and ancestral sampling, classifier-free guidance."""
from ...family import Family
from .model import Diffusion, DiffusionConfig

FAMILY = Family(
    name="diffusion", model_class=Diffusion,
    presets={"diffusion": {}, "cdiffusion": {"conditional": True, "guidance": 2.0}},
    aliases={"ddpm": "diffusion", "ddim": "diffusion", "dm": "diffusion", "diffusion-model": "diffusion",
             "conditional-diffusion": "cdiffusion", "cddpm": "cdiffusion", "classifier-free-guidance": "cdiffusion"},
)

__all__ = ["FAMILY", "Diffusion", "DiffusionConfig"]
