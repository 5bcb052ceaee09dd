"""Latent-space tools on models with a latent input but no encoder (GANs, diffusion): paths between
seeds and saved codes, between-class paths of a conditional GAN, maps of prior draws labelled by a
classifier, and clear errors where a tool needs an encoder."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.latent import decode_codes, grid_codes, manifold_grid, prior_map, require_latent_space, seed_code
from genlab.commands.latent import concept_run, interpolate_run, latent_map_run, prior_path, probe_run
from genlab.registry import build_model
from genlab.models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported
from genlab.train import load_run


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A DCGAN with a 4-d z, one with a 2-d z, and a class-conditional GAN, briefly trained on digits."""
    root = tmp_path_factory.mktemp("gan-runs")
    torch.set_num_threads(1)
    small = ["--set", "channels=8", "--epochs", "1", "--quiet"]
    for name, model, width in (("dcgan", "dcgan", 4), ("dcgan2", "dcgan", 2), ("cgan", "cgan", 4)):
        assert main(["train", model, "--latent-dim", str(width), *small, "--out", str(root / name)]) == 0
    return root


@pytest.fixture()
def cache():
    """The session's feature-classifier cache (conftest), outside the user's home."""
    return Path(os.environ["GENLAB_CACHE"])


@pytest.mark.parametrize("spherical", [False, True])
def test_a_gan_path_between_seeds_starts_and_ends_at_their_images(runs, spherical):
    model = load_run(runs / "dcgan").model
    z, images, name = prior_path(model, "3", "8", steps=7, spherical=spherical)
    za = model.prior_noise(1, torch.Generator().manual_seed(3))
    zb = model.prior_noise(1, torch.Generator().manual_seed(8))
    assert torch.equal(z[0], za[0]) and torch.equal(z[-1], zb[0]) and images.shape == (7, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(images[0], model.decode(za)[0]) and torch.allclose(images[-1], model.decode(zb)[0])
    assert not torch.allclose(images[0], images[-1])
    assert name == "3-8"
    # Slerp moves the norm linearly from |za| to |zb|; the straight line cuts inside (shorter codes).
    expected = torch.linspace(za.norm().item(), zb.norm().item(), 7)
    if spherical:
        assert torch.allclose(z.norm(dim=1), expected, atol=1e-5)
    else:
        assert (z.norm(dim=1)[1:-1] < expected[1:-1] - 1e-4).all()


def test_spherical_path_between_saved_codes_of_equal_norm_keeps_the_norm(runs, tmp_path):
    model = load_run(runs / "dcgan").model
    a, b = np.array([2.0, 0, 0, 0], np.float32), np.array([0, 0, -1.2, 1.6], np.float32)
    np.save(tmp_path / "a.npy", a)
    np.savetxt(tmp_path / "b.txt", b)
    z, images, name = prior_path(model, str(tmp_path / "a.npy"), str(tmp_path / "b.txt"), steps=9, spherical=True)
    assert torch.allclose(z.norm(dim=1), torch.full((9,), 2.0), atol=1e-5)
    assert torch.equal(z[0], torch.from_numpy(a)) and torch.allclose(z[-1], torch.from_numpy(b))
    assert torch.allclose(images, decode_codes(model, z)) and name == "a-b"


def test_a_conditional_gan_interpolates_within_a_class_and_between_classes_with_the_same_z(runs):
    model = load_run(runs / "cgan").model
    za, zb = seed_code(model, 5), seed_code(model, 6)
    with torch.no_grad():
        # Within class 7: every image decoded with label 7, from seed 5's z to seed 6's.
        z, images, name = prior_path(model, "5", "6", steps=5, label=7)
        assert torch.allclose(images, model.decode(z, torch.tensor([7])))
        assert torch.allclose(images[-1], model.decode(zb[None], torch.tensor([7]))[0]) and name == "5-6-class7"
        # Between classes 2 and 9: seed 5's z throughout; the ends are decode(z, 2) and decode(z, 9).
        z, images, name = prior_path(model, "5", steps=6, label=2, to_label=9)
        assert z is None and images.shape == (6, 1, 8, 8) and name == "5-class2-to-9"
        assert torch.allclose(images[0], model.decode(za[None], torch.tensor([2]))[0], atol=1e-6)
        assert torch.allclose(images[-1], model.decode(za[None], torch.tensor([9]))[0], atol=1e-6)
        assert not torch.allclose(images[0], images[-1])


@pytest.mark.parametrize("kwargs, message", [
    ({"end": "6"}, "needs --label L"),
    ({"end": "6", "label": 10}, "--label 10 is out of range: this cgan has classes 0..9"),
    ({"to_label": 3}, "needs --label L (where it starts)"),
    ({"end": "6", "label": 1, "to_label": 3}, "keeps one z"),
    ({}, "give the end of the path"),
    ({"end": "-2", "label": 1}, "non-negative"),
    ({"end": "nosuch.npy", "label": 1}, "neither a seed"),
])
def test_conditional_gan_path_errors(runs, kwargs, message):
    model = load_run(runs / "cgan").model
    with pytest.raises(GenlabError, match=re.escape(message)):
        prior_path(model, "5", **kwargs)


def test_unconditional_gan_refuses_labels(runs):
    model = load_run(runs / "dcgan").model
    with pytest.raises(GenlabError, match="needs a conditional model"):
        prior_path(model, "1", "2", label=3)
    with pytest.raises(GenlabError, match="needs a conditional model"):
        prior_path(model, "1", label=3, to_label=4)


def test_latent_map_of_a_gan_labels_prior_draws_with_the_classifier(runs, cache, tmp_path):
    run = load_run(runs / "dcgan")
    image, info = prior_map(run.model, run.dataset("train"), run.dataset("test"), n=200, seed=1)
    z = info["codes"]
    assert torch.equal(z, run.model.prior_noise(200, torch.Generator().manual_seed(1)))
    # Each point's colour is the class the cached classifier gives the image generated from it.
    from genlab.metrics.features import feature_classifier

    classifier, accuracy = feature_classifier(run.dataset("train"), run.dataset("test"))
    with torch.no_grad():
        expected = classifier(run.model.decode(z)).argmax(1).numpy()
    assert np.array_equal(info["predicted"], expected) and accuracy == info["classifier_accuracy"] > 0.9
    assert (cache / "features" / "digits" / "model.safetensors").exists()
    assert image.size == (560, 480)
    paths = latent_map_run(run, limit=300, out_dir=tmp_path)
    assert paths == [tmp_path / "latent-map.png"] and Image.open(paths[0]).size == (560, 480)


def test_a_2d_gan_also_gets_the_manifold_grid_through_the_gaussian_inverse_cdf(runs, cache, tmp_path):
    run = load_run(runs / "dcgan2")
    paths = latent_map_run(run, limit=200, grid=5, out_dir=tmp_path)
    assert [p.name for p in paths] == ["latent-map.png", "manifold-grid.png"]
    assert torch.allclose(manifold_grid(run.model, 5), decode_codes(run.model, grid_codes(5, gaussian=True)))


def test_concept_and_probe_need_an_encoder(runs):
    run = load_run(runs / "dcgan")
    with pytest.raises(GenlabError, match="a dcgan model has no encoder; concept vectors need one"):
        concept_run(run, "label=8 vs label=3")
    with pytest.raises(GenlabError, match="a dcgan model has no encoder; linear probes need one"):
        probe_run(run, [10])


def test_a_model_that_declares_no_encoder_counts_as_none():
    class NoiseCoded(GenerativeModel):  # like diffusion: overrides encode only to refuse
        latent_dim = 4
        capabilities = Capabilities(decoder=True, prior=True, latent_space=True)

        def encode(self, x, labels=None):
            raise NotSupported("its code is the starting noise")

        def decode(self, z, labels=None):
            return torch.sigmoid(z.sum(1)).reshape(-1, 1, 1, 1).expand(-1, 1, 8, 8)

    model = NoiseCoded(ModelConfig(image_shape=(1, 8, 8)))
    assert not model.capabilities.encoder
    assert build_model("pca", image_shape=(1, 8, 8), latent_dim=2).capabilities.encoder
    z, images, _ = prior_path(model, "0", "1", steps=4, spherical=True)
    assert torch.allclose(images[0], model.decode(seed_code(model, 0)[None])[0])
    with pytest.raises(GenlabError, match="has no encoder; linear probes need one"):
        require_latent_space(model, purpose="linear probes")


def test_a_diffusion_model_interpolates_between_seeds_through_decode(tmp_path):
    model = build_model("diffusion", image_shape=(1, 8, 8), channels=8, channel_mults=(1,), sample_steps=2).eval()
    z, images, _ = prior_path(model, "0", "1", steps=3, spherical=True)
    with torch.no_grad():
        assert torch.allclose(images[-1], model.decode(seed_code(model, 1)[None])[0], atol=1e-6)
    assert z.shape == (3, 64)


def test_cli_round_trips(runs, cache, capsys, tmp_path):
    gan, cgan = runs / "dcgan", runs / "cgan"
    code, out, err = run_cli(capsys, "interpolate", gan, "--from", 3, "--to", 8, "--steps", 6, "--spherical",
                             "--out", tmp_path)
    assert code == 0, err
    assert [p.split("/")[-1] for p in out.split()] == ["interpolation-3-8-slerp.png", "interpolation-3-8-slerp.gif"]
    strip, gif = Image.open(out.split()[0]), Image.open(out.split()[1])
    assert strip.size[0] > 5 * strip.size[1] and gif.n_frames == 10  # 6 steps there, 4 back
    np.save(tmp_path / "z.npy", np.ones(4, np.float32))
    assert run_cli(capsys, "interpolate", gan, "--from", 0, "--to", tmp_path / "z.npy", "--out", tmp_path)[0] == 0
    assert (tmp_path / "interpolation-0-z.png").exists()
    code, out, err = run_cli(capsys, "interpolate", cgan, "--from", 3, "--to", 4, "--label", 7, "--out", tmp_path)
    assert code == 0 and "interpolation-3-4-class7.png" in out, err
    code, out, err = run_cli(capsys, "interpolate", cgan, "--from", 3, "--label", 2, "--to-label", 7,
                             "--steps", 8, "--out", tmp_path)
    assert code == 0 and "interpolation-3-class2-to-7.png" in out, err
    code, out, err = run_cli(capsys, "latent-map", gan, "--limit", 300, "--seed", 2, "--out", tmp_path / "map")
    assert code == 0 and out.split() == [str(tmp_path / "map" / "latent-map.png")], err
    code, out, err = run_cli(capsys, "sample", cgan, "--label", 7, "-n", 8, "--out", tmp_path / "seven.png")
    assert code == 0 and Image.open(tmp_path / "seven.png").size[0] > 0, err


@pytest.mark.parametrize("argv, message", [
    (["interpolate", "{gan}", "--from", "3"], "give the end of the path"),
    (["interpolate", "{gan}", "--from", "3", "--to", "x.npy"], "neither a seed"),
    (["interpolate", "{gan}", "--from", "3", "--to", "4", "--label", "1"], "--label needs a conditional model"),
    (["interpolate", "{cgan}", "--from", "3", "--to", "4"], "needs --label L"),
    (["interpolate", "{cgan}", "--from", "3", "--label", "1", "--to-label", "12"], "out of range"),
    (["concept", "{gan}", "--attribute", "thickness"], "has no encoder; concept vectors need one"),
    (["probe", "{gan}"], "has no encoder; linear probes need one"),
])
def test_bad_input_is_one_clear_line(argv, message, runs, capsys):
    argv = [a.replace("{gan}", str(runs / "dcgan")).replace("{cgan}", str(runs / "cgan")) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.startswith("genlab: error: ") and err.count("\n") == 1 and message in err, err


def test_encoder_models_keep_test_image_end_points_and_refuse_labels(tmp_path, capsys):
    assert main(["train", "pca", "--latent-dim", "3", "--out", str(tmp_path / "pca"), "--quiet"]) == 0
    code, out, err = run_cli(capsys, "interpolate", tmp_path / "pca", "--from", 0, "--to", 5, "--out", tmp_path)
    assert code == 0 and "interpolation-0-5.png" in out, err
    strip = Image.open(tmp_path / "interpolation-0-5.png")
    assert strip.size[0] > 10 * strip.size[1]  # 10 steps and the two test images
    code, _, err = run_cli(capsys, "interpolate", tmp_path / "pca", "--from", 0, "--to", 5, "--label", 2)
    assert code == 2 and "need a conditional model; a pca model has no classes" in err
    with pytest.raises(GenlabError, match="give the end of the path"):
        interpolate_run(load_run(tmp_path / "pca"), "0")
