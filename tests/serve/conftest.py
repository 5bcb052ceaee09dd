"""Runs to serve: the demo's VAE (its settings, fewer epochs), a conditional GAN, PCA, a denoiser,
tiny diffusion models and a tiny 3-D GAN (volumes)."""
import pytest

from genlab.demo import DEMO_MODELS
from genlab.train import train


@pytest.fixture(scope="session")
def demo_vae(tmp_path_factory):
    """The demo's VAE (8-d code, Bernoulli likelihood), trained for 20 of its 100 epochs."""
    entry = next(e for e in DEMO_MODELS if e.name == "vae")
    out = tmp_path_factory.mktemp("serve") / "vae"
    train("vae", "digits", out_dir=out, progress=False, model_settings=entry.settings,
          **{**entry.train, "epochs": 20, "snapshot_every": -1})
    return out


@pytest.fixture(scope="session")
def small_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-runs")
    for name, settings in (("cgan", {"channels": 8}), ("pca", {"latent_dim": 4}), ("vae", {"latent_dim": 2, "hidden": (32,)}),
                           ("denoise", {"channels": (4, 8)})):
        train(name, "digits", out_dir=root / name, epochs=1, progress=False, snapshot_every=-1,
              model_settings=settings)
    return root


@pytest.fixture(scope="session")
def diffusion_runs(tmp_path_factory):
    """Two tiny diffusion runs (one epoch on 64 digits): ``short`` with 10 timesteps, so that every
    sample request is quick, and ``long`` with 1,000, so that one (16 samples of 1,000 steps) takes
    long enough to stop half-way."""
    from genlab.data import load_dataset

    root = tmp_path_factory.mktemp("serve-diffusion")
    data = load_dataset("digits", "train").subset(slice(0, 64))
    for name, timesteps in (("short", 10), ("long", 1000)):
        train("diffusion", data, out_dir=root / name, epochs=1, progress=False, snapshot_every=-1,
              model_settings={"channels": 4, "channel_mults": (1,), "groups": 4, "attention_resolution": 0,
                              "timesteps": timesteps, "sample_steps": 2})
    return root


@pytest.fixture(scope="session")
def volume_run(tmp_path_factory):
    """A tiny 3-D GAN (one epoch on the eight 16^3 cubes of a 32^3 volume of overlapping spheres)."""
    from genlab.families.porous.commands import make_volume_file

    root = tmp_path_factory.mktemp("serve-volume")
    make_volume_file("overlapping-spheres", 32, 0.3, root / "spheres.npy", seed=0, radius=3)
    train("porous-gan", f"volume:{root / 'spheres.npy'},edge=16,stride=16", out_dir=root / "run", epochs=1,
          progress=False, snapshot_every=-1, batch_size=8, model_settings={"channels": 2, "latent_dim": 2})
    return root / "run"
