"""The learned codec: the entropy model, the rate term, real files, and the comparison with JPEG and WebP."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli import main
from genlab.families.codec.bitstream import HEADER, compress_files, decode_file, decompress_files, encode_image
from genlab.data import load_dataset
from genlab.data.batch import Batch
from genlab.errors import GenlabError
from genlab.families.codec.model import CODING_PRECISION, frequency_table
from genlab.families.codec.quality import at_most
from genlab.registry import build_model, load_model
from genlab.train import load_run

SMALL = {"channels": (16, 16), "code_channels": 4}


@pytest.fixture(scope="module")
def codec_run(tmp_path_factory, two_threads):
    """digits28 from the command line: two stride-2 stages of 32, an 8-channel code, 5 epochs."""
    out = tmp_path_factory.mktemp("compress") / "run"
    with two_threads():
        assert main(["train", "compress", "--data", "digits28", "--epochs", "5", "--channels", "32,32",
                     "--set", "code_channels=8", "--quiet", "--out", str(out)]) == 0
    return out


def test_the_entropy_model_is_a_distribution_over_the_integers():
    model = build_model("compress", image_shape=(1, 16, 16), **SMALL, mixtures=2, symbol_range=20)
    with torch.no_grad():
        model.density.loc.normal_()
        model.density.log_scale.uniform_(-1, 1)
        model.density.logits.normal_()
    q = torch.arange(-200, 201).float().view(1, 1, -1, 1).expand(1, 4, -1, 1)
    p = model.density.bin_probability(q)
    assert torch.allclose(p.sum(2), torch.ones(1, 4, 1), atol=1e-5)   # the bins tile the real line
    # one logistic: the bin probability is the difference of its CDF at the bin's edges
    one = build_model("compress", image_shape=(1, 16, 16), **SMALL, mixtures=1)
    with torch.no_grad():
        one.density.loc.fill_(0.3)
        one.density.log_scale.fill_(math.log(2.0))
    cdf = lambda v: 1 / (1 + math.exp(-(v - 0.3) / 2.0))  # noqa: E731
    got = one.density.bin_probability(torch.full((1, 4, 1, 1), 2.0))[0, 0, 0, 0].item()
    assert got == pytest.approx(cdf(2.5) - cdf(1.5), rel=1e-5)
    table = model.probability_table()
    assert table.shape == (4, 41) and torch.allclose(table.sum(1), torch.ones(4))
    inside = model.density.bin_probability(torch.arange(-19, 20).float().view(1, 1, -1, 1).expand(1, 4, -1, 1))
    assert torch.allclose(table[:, 1:-1], inside[0, :, :, 0] / table.new_tensor(1.0), rtol=1e-4, atol=1e-9)


def test_gdn_is_the_divisive_normalisation_of_its_formula_and_the_codec_trains_with_it():
    from genlab.families.codec.model import GDN

    torch.manual_seed(0)
    layer, inverse = GDN(3), GDN(3, inverse=True)
    with torch.no_grad():
        for g in (layer, inverse):
            g.beta_root.uniform_(0.5, 1.5)
            g.gamma_root.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 4, 5)
    beta, gamma = layer.beta_root.detach() ** 2 + GDN.BETA_MIN, layer.gamma_root.detach() ** 2
    n, i, h, w = 1, 2, 3, 4   # one value, by the formula: x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
    expected = x[n, i, h, w] / math.sqrt(beta[i] + sum(gamma[i, j] * x[n, j, h, w] ** 2 for j in range(3)))
    assert layer(x)[n, i, h, w].item() == pytest.approx(expected.item(), rel=1e-5)
    beta, gamma = inverse.beta_root.detach() ** 2 + GDN.BETA_MIN, inverse.gamma_root.detach() ** 2
    expected = x[n, i, h, w] * math.sqrt(beta[i] + sum(gamma[i, j] * x[n, j, h, w] ** 2 for j in range(3)))
    assert inverse(x)[n, i, h, w].item() == pytest.approx(expected.item(), rel=1e-5)
    model = build_model("compress", image_shape=(1, 16, 16), **SMALL, transform="gdn")
    assert sum(isinstance(m, GDN) for m in model.modules()) == 5   # 2 in the encoder, 3 in the decoder
    images = load_dataset("digits", "train").images[:64].float()
    images = torch.nn.functional.interpolate(images / images.max(), size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for step in range(60):
        loss = model.loss(Batch(images))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.6 * first
    with pytest.raises(GenlabError, match="unknown transform 'relu'; choose one of: gelu, gdn"):
        build_model("compress", image_shape=(1, 16, 16), transform="relu")


def test_training_draws_noise_and_evaluation_rounds():
    model = build_model("compress", image_shape=(1, 16, 16), **SMALL)
    x = torch.rand(3, 1, 16, 16)
    model.eval()
    terms = model.loss(Batch(x))
    code = model.quantize(model.analyse(x))
    bits = model.bits(code)
    assert terms["bpp"].item() == pytest.approx((bits / 256).mean().item(), rel=1e-5)
    expected = (bits / 256 + model.config.lmbda * 255 ** 2 * (model.reconstruct(x) - x).pow(2).flatten(1).mean(1))
    assert terms["loss"].item() == pytest.approx(expected.mean().item(), rel=1e-5)
    model.train()
    assert model.loss(Batch(x))["loss"].requires_grad
    assert model.code_shape(28, 30) == (4, 7, 8)
    assert model.reconstruct(torch.rand(1, 1, 13, 10)).shape == (1, 1, 13, 10)   # padded, cropped back


@torch.no_grad()
def test_a_file_round_trips_and_its_size_matches_the_ideal_bits(codec_run):
    model = load_run(codec_run).model
    x = load_dataset("digits28", "test").tensors(slice(0, 5))[0]
    for image in x:
        image = image[None]
        data = encode_image(model, image)
        decoded = decode_file(model, data)
        assert torch.allclose(decoded, model.reconstruct(image), atol=1e-6)   # lossless coding of the code
        ideal = float(model.bits(model.quantize(model.analyse(image))))
        payload = 8 * (len(data) - HEADER.size)
        assert ideal <= payload + 1e-3 and payload <= ideal + 64   # a range coder's overhead: a word or two


def test_a_damaged_file_is_refused_in_one_line_and_an_intact_one_round_trips(codec_run, tmp_path, capsys):
    image = (load_dataset("digits28", "test").images[1, 0] * 255).round().byte().numpy()
    Image.fromarray(image).save(tmp_path / "digit.png")
    [file] = compress_files(load_run(codec_run), [tmp_path / "digit.png"])
    data = file.read_bytes()
    assert data[:4] == b"GLC3" and len(data) > HEADER.size + 4
    model = load_model(codec_run)
    with torch.no_grad():
        expected = model.reconstruct(torch.from_numpy(image / 255.0).float()[None, None])
        assert torch.allclose(decode_file(model, data), expected, atol=1e-6)   # intact: decodes as before
    for where in (HEADER.size, HEADER.size + 5, len(data) - 1, 6, 13):   # the coded words, the fingerprint, H
        damaged = bytearray(data)
        damaged[where] ^= 0x10
        (tmp_path / "damaged.glc").write_bytes(bytes(damaged))
        assert main(["decompress", str(tmp_path / "damaged.glc"), "--run", str(codec_run),
                     "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "damaged.glc is damaged" in err and "checksum" in err, err
        assert not (tmp_path / "out").exists()


def test_the_coder_tables_are_integers_summing_to_the_precision_and_close_to_the_densities():
    p = torch.tensor([[0.5, 0.25, 0.25, 0.0], [1e-12, 1 - 3e-12, 1e-12, 1e-12], [0.1, 0.2, 0.3, 0.4]])
    f = frequency_table(p, precision=8)
    assert f.dtype == torch.int32 and f.sum(1).tolist() == [256, 256, 256]
    assert f.min() >= 1                                                   # every symbol stays codable
    assert f[1].tolist() == [1, 253, 1, 1]                                # the rest goes to the likeliest
    # each frequency is floor(p * (256 - 4)) + 1, the likeliest symbol taking what flooring left
    assert f[0].tolist() == [127, 64, 64, 1] and f[2].tolist() == [26, 51, 76, 103]
    model = build_model("compress", image_shape=(1, 16, 16), **SMALL)
    table = model.coding_frequencies()
    assert table.sum(1).eq(2 ** CODING_PRECISION).all() and table.min() >= 1
    assert torch.allclose(table.double() / 2 ** CODING_PRECISION, model.probability_table().double(), atol=1e-6)


def test_a_run_saves_its_coder_tables_and_another_process_decodes_its_files_from_them(codec_run, tmp_path,
                                                                                      monkeypatch):
    """The tables are saved with the weights, made from the saved densities: a loaded run codes
    without recomputing them (the densities' arithmetic may differ in its last bits on another
    machine), and a file written in one process decodes in another."""
    import subprocess
    import sys

    from genlab.families.codec.model import FactorizedDensity

    image = (load_dataset("digits28", "test").images[2, 0] * 255).round().byte().numpy()
    Image.fromarray(image).save(tmp_path / "digit.png")
    script = ("import sys; from genlab.train import load_run; from genlab.families.codec.bitstream import "
              "compress_files; compress_files(load_run(sys.argv[1]), [sys.argv[2]])")
    subprocess.run([sys.executable, "-c", script, str(codec_run), str(tmp_path / "digit.png")], check=True)
    model = load_model(codec_run)
    saved = model.coding_table.clone()
    assert saved.sum(1).eq(2 ** CODING_PRECISION).all()   # not the zeros a model starts with

    def no_float_tables(*args):
        raise AssertionError("the coder's tables were recomputed instead of read from the run")

    monkeypatch.setattr(FactorizedDensity, "table", no_float_tables)
    with torch.no_grad():
        decoded = decode_file(model, (tmp_path / "digit.glc").read_bytes())
        assert torch.allclose(decoded, model.reconstruct(torch.from_numpy(image / 255.0).float()[None, None]),
                              atol=1e-6)
    assert torch.equal(model.coding_table, saved)


def test_codec_trains_and_beats_jpeg_at_the_same_size(codec_run, capsys):
    lines = [json.loads(line) for line in (codec_run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train/loss"] < 0.5 * lines[0]["train/loss"]
    assert (codec_run / "snapshots" / "progress.gif").exists()
    assert main(["evaluate", str(codec_run)]) == 0
    r = json.loads((codec_run / "evaluation-test.json").read_text())
    assert r["codec_images"] == 300 and r["bpp"] < 3.0 and r["psnr"] > 22
    assert r["bpp"] == pytest.approx(8 * r["bytes"] / 784)
    assert r["bpp"] > r["bpp_ideal"]   # the 20-byte header and the coder's last word
    # JPEG cannot make a 28x28 file this small (its tables alone take hundreds of bytes)
    assert r["jpeg_larger"] == 300 and r["jpeg_bytes"] > r["bytes"] and r["psnr"] > r["jpeg_psnr"]
    assert r["webp_bytes"] <= r["bytes"] + 1e-9


def test_jpeg_and_webp_at_most_a_budget():
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    for kind in ("JPEG", "WEBP"):
        data, larger = at_most(image, kind, 3000)
        assert len(data) <= 3000 and not larger
        bigger, _ = at_most(image, kind, 6000)
        assert len(data) <= len(bigger) <= 6000
        tiny, larger = at_most(image, kind, 10)
        assert larger and len(tiny) > 10


def test_compress_and_decompress_files(codec_run, tmp_path, capsys):
    image = (load_dataset("digits28", "test").images[0, 0] * 255).round().byte().numpy()
    Image.fromarray(image).save(tmp_path / "digit.png")
    assert main(["compress", str(codec_run), str(tmp_path / "digit.png")]) == 0
    captured = capsys.readouterr()
    file = tmp_path / "digit.glc"
    assert captured.out.strip() == str(file) and "bits per pixel" in captured.err
    assert file.stat().st_size < 200   # the PNG is several times larger
    assert main(["decompress", str(file), "--run", str(codec_run), "--out", str(tmp_path / "back")]) == 0
    back = np.asarray(Image.open(tmp_path / "back" / "digit.png"), dtype=np.float64) / 255
    model = load_model(codec_run)
    with torch.no_grad():
        expected = model.reconstruct(torch.from_numpy(image / 255.0).float()[None, None])[0, 0].numpy()
    assert np.abs(back - expected).max() <= 0.5 / 255 + 1e-6


def test_bad_codec_input_is_one_clear_line(codec_run, tmp_path, capsys):
    other = tmp_path / "other"
    genlab.train("compress", load_dataset("digits28", "train").subset(slice(0, 64)), None, out_dir=other, epochs=1,
                 progress=False, snapshot_every=-1, model_settings={"channels": (32, 32), "code_channels": 8})
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    [file] = compress_files(load_run(codec_run), [tmp_path / "a.png"])
    with pytest.raises(GenlabError, match="was written by another model"):
        decompress_files(load_run(other), [file])
    cut = tmp_path / "cut.glc"
    cut.write_bytes(file.read_bytes()[:16])   # the header alone
    with pytest.raises(GenlabError) as err:
        decompress_files(load_run(codec_run), [cut])
    assert "cut.glc" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "junk.glc").write_bytes(b"not a codec file")
    assert main(["decompress", str(tmp_path / "junk.glc"), "--run", str(codec_run)]) == 2
    assert "is not a genlab codec file" in capsys.readouterr().err
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "tiny.png")
    assert main(["compress", str(codec_run), str(tmp_path / "tiny.png")]) == 2
    err = capsys.readouterr().err
    assert "too small for this codec" in err and err.count("\n") == 1
    with pytest.raises(GenlabError, match="`lmbda` must be positive"):
        build_model("compress", image_shape=(1, 16, 16), lmbda=0)
    with pytest.raises(GenlabError, match="not a codec"):
        compress_files(build_model("denoise", image_shape=(1, 8, 8), channels=(4,)), [tmp_path / "a.png"])
