"""Interrupted, preempted and concurrent runs: SIGTERM and SIGHUP stop a run as Ctrl-C does, one
process at a time trains into a run folder, a resumed run keeps its data and settings, and a run
goes only where nothing of anyone else's lies."""
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.runs import STATE_FILE, default_run_dir, locked
from genlab.train import train

#: a small, fast run of the command line (a dense VAE, no snapshots)
SMALL = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "100", "--snapshot-every", "-1", "--quiet"]


def vae(data):
    return build_model("conv-vae", image_shape=data.image_shape, channels=(8, 16), latent_dim=4)


def metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def weights(run_dir):
    from safetensors.torch import load_file

    return load_file(str(Path(run_dir) / "model.safetensors"))


@pytest.fixture(scope="module")
def small_data(digits_train, digits_test):
    return digits_train.subset(slice(0, 400)), digits_test.subset(slice(0, 100))


@pytest.fixture
def signals_restored():
    """The test process's own handlers of the stop signals, whatever a test does to them."""
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    previous = {name: signal.getsignal(getattr(signal, name)) for name in names}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # As a shell gives them, whatever the test runner inherited (nohup ignores SIGHUP, and a run
    # leaves a signal it finds ignored alone).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for name, handler in previous.items():
        signal.signal(getattr(signal, name), handler)


def test_sigterm_and_sighup_let_the_step_finish_and_resume_exactly(small_data, tmp_path, monkeypatch,
                                                                   signals_restored):
    train_data, test_data = small_data
    torch.manual_seed(0)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "full", epochs=2, batch_size=50,
          progress=False)
    original = type(vae(train_data)).loss
    for signum in (signal.SIGTERM, signal.SIGHUP):
        calls = {"n": 0}

        def signal_in_the_forward_pass_of_step_11(self, *args, **kwargs):
            terms = original(self, *args, **kwargs)
            if self.training:
                calls["n"] += 1
                if calls["n"] == 11:
                    os.kill(os.getpid(), signum)
            return terms

        monkeypatch.setattr(type(vae(train_data)), "loss", signal_in_the_forward_pass_of_step_11)
        out = tmp_path / signal.Signals(signum).name
        torch.manual_seed(0)
        with pytest.raises(GenlabError, match=f"stopped by {signal.Signals(signum).name} at step 11; continue it "
                                              "with `resume=True`"):
            train(vae(train_data), train_data, test_data, out_dir=out, epochs=2, batch_size=50, progress=False)
        state = json.loads((out / STATE_FILE).read_text())
        assert (state["epoch"], state["batch"], state["step"]) == (1, 3, 11)
        monkeypatch.setattr(type(vae(train_data)), "loss", original)
        train(None, train_data, test_data, out_dir=out, progress=False, resume=True)
        assert metrics(tmp_path / "full") == metrics(out)
        full, resumed = weights(tmp_path / "full"), weights(out)
        assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # the handlers are given back


