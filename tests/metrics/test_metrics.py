import math

import torch

from genlab.metrics import elbo, evaluate, reconstruction_error
from genlab.registry import build_model


def test_reconstruction_error_is_mean_squared_error_per_image(digits_test):
    model = build_model("pca", image_shape=(1, 8, 8), latent_dim=5).fit(digits_test.tensors()[0])
    x, _ = digits_test.tensors()
    expected = (model.reconstruct(x) - x).pow(2).sum((1, 2, 3))
    result = reconstruction_error(model, digits_test, batch_size=64)
    assert math.isclose(result["sq_error_per_image"], expected.mean().item(), rel_tol=1e-5)
    assert math.isclose(result["sq_error_stderr"], (expected.std() / len(x) ** 0.5).item(), rel_tol=1e-4)


def test_elbo_estimate_converges_and_bits_per_dim(digits_test):
    torch.manual_seed(0)
    model = build_model("vae", image_shape=(1, 8, 8), hidden=(32,), latent_dim=3).eval()
    small = digits_test.subset(slice(0, 50))
    one = elbo(model, small, mc_samples=1, seed=0)
    many = elbo(model, small, mc_samples=2000, seed=0)
    assert one["elbo"] == elbo(model, small, mc_samples=1, seed=0)["elbo"]  # seeded
    assert abs(many["elbo"] - (many["log_px_z"] - many["kl"])) < 1e-6
    assert abs(one["kl"] - many["kl"]) < 1e-9  # the KL is in closed form
    assert math.isclose(many["bits_per_dim"], -many["elbo"] / (64 * math.log(2)), rel_tol=1e-9)
    assert abs(one["elbo"] - many["elbo"]) < 5 * one["elbo_stderr"]


def test_gaussian_bits_per_dim_counts_256_levels(digits_test):
    model = build_model("vae", image_shape=(1, 8, 8), hidden=(32,), latent_dim=3, likelihood="gaussian").eval()
    result = elbo(model, digits_test.subset(slice(0, 20)))
    assert math.isclose(result["bits_per_dim"], (-result["elbo"] + 64 * math.log(256)) / (64 * math.log(2)))


def test_evaluate_picks_the_metrics_that_apply(digits_test):
    pca = build_model("pca", image_shape=(1, 8, 8), latent_dim=5).fit(digits_test.tensors()[0])
    assert set(evaluate(pca, digits_test)) == {"num_images", "sq_error_per_image", "sq_error_stderr"}
    vae = build_model("vae", image_shape=(1, 8, 8), hidden=(32,), latent_dim=3)
    assert {"elbo", "kl", "bits_per_dim", "sq_error_per_image"} <= set(evaluate(vae, digits_test, mc_samples=2))


def test_pca_on_mnist_matches_the_published_figure(mnist_dir):
    """PCA with 30 components: 13.87 per test image in Hinton and Salakhutdinov (2006)."""
    import genlab

    train = genlab.load_dataset("mnist", "train", mnist_dir)
    test = genlab.load_dataset("mnist", "test", mnist_dir)
    model = build_model("pca", image_shape=(1, 28, 28), latent_dim=30).fit(train.tensors()[0])
    assert abs(reconstruction_error(model, test)["sq_error_per_image"] - 13.87) < 0.01
