"""Variational autoencoders: dense, convolutional and residual, conditional, importance-weighted,
with an optional autoregressive decoder; and the ELBO ablation experiment."""
from ...family import Family
from .model import VAE, VAEConfig

_RESNET = {"arch": "resnet", "channels": (16, 32), "blocks_per_stage": 2, "norm": "none", "activation": "silu",
           "latent_dim": 32, "ema_decay": 0.999}

FAMILY = Family(
    name="vae", model_class=VAE,
    presets={
        "vae": {"arch": "dense", "hidden": (512, 256)},
        "conv-vae": {"arch": "conv"},
        "cvae": {"arch": "dense", "hidden": (512, 256), "conditional": True},
        "conv-cvae": {"arch": "conv", "conditional": True},
        # Likelihood models (docs/likelihood.md): residual conv networks, weights averaged for evaluation.
        "resnet-vae": _RESNET,
        "iwae": {**_RESNET, "iw_samples": 5},
    },
    aliases={"dense-vae": "vae", "mlp-vae": "vae", "beta-vae": "vae", "convvae": "conv-vae",
             "conditional-vae": "cvae"},
)

__all__ = ["FAMILY", "VAE", "VAEConfig"]
