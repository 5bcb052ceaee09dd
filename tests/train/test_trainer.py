"""The training loop: metrics, exact resume, interruption, divergence, run folders."""
import json
import math

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import GenerativeModel, OptimizerGroup
from genlab.registry import build_model
from genlab.train import Trainer, TrainConfig, load_run, train
from genlab.runs import STATE_FILE, save_checkpoint


def vae(data):
    return build_model("conv-vae", image_shape=data.image_shape, channels=(8, 16), latent_dim=4)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_time(records):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def nan_at_call(model, n, monkeypatch):
    """Make the ``n``-th call of ``model``'s loss (counted from 1) return a NaN loss."""
    original = type(model).loss
    calls = {"n": 0}

    def loss(self, batch, labels=None, step=None):
        calls["n"] += 1
        terms = original(self, batch, labels, step)
        if calls["n"] == n:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(type(model), "loss", loss)


@pytest.fixture(scope="module")
def small_data(digits_train, digits_test):
    return digits_train.subset(slice(0, 400)), digits_test.subset(slice(0, 100))


def test_run_folder_contents(small_data, tmp_path):
    train_data, test_data = small_data
    train(vae(train_data), train_data, test_data, out_dir=tmp_path, epochs=2, batch_size=50, progress=False)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors",
            STATE_FILE, "metrics.jsonl"} <= names
    assert not any(n.endswith(".tmp") for n in names)
    records = metrics(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [8, 16]
    assert {"train/loss", "train/kl", "val/loss", "val/neg_elbo"} <= set(records[0])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["family"] == "vae" and config["train"]["seed"] == 0 and config["data"]["name"] == "digits"
    assert config["train"]["binarize"] is None and "torch" in config["versions"]
    run = load_run(tmp_path)
    assert run.model.config.latent_dim == 4 and len(run.metrics) == 2


def test_resume_continues_exactly(small_data, tmp_path):
    train_data, test_data = small_data
    torch.manual_seed(0)
    full = vae(train_data)
    train(full, train_data, test_data, out_dir=tmp_path / "full", epochs=3, batch_size=50, progress=False)

    torch.manual_seed(0)
    part = vae(train_data)
    train(part, train_data, test_data, out_dir=tmp_path / "part", epochs=1, batch_size=50, progress=False)
    torch.manual_seed(123)  # whatever happened in between must not matter
    resumed = vae(train_data)
    train(resumed, train_data, test_data, out_dir=tmp_path / "part", epochs=3, batch_size=50, progress=False,
          resume=True)
    assert without_time(metrics(tmp_path / "full")) == without_time(metrics(tmp_path / "part"))
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_interrupted_mid_epoch_resumes_exactly(small_data, tmp_path, monkeypatch):
    train_data, test_data = small_data
    torch.manual_seed(0)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "full", epochs=2, batch_size=50,
          progress=False)

    calls = {"n": 0}
    original = Trainer._step

    def interrupt_at_step_11(self, *args):
        calls["n"] += 1
        if calls["n"] == 11:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_step", interrupt_at_step_11)
    torch.manual_seed(0)
    with pytest.raises(GenlabError, match="interrupted at step 10; continue it with `resume=True`"):
        train(vae(train_data), train_data, test_data, out_dir=tmp_path / "cut", epochs=2, batch_size=50,
              progress=False)
    state = json.loads((tmp_path / "cut" / STATE_FILE).read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 10)
    monkeypatch.setattr(Trainer, "_step", original)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "cut", epochs=2, batch_size=50,
          progress=False, resume=True)
    assert without_time(metrics(tmp_path / "full")) == without_time(metrics(tmp_path / "cut"))


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(small_data, tmp_path, monkeypatch):
    train_data, _ = small_data
    model = vae(train_data)
    train(model, train_data, None, out_dir=tmp_path, epochs=1, batch_size=50, progress=False)
    saved = (tmp_path / "model.safetensors").read_bytes()

    nan_at_call(model, 3, monkeypatch)
    with pytest.raises(GenlabError, match="became nan at step 11;.*last good checkpoint"):
        train(model, train_data, None, out_dir=tmp_path, epochs=2, batch_size=50, progress=False, resume=True)
    assert (tmp_path / "model.safetensors").read_bytes() == saved
    assert json.loads((tmp_path / STATE_FILE).read_text())["step"] == 8


