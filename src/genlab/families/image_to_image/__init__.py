"""Image-to-image tasks, one class each: denoising, super-resolution, colorization (the condition
image made from the clean one) and paired translation (pix2pix: the dataset's source image of
each pair), each a U-Net or ESPCN predicting a residual over its trivial baseline, measured beside
that baseline."""
from ...family import Family
from .model import (Colorize, ColorizeConfig, Denoise, DenoiseConfig, ImageToImage, ImageToImageConfig, Pix2Pix,
                    Pix2PixConfig, SuperResolution, SuperResolutionConfig)


def _data_settings(data) -> dict:
    """Paired condition images (pix2pix's sources) tell the model their shape."""
    return {} if data.conditions is None else {"condition_shape": data.condition_shape}


def _measures(model, data, seed: int = 0, data_dir=None) -> dict:
    """PSNR and SSIM beside the baseline's; for paired translation with labels, the translation's
    FID and the content kept (scikit-image and the classifiers are imported only here)."""
    from .quality import image_quality, paired_transfer_quality

    results = image_quality(model, data, seed=seed)
    if isinstance(model, Pix2Pix) and data.labels is not None:
        results.update(paired_transfer_quality(model, data, data_dir))
    return results


FAMILY = Family(
    name="image-to-image", model_class=ImageToImage,
    presets={"denoise": {}, "superres": {}, "colorize": {},
             # Paired translation: the dataset's condition images are the input (digits-m: grey digit -> blend).
             "pix2pix": {}},
    model_classes={"denoise": Denoise, "superres": SuperResolution, "colorize": Colorize, "pix2pix": Pix2Pix},
    aliases={"denoising": "denoise", "denoiser": "denoise", "unet-denoise": "denoise",
             "super-resolution": "superres", "superresolution": "superres", "super-res": "superres",
             "sr": "superres", "espcn": "superres",
             "colorization": "colorize", "colourize": "colorize", "colorise": "colorize", "colourise": "colorize",
             "colourization": "colorize", "colorisation": "colorize", "colourisation": "colorize",
             "colorizer": "colorize"},
    former_names=("image2image",),
    data_settings=_data_settings,
    measures=_measures,
)

__all__ = ["FAMILY", "ImageToImage", "ImageToImageConfig", "Denoise", "DenoiseConfig", "SuperResolution",
           "SuperResolutionConfig", "Colorize", "ColorizeConfig", "Pix2Pix", "Pix2PixConfig"]
