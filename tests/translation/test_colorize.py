"""The colorize task: the colour conversions against scikit-image, a fresh model that is its grey
baseline, trained runs on photos and digits-m against that baseline, the luminance kept exactly,
a grey dataset refused, and ``genlab translate`` (and the server) on PNG files."""
import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor

import genlab
from genlab.cli import main
from genlab.commands.translate import translate_files
from genlab.families.image_to_image import colour
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.metrics import evaluate
from genlab.families.image_to_image.quality import image_quality
from genlab.registry import build_model, load_model
from genlab.registry import resolve_model_name
from genlab.train import load_run

SPACES = ("lab", "yuv")


@pytest.fixture(scope="module")
def digits_m_test():
    return load_dataset("digits-m", "test")


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory, two_threads):
    """300 of the 64x64 training patches of `photos`, Lab, U-Net (8, 16, 32): 3 epochs."""
    out = tmp_path_factory.mktemp("colorize-photos") / "run"
    with two_threads():
        genlab.train("colorize", load_dataset("photos", "train").subset(slice(0, 300)),
                     load_dataset("photos", "test"), out_dir=out, epochs=3, batch_size=16, lr=3e-3,
                     snapshot_every=-1, progress=False, model_settings={"channels": (8, 16, 32)})
    return out


@pytest.fixture(scope="module")
def digits_m_run(tmp_path_factory, two_threads):
    """digits-m from the command line, Lab, U-Net (8, 16, 32): 3 epochs."""
    out = tmp_path_factory.mktemp("colorize-digits-m") / "run"
    with two_threads():
        assert main(["train", "colorize", "--data", "digits-m", "--epochs", "3", "--batch-size", "64", "--lr", "3e-3",
                     "--channels", "8,16,32", "--set", "snapshot_every=-1", "--quiet", "--out", str(out)]) == 0
    return out


def random_images(n=4, h=9, w=11, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3, h, w))
    x[0, :, :2] = rng.integers(0, 2, (3, 2, w))    # the corners of the cube, and greys, too
    x[1, :, :2] = x[1, :1, :2]
    return x


# ----------------------------------------------------------------------------- colour conversions
@pytest.mark.parametrize("space", SPACES)
def test_colour_conversions_round_trip_and_agree_with_scikit_image(space):
    x = random_images()
    forward, backward = {"lab": (skcolor.rgb2lab, skcolor.lab2rgb), "yuv": (skcolor.rgb2yuv, skcolor.yuv2rgb)}[space]
    reference = forward(x, channel_axis=1)
    for dtype in (torch.float64, torch.float32):
        t = torch.from_numpy(x).to(dtype)
        luminance, chroma = colour.split(t, space)
        assert luminance.shape == (4, 1, 9, 11) and chroma.shape == (4, 2, 9, 11)
        got = torch.cat([luminance, chroma], 1).double().numpy()
        np.testing.assert_allclose(got, reference, atol=1e-4)                             # RGB -> L + chroma
        np.testing.assert_allclose(colour.join(luminance, chroma, space).double().numpy(), x, atol=1e-4)   # and back
    np.testing.assert_allclose(colour.from_space(torch.from_numpy(reference), space).numpy(),
                               backward(reference, channel_axis=1), atol=1e-4)
    # The grey image has the colour image's luminance, and its own chrominance is (about) 0.
    grey = colour.grey(torch.from_numpy(x), space)
    assert grey.shape == (4, 1, 9, 11) and 0 <= grey.min() and grey.max() <= 1
    np.testing.assert_allclose(colour.luminance_of_grey(grey, space).numpy()[:, 0], reference[:, 0], atol=1e-4)
    grey_reference = forward(np.repeat(grey.numpy(), 3, axis=1), channel_axis=1)
    np.testing.assert_allclose(grey_reference[:, 1:], 0, atol=1e-2 if space == "lab" else 1e-12)
    if space == "yuv":   # Y itself, the luma of ITU-R BT.601 (what PIL's convert("L") rounds)
        np.testing.assert_allclose(grey.numpy()[:, 0], reference[:, 0], atol=1e-12)
        corners = np.array(list(itertools.product([0.0, 1.0], repeat=3)))[None]   # (1, 8, 3): the RGB cube
        np.testing.assert_allclose(np.abs(skcolor.rgb2yuv(corners)[0, :, 1:]).max(0), colour.chroma_scale("yuv"))
    with pytest.raises(GenlabError, match="unknown color_space 'hsv'"):
        colour.split(torch.from_numpy(x), "hsv")


