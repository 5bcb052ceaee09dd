"""Image-to-image tasks (denoise, superres): each trains from one command on embedded digits and
beats its trivial baseline on the test split; the corruptions, the shapes of every upsampler, the
seeded test corruption, the PSNR/SSIM code against direct computations, ``genlab translate`` on
PNG files, and a clear line for every bad input."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli import main
from genlab.commands.translate import translate_files
from genlab.data import corrupt, load_dataset, salt_pepper_noise
from genlab.data.batch import Batch, StepNoise
from genlab.errors import GenlabError
from genlab.metrics import evaluate
from genlab.families.image_to_image.quality import image_quality, seeded_conditions
from genlab.metrics.image_quality import psnr, psnr_y, ssim
from genlab.registry import build_model, load_model
from genlab.models.base import NotSupported
from genlab.nn.blocks import UPSAMPLERS
from genlab.families.image_to_image.model import batch_psnr
from genlab.train import load_run

@pytest.fixture(scope="module")
def digits28_test():
    return load_dataset("digits28", "test")


@pytest.fixture(scope="module")
def denoise_run(tmp_path_factory):
    """Gaussian noise of std 0.3 on digits28, from the command line: 3 epochs, about 4 s on one thread."""
    out = tmp_path_factory.mktemp("denoise") / "run"
    assert main(["train", "denoise", "--data", "digits28", "--noise", "gaussian", "--noise-level", "0.3",
                 "--epochs", "3", "--batch-size", "64", "--lr", "3e-3", "--channels", "8,16,32",
                 "--set", "snapshot_every=-1", "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def superres_run(tmp_path_factory):
    """x2 from digits28 made small by the literature's bicubic (14x14 in), from Python: 4 epochs, about 1 s."""
    out = tmp_path_factory.mktemp("superres") / "run"
    genlab.train("sr", "digits28", out_dir=out, epochs=4, batch_size=64, lr=3e-3, snapshot_every=-1,
                 progress=False, model_settings={"scale": 2, "channels": (16, 16)})
    return out


