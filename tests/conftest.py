"""Shared fixtures: small datasets that make models learn in seconds on 2 CPU cores."""
import contextlib
import os

import pytest
import torch

from genlab.data import load_dataset
from genlab.metrics import features


#: the threads of the longer trainings: two wherever the machine has them, so that they train the
#: same run on any machine
TWO_THREADS = min(2, os.cpu_count() or 1)
# The commands the tests start (genlab train ..., its torchrun processes) run one thread each, and
# the trainer's thread count does not follow the machine's load (threads=0 keeps an explicit
# OMP_NUM_THREADS): the same run whatever else the machine runs.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_train():
    return load_dataset("digits", "train")


@pytest.fixture(scope="session")
def digits_test():
    return load_dataset("digits", "test")


@pytest.fixture(scope="session", autouse=True)
def _classifier_cache(tmp_path_factory):
    """One cache of feature classifiers for the whole session, outside the user's home: each
    dataset's classifier (tens of seconds on 28x28 images) is trained once, by the first test that
    measures samples of it. Tests of the cache itself set their own folder.

    Each classifier trains on two threads (where the machine has them) whichever test asks first,
    so that what it measures does not depend on which tests run, or in which order."""
    train = features.train_classifier

    def on_two_threads(*args, **kwargs):
        with _threads(TWO_THREADS):
            return train(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(tmp_path_factory.getbasetemp() / "classifier-cache"))
        mp.setattr(features, "train_classifier", on_two_threads)
        yield


@pytest.fixture(scope="session")
def two_threads():
    """A context for the long trainings of module fixtures (convolutional models of 28x28 images
    and more), which two threads (TWO_THREADS) run faster than the tests' one."""
    return lambda: _threads(TWO_THREADS)


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests use tiny models: one thread is fastest, and immune to a busy machine.
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def mnist_dir():
    """A folder holding mnist/ (the four IDX files): $GENLAB_TEST_DATA, else ../shared/datasets
    beside the repository; tests that need it are skipped when there is none."""
    import os
    from pathlib import Path

    root = Path(os.environ.get("GENLAB_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    if not (root / "mnist").is_dir():
        pytest.skip("real MNIST not available (set GENLAB_TEST_DATA to a folder holding mnist/)")
    return root
