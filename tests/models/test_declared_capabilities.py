"""Every model's declared capabilities say what it does: the tools read the flags and never try a
call to see whether it fails, so a flag that disagrees with the model would break a tool.

For every registered model (tiny settings, untrained, no training step): ``latent_space`` exactly
when ``latent_dim`` answers (and then ``decode`` takes codes of that width), ``held_out_loss``
exactly when ``loss`` on a batch answers, ``preview`` exactly when the model has ``preview`` (and
then it gives rows of the batch's size), ``encoder``, ``decoder`` and ``prior`` exactly when
``encode``, ``decode`` and ``sample`` answer."""
import pytest
import torch

from genlab.data import ImageDataset
from genlab.models.base import NotSupported
from genlab.registry import build_model, family_of, model_names, presets
from genlab.train.trainer import data_description

#: tiny networks of each family (as tests/train/test_seeds.py's)
SMALL = {"autoencoder": {"hidden": (16,), "channels": (4, 8)}, "vae": {"hidden": (16,), "channels": (4, 8)},
         "gan": {"channels": 4}, "diffusion": {"channels": 8, "timesteps": 20, "sample_steps": 2},
         "pca": {"latent_dim": 4}, "porous": {"channels": 4, "latent_dim": 4},
         "image-to-image": {"channels": (4, 8)},
         "cyclegan": {"domain_b": "digits-m", "channels": (4, 8), "d_channels": 4, "pool_size": 8},
         "codec": {"channels": (4, 8), "code_channels": 2},
         "progan": {"channels": 4, "max_channels": 8, "latent_dim": 8}}
N = 4


def _images(shape, seed: int) -> torch.Tensor:
    return (torch.rand(N, *shape, generator=torch.Generator().manual_seed(seed)) * 255).to(torch.uint8)


def tiny_data(name: str) -> ImageDataset:
    """A few random images of the shape the model's tests train on, with labels (10 classes) and,
    where the model takes them, condition images: a colour image with its grey source (paired
    translation, colorization), two domains (grey A, colour B), cubes for the 3-D GAN."""
    family = presets()[name][0]
    labels = torch.arange(N) % 10
    if family == "porous":
        return ImageDataset(_images((1, 8, 8, 8), 0), name="cubes")
    if family == "cyclegan":
        return ImageDataset(_images((1, 28, 28), 1), labels, name="digits28", conditions=_images((3, 28, 28), 2))
    if name in ("colorize", "pix2pix"):   # colour targets; pix2pix's inputs are the paired sources
        return ImageDataset(_images((3, 28, 28), 3), labels, name="digits-m", conditions=_images((1, 28, 28), 4))
    return ImageDataset(_images((1, 8, 8), 5), labels, name="digits")


def tiny_model(name: str, data: ImageDataset):
    family = family_of(name)
    settings = {**data_description(name, data), **SMALL[family.name]}
    if name in ("resnet-vae", "iwae"):
        settings.update(channels=(4, 8), blocks_per_stage=1)
    if name == "latent-diffusion":   # 8x8 images: 2 x 4 x 4 codes
        settings.update(autoencoder_channels=(4, 4), code_channels=2, channel_mults=(1,), groups=4)
    if family.name == "cyclegan":
        settings.setdefault("condition_shape", tuple(data.conditions.shape[1:]))
    return build_model(name, **settings).eval()


def answers(call) -> bool:
    """Whether ``call()`` gives an answer; False when the model says it has no such part."""
    try:
        call()
    except NotSupported:
        return False
    return True


@pytest.mark.parametrize("name", model_names())
@torch.no_grad()
def test_the_declared_capabilities_agree_with_what_the_model_does(name):
    data = tiny_data(name)
    model = tiny_model(name, data)
    able = model.capabilities
    batch = data.batch(slice(0, N))
    labels = model.class_indices(batch.labels)

    assert able.latent_space == answers(lambda: model.latent_dim), "latent_space"
    assert able.held_out_loss == answers(lambda: model.loss(batch)), "held_out_loss"
    assert able.preview == callable(getattr(model, "preview", None)), "preview"
    assert able.encoder == answers(lambda: model.encode(batch.images, labels)), "encoder"
    assert able.prior == answers(lambda: model.sample(N, torch.Generator().manual_seed(0), labels=labels)), "prior"
    if able.latent_space:
        z = torch.randn(N, model.latent_dim, generator=torch.Generator().manual_seed(0))
        assert able.decoder == answers(lambda: model.decode(z, labels)), "decoder"
        if able.decoder:
            assert model.decode(z, labels).shape == (N, *model.config.image_shape)
    else:
        assert not able.decoder, "a decoder takes codes of a latent space"
    if able.held_out_loss:
        assert torch.isfinite(model.loss(batch)["loss"])
    if able.preview:
        rows = model.preview(batch, torch.Generator().manual_seed(0))
        assert rows and all(len(row) == N for row in rows)


def test_the_core_reads_the_flags_not_the_calls(tmp_path):
    """A model that declares no latent space gets the latent tools' one line even though its
    ``latent_dim`` would answer, and no held-out loss is logged for a model that declares none
    even though its ``loss`` would answer."""
    import dataclasses
    import json

    from genlab.errors import GenlabError
    from genlab.latent import require_latent_space
    from genlab.train import train

    data = tiny_data("ae")
    model = tiny_model("ae", data)
    declared = dataclasses.replace(model.capabilities, latent_space=False, held_out_loss=False)
    model.__class__ = type("Undeclared", (type(model),), {"capabilities": property(lambda self: declared)})
    assert model.latent_dim and torch.isfinite(model.loss(data.batch(slice(0, N)))["loss"])
    with pytest.raises(GenlabError, match="latent-space tools need a model with a latent space"):
        require_latent_space(model)
    train(model, data, data, out_dir=tmp_path, epochs=1, batch_size=N, progress=False, snapshot_every=-1)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records and not any(key.startswith("val/") for r in records for key in r)
