"""The ELBO and the K-sample bound against quadrature on a model small enough to integrate
exactly (a 1-D latent): ELBO <= bound_K <= log p(x), the bound closing in on log p(x) as K grows."""
import math

import pytest
import torch

from genlab.data import ImageDataset
from genlab.metrics.likelihood import binarized_once, elbo, importance_weighted_log_likelihood
from genlab.registry import build_model
from genlab.models.distributions import gaussian_log_density, standard_normal_log_density

GRID = torch.linspace(-12, 12, 24001, dtype=torch.float64).unsqueeze(1)
DZ = float(GRID[1, 0] - GRID[0, 0])


def log_px_z_on_grid(model, x):
    with torch.no_grad():
        logits = model.decode_logits(GRID.float()).double()                  # (G, C, H, W)
        return model.log_likelihood(logits.unsqueeze(1), x.double())          # (G, N)


def exact_log_px(model, x):
    return torch.logsumexp(log_px_z_on_grid(model, x) + standard_normal_log_density(GRID).unsqueeze(1), 0) \
        + math.log(DZ)


def exact_elbo(model, x):
    """∫ q(z|x) [log p(x|z) + log p(z) - log q(z|x)] dz on the grid, per image."""
    with torch.no_grad():
        mu, logvar = (t.double() for t in model.posterior(x))
    log_q = gaussian_log_density(GRID.unsqueeze(1), mu, logvar)               # (G, N)
    integrand = log_px_z_on_grid(model, x) + standard_normal_log_density(GRID).unsqueeze(1) - log_q
    return (log_q.exp() * integrand).sum(0) * DZ


@pytest.mark.parametrize("autoregressive", [False, True])
def test_elbo_and_bound_against_quadrature(autoregressive):
    torch.manual_seed(0)
    model = build_model("vae", arch="dense", image_shape=(1, 3, 3), hidden=(16,), latent_dim=1,
                        autoregressive=autoregressive, ar_hidden=4 if autoregressive else 0).eval()
    with torch.no_grad():  # pull q away from the true posterior so the gaps are visible
        for p in model.parameters():
            p.mul_(1.5)
        if autoregressive:  # its output weights start at zero: give pixels a say in later ones
            for p in model.context.parameters():
                p.copy_(0.25 * torch.randn(p.shape))
    grey = ImageDataset(images=torch.rand(60, 1, 3, 3, generator=torch.Generator().manual_seed(1)), name="toy")
    x = binarized_once(grey).tensors()[0]                                     # what the metrics see
    log_px = float(exact_log_px(model, x).mean())
    if autoregressive:  # the context changes the density being estimated
        saved = {k: v.clone() for k, v in model.context.state_dict().items()}
        with torch.no_grad():
            for p in model.context.parameters():
                p.zero_()
        assert abs(float(exact_log_px(model, x).mean()) - log_px) > 0.05
        model.context.load_state_dict(saved)
    true_elbo = float(exact_elbo(model, x).mean())
    assert log_px - true_elbo > 0.5

    estimate = elbo(model, grey, mc_samples=4000)
    assert abs(estimate["elbo"] - true_elbo) < 0.02, (estimate["elbo"], true_elbo)
    bounds = {k: -importance_weighted_log_likelihood(model, grey, k=k, chunk=1000)["nll"] for k in (1, 5, 50, 5000)}
    assert abs(bounds[1] - true_elbo) < 0.5                                   # one draw per image
    assert true_elbo < bounds[5] < bounds[50] < bounds[5000] <= log_px + 0.01, (bounds, log_px)
    assert log_px - bounds[5000] < 0.02 * (log_px - true_elbo) + 0.005

    # The IWAE training objective is the same bound: its mean over draws matches at K = 5.
    with torch.no_grad():
        objective = float(model.importance_weighted_terms(x.repeat(400, 1, 1, 1), k=5)["bound"].mean())
    assert abs(objective - bounds[5]) < 0.05, (objective, bounds[5])
