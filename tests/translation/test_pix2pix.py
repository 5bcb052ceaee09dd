"""Paired translation (pix2pix), the PatchGAN and the adversarial term of the image-to-image tasks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genlab
from genlab.cli import main
from genlab.data import load_dataset
from genlab.data.batch import Batch
from genlab.data.photos import BLEND_SEEDS, blend_into_photos
from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.models.base import NotSupported
from genlab.nn.adversarial import discriminator_loss, generator_loss
from genlab.nn.patchgan import PatchDiscriminator
from genlab.train import load_run
from genlab.train.trainer import TrainConfig, _lr_at


@pytest.fixture(scope="module")
def digits_m():
    return load_dataset("digits-m", "train"), load_dataset("digits-m", "test")


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory, two_threads):
    """grey digit -> digits-m blend from the command line: U-Net (16, 32, 64), PatchGAN of width 16,
    4 epochs."""
    out = tmp_path_factory.mktemp("pix2pix") / "run"
    with two_threads():
        assert main(["train", "pix2pix", "--data", "digits-m", "--epochs", "4", "--batch-size", "32", "--lr", "1e-3",
                     "--channels", "16,32,64", "--set", "d_channels=16", "--quiet", "--out", str(out)]) == 0
    return out


def test_digits_m_pairs_each_blend_with_its_grey_digit(digits_m):
    """Each blend is |patch - digit| of its paired grey digit: the patches, drawn from the same seed
    whatever the digits, are the blends of zero digits."""
    for data in digits_m:
        assert data.condition_shape == (1, 28, 28) and data.conditions.dtype == torch.uint8
        digits = data.conditions[:, 0].numpy()
        patches = blend_into_photos(np.zeros_like(digits), data.split, BLEND_SEEDS[data.split]).astype(int)
        expected = np.abs(patches - digits[:, None].astype(int))
        assert np.array_equal(data.images.numpy(), expected)
        source = load_dataset("digits28", data.split)   # the digits the blends were made of, with their labels
        grey = (source.images * 255).round().to(torch.uint8)   # digits28 is float; the blends take it as bytes
        assert torch.equal(data.conditions, grey) and torch.equal(data.labels, source.labels)
    train, _ = digits_m
    batch = train.batch(slice(0, 4))
    assert batch.condition.shape == (4, 1, 28, 28) and float(batch.condition.max()) <= 1.0
    assert torch.equal(train.subset(slice(10, 20)).conditions, train.conditions[10:20])


def test_a_fresh_pix2pix_is_its_baseline_and_d_scores_patches(digits_m):
    train, _ = digits_m
    model = build_model("pix2pix", image_shape=(3, 28, 28), condition_shape=(1, 28, 28), channels=(8, 16))
    batch = train.batch(slice(0, 5))
    assert torch.equal(model.translate(batch.condition), model.baseline(batch.condition))
    assert torch.equal(model.baseline(batch.condition), batch.condition.expand(-1, 3, -1, -1))
    assert model.config.loss == "l1" and model.config.adv_weight == 0.01 and model.config.d_layers == 2
    scores = model.discriminator(torch.cat([batch.condition, batch.images], 1))
    assert scores.shape == (5, 1, 5, 5)   # 28 -> 14 -> 7 -> 6 -> 5: one score per overlapping patch
    assert model.update_order(0) == ("model", "discriminator")
    with pytest.raises(NotSupported, match="paired data"):
        model.degrade(batch.images)


@pytest.mark.parametrize("layers,field", [(1, 16), (2, 34), (3, 70)])
def test_the_patchgan_sees_its_receptive_field(layers, field):
    """One score depends on exactly a field x field patch of the input (the 70x70 PatchGAN of
    pix2pix at 3 layers), found from the gradient."""
    torch.manual_seed(0)
    net = PatchDiscriminator(1, channels=4, layers=layers).eval()
    for m in net.modules():   # instance norm couples every pixel; the receptive field is the convolutions'
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.forward = lambda x: x
    x = torch.rand(1, 1, 128, 128, requires_grad=True)
    scores = net(x)
    i, j = scores.shape[-2] // 2, scores.shape[-1] // 2
    scores[0, 0, i, j].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert int(rows.max() - rows.min() + 1) == field and int(cols.max() - cols.min() + 1) == field


def test_least_squares_losses_and_the_linear_decay_schedule():
    s_real, s_fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 2.0])
    assert discriminator_loss("least-squares", s_real, s_fake).item() == pytest.approx((0 + 0.25) / 2 + (0 + 4) / 2)
    assert generator_loss("least-squares", s_fake).item() == pytest.approx((1 + 1) / 2)
    config = TrainConfig(lr=2e-4, lr_schedule="linear-decay")
    assert [_lr_at(config, s, 100) for s in (0, 50, 75, 100)] == pytest.approx([2e-4, 2e-4, 1e-4, 0.0])


def test_pix2pix_beats_its_baseline_from_one_command(pix2pix_run):
    run = load_run(pix2pix_run)
    lines = [json.loads(line) for line in (pix2pix_run / "metrics.jsonl").read_text().splitlines()]
    assert {"train/d_loss", "train/adv", "train/pixel_loss", "val/psnr"} <= set(lines[-1])
    assert lines[-1]["train/pixel_loss"] < lines[0]["train/pixel_loss"]
    assert main(["evaluate", str(pix2pix_run)]) == 0
    r = json.loads((pix2pix_run / "evaluation-test.json").read_text())
    assert r["task"] == "pix2pix" and r["baseline"] == "the source image"
    # Its measures are the target domain's (FID, the digit kept): the photo patch behind a test digit is
    # not in its grey source, so no model can predict it pixel by pixel, and PSNR is reported, not judged.
    # Over seeds 0-3 on an AVX2 CPU the ratio was 0.31 to 0.66 (a GAN term trains it; other CPUs round
    # differently and land elsewhere in that spread), so the bound leaves room above the worst.
    assert r["transfer/fid"] < 0.8 * r["transfer/baseline_fid"]
    assert r["transfer/content_kept"] > 0.7 and r["ssim_gain"] > 0.05
    assert (pix2pix_run / "snapshots" / "progress.gif").exists()
    assert run.model.discriminator is not None


def test_a_dataset_without_pairs_is_refused(tmp_path, capsys):
    assert main(["train", "pix2pix", "--data", "digits28", "--epochs", "1", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "pix2pix learns from pairs" in err and err.count("\n") == 1
    model = build_model("pix2pix", image_shape=(3, 8, 8), condition_shape=(1, 8, 8), channels=(4,))
    with pytest.raises(GenlabError, match="this batch has no condition images"):
        model.loss(Batch(torch.rand(2, 3, 8, 8)))
    with pytest.raises(GenlabError, match="the same size"):
        build_model("pix2pix", image_shape=(3, 8, 8), condition_shape=(1, 16, 16))


def test_the_adversarial_term_trains_a_discriminator_beside_denoising(tmp_path):
    data = load_dataset("digits28", "train").subset(slice(0, 256))
    model = genlab.train("denoise", data, None, out_dir=tmp_path / "r", epochs=2, batch_size=32, lr=1e-3,
                         snapshot_every=-1, progress=False,
                         model_settings={"channels": (8, 16), "adv_weight": 0.05, "d_channels": 8})
    lines = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert {"train/adv", "train/d_loss", "train/pixel_loss"} <= set(lines[-1])
    assert lines[-1]["train/loss"] == pytest.approx(lines[-1]["train/pixel_loss"] + 0.05 * lines[-1]["train/adv"],
                                                    rel=1e-5)
    assert lines[-1]["train/psnr"] > lines[-1]["train/baseline_psnr"]
    # D takes the (noisy input, image) pair: 2 channels for grey digits.
    assert model.discriminator.body[0].in_channels == 2
    assert build_model("denoise", image_shape=(1, 28, 28)).discriminator is None
    with pytest.raises(GenlabError, match="at least 8x8"):
        build_model("denoise", image_shape=(1, 4, 4), channels=(4,), adv_weight=0.1)
