"""Autoencoders: dense and convolutional, plain or denoising, with an optional adversarial term."""
from ...family import Family
from .model import Autoencoder, AutoencoderConfig

FAMILY = Family(
    name="autoencoder", model_class=Autoencoder,
    presets={
        "ae": {"arch": "dense"},
        "conv-ae": {"arch": "conv"},
        "dae": {"arch": "dense", "noise": "gaussian", "noise_level": 0.3},
        "conv-dae": {"arch": "conv", "noise": "gaussian", "noise_level": 0.3},
    },
    aliases={"autoencoder": "ae", "dense-ae": "ae", "mlp-ae": "ae", "convae": "conv-ae", "cae": "conv-ae",
             "denoising-autoencoder": "dae", "denoising-ae": "dae"},
)

__all__ = ["FAMILY", "Autoencoder", "AutoencoderConfig"]
