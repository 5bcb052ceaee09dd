"""Every family: the common surface, learning on small data, exact save/load, clear errors."""
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from genlab.errors import GenlabError
from genlab.registry import build_model, load_model, presets
from genlab.models.base import NotSupported
from genlab.train import evaluate_loss, train

# Small widths so that every model trains in a few seconds.
SMALL = {
    "ae": {"hidden": (128, 64)}, "dae": {"hidden": (128, 64)},
    "vae": {"hidden": (128, 64)}, "cvae": {"hidden": (128, 64)},
    "conv-ae": {"channels": (16, 32)}, "conv-dae": {"channels": (16, 32)},
    "conv-vae": {"channels": (16, 32)}, "conv-cvae": {"channels": (16, 32)},
    "resnet-vae": {"channels": (16, 32), "blocks_per_stage": 1},
    "iwae": {"channels": (16, 32), "blocks_per_stage": 1, "iw_samples": 3},
    "pca": {},
}


def small_model(name, data, **kw):
    return build_model(name, image_shape=data.image_shape, num_classes=data.num_classes,
                       **{**SMALL[name], "latent_dim": 8, **kw})


def test_every_registered_model_is_covered():
    # GANs and diffusion models have no encoder: tests/gan, tests/diffusion, tests/porous and
    # tests/families/progan cover them;
    # tests/translation covers the image-to-image tasks, CycleGAN and the codec.
    others = ("gan", "diffusion", "porous", "image-to-image", "cyclegan", "codec", "progan")
    assert {name for name, (family, _) in presets().items() if family not in others} == set(SMALL)


@pytest.mark.parametrize("name", list(SMALL))
def test_surface_shapes(name, digits_train):
    model = small_model(name, digits_train).eval()
    x, y = digits_train.tensors(slice(0, 6))
    if model.capabilities.closed_form:
        model.fit(digits_train.tensors()[0])
    z = model.encode(x, y)
    assert z.shape == (6, 8)
    out = model.decode(z, y)
    assert out.shape == x.shape
    assert model.reconstruct(x, y).shape == x.shape
    if name in ("ae", "dae", "conv-ae", "conv-dae"):
        with pytest.raises(NotSupported, match="no prior"):
            model.sample(4)
    else:
        labels = torch.arange(4) if model.conditional else None   # an unconditional model refuses labels
        s = model.sample(4, generator=torch.Generator().manual_seed(0), labels=labels)
        assert s.shape == (4, *x.shape[1:]) and s.min() >= 0 and s.max() <= 1
        again = model.sample(4, generator=torch.Generator().manual_seed(0), labels=labels)
        assert torch.equal(s, again)


@pytest.mark.parametrize("name", [n for n in SMALL if n != "pca"])
def test_model_learns_on_digits(name, digits_train, digits_test, tmp_path):
    torch.manual_seed(0)
    model = small_model(name, digits_train)
    binary = model.capabilities.binary_likelihood
    before = evaluate_loss(model, digits_test, binary)["loss"]
    train(model, digits_train, digits_test, out_dir=tmp_path / name, epochs=10, batch_size=64, lr=2e-3,
          progress=False)
    after = evaluate_loss(model, digits_test, binary)["loss"]
    # Squared error starts near 15 per 8x8 image and cross-entropies near 44 nats; a VAE on
    # binarized digits cannot go below the pixels' own Bernoulli noise (about 20 nats).
    assert after < 0.6 * before, (before, after)


