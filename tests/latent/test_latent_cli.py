"""The latent-space commands end to end on tiny trained runs, and their one-line errors."""
import json

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-d dense VAE, a 3-d conv autoencoder and a 4-component PCA, trained on digits."""
    root = tmp_path_factory.mktemp("latent-runs")
    import torch

    torch.set_num_threads(1)
    assert main(["train", "vae", "--latent-dim", "2", "--hidden", "32", "--epochs", "2", "--out", str(root / "vae"),
                 "--quiet"]) == 0
    assert main(["train", "conv-ae", "--latent-dim", "3", "--channels", "8", "--epochs", "1",
                 "--out", str(root / "ae"), "--quiet"]) == 0
    assert main(["train", "pca", "--latent-dim", "4", "--out", str(root / "pca"), "--quiet"]) == 0
    return root


@pytest.mark.parametrize("name", ["vae", "ae", "pca"])
def test_interpolate_writes_a_strip_and_a_gif(name, runs, capsys):
    folder = runs / name
    code, text, err = run(capsys, "interpolate", folder, "--from", 0, "--to", 5, "--steps", 7, "--spherical")
    assert code == 0, err
    png, gif = text.split()
    strip, animation = Image.open(png), Image.open(gif)
    assert strip.size[0] > 8 * strip.size[1]  # a strip: the 7 steps plus the two originals in one row
    assert animation.n_frames == 12  # there and back


def test_interpolate_from_saved_latent_vectors(runs, capsys, tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(2, np.float32))
    np.save(tmp_path / "b.npy", np.ones((1, 2), np.float32))
    code, text, err = run(capsys, "interpolate", runs / "vae", "--from", tmp_path / "a.npy", "--to",
                          tmp_path / "b.npy", "--out", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "interpolation-a-b.png").exists()


@pytest.mark.parametrize("name, files", [("vae", ["latent-map.png", "manifold-grid.png"]), ("ae", ["latent-map.png"])])
def test_latent_map(name, files, runs, capsys, tmp_path):
    code, text, err = run(capsys, "latent-map", runs / name, "--out", tmp_path, "--grid", 6)
    assert code == 0, err
    assert sorted(p.split("/")[-1] for p in text.split()) == sorted(files)
    assert Image.open(tmp_path / "latent-map.png").size == (560, 480)
    if "manifold-grid.png" in files:  # 6 x 6 digits of 8 pixels enlarged 5x, with 2-pixel gaps
        assert Image.open(tmp_path / "manifold-grid.png").size == (6 * 42 + 2,) * 2


def test_concept_writes_the_vector_and_a_grid(runs, capsys, tmp_path):
    code, text, err = run(capsys, "concept", runs / "ae", "--attribute", "label=8 vs label=3", "--out", tmp_path,
                          "--strengths", "0,1,2", "--images", "0,1")
    assert code == 0, err
    assert "images with" in text
    vector = np.load(tmp_path / "concept-label-8-vs-label-3.npy")
    assert vector.shape == (3,)
    grid = Image.open(tmp_path / "concept-label-8-vs-label-3.png")
    assert grid.size[0] > grid.size[1]  # 2 rows of the image + 3 strengths
    info = json.loads((tmp_path / "concept-label-8-vs-label-3.json").read_text())
    assert info["with"] > 0 and info["without"] > 0 and info["images"] == [0, 1]
    assert run(capsys, "concept", runs / "pca", "--attribute", "thickness", "--out", tmp_path)[0] == 0


def test_probe_prints_a_table_and_writes_json(runs, capsys):
    code, text, err = run(capsys, "probe", runs / "vae", "--labels-per-class", "5,all", "--seeds", "0,1")
    assert code == 0, err
    assert "| 5 |" in text and "| all |" in text and "code (2-d)" in text and "PCA (2-d)" in text
    results = json.loads((runs / "vae" / "probe.json").read_text())
    assert results["test_images"] == 300 and results["rows"][0]["labelled_images"] == 50
    for row in results["rows"]:
        assert all(0 <= a["mean"] <= 1 for a in row["accuracy"].values())
    assert results["rows"][1]["accuracy"]["pixels (64-d)"]["mean"] > 0.85


def test_elbo_ablation_on_a_small_subset(capsys, tmp_path):
    code, text, err = run(capsys, "experiment", "elbo-ablation", "--data", "digits", "--epochs", 1,
                          "--train-size", 256, "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert Image.open(tmp_path / "elbo-ablation.png").size == (1500, 560)
    summary = json.loads((tmp_path / "elbo-ablation.json").read_text())
    assert list(summary["variants"]) == ["recon-only", "kl-only", "elbo"]
    assert summary["variants"]["kl-only"]["val_kl_nats"] < summary["variants"]["recon-only"]["val_kl_nats"]


@pytest.mark.parametrize("argv, message", [
    (["interpolate", "{vae}", "--from", "0", "--to", "300"], "out of range: the test split has 300"),
    (["interpolate", "{vae}", "--from", "0", "--to", "{tmp}/wide.npy"], "holds 5 numbers but the model's code is 2-d"),
    (["interpolate", "{vae}", "--from", "0", "--to", "nosuch.npy"], "neither a test-image index"),
    (["concept", "{vae}", "--attribute", "Smiling"], "unknown attribute 'Smiling'"),
    (["concept", "{vae}", "--attribute", "label=3", "--images", "999"], "out of range"),
    (["probe", "{vae}", "--labels-per-class", "500"], "lower the budget"),
])
def test_bad_input_is_one_clear_line(argv, message, runs, capsys, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros(5))
    argv = [a.replace("{vae}", str(runs / "vae")).replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("genlab: error: ") and err.count("\n") == 1 and message in err, err


def test_a_model_without_an_encoder_is_a_clear_error():
    import torch

    from genlab.errors import GenlabError
    from genlab.latent import encode_images
    from genlab.models.base import Capabilities, GenerativeModel, ModelConfig

    class DecoderOnly(GenerativeModel):  # a generator such as a GAN's: codes in, images out
        latent_dim = 2
        capabilities = Capabilities(decoder=True, latent_space=True)

    with pytest.raises(GenlabError, match="has no encoder"):
        encode_images(DecoderOnly(ModelConfig()), torch.zeros(1, 1, 28, 28))
