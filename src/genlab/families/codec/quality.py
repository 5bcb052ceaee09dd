"""Rate and distortion of a learned codec, next to JPEG and WebP (Pillow) at the same file size.

For each test image the codec writes its real file (:func:`genlab.families.codec.bitstream.encode_image`):
``bytes`` is its size, ``bpp`` 8 x bytes / (H x W) and ``bpp_ideal`` the entropy model's own
count (what the file would take without the range coder's rounding and the 20-byte header); the
decoded file gives ``psnr`` and ``ssim`` (scikit-image, as for the other image-to-image tasks).
JPEG and WebP are then asked for the same image at the highest quality (1 to 95) whose file is no
larger than the codec's: ``jpeg_psnr`` and ``webp_psnr`` are their PSNRs, ``jpeg_bytes`` and
``webp_bytes`` their sizes. Where even quality 1 is larger (JPEG's headers alone take several
hundred bytes), quality 1 is used and the image counts in ``jpeg_larger`` (``webp_larger``): at
such sizes the other codec could not match the file at all.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ...data.base import ImageDataset
from ...metrics.image_quality import _summary, psnr, ssim

QUALITIES = range(1, 96)


def _encoded(image: Image.Image, kind: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": quality}
    if kind == "WEBP":
        options["method"] = 6   # the slowest and best of WebP's encoder settings
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def at_most(image: Image.Image, kind: str, budget: int) -> tuple[bytes, bool]:
    """The ``kind`` (``JPEG`` or ``WEBP``) file of ``image`` at the highest quality whose size is
    at most ``budget`` bytes (file sizes grow with the quality, so a binary search finds it), and
    whether even quality 1 was larger."""
    low, high = QUALITIES[0], QUALITIES[-1]
    smallest = _encoded(image, kind, low)
    if len(smallest) > budget:
        return smallest, True
    best = smallest
    while low < high:
        mid = (low + high + 1) // 2
        data = _encoded(image, kind, mid)
        if len(data) <= budget:
            best, low = data, mid
        else:
            high = mid - 1
    return best, False


def _pil(x: np.ndarray) -> Image.Image:
    """(C, H, W) in [0, 1] as an 8-bit PIL image."""
    pixels = (np.clip(x, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels[0], mode="L") if pixels.shape[0] == 1 else Image.fromarray(np.moveaxis(pixels, 0, -1))


def _decoded(data: bytes, channels: int) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image = image.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    return pixels[None] if channels == 1 else np.moveaxis(pixels, -1, 0)


@torch.no_grad()
def codec_quality(model, data: ImageDataset, num_images: int = 1000) -> dict:
    """The codec's figures on the first ``num_images`` images of ``data`` (all, if fewer), and
    JPEG's and WebP's at the same file size; means over the images."""
    from .bitstream import decode_file, encode_symbols, fingerprint

    model.eval()
    mark = fingerprint(model)
    n = min(num_images, len(data))
    x = data.tensors(slice(0, n))[0]
    rows: dict[str, list[float]] = {k: [] for k in ("bytes", "bpp", "bpp_ideal", "psnr", "ssim", "jpeg_psnr",
                                                     "jpeg_bytes", "webp_psnr", "webp_bytes", "jpeg_larger",
                                                     "webp_larger")}
    c, h, w = x.shape[1:]
    for i in range(n):
        image = x[i:i + 1]
        symbols = model.quantize(model.analyse(image.to(model.device)))   # once, for the file and its ideal size
        file = encode_symbols(model, symbols[0], (h, w), mark)
        decoded = decode_file(model, file, print_=mark)[0].double().numpy()
        clean = image[0].double().numpy()
        rows["bytes"].append(len(file))
        rows["bpp"].append(8 * len(file) / (h * w))
        rows["bpp_ideal"].append(float(model.bits(symbols)) / (h * w))
        rows["psnr"].append(psnr(decoded, clean))
        rows["ssim"].append(ssim(decoded, clean))
        picture = _pil(clean)
        for kind, key in (("JPEG", "jpeg"), ("WEBP", "webp")):
            other, larger = at_most(picture, kind, len(file))
            rows[f"{key}_psnr"].append(psnr(_decoded(other, c), np.round(clean * 255) / 255))
            rows[f"{key}_bytes"].append(len(other))
            rows[f"{key}_larger"].append(float(larger))
    results: dict = {"codec_images": n, "lmbda": model.config.lmbda}
    for key, values in rows.items():
        results[key] = _summary(values)[0]
    results["psnr_stderr"] = _summary(rows["psnr"])[1]
    results["jpeg_larger"] = int(sum(rows["jpeg_larger"]))
    results["webp_larger"] = int(sum(rows["webp_larger"]))
    results["psnr_gain_over_jpeg_db"] = results["psnr"] - results["jpeg_psnr"]
    results["psnr_gain_over_webp_db"] = results["psnr"] - results["webp_psnr"]
    return results
