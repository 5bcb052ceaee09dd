"""``genlab demo``: the whole toolkit in one run on the embedded digits, summed up in one HTML page.

Each entry of :data:`DEMO_MODELS` is trained into ``OUT/<name>`` (resumed, or reused when already
finished, unless ``fresh``), then the report shows the same test images reconstructed by every
model, samples from every model that has a prior, and a table of test metrics. A new family joins
the demo by adding an entry.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .data import load_dataset
from .metrics import evaluate
from .registry import build_model
from .train import load_run, train
from .runs import has_checkpoint
from .viz import Section, make_grid, write_report

DATASET = "digits"


@dataclass
class DemoModel:
    name: str
    title: str
    about: str
    settings: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


DEMO_MODELS = [
    DemoModel("pca", "PCA (16 components)", "The linear baseline: projection on the top principal "
              "components; samples are Gaussian draws on those components.", {"latent_dim": 16}),
    DemoModel("conv-ae", "Convolutional autoencoder (16-d code)", "Strided convolutions down, transposed "
              "convolutions up, trained on squared error.", {"latent_dim": 16},
              {"epochs": 30, "batch_size": 64, "lr": 3e-3, "lr_schedule": "cosine"}),
    DemoModel("vae", "Variational autoencoder (8-d code, Bernoulli likelihood)", "Dense encoder giving mu "
              "and log sigma^2, reparameterized samples, closed-form KL; trained on dynamically "
              "binarized digits. Images show the decoder's mean.", {"latent_dim": 8},
              {"epochs": 100, "batch_size": 64, "lr": 1e-3}),
    DemoModel("dcgan", "DCGAN (16-d z)", "A generator of transposed convolutions with batch norm against a "
              "convolutional discriminator, non-saturating loss; samples come from a moving average of "
              "the generator's weights. No encoder, so no reconstructions.",
              # Without spectral norm: on 8x8 digits its samples are sharper in this short run.
              {"latent_dim": 16, "channels": 32, "ema_decay": 0.99, "spectral_norm": False},
              {"epochs": 30, "batch_size": 64, "lr": 2e-3}),
    DemoModel("denoise", "Denoising U-Net (Gaussian noise, std 0.3)", "A small U-Net predicts the correction "
              "that turns a noisy digit into the clean one (the noise is drawn afresh for every batch); "
              "measured by PSNR against the noisy input itself.",
              {"channels": (16, 32), "noise_level": 0.3}, {"epochs": 30, "batch_size": 64, "lr": 3e-3}),
    DemoModel("superres", "Super-resolution x2 (ESPCN)", "Convolutions on the 4x4 digit, then pixel shuffle "
              "to 8x8, predicting the correction of the bicubic enlargement; measured against it.",
              {"channels": (32, 16)}, {"epochs": 30, "batch_size": 64, "lr": 3e-3}),
    DemoModel("diffusion", "Diffusion model (DPM-Solver++, 20 steps)", "A small U-Net (time embedding, "
              "residual blocks, group norm, attention at 4x4 and below) learns to predict the noise added to a "
              "digit (as v-prediction, cosine schedule, min-SNR weighting); samples start from Gaussian noise "
              "and are denoised in 20 deterministic DPM-Solver++ steps with a moving average of the weights. "
              "No encoder.",
              {"channels": 16, "attention_resolution": 4, "ema_decay": 0.99},
              # Snapshots off: each is 20 passes of the network over 64 images, much of an epoch's time here.
              {"epochs": 30, "batch_size": 64, "lr": 3e-3, "snapshot_every": -1}),
]


def _measures(metrics: dict, mean_error: float) -> list[list]:
    """The rows (measure, value, baseline) of one model in the report's table: what its family is
    judged by, each beside what it is compared with."""
    rows = []
    if "sq_error_per_image" in metrics:
        rows.append(["squared error / image", round(metrics["sq_error_per_image"], 3),
                     f"{mean_error:.3f} (the mean image)"])
    if "elbo" in metrics:
        rows.append(["ELBO (nats / image)", round(metrics["elbo"], 2), f"{metrics['bits_per_dim']:.3f} bits/dim"])
    if "fid" in metrics:
        rows.append(["FID of samples", round(metrics["fid"], 2), f"{metrics['fid_floor']:.2f} (real images)"])
    if "psnr" in metrics:
        rows.append(["PSNR (dB)", round(metrics["psnr"], 2), f"{metrics['baseline_psnr']:.2f} (trivial answer)"])
    return rows or [["-", "-", "-"]]


def _done(run_dir: Path) -> bool:
    import json

    state = run_dir / "trainer_state.json"
    return state.exists() and json.loads(state.read_text()).get("done", False)


def _save_pictures(out: Path, rows, samples: dict) -> None:
    """The report's pictures also as PNG files: all reconstructions in one image, one per sample grid."""
    from PIL import Image

    width = max(image.width for image, _ in rows)
    stacked = Image.new("L", (width, sum(image.height for image, _ in rows)), 255)
    top = 0
    for image, _ in rows:
        stacked.paste(image.convert("L"), (0, top))
        top += image.height
    stacked.save(out / "reconstructions.png")
    for name, image in samples.items():
        image.save(out / f"samples-{name}.png")


