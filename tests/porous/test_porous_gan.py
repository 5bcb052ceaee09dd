"""The 3-D GAN: shapes, fully convolutional growth, the cube symmetries in training, learning a
synthetic medium's porosity, and the commands around it (sample, interpolate, evaluate,
make-volume) from the command line."""
import json

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data import load_dataset
from genlab.families.porous.media import make_volume
from genlab.families.porous.volumes import read_volume, write_volume
from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.train import load_run, train

SMALL = {"channels": 4, "latent_dim": 4}


def test_generator_and_discriminator_shapes():
    model = build_model("porous-gan", image_shape=(1, 16, 16, 16), **SMALL).eval()
    assert (model.stages, model.grid_side) == (2, 4)
    assert model.latent_dim == 4 * 4 ** 3
    z = model.prior_noise(3)
    assert z.shape == (3, model.latent_dim)
    x = model.decode(z)
    assert x.shape == (3, 1, 16, 16, 16) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert model.discriminator(x).shape == (3,)
    # The same code as a flat vector and as a grid gives the same volume.
    assert torch.equal(model.decode(z[:1]), model.decode(z[:1].reshape(1, 4, 4, 4, 4)))


def test_a_larger_latent_grid_makes_a_larger_volume():
    model = build_model("porous-gan", image_shape=(1, 16, 16, 16), **SMALL).eval()
    assert model.edge_for(40) == 40 and model.edge_for(42) == 40 and model.edge_for(4) == 4
    big = model.generate_volume(size=40, n=2, generator=torch.Generator().manual_seed(0))
    assert big.shape == (2, 1, 40, 40, 40)
    again = model.generate_volume(size=40, n=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(big, again)


@pytest.mark.parametrize("shape, message", [
    ((1, 28, 28), "needs volumes"),
    ((1, 16, 16, 8), "trains on cubes"),
    ((1, 5, 5, 5), "edge of 8 or more"),
])
def test_shapes_it_cannot_take_are_refused_in_one_line(shape, message):
    with pytest.raises(GenlabError, match=message) as err:
        build_model("porous-gan", image_shape=shape)
    assert "\n" not in str(err.value)


def test_sizes_the_generator_cannot_make_are_refused_in_one_line(monkeypatch):
    model = build_model("porous-gan", image_shape=(1, 16, 16, 16), **SMALL)
    with pytest.raises(GenlabError, match="smallest volume this generator makes is 4"):
        model.edge_for(3)
    import genlab.families.porous.model as gan3d

    monkeypatch.setattr(gan3d, "available_bytes", lambda: 2 ** 30)
    assert model.edge_for(256) == 256  # 8 channels of 128^3 and the volume: 0.2 GiB
    with pytest.raises(GenlabError, match=r"needs about .* GiB of memory to generate, more than the 1.0 GiB left"):
        model.edge_for(1024)


def test_bad_latents_are_refused():
    model = build_model("porous-gan", image_shape=(1, 8, 8, 8), **SMALL)
    with pytest.raises(GenlabError, match="expected flat codes"):
        model.decode(torch.zeros(2, 7))


def test_real_cubes_are_turned_by_the_drawn_symmetry():
    from genlab.data.batch import Batch, StepNoise
    from genlab.families.porous.volumes import cube_symmetry

    model = build_model("porous-gan", image_shape=(1, 8, 8, 8), instance_noise=0.0, **SMALL)
    x = torch.rand(6, 1, 8, 8, 8)
    batch = Batch(x, positions=torch.arange(6), noise=StepNoise(0, 5, 6))
    turned = model.real_images(batch)
    index = StepNoise(0, 5, 6).draw(0, "randint", (), 48)
    assert torch.equal(turned, cube_symmetry(x, index))
    assert not torch.equal(turned, x)
    plain = build_model("porous-gan", image_shape=(1, 8, 8, 8), symmetries=False, instance_noise=0.0, **SMALL)
    assert torch.equal(plain.real_images(Batch(x, positions=torch.arange(6), noise=StepNoise(0, 5, 6))), x)


def test_d_sees_real_and_generated_cubes_through_the_same_kind_of_noise():
    from genlab.data.batch import Batch, StepNoise

    model = build_model("porous-gan", image_shape=(1, 8, 8, 8), symmetries=False, instance_noise=0.5, **SMALL)
    x = torch.zeros(400, 1, 8, 8, 8)
    batch = Batch(x, positions=torch.arange(400), noise=StepNoise(0, 0, 400))
    seen = model.real_images(batch) - x
    assert abs(float(seen.std()) - 0.5) < 0.01 and abs(float(seen.mean())) < 0.01
    fake = torch.full_like(x, 0.3)
    first = model.seen_by_discriminator(fake, batch)
    assert abs(float((first - fake).std()) - 0.5) < 0.01
    # D's step and G's step see the generated cubes through the same draw.
    assert torch.equal(first, model.seen_by_discriminator(fake, batch))
    with pytest.raises(GenlabError, match="instance_noise"):
        build_model("porous-gan", image_shape=(1, 8, 8, 8), instance_noise=-1.0)


def test_annealed_instance_noise_decays_linearly_to_zero_in_both_objectives():
    from genlab.data.batch import Batch, StepNoise

    model = build_model("porous-gan", image_shape=(1, 8, 8, 8), symmetries=False, instance_noise=0.5,
                        instance_noise_steps=100, **SMALL)
    assert [model.noise_std(s) for s in (0, 25, 100, 1000)] == [0.5, 0.375, 0.0, 0.0]
    assert build_model("porous-gan", image_shape=(1, 8, 8, 8), **SMALL).noise_std(10 ** 6) == 0.5   # constant
    x = torch.zeros(400, 1, 8, 8, 8)
    batch = Batch(x, positions=torch.arange(400), noise=StepNoise(0, 60, 400))
    batch.scratch["step"] = 60   # what D's objective leaves for both
    assert abs(float(model.real_images(batch).std()) - 0.2) < 0.005
    assert abs(float(model.seen_by_discriminator(torch.full_like(x, 0.3), batch).std()) - 0.2) < 0.005
    _, terms = model.objective("discriminator", Batch(x[:4], positions=torch.arange(4), noise=StepNoise(0, 100, 4)), 100)
    assert terms["instance_noise"] == 0.0


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """A 48^3 overlapping-spheres medium of porosity 0.3 on disk."""
    path = tmp_path_factory.mktemp("medium") / "spheres.npy"
    write_volume(make_volume("overlapping-spheres", 48, 0.3, radius=3, seed=1), path)
    return path


@pytest.fixture(scope="module")
def trained(medium, tmp_path_factory, two_threads):
    """A small 3-D GAN trained for 20 epochs on 16^3 cubes of the medium, with the family's
    training defaults (batch 16, lr 5e-4 decaying to 0, channels-last)."""
    out = tmp_path_factory.mktemp("run") / "gan3d"
    with two_threads():
        train("porous-gan", f"volume:{medium},edge=16,stride=4", out_dir=out, epochs=20, seed=0, progress=False,
              snapshot_every=-1, model_settings={"channels": 8, "latent_dim": 8})
    return out


def test_the_gan_learns_the_statistics_of_the_medium(trained):
    from genlab.families.porous.statistics import two_point

    run = load_run(trained)
    assert run.config["train"]["lr"] == 5e-4 and run.config["train"]["batch_size"] == 16
    data = load_dataset(run.dataset_name)
    real = data.tensors()[0][:, 0].numpy() > 0.5
    phi = float(real.mean())
    assert abs(phi - 0.3) < 0.03
    untrained = build_model("porous-gan", image_shape=(1, 16, 16, 16), channels=8, latent_dim=8).eval()

    def stats(model):
        v = model.generate_volume(size=16, n=8, generator=torch.Generator().manual_seed(0))[:, 0].numpy() > 0.5
        return float(v.mean()), np.mean([two_point(x, max_lag=6).mean(1) for x in v], axis=0)

    real_s2 = np.mean([two_point(x, max_lag=6).mean(1) for x in real[:64]], axis=0)
    (after, s2_after), (before, s2_before) = stats(run.model), stats(untrained)
    # Untrained: about half pore, like noise. Trained: the medium's porosity and correlations,
    # much closer than before (20 epochs of 16 cubes fall short of the medium itself).
    assert abs(before - phi) > 0.15
    assert abs(after - phi) < 0.12 and abs(after - phi) < 0.5 * abs(before - phi)
    assert np.abs(s2_after - real_s2).mean() < 0.5 * np.abs(s2_before - real_s2).mean()


def test_a_gan_trains_in_train_mode_after_an_epoch_with_validation_data(medium, tmp_path):
    """A GAN has no held-out loss: the epoch's validation must leave it in train mode (it once
    left it in eval mode, so that G trained with frozen batch norm, and, with a moving average,
    G got no gradients at all)."""
    from genlab.models.base import NotSupported
    from genlab.train import evaluate_loss

    model = build_model("porous-gan", image_shape=(1, 16, 16, 16), **SMALL).train()
    data = load_dataset(f"volume:{medium},edge=16,stride=16")
    with pytest.raises(NotSupported):
        evaluate_loss(model, data, binary=False)
    assert model.training and model.generator.training


def test_sample_writes_volumes_of_the_asked_size_and_pictures(trained, tmp_path):
    out = tmp_path / "s"
    assert main(["sample", str(trained), "--size", "24", "-n", "2", "--seed", "3", "--out", str(out)]) == 0
    npy = sorted(out.glob("sample-3-*.npy"))
    assert len(npy) == 2 and sorted(out.glob("slices-3-*.png")) and sorted(out.glob("pores-3-*.png"))
    volume = np.load(npy[0])
    assert volume.shape == (24, 24, 24) and volume.dtype == bool
    tif = read_volume(npy[0].with_suffix(".tif"))
    assert np.array_equal(tif, volume)
    info = json.loads((out / "sample-3.json").read_text())
    assert info["edge"] == 24 and len(info["porosity"]) == 2
    assert info["phase"]["pore"] == "high"   # the medium is a bool array: True = pore


def test_interpolate_walks_between_two_latent_grids(trained, tmp_path, capsys):
    assert main(["interpolate", str(trained), "--from", "1", "--to", "2", "--steps", "4", "--size", "16",
                 "--out", str(tmp_path)]) == 0
    path = np.load(tmp_path / "interpolation-1-2-16.npy")
    assert path.shape == (4, 16, 16, 16)
    run = load_run(trained)
    ends = [run.model.generate_volume(16, 1, torch.Generator().manual_seed(s))[0, 0].numpy() > 0.5 for s in (1, 2)]
    assert np.array_equal(path[0], ends[0]) and np.array_equal(path[-1], ends[1])
    assert (tmp_path / "interpolation-1-2-16.png").exists()
    assert main(["interpolate", str(trained), "--from", "1", "--to", "x.npy"]) == 2
    assert "is a seed" in capsys.readouterr().err


def test_evaluate_compares_the_statistics_with_the_training_volume(trained, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(trained), "--metrics", "porosity,s2,chords", "--num-samples", "3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "porosity" in printed and "S2 mean abs. error" in printed
    results = json.loads(out.read_text())
    assert results["edge"] == 16 and results["num_volumes"] == 3
    # The reference: the training volume's 16^3 sub-volumes (4 per axis of the 48^3 medium).
    assert results["reference_cubes"] == 4 ** 3
    name = load_run(trained).config["data"]["name"]   # the run's config records the phase read as pore
    assert name.endswith(",edge=16,stride=4,pore=high")
    medium = load_dataset(name)
    assert abs(results["training"]["porosity"]["mean"] - float(medium.tensors()[0].mean())) < 0.02
    assert results["phase"] == {"pore": "high", "data": name, "porosity": pytest.approx(0.3, abs=0.03)}
    comparison = results["comparison"]
    assert comparison["porosity"]["generated"] == pytest.approx(results["generated"]["porosity"]["mean"])
    assert 0 <= comparison["s2"]["mae"] < 0.1
    assert all((tmp_path / p).exists() or __import__("pathlib").Path(p).exists() for p in results["pictures"])
    assert main(["evaluate", str(trained), "--metrics", "fid"]) == 2
    assert "unknown metric 'fid' for volumes" in capsys.readouterr().err


def test_make_volume_writes_a_medium_with_its_closed_form(tmp_path, capsys):
    out = tmp_path / "m.tif"
    assert main(["make-volume", "overlapping-spheres", "--size", "32", "--porosity", "0.4", "--radius", "3",
                 "--out", str(out)]) == 0
    volume = read_volume(out)
    assert volume.shape == (32, 32, 32) and abs(volume.mean() - 0.4) < 0.06
    assert "expected 0.4000" in capsys.readouterr().out
    assert main(["make-volume", "gaussian-field", "--radius", "3", "--out", str(tmp_path / "g.npy")]) == 2
    assert "`radius`" not in capsys.readouterr().err  # flags, not setting names


def test_a_two_dimensional_run_refuses_size(tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["train", "conv-ae", "--epochs", "1", "--channels", "4,8", "--quiet", "--out", str(out)]) == 0
    assert main(["sample", str(out), "--size", "64"]) == 2
    assert "--size applies to porous-gan, slicegan runs" in capsys.readouterr().err   # the models that make volumes


def test_a_run_on_a_volume_file_is_named_by_the_file(tmp_path):
    from genlab.runs import default_run_dir, run_name

    root = tmp_path / "runs"
    assert default_run_dir(run_name("porous-gan", "volume:scans/rock.tif,edge=64,stride=16"), root=str(root)) == \
        root / "porous-gan-rock"
    assert default_run_dir(run_name("dcgan", "mnist"), root=str(root)) == root / "dcgan-mnist"