def test_reads_deferred_as_on_a_gpu_log_the_same_run_and_catch_a_nan(small_data, tmp_path, monkeypatch):
    """Off the CPU the host reads the losses back every HOST_READS steps (see Trainer); run here
    that way, the run's metrics are those of reading at every step, and a NaN still stops it,
    named by its step, with nothing written after it."""
    train_data, test_data = small_data
    config = TrainConfig(epochs=2, batch_size=50, checkpoint_every=5)
    logs = []
    for deferred in (False, True):
        torch.manual_seed(0)
        trainer = Trainer(vae(train_data), train_data, test_data, config, tmp_path / str(deferred), progress=False)
        trainer.defer_reads = deferred
        trainer.run()
        logs.append(without_time(metrics(tmp_path / str(deferred))))
    assert logs[0] == logs[1]

    model = vae(train_data)
    nan_at_call(model, 7, monkeypatch)
    trainer = Trainer(model, train_data, None, config, tmp_path / "nan", progress=False)
    trainer.defer_reads = True
    with pytest.raises(GenlabError, match=r"NaN or infinite at step 7;.*last good checkpoint"):
        trainer.run()
    assert json.loads((tmp_path / "nan" / STATE_FILE).read_text())["step"] == 5   # the checkpoint before it


@pytest.fixture
def ctrl_c_interrupts():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal (a background job may ignore it)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_inside_a_step_lets_the_step_finish_and_resumes_exactly(small_data, tmp_path, monkeypatch,
                                                                       ctrl_c_interrupts):
    import os
    import signal

    train_data, test_data = small_data
    torch.manual_seed(0)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "full", epochs=2, batch_size=50,
          progress=False)
    original = type(vae(train_data)).loss
    calls = {"n": 0}

    def ctrl_c_in_the_forward_pass_of_step_11(self, *args, **kwargs):
        terms = original(self, *args, **kwargs)   # batch norm has counted this batch already
        if self.training:
            calls["n"] += 1
            if calls["n"] == 11:
                os.kill(os.getpid(), signal.SIGINT)
        return terms

    monkeypatch.setattr(type(vae(train_data)), "loss", ctrl_c_in_the_forward_pass_of_step_11)
    torch.manual_seed(0)
    with pytest.raises(GenlabError, match="interrupted at step 11; continue it with `resume=True`"):
        train(vae(train_data), train_data, test_data, out_dir=tmp_path / "cut", epochs=2, batch_size=50,
              progress=False)
    state = json.loads((tmp_path / "cut" / STATE_FILE).read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (1, 3, 11)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # Ctrl-C is itself again
    monkeypatch.setattr(type(vae(train_data)), "loss", original)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "cut", epochs=2, batch_size=50,
          progress=False, resume=True)
    assert without_time(metrics(tmp_path / "full")) == without_time(metrics(tmp_path / "cut"))


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(small_data, tmp_path, monkeypatch,
                                                                     ctrl_c_interrupts):
    import os
    import signal

    train_data, _ = small_data
    model = vae(train_data)
    original = type(model).loss
    calls = {"n": 0}

    def two_presses_at_step_3(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "loss", two_presses_at_step_3)
    with pytest.raises(GenlabError, match="interrupted during step 3; no checkpoint was written yet"):
        train(model, train_data, None, out_dir=tmp_path, epochs=1, batch_size=50, progress=False)
    assert not (tmp_path / STATE_FILE).exists()   # nothing half made was written


def test_existing_run_is_not_overwritten(small_data, tmp_path):
    train_data, _ = small_data
    train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=1, batch_size=100, progress=False)
    with pytest.raises(GenlabError, match="already holds a run; continue it with `resume=True`"):
        train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=1, progress=False)
    with pytest.raises(GenlabError, match="nothing to resume"):
        train(vae(train_data), train_data, None, out_dir=tmp_path / "new", progress=False, resume=True)


