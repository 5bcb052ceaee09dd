"""Interpolation paths, projections, scatter maps and manifold grids."""
import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.latent import (decode_codes, encode_images, grid_codes, latent_scatter, linear_interpolate,
                           manifold_grid, spherical_interpolate)
from genlab.latent.interpolate import interpolation_path
from genlab.registry import build_model
from genlab.train import train


@pytest.fixture(scope="module")
def pca(digits_train):
    return build_model("pca", image_shape=(1, 8, 8), latent_dim=2).fit(digits_train.tensors()[0]).eval()


@pytest.fixture(scope="module")
def vae2(digits_train, tmp_path_factory):
    torch.set_num_threads(1)
    model = build_model("vae", image_shape=(1, 8, 8), latent_dim=2, hidden=(32,))
    return train(model, digits_train, out_dir=tmp_path_factory.mktemp("vae2"), progress=False, epochs=2,
                 batch_size=256).eval()


def test_linear_interpolation_is_evenly_spaced_between_the_end_points():
    a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 2.0, -0.5])
    path = linear_interpolate(a, b, 5)
    assert path.shape == (5, 3)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    steps = path.diff(dim=0)
    assert torch.allclose(steps, steps[:1].expand_as(steps))


def test_spherical_interpolation_keeps_the_norm_of_equal_norm_end_points():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    b = b * a.norm() / b.norm()
    path = spherical_interpolate(a, b, 9)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(9), rtol=1e-5)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    # The angle to a grows in equal steps (constant angular speed along the great circle).
    cos = (path @ a) / (path.norm(dim=1) * a.norm())
    angles = torch.arccos(cos.clamp(-1, 1).double())
    assert torch.allclose(angles.diff(), angles.diff()[:1].expand(8), atol=1e-4)


def test_spherical_interpolation_moves_the_norm_linearly_otherwise():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    path = spherical_interpolate(a, b, 5)
    assert torch.allclose(path.norm(dim=1), torch.tensor([2.0, 2.5, 3.0, 3.5, 4.0]))
    assert torch.allclose(path[2] / path[2].norm(), torch.tensor([0.5 ** 0.5, 0.5 ** 0.5]))


@pytest.mark.parametrize("b", [[1.0, 1e-7, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                         ids=["parallel", "antipodal", "zero"])
def test_spherical_interpolation_handles_degenerate_end_points(b):
    a = torch.tensor([1.0, 0.0, 0.0])
    path = spherical_interpolate(a, torch.tensor(b), 7)
    assert torch.isfinite(path).all() and torch.equal(path[0], a)
    if b[0] == -1.0:  # half way round a great circle, still on the unit sphere
        assert torch.allclose(path.norm(dim=1), torch.ones(7), atol=1e-6)


def test_too_few_steps_is_a_clear_error():
    with pytest.raises(GenlabError, match="at least 2 steps"):
        linear_interpolate(torch.zeros(2), torch.ones(2), 1)


@pytest.mark.parametrize("family", ["pca", "vae2"])
@pytest.mark.parametrize("spherical", [False, True])
def test_path_end_points_decode_to_the_reconstructions_of_a_and_b(family, spherical, request, digits_test):
    model = request.getfixturevalue(family)
    x, _ = digits_test.tensors(slice(0, 2))
    with torch.no_grad():
        z = encode_images(model, x)
        _, images = interpolation_path(model, z[0], z[1], 6, spherical)
        recon = model.reconstruct(x).clamp(0, 1)
    assert images.shape == (6, 1, 8, 8)
    assert torch.allclose(images[0], recon[0], atol=1e-5) and torch.allclose(images[-1], recon[1], atol=1e-5)


def test_latent_scatter_is_a_picture_of_the_asked_size():
    rng = np.random.default_rng(0)
    codes, labels = rng.normal(size=(200, 5)), rng.integers(0, 10, 200)
    image = latent_scatter(codes, labels, [str(i) for i in range(10)], "pca", "test", size_px=(400, 300))
    assert image.size == (400, 300) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # colours were drawn, not a blank canvas
    assert latent_scatter(codes[:60], None, method="tsne", size_px=(300, 200)).size == (300, 200)


def test_vae_manifold_grid_follows_the_gaussian_inverse_cdf(vae2):
    z = grid_codes(4, gaussian=True)
    expected = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert torch.allclose(z[:4, 0], expected) and torch.allclose(z[::4, 1], expected.flip(0))
    images = manifold_grid(vae2, n=4)
    assert images.shape == (16, 1, 8, 8)
    assert torch.allclose(images, decode_codes(vae2, z))


def test_manifold_grid_of_other_models_spans_their_codes(pca, digits_test):
    codes = encode_images(pca, digits_test.tensors()[0])
    images = manifold_grid(pca, n=5, codes=codes)
    assert images.shape == (25, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    wide = build_model("pca", image_shape=(1, 8, 8), latent_dim=3)
    with pytest.raises(GenlabError, match="needs a 2-d code"):
        manifold_grid(wide)