def test_pca_matches_scikit_learn(digits_train, digits_test):
    x_train, _ = digits_train.tensors()
    x_test, _ = digits_test.tensors()
    ours = build_model("pca", image_shape=(1, 8, 8), latent_dim=10).fit(x_train)
    sk = SkPCA(n_components=10).fit(x_train.reshape(len(x_train), -1).numpy().astype(np.float64))
    flat = x_test.reshape(len(x_test), -1).numpy().astype(np.float64)
    expected = sk.inverse_transform(sk.transform(flat))
    got = ours.reconstruct(x_test).reshape(len(x_test), -1).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), sk.explained_variance_, rtol=1e-4)
    # The subspace is the same (components agree up to sign).
    cos = np.abs((ours.components_.double().numpy() * sk.components_).sum(1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)


def test_pca_reconstruction_error_falls_with_components(digits_train, digits_test):
    x_train, _ = digits_train.tensors()
    x_test, _ = digits_test.tensors()
    errors = []
    for p in (2, 8, 32, 64):
        model = build_model("pca", image_shape=(1, 8, 8), latent_dim=p).fit(x_train)
        errors.append(float((model.reconstruct(x_test) - x_test).pow(2).sum() / len(x_test)))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-8


@pytest.mark.parametrize("name", list(SMALL))
def test_save_load_round_trip_is_bit_exact(name, digits_train, tmp_path):
    torch.manual_seed(3)
    model = small_model(name, digits_train, **({"likelihood": "gaussian", "learn_sigma": True}
                                               if name == "conv-vae" else {}))
    if model.capabilities.closed_form:
        model.fit(digits_train.tensors()[0])
    else:  # move batch-norm statistics away from their defaults
        model.train()
        model.loss(digits_train.batch(slice(0, 32)))
    model.eval()
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x, y = digits_train.tensors(slice(0, 8))
    assert torch.equal(model.reconstruct(x, y), loaded.reconstruct(x, y))


def test_denoising_autoencoder_removes_noise(digits_train, digits_test, tmp_path):
    from genlab.data import gaussian_noise

    torch.manual_seed(0)
    plain = small_model("ae", digits_train)
    denoiser = small_model("dae", digits_train, noise_level=0.4)
    for m, name in ((plain, "ae"), (denoiser, "dae")):
        train(m, digits_train, None, out_dir=tmp_path / name, epochs=15, batch_size=64, lr=2e-3, progress=False)
    x, _ = digits_test.tensors()
    noisy = gaussian_noise(x, 0.4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        err = {n: float((m.reconstruct(noisy) - x).pow(2).sum() / len(x)) for m, n in ((plain, "ae"), (denoiser, "dae"))}
    noisy_err = float((noisy - x).pow(2).sum() / len(x))
    assert err["dae"] < err["ae"] and err["dae"] < 0.5 * noisy_err, (err, noisy_err)


def test_conditional_vae_uses_the_label(digits_train, tmp_path):
    torch.manual_seed(0)
    model = small_model("cvae", digits_train)
    train(model, digits_train, None, out_dir=tmp_path, epochs=15, batch_size=64, lr=2e-3, progress=False)
    z = torch.zeros(10, 8)
    with torch.no_grad():
        images = model.decode(z, torch.arange(10))
    # The same code decodes to ten different digits: class means differ clearly.
    distances = torch.cdist(images.flatten(1), images.flatten(1))
    assert distances[~torch.eye(10, dtype=bool)].min() > 0.5
    with pytest.raises(GenlabError, match="class labels"):
        model.decode(z[:1], torch.tensor([10]))
    with pytest.raises(GenlabError, match="needs class labels"):
        model.encode(digits_train.batch(slice(0, 2)).images)


def test_latent_size_mismatch_is_a_clear_error(digits_train):
    model = small_model("conv-vae", digits_train)
    with pytest.raises(GenlabError, match="8-d latent space"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(GenlabError, match="model built for"):
        model.encode(torch.zeros(2, 1, 28, 28))


def test_bad_settings_are_clear_errors():
    with pytest.raises(GenlabError, match="unknown model"):
        build_model("gan9000")
    with pytest.raises(GenlabError, match="unknown setting"):
        build_model("vae", latnt_dim=3)
    with pytest.raises(GenlabError, match="blocks_per_stage must be 0 or more"):
        build_model("conv-ae", image_shape=(1, 8, 8), blocks_per_stage=-1)
    with pytest.raises(GenlabError, match="divisible by 4"):
        build_model("conv-ae", image_shape=(1, 10, 10))
    with pytest.raises(GenlabError, match="labelled dataset"):
        build_model("cvae", image_shape=(1, 8, 8))


def test_vae_elbo_terms_and_beta(digits_train):
    torch.manual_seed(0)
    model = small_model("vae", digits_train, beta=4.0, mc_samples=3)
    x, _ = digits_train.tensors(slice(0, 16))
    terms = model.loss((x > 0.5).float())
    torch.testing.assert_close(terms["loss"], terms["recon"] + 4.0 * terms["kl"])
    torch.testing.assert_close(terms["neg_elbo"], terms["recon"] + terms["kl"])
    assert terms["kl"] >= 0