def test_resume_with_another_model_is_a_clear_error(small_data, tmp_path):
    train_data, _ = small_data
    train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=1, batch_size=100, progress=False)
    other = build_model("conv-ae", image_shape=train_data.image_shape, channels=(8, 16), latent_dim=4)
    with pytest.raises(GenlabError, match="holds a vae model, not a autoencoder"):
        train(other, train_data, None, out_dir=tmp_path, epochs=2, progress=False, resume=True)
    wider = build_model("conv-vae", image_shape=train_data.image_shape, channels=(8, 16), latent_dim=5)
    with pytest.raises(GenlabError, match="settings differ"):
        train(wider, train_data, None, out_dir=tmp_path, epochs=2, progress=False, resume=True)
    with pytest.raises(GenlabError, match="holds a 'conv-vae' model, not 'vae'"):
        train("vae", train_data, out_dir=tmp_path, epochs=2, progress=False, resume=True)
    with pytest.raises(GenlabError, match="holds a vae model, not a autoencoder"):
        load_run(tmp_path, family="autoencoder")


def test_run_written_before_a_new_setting_existed_resumes(small_data, tmp_path):
    # A run from an older genlab lacks settings added since; at their defaults they are no change.
    train_data, _ = small_data
    train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=1, batch_size=100, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"].pop("recon_weight") == 1.0
    (tmp_path / "config.json").write_text(json.dumps(config))
    train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=2, batch_size=100, progress=False,
          resume=True)
    assert [r["epoch"] for r in metrics(tmp_path)] == [1, 2]


def test_pca_is_fitted_in_closed_form(digits_train, digits_test, tmp_path):
    model = build_model("pca", image_shape=(1, 8, 8), latent_dim=12)
    train(model, digits_train, digits_test, out_dir=tmp_path, progress=False)
    run = load_run(tmp_path)
    record = run.metrics[0]
    assert record["val/sq_error"] > record["train/sq_error"] > 0
    assert torch.equal(run.model.components_, model.components_)


def test_cosine_schedule_and_bad_settings():
    from genlab.train.trainer import _lr_at

    config = TrainConfig(lr=1.0, lr_schedule="cosine")
    assert _lr_at(config, 0, 100) == 1.0 and abs(_lr_at(config, 50, 100) - 0.5) < 1e-12
    assert _lr_at(config, 100, 100) < 1e-12
    with pytest.raises(GenlabError, match="unknown training setting"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(GenlabError, match="learning rate must be positive"):
        TrainConfig(lr=0)


def test_max_minutes_stops_on_the_clock_with_the_schedule_finished(small_data, tmp_path, monkeypatch):
    """A clock that ticks one second per reading: each step takes one second, so a 10-second limit
    stops after 10 steps (8 in epoch 1, 2 in epoch 2) of the 40 planned, with the cosine schedule
    driven by the time used; a resume given more minutes carries on from there."""
    import itertools
    import types

    from genlab.train import trainer

    clock = itertools.count()
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    train_data, _ = small_data
    settings = dict(epochs=5, batch_size=50, lr=1.0, lr_schedule="cosine", snapshot_every=-1, progress=False)
    train(vae(train_data), train_data, None, out_dir=tmp_path, max_minutes=10 / 60, **settings)
    records = metrics(tmp_path)
    assert [(r["epoch"], r["step"], r["time_s"]) for r in records] == [(1, 8, 8.0), (2, 10, 2.0)]
    # the last logged step (index 7, then 9) after 8, then 10 seconds: progress max(7/40, 8/10), then 1
    assert abs(records[0]["lr"] - 0.5 * (1 + math.cos(0.8 * math.pi))) < 1e-12 and records[1]["lr"] < 1e-12
    assert json.loads((tmp_path / STATE_FILE).read_text())["done"] is True

    train(vae(train_data), train_data, None, out_dir=tmp_path, max_minutes=15 / 60, resume=True, **settings)
    assert [(r["epoch"], r["step"]) for r in metrics(tmp_path)] == [(1, 8), (2, 10), (3, 15)]
    with pytest.raises(GenlabError, match="max_minutes must be >= 0"):
        TrainConfig(max_minutes=-1)


def test_the_cpu_clock_counts_this_process_s_cpu_time(small_data, tmp_path, monkeypatch):
    """clock=cpu: the budget and time_s count CPU time (here half a second a step while the clock
    on the wall shows a second), so a 5-second budget takes 10 steps; an unknown clock is one line."""
    import itertools
    import types

    from genlab.train import trainer

    wall, cpu = itertools.count(), itertools.count()
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: float(next(wall)),
                                                               process_time=lambda: 0.5 * next(cpu)))
    train_data, _ = small_data
    train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=5, batch_size=50, snapshot_every=-1,
          progress=False, clock="cpu", max_minutes=5 / 60)
    assert [(r["epoch"], r["step"], r["time_s"]) for r in metrics(tmp_path)] == [(1, 8, 4.0), (2, 10, 1.0)]
    with pytest.raises(GenlabError, match="unknown clock 'gpu'; choose one of: wall, cpu"):
        TrainConfig(clock="gpu")


