"""Super-resolution measured as the literature measures it: the bicubic resizing that makes the
small inputs and the baseline's enlargement, against weights computed by hand and against
Pillow's and PyTorch's bicubic where they provably agree (away from the border); the 8-bit
luminance PSNR by hand; the Gaussian SSIM against scikit-image's and by hand."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from genlab.families.image_to_image.resize import imresize
from genlab.metrics.image_quality import gaussian_ssim, luminance_8bit, psnr_y, ssim_y
from genlab.registry import build_model

# The cubic kernel of a = -1/2 at 1/4, 3/4, 5/4 and 7/4, by hand: 1.5 x^3 - 2.5 x^2 + 1 below 1,
# -0.5 x^3 + 2.5 x^2 - 4 x + 2 from 1 to 2.
K = {0.25: 111 / 128, 0.75: 29 / 128, 1.25: -9 / 128, 1.75: -3 / 128}


def rows(values, height=4):
    """A (1, 1, height, W) image whose every row is ``values``: resizing the columns of a
    constant leaves it constant, so each output row is the 1-D resize of ``values``."""
    return torch.tensor(values, dtype=torch.float64).expand(1, 1, height, len(values)).clone()


def test_halving_weights_by_hand():
    # x1/2 widens the kernel by 2 and scales it by 1/2: output j samples u = 2j + 1/2, and an input
    # pixel at distance d weighs K(d / 2) / 2: 111/256 at 1/2, 29/256 at 3/2, -9/256 at 5/2, -3/256 at 7/2.
    impulse = [0.0] * 16
    impulse[8] = 1.0
    expected = [0, 0, K[1.75] / 2, K[0.75] / 2, K[0.25] / 2, K[1.25] / 2, 0, 0]
    assert imresize(rows(impulse), 0.5)[0, 0, 0].tolist() == pytest.approx(expected, abs=1e-15)
    # At the border the taps before pixel 0 read 0, 1, 2 mirrored (symmetric padding): output 0
    # gets pixel 0 at distances 1/2 and 3/2; output 1 at 5/2 and 7/2. (Clipping the taps and
    # renormalising, as Pillow does, would give 111/128 to output 0.)
    edge = [1.0] + [0.0] * 15
    expected = [(111 + 29) / 256, (-9 - 3) / 256] + [0] * 6
    assert imresize(rows(edge), 0.5)[0, 0, 0].tolist() == pytest.approx(expected, abs=1e-15)


def test_doubling_weights_by_hand():
    # x2 keeps the kernel (a = -1/2, not PyTorch's -3/4): output j samples u = j/2 - 1/4.
    impulse = [0.0] * 8
    impulse[4] = 1.0
    expected = [0] * 5 + [K[1.75], K[1.25], K[0.75], K[0.25], K[0.25], K[0.75], K[1.25], K[1.75]] + [0] * 3
    assert imresize(rows(impulse), 2)[0, 0, 0].tolist() == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 4, 2, 4])
def test_constants_stay_constant_and_ramps_are_sampled_at_the_pixel_centres(scale):
    constant = torch.full((1, 3, 32, 32), 0.3, dtype=torch.float64)
    assert torch.allclose(imresize(constant, scale), torch.full_like(imresize(constant, scale), 0.3), atol=1e-14)
    ramp = rows([float(k) for k in range(32)])
    out = imresize(ramp, scale)[0, 0, 0]
    centres = (torch.arange(len(out), dtype=torch.float64) + 0.5) / scale - 0.5   # in input pixels
    inner = slice(3, len(out) - 3) if scale < 1 else slice(3 * int(scale), len(out) - 3 * int(scale))
    assert torch.allclose(out[inner], centres[inner], atol=1e-12)
    assert not torch.allclose(out, centres, atol=1e-3)   # the mirrored border bends it there


@pytest.mark.parametrize("scale", [1 / 2, 1 / 4, 2, 4])
def test_pillow_and_pytorch_agree_away_from_the_border(scale):
    """Pillow's bicubic (a = -1/2, widened when shrinking) and PyTorch's antialiased one clip their
    taps at the border instead of mirroring: equal wherever no tap reaches it."""
    x = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = imresize(x, scale)[0, 0].numpy()
    n = ours.shape[0]
    pillow = np.asarray(Image.fromarray(x[0, 0].numpy().astype(np.float32), mode="F").resize((n, n), Image.BICUBIC))
    torch_aa = F.interpolate(x, size=(n, n), mode="bicubic", antialias=True, align_corners=False)[0, 0].numpy()
    inner = slice(3, n - 3) if scale < 1 else slice(3 * int(scale), n - 3 * int(scale))
    assert np.abs(ours - pillow)[inner, inner].max() < 1e-6
    assert np.abs(ours - torch_aa)[inner, inner].max() < 1e-12
    assert np.abs(ours - pillow).max() > 1e-3   # but not at the border


def test_superres_makes_its_input_and_baseline_with_the_literature_resize():
    model = build_model("superres", image_shape=(3, 16, 16), scale=2, channels=(4,))
    assert model.config.downsample == "matlab-bicubic"
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    small = model.degrade(x)
    assert torch.equal(small, imresize(x, 0.5).clamp(0, 1))
    assert torch.equal(model.baseline(small), imresize(small, 2).clamp(0, 1))
    old = build_model("superres", image_shape=(3, 16, 16), scale=2, channels=(4,), downsample="area")
    small = old.degrade(x)   # runs made with the former inputs keep PyTorch's enlargement
    assert torch.equal(old.baseline(small), F.interpolate(small, scale_factor=2, mode="bicubic").clamp(0, 1))


def test_luminance_psnr_by_hand():
    red = np.zeros((3, 6, 6))
    red[0] = 1.0                                  # Y = round(16 + 65.481) = 81
    out = red.copy()
    out[:, 2, 3] = (0.0, 1.0, 0.0)                # Y = round(16 + 128.553) = 145
    assert luminance_8bit(red)[0, 0] == 81 and luminance_8bit(out)[2, 3] == 145
    assert psnr_y(out, red, 0) == pytest.approx(10 * math.log10(255 ** 2 / (64 ** 2 / 36)), abs=1e-12)
    assert psnr_y(out, red, 2) == pytest.approx(10 * math.log10(255 ** 2 / (64 ** 2 / 4)), abs=1e-12)
    out[:, 2, 3] = (1.0, 0.0, 0.0)
    out[:, 0, 5] = (0.0, 0.0, 1.0)                # in the cropped border
    assert psnr_y(out, red, 1) == 100.0
    # Rounded to 8 bits: 0.2 is 51/255; 0.2 + 1/600 still rounds to 51, so the images are equal.
    grey = np.full((1, 4, 4), 0.2)
    assert psnr_y(grey + 1 / 600, grey, 0) == 100.0
    assert psnr_y(grey + 1 / 255, grey, 0) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-9)   # off by 1


def test_gaussian_ssim_against_scikit_image_and_by_hand():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = np.round(rng.random((3, 30, 27)) * 255) / 255
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    ya, yb = luminance_8bit(a), luminance_8bit(b)
    reference = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                      data_range=255)
    assert gaussian_ssim(ya, yb) == pytest.approx(reference, abs=1e-12) and 0 < reference < 1
    cropped = structural_similarity(ya[2:-2, 2:-2], yb[2:-2, 2:-2], gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255)
    assert ssim_y(b, a, 2) == pytest.approx(cropped, abs=1e-12)
    # Two flat images: no variance, so SSIM is the luminance term (2 m n + C1) / (m^2 + n^2 + C1).
    c1 = (0.01 * 255) ** 2
    flat = gaussian_ssim(np.full((12, 12), 100.0), np.full((12, 12), 110.0))
    assert flat == pytest.approx((2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1), abs=1e-12)
    assert math.isnan(gaussian_ssim(np.zeros((10, 20)), np.zeros((10, 20))))   # smaller than the window
