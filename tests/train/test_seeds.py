"""The same seed gives the same run, bit for bit, for every registered model, from Python and
from the command line; another seed gives another run."""
import json

import pytest
import torch
from safetensors.torch import load_file

from genlab.cli import main
from genlab.registry import presets
from genlab.train import train

MODELS = presets()

SMALL = {"autoencoder": {"hidden": (16,), "channels": (4, 8)}, "vae": {"hidden": (16,), "channels": (4, 8)},
         "gan": {"channels": 4}, "diffusion": {"channels": 8, "timesteps": 20, "sample_steps": 5}, "pca": {"latent_dim": 4},
         "porous": {"channels": 4, "latent_dim": 4}, "image-to-image": {"channels": (4, 8)},
         "cyclegan": {"domain_b": "digits-m", "channels": (4, 8), "d_channels": 4, "pool_size": 8},
         "codec": {"channels": (4, 8), "code_channels": 2},
         "progan": {"channels": 4, "max_channels": 8, "latent_dim": 8}}


@pytest.fixture(scope="module")
def tiny(digits_train):
    return digits_train.subset(slice(0, 64))


@pytest.fixture(scope="module")
def tiny_colour():
    """64 colour images of 28x28 (digits-m): the data of colorize, which refuses grey ones."""
    from genlab.data import load_dataset

    return load_dataset("digits-m", "train").subset(slice(0, 64))


@pytest.fixture(scope="module")
def tiny_cubes():
    """64 binary cubes of 8^3: the data of a 3-D model."""
    from genlab.data import ImageDataset

    cubes = torch.rand(64, 1, 8, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3
    return ImageDataset(cubes.to(torch.uint8) * 255, name="cubes")


def weights(path):
    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("name", list(MODELS))
def test_the_same_seed_gives_the_same_run(tiny, tiny_cubes, tiny_colour, tmp_path, name):
    family, _ = MODELS[name]
    colour = name in ("colorize", "pix2pix")   # pix2pix: digits-m's (grey digit, blend) pairs
    volumes = family == "porous" and name != "slicegan"   # slicegan learns volumes from 2-D patches
    data = tiny_cubes if volumes else tiny_colour if colour else tiny
    if family == "cyclegan":   # digits28 <-> digits-m: two domains of one image size
        from genlab.data import load_dataset

        data = load_dataset("digits28", "train").subset(slice(0, 64))
    settings = dict(SMALL[family])
    if name in ("resnet-vae", "iwae"):
        settings = {"channels": (4, 8), "blocks_per_stage": 1}
    if name == "latent-diffusion":   # 2 x 4 x 4 codes; 2 steps of each stage
        settings.update(autoencoder_channels=(4, 4), code_channels=2, channel_mults=(1,), groups=4, autoencoder_steps=2)
    runs = []
    for i, seed in enumerate((3, 3, 4)):
        out = tmp_path / str(i)
        train(name, data, None, out_dir=out, epochs=2, batch_size=32, seed=seed, snapshot_every=-1,
              progress=False, model_settings=settings)
        runs.append(out)
    a, b, c = (weights(r) for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (runs[0] / "metrics.jsonl").read_text().count("\n") == (2 if family != "pca" else 1)
    same = [json.loads(ln) for ln in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(ln) for ln in (runs[1] / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in same] == \
        [{k: v for k, v in r.items() if k != "time_s"} for r in again]
    if family != "pca":  # PCA is fitted in closed form: no seed enters it
        assert any(not torch.equal(a[k], c[k]) for k in a)


def test_the_same_seed_gives_the_same_run_from_the_command_line(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / str(i)
        assert main(["train", "conv-ae", "--data", "digits", "--epochs", "1", "--seed", "0", "--quiet",
                     "--channels", "4,8", "--out", str(out)]) == 0
        outs.append(out)
    a, b = weights(outs[0]), weights(outs[1])
    assert all(torch.equal(a[k], b[k]) for k in a)