def _latent_figures(model, data, title: str, scale: int, seed: int = 0):
    """An interpolation strip between the first test image and the first of another class, and a
    2-D map (PCA projection) of every test code; None for a model without an encoder."""
    from .latent import encode_images, latent_scatter
    from .latent.interpolate import interpolation_path

    if not (model.capabilities.latent_space and model.capabilities.encoder):
        return None
    x, y = data.tensors()
    b = int(torch.nonzero(y != y[0])[0])
    codes = encode_images(model, x, y)
    _, path = interpolation_path(model, codes[0], codes[b], 10, labels=(int(y[0]), int(y[b])))
    strip = make_grid(torch.cat([x[:1], path, x[b:b + 1]]), nrow=12, scale=scale)
    scatter = latent_scatter(codes, y.numpy(), data.class_names, "pca", f"{model.name}: test codes",
                             size_px=(460, 360), seed=seed)
    about = (f"{title}: test image 0 (a {int(y[0])}), the decoder on 10 evenly spaced codes from its "
             f"code to that of test image {b} (a {int(y[b])}), then image {b}")
    return (strip, about), (scatter, f"{title}: the codes of the {len(x)} test images, coloured by class")


def _translation_figure(model, x: torch.Tensor, title: str, scale: int, metrics: dict, seed: int = 0):
    """Rows: the condition images made from ``x`` (small ones enlarged to the image size, nearest
    neighbour), the model's outputs, and ``x``; with the test PSNR of model and baseline."""
    condition = model.degrade(x, generator=torch.Generator().manual_seed(seed))
    output = model.translate(condition)
    shown = torch.nn.functional.interpolate(condition, size=x.shape[-2:], mode="nearest")
    grid = make_grid(torch.cat([shown, output, x]).clamp(0, 1), nrow=len(x), scale=scale)
    about = (f"{title}: input, output, clean; test PSNR {metrics['psnr']:.1f} dB against "
             f"{metrics['baseline_psnr']:.1f} dB for {model.baseline_name}")
    return grid, about


PRIOR_MAP_DRAWS = 1000


