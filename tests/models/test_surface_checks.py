"""The checks of the common model surface, which every family gets from ``GenerativeModel``:
counts of samples, labels a model has no use for, images of any type, the memory a call or a
model's settings would take, and paths and devices given to ``load_run``. On the committed
fixture run folders (nothing is trained), each in one clear line."""
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.devices import check_device
from genlab.errors import GenlabError
from genlab.models.base import NotSupported
from genlab.registry import build_model, load_model

FIXTURES = Path(__file__).parents[1] / "fixtures" / "runs-4f1b47e"
WITH_A_PRIOR = ["pca", "conv-vae", "dcgan", "cdiffusion", "porous-gan"]


def one_line(err) -> str:
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def models():
    return {name: load_model(FIXTURES / name) for name in [*WITH_A_PRIOR, "conv-ae", "compress"]}


@pytest.mark.parametrize("name", WITH_A_PRIOR)
@pytest.mark.parametrize("n, words", [(-1, "at least 1"), (0, "at least 1"), (2.5, "whole number"),
                                      (True, "whole number"), ("4", "whole number")])
def test_a_count_of_samples_is_a_whole_number_of_at_least_one(models, name, n, words):
    with pytest.raises(GenlabError, match=r"`n` \(the number of samples\)") as err:
        models[name].sample(n)
    assert words in one_line(err)


@pytest.mark.parametrize("name", WITH_A_PRIOR)
def test_samples_that_would_not_fit_in_memory_are_refused_before_drawing(models, name, monkeypatch):
    import genlab.models.base as base

    model = models[name]
    per_sample = 4 * model.config.num_pixels
    monkeypatch.setattr(base, "free_bytes", lambda device: 10 * per_sample)
    monkeypatch.setattr(base, "_SMALL_BYTES", 0)   # ask for the free memory whatever the size
    with pytest.raises(GenlabError, match=r"11 samples of .* GiB, more than the .* GiB of memory left") as err:
        model.sample(11)
    assert "draw fewer at a time" in one_line(err)
    assert model.sample(np.int64(2), generator=torch.Generator().manual_seed(0)).shape[0] == 2   # any integer type


def test_a_sample_that_runs_out_of_memory_is_one_line(models, monkeypatch):
    model = models["conv-vae"]

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: ...")
    monkeypatch.setattr(model, "prior_noise", no_memory)
    with pytest.raises(GenlabError, match="drawing 3 samples ran out of memory") as err:
        model.sample(3)
    one_line(err)


@pytest.mark.parametrize("name", ["pca", "conv-vae", "dcgan", "porous-gan"])
def test_labels_given_to_a_model_without_classes_are_refused(models, name):
    with pytest.raises(NotSupported, match="not class-conditional: it takes no labels") as err:
        models[name].sample(2, labels=torch.tensor([1, 2]))
    one_line(err)
    assert models["cdiffusion"].sample(2, labels=torch.tensor([1, 2])).shape[0] == 2   # a conditional one takes them


def test_a_generator_must_be_a_torch_generator(models):
    with pytest.raises(GenlabError, match="`generator` must be a torch.Generator"):
        models["conv-vae"].sample(2, generator=0)


def test_a_model_without_a_prior_says_so_whatever_the_count(models):
    for name in ("conv-ae", "compress"):
        with pytest.raises(NotSupported, match="no prior"):
            models[name].sample(-1)


@pytest.mark.parametrize("name", ["pca", "conv-vae", "conv-ae", "compress"])
def test_images_of_any_real_type_are_taken_as_the_models_floats(models, name):
    model = models[name]
    pixels = torch.randint(0, 256, (3, *model.config.image_shape), generator=torch.Generator().manual_seed(0))
    as_floats = pixels.float() / 255
    expected = model.reconstruct(as_floats)
    assert torch.allclose(model.reconstruct(pixels.to(torch.uint8)), expected)    # uint8: 0..255
    assert torch.allclose(model.reconstruct(as_floats.double()), expected, atol=1e-6)
    assert torch.allclose(model.reconstruct(as_floats.numpy()), expected)
    with pytest.raises(GenlabError, match="images must be floats in .0, 1. or uint8 pixels") as err:
        model.reconstruct(pixels)   # int64: 0..1 or 0..255? refused rather than guessed
    one_line(err)
    with pytest.raises(GenlabError, match="images must be a tensor"):
        model.reconstruct(as_floats.tolist())
    if model.capabilities.encoder:
        assert torch.allclose(model.encode(pixels.to(torch.uint8)), model.encode(as_floats))


def test_codes_of_any_real_type_are_decoded(models):
    model = models["conv-vae"]
    z = torch.zeros(2, model.latent_dim)
    assert torch.equal(model.decode(z.long()), model.decode(z))
    assert torch.allclose(model.decode(z.double().numpy()), model.decode(z))
    with pytest.raises(GenlabError, match="latent codes must be real numbers"):
        model.decode(z.to(torch.complex64))


@pytest.mark.parametrize("path", [None, 3, ""])
def test_a_run_path_that_is_not_a_path_is_one_line(path):
    for load in (genlab.load_run, genlab.load_model):
        with pytest.raises(GenlabError, match="give the path of a") as err:
            load(path)
        one_line(err)


@pytest.mark.parametrize("device", ["meta", "mps", "xla", "cuda:99"])
def test_a_device_this_machine_lacks_is_one_line(device):
    if device == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("this machine has 100 GPUs")
    with pytest.raises(GenlabError, match="cpu") as err:
        check_device(device)
    assert device.partition(":")[0] in one_line(err) or "CUDA" in str(err.value)
    with pytest.raises(GenlabError, match="`map_location"):
        genlab.load_run(FIXTURES / "conv-vae", map_location=device)


def test_the_devices_this_machine_has_are_taken():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GenlabError, match="unknown device 'gpu0'"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(GenlabError, match="sees no CUDA GPU"):
            check_device("cuda")


def test_a_model_whose_weights_would_not_fit_in_memory_is_refused_before_it_is_built(monkeypatch):
    """Built on the meta device first: 2 billion latent dimensions cost no memory to refuse, and
    the message names the setting that makes the model so large."""
    import genlab.memory as memory

    with pytest.raises(GenlabError, match=r"GiB of weights \(set by `latent_dim=2000000000`\)") as err:
        build_model("vae", image_shape=(1, 8, 8), latent_dim=2_000_000_000)
    one_line(err)
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000)
    with pytest.raises(GenlabError, match=r"more than the 0.0 GiB of memory left") as err:
        build_model("vae", image_shape=(1, 8, 8))
    assert "set by" not in one_line(err)   # the presets alone do not fit: no setting to blame
    monkeypatch.setattr(memory, "available_bytes", lambda: None)   # not known: no check
    assert build_model("vae", image_shape=(1, 8, 8), hidden=(8,), latent_dim=2).latent_dim == 2