def test_max_steps_stops_mid_epoch_and_a_resumed_run_goes_on_as_if_it_had_not_stopped(small_data, tmp_path,
                                                                                     capsys):
    """8 steps an epoch: stopped at step 5 (mid-epoch), then at 8 (an epoch end), then run to the
    end without a limit; the metrics and weights are those of one uninterrupted run."""
    train_data, test_data = small_data
    torch.manual_seed(0)
    train(vae(train_data), train_data, test_data, out_dir=tmp_path / "full", epochs=2, batch_size=50,
          progress=False)
    out = tmp_path / "steps"
    torch.manual_seed(0)
    train(vae(train_data), train_data, test_data, out_dir=out, epochs=2, batch_size=50, max_steps=5, progress=False)
    state = json.loads((out / STATE_FILE).read_text())
    assert (state["epoch"], state["batch"], state["step"], state["done"]) == (0, 5, 5, False)
    assert not (out / "metrics.jsonl").exists() or not metrics(out)   # no epoch has ended
    train(None, train_data, test_data, out_dir=out, resume=True, max_steps=8, progress=False)
    state = json.loads((out / STATE_FILE).read_text())
    assert (state["epoch"], state["batch"], state["step"], state["done"]) == (1, 0, 8, False)
    assert metrics(out) == metrics(tmp_path / "full")[:1]
    # the command line: a run at its max_steps has nothing to do, and says how to go on
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    assert "has taken its 8 steps (max_steps) already" in capsys.readouterr().out
    train(None, train_data, test_data, out_dir=out, resume=True, max_steps=0, progress=False)
    assert metrics(out) == metrics(tmp_path / "full")
    full, resumed = weights(tmp_path / "full"), weights(out)
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_genlab_train_max_steps_says_where_it_stopped_and_how_to_go_on(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", "digits", "--max-steps", "3", "--out", str(out), *SMALL]) == 0
    line = capsys.readouterr().out
    assert "for 3 steps (max_steps) and stopped" in line and f"--resume --out {out} --max-steps N" in line
    assert json.loads((out / STATE_FILE).read_text())["step"] == 3


def _train_slowly(argv: list[str], stderr: Path) -> None:
    """``genlab ARGV`` in a forked process (no imports to pay again), each step slowed down so
    that a signal comes while it trains, its stderr to a file; exits with its exit status."""
    from genlab.train import trainer

    with open(stderr, "w") as f:
        os.dup2(f.fileno(), 2)
    step = trainer._train_on_parts
    trainer._train_on_parts = lambda *a, **k: (time.sleep(0.1), step(*a, **k))[1]
    sys.stderr = open(2, "w", closefd=False)
    code = main(argv)
    sys.stderr.flush()
    os._exit(code)


def test_sigterm_to_genlab_train_checkpoints_and_resume_gives_the_uninterrupted_weights(tmp_path):
    """A scheduler's preemption: SIGTERM to a `genlab train` process after its first checkpoint;
    one line says how to resume, and the resumed run ends with the weights of one never stopped."""
    import multiprocessing

    out = tmp_path / "cut"
    argv = ["train", "vae", "--out", str(out), "--epochs", "2", "--checkpoint-every", "2", *SMALL]
    process = multiprocessing.get_context("fork").Process(target=_train_slowly, args=(argv, tmp_path / "err"))
    process.start()
    deadline = time.monotonic() + 60
    while not (out / STATE_FILE).exists() and process.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGTERM)
    process.join(60)
    step = json.loads((out / STATE_FILE).read_text())["step"]
    assert process.exitcode == 2 and 2 <= step < 28
    assert (tmp_path / "err").read_text().strip().splitlines() == [
        f"genlab: error: stopped by SIGTERM at step {step}; continue it with --resume --out {out}"]

    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    assert main(["train", "vae", "--out", str(tmp_path / "full"), "--epochs", "2", "--checkpoint-every", "2",
                 *SMALL]) == 0
    full, resumed = weights(tmp_path / "full"), weights(out)
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert metrics(tmp_path / "full") == metrics(out)


def test_a_second_process_on_the_same_run_folder_gets_one_line_naming_the_first(small_data, tmp_path, capsys):
    train_data, _ = small_data
    with locked(tmp_path / "run"):
        with pytest.raises(GenlabError, match=rf"is being written by another genlab run \(pid {os.getpid()} on "):
            train(vae(train_data), train_data, None, out_dir=tmp_path / "run", epochs=1, batch_size=100,
                  progress=False)
        assert main(["train", "vae", "--out", str(tmp_path / "run"), "--epochs", "1", *SMALL]) == 2
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock"]   # nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "being written by another genlab run" in err[0] and "choose another --out" in err[0]
    train(vae(train_data), train_data, None, out_dir=tmp_path / "run", epochs=1, batch_size=100, progress=False)


