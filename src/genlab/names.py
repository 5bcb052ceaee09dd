"""The names people use for the same thing: a name genlab knows under another word gets what was
meant, and an unknown one gets a line naming the closest known word."""
from __future__ import annotations

import difflib

from .errors import GenlabError

#: other names for genlab's models
MODEL_ALIASES = {
    "ddpm": "diffusion", "ddim": "diffusion", "dm": "diffusion", "diffusion-model": "diffusion",
    "conditional-diffusion": "cdiffusion", "cddpm": "cdiffusion", "classifier-free-guidance": "cdiffusion",
    "gan": "dcgan", "conditional-gan": "cgan", "cdcgan": "cgan",
    "autoencoder": "ae", "dense-ae": "ae", "mlp-ae": "ae", "convae": "conv-ae", "cae": "conv-ae",
    "denoising-autoencoder": "dae", "denoising-ae": "dae",
    "dense-vae": "vae", "mlp-vae": "vae", "beta-vae": "vae", "convvae": "conv-vae",
    "conditional-vae": "cvae", "linear": "pca",
    "gan3d": "porous-gan", "3d-gan": "porous-gan", "dcgan3d": "porous-gan", "porousgan": "porous-gan",
    "denoising": "denoise", "denoiser": "denoise", "unet-denoise": "denoise",
    "super-resolution": "superres", "superresolution": "superres", "super-res": "superres", "sr": "superres",
    "espcn": "superres",
    "colorization": "colorize", "colourize": "colorize", "colorise": "colorize", "colourise": "colorize",
    "colourization": "colorize", "colorisation": "colorize", "colourisation": "colorize", "colorizer": "colorize",
}

#: other names for the metrics of ``genlab evaluate``
METRIC_ALIASES = {
    "elbo": "default", "kl": "default", "bits-per-dim": "default", "bpd": "default", "mse": "default",
    "reconstruction": "default", "recon": "default", "sq-error": "default", "all": "default",
    "likelihood": "nll", "log-likelihood": "nll", "iwae": "nll", "importance-weighted": "nll",
    "psnr": "default", "ssim": "default", "image-quality": "default",
    "precision": "pr", "recall": "pr", "precision-recall": "pr", "density": "dc", "coverage": "dc",
}


def resolve(name: str, known: list[str], aliases: dict[str, str], what: str) -> str:
    """``name`` if known, the known word an alias stands for, else an error naming the closest."""
    if name in known:
        return name
    key = name.lower().replace("_", "-")
    if key in known:
        return key
    if key in aliases:
        return aliases[key]
    close = difflib.get_close_matches(key, known + list(aliases), n=1, cutoff=0.6)
    hint = f"; did you mean '{aliases.get(close[0], close[0])}'?" if close else ""
    raise GenlabError(f"unknown {what} '{name}'{hint} Choose one of: {', '.join(known)}")
