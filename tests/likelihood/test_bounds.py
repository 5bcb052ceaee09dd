"""Soft bounds on the VAE's posterior mean and decoder logits (mean_bound, logit_bound)."""
import math

import pytest
import torch

from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.families.vae.model import soft_bound
from genlab.train import evaluate_loss, train


def dense_vae(**kw):
    torch.manual_seed(0)
    return build_model("vae", arch="dense", image_shape=(1, 8, 8), hidden=(32,), latent_dim=4, norm="none", **kw)


def test_soft_bound_is_near_identity_at_small_values_and_never_exceeds_c():
    x = torch.linspace(-1000, 1000, 20001, dtype=torch.float64)
    for c in (2.0, 8.0, 20.0):
        y = soft_bound(x, c)
        assert y.abs().max() <= c and torch.all(y[1:] >= y[:-1])            # bounded, monotone
        small = x.abs() < c / 6
        assert torch.all((y[small] - x[small]).abs() <= 0.01 * x[small].abs())
        torch.testing.assert_close(y, c * torch.tanh(x / c))
    assert soft_bound(x, 0.0) is x


def test_bounds_off_leave_the_model_unchanged_and_on_apply_to_the_raw_outputs():
    plain, bounded = dense_vae(), dense_vae(mean_bound=3.0, logit_bound=5.0)
    assert list(plain.state_dict()) == list(bounded.state_dict())
    x = (torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    z = 4 * torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw_mu, raw_logvar = plain.encoder(x).chunk(2, dim=1)
        mu, logvar = bounded.posterior(x)
        torch.testing.assert_close(mu, 3.0 * torch.tanh(raw_mu / 3.0))
        torch.testing.assert_close(logvar, raw_logvar)
        torch.testing.assert_close(plain.posterior(x)[0], raw_mu)
        raw_logits = plain.decoder(z).view(16, 1, 8, 8)
        torch.testing.assert_close(bounded.decode_logits(z), 5.0 * torch.tanh(raw_logits / 5.0))
        torch.testing.assert_close(plain.decode_logits(z), raw_logits)


def test_an_input_far_outside_the_training_range_cannot_run_away():
    """Scaled-up weights stand for an encoder and decoder that extrapolate badly: without the
    bounds the mean and logits explode and one image costs thousands of nats; with them each
    pixel costs at most about logit_bound nats."""
    models = {name: dense_vae(**kw) for name, kw in
              {"plain": {}, "bounded": {"mean_bound": 8.0, "logit_bound": 20.0}}.items()}
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, :4] = 1.0                                                           # half the pixels on
    for model in models.values():
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(30.0)
    with torch.no_grad():
        mu = {k: m.posterior(x)[0] for k, m in models.items()}
        logits = {k: m.decode_logits(mu[k]) for k, m in models.items()}
        recon = {k: -m.log_likelihood(logits[k], x) for k, m in models.items()}
    assert mu["plain"].abs().max() > 100 and logits["plain"].abs().max() > 1000
    assert mu["bounded"].abs().max() <= 8.0 and logits["bounded"].abs().max() <= 20.0
    assert recon["plain"].max() > 5000
    assert recon["bounded"].max() <= 64 * (20.0 + math.log(2))


def test_bounded_model_learns_like_the_plain_one(digits_train, digits_test, tmp_path):
    losses = {}
    for name, kw in {"plain": {}, "bounded": {"mean_bound": 8.0, "logit_bound": 20.0}}.items():
        torch.manual_seed(0)
        model = build_model("vae", arch="dense", image_shape=digits_train.image_shape, hidden=(64,),
                            latent_dim=4, norm="none", **kw)
        before = evaluate_loss(model, digits_test, True)["loss"]
        train(model, digits_train, None, out_dir=tmp_path / name, epochs=6, batch_size=64, lr=3e-3,
              progress=False)
        losses[name] = (before, evaluate_loss(model, digits_test, True)["loss"])
    for before, after in losses.values():
        assert after < 0.75 * before, losses
    assert abs(losses["bounded"][1] - losses["plain"][1]) < 0.05 * losses["plain"][1], losses


def test_bounds_are_checked():
    for kw in ({"mean_bound": -1.0}, {"logit_bound": -0.5}):
        with pytest.raises(GenlabError, match="mean_bound and logit_bound"):
            dense_vae(**kw)
