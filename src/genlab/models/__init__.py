"""Model families and the registry that builds them by name.

A name selects a family and default settings: ``conv-vae`` is the VAE family with
``arch="conv"``. Any setting can be overridden, e.g.
``build_model("conv-vae", image_shape=(1, 28, 28), latent_dim=2)``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from ..errors import GenlabError
from .autoencoder import Autoencoder, AutoencoderConfig
from .base import (CONFIG_FILE, WEIGHTS_FILE, Capabilities, GenerativeModel, ModelConfig, NotSupported,
                   OptimizerGroup, check_fits_in_memory, check_weights, load_state, read_config)
from .compression import CompressConfig, Compressor
from .cyclegan import CycleGAN, CycleGANConfig
from .diffusion import Diffusion, DiffusionConfig
from .gan import GAN, GANConfig
from .gan3d import PorousGAN, PorousGANConfig
from .pca import PCA, PCAConfig
from .translation import Image2Image, Image2ImageConfig
from .vae import VAE, VAEConfig

FAMILIES: dict[str, type[GenerativeModel]] = {cls.family: cls for cls in (PCA, Autoencoder, VAE, GAN, Diffusion, PorousGAN,
                                                                          Image2Image, CycleGAN, Compressor)}

#: name -> (family, default settings)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "pca": ("pca", {}),
    "ae": ("autoencoder", {"arch": "dense"}),
    "conv-ae": ("autoencoder", {"arch": "conv"}),
    "dae": ("autoencoder", {"arch": "dense", "noise": "gaussian", "noise_level": 0.3}),
    "conv-dae": ("autoencoder", {"arch": "conv", "noise": "gaussian", "noise_level": 0.3}),
    "vae": ("vae", {"arch": "dense", "hidden": (512, 256)}),
    "conv-vae": ("vae", {"arch": "conv"}),
    "cvae": ("vae", {"arch": "dense", "hidden": (512, 256), "conditional": True}),
    "conv-cvae": ("vae", {"arch": "conv", "conditional": True}),
    # Likelihood models (docs/likelihood.md): residual conv networks, weights averaged for evaluation.
    "resnet-vae": ("vae", {"arch": "resnet", "channels": (16, 32), "blocks_per_stage": 2, "norm": "none",
                           "activation": "silu", "latent_dim": 32, "ema_decay": 0.999}),
    "iwae": ("vae", {"arch": "resnet", "channels": (16, 32), "blocks_per_stage": 2, "norm": "none",
                     "activation": "silu", "latent_dim": 32, "ema_decay": 0.999, "iw_samples": 5}),
    "dcgan": ("gan", {}),
    "cgan": ("gan", {"conditional": True}),
    "diffusion": ("diffusion", {}),
    "cdiffusion": ("diffusion", {"conditional": True, "guidance": 2.0}),
    # Porous media (docs/porous.md): 3-D convolutions on cubes cut from a volume.
    "porous-gan": ("gan3d", {"ema_decay": 0.999}),
    # Image-to-image tasks (docs/image-to-image.md): the condition image is made from the clean one.
    "denoise": ("image2image", {"task": "denoise"}),
    "superres": ("image2image", {"task": "superres"}),
    "colorize": ("image2image", {"task": "colorize"}),
    # Paired translation: the dataset's condition images are the input (digits-m: grey digit -> blend).
    "pix2pix": ("image2image", {"task": "pix2pix"}),
    # Unpaired translation between the data (domain A) and `domain_b` (docs/image-to-image.md).
    "cyclegan": ("cyclegan", {}),
    # A learned codec: quantized code, entropy model, range-coded files (genlab compress).
    "compress": ("compress", {}),
}


def model_from_config(config: dict[str, Any], source: Path, meta: bool = False) -> GenerativeModel:
    """The model a run's config describes (``family``, ``name``, ``model`` settings), with one
    clear line naming ``source`` when it does not describe one; ``meta``: built on the meta
    device, without memory, to check its size first."""
    family, settings = config.get("family"), config.get("model")
    if family not in FAMILIES:
        raise GenlabError(f"{source} names an unknown model family {family!r}; the run folder is damaged")
    if not isinstance(settings, dict):
        raise GenlabError(f"{source} has no 'model' section of settings; the run folder is damaged")
    name = config.get("name", family)
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            return FAMILIES[family].from_config(settings, name=name if isinstance(name, str) else family)
    except GenlabError as err:
        raise GenlabError(f"{source}: {err}; the run folder is damaged") from None
    except (TypeError, ValueError, OverflowError, RuntimeError) as err:
        raise GenlabError(f"{source} describes no {family} model that can be built ({err}); "
                          "the run folder is damaged") from None


def model_names() -> list[str]:
    return list(MODELS)


def model_settings(name: str, **overrides: Any) -> tuple[type[GenerativeModel], dict[str, Any]]:
    """The family class and the merged settings for a model name (or another name for it, such
    as ``ddpm`` for ``diffusion``)."""
    family, defaults = MODELS[resolve_model_name(name)]
    return FAMILIES[family], {**defaults, **{k: v for k, v in overrides.items() if v is not None}}


def resolve_model_name(name: str) -> str:
    """genlab's name for a model: ``name`` itself, or what another name for it stands for."""
    from ..names import MODEL_ALIASES, resolve

    return resolve(name, list(MODELS), MODEL_ALIASES, "model")


def build_model(name: str, **settings: Any) -> GenerativeModel:
    """Build a fresh model by name; ``settings`` override the config fields
    (``image_shape`` and, for conditional models, ``num_classes`` describe the data)."""
    cls, merged = model_settings(name, **settings)
    return cls.from_config(merged, name=resolve_model_name(name))


def load_model(directory: str | Path, map_location: str | None = None) -> GenerativeModel:
    """Load a model saved with ``save`` (or a run folder) exactly as it was saved. A damaged or
    hostile folder gives one clear line: the config is checked, the model is first built on the
    meta device (no memory) and its size and tensor shapes are checked against the memory left
    and against the weights file's header before anything is allocated."""
    directory = Path(directory)
    config = read_config(directory)
    model = model_from_config(config, directory / CONFIG_FILE, meta=True)
    check_fits_in_memory(model, directory / CONFIG_FILE)
    check_weights(model, directory / WEIGHTS_FILE)
    model = model_from_config(config, directory / CONFIG_FILE)
    if map_location:
        model.to(map_location)
    load_state(model, directory / WEIGHTS_FILE)
    model.eval()
    return model


__all__ = [
    "Capabilities", "GenerativeModel", "ModelConfig", "NotSupported", "OptimizerGroup", "PCA", "PCAConfig", "Autoencoder",
    "AutoencoderConfig", "VAE", "VAEConfig", "GAN", "GANConfig", "Diffusion", "DiffusionConfig", "Image2Image",
    "Image2ImageConfig", "CycleGAN", "CycleGANConfig", "Compressor", "CompressConfig",
    "FAMILIES", "MODELS", "build_model", "load_model",
    "model_names", "model_settings",
]
