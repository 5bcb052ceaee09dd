"""Shared fixtures: small datasets that make models learn in seconds on 2 CPU cores."""
import pytest
import torch

from genlab.data import load_dataset


@pytest.fixture(scope="session")
def digits_train():
    return load_dataset("digits", "train")


@pytest.fixture(scope="session")
def digits_test():
    return load_dataset("digits", "test")


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests use tiny models: one thread is fastest, and immune to a busy machine.
    torch.set_num_threads(1)
    yield
