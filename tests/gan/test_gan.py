"""GANs: each loss learns digits without collapse, conditioning, exact save/load and resume, the
adversarial add-on for autoencoders, and the CLI (sample --label, evaluate --metrics)."""
import json

import pytest
import torch

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.metrics.features import feature_classifier
from genlab.metrics.sample_quality import fid
from genlab.registry import build_model, load_model
from genlab.models.base import NotSupported
from genlab.nn.adversarial import Discriminator, frozen, generator_loss, num_stages
from genlab.families.gan.model import Generator
from genlab.train import train
from genlab.train.trainer import build_optimizers, to_channels_last, training_step

# Small enough that 300 steps take a few seconds on one thread, big enough to draw digits.
SMALL = {"latent_dim": 16, "channels": 16, "ema_decay": 0.99}
TRAIN = {"epochs": 13, "batch_size": 64, "lr": 2e-3, "progress": False}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The module fixtures below train before the function-scoped conftest fixture sets 1 thread.
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def classifier(digits_train, digits_test):
    net, acc = feature_classifier(digits_train, digits_test)   # into the session's cache (conftest)
    assert acc > 0.9
    return net


@pytest.fixture(scope="module", params=["non-saturating", "hinge", "wgan-gp"])
def trained(request, tmp_path_factory, digits_train):
    torch.manual_seed(0)
    model = build_model("dcgan", image_shape=digits_train.image_shape, loss=request.param, **SMALL)
    untrained = build_model("dcgan", image_shape=digits_train.image_shape, loss=request.param, **SMALL)
    untrained.load_state_dict(model.state_dict())
    out = tmp_path_factory.mktemp(request.param)
    train(model, digits_train, None, out_dir=out, **TRAIN)
    return model.eval(), untrained.eval(), out


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory, digits_train):
    torch.manual_seed(0)
    model = build_model("cgan", image_shape=digits_train.image_shape, num_classes=10, **SMALL)
    out = tmp_path_factory.mktemp("cgan")
    train(model, digits_train, None, out_dir=out, **TRAIN)
    return model.eval(), out


def mean_pairwise_distance(x):
    return torch.cdist(x.flatten(1), x.flatten(1)).mean().item()


def test_each_loss_learns_digits_without_collapse(trained, classifier, digits_test):
    model, untrained, out = trained
    with torch.no_grad():
        samples = model.sample(300, generator=torch.Generator().manual_seed(1))
        before = untrained.sample(300, generator=torch.Generator().manual_seed(1))
        real = digits_test.tensors()[0]
        # Diversity: samples differ from each other about as much as real digits do...
        assert mean_pairwise_distance(samples) > 0.7 * mean_pairwise_distance(real)
        # ...and the classifier sees most digit classes among them, none dominating.
        counts = torch.bincount(classifier(samples).argmax(1), minlength=10)
        feats = [classifier.features(x).numpy() for x in (real, samples, before)]
    assert (counts > 0).sum() >= 7 and counts.max() < 0.4 * len(samples), counts.tolist()
    # Learning: much closer to the test digits than the untrained generator was.
    assert fid(feats[0], feats[1]) < 0.5 * fid(feats[0], feats[2])
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "train/loss"} <= set(record)
    assert ("train/gp" in record) == (model.config.loss == "wgan-gp")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_networks_fit_every_image_size(shape):
    g, d = Generator(shape, 8, 4), Discriminator(shape, 4, spectral_norm=True, num_classes=3)
    x = g(torch.randn(2, 8))
    assert x.shape == (2, *shape) and 0 <= x.min() and x.max() <= 1
    assert d(x, torch.tensor([0, 2])).shape == (2,)
    assert [num_stages(s, s) for s in (8, 28, 32, 64)] == [1, 2, 3, 4]


def test_generator_step_leaves_out_the_discriminators_weight_gradients_only():
    torch.manual_seed(0)
    g, d = Generator((1, 8, 8), 3, 4), Discriminator((1, 8, 8), 4, spectral_norm=True)
    d.eval()  # spectral norm keeps its estimate of sigma, so that both passes see the same D
    z = torch.randn(6, 3)
    generator_loss("non-saturating", d(g(z))).backward()          # plain autograd: both networks
    expected = [p.grad.clone() for p in g.parameters()]
    assert all(p.grad is not None for p in d.parameters())
    g.zero_grad(set_to_none=True)
    d.zero_grad(set_to_none=True)
    with frozen(d):
        scores = d(g(z))
    assert all(p.requires_grad for p in d.parameters())            # given back on leaving
    generator_loss("non-saturating", scores).backward()
    assert all(p.grad is None for p in d.parameters())
    for p, e in zip(g.parameters(), expected):                     # G's own gradients as before
        torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-7)
    # A weight frozen before stays frozen, also when the block raises.
    first = next(d.parameters())
    first.requires_grad_(False)
    with pytest.raises(RuntimeError), frozen(d):
        raise RuntimeError("inside")
    assert not first.requires_grad and all(p.requires_grad for p in list(d.parameters())[1:])