def _prior_figures(model, train_data, test_data, title: str, scale: int, seed: int = 0):
    """For a model with a latent input but no encoder: a spherical interpolation strip from the z
    of seed 0 to that of the first seed whose image a classifier puts in another class (as the
    encoder models' strips go to a test image of another class), and a map of draws from the prior
    coloured by the class the classifier sees in their images, or, where each image takes a
    denoising run (about 50 network passes), a note instead of the map. None for a model without
    a latent space."""
    from .latent import decode_codes, predict_classes, prior_map, seed_code
    from .latent.interpolate import interpolation_path
    from .metrics.features import feature_classifier

    if not model.capabilities.latent_space:
        return None
    candidates = torch.stack([seed_code(model, s) for s in range(16)])
    label = 0 if model.conditional else None
    classifier, _ = feature_classifier(train_data, test_data)
    model.eval()
    classes = predict_classes(classifier, decode_codes(model, candidates, None if label is None
                                                       else torch.zeros(16, dtype=torch.long)))
    b = next((s for s in range(1, 16) if classes[s] != classes[0]), 1)
    _, path = interpolation_path(model, candidates[0], candidates[b], 10, spherical=True, labels=(label, label))
    strip = make_grid(path, nrow=10, scale=scale)
    about = (f"{title}: the generator on 10 codes along the great circle (spherical interpolation) from the "
             f"z of seed 0 (the classifier sees a {classes[0]}) to that of seed {b} (a {classes[b]}); "
             f"`genlab interpolate RUN --from 0 --to {b} --spherical`")
    if model.capabilities.denoising_sampler:
        return (strip, about), (f"{title}: no map here, since each of its {PRIOR_MAP_DRAWS} points needs a full "
                                "denoising run; `genlab latent-map RUN` draws one.")
    scatter, info = prior_map(model, train_data, test_data, PRIOR_MAP_DRAWS, seed=seed, size_px=(460, 360))
    return (strip, about), (scatter, f"{title}: {PRIOR_MAP_DRAWS} draws of z from the prior, coloured by the "
                                     "class a classifier sees in the image made from each")


