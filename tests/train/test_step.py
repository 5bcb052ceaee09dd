"""The trainer's step: per-image draws, gradient accumulation, mixed precision, the moving average,
and a model that only says what to minimise."""
import json
import math

import pytest
import torch

from genlab.data.batch import Batch, StepNoise
from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.train import TrainConfig, train
from genlab.train.trainer import build_optimizers, training_step


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def small(digits_train, digits_test):
    return digits_train.subset(slice(0, 256)), digits_test.subset(slice(0, 64))


def test_each_image_gets_the_same_draws_however_the_batch_is_split():
    noise = StepNoise(seed=3, step=7, size=8)
    whole = Batch(torch.zeros(8, 1, 2, 2), positions=torch.arange(8), noise=noise)
    expected = [whole.randn(5), whole.rand(1, 2, 2), whole.randint(10)]
    halves = [Batch(torch.zeros(4, 1, 2, 2), positions=torch.arange(r, 8, 2), noise=noise) for r in (0, 1)]
    for r, half in enumerate(halves):  # as the two processes of a data-parallel step see them
        got = [half.randn(5), half.rand(1, 2, 2), half.randint(10)]
        for g, e in zip(got, expected):
            assert torch.equal(g, e[r::2])
    for part, rows in zip(whole.split(3), (slice(0, 3), slice(3, 6), slice(6, 8))):  # micro-batches
        assert torch.equal(part.randn(5), expected[0][rows])
    again = Batch(torch.zeros(8, 1, 2, 2), positions=torch.arange(8), noise=StepNoise(3, 7, 8))
    assert torch.equal(again.randn(5), expected[0])                       # a resumed step: the same
    assert not torch.equal(Batch(torch.zeros(8, 1), positions=torch.arange(8), noise=StepNoise(3, 8, 8)).randn(5),
                           expected[0])                                    # the next step: others
    with pytest.raises(RuntimeError, match="same draws"):
        Batch(torch.zeros(8, 1), positions=torch.arange(8), noise=noise).rand(5)  # draw 0 was randn(5)
    k_first = Batch(torch.zeros(8, 1), positions=torch.arange(8), noise=StepNoise(0, 0, 8)).randn(3, 2, batch_dim=1)
    assert k_first.shape == (3, 8, 2)


@pytest.mark.parametrize("name,settings", [("vae", {"hidden": (32,), "latent_dim": 4, "norm": "none"}),
                                           ("diffusion", {"channels": 8, "timesteps": 50})])
def test_gradient_accumulation_takes_the_same_steps(small, tmp_path, name, settings):
    train_data, _ = small
    runs = {}
    for parts in (1, 4):
        torch.manual_seed(0)
        model = build_model(name, image_shape=(1, 8, 8), **settings)
        runs[parts] = train(model, train_data, None, out_dir=tmp_path / str(parts), epochs=1, batch_size=64,
                            grad_accumulation=parts, snapshot_every=-1, progress=False)
    (a,), (b,) = records(tmp_path / "1"), records(tmp_path / "4")
    assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-5)
    # The same model, judged by what it makes (weights whose gradient is zero up to rounding, such
    # as those behind a zero-initialised layer, take Adam steps in the direction of the rounding).
    made = [m.sample(8, generator=torch.Generator().manual_seed(0)) for m in (runs[1], runs[4])]
    torch.testing.assert_close(made[0], made[1], rtol=0, atol=1e-3)


@pytest.mark.parametrize("name,settings,falls", [
    ("vae", {"hidden": (64,), "latent_dim": 4}, "loss"),
    ("conv-ae", {"channels": (8, 16), "latent_dim": 8}, "loss"),
    ("diffusion", {"channels": 8, "timesteps": 100}, "loss"),
    ("dcgan", {"channels": 8}, None),
])
def test_bf16_autocast_trains_every_family(small, tmp_path, name, settings, falls):
    train_data, test_data = small
    model = build_model(name, image_shape=(1, 8, 8), **settings)
    train(model, train_data, test_data, out_dir=tmp_path, epochs=3, batch_size=32, lr=1e-3, precision="bf16",
          snapshot_every=-1, progress=False)
    log = records(tmp_path)
    assert all(math.isfinite(v) for r in log for v in r.values())
    if falls:
        assert log[-1][f"train/{falls}"] < 0.9 * log[0][f"train/{falls}"]
    else:  # the discriminator tells real from generated better than chance (2 log 2 nats)
        assert log[0]["train/d_loss"] < 2 * math.log(2)
    assert all(p.dtype == torch.float32 for p in model.parameters())   # autocast keeps fp32 weights


def test_fp16_needs_a_gpu_and_unknown_precisions_are_refused(small, tmp_path):
    with pytest.raises(GenlabError, match="unknown precision 'fp8'"):
        TrainConfig(precision="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(GenlabError, match="fp16 training needs a CUDA GPU"):
            train(build_model("vae", image_shape=(1, 8, 8), hidden=(16,)), small[0], None,
                  out_dir=tmp_path, epochs=1, precision="fp16", progress=False)


@pytest.mark.parametrize("name,settings,net", [("conv-ae", {"channels": (8, 16)}, "encoder"),
                                               ("dcgan", {"channels": 8}, "generator"),
                                               ("vae", {"hidden": (16,)}, "decoder"),
                                               ("diffusion", {"channels": 8}, "net")])
def test_the_trainer_keeps_one_moving_average_for_every_family(name, settings, net):
    x = torch.rand(16, 1, 8, 8)
    model = build_model(name, image_shape=(1, 8, 8), ema_decay=0.5, **settings)
    optimizers = build_optimizers(model, 1e-2)
    start = [p.detach().clone() for p in model.ema[net].parameters()]

    def step(i):
        training_step(model, Batch(x, positions=torch.arange(16), noise=StepNoise(0, i, 16)), optimizers, i)

    step(0)  # the warmed-up decay of the first update is min(0.5, 1/10) = 0.1
    for before, averaged, live in zip(start, model.ema[net].parameters(), getattr(model, net).parameters()):
        torch.testing.assert_close(averaged, 0.1 * before + 0.9 * live)
    step(1)
    step(2)
    assert int(model.ema_updates) == 3
    assert any(not torch.equal(a, p) for a, p in zip(model.ema[net].parameters(), getattr(model, net).parameters()))
    assert not any(p.requires_grad for p in model.ema.parameters())
    model.eval()
    assert model.network(net) is model.ema[net]       # evaluation and sampling use the average
    model.train()
    assert model.network(net) is getattr(model, net)  # training uses the live weights