class TwoPlayer(GenerativeModel):
    """A toy model trained by turns with two optimizers, as adversarial models are."""

    family = "two-player"

    def __init__(self, config, name=None):
        super().__init__(config, name)
        self.a = torch.nn.Linear(64, 4)
        self.b = torch.nn.Linear(4, 64)

    def optimizer_groups(self):
        return {"a": OptimizerGroup(list(self.a.parameters())),
                "b": OptimizerGroup(list(self.b.parameters()), lr_scale=2.0, betas=(0.5, 0.9))}

    def objective(self, name, batch, step):
        # alternate: each network takes its own step on the same batch, with noise drawn once per step
        if "noise" not in batch.scratch:
            batch.scratch["noise"] = batch.randn(4) * 0.1
        x = batch.images.flatten(1)
        loss = (self.b(self.a(x) + batch.scratch["noise"]) - x).pow(2).sum(1).mean()
        terms = {f"loss_{name}": loss.detach()}
        if name == "b":
            terms["loss"] = loss.detach()
        return loss, terms


def test_models_with_several_optimizers_resume_exactly(small_data, tmp_path):
    from genlab.models import ModelConfig

    train_data, _ = small_data
    torch.manual_seed(0)
    full = TwoPlayer(ModelConfig(image_shape=(1, 8, 8)))
    train(full, train_data, None, out_dir=tmp_path / "full", epochs=3, batch_size=50, progress=False)
    torch.manual_seed(0)
    part = TwoPlayer(ModelConfig(image_shape=(1, 8, 8)))
    train(part, train_data, None, out_dir=tmp_path / "part", epochs=1, batch_size=50, progress=False)
    resumed = TwoPlayer(ModelConfig(image_shape=(1, 8, 8)))
    train(resumed, train_data, None, out_dir=tmp_path / "part", epochs=3, batch_size=50, progress=False,
          resume=True)
    records = without_time(metrics(tmp_path / "full"))
    assert records == without_time(metrics(tmp_path / "part"))
    assert records[-1]["train/loss_a"] < records[0]["train/loss_a"]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_snapshots_show_progress_from_a_fixed_z(small_data, tmp_path):
    from PIL import Image

    train_data, test_data = small_data
    model = vae(train_data)
    train(model, train_data, test_data, out_dir=tmp_path, epochs=3, batch_size=50, progress=False,
          snapshot_budget=1)
    frames = sorted((tmp_path / "snapshots").glob("step-*.png"))
    assert [f.name for f in frames] == ["step-0000008.png", "step-0000016.png", "step-0000024.png"]
    assert Image.open(tmp_path / "snapshots" / "progress.gif").n_frames == 3
    # The last frame shows the final model's samples from the seeded z.
    from genlab.viz import make_grid

    model.eval()
    expected = make_grid(model.sample(64, generator=torch.Generator().manual_seed(0)), nrow=8,
                         scale=7)  # auto_scale for 8x8 images
    assert Image.open(frames[-1]).tobytes() == expected.tobytes()
    # Autoencoders have no prior: their snapshots are reconstructions; -1 turns snapshots off.
    ae = build_model("ae", image_shape=(1, 8, 8), hidden=(32,), latent_dim=4)
    train(ae, train_data, test_data, out_dir=tmp_path / "ae", epochs=1, batch_size=50, progress=False)
    assert len(list((tmp_path / "ae" / "snapshots").glob("*.png"))) == 1
    train(ae, train_data, None, out_dir=tmp_path / "off", epochs=1, progress=False, snapshot_every=-1)
    assert not (tmp_path / "off" / "snapshots").exists()


