"""The importance-weighted bound against log p(x) integrated exactly on a grid (1-D latent)."""
import math

import torch

from genlab.data import ImageDataset
from genlab.metrics.likelihood import elbo, importance_weighted_log_likelihood
from genlab.registry import build_model
from genlab.models.distributions import standard_normal_log_density


def exact_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz on a fine grid over [-12, 12] (1-D latent)."""
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64).unsqueeze(1)
    dz = float(z[1, 0] - z[0, 0])
    with torch.no_grad():
        logits = model.decode_logits(z.float()).double()                       # (G, C, H, W)
        log_px_z = model.log_likelihood(logits.unsqueeze(1), x.double())       # (G, N)
    return torch.logsumexp(log_px_z + standard_normal_log_density(z).unsqueeze(1), 0) + math.log(dz)


def test_bound_is_below_exact_and_approaches_it():
    torch.manual_seed(0)
    model = build_model("vae", arch="dense", image_shape=(1, 3, 3), hidden=(16,), latent_dim=1).double().eval()
    # Pull the encoder's posterior away from the true one so the gap is visible.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    model.float()
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(40, 1, 3, 3, generator=g) > 0.5).float()
    data = ImageDataset(images=x, name="toy")
    exact = -float(exact_log_px(model, x).mean())            # the true NLL, nats per image
    bound_elbo = -elbo(model, data, mc_samples=2000)["elbo"]
    results = {k: importance_weighted_log_likelihood(model, data, k=k, chunk=700) for k in (1, 10, 100, 5000)}
    nll = {k: r["nll"] for k, r in results.items()}
    # Each bound lies above the exact NLL (up to Monte-Carlo noise) and tightens with K towards it.
    assert bound_elbo - exact > 0.5                           # a visible gap to close
    assert all(v > exact - 0.01 for v in nll.values()), (nll, exact)
    assert nll[1] > nll[10] > nll[100]
    assert abs(nll[5000] - exact) < 0.01 * (bound_elbo - exact) + 0.005, (nll, exact)
    assert abs(nll[1] - bound_elbo) < 4 * results[1]["nll_stderr"]  # K = 1 is the ELBO, one draw


def test_binary_inputs_are_binarized_once_and_results_carry_units():
    model = build_model("vae", arch="dense", image_shape=(1, 2, 2), hidden=(8,), latent_dim=1).eval()
    data = ImageDataset(images=torch.full((10, 1, 2, 2), 0.5), name="toy")
    a = importance_weighted_log_likelihood(model, data, k=50, seed=3)
    b = importance_weighted_log_likelihood(model, data, k=50, seed=3)
    assert a == b and a["importance_samples"] == 50
    assert math.isclose(a["bits_per_dim"], a["nll"] / (4 * math.log(2)))