def test_surface_and_clear_errors(digits_train):
    model = build_model("dcgan", image_shape=(1, 8, 8), **SMALL).eval()
    x = digits_train.batch(slice(0, 4)).images
    assert model.decode(torch.zeros(3, 16)).shape == (3, 1, 8, 8)
    a = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(0)))
    for call in (lambda: model.encode(x), lambda: model.reconstruct(x), lambda: model.loss(x)):
        with pytest.raises(NotSupported):
            call()
    with pytest.raises(GenlabError, match="unknown loss"):
        build_model("dcgan", image_shape=(1, 8, 8), loss="minimax")
    with pytest.raises(GenlabError, match="labelled dataset"):
        build_model("cgan", image_shape=(1, 8, 8))


def test_save_load_is_exact_including_the_averaged_generator(trained, tmp_path):
    model = trained[0]
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    assert model.state_dict().keys() == loaded.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert any(k.startswith("ema.generator.") for k in model.state_dict())
    z = torch.randn(4, 16)
    # The run trained channels-last (the GANs' default); the checkpoint loads in the default layout,
    # whose kernels sum in another order, and in the run's layout, which repeats its images exactly.
    torch.testing.assert_close(model.decode(z), loaded.decode(z), rtol=0, atol=1e-5)
    assert torch.equal(model.decode(z), to_channels_last(loaded).decode(z))
    # Sampling uses the average, which differs from the live generator after training.
    assert not torch.equal(model.decode(z), model.generator(z))


def test_lazy_r1_is_the_penalty_on_every_kth_step_weighted_k_times():
    """r1_every=k: D's loss has k times the R1 penalty on steps 0, k, 2k... and none on the others."""
    from genlab.data.batch import Batch

    x = torch.rand(8, 1, 8, 8)

    def objective(step, **settings):
        torch.manual_seed(0)
        model = build_model("dcgan", image_shape=(1, 8, 8), **SMALL, **settings)
        return model.objective("discriminator", Batch(x), step)

    plain, _ = objective(4, r1_gamma=0.0)
    every, every_terms = objective(4, r1_gamma=2.0, r1_every=1)
    lazy, lazy_terms = objective(4, r1_gamma=2.0, r1_every=4)
    assert lazy_terms["r1"] == pytest.approx(4 * every_terms["r1"].item(), rel=1e-5) and every_terms["r1"] > 0
    assert (lazy - plain).item() == pytest.approx(4 * (every - plain).item(), rel=1e-4)
    skipped, skipped_terms = objective(5, r1_gamma=2.0, r1_every=4)
    assert skipped_terms["r1"] == 0 and skipped.item() == pytest.approx(objective(5, r1_gamma=0.0)[0].item(), rel=1e-6)
    assert build_model("dcgan", image_shape=(1, 8, 8)).config.r1_gamma == 1.0     # the DCGAN's default
    assert build_model("cgan", image_shape=(1, 8, 8), num_classes=10).config.r1_gamma == 0.0


def test_training_resumes_exactly(digits_train, tmp_path):
    data = digits_train.subset(slice(0, 256))
    settings = {**SMALL, "spectral_norm": True, "r1_gamma": 1.0, "r1_every": 3, "n_critic": 2}
    kw = {"batch_size": 64, "lr": 1e-3, "progress": False}
    torch.manual_seed(0)
    full = build_model("dcgan", image_shape=(1, 8, 8), **settings)
    train(full, data, None, out_dir=tmp_path / "full", epochs=2, **kw)
    torch.manual_seed(0)
    part = build_model("dcgan", image_shape=(1, 8, 8), **settings)
    train(part, data, None, out_dir=tmp_path / "part", epochs=1, **kw)
    resumed = build_model("dcgan", image_shape=(1, 8, 8), **settings)
    train(resumed, data, None, out_dir=tmp_path / "part", epochs=2, resume=True, **kw)

    def records(path):
        return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                for line in (path / "metrics.jsonl").read_text().splitlines()]

    assert records(tmp_path / "full") == records(tmp_path / "part")
    assert "train/r1" in records(tmp_path / "full")[0]
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))


