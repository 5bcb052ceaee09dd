"""The ELBO ablation: what each of the two terms of the VAE objective does to the latent space.

A VAE with a 2-D code is trained three times on the same data, seed and schedule:

- reconstruction only (``beta = 0``): the encoder may put codes anywhere, with any spread;
- KL only (``recon_weight = 0``): every posterior is pulled onto the prior N(0, I);
- both (the ELBO): codes must describe the image and stay close to the prior.

Each map shows one draw z ~ q(z|x) per test image (not the mean mu: under KL only every mu
collapses to the origin, and the draws show what the decoder is actually fed), coloured by class.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ...data import load_dataset
from ...errors import GenlabError, check_seed
from ...registry import build_model
from ...files import write_json_atomic
from ...train import load_run, train
from ...runs import has_checkpoint


@dataclass(frozen=True)
class Variant:
    name: str
    title: str
    settings: dict
    caption: str


VARIANTS = (
    Variant("recon-only", "Reconstruction only (beta = 0)", {"beta": 0.0},
            "Clusters with gaps: codes spread freely, and the space between them decodes to nothing seen."),
    Variant("kl-only", "KL only (no reconstruction term)", {"recon_weight": 0.0},
            "One undifferentiated blob: every image is mapped to the prior N(0, I); codes carry no information."),
    Variant("elbo", "Both terms (the ELBO)", {},
            "Classes separate, yet the space stays continuous and packed around the prior."),
)


def _done(run_dir: Path) -> bool:
    state = run_dir / "trainer_state.json"
    return state.exists() and json.loads(state.read_text()).get("done", False)


@torch.no_grad()
def posterior_draws(model, images: torch.Tensor, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """One draw z ~ q(z|x) per image: (N, latent_dim), with a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(images), batch_size):
        mu, logvar = model.posterior(images[start:start + batch_size].to(model.device))
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        out.append((mu + torch.exp(0.5 * logvar) * eps).cpu())
    return torch.cat(out)


def elbo_ablation(data: str = "digits", data_dir: str | os.PathLike | None = None,
                  out: str | os.PathLike | None = None, model: str = "vae", epochs: int = 30,
                  batch_size: int = 128, lr: float = 1e-3, train_size: int | None = None,
                  map_size: int = 5000, seed: int = 0, progress: bool = True) -> dict:
    """Train the three variants into ``OUT/<variant>`` (finished runs are reused) and draw their
    latent maps side by side into ``OUT/elbo-ablation.png``; returns a summary that is also
    written to ``OUT/elbo-ablation.json`` (test loss terms in nats per image).

    Args:
        model: ``vae`` (dense) or ``conv-vae``; the code is always 2-D.
        train_size: train on the first this many training images (None: all), to bound time.
        map_size: test images drawn on each map.
    """
    from ...latent.maps import _figure, _to_image, draw_scatter

    if train_size is not None and (isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1):
        raise GenlabError(f"`train_size` (training images) must be a whole number of at least 1, got {train_size!r}; "
                          "leave it out to train on all")
    if isinstance(map_size, bool) or not isinstance(map_size, int) or map_size < 1:
        raise GenlabError(f"`map_size` (test images on each map) must be a whole number of at least 1, got {map_size!r}")
    check_seed(seed)
    out = Path(out or f"runs/elbo-ablation-{data.replace(':', '-').replace('/', '_')}")
    train_data = load_dataset(data, "train", data_dir)
    test_data = load_dataset(data, "test", data_dir)
    if train_size is not None:
        train_data = train_data.subset(slice(0, train_size))
    x, y = test_data.tensors(slice(0, map_size))
    summary = {"data": data, "model": model, "epochs": epochs, "train_images": len(train_data), "variants": {}}
    fig = _figure(1500, 560)
    for i, variant in enumerate(VARIANTS):
        run_dir = out / variant.name
        if not _done(run_dir):
            net = build_model(model, image_shape=train_data.image_shape, latent_dim=2, **variant.settings)
            train(net, train_data, test_data, out_dir=run_dir, resume=has_checkpoint(run_dir), progress=progress,
                  epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        run = load_run(run_dir)
        z = posterior_draws(run.model, x, seed)
        last = run.metrics[-1]
        summary["variants"][variant.name] = {
            "settings": variant.settings, "caption": variant.caption,
            "val_recon_nats": last.get("val/recon"), "val_kl_nats": last.get("val/kl"),
            "val_neg_elbo_nats": last.get("val/neg_elbo"), "code_std": z.std(0).tolist()}
        ax = fig.add_axes((0.045 + i * 0.315, 0.24, 0.25, 0.66))
        draw_scatter(ax, z.numpy(), None if y is None else y.numpy(), test_data.class_names, variant.title,
                     ("z1", "z2"), legend=i == len(VARIANTS) - 1)
        terms = f"recon {last.get('val/recon', float('nan')):.1f}, KL {last.get('val/kl', float('nan')):.1f} nats"
        fig.text(0.045 + i * 0.315 + 0.125, 0.02, "\n".join(_wrap(variant.caption, 52)) + f"\n(test: {terms})",
                 ha="center", va="bottom", fontsize=9)
    path = out / "elbo-ablation.png"
    _to_image(fig).save(path)
    summary["figure"] = str(path)
    write_json_atomic(out / "elbo-ablation.json", summary)
    return summary


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


__all__ = ["VARIANTS", "elbo_ablation", "posterior_draws"]