# ----------------------------------------------------------------------------- beating the baseline
def test_denoise_beats_the_noisy_input(denoise_run, capsys):
    # Measured: 20.96 dB against the noisy input's 12.62 (gain 8.3 dB); SSIM 0.84 against 0.48.
    capsys.readouterr()
    assert main(["evaluate", str(denoise_run)]) == 0
    printed = capsys.readouterr().out
    assert "psnr_gain_db" in printed and "the noisy input" in printed
    r = json.loads((denoise_run / "evaluation-test.json").read_text())
    assert r["task"] == "denoise" and r["noise"] == "gaussian" and r["num_images"] == 300
    assert 12 < r["baseline_psnr"] < 13.5, r            # std 0.3, clipped at 0 and 1
    assert r["psnr_gain_db"] > 6 and r["ssim_gain"] > 0.2, r
    assert r["psnr_gain_db"] == pytest.approx(r["psnr"] - r["baseline_psnr"])
    config = json.loads((denoise_run / "config.json").read_text())
    assert config["family"] == "image-to-image" and config["model"]["arch"] == "unet"
    log = [json.loads(line) for line in (denoise_run / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["val/psnr"] > log[-1]["val/baseline_psnr"] + 6


def test_superres_beats_bicubic(superres_run, digits28_test):
    # Measured: 40.5 dB against bicubic's 33.7 (gain 6.7 dB; 6.8 dB on the 8-bit Y with a 2-pixel crop).
    run = load_run(superres_run)
    assert run.model.name == "superres" and run.model.config.arch == "espcn"
    r = evaluate(run.model, digits28_test)
    assert r["baseline"] == "bicubic upscaling x2" and r["y_border_crop"] == 2
    assert r["downsample"] == "matlab-bicubic"
    assert r["psnr_gain_db"] > 3 and r["psnr_y_gain_db"] > 3 and r["ssim_gain"] > 0 and r["ssim_y_gain"] > 0, r


@pytest.mark.parametrize("name,settings,epochs,margin", [
    ("denoise", {"noise": "salt-pepper", "noise_level": 0.2, "channels": (8, 16, 32)}, 3, 5.0),  # measured 9.0 dB
    ("superres", {"scale": 4, "channels": (16, 16)}, 4, 4.0),                                   # measured 8.2 dB
])
def test_other_settings_beat_their_baselines(name, settings, epochs, margin, digits28_test, tmp_path):
    model = genlab.train(name, "digits28", out_dir=tmp_path / "run", epochs=epochs, batch_size=64, lr=3e-3,
                         snapshot_every=-1, progress=False, model_settings=settings)
    r = evaluate(model, digits28_test)
    assert r["psnr_gain_db"] > margin and r["ssim_gain"] > 0, r


def test_a_fresh_residual_model_is_its_baseline(digits28_test):
    data = digits28_test.subset(slice(0, 20))
    for name, settings in (("denoise", {"channels": (4, 8)}), ("superres", {"scale": 4, "channels": (4,)})):
        r = image_quality(build_model(name, image_shape=(1, 28, 28), **settings), data)
        assert r["psnr_gain_db"] == 0 and r["ssim_gain"] == 0


# ----------------------------------------------------------------------------- corruptions
def test_salt_and_pepper_statistics():
    x = torch.full((4, 3, 100, 100), 0.5)
    y = salt_pepper_noise(x, 0.2, torch.Generator().manual_seed(0))
    n = x.numel()
    for value, expected in ((1.0, 0.1), (0.0, 0.1), (0.5, 0.8)):
        share = float((y == value).float().mean())
        assert abs(share - expected) < 4 * math.sqrt(expected * (1 - expected) / n), (value, share)
    assert torch.equal(corrupt(x, "salt-pepper", 0.2, torch.Generator().manual_seed(0)), y)
    assert torch.equal(salt_pepper_noise(x, 1.0, salt=1.0), torch.ones_like(x))
    with pytest.raises(GenlabError, match=r"`noise_level` must lie in \[0, 1\], got 1.5"):
        salt_pepper_noise(x, 1.5)
    # With a training step's draws each image gets the same noise in one batch or in micro-batches.
    batch = Batch(x, positions=torch.arange(4), noise=StepNoise(0, 5, 4))
    whole = salt_pepper_noise(x, 0.2, draws=batch)
    again = Batch(x, positions=torch.arange(4), noise=StepNoise(0, 5, 4)).split(2)
    parts = torch.cat([salt_pepper_noise(p.images, 0.2, draws=p) for p in again])
    assert torch.equal(whole, parts)


def test_the_seeded_test_corruption_is_the_same_for_every_model(digits28_test):
    x = digits28_test.tensors(slice(0, 10))[0]
    a = build_model("denoise", image_shape=(1, 28, 28), channels=(4, 8), noise="salt-pepper", noise_level=0.1)
    b = build_model("denoise", image_shape=(1, 28, 28), channels=(8, 16, 32), noise="salt-pepper", noise_level=0.1)
    first = seeded_conditions(a, x, seed=0)
    assert torch.equal(first, seeded_conditions(b, x, seed=0))
    assert torch.equal(first[4:], seeded_conditions(a, x[4:], start=4, seed=0))   # per image, not per batch
    assert not torch.equal(first, seeded_conditions(a, x, seed=1))
    data = digits28_test.subset(slice(0, 12))
    assert image_quality(a, data, batch_size=5) == image_quality(a, data, batch_size=12)


# ----------------------------------------------------------------------------- the measures
def test_psnr_ssim_and_luminance_against_direct_computations():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 12, 12))
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
    direct = 10 * np.log10(1 / np.mean((noisy - clean) ** 2))
    assert psnr(noisy, clean) == pytest.approx(direct, abs=1e-9)
    assert float(batch_psnr(torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None])) == pytest.approx(direct, abs=1e-4)
    assert psnr(clean, clean) == 100.0
    def y(img):   # ITU-R BT.601 luminance of the 8-bit image, rounded to 8 bits
        r, g, b = np.round(img * 255) / 255
        return np.round(16 + 65.481 * r + 128.553 * g + 24.966 * b)
    crop = 2
    diff = (y(noisy) - y(clean))[crop:-crop, crop:-crop]
    assert psnr_y(noisy, clean, crop) == pytest.approx(10 * np.log10(255 ** 2 / np.mean(diff ** 2)), abs=1e-9)
    grey, grey_clean = np.round(noisy[:1] * 255) / 255, np.round(clean[:1] * 255) / 255   # 8-bit grey: as it is
    assert psnr_y(grey, grey_clean, 0) == pytest.approx(psnr(grey, grey_clean), abs=1e-9)
    assert ssim(clean, clean) == pytest.approx(1.0) and 0 < ssim(noisy, clean) < 1
    assert 0 < ssim(noisy[:1, :5, :5], clean[:1, :5, :5]) < 1   # a window that fits a 5x5 image


