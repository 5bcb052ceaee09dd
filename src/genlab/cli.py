"""The ``genlab`` command: parses arguments and calls the library; no logic of its own."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from .errors import GenlabError, first_line

MODEL_FLAGS = ("latent_dim", "arch", "hidden", "channels", "blocks_per_stage", "norm", "activation",
               "upsample", "recon_loss", "noise", "noise_level", "likelihood", "sigma", "learn_sigma",
               "beta", "mc_samples", "scale", "color_space", "domain_b", "adv_weight")


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE, got '{text}'")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def _read_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise GenlabError(f"config file {p} not found")
    try:
        settings = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise GenlabError(f"cannot parse {p}: {err}") from None
    if not isinstance(settings, dict):
        raise GenlabError(f"{p} must hold a mapping of settings (e.g. {{\"latent_dim\": 2, \"epochs\": 5}}), "
                          f"not a {type(settings).__name__}")
    if {"family", "model", "train"} <= set(settings):  # a run's own config.json: its model and training settings
        model = {k: v for k, v in (settings.get("model") or {}).items() if k not in ("image_shape", "num_classes")}
        return {**model, **(settings.get("train") or {})}
    return settings


def build_parser() -> argparse.ArgumentParser:
    from .registry import model_names

    parser = argparse.ArgumentParser(prog="genlab", description="Deep generative models of images.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", help="list the datasets, their shapes and whether they are here")
    p.add_argument("--data-dir", help="folder of dataset files (default $GENLAB_DATA or ~/.cache/genlab/data)")

    p = sub.add_parser("train", help="train a model into a run folder")
    p.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(model_names())}")
    p.add_argument("--data", default="digits", help="dataset name, folder:PATH, npz:PATH or volume:PATH[,edge=E,...] "
                   "(default digits)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA)")
    p.add_argument("--config", help="JSON or TOML file of model and training settings")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="images per step, over all processes (default 128)")
    p.add_argument("--grad-accumulation", type=int, help="micro-batches per step, gradients summed (default 1)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"],
                   help="autocast precision; auto: bf16 where the device has it natively, else fp32 "
                   "(default: auto for the VAEs, 2-D GANs and diffusion, fp32 for the rest)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last (NHWC) 2-D convolutions (default: on for the 2-D GANs)")
    p.add_argument("--nproc", type=int, help="data-parallel processes on this machine, started by torchrun")
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine", "linear-decay"])
    p.add_argument("--max-minutes", type=float, help="stop after this many minutes of training steps (default: no limit)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=None,
                   help="dynamic binarization (default: on for Bernoulli likelihoods)")
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--arch", choices=["dense", "conv", "resnet", "unet", "espcn"])
    p.add_argument("--hidden", type=_ints, help="dense widths, e.g. 1000,500,250")
    p.add_argument("--channels", type=_ints, help="conv stage channels, e.g. 32,64")
    p.add_argument("--blocks-per-stage", type=int, help="extra 3x3 convolutions (resnet: residual blocks) per stage")
    p.add_argument("--upsample", choices=["transposed", "resize-conv", "pixel-shuffle"])
    p.add_argument("--recon-loss", choices=["mse", "bce"])
    p.add_argument("--noise", choices=["none", "gaussian", "masking", "salt-pepper"])
    p.add_argument("--noise-level", type=float)
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"])
    p.add_argument("--sigma", type=float)
    p.add_argument("--beta", type=float)
    p.add_argument("--mc-samples", type=int)
    p.add_argument("--scale", type=int, help="superres: how many times larger the output is (2 or 4)")
    p.add_argument("--color-space", choices=["lab", "yuv"], help="colorize: L in and a, b predicted (lab, default), "
                   "or Y in and U, V predicted (yuv)")
    p.add_argument("--domain-b", help="cyclegan: the second domain's dataset (e.g. --data mnist --domain-b mnist-m)")
    p.add_argument("--adv-weight", type=float, help="image-to-image: weight of the PatchGAN adversarial term "
                   "(pix2pix: 0.01 by default; 0 turns it off)")
    p.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="any other model or training setting, e.g. --set activation=silu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("make-volume", help="a synthetic porous medium with known statistics (.npy or .tif)")
    p.add_argument("kind", choices=["overlapping-spheres", "gaussian-field"])
    p.add_argument("--size", type=int, default=128, help="edge in voxels (default 128)")
    p.add_argument("--porosity", type=float, default=0.3, help="expected pore fraction (default 0.3)")
    p.add_argument("--radius", type=float, help="overlapping-spheres: ball radius in voxels (default 5)")
    p.add_argument("--correlation-length", type=float,
                   help="gaussian-field: std of the smoothing kernel in voxels (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="file to write: .npy (True = pore) or .tif (0 = pore, 255 = grain)")

    p = sub.add_parser("serve", help="an HTTP API and a latent explorer page for a trained run")
    p.add_argument("run")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir")

    p = sub.add_parser("sample", help="draw samples from a trained model (PNG grid; volumes as .npy and .tif)")
    p.add_argument("run")
    p.add_argument("-n", "--num", type=int, help="samples (default 64 images, or 1 volume)")
    p.add_argument("--size", type=int, help="edge of generated volumes in voxels, any size the 3-D GAN can make "
                   "(default: the training cubes')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", type=int, help="class of the samples (conditional models)")
    p.add_argument("--steps", type=int, help="denoising steps, 1 to the model's timesteps (diffusion; default 50)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (conditional diffusion; 1: none)")
    p.add_argument("--eta", type=float, help="DDIM noise in [0, 1] (diffusion; 0: deterministic)")
    p.add_argument("--out", help="PNG path (default RUN/samples.png); diffusion also writes the denoising as .gif; "
                   "volumes: a folder (default RUN/samples-EDGE)")

    p = sub.add_parser("reconstruct", help="test images above their reconstructions (PNG grid)")
    p.add_argument("run")
    p.add_argument("-n", "--num", type=int, default=32)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--data-dir")
    p.add_argument("--out", help="PNG path (default RUN/reconstructions.png)")

    p = sub.add_parser("encode", help="latent codes of a split to .npz (arrays z, labels)")
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--data-dir")
    p.add_argument("--out", help=".npz path (default RUN/latents-SPLIT.npz)")

    p = sub.add_parser("evaluate", help="test metrics: squared error per image; ELBO and bits/dim for VAEs; "
                       "FID, KID, precision/recall of samples")
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--mc-samples", type=int, default=10, help="Monte-Carlo draws per image for the ELBO")
    p.add_argument("--metrics", type=_names, help="comma-separated: default (reconstruction, ELBO), nll "
                   "(importance-weighted), fid, kid, pr (precision/recall), dc (density/coverage); for volumes: "
                   "porosity, s2, surface, chords, euler (default: all five); default: default")
    p.add_argument("--size", type=int, help="volumes: edge of the generated volumes (default: the training cubes')")
    p.add_argument("--importance-samples", type=int, default=5000,
                   help="draws per image for the importance-weighted nll (default 5000)")
    p.add_argument("--num-samples", type=int, help="generated images for fid/kid/pr/dc (default: size of --split; "
                   "volumes: 20)")
    p.add_argument("--features", default="classifier", choices=["classifier", "inception"],
                   help="feature network for fid/kid/pr/dc (default: a classifier genlab trains on the dataset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--out", help="JSON path (default RUN/evaluation-SPLIT.json)")

    p = sub.add_parser("interpolate", help="decode a path between two test images, seeds or saved codes "
                       "(PNG strip, GIF)")
    p.add_argument("run")
    ends = ("a test-image index (models with an encoder), a seed (models without one, e.g. GANs: the z "
            "that model.prior_noise(1, torch.Generator().manual_seed(SEED)) draws), or a latent file "
            "(.npy, .npz, .txt)")
    p.add_argument("--from", dest="start", required=True, metavar="A", help=f"start: {ends}")
    p.add_argument("--to", dest="end", metavar="B", help=f"end: {ends}; omitted with --to-label")
    p.add_argument("--label", type=int, metavar="L",
                   help="class of the whole path (conditional models without an encoder, e.g. cgan)")
    p.add_argument("--to-label", type=int, metavar="M",
                   help="with --label L: keep A's z and move the class from L to M (cgan)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--spherical", action="store_true", help="slerp: great circle, norm interpolated linearly")
    p.add_argument("--size", type=int, help="volumes: edge of the volumes along the path (3-D GAN; default the "
                   "training cubes')")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="output folder (default RUN)")

    p = sub.add_parser("latent-map", help="test codes (or, without an encoder, draws from the prior coloured by "
                       "the class a classifier sees in their images) as a 2-D scatter; a manifold grid for 2-D codes")
    p.add_argument("run")
    p.add_argument("--projection", default="pca", choices=["pca", "tsne"], help="for codes wider than 2")
    p.add_argument("--limit", type=int, default=5000,
                   help="test images to encode, or draws from the prior for a model without an encoder (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws from the prior (models without an encoder)")
    p.add_argument("--grid", type=int, default=15, help="manifold grid side (default 15)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="output folder (default RUN)")

    p = sub.add_parser("concept", help="a concept vector (mean code with minus without an attribute), applied to images")
    p.add_argument("run")
    p.add_argument("--attribute", required=True, metavar="NAME",
                   help="label=8, 'label=8 vs label=3', ink (stroke thickness, split at the median), "
                        "or an attribute column (CelebA's Smiling, a CSV column)")
    p.add_argument("--attributes", metavar="FILE", help="CSV (or list_attr_celeba.txt format) of per-image attributes")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--images", type=_ints, help="image indices to edit (default: the first 8 without the attribute)")
    p.add_argument("--strengths", type=lambda t: [float(v) for v in t.split(",")],
                   default=[-1.5, -1, -0.5, 0, 0.5, 1, 1.5],
                   help="multiples of the vector to add (default -1.5,-1,-0.5,0,0.5,1,1.5)")
    p.add_argument("--limit", type=int, default=10000, help="images used to compute the vector")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="output folder (default RUN)")

    p = sub.add_parser("probe", help="linear classifiers on codes vs pixels vs PCA, by label budget")
    p.add_argument("run")
    p.add_argument("--labels-per-class", default="10,100,all", help="label budgets, e.g. 10,100,all")
    p.add_argument("--seeds", type=_ints, default=(0, 1, 2), help="draws of the labelled images (default 0,1,2)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="JSON path (default RUN/probe.json)")

    p = sub.add_parser("experiment", help="experiments that train and compare several runs")
    p.add_argument("name", choices=["elbo-ablation"])
    p.add_argument("--data", default="digits")
    p.add_argument("--data-dir")
    p.add_argument("--model", default="vae", choices=["vae", "conv-vae"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--train-size", type=int, help="train on the first N training images (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder (default runs/elbo-ablation-DATA)")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("demo", help="train PCA, a conv autoencoder, a VAE, a DCGAN, a denoiser, a x2 "
                       "super-resolution net and a diffusion model on digits; write an HTML report")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--fresh", action="store_true", help="retrain models already trained by an earlier demo")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("translate", help="apply an image-to-image run (denoise, superres, colorize, pix2pix, "
                       "cyclegan) to image files (PNG)")
    p.add_argument("run")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files: the noisy (denoise), small "
                   "(superres) or grey (colorize; a colour file is made grey first) inputs, any size the network takes")
    p.add_argument("--out", help="folder for the results (default: beside each input, as NAME-denoise.png, "
                   "NAME-x2.png, NAME-color.png, NAME-pix2pix.png or NAME-a-to-b.png)")
    p.add_argument("--direction", choices=["a-to-b", "b-to-a"], help="cyclegan: which way to translate "
                   "(default a-to-b: from the training data's domain to --domain-b's)")

    p = sub.add_parser("compress", help="image files to small .glc files with a trained codec (genlab train compress)")
    p.add_argument("run")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, any size the codec takes")
    p.add_argument("--out", help="folder for the .glc files (default: beside each input, as NAME.glc)")

    p = sub.add_parser("decompress", help=".glc files back to PNG images, with the run that wrote them")
    p.add_argument("files", nargs="+", metavar="FILE", help=".glc files written by `genlab compress`")
    p.add_argument("--run", required=True, help="the codec run that compressed them (a file names it by its "
                   "weights, and another run's files are refused)")
    p.add_argument("--out", help="folder for the images (default: beside each file, as NAME.png)")

    p = sub.add_parser("explain", help="figures that explain a building block")
    p.add_argument("topic", choices=["transposed-conv", "checkerboard"])
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--padding", type=int, default=1)
    p.add_argument("--size", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/explain")
    return parser


def _train(args: argparse.Namespace) -> None:
    import dataclasses
    import os

    from .train import TrainConfig, train

    from .registry import resolve_model_name

    args.model = resolve_model_name(args.model)
    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        _launch(args)
        return
    train_fields = tuple(f.name for f in dataclasses.fields(TrainConfig))
    settings = _read_config_file(args.config) if args.config else {}
    settings.update(dict(args.set))
    for name in train_fields + MODEL_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    train_settings = {k: settings.pop(k) for k in list(settings) if k in train_fields}
    data = settings.pop("data", None) or args.data
    out = args.out or _default_out(args.model, f"{data}-{settings['domain_b']}" if settings.get("domain_b") else data,
                                   args.resume)
    from .train import distributed

    train(args.model, data, data_dir=args.data_dir, out_dir=out, resume=args.resume,
          progress=not args.quiet, model_settings=settings, **train_settings)
    distributed.shutdown()  # after a run that ended well; on an error torchrun stops the others
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {args.model}; run folder: {out}")


def _default_out(model: str, data: str, resume: bool) -> Path:
    from .train import default_run_dir

    return default_run_dir(model, data, resume)


def _launch(args: argparse.Namespace) -> None:
    """``genlab train ... --nproc N``: the same command in N processes under torchrun, with the
    run folder chosen once here."""
    from .train.distributed import launch

    argv = list(args.argv)
    for i, word in enumerate(argv):
        if word == "--nproc":
            del argv[i:i + 2]
            break
        if word.startswith("--nproc="):
            del argv[i]
            break
    if not args.out:
        argv += ["--out", str(_default_out(args.model, args.data, args.resume))]
    code = launch(argv, args.nproc)
    if code:
        raise GenlabError(f"the data-parallel run ended with exit code {code} (its processes' messages are above)")


def _run(args: argparse.Namespace) -> None:
    from .commands import run as tools
    from .train import load_run

    run = load_run(args.run)
    volumes = run.model.config.spatial_dims == 3
    if args.command == "sample" and volumes:
        from .families.porous.commands import sample_volumes

        if args.label is not None or args.steps is not None:
            raise GenlabError("`label` and `steps` do not apply to the 3-D GAN; give `num`, `size` and `seed`")
        for path in sample_volumes(run, args.num or 1, args.size, args.seed, args.out):
            print(path)
    elif args.command == "sample":
        if args.size is not None:
            raise GenlabError("`size` applies to models that generate volumes (porous-gan)")
        for path in tools.sample_files(run, 64 if args.num is None else args.num, args.seed, args.label, args.out,
                                       steps=args.steps, guidance=args.guidance, eta=args.eta):
            print(path)
    elif args.command == "evaluate" and volumes:
        _evaluate_volumes(run, args)
    elif args.command == "reconstruct":
        print(tools.reconstruct(run, args.num, args.split, args.data_dir, args.out))
    elif args.command == "encode":
        print(tools.encode(run, args.split, args.data_dir, out=args.out))
    elif args.command == "evaluate":
        results, path = tools.evaluate_run(run, args.split, args.mc_samples, args.seed, args.data_dir, args.out,
                                           args.metrics, args.num_samples, args.features,
                                           importance_samples=args.importance_samples)
        print(tools.format_metrics(results))
        print(f"written to {path}")


def _evaluate_volumes(run, args: argparse.Namespace) -> None:
    from .families.porous.commands import POROUS_METRICS, evaluate_volumes, format_porous
    from .models.base import write_json_atomic

    metrics = args.metrics or list(POROUS_METRICS)
    unknown = [m for m in metrics if m not in POROUS_METRICS]
    if unknown:
        raise GenlabError(f"unknown metric '{unknown[0]}' for volumes; choose from: {', '.join(POROUS_METRICS)}")
    out = Path(args.out) if args.out else run.path / "evaluation-porous.json"
    results = evaluate_volumes(run, metrics, args.num_samples, args.size, args.seed, out.parent)
    write_json_atomic(out, results)
    print(format_porous(results))
    print(f"written to {out}")


def _make_volume(args: argparse.Namespace) -> None:
    from .families.porous.commands import make_volume_file

    options = {}
    if args.radius is not None:
        if args.kind != "overlapping-spheres":
            raise GenlabError("`radius` applies to overlapping-spheres; the gaussian-field takes `correlation_length`")
        options["radius"] = args.radius
    if args.correlation_length is not None:
        if args.kind != "gaussian-field":
            raise GenlabError("`correlation_length` applies to gaussian-field; overlapping-spheres takes `radius`")
        options["correlation_length"] = args.correlation_length
    path, info = make_volume_file(args.kind, args.size, args.porosity, args.out, args.seed, **options)
    print(f"{args.kind}, {'x'.join(map(str, info['size']))}: porosity {info['measured_porosity']:.4f} "
          f"(expected {info['porosity']:.4f})")
    print(path)


def _latent(args: argparse.Namespace) -> None:
    from .commands import latent as tools
    from .latent.probe import parse_budgets
    from .train import load_run

    run = load_run(args.run)
    if args.command == "interpolate" and run.model.config.spatial_dims == 3:
        from .families.porous.commands import interpolate_volumes

        seeds = []
        for flag, value in (("--from", args.start), ("--to", args.end)):
            if value is None or not value.isdigit():
                raise GenlabError(f"{flag} of a 3-D GAN's path is a seed (a whole number), got {value!r}")
            seeds.append(int(value))
        paths = interpolate_volumes(run, seeds[0], seeds[1], args.steps, args.size, args.spherical, args.out)
    elif args.command == "interpolate":
        if args.size is not None:
            raise GenlabError("`size` applies to models that generate volumes (porous-gan)")
        paths = tools.interpolate_run(run, args.start, args.end, args.steps, args.spherical, args.data_dir, args.out,
                                      label=args.label, to_label=args.to_label)
    elif args.command == "latent-map":
        paths = tools.latent_map_run(run, args.projection, args.limit, args.grid, args.seed, data_dir=args.data_dir,
                                     out_dir=args.out)
    elif args.command == "concept":
        info, paths = tools.concept_run(run, args.attribute, args.attributes, args.split, args.images,
                                        args.strengths, args.limit, args.data_dir, args.out)
        print(f"{info['attribute']}: {info['with']} images with, {info['without']} without; "
              f"vector norm {info['norm']:.3f}")
    else:
        results, path = tools.probe_run(run, parse_budgets(args.labels_per_class), args.seeds, args.data_dir,
                                        out=args.out)
        print(f"test accuracy (%) of a logistic regression on {results['dataset']}, "
              f"mean ± std over seeds {', '.join(map(str, results['seeds']))}:")
        print(results["table"])
        paths = [path]
    for path in paths:
        print(path)


def _experiment(args: argparse.Namespace) -> None:
    from .experiments import EXPERIMENTS

    summary = EXPERIMENTS[args.name](data=args.data, data_dir=args.data_dir, out=args.out, model=args.model,
                                     epochs=args.epochs, train_size=args.train_size, seed=args.seed,
                                     progress=not args.quiet)
    for name, v in summary["variants"].items():
        print(f"{name:>10}: test recon {v['val_recon_nats']:.2f} nats, KL {v['val_kl_nats']:.2f} nats")
    print(summary["figure"])


def _datasets(args: argparse.Namespace) -> None:
    from .data import default_data_dir, list_datasets

    root = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    rows = [("name", "shape", "train", "test", "classes", "here", "description")]
    for info in list_datasets():
        available, where = info.locate(root)
        shape = "x".join(map(str, info.image_shape))
        rows.append((info.name, shape, str(info.splits.get("train", "")), str(info.splits.get("test", "")),
                     str(info.num_classes or "-"), "yes" if available else "no", info.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    print(f"\nfiles are read from {root} (set --data-dir or GENLAB_DATA); "
          "also: folder:PATH (class sub-folders give labels), npz:PATH (arrays x, y), "
          "volume:PATH[,edge=64,stride=32] (cubes of a 3-D image: TIFF stack, .npy or raw)")


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    path = run_demo(args.out, fresh=args.fresh, progress=not args.quiet)
    print(f"report: {path}")


def _explain(args: argparse.Namespace) -> None:
    from . import explain

    if args.topic == "transposed-conv":
        paths = explain.transposed_conv(kernel=args.kernel, stride=args.stride, padding=args.padding,
                                        size=args.size, out_dir=args.out, seed=args.seed)
    else:
        paths = explain.checkerboard(out_dir=args.out, seed=args.seed, steps=args.steps)
    for value in (paths.values() if isinstance(paths, dict) else [paths]):
        if isinstance(value, Path):
            print(value)


#: settings whose flag has another name
FLAG_NAMES = {"out_dir": "out", "n": "num"}


def as_flags(message: str, options: set[str]) -> str:
    """A library message with its settings (written `name` or `name=value`) as this command's
    flags: `lr` -> --lr, `resume=True` -> --resume, `out_dir=runs/x` -> --out runs/x; a setting
    without a flag of its own -> --set name=value."""
    def flag(match: re.Match) -> str:
        name, has_value, value = match[1].partition("=")
        option = "--" + FLAG_NAMES.get(name, name).replace("_", "-")
        if option not in options:
            return f"--set {match[1]}" if "--set" in options else match[1]
        if value == "True":
            return option
        return f"{option} {value}" if has_value else option
    return re.sub(r"`([A-Za-z_]\w*(?:=[^`]*)?)`", flag, message)


def _options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The flags of ``genlab COMMAND``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for action in sub.choices[command]._actions for s in action.option_strings}


def _translate(args: argparse.Namespace) -> None:
    from .commands.translate import translate_files
    from .train import load_run

    def note(message: str) -> None:
        print(f"genlab: note: {message}", file=sys.stderr)

    for path in translate_files(load_run(args.run), args.images, args.out, note=note, direction=args.direction):
        print(path)


def _compress(args: argparse.Namespace) -> None:
    from .families.codec.bitstream import compress_files
    from .train import load_run

    for path in compress_files(load_run(args.run), args.images, args.out,
                               note=lambda m: print(f"genlab: {m}", file=sys.stderr)):
        print(path)


def _decompress(args: argparse.Namespace) -> None:
    from .families.codec.bitstream import decompress_files
    from .train import load_run

    for path in decompress_files(load_run(args.run), args.files, args.out):
        print(path)


def _serve(args: argparse.Namespace) -> None:
    from .serve import serve

    serve(args.run, args.host, args.port, args.data_dir)


COMMANDS = {"serve": _serve, "datasets": _datasets, "train": _train, "sample": _run, "reconstruct": _run, "encode": _run,
            "evaluate": _run, "demo": _demo, "explain": _explain,
            "interpolate": _latent, "latent-map": _latent, "concept": _latent, "probe": _latent,
            "experiment": _experiment, "make-volume": _make_volume, "translate": _translate,
            "compress": _compress, "decompress": _decompress}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        COMMANDS[args.command](args)
    except GenlabError as err:
        print(f"genlab: error: {as_flags(str(err), _options(parser, args.command))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line for the user, the traceback with GENLAB_DEBUG=1
        if os.environ.get("GENLAB_DEBUG"):
            raise
        print(f"genlab: internal error: {type(err).__name__}: {first_line(err, 300)} "
              "(run again with GENLAB_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
