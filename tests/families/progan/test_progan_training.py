"""The progressive GAN trains: an interrupted run resumes across a stage boundary and mid-fade to
the same weights as an uninterrupted one, the growth count does not depend on how a step is split,
and the family trains, samples and interpolates from the command line (digits at 8x8; MNIST padded
to 32x32 when it is at hand)."""
import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from genlab.cli import main
from genlab.registry import load_model
from genlab.train import train

TINY = {"channels": 4, "max_channels": 8, "latent_dim": 8}
#: 64 images in batches of 16: 4 steps an epoch. Stage 0 (4x4) for 80 images (steps 0-4), the
#: fade to 8x8 over the next 64 (steps 5-8, alpha 0, 1/4, 1/2, 3/4), then 8x8 at alpha 1.
GROWTH = {**TINY, "stable_images": 80, "fade_images": 64}
RUN = {"batch_size": 16, "snapshot_every": -1, "progress": False, "seed": 1}


@pytest.fixture(scope="module")
def tiny(digits_train):
    return digits_train.subset(slice(0, 64))


def weights(out):
    return load_file(str(out / "model.safetensors"))


def metrics(out):
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_resumed_before_a_stage_boundary_and_mid_fade_equals_an_uninterrupted_one(tiny, tmp_path):
    whole = train("progan", tiny, None, out_dir=tmp_path / "whole", epochs=4, model_settings=GROWTH, **RUN)
    assert whole.growth() == {"images_seen": 256, "stage": 1, "alpha": 1.0, "side": 8}

    out = tmp_path / "parts"
    first = train("progan", tiny, None, out_dir=out, epochs=1, model_settings=GROWTH, **RUN)
    assert first.growth()["stage"] == 0                        # stopped before the boundary (80)
    second = train("progan", tiny, None, out_dir=out, epochs=2, resume=True, model_settings=GROWTH, **RUN)
    assert second.growth() == {"images_seen": 128, "stage": 1, "alpha": 0.75, "side": 8}   # mid-fade
    assert load_model(out).growth() == second.growth()         # the count lives in model.safetensors
    train("progan", tiny, None, out_dir=out, epochs=4, resume=True, model_settings=GROWTH, **RUN)

    a, b = weights(tmp_path / "whole"), weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(b["images_seen"]) == 256
    assert metrics(tmp_path / "whole") == metrics(out)
    # the epochs' mean stage and alpha follow the schedule: steps 0-3 at 4x4; 4 at 4x4, 5-7 fading
    # (0, 1/4, 1/2); 8 at 3/4, then alpha 1
    logged = metrics(out)
    assert [r["train/stage"] for r in logged] == [0.0, 0.75, 1.0, 1.0]
    assert [r["train/alpha"] for r in logged] == [1.0, pytest.approx((1 + 0 + 0.25 + 0.5) / 4),
                                                  pytest.approx((0.75 + 3) / 4), 1.0]


def test_the_growth_counts_the_global_batch_however_a_step_is_split(tiny, tmp_path):
    one = train("progan", tiny, None, out_dir=tmp_path / "one", epochs=2, model_settings=GROWTH, **RUN)
    split = train("progan", tiny, None, out_dir=tmp_path / "split", epochs=2, grad_accumulation=2,
                  model_settings=GROWTH, **RUN)
    assert one.growth() == split.growth() == {"images_seen": 128, "stage": 1, "alpha": 0.75, "side": 8}
    # with the whole micro-batch as the minibatch feature's group, the same run up to rounding
    for out, parts in (("one-group", 1), ("split-group", 2)):
        train("progan", tiny, None, out_dir=tmp_path / out, epochs=2, grad_accumulation=parts,
              model_settings={**GROWTH, "mbstd_group": 1}, **RUN)
    a, b = weights(tmp_path / "one-group"), weights(tmp_path / "split-group")
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_it_trains_samples_and_interpolates_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "pggan", "--data", "digits", "--image-size", "8", "--epochs", "1", "--batch-size", "64",
                 "--channels", "4", "--max-channels", "8", "--latent-dim", "8", "--fade-images", "500",
                 "--stable-images", "500", "--loss", "non-saturating", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "progan" and config["name"] == "progan"
    assert config["model"]["image_shape"] == [1, 8, 8] and config["model"]["loss"] == "non-saturating"
    assert config["train"]["lr"] == 1e-3                          # the family's default
    assert len(list((out / "snapshots").glob("step-*.png"))) == 1
    model = load_model(out)
    assert model.growth()["stage"] == 1 and model.growth()["images_seen"] == 23 * 64

    capsys.readouterr()
    assert main(["sample", str(out), "-n", "8"]) == 0
    assert Image.open(capsys.readouterr().out.strip()).size[0] > 0
    assert main(["interpolate", str(out), "--from", "1", "--to", "2", "--spherical"]) == 0
    assert capsys.readouterr().out.strip()


def test_digits_are_resized_up_to_a_larger_side(digits_train, tmp_path):
    model = train("progan", digits_train.subset(slice(0, 32)), None, out_dir=tmp_path / "r", epochs=1,
                  model_settings={**TINY, "image_size": 16}, **RUN)
    assert model.config.image_shape == (1, 16, 16) and model.sample(2).shape == (2, 1, 16, 16)


def test_mnist_is_padded_to_32(mnist_dir, tmp_path, capsys):
    out = tmp_path / "mnist"
    code = main(["train", "progan", "--data", "mnist", "--data-dir", str(mnist_dir), "--image-size", "32",
                 "--epochs", "1", "--max-minutes", "0.02", "--channels", "4", "--max-channels", "8",
                 "--latent-dim", "8", "--batch-size", "16", "--snapshot-every", "-1", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["model"]["image_shape"] == [1, 32, 32]
    assert load_model(out).sample(2).shape == (2, 1, 32, 32)
