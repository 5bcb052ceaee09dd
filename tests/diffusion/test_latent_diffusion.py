"""Latent diffusion: one command trains the autoencoder then the denoiser and samples through the
decoder; the latent scale gives the training codes unit variance; a run resumes exactly across the
stage boundary; --sampler works; a given autoencoder run is used as it is; the explorer serves it."""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.families.diffusion.latent import autoencoder_quality
from genlab.registry import build_model
from genlab.train import load_run, train
from genlab.viz import auto_scale, make_grid

#: tiny networks for 8 x 8 digits: f = 2, so 2 x 4 x 4 codes
TINY = {"autoencoder_channels": (8, 8), "code_channels": 2, "channels": 8, "channel_mults": (1,), "groups": 4,
        "attention_resolution": 0, "timesteps": 50, "sample_steps": 4}
FLAGS = ["--autoencoder-channels", "8,8", "--code-channels", "2", "--channels", "8", "--channel-mults", "1",
         "--groups", "4", "--attention-resolution", "0", "--timesteps", "50", "--sample-steps", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One command: 23 steps of batches of 64 digits, the first 12 training the autoencoder."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ldm") / "run"
    assert main(["train", "latent-diffusion", "--data", "digits", "--epochs", "1", "--batch-size", "64",
                 "--autoencoder-steps", "12", "--lr", "3e-3", "--out", str(out), "--quiet", *FLAGS]) == 0
    return out


def records(path):
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_one_command_trains_both_stages_and_samples(run, tmp_path, capsys):
    model = load_run(run).model
    saved = json.loads((run / "config.json").read_text())
    assert saved["name"] == "latent-diffusion" and saved["model"]["autoencoder_steps"] == 12
    assert model.config.denoised_shape == (2, 4, 4) and model.latent_dim == 32
    assert (run / "model.safetensors").is_file() and not list(run.glob("*.pt"))
    # Both stages trained: the autoencoder's terms are logged, and the scale was measured.
    record = records(run)[0]
    assert record["step"] == 23 and "train/recon" in record and "val/recon" in record and "val/loss" in record
    assert float(model.latent_scale) != 1.0
    images = model.sample(6, torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1 and images.std() > 0.05
    # `genlab evaluate` gives the autoencoder's reconstruction PSNR (the family's measure).
    assert 8 < autoencoder_quality(model, load_dataset("digits", "test"))["autoencoder_psnr_db"] < 40
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "s.gif").stat().st_size > 0


def test_the_latent_scale_gives_the_training_codes_unit_variance(run):
    model = load_run(run).model
    images, _ = load_dataset("digits", "train").tensors()
    codes = model.scale_images(images)   # posterior means times latent_scale
    assert abs(codes.var().item() - 1) < 0.1, codes.var()
    # It is 1 / the standard deviation of the codes of the first batch of stage 2.
    unscaled = codes / model.latent_scale
    assert 0.9 < float(model.latent_scale) * unscaled.std().item() < 1.1


@pytest.mark.parametrize("boundary", [4, 6])   # at the end of the first epoch, and inside the second
def test_a_run_resumes_exactly_across_the_stage_boundary(tmp_path, boundary):
    data = load_dataset("digits", "train").subset(slice(0, 256))
    kw = {"batch_size": 64, "lr": 3e-3, "progress": False, "snapshot_every": -1}
    settings = {**TINY, "autoencoder_steps": boundary}
    train("latent-diffusion", data, data, out_dir=tmp_path / "full", epochs=3, model_settings=settings, **kw)
    train("latent-diffusion", data, data, out_dir=tmp_path / "part", epochs=1, model_settings=settings, **kw)
    torch.manual_seed(123)   # whatever happens in between must not matter
    resumed = train(None, data, data, out_dir=tmp_path / "part", epochs=3, resume=True, **kw)
    full = load_run(tmp_path / "full").model
    assert records(tmp_path / "full") == records(tmp_path / "part")
    state, again = full.state_dict(), resumed.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)
    assert float(full.latent_scale) != 1.0


def test_sample_command_with_dpm_solver(run, tmp_path, capsys):
    png = tmp_path / "d.png"
    assert main(["sample", str(run), "-n", "4", "--seed", "3", "--sampler", "dpm++2m", "--steps", "6",
                 "--out", str(png)]) == 0
    assert capsys.readouterr().out.split() == [str(png), str(png.with_suffix(".gif"))]
    model = load_run(run).model
    expected, _ = model.generate(model.prior_noise(4, torch.Generator().manual_seed(3)), sampler="dpm++2m", steps=6)
    grid = make_grid(expected, None, 2, auto_scale(expected))
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(grid))


def test_a_given_autoencoder_is_used_as_it_is(run, tmp_path):
    weights = (run / "model.safetensors").read_bytes()
    data = load_dataset("digits", "train").subset(slice(0, 128))
    given = load_run(run).model
    model = train("latent-diffusion", data, None, out_dir=tmp_path / "second", epochs=1, batch_size=64,
                  progress=False, snapshot_every=-1,
                  model_settings={**TINY, "channels": 16, "autoencoder": str(run)})
    assert model.config.autoencoder_steps == 0 and model.config.autoencoder_from == str(run.resolve())
    assert model.config.autoencoder == "" and model.config.code_channels == 2
    mine, theirs = model.autoencoder.state_dict(), given.autoencoder.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert (run / "model.safetensors").read_bytes() == weights   # the given run is untouched
    assert "train/recon" not in records(tmp_path / "second")[0]
    again = load_run(tmp_path / "second").model   # the run holds its autoencoder: the folder is not read again
    assert all(torch.equal(again.autoencoder.state_dict()[k], theirs[k]) for k in theirs)


def test_clear_errors(run, tmp_path, capsys):
    with pytest.raises(GenlabError, match="latent diffusion needs image sides divisible by 8"):
        build_model("latent-diffusion", image_shape=(1, 12, 12), **{**TINY, "channel_mults": (1, 2, 2)})
    assert main(["train", "pca", "--latent-dim", "2", "--out", str(tmp_path / "pca"), "--quiet"]) == 0
    capsys.readouterr()
    for folder, words in ((tmp_path / "pca", "holds a pca model; give the folder of a latent-diffusion run"),
                          (tmp_path / "none", "no config.json in")):
        assert main(["train", "latent-diffusion", "--data", "digits", "--autoencoder", str(folder),
                     "--out", str(tmp_path / "x"), "--quiet", *FLAGS]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    with pytest.raises(GenlabError, match="takes 1-channel images and these have 3"):
        build_model("latent-diffusion", image_shape=(3, 8, 8), **TINY, autoencoder=str(run))


def test_the_explorer_serves_it(run):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from genlab.serve import create_app

    with TestClient(create_app(run)) as client:
        info = client.get("/api/info").json()
        assert info["capabilities"]["denoising_sampler"] and info["latent_dim"] == 32 and info["sample_steps"] == 4
        reply = client.post("/api/sample", json={"n": 4, "seed": 0, "steps": 3})
        assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
        reply = client.post("/api/decode", json={"z": [0.0] * 32})
        assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
