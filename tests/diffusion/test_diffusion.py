"""Diffusion: the forward process against its closed form, eps/v conversions, DDIM and DDPM
samplers, a two-cluster toy learned in the right proportions, classifier-free guidance, exact
save/load and resume, the latent (starting noise) and the CLI."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.base import ImageDataset
from genlab.errors import GenlabError
from genlab.latent.interpolate import spherical_interpolate
from genlab.latent.interpolate import interpolation_path
from genlab.registry import build_model, load_model
from genlab.models.base import NotSupported
from genlab.families.diffusion.model import noise_schedule, split_prediction, velocity
from genlab.train import load_run, train
from genlab.viz import auto_scale, make_grid

# 4x4 images of one grey level each: dark (0.2) three times as often as bright (0.8).
DARK, BRIGHT = 0.2, 0.8
TOY = {"channels": 16, "channel_mults": (1,), "attention_resolution": 0, "timesteps": 100,
       "sample_steps": 20, "ema_decay": 0.99}
TOY_TRAIN = {"epochs": 30, "batch_size": 128, "lr": 5e-3, "progress": False, "snapshot_every": -1}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The module fixtures below train before the function-scoped conftest fixture sets 1 thread.
    torch.set_num_threads(1)


def two_clusters(n=1024, seed=0):
    g = torch.Generator().manual_seed(seed)
    bright = torch.rand(n, generator=g) < 0.25
    levels = torch.where(bright, BRIGHT, DARK)
    images = levels[:, None, None, None].expand(n, 1, 4, 4).contiguous()
    return ImageDataset(images, bright.long(), name="arrays", class_names=["dark", "bright"])


def bright_share(images):
    """Share of images nearer the bright level; every image must lie near one of the two levels."""
    means = images.flatten(1).mean(1)
    assert ((means - DARK).abs().lt(0.1) | (means - BRIGHT).abs().lt(0.1)).float().mean() > 0.95, means
    assert images.flatten(1).std(1).lt(0.1).float().mean() > 0.85  # flat images, as in the data
    return (means > 0.5).float().mean().item()


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("diffusion", image_shape=(1, 4, 4), **TOY)
    out = tmp_path_factory.mktemp("toy")
    train(model, two_clusters(), None, out_dir=out, **TOY_TRAIN)
    return model.eval(), out


@pytest.fixture(scope="module")
def conditional_toy(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("cdiffusion", image_shape=(1, 4, 4), num_classes=2, label_dropout=0.3, **TOY)
    out = tmp_path_factory.mktemp("ctoy")
    train(model, two_clusters(), None, out_dir=out, **TOY_TRAIN)
    return model.eval(), out


# --------------------------------------------------------------------- the process
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_process_matches_its_closed_form(schedule):
    """Running the Markov chain x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps step by step
    gives the closed-form marginal N(sqrt(abar_t) x0, (1 - abar_t) I), and so does add_noise."""
    model = build_model("diffusion", image_shape=(1, 4, 4), channels=8, channel_mults=(1,), timesteps=50,
                        schedule=schedule)
    betas = noise_schedule(schedule, 50)
    abar = model.alphas_cumprod.double()
    assert torch.allclose(abar, torch.cumprod(1 - betas, 0), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    x0 = torch.linspace(-1, 1, 16, dtype=torch.float64)
    n = 20000
    x = x0.expand(n, 16).clone()
    for t in range(50):
        x = (1 - betas[t]).sqrt() * x + betas[t].sqrt() * torch.randn(n, 16, generator=g, dtype=torch.float64)
        if t in (0, 9, 24, 49):
            direct = model.add_noise(x0.float().reshape(1, 1, 4, 4).expand(n, 1, 4, 4), torch.full((n,), t),
                                     torch.randn(n, 1, 4, 4, generator=g)).flatten(1).double()
            for draws in (x, direct):
                assert torch.allclose(draws.mean(0), abar[t].sqrt() * x0, atol=0.03), (t, draws.mean(0))
                assert torch.allclose(draws.var(0), (1 - abar[t]).expand(16), atol=0.03), (t, draws.var(0))


def test_schedules_follow_their_definitions():
    linear = torch.cumprod(1 - noise_schedule("linear", 1000), 0)
    assert torch.allclose(linear, torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0))
    cosine = torch.cumprod(1 - noise_schedule("cosine", 1000), 0)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    assert torch.allclose(cosine[:-20], f[:-20], atol=1e-9)  # the clipped last betas aside
    assert linear[-1] < 1e-4 and cosine[-1] < 1e-4  # both end in (almost) pure noise


def test_eps_and_v_predictions_convert_into_each_other():
    g = torch.Generator().manual_seed(0)
    model = build_model("diffusion", image_shape=(1, 4, 4), channels=8, channel_mults=(1,), timesteps=100)
    x0, eps = torch.rand(6, 1, 4, 4, generator=g) * 2 - 1, torch.randn(6, 1, 4, 4, generator=g)
    t = torch.tensor([0, 10, 30, 50, 80, 99])
    x_t = model.add_noise(x0, t, eps)
    a, s = model.coefficients(t)
    assert torch.allclose(a ** 2 + s ** 2, torch.ones_like(a))
    v = velocity(x0, eps, a, s)
    for output, kind in ((eps, "eps"), (v, "v")):
        got_x0, got_eps = split_prediction(output, x_t, a, s, kind)
        assert torch.allclose(got_eps, eps, atol=1e-4) and torch.allclose(got_x0[:-1], x0[:-1], atol=1e-3)
    # A v-prediction model learns: its uniform loss is the squared error of v, about 1 for the untrained net.
    vmodel = build_model("diffusion", image_shape=(1, 4, 4), channels=8, channel_mults=(1,), prediction="v",
                         loss_weighting="uniform")
    assert 0.3 < vmodel.loss(torch.rand(64, 1, 4, 4))["loss"].item() < 3


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_min_snr_loss_is_the_clean_image_error_weighted_by_the_capped_snr(prediction):
    """Hang et al. 2023: per image, min(SNR_t, gamma) x the mean squared error of the clean image
    implied by the prediction, whatever the network predicts."""
    shape, batch = (1, 4, 4), 8
    model = build_model("diffusion", image_shape=shape, channels=8, channel_mults=(1,), prediction=prediction,
                        loss_weighting="min-snr", min_snr_gamma=2.0, timesteps=50)
    images = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(0))
    seen = {}

    def network(x_t, t, classes):   # records what the loss drew, answers something wrong
        seen.update(x_t=x_t, t=t)
        return torch.sin(3 * x_t) + 0.1 * t[:, None, None, None]

    model.net.forward = network
    loss = model.loss(images)["loss"]
    a, s = model.coefficients(seen["t"])
    guess, _ = split_prediction(network(seen["x_t"], seen["t"], None), seen["x_t"], a, s, prediction)
    x0 = 2 * images - 1
    snr = model.alphas_cumprod[seen["t"]] / (1 - model.alphas_cumprod[seen["t"]])
    expected = (snr.clamp(max=2.0) * (guess - x0).pow(2).flatten(1).mean(1)).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(GenlabError, match="unknown loss_weighting 'max'; choose one of: uniform, min-snr"):
        build_model("diffusion", image_shape=shape, loss_weighting="max")


# --------------------------------------------------------------------- samplers
def test_toy_samples_fall_into_both_clusters_in_proportion(toy):
    model, out = toy
    share = bright_share(model.sample(400, generator=torch.Generator().manual_seed(1)))
    assert 0.15 < share < 0.35, share
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train/loss"] < first["train/loss"]


def test_ddpm_ancestral_sampling_and_its_ddim_equivalent(toy):
    model, _ = toy
    noise = model.prior_noise(200, torch.Generator().manual_seed(2))
    ddpm, _ = model.generate(noise, sampler="ddpm", generator=torch.Generator().manual_seed(3))
    assert 0.15 < bright_share(ddpm) < 0.35
    # DDIM with eta = 1 over all T steps is DDPM's posterior: the same images from the same draws.
    ddim, _ = model.generate(noise, sampler="ddim", steps=model.timesteps, eta=1.0,
                             generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ddim, ddpm, atol=1e-4)


def test_ddim_is_deterministic_and_seeded(toy):
    model, _ = toy
    z = model.prior_noise(8, torch.Generator().manual_seed(0))
    a = model.decode(z)
    assert torch.equal(a, model.decode(z))
    # eta = 0 draws nothing: the generator does not matter.
    b, _ = model.generate(z, eta=0.0, generator=torch.Generator().manual_seed(99))
    assert torch.equal(a, b)
    s1 = model.sample(8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(s1, model.sample(8, generator=torch.Generator().manual_seed(5)))
    assert not torch.equal(s1, model.sample(8, generator=torch.Generator().manual_seed(6)))
    # With eta > 0 the same noise gives other images for another seed, the same for the same seed.
    c, _ = model.generate(z, sampler="ddim", eta=1.0, generator=torch.Generator().manual_seed(1))
    d, _ = model.generate(z, sampler="ddim", eta=1.0, generator=torch.Generator().manual_seed(1))
    e, _ = model.generate(z, sampler="ddim", eta=1.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(c, d) and not torch.equal(c, e)
    # Any number of steps; frames run from the noise to the images.
    for steps in (1, 10, 100):
        images, frames = model.generate(z, steps=steps, frames=5)
        assert images.shape == (8, 1, 4, 4) and 0 <= images.min() and images.max() <= 1
        assert len(frames) == min(5, steps + 1) and torch.equal(frames[-1], images)


def test_the_latent_is_the_starting_noise(toy):
    model, _ = toy
    assert model.latent_dim == 16
    with pytest.raises(NotSupported, match="no encoder"):
        model.encode(torch.rand(2, 1, 4, 4))
    za, zb = model.prior_noise(2, torch.Generator().manual_seed(0))
    z, images = interpolation_path(model, za, zb, 6, spherical=True)
    assert torch.allclose(z, spherical_interpolate(za, zb, 6)) and images.shape == (6, 1, 4, 4)
    assert torch.allclose(images[0], model.decode(za[None])[0])
    assert torch.allclose(images[-1], model.decode(zb[None])[0])
    with pytest.raises(GenlabError, match=r"\(N, 16\)"):
        model.decode(torch.zeros(2, 15))


# --------------------------------------------------------------------- conditioning
def test_classifier_free_guidance_follows_the_label(conditional_toy):
    model, _ = conditional_toy
    g = torch.Generator
    for label, expected in ((0, 0.0), (1, 1.0)):
        for scale in (1.0, 3.0):
            images, _ = model.generate(model.prior_noise(200, g().manual_seed(label)), torch.tensor([label]),
                                       guidance=scale)
            assert abs(bright_share(images) - expected) < 0.05, (label, scale)
    # Scale 0 ignores the label: the unconditional prediction, both clusters.
    images, _ = model.generate(model.prior_noise(400, g().manual_seed(7)), torch.tensor([1]), guidance=0.0)
    assert 0.1 < bright_share(images) < 0.45
    # Without labels, classes in turn.
    assert abs(bright_share(model.sample(100, generator=g().manual_seed(0))) - 0.5) < 0.05


def test_dpm_solver_samples_in_proportion_and_follows_guidance(toy, conditional_toy):
    """DPM-Solver++ in 10 steps, unconditional and guided (its accuracy: test_dpm_solver.py)."""
    model, _ = toy
    g = torch.Generator
    for sampler in ("dpm++2m", "dpm++3m"):
        images, _ = model.generate(model.prior_noise(400, g().manual_seed(1)), sampler=sampler, steps=10)
        assert 0.15 < bright_share(images) < 0.35, sampler
    model, _ = conditional_toy
    for label, expected in ((0, 0.0), (1, 1.0)):
        images, _ = model.generate(model.prior_noise(200, g().manual_seed(label)), torch.tensor([label]),
                                   guidance=3.0, sampler="dpm++2m", steps=10)
        assert abs(bright_share(images) - expected) < 0.05, label


def test_clear_errors(toy, conditional_toy):
    model, _ = toy
    z = model.prior_noise(2)
    for call, message in [
        (lambda: model.generate(z, guidance=2.0), "conditional"),
        (lambda: model.generate(z, steps=0), r"1\.\.100"),
        (lambda: model.generate(z, steps=101), r"1\.\.100"),
        (lambda: model.generate(z, eta=1.5), "eta"),
        (lambda: model.generate(z, sampler="euler"), "unknown sampler"),
        (lambda: conditional_toy[0].generate(z, torch.tensor([2])), r"0\.\.1"),
        (lambda: build_model("diffusion", image_shape=(1, 4, 4), schedule="quadratic"), "unknown schedule"),
        (lambda: build_model("diffusion", image_shape=(1, 4, 4), prediction="x0"), "unknown prediction"),
        (lambda: build_model("diffusion", image_shape=(1, 6, 6), channel_mults=(1, 2, 2)), "divisible by 4"),
        (lambda: build_model("cdiffusion", image_shape=(1, 4, 4)), "labelled dataset"),
        (lambda: build_model("cdiffusion", image_shape=(1, 4, 4), num_classes=2, label_dropout=0.0),
         "label_dropout"),
    ]:
        with pytest.raises(GenlabError, match=message):
            call()


@pytest.mark.parametrize("shape, mults", [((1, 28, 28), (1, 2, 2)), ((3, 32, 32), (1, 2, 2, 2)), ((1, 8, 8), (1, 2))])
def test_unet_fits_image_sizes(shape, mults):
    model = build_model("cdiffusion", image_shape=shape, num_classes=3, channels=8, channel_mults=mults,
                        attention_resolution=8)
    x = torch.randn(2, *shape)
    assert model.net(x, torch.tensor([0, 999]), torch.tensor([0, 3])).shape == (2, *shape)


# --------------------------------------------------------------------- persistence
def test_save_load_is_exact_including_the_averaged_weights(toy, tmp_path):
    model, _ = toy
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    state, again = model.state_dict(), loaded.state_dict()
    assert state.keys() == again.keys() and any(k.startswith("ema.net.") for k in state)
    assert all(torch.equal(state[k], again[k]) for k in state) and int(state["ema_updates"]) == 240
    z = model.prior_noise(4, torch.Generator().manual_seed(0))
    assert torch.equal(model.decode(z), loaded.decode(z))
    # Sampling uses the average, which differs from the live network after training.
    assert not torch.equal(model.generate(z)[0], model.generate(z, averaged=False)[0])


def test_training_resumes_exactly(tmp_path):
    data = two_clusters(256)
    kw = {"batch_size": 64, "lr": 3e-3, "progress": False, "snapshot_every": -1}
    settings = {**TOY, "prediction": "eps", "schedule": "linear"}

    def fresh():
        torch.manual_seed(0)
        return build_model("cdiffusion", image_shape=(1, 4, 4), num_classes=2, **settings)

    full = fresh()
    train(full, data, data, out_dir=tmp_path / "full", epochs=2, **kw)
    train(fresh(), data, data, out_dir=tmp_path / "part", epochs=1, **kw)
    torch.manual_seed(123)  # whatever happens in between must not matter
    resumed = fresh()
    train(resumed, data, data, out_dir=tmp_path / "part", epochs=2, resume=True, **kw)

    def records(path):
        return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                for line in (path / "metrics.jsonl").read_text().splitlines()]

    assert records(tmp_path / "full") == records(tmp_path / "part")
    assert "val/loss" in records(tmp_path / "full")[0]
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))


# --------------------------------------------------------------------- the command line
def test_sample_command(conditional_toy, toy, tmp_path, capsys):
    _, out = conditional_toy
    png = tmp_path / "s.png"
    assert main(["sample", str(out), "-n", "9", "--label", "1", "--steps", "10", "--guidance", "2",
                 "--out", str(png)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(png), str(png.with_suffix(".gif"))] and png.with_suffix(".gif").stat().st_size > 0
    # The command's images are the model's samples for the same seed.
    run = load_run(out)
    assert main(["sample", str(out), "-n", "4", "--seed", "3", "--out", str(tmp_path / "a.png")]) == 0
    expected = run.model.sample(4, generator=torch.Generator().manual_seed(3))
    grid = make_grid(expected, None, 2, auto_scale(expected))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(grid))
    assert main(["sample", str(out), "--sampler", "ddim", "--eta", "0.5", "--steps", "5",
                 "--out", str(tmp_path / "e.png")]) == 0
    # --sampler: the images of generate(sampler=...) for the same seed.
    assert main(["sample", str(out), "-n", "4", "--seed", "3", "--sampler", "dpm++2m", "--steps", "8",
                 "--out", str(tmp_path / "d.png")]) == 0
    expected, _ = run.model.generate(run.model.prior_noise(4, torch.Generator().manual_seed(3)), sampler="dpm++2m",
                                     steps=8)
    grid = make_grid(expected, None, 2, auto_scale(expected))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), np.asarray(grid))
    for argv, message in [
        (["sample", str(toy[1]), "--guidance", "2"], "conditional"),
        (["sample", str(toy[1]), "--label", "1"], "conditional"),
        (["sample", str(out), "--steps", "1001"], r"1\.\.100"),
        (["sample", str(out), "--label", "2"], r"0\.\.1"),
        (["sample", str(out), "--eta", "2"], "eta"),
        (["sample", str(out), "--sampler", "euler"], "unknown sampler 'euler'; choose one of: ddim, ddpm, dpm++2m"),
        (["sample", str(out), "--sampler", "dpm++3m", "--eta", "0.5"], "--eta applies to the ddim sampler"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("genlab: error: ") and err.count("\n") == 1 and message.replace("\\", "") in err, err


def test_sampler_flags_are_refused_by_other_models(tmp_path, capsys):
    out = tmp_path / "pca"
    assert main(["train", "pca", "--latent-dim", "4", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    for flag, value in (("--steps", "10"), ("--sampler", "dpm++2m")):
        assert main(["sample", str(out), flag, value]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{flag} applies to diffusion models only" in err


def test_interpolate_command_between_two_noises(digits_train, tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model("diffusion", image_shape=(1, 8, 8), channels=8, channel_mults=(1,), attention_resolution=0,
                        sample_steps=5)
    out = tmp_path / "run"
    train(model, digits_train.subset(slice(0, 128)), None, out_dir=out, epochs=1, batch_size=64, progress=False,
          snapshot_every=-1)
    for i in (0, 1):
        np.save(tmp_path / f"z{i}.npy", np.random.default_rng(i).standard_normal(64))
    assert main(["interpolate", str(out), "--from", str(tmp_path / "z0.npy"), "--to", str(tmp_path / "z1.npy"),
                 "--spherical", "--steps", "4"]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 2 and all(Path(p).exists() for p in paths) and paths[1].endswith(".gif")
    # Without an encoder, an integer end point is a seed of the starting noise, not a test image.
    assert main(["interpolate", str(out), "--from", "0", "--to", "1"]) == 0
    assert capsys.readouterr().out.split()[0].endswith("interpolation-0-1.png")
    assert main(["interpolate", str(out), "--from", "zero", "--to", "1"]) == 2
    assert "neither a seed" in capsys.readouterr().err


def test_large_images_on_a_cpu_are_pointed_to_latent_diffusion(tmp_path, capsys):
    """The benchmark found latent diffusion ahead at 64 x 64 on a CPU: pixel diffusion there says
    so in one line as training starts; smaller images, a GPU and latent diffusion itself do not."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    small = {"channels": 4, "channel_mults": (1,), "attention_resolution": 0}
    large = build_model("diffusion", image_shape=(3, 64, 64), **small)
    assert "genlab train latent-diffusion" in large.training_note(cpu)
    assert large.training_note(gpu) is None
    assert build_model("diffusion", image_shape=(1, 28, 28), **small).training_note(cpu) is None
    assert build_model("latent-diffusion", image_shape=(3, 64, 64)).training_note(cpu) is None
    labelled = build_model("cdiffusion", image_shape=(3, 64, 64), num_classes=2, **small)
    assert "(genlab train latent-diffusion --conditional)" in labelled.training_note(cpu)
    images = torch.rand(4, 3, 64, 64)
    train(large, ImageDataset(images, name="arrays"), None, out_dir=tmp_path / "run", max_steps=1, batch_size=4,
          snapshot_every=-1)
    assert capsys.readouterr().out.count("note: on a CPU, 64x64 images train faster as latent diffusion") == 1