@pytest.mark.parametrize("space", SPACES)
def test_colours_outside_the_gamut_keep_their_luminance(space):
    x = torch.from_numpy(random_images(seed=1)).float()
    luminance, chroma = colour.split(x, space)
    loud = 4 * chroma                                            # most of these leave the sRGB gamut
    assert not colour.in_gamut(colour.join(luminance, loud, space)).all()
    fitted = colour.fit_in_gamut(luminance, loud, space)
    assert fitted.min() >= 0 and fitted.max() <= 1
    again = colour.split(fitted.double(), space)[0]
    assert (again - luminance).abs().max() < (1e-3 if space == "lab" else 1e-5)        # L in [0, 100]; Y in [0, 1]
    assert colour.in_gamut(colour.join(luminance, chroma, space)).all()
    assert torch.allclose(colour.fit_in_gamut(luminance, chroma, space), x, atol=1e-4)   # in gamut: unchanged


# ----------------------------------------------------------------------------- the model
@pytest.mark.parametrize("space", SPACES)
def test_a_fresh_model_is_the_grey_baseline(space, digits_m_test):
    model = build_model("colorize", image_shape=(3, 28, 28), channels=(4, 8), color_space=space).eval()
    x = digits_m_test.tensors(slice(0, 40))[0]
    grey = model.degrade(x)
    assert grey.shape == (40, 1, 28, 28)
    out, base = model.translate(grey), model.baseline(grey)
    assert out.shape == x.shape and torch.equal(out, base)
    assert (base - grey).abs().max() < (1e-4 if space == "lab" else 1e-6)   # the grey image as RGB
    r = image_quality(model, digits_m_test.subset(slice(0, 40)))
    assert r["psnr_gain_db"] == 0 and r["ssim_gain"] == 0 and r["psnr_pooled_gain_db"] == 0, r
    assert r["images_improved"] == 0 and r["chroma_ratio"] < 1e-3 and r["color_space"] == space
    assert r["baseline"] == f"the grey image (chrominance 0, {space})"
    terms = model.loss(x[:8])
    assert set(terms) == {"loss", "psnr", "baseline_psnr"} and terms["psnr"] == terms["baseline_psnr"]
    terms["loss"].backward()
    assert model.net.out.weight.grad.abs().sum() > 0          # the zero last layer does learn