def one_second_per_clock_reading(monkeypatch):
    """The trainer's clock ticks one second per reading: a step takes one second, and so does a
    snapshot (read before and after)."""
    import itertools
    import types

    from genlab.train import trainer

    clock = itertools.count()
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))


def test_snapshots_at_epoch_ends_take_at_most_their_budget_of_the_time(small_data, tmp_path, monkeypatch):
    """Epochs of 4 one-second steps and snapshots of one second with a budget of 0.2: a snapshot
    once 5 s of training have passed since the last, and always one of the final model."""
    one_second_per_clock_reading(monkeypatch)
    train_data, _ = small_data
    train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=6, batch_size=100, progress=False,
          snapshot_budget=0.2)
    frames = sorted(f.name for f in (tmp_path / "snapshots").glob("step-*.png"))
    assert frames == ["step-0000004.png", "step-0000012.png", "step-0000020.png", "step-0000024.png"]


def test_a_run_killed_after_a_checkpoint_on_the_clock_mid_epoch_resumes_exactly(small_data, tmp_path, monkeypatch):
    """With one-second steps and ``checkpoint_minutes`` of 5 s, checkpoints fall at steps 5 and 10,
    within epochs of 8 steps and not at their ends; a run that dies at step 12 without a word
    (no checkpoint on the way out) resumes from step 10 to the weights of a run never stopped."""
    from genlab.train import trainer

    one_second_per_clock_reading(monkeypatch)
    train_data, test_data = small_data
    settings = dict(epochs=2, batch_size=50, progress=False, snapshot_every=-1, checkpoint_minutes=5 / 60)
    torch.manual_seed(0)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "full", **settings)

    original = Trainer._step

    def killed_at_step_12(self, optimizers, index, step, *args):
        if step == 11:
            raise SystemExit("killed")
        return original(self, optimizers, index, step, *args)

    monkeypatch.setattr(Trainer, "_step", killed_at_step_12)
    saved = []
    monkeypatch.setattr(trainer, "save_checkpoint", lambda *a: (saved.append(a[-1]["step"]), save_checkpoint(*a)))
    torch.manual_seed(0)
    with pytest.raises(SystemExit):
        train(vae(train_data), train_data, test_data, out_dir=tmp_path / "cut", **settings)
    state = json.loads((tmp_path / "cut" / STATE_FILE).read_text())
    assert saved == [5, 10] and (state["epoch"], state["batch"], state["step"]) == (1, 2, 10)
    monkeypatch.setattr(Trainer, "_step", original)
    torch.manual_seed(123)
    train(None, train_data, test_data, out_dir=tmp_path / "cut", resume=True, progress=False)
    assert without_time(metrics(tmp_path / "full")) == without_time(metrics(tmp_path / "cut"))
    assert saved == [5, 10, 15, 16]   # on the clock, and at the end
    full, resumed = load_run(tmp_path / "full").model.state_dict(), load_run(tmp_path / "cut").model.state_dict()
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_a_nan_before_the_first_checkpoint_says_none_was_written(small_data, tmp_path, monkeypatch):
    train_data, _ = small_data
    model = vae(train_data)
    original = type(model).loss

    def nan(self, *args, **kwargs):
        terms = original(self, *args, **kwargs)
        terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(type(model), "loss", nan)
    with pytest.raises(GenlabError, match="became nan at step 1; training stopped and no checkpoint was written yet"):
        train(model, train_data, None, out_dir=tmp_path / "run", epochs=1, batch_size=50, progress=False)


def test_resume_of_a_folder_that_does_not_exist_creates_nothing(tmp_path):
    from genlab.cli import main

    missing = tmp_path / "nothing-here"
    assert main(["train", "vae", "--resume", "--out", str(missing), "--quiet"]) == 2
    assert not missing.exists()
    with pytest.raises(GenlabError, match="nothing to resume"):
        train("vae", "digits", out_dir=missing, resume=True, progress=False)
    assert not missing.exists()
