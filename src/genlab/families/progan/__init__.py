"""Progressive growing of GANs (Karras et al., ICLR 2018): G and D that grow from 4 x 4 to
``image_size``, each new block faded in; the data padded or resized to that side."""
from ...family import Family
from .data import prepare
from .model import ProGAN, ProGANConfig

FAMILY = Family(
    name="progan", model_class=ProGAN,
    presets={"progan": {"ema_decay": 0.999}},   # the paper samples from the moving average of G
    aliases={"pggan": "progan", "progressive-gan": "progan", "pgan": "progan",
             "progressive-growing-gan": "progan"},
    prepare_data=prepare,
)

__all__ = ["FAMILY", "ProGAN", "ProGANConfig"]