def test_conditional_samples_follow_the_label(cgan_run, classifier, digits_test, tmp_path):
    model, out = cgan_run
    with torch.no_grad():
        hits = [(classifier(model.sample(50, generator=torch.Generator().manual_seed(k), labels=torch.tensor([k])))
                 .argmax(1) == k).float().mean().item() for k in range(10)]
    assert sum(hits) / 10 > 0.6, hits
    # Not one image per class: z still matters within a class, about as much as real digits vary.
    x, y = digits_test.tensors()
    with torch.no_grad():
        within = [mean_pairwise_distance(model.sample(20, generator=torch.Generator().manual_seed(k),
                                                      labels=torch.tensor([k]))) for k in range(10)]
    real_within = [mean_pairwise_distance(x[y == k][:20]) for k in range(10)]
    assert sum(within) > 0.6 * sum(real_within), (within, real_within)
    # Within a class and between classes with the same z.
    z = model.prior_noise(2, torch.Generator().manual_seed(0))
    between = model.interpolate_classes(z[0], 3, 8, steps=6)
    assert between.shape == (6, 1, 8, 8)
    assert torch.allclose(between[0], model.decode(z[:1], torch.tensor([3]))[0], atol=1e-6)
    assert torch.allclose(between[-1], model.decode(z[:1], torch.tensor([8]))[0], atol=1e-6)
    # genlab sample RUN --label 7
    assert main(["sample", str(out), "--label", "7", "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    assert main(["sample", str(out), "--label", "10"]) == 2


def test_evaluate_command_reports_sample_quality(cgan_run, classifier, capsys):   # from the cache
    out = cgan_run[1]
    assert main(["evaluate", str(out), "--metrics", "fid,kid,pr,dc", "--num-samples", "300"]) == 0
    results = json.loads((out / "evaluation-test.json").read_text())
    assert results["features"] == "classifier:digits" and results["feature_classifier_test_accuracy"] > 0.9
    assert results["num_samples"] == 300 and results["fid"] > 0 and 0 <= results["precision"] <= 1
    assert {"kid", "kid_std", "recall", "density", "coverage"} <= set(results)
    assert "sq_error_per_image" not in results
    assert 0 < results["fid_floor"] < results["fid"] and "(real data: " in capsys.readouterr().out


def test_adversarial_autoencoder_trains_both_networks(digits_train, tmp_path):
    plain = build_model("conv-ae", image_shape=(1, 8, 8), channels=(8, 16), latent_dim=8)
    assert plain.discriminator is None and list(build_optimizers(plain, 1e-3)) == ["model"]
    torch.manual_seed(0)
    model = build_model("conv-ae", image_shape=(1, 8, 8), channels=(8, 16), latent_dim=8, adv_weight=0.1)
    optimizers = build_optimizers(model, 1e-3)
    assert set(optimizers) == {"model", "discriminator"}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    terms = training_step(model, digits_train.batch(slice(0, 32)), optimizers, step=0)
    assert {"loss", "recon_loss", "adv", "d_loss", "sq_error"} <= set(terms)
    assert torch.isclose(terms["loss"], terms["recon_loss"] + 0.1 * terms["adv"])
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert {"encoder", "decoder", "discriminator"} <= changed
    train(model, digits_train, None, out_dir=tmp_path, epochs=1, batch_size=64, progress=False)
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert {"train/adv", "train/d_loss", "train/recon_loss"} <= set(record)


def test_evaluate_by_default_gives_a_generator_its_fid_beside_the_floor(cgan_run, classifier, capsys):
    """A model without an encoder is judged by its samples without being asked, beside the FID of
    real training images; a later evaluate adds its figures to the same file."""
    out = cgan_run[1]
    (out / "evaluation-test.json").unlink(missing_ok=True)
    assert main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "evaluation-test.json").read_text())
    assert 0 < results["fid_floor"] < results["fid"] and results["fid_x_floor"] == results["fid"] / results["fid_floor"]
    assert f"fid: {results['fid']:.4g}   (real data: {results['fid_floor']:.4g}" in printed
    assert main(["evaluate", str(out), "--metrics", "kid", "--num-samples", "100"]) == 0
    both = json.loads((out / "evaluation-test.json").read_text())
    assert both["fid"] == results["fid"] and both["kid_std"] > 0 and both["kid_floor"] < both["kid"]
    assert (f"kid: {both['kid']:.4g} +- {both['kid_std']:.4g} (over subsets)   (real data: {both['kid_floor']:.4g})"
            in capsys.readouterr().out)
