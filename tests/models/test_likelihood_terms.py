"""The likelihood and KL helpers against torch.distributions (an independent computation)."""
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from genlab.models.distributions import (bernoulli_log_likelihood, bits_per_dim, gaussian_log_density,
                                      gaussian_log_likelihood, kl_standard_normal)


def test_bernoulli_matches_torch_distribution():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64)
    x = (torch.rand(4, 1, 5, 5, generator=g, dtype=torch.float64) > 0.5).double()
    expected = Independent(Bernoulli(logits=logits), 3).log_prob(x)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x), expected)


def test_gaussian_matches_torch_distribution():
    g = torch.Generator().manual_seed(1)
    mean = torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)
    log_sigma = torch.randn(2, 4, 4, generator=g, dtype=torch.float64) * 0.3 - 1
    x = torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)
    expected = Independent(Normal(mean, log_sigma.exp()), 3).log_prob(x)
    torch.testing.assert_close(gaussian_log_likelihood(mean, log_sigma, x), expected)


def test_kl_closed_form_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.5
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    kl = kl_standard_normal(mu, logvar)
    torch.testing.assert_close(kl, kl_divergence(q, p))
    # Monte Carlo: E_q[log q(z) - log p(z)] with 200k draws agrees to about 3 standard errors.
    z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 5, 3, generator=g, dtype=torch.float64)
    log_ratio = gaussian_log_density(z, mu, logvar) - p.log_prob(z)
    se = log_ratio.std(0) / 200_000 ** 0.5
    assert ((log_ratio.mean(0) - kl).abs() < 4 * se + 1e-9).all()


def test_bits_per_dim_unit_conversion():
    assert abs(bits_per_dim(784 * 0.6931471805599453, 784) - 1.0) < 1e-12


def test_the_likelihood_follows_the_data_unless_chosen():
    """Colour photos get a Gaussian likelihood (binarizing them would leave 8 colours), grey images
    a Bernoulli one; a choice made stays, and a run records the one used."""
    from genlab.registry import build_model

    assert build_model("conv-vae", image_shape=(3, 16, 16)).config.likelihood == "gaussian"
    assert build_model("conv-vae", image_shape=(1, 28, 28)).config.likelihood == "bernoulli"
    chosen = build_model("vae", image_shape=(3, 8, 8), likelihood="bernoulli")
    assert chosen.config.likelihood == "bernoulli" and chosen.capabilities.binary_likelihood
    assert build_model("vae", image_shape=(3, 8, 8)).config.to_dict()["likelihood"] == "gaussian"