def test_colorize_beats_the_grey_baseline_on_photos(photos_run):
    # Measured: the two held-out test photos (astronaut, chelsea, 256x256) at 21.11 dB against the
    # grey image's 17.51 (gain 3.6 dB; astronaut +2.0, chelsea +5.2); pooled +3.1 dB; SSIM 0.920
    # against 0.906; chroma RMSE 16.1 against 22.4 (Lab units); 0.58 of the true mean chroma.
    run = load_run(photos_run)
    r = evaluate(run.model, load_dataset("photos", "test"))
    assert r["num_images"] == 2 and r["task"] == "colorize" and r["color_space"] == "lab"
    assert r["psnr_gain_db"] > 2 and r["images_improved"] == 1 and r["ssim_gain"] > 0, r
    assert r["chroma_rmse"] < 0.85 * r["baseline_chroma_rmse"], r
    assert 0.2 < r["chroma_ratio"] < 0.95, r                  # desaturated: MSE's answer to ambiguous colours
    log = [json.loads(line) for line in (photos_run / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["val/psnr"] > log[-1]["val/baseline_psnr"] + 2


def test_colorize_on_digits_m_from_the_command_line(digits_m_run, capsys):
    # Measured: pooled PSNR 19.90 against 18.46 (+1.4 dB), chroma RMSE 15.6 against 19.4, 52% of the
    # 300 test images better; but the mean of per-image dB is 21.94 against 26.05: 11 test images are
    # (nearly) grey, where the grey baseline scores 60 to 100 dB and any colour costs tens of dB.
    capsys.readouterr()
    assert main(["evaluate", str(digits_m_run)]) == 0
    printed = capsys.readouterr().out
    assert "psnr_pooled_gain_db" in printed and "the grey image (chrominance 0, lab)" in printed
    r = json.loads((digits_m_run / "evaluation-test.json").read_text())
    assert r["num_images"] == 300 and r["dataset"] == "digits-m"
    assert r["psnr_pooled_gain_db"] > 0.8 and r["chroma_rmse"] < 0.95 * r["baseline_chroma_rmse"], r
    assert r["images_improved"] > 0.4, r
    config = json.loads((digits_m_run / "config.json").read_text())
    assert config["name"] == "colorize" and "task" not in config["model"]   # the name says the task (and class)
    assert config["model"]["color_space"] == "lab" and config["model"]["arch"] == "unet"


def test_the_output_keeps_the_luminance_of_the_input(digits_m_run, digits_m_test):
    model = load_model(digits_m_run)
    x = digits_m_test.tensors(slice(0, 50))[0]
    grey = model.degrade(x)
    with torch.no_grad():
        out = model.translate(grey)
        chroma = model.chrominance(grey)
    assert chroma.abs().max() > 0.05                          # it does colour
    lightness = skcolor.rgb2lab(out.double().numpy(), channel_axis=1)[:, 0]
    given = skcolor.rgb2lab(np.repeat(grey.double().numpy(), 3, axis=1), channel_axis=1)[:, 0]
    assert np.abs(lightness - given).max() < 1e-3              # L in [0, 100], by scikit-image (measured 3e-4)
    assert (model.degrade(out) - grey).abs().max() < 1e-4      # the grey of the output is the input
    # Loud colours are brought into the gamut by shrinking the chrominance, not by clipping RGB.
    with torch.no_grad():
        loud = model.colorize(grey, 5 * chroma)
    assert not colour.in_gamut(colour.join(colour.luminance_of_grey(grey, "lab"), 500 * chroma, "lab")).all()
    lightness = skcolor.rgb2lab(loud.double().numpy(), channel_axis=1)[:, 0]
    assert np.abs(lightness - given).max() < 1e-3 and (model.degrade(loud) - grey).abs().max() < 1e-4
    yuv = build_model("colorize", image_shape=(3, 28, 28), channels=(4, 8), color_space="yuv")
    with torch.no_grad():
        loud = yuv.colorize(yuv.degrade(x), 5 * chroma)
    y = skcolor.rgb2yuv(loud.double().numpy(), channel_axis=1)[:, 0]
    assert np.abs(y - yuv.degrade(x)[:, 0].double().numpy()).max() < 1e-5


# ----------------------------------------------------------------------------- settings and names
def test_a_grey_dataset_is_refused(tmp_path, capsys):
    with pytest.raises(GenlabError) as err:
        build_model("colorize", image_shape=(1, 28, 28))
    assert str(err.value) == "colorize needs colour images; digits-m or photos, not a 1-channel dataset"
    assert main(["train", "colourize", "--data", "digits", "--quiet", "--out", str(tmp_path / "r")]) == 2
    printed = capsys.readouterr().err
    assert "colorize needs colour images; digits-m or photos, not a 1-channel dataset" in printed
    assert printed.count("\n") == 1
    for alias in ("colorization", "colourize", "colorise"):
        assert resolve_model_name(alias) == "colorize"
    with pytest.raises(GenlabError, match="unknown color_space 'hsv'; choose one of: lab, yuv"):
        build_model("colorize", image_shape=(3, 8, 8), color_space="hsv")
    with pytest.raises(GenlabError, match="colorize takes `arch=unet`"):
        build_model("colorize", image_shape=(3, 8, 8), arch="espcn")
    model = build_model("colorize", image_shape=(3, 8, 8), channels=(4, 8))
    with pytest.raises(GenlabError, match=r"colorize takes grey images \(1 channel\), got 3"):
        model.translate(torch.rand(1, 3, 8, 8))


# ----------------------------------------------------------------------------- genlab translate, the server
def write_png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_translate_png_files(digits_m_run, digits_m_test, tmp_path, capsys):
    x = digits_m_test.tensors(slice(0, 1))[0]
    photo = write_png(tmp_path / "photo.png", (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    model = load_model(digits_m_run)
    grey_pixels = (model.degrade(x)[0, 0].numpy() * 255).round().astype(np.uint8)
    grey = write_png(tmp_path / "grey.png", grey_pixels)
    odd = write_png(tmp_path / "odd.jpg", (np.random.default_rng(0).random((30, 17)) * 255).astype(np.uint8))
    capsys.readouterr()
    assert main(["translate", str(digits_m_run), str(photo), str(grey), str(odd)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(tmp_path / f"{n}-color.png") for n in ("photo", "grey", "odd")]
    assert captured.err.count("\n") == 1 and "photo.png is a colour image" in captured.err   # said once, for it
    assert "grey version (the luminance, L of Lab)" in captured.err
    results = [Image.open(tmp_path / f"{n}-color.png") for n in ("photo", "grey", "odd")]
    assert [r.mode for r in results] == ["RGB"] * 3 and results[2].size == (17, 30)
    coloured = torch.from_numpy(np.asarray(results[1]) / 255.0).permute(2, 0, 1)[None].float()
    assert (model.degrade(coloured)[0, 0] * 255 - torch.from_numpy(grey_pixels)).abs().max() < 1.5   # 8-bit rounding
    with torch.no_grad():
        expected = model.translate(torch.from_numpy(grey_pixels / 255.0).float()[None, None])
    np.testing.assert_allclose(np.asarray(results[1]) / 255.0, expected[0].permute(1, 2, 0).numpy(),
                               atol=1 / 255 + 1e-6)
    out = translate_files(load_run(digits_m_run), [photo], tmp_path / "out")   # from Python, no note asked for
    assert out == [tmp_path / "out" / "photo-color.png"]


def test_the_server_colours_uploads(digits_m_run):
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient

    from genlab.serve import create_app

    client = TestClient(create_app(digits_m_run))
    assert client.get("/api/info").json()["capabilities"]["condition_image"]
    for pixels in (np.full((12, 10, 3), (200, 40, 90), np.uint8), np.full((12, 10), 120, np.uint8)):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        response = client.post("/api/translate", files={"image": ("x.png", buffer.getvalue(), "image/png")})
        assert response.status_code == 200, response.text
        assert np.asarray(Image.open(io.BytesIO(response.content))).shape == (12, 10, 3)
