"""Data-parallel training: 2 CPU processes under torchrun (gloo) train the same run as 1 process at
the same global batch, up to the order of floating-point sums, and a 2-process run resumes in 1.
Each 2-process run starts three Python processes (the launcher's torchrun and its two workers),
so the tests start as few as they can."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from genlab.cli import main
from genlab.train import load_run

SETTINGS = {  # small, quick versions of a VAE (batch norm in its MLP), a DCGAN (batch norm in G), a U-Net
    "vae": ["--hidden", "64,32", "--latent-dim", "4"],
    "dcgan": ["--channels", "8", "--no-channels-last"],
    "dcgan-channels-last": ["--channels", "8", "--channels-last"],
    "diffusion": ["--channels", "8", "--set", "timesteps=100"],
}


def run(tmp_path, name, case, *extra):
    # fp32: bf16 autocast (the GANs' and diffusion's default where the CPU has it) rounds each
    # process's half-batch differently, beyond what "up to the order of sums" means here. The
    # multi-tensor AdamW, as data-parallel runs take it: the fused kernel rounds differently (a
    # GAN's losses then differed by 3e-5 after an epoch on an AVX2 CPU).
    out = tmp_path / name
    argv = ["train", case.split("-")[0], "--data", "digits", "--batch-size", "64", "--quiet", "--out", str(out),
            "--precision", "fp32", "--set", "snapshot_every=-1", "--set", "fused_optimizer=false",
            *SETTINGS[case], *extra]
    assert main(argv) == 0
    return out


def records(out):
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def outputs(out):
    """What the trained model makes: reconstructions of test images, or samples from a fixed seed."""
    run = load_run(out)
    with torch.no_grad():
        if run.model.capabilities.encoder:
            return run.model.reconstruct(run.dataset("test").tensors(slice(0, 16))[0])
        return run.model.sample(16, generator=torch.Generator().manual_seed(0))


def assert_same_run(a, b, rel=1e-5):
    """The same training losses, the same validation losses and model outputs up to rounding.

    Not the same raw weights: a bias just before a batch norm has a gradient of zero plus rounding
    noise, which Adam turns into steps of a size set by the learning rate. The training outputs do
    not depend on it, but the batch norm's running mean (used in eval mode) follows it with a lag,
    so validation losses agree to about 1e-3 nats rather than 1e-8. ``rel``: of the training losses."""
    ra, rb = records(a), records(b)
    assert [sorted(r) for r in ra] == [sorted(r) for r in rb]
    for x, y in zip(ra, rb):
        for key in x:
            close = dict(rel=1e-3, abs=1e-3) if key.startswith("val/") else dict(rel=rel, abs=1e-6)
            assert x[key] == pytest.approx(y[key], **close), key
    torch.testing.assert_close(outputs(a), outputs(b), rtol=0, atol=5e-3)


@pytest.mark.parametrize("case", list(SETTINGS))
def test_two_processes_train_the_same_run_as_one(tmp_path, case):
    one = run(tmp_path, "one", case, "--epochs", "1")
    two = run(tmp_path, "two", case, "--epochs", "1", "--nproc", "2")
    # Channels-last kernels split a half-batch's sums otherwise than the whole batch's, and GAN
    # training grows such rounding (3e-5 after an epoch on an AVX2 CPU); a wrong step is far more.
    assert_same_run(one, two, rel=2e-4 if case.endswith("channels-last") else 1e-5)
    config = json.loads((two / "config.json").read_text())
    assert config["train"]["batch_size"] == 64 and "nproc" not in config["train"]
    if case == "vae":  # a two-process run resumes in one process, as the one-process run does
        for out in (one, two):
            run(tmp_path, out.name, case, "--epochs", "2", "--resume")
        assert len(records(two)) == 2
        assert_same_run(one, two)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path, capfd):
    assert main(["train", "vae", "--data", "digits", "--batch-size", "63", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "odd"), "--nproc", "2", *SETTINGS["vae"]]) == 2
    assert "does not split evenly over 2 processes" in capfd.readouterr().err


def _processes_naming(text):
    """The pids of the processes whose command line holds ``text`` (Linux's /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the run's processes in /proc")
def test_sigterm_to_the_launcher_stops_torchrun_and_its_workers(tmp_path):
    """A scheduler's SIGTERM to `genlab train --nproc 2` reaches torchrun and both workers: they stop
    at the same step, write one checkpoint, and nothing of the run is left to race a resume."""
    from filelock import FileLock

    from genlab.runs import LOCK_FILE, read_state

    out = tmp_path / "preempted"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "genlab", "train", "vae", "--data", "digits", "--batch-size", "64", "--quiet",
         "--epochs", "1000", "--out", str(out), "--nproc", "2", "--set", "snapshot_every=-1", *SETTINGS["vae"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().strip()):
            assert launcher.poll() is None, launcher.communicate()
            assert time.monotonic() < deadline, "the run did not finish an epoch"
            time.sleep(0.1)
        run = [pid for pid in _processes_naming(str(out)) if pid != launcher.pid]
        assert len(run) >= 3  # torchrun and its two workers
        launcher.send_signal(signal.SIGTERM)
        _, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert "stopped by SIGTERM at step" in err, err
    assert not [pid for pid in run if _alive(pid)]
    FileLock(str(out / LOCK_FILE), timeout=0).acquire()  # no process holds the run folder
    step = int(re.search(r"stopped by SIGTERM at step (\d+)", err).group(1))
    assert read_state(out)["step"] == step and not read_state(out)["done"]  # the step both stopped at