# ----------------------------------------------------------------------------- shapes and settings
@pytest.mark.parametrize("upsample", UPSAMPLERS)
def test_every_upsampler_gives_the_right_shapes(upsample):
    for scale in (2, 4):
        model = build_model("superres", image_shape=(3, 16, 16), scale=scale, upsample=upsample, channels=(4, 4))
        clean = torch.rand(2, 3, 16, 16)
        small = model.degrade(clean)
        assert small.shape == (2, 3, 16 // scale, 16 // scale)
        assert model.translate(small).shape == clean.shape
        assert model.translate(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)   # any size
        terms = model.loss(clean)
        terms["loss"].backward()
        assert set(terms) == {"loss", "psnr", "baseline_psnr"}
    unet = build_model("denoise", image_shape=(1, 8, 8), upsample=upsample, channels=(4, 8, 16))
    assert unet.translate(torch.rand(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    assert unet.translate(torch.rand(1, 1, 13, 6)).shape == (1, 1, 13, 6)   # padded to 16x8, cropped back
    pre = build_model("superres", image_shape=(1, 8, 8), arch="unet", upsample=upsample, channels=(4, 8))
    assert pre.translate(torch.rand(1, 1, 3, 5)).shape == (1, 1, 6, 10)


def test_bicubic_downsampling_and_the_condition_of_a_batch():
    model = build_model("superres", image_shape=(1, 8, 8), downsample="bicubic", channels=(4,))
    x = torch.rand(3, 1, 8, 8)
    small = model.degrade(x)
    assert small.shape == (3, 1, 4, 4) and not torch.allclose(small, torch.nn.functional.avg_pool2d(x, 2))
    given = model.loss(Batch(x, condition=torch.zeros(3, 1, 4, 4)))
    made = model.loss(Batch(x))
    # The input is made from the clean images even when the batch has paired condition images
    # (digits-m's grey digits): those are pix2pix's input, not a superres one.
    assert given["baseline_psnr"] == made["baseline_psnr"]


@pytest.mark.parametrize("name,settings,message", [
    ("denoise", {"task": "deblur"}, "unknown task 'deblur'"),
    ("superres", {"scale": 3}, "`scale` must be 2 or 4, got 3"),
    ("superres", {"scale": 4, "image_shape": (1, 30, 30)}, "`scale` 4 needs image sides divisible by 4; "
                                                           "this data is 30x30"),
    ("superres", {"downsample": "nearest"}, "unknown downsample 'nearest'"),
    ("denoise", {"noise": "none"}, "unknown noise 'none'; choose one of: gaussian, salt-pepper, masking"),
    ("denoise", {"noise_level": 0.0}, "`noise_level` must be above 0"),
    ("denoise", {"noise": "masking", "noise_level": 1.5}, "`noise_level` must lie in (0, 1]"),
    ("denoise", {"arch": "espcn"}, "denoise takes `arch=unet`"),
    ("denoise", {"channels": (4, 8, 16, 32, 64)}, "halves the image 4 times, which needs sides of at least 16; "
                                                  "this data is 8x8"),
    ("denoise", {"loss": "huber"}, "unknown loss 'huber'"),
    ("denoise", {"upsample": "nearest"}, "unknown upsample 'nearest'"),
    ("denoise", {"image_shape": (1, 8, 8, 8)}, "is built for 2-D images (C, H, W)"),
])
def test_bad_settings_are_one_clear_line(name, settings, message):
    with pytest.raises(GenlabError) as err:
        build_model(name, **{"image_shape": (1, 8, 8), **settings})
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name,settings,message", [
    ("denoise", {"scale": 2}, "`scale` is a setting of the superres task; a denoise model does not take it"),
    ("superres", {"noise": "gaussian"}, "`noise` is a setting of the denoise task; a superres model does not take it"),
    ("pix2pix", {"color_space": "lab"}, "`color_space` is a setting of the colorize task; a pix2pix model does not"),
    ("colorize", {"downsample": "area"}, "`downsample` is a setting of the superres task; a colorize model does not"),
    ("denoise", {"task": "superres"}, "settings of the superres task given to a denoise model"),
])
def test_each_task_refuses_the_settings_of_another_in_one_line(name, settings, message):
    shape = (1, 8, 8) if name in ("denoise", "superres") else (3, 8, 8)
    with pytest.raises(GenlabError) as err:
        build_model(name, image_shape=shape, condition_shape=(1, 8, 8), channels=(4,), **settings)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_settings_written_before_one_class_per_task_still_build_their_task():
    """Older run folders record ``task`` and every task's settings; the task's class takes them."""
    from genlab.families.image_to_image import ImageToImage, SuperResolution

    old = {"image_shape": [1, 8, 8], "num_classes": 10, "ema_decay": 0.0, "task": "superres", "noise": "gaussian",
           "noise_level": 0.3, "scale": 4, "downsample": "area", "color_space": "lab", "arch": "espcn",
           "channels": [8, 4], "upsample": "pixel-shuffle", "activation": "relu", "residual": True, "loss": "mse",
           "condition_shape": None, "adv_weight": 0.0, "d_channels": 64, "d_layers": None}
    for model in (ImageToImage.from_config(old, name="superres"), build_model("superres", **old)):
        assert isinstance(model, SuperResolution) and model.config.scale == 4
        assert "task" not in model.config.to_dict() and "noise" not in model.config.to_dict()
    assert type(SuperResolution.from_config(model.config.to_dict())) is SuperResolution   # and the new form


def test_bad_settings_from_the_command_line_name_the_flag(tmp_path, capsys):
    assert main(["train", "super-resolution", "--data", "digits", "--scale", "3", "--quiet",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--scale must be 2 or 4, got 3" in err and err.count("\n") == 1
    assert main(["train", "denoising", "--data", "digits", "--arch", "espcn", "--quiet",
                 "--out", str(tmp_path / "r")]) == 2
    assert "denoise takes --arch unet" in capsys.readouterr().err


# ----------------------------------------------------------------------------- genlab translate
def write_png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_translate_png_files(denoise_run, superres_run, tmp_path, capsys, digits28_test):
    clean = digits28_test.tensors(slice(0, 1))[0]
    noisy = load_model(denoise_run).degrade(clean, torch.Generator().manual_seed(0))
    digit = write_png(tmp_path / "digit.png", (noisy[0, 0].numpy() * 255).round().astype(np.uint8))
    odd = write_png(tmp_path / "odd.jpg", (np.random.default_rng(0).random((30, 17)) * 255).astype(np.uint8))
    capsys.readouterr()
    assert main(["translate", str(denoise_run), str(digit), str(odd)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "digit-denoise.png"), str(tmp_path / "odd-denoise.png")]
    result = np.asarray(Image.open(printed[0])) / 255.0
    assert result.shape == (28, 28) and Image.open(printed[1]).size == (17, 30)
    before = 10 * np.log10(1 / np.mean((np.asarray(Image.open(digit)) / 255.0 - clean[0, 0].numpy()) ** 2))
    after = 10 * np.log10(1 / np.mean((result - clean[0, 0].numpy()) ** 2))
    assert after > before + 3, (before, after)
    out = tmp_path / "bigger"
    paths = translate_files(load_run(superres_run), [digit, odd], out)
    assert paths == [out / "digit-x2.png", out / "odd-x2.png"]
    assert Image.open(paths[0]).size == (56, 56) and Image.open(paths[1]).size == (34, 60)


def test_translate_refuses_bad_inputs_in_one_line(denoise_run, tmp_path, capsys):
    colour = np.zeros((28, 28, 3), np.uint8)
    colour[..., 0] = 200
    cases = [
        (write_png(tmp_path / "colour.png", colour), "is a colour (RGB) image, and this model was trained on "
                                                     "1-channel (grey) images"),
        (tmp_path / "notes.png", "is not an image genlab can read"),
        (write_png(tmp_path / "tiny.png", np.zeros((3, 9), np.uint8)), "is 9x3, too small for this denoise model: "
                                                                       "its network halves the image 2 times and needs "
                                                                       "sides of at least 4 pixels"),
        (tmp_path / "missing.png", "no file at"),
    ]
    (tmp_path / "notes.png").write_text("not a picture")
    good = write_png(tmp_path / "good.png", np.zeros((8, 8), np.uint8))
    for path, message in cases:
        capsys.readouterr()
        assert main(["translate", str(denoise_run), str(good), str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "good-denoise.png").exists()   # nothing is written before every input is checked
    grey_as_rgb = write_png(tmp_path / "grey.png", np.repeat(np.full((8, 8, 1), 90, np.uint8), 3, axis=2))
    assert main(["translate", str(denoise_run), str(grey_as_rgb), "--out", str(tmp_path / "o")]) == 0
    with pytest.raises(NotSupported, match="not an image-to-image task"):
        translate_files(build_model("ae", image_shape=(1, 8, 8), hidden=(8,)), [good])
    colour_model = build_model("superres", image_shape=(3, 8, 8), channels=(4,))
    assert Image.open(translate_files(colour_model, [good], tmp_path / "c")[0]).mode == "RGB"  # grey to colour: kept
