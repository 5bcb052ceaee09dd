"""The trainer's thread count on the CPU: fewer threads when other processes keep cores busy."""
import os

import pytest
import torch

import genlab
from genlab.errors import GenlabError
from genlab.train.trainer import TrainConfig, cpu_threads


@pytest.fixture
def two_cores(monkeypatch):
    """A 2-core machine whose PyTorch runs 2 threads, with no OMP_NUM_THREADS chosen."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_auto_keeps_the_threads_on_quiet_cores(two_cores):
    assert cpu_threads(0, busy=0.3) == (2, None)


def test_auto_leaves_a_busy_core_to_its_process_and_says_so(two_cores):
    threads, why = cpu_threads(0, busy=1.0)
    assert threads == 1
    assert "1 CPU thread of 2" in why and "1.0 of the 2 cores busy" in why and "--threads" in why
    assert cpu_threads(0, busy=7.5)[0] == 1          # never fewer than one


def test_a_chosen_count_and_omp_num_threads_are_kept(two_cores, monkeypatch):
    assert cpu_threads(2, busy=1.0) == (2, None)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu_threads(0, busy=1.0) == (2, None)


def test_the_run_takes_its_threads_and_gives_them_back(two_cores, digits_train, tmp_path):
    seen = []
    model = genlab.build_model("vae", image_shape=digits_train.image_shape, hidden=(16,), latent_dim=2)
    genlab.train(model, digits_train, None, out_dir=tmp_path / "run", epochs=1, batch_size=256, threads=1,
                 progress=False, callbacks=[lambda record: seen.append(torch.get_num_threads())])
    assert seen == [1] and torch.get_num_threads() == 2
    with pytest.raises(GenlabError, match="threads"):
        TrainConfig(threads=-1)
