"""Runs to serve: the demo's VAE (its settings, fewer epochs), a conditional GAN, PCA and a denoiser."""
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