def test_resume_takes_the_data_model_and_settings_of_the_run(tmp_path, capsys):
    images = (np.random.default_rng(0).random((150, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=images, y=np.arange(150) % 10)
    out = tmp_path / "r"
    data = f"npz:{tmp_path / 'd.npz'}"
    assert main(["train", "vae", "--data", data, "--out", str(out), "--epochs", "1", *SMALL]) == 0
    assert main(["train", "vae", "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["name"] == data and config["data"]["train_size"] < len(images)   # not digits
    assert config["model"]["hidden"] in (16, [16]) and config["train"]["epochs"] == 2
    assert [r["epoch"] for r in metrics(out)] == [1, 2]
    assert main(["train", "conv-vae", "--out", str(out), "--resume", "--epochs", "3", "--quiet"]) == 2
    assert "holds a 'vae' model, not 'conv-vae'" in capsys.readouterr().err

    # Fewer epochs than trained: one line, and the run is left as it was; as many: nothing to do.
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["train", "--out", str(out), "--resume", "--epochs", "1", "--quiet"]) == 2
    assert "has trained 2 epochs already (step 2), past --epochs 1" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
    assert "finished its 2 epochs already; nothing to do" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(["train", "--resume", "--quiet"]) == 2
    assert "name the MODEL to train, or the run to continue with --resume --out RUN" in capsys.readouterr().err


def test_a_run_stopped_mid_epoch_resumes_only_with_its_batch_size(small_data, tmp_path, monkeypatch):
    train_data, _ = small_data
    from genlab.train import Trainer

    original = Trainer._step

    def interrupt_at_step_3(self, optimizers, index, step, *args):
        if step == 2:
            raise KeyboardInterrupt
        return original(self, optimizers, index, step, *args)

    monkeypatch.setattr(Trainer, "_step", interrupt_at_step_3)
    with pytest.raises(GenlabError, match="interrupted at step 2"):
        train(vae(train_data), train_data, None, out_dir=tmp_path, epochs=1, batch_size=50, progress=False)
    monkeypatch.setattr(Trainer, "_step", original)
    with pytest.raises(GenlabError, match="stopped in the middle of an epoch of batches of 50; resume it with "
                                          "`batch_size=50`"):
        train("conv-vae", train_data, None, out_dir=tmp_path, batch_size=100, progress=False, resume=True)


def test_resume_without_out_picks_the_latest_run_with_a_checkpoint(tmp_path):
    for name, checkpoint in (("m-d", True), ("m-d-2", True), ("m-d-3", False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        if checkpoint:
            (tmp_path / name / STATE_FILE).write_text("{}")
    assert default_run_dir("m-d", resume=True, root=str(tmp_path)) == tmp_path / "m-d-2"
    assert default_run_dir("m-d", resume=False, root=str(tmp_path)) == tmp_path / "m-d-4"
    assert default_run_dir("x", resume=True, root=str(tmp_path)) == tmp_path / "x"


def test_a_folder_of_someone_elses_files_is_never_trained_into(small_data, tmp_path, capsys):
    train_data, _ = small_data
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"learning_rate": 0.1}')
    (theirs / "metrics.jsonl").write_text("their line\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    (tmp_path / "a-file").write_text("mine")
    for folder, says in ((theirs, "holds files that are not a genlab run's (config.json, metrics.jsonl)"),
                         (tmp_path / "notes", "holds files that are not a genlab run's (notes.txt)"),
                         (tmp_path / "a-file", "is a file, not a folder")):
        assert main(["train", "vae", "--out", str(folder), "--epochs", "1", *SMALL]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert (theirs / "config.json").read_text() == '{"learning_rate": 0.1}'
    assert (theirs / "metrics.jsonl").read_text() == "their line\n"
    assert sorted(p.name for p in theirs.iterdir()) == ["config.json", "metrics.jsonl"]   # no lock file either

    # What a run left before its first checkpoint takes a new run, which logs afresh.
    left = tmp_path / "left"
    train(vae(train_data), train_data, None, out_dir=left, epochs=1, batch_size=100, progress=False)
    (left / STATE_FILE).unlink()
    for name in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
        (left / name).unlink()
    train(vae(train_data), train_data, None, out_dir=left, epochs=1, batch_size=100, progress=False)
    assert [r["epoch"] for r in metrics(left)] == [1]


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "metrics.jsonl", "trainer_state.json"])
def test_a_tool_may_not_write_over_a_file_of_the_run(tmp_path, capsys, name):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / name).write_text("kept")
    assert main(["evaluate", str(run), "--out", str(run / name)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file of the run in" in err[0] and "choose another path for --out" in err[0]
    assert (run / name).read_text() == "kept"


def test_settings_a_data_parallel_run_refuses_are_checked_before_torchrun_starts(tmp_path, capsys, monkeypatch):
    from genlab.train import distributed

    monkeypatch.setattr(distributed, "launch", lambda *a: pytest.fail("torchrun was started"))
    out = tmp_path / "r"
    for argv, says in ((["--batch-size", "7"], "--batch-size 7 does not split evenly over 2 processes"),
                       (["--max-minutes", "1"], "--max-minutes stops each process on its own clock")):
        assert main(["train", "vae", "--nproc", "2", "--out", str(out), "--quiet", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert not out.exists()


def test_a_sigterm_echoed_at_once_is_one_request_but_a_second_ctrl_c_is_not():
    """A scheduler that signals every process of a job reaches a data-parallel worker twice (directly
    and through torchrun): the echo within a second still lets the step finish; a second Ctrl-C
    (a person) stops at once."""
    from genlab.train.trainer import _Interrupts

    flag = _Interrupts()
    flag.press(signal.SIGTERM, None)
    flag.press(signal.SIGTERM, None)
    assert flag() and not flag.forced and flag.stopped(7) == "stopped by SIGTERM at step 7"
    flag.first_at -= 2 * flag.ECHO_S   # a SIGTERM seconds later is a second request
    with pytest.raises(KeyboardInterrupt):
        flag.press(signal.SIGTERM, None)
    assert flag.forced
    flag = _Interrupts()
    flag.press(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        flag.press(signal.SIGINT, None)
