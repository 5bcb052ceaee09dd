"""The IWAE objective, the KL warm-up and free bits, the averaged weights, the resnet architecture,
and `genlab evaluate --metrics nll`."""
import json
import math

import pytest
import torch

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.metrics.likelihood import importance_log_weights
from genlab.registry import build_model, load_model
from genlab.data.batch import Batch
from genlab.train import evaluate_loss, train
from genlab.train.trainer import build_optimizers, training_step


def toy_vae(**kw):
    torch.manual_seed(0)
    return build_model("vae", arch="dense", image_shape=(1, 4, 4), hidden=(16,), latent_dim=2, norm="none", **kw)


def toy_images(n=32):
    return (torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_iwae_objective_is_the_k_sample_bound_and_above_the_elbo():
    model, x = toy_vae(iw_samples=8).eval(), toy_images()
    torch.manual_seed(5)
    terms = model.loss(x)
    torch.manual_seed(5)  # the same draws, through the evaluation code
    log_w = importance_log_weights(model, x, None, 8, chunk=8)
    bound = torch.logsumexp(log_w, 0) - math.log(8)
    torch.testing.assert_close(terms["loss"], -bound.mean())
    torch.testing.assert_close(terms["neg_iw_bound"], terms["loss"])
    # In expectation L_K >= L_1 = ELBO: average over many draws.
    with torch.no_grad():
        many = x.repeat(200, 1, 1, 1)
        l8 = model.importance_weighted_terms(many, k=8)["bound"].mean()
        elbo = model.elbo_terms(many, mc_samples=1)["elbo"].mean()
    assert l8 > elbo + 0.05, (float(l8), float(elbo))


def test_with_one_sample_the_objective_is_the_elbo():
    model, x = toy_vae().eval(), toy_images()
    torch.manual_seed(2)
    terms = model.loss(x)
    torch.manual_seed(2)
    t = model.elbo_terms(x, mc_samples=1)
    torch.testing.assert_close(terms["loss"], -t["elbo"].mean())
    torch.testing.assert_close(terms["neg_elbo"], terms["loss"])
    # The one-sample bound (Monte-Carlo KL) has the ELBO (closed-form KL) as its mean.
    with torch.no_grad():
        many = x.repeat(500, 1, 1, 1)
        one = model.importance_weighted_terms(many, k=1)["bound"].mean()
        closed = model.elbo_terms(many, mc_samples=1)["elbo"].mean()
    assert abs(float(one - closed)) < 0.1


def test_kl_warmup_and_free_bits():
    model = toy_vae(kl_warmup_steps=100, beta=2.0)
    assert [model.kl_weight(s) for s in (0, 50, 100, 1000, None)] == [0.0, 1.0, 2.0, 2.0, 2.0]
    assert toy_vae().kl_weight(0) == 1.0
    x = toy_images()
    torch.manual_seed(0)
    at_start = model.loss(x, step=0)
    torch.testing.assert_close(at_start["loss"], at_start["recon"])     # warm-up: reconstruction only
    torch.manual_seed(0)
    evaluated = model.loss(x)                                           # no step: the full weight
    torch.testing.assert_close(evaluated["loss"], evaluated["recon"] + 2.0 * evaluated["kl"])

    free = toy_vae(free_bits=5.0)
    torch.manual_seed(0)
    t = free.loss(x)
    # A fresh encoder's KL per dimension is far below 5 nats: the penalty is the floor, 2 x 5.
    assert float(t["kl"].detach()) < 10.0
    torch.testing.assert_close(t["loss"], t["recon"] + torch.tensor(10.0))
    with pytest.raises(GenlabError, match="free_bits"):
        toy_vae(free_bits=1.0, iw_samples=4)


def test_warmup_follows_the_trainer_step():
    model, x = toy_vae(kl_warmup_steps=10), toy_images()
    optimizers = build_optimizers(model, 1e-3)
    seen = []
    original = model.loss

    def spy(x, labels=None, step=None):
        seen.append(step)
        return original(x, labels, step)

    model.loss = spy
    for step in (0, 7):
        training_step(model, Batch(x), optimizers, step)
    assert seen == [0, 7]


def test_averaged_weights_differ_and_are_used_in_eval_mode():
    model, x = toy_vae(ema_decay=0.9), toy_images()
    assert set(n for n, _ in model.named_parameters() if n.startswith("ema.")) and \
        not any(p.requires_grad for p in model.ema.parameters())
    optimizers = build_optimizers(model, 1e-2)
    assert len(optimizers["model"].param_groups[0]["params"]) == len(list(model.encoder.parameters())) + \
        len(list(model.decoder.parameters()))
    for step in range(30):
        training_step(model, Batch(x), optimizers, step)
    assert int(model.ema_updates) == 30
    live, avg = model.encoder.head[0].weight, model.ema["encoder"].head[0].weight
    assert not torch.equal(live, avg)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model.encode(x), model.ema["encoder"](x).chunk(2, 1)[0])
        z = torch.randn(3, 2)
        torch.testing.assert_close(model.decode(z), torch.sigmoid(model.ema["decoder"](z)))
        model.train()
        torch.testing.assert_close(model.encode(x), model.encoder(x).chunk(2, 1)[0])