def run_demo(out: str | Path = "runs/demo", fresh: bool = False, progress: bool = True,
             models: list[DemoModel] | None = None, num_images: int = 16, seed: int = 0) -> Path:
    """Train (or reuse) every demo model and write ``OUT/report.html``; returns its path."""
    out = Path(out)
    train_data, test_data = load_dataset(DATASET, "train"), load_dataset(DATASET, "test")
    x, y = test_data.tensors(slice(0, num_images))
    # The baseline of a reconstruction: every test image answered with the mean training image.
    mean_error = float(((test_data.tensors()[0] - train_data.tensors()[0].mean(0)) ** 2).flatten(1).sum(1).mean())
    scale = 8
    rows, sample_figures, table, no_prior = [(make_grid(x, nrow=num_images, scale=scale), "test images")], [], [], []
    sample_grids: dict = {}
    strips, maps, map_notes, translations = [], [], [], []
    started = time.perf_counter()
    for entry in models or DEMO_MODELS:
        run_dir = out / entry.name
        if fresh and run_dir.exists():
            shutil.rmtree(run_dir)
        t0 = time.perf_counter()
        if not _done(run_dir):
            print(f"training {entry.title} ...", flush=True)
            model = build_model(entry.name, image_shape=train_data.image_shape,
                                num_classes=train_data.num_classes, **entry.settings)
            train(model, train_data, test_data, out_dir=run_dir, resume=has_checkpoint(run_dir),
                  progress=progress, seed=seed, **entry.train)
        run = load_run(run_dir)
        model = run.model
        metrics = evaluate(model, test_data, mc_samples=10, seed=seed)
        train_time = sum(r.get("time_s", 0.0) for r in run.metrics)
        error = metrics.get("sq_error_per_image", "-")  # a GAN has no encoder, so no reconstructions
        if "psnr" in metrics:
            shown = f"test PSNR {metrics['psnr']:.1f} dB (baseline {metrics['baseline_psnr']:.1f} dB)"
        elif "fid" in metrics:
            shown = f"FID of samples {metrics['fid']:.1f} (real images {metrics['fid_floor']:.1f})"
        else:
            shown = f"squared error per test image {error:.3f} (the mean image {mean_error:.3f})"
        print(f"  {entry.name}: {shown} ({time.perf_counter() - t0:.1f} s)", flush=True)
        with torch.no_grad():
            if error != "-":
                recon = model.reconstruct(x, y).clamp(0, 1)
                rows.append((make_grid(recon, nrow=num_images, scale=scale), f"{entry.title}: reconstructions"))
            if model.capabilities.condition_image:
                translations.append(_translation_figure(model, x, entry.title, scale, metrics, seed))
            if model.capabilities.prior:
                samples = model.sample(64, generator=torch.Generator().manual_seed(seed))
                sample_grids[entry.name] = make_grid(samples, nrow=8, scale=scale)
                sample_figures.append((sample_grids[entry.name], f"{entry.title}: samples"))
            elif not model.capabilities.condition_image:
                no_prior.append(entry.title)
        latent = (_latent_figures(model, test_data, entry.title, scale, seed)
                  or _prior_figures(model, train_data, test_data, entry.title, scale, seed))
        if latent is not None:
            strips.append(latent[0])
            latent[0][0].save(out / f"interpolation-{entry.name}.png")
            if isinstance(latent[1], str):  # a note where a map would cost too much
                map_notes.append(latent[1])
            else:
                maps.append(latent[1])
                latent[1][0].save(out / f"latent-map-{entry.name}.png")
        table += [[entry.title if i == 0 else "", *row, round(train_time, 1) if i == 0 else ""]
                  for i, row in enumerate(_measures(metrics, mean_error))]
    sections = [
        Section("Reconstructions", f"The first {num_images} test images of '{DATASET}' (top row) and each "
                "model's reconstruction of them.", figures=rows),
        Section("Samples from the prior", f"64 draws from each model that has a prior (seed {seed}). "
                + (f"No prior, so no samples: {', '.join(no_prior)}." if no_prior else ""),
                figures=sample_figures),
        Section("Image to image", "Each task's input (made from the clean test image: noisy, or half the "
                "size and shown enlarged), the model's output, and the clean image, with the PSNR of the "
                "output and of the trivial answer (the input itself, or its bicubic enlargement) over the "
                "whole test split.", figures=translations),
        Section("Interpolation in the latent space", "Each model with an encoder decodes a straight line "
                "between the codes of two test images of different classes (the images themselves at both "
                "ends); a model without one (a GAN, a diffusion model) goes along the great circle between "
                "the z of two seeds whose images a classifier puts in different classes. A good latent "
                "space gives plausible digits all along the path.", figures=strips),
        Section("Latent maps", "Every test image's code, projected to two dimensions by PCA (the two "
                "directions of largest variance of the codes) and coloured by class. A model without an "
                "encoder has no codes of test images: its map shows draws of z from the prior, projected "
                "the same way and coloured by the class that a classifier trained on the digits sees in "
                "the image made from each. " + " ".join(map_notes), figures=maps),
        Section("Test metrics", f"Each model's own measures on the {len(test_data)} test images, each beside "
                "its baseline. Squared error is summed over the 64 pixels (in [0, 1]) and averaged over "
                "images; its baseline answers every image with the mean training image. The VAE's squared "
                "error is above PCA's and the autoencoder's because it models binarized digits (a "
                "Bernoulli likelihood): its decoder's mean is fit to pixels that are 0 or 1, not to the "
                "grey levels the squared error compares with, and its 8-d code is noisy by design; its "
                "own measure is the ELBO, in nats per image on the test images binarized once (seed 0, 10 "
                "Monte-Carlo draws; bits/dim is -ELBO/(64 ln 2)). A model without an encoder (the GAN, the "
                "diffusion model) is measured by its samples: the FID of as many samples as test images in "
                "the features of a classifier of the digits, beside the FID of real training images (the "
                "best a generator can expect). The image-to-image models give the PSNR of their output "
                "beside that of the trivial answer.",
                tables=[(["model", "measure", "value", "baseline", "training time (s)"], table)]),
    ]
    _save_pictures(out, rows, sample_grids)
    intro = (f"Trained on the {len(train_data)} training images of scikit-learn's 8x8 digits in "
             f"{time.perf_counter() - started:.0f} s of this run. Descriptions: " +
             " ".join(f"<b>{e.title}</b>: {e.about}" for e in (models or DEMO_MODELS)))
    return write_report(out / "report.html", "genlab demo", sections, intro)
