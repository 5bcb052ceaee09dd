"""Shapes (N, C, *spatial): volumes (N, C, D, H, W) go through the same data layer, trainer,
checkpoints, likelihoods and pictures as images; what is 2-D only says so."""
import json

import pytest
import torch

from genlab.data import ImageDataset
from genlab.errors import GenlabError
from genlab.registry import build_model, load_model
from genlab.models.distributions import bernoulli_log_likelihood, gaussian_log_likelihood
from genlab.train import train
from genlab.viz import make_grid


@pytest.fixture(scope="module")
def volumes():
    """Binary 6^3 volumes: a random box of ones in each, so that there is structure to learn."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(192, 1, 6, 6, 6)
    for v, (a, b, c) in zip(x, torch.randint(0, 3, (192, 3), generator=g)):
        v[:, a:a + 3, b:b + 3, c:c + 3] = 1
    return ImageDataset(x[:160], name="boxes"), ImageDataset(x[160:], name="boxes", split="test")


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_dense_models_train_on_volumes_and_round_trip(volumes, tmp_path, name):
    train_data, test_data = volumes
    torch.manual_seed(0)
    model = build_model(name, image_shape=(1, 6, 6, 6), hidden=(64,), latent_dim=4)
    trained = train(model, train_data, test_data, out_dir=tmp_path, epochs=15, batch_size=32, lr=3e-3,
                    progress=False)
    x = test_data.tensors()[0]
    assert trained.reconstruct(x).shape == x.shape == (32, 1, 6, 6, 6)
    if name == "vae":
        assert trained.sample(5).shape == (5, 1, 6, 6, 6)
    first, *_, last = [line for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert json.loads(last)["val/loss"] < 0.8 * json.loads(first)["val/loss"]
    loaded = load_model(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded.reconstruct(x), trained.reconstruct(x))
    assert (tmp_path / "snapshots" / "progress.gif").exists()  # pictures of the middle slices


def test_likelihoods_sum_over_every_dimension_of_a_volume():
    x = (torch.rand(3, 1, 4, 5, 6) > 0.5).float()
    logits = torch.randn(3, 1, 4, 5, 6)
    expected = -(torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
                 .flatten(1).sum(1))
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x, dims=4), expected)
    mean = torch.rand(3, 1, 4, 5, 6)
    gaussian = torch.distributions.Normal(mean, 0.5).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_log_likelihood(mean, torch.tensor(0.5).log(), x, dims=4), gaussian)


@pytest.mark.parametrize("name,what", [("conv-vae", "arch 'conv'"), ("dcgan", "the DCGAN"),
                                       ("diffusion", "the diffusion U-Net")])
def test_networks_built_for_images_refuse_volumes_clearly(name, what):
    with pytest.raises(GenlabError, match=f"{what} is built for 2-D images"):
        build_model(name, image_shape=(1, 8, 8, 8))


def test_a_picture_grid_shows_a_volume_by_its_middle_slice():
    v = torch.rand(4, 1, 5, 6, 6)
    assert make_grid(v).tobytes() == make_grid(v[:, :, 2]).tobytes()
    with pytest.raises(ValueError, match="picture grid shows images"):
        make_grid(torch.rand(4, 6, 6))
    with pytest.raises(GenlabError, match="image_shape must be"):
        build_model("ae", image_shape=(1,))
