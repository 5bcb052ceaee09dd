"""What a run says while it trains: a line per epoch with its losses, time and ETA, a line now and
then within an epoch when the output is a log file, callbacks, and TensorBoard scalars."""
import json

import pytest

from genlab.train import report, train
from genlab.train.report import duration, epoch_line

SMALL = dict(model_settings={"hidden": (16,), "latent_dim": 2}, batch_size=100, snapshot_every=-1)


@pytest.mark.parametrize("seconds, text", [(3.25, "3.2 s"), (42, "42 s"), (185, "3 min 05 s"),
                                           (7800, "2 h 10 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


def test_the_epoch_line_shows_the_losses_time_and_eta():
    record = {"epoch": 3, "step": 30, "time_s": 18.2, "train/loss": 102.44, "train/neg_elbo": 102.44,
              "train/kl": 12.31, "train/recon": 90.13, "val/loss": 104.2}
    line = epoch_line(record, 20, 54.6, 17 * 18.2)
    assert line == "epoch 3/20  loss 102.4  recon 90.13  kl 12.31  val loss 104.2  18 s  ETA 5 min 09 s"
    assert epoch_line({**record, "epoch": 20}, 20, 364.0, 0).endswith("done in 6 min 04 s")


def test_a_run_prints_a_line_per_epoch_and_calls_back(digits_train, digits_test, tmp_path, capsys):
    records = []
    train("vae", digits_train.subset(slice(0, 300)), digits_test.subset(slice(0, 100)), out_dir=tmp_path / "r",
          epochs=3, callbacks=[records.append], **SMALL)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "ETA" in lines[0] and "done in" in lines[2] and "val loss" in lines[0]
    logged = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert records == logged


def test_a_log_file_gets_a_line_within_long_epochs(digits_train, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "LOG_EVERY_S", 0.0)
    train("vae", digits_train.subset(slice(0, 300)), out_dir=tmp_path / "r", epochs=1, **SMALL)
    lines = capsys.readouterr().out.splitlines()   # captured output is not a terminal
    assert lines[0].startswith("epoch 1/1  step 1/3  loss ") and "epoch ETA" in lines[0]
    assert lines[-1].startswith("epoch 1/1  loss ")


def test_quiet_runs_print_nothing(digits_train, tmp_path, capsys):
    train("vae", digits_train.subset(slice(0, 300)), out_dir=tmp_path / "r", epochs=1, progress=False, **SMALL)
    assert capsys.readouterr().out == ""


def test_tensorboard_scalars(digits_train, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train("vae", digits_train.subset(slice(0, 300)), out_dir=tmp_path / "r", epochs=2, tensorboard=True,
          progress=False, **SMALL)
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    losses = events.Scalars("train/loss")
    logged = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in losses] == [r["step"] for r in logged]
    assert [e.value for e in losses] == pytest.approx([r["train/loss"] for r in logged], rel=1e-6)


def test_train_tells_where_it_wrote_and_load_reads_it(digits_train, tmp_path, monkeypatch):
    """A second run of the same name goes to a fresh folder, and the model says which."""
    import genlab

    monkeypatch.chdir(tmp_path)
    first = genlab.train("vae", digits_train.subset(slice(0, 200)), epochs=1, progress=False, **SMALL)
    second = genlab.train("vae", digits_train.subset(slice(0, 200)), epochs=1, progress=False, **SMALL)
    assert first.run_dir != second.run_dir and second.run_dir.name == first.run_dir.name + "-2"
    run = genlab.load(second.run_dir)
    assert run.path == second.run_dir and run.model.run_dir == second.run_dir


def test_train_refuses_what_is_not_a_model_or_data_in_one_line():
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError, match="`model` must be a model name"):
        train(123, "digits")
    with pytest.raises(GenlabError, match="`data` must be a dataset name"):
        train("vae", 3.5)
