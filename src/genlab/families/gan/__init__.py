"""GANs: the DCGAN and the class-conditional GAN."""
from ...family import Family
from .model import GAN, GANConfig

FAMILY = Family(
    name="gan", model_class=GAN,
    presets={"dcgan": {"r1_gamma": 1.0}, "cgan": {"conditional": True, "channels": 24}},
    aliases={"gan": "dcgan", "conditional-gan": "cgan", "cdcgan": "cgan"},
)

__all__ = ["FAMILY", "GAN", "GANConfig"]