def test_resnet_learns_on_digits(digits_train, digits_test, tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet-vae", image_shape=digits_train.image_shape, channels=(16, 32),
                        blocks_per_stage=1, latent_dim=8)
    assert any(type(m).__name__ == "ResidualBlock" for m in model.modules())
    before = evaluate_loss(model, digits_test, True)["loss"]
    train(model, digits_train, None, out_dir=tmp_path, epochs=8, batch_size=64, lr=3e-3,
          lr_schedule="cosine", progress=False)
    after = evaluate_loss(model, digits_test, True)["loss"]   # eval mode: the averaged weights
    assert after < 0.6 * before, (before, after)


def test_other_architectures_are_unchanged_by_the_new_settings():
    torch.manual_seed(0)
    a = build_model("conv-vae", image_shape=(1, 8, 8), channels=(8, 16))
    torch.manual_seed(0)
    b = build_model("conv-vae", image_shape=(1, 8, 8), channels=(8, 16), iw_samples=1, kl_warmup_steps=0,
                    free_bits=0.0, ema_decay=0.0)
    assert list(a.state_dict()) == list(b.state_dict())
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_save_load_and_exact_resume_keep_the_average(digits_train, tmp_path):
    data = digits_train.subset(slice(0, 256))

    def model():
        return build_model("iwae", image_shape=data.image_shape, channels=(8, 16), blocks_per_stage=1,
                           latent_dim=4, iw_samples=3, kl_warmup_steps=10, ema_decay=0.9)

    torch.manual_seed(0)
    full = model()
    train(full, data, None, out_dir=tmp_path / "full", epochs=3, batch_size=64, progress=False)
    torch.manual_seed(0)
    train(model(), data, None, out_dir=tmp_path / "part", epochs=1, batch_size=64, progress=False)
    torch.manual_seed(99)
    resumed = model()
    train(resumed, data, None, out_dir=tmp_path / "part", epochs=3, batch_size=64, progress=False, resume=True)
    assert metrics(tmp_path / "full") == metrics(tmp_path / "part")
    assert "ema.encoder.head.weight" in full.state_dict()
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k

    loaded = load_model(tmp_path / "full")
    assert loaded.config == full.config and int(loaded.ema_updates) == 12
    for a, b in zip(full.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    x, _ = data.tensors(slice(0, 8))
    full.eval()
    assert torch.equal(full.encode(x), loaded.encode(x))


def test_cli_evaluate_nll(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "32",
                 "--out", str(out), "--quiet"]) == 0
    path = tmp_path / "nll.json"
    code = main(["evaluate", str(out), "--metrics", "nll", "--importance-samples", "20", "--out", str(path)])
    text = capsys.readouterr().out
    assert code == 0 and "nll_bits_per_dim" in text
    r = json.loads(path.read_text())
    assert r["importance_samples"] == 20 and r["binarization_seed"] == 0 and r["nll_stderr"] > 0
    assert r["nll"] > 0 and math.isclose(r["nll_bits_per_dim"], r["nll"] / (64 * math.log(2)))
    code = main(["evaluate", str(out), "--metrics", "nll", "--importance-samples", "0"])
    assert code == 2 and "--importance-samples" in capsys.readouterr().err
