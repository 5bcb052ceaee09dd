"""The ``genlab`` command: parses arguments and calls the library; no logic of its own.

The CLI names no family. ``genlab train``'s setting flags are made from the fields of the settings
dataclasses (:class:`~genlab.train.TrainConfig` and every registered model class's config): their
types, ``Literal`` choices and the descriptions of their docstrings' ``Attributes:`` sections. A
family's own commands (:attr:`genlab.family.Family.commands`), its versions of the run commands
(``run_tools``) and the flags it adds to them (``tool_arguments``) come from its record.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import GenlabError, GenlabWarning, first_line, os_error_line
from .help import HELP, cached_page, top_help
from .settings import DATA_FIELDS, attribute_docs, flag_kind, merged_kind, setting_fields

#: config fields that describe the training data: a run reads them from its dataset, not from flags
def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _value(text: str) -> Any:
    """A JSON value (``3``, ``0.5``, ``true``, ``[1, 2]``), or the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE, got '{text}'")
    return key.replace("-", "_"), _value(value)


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
        model = {k: v for k, v in (settings.get("model") or {}).items() if k not in DATA_FIELDS}
        return {**model, **(settings.get("train") or {})}
    return settings


# ------------------------------------------------------------------ flags from settings
def _flag_options(kind: str, choices: tuple) -> dict[str, Any]:
    """``add_argument`` keywords that read a setting of this kind."""
    if kind == "bool":
        return {"action": argparse.BooleanOptionalAction}
    if kind == "choice":
        types_ = {type(c) for c in choices}
        reader = str if types_ == {str} else int if types_ == {int} else _value
        return {"type": reader, "choices": list(choices)}
    return {"int": {"type": int, "metavar": "N"}, "float": {"type": float, "metavar": "X"}, "str": {},
            "ints": {"type": _ints, "metavar": "N[,N...]"}, "floats": {"type": _floats, "metavar": "X[,X...]"},
            }.get(kind, {"type": _value, "metavar": "VALUE"})


def _add_setting_flags(parser: argparse.ArgumentParser, shown_for: str | None = None) -> tuple[str, ...]:
    """A flag for each setting of :func:`setting_fields` (``--field-name``, unset by default),
    training settings and model settings in two groups; returns the settings' names.

    ``shown_for`` shapes the help of ``genlab train [MODEL] --help`` only ("" without a model):
    the training settings by their first sentence, and the settings of that model alone (none
    without one), by its config's own descriptions, with its defaults. Every flag parses whatever
    the help shows."""
    taken = {s for action in parser._actions for s in action.option_strings}
    model_help = {} if shown_for is None else _model_settings_help(shown_for)
    title = ("model settings (each model takes those of its config)" if shown_for is None
             else f"settings of {shown_for}" if shown_for
             else "model settings: each model's own, listed by `genlab train MODEL --help`")
    groups = {True: parser.add_argument_group("training settings"), False: parser.add_argument_group(title)}
    names = []
    for name, entry in setting_fields().items():
        flag = "--" + name.replace("_", "-")
        if flag in taken:
            continue   # a flag of the command's own (--data, --out ...)
        text = entry["help"]
        if shown_for is not None:
            text = _first_sentence(text) if entry["training"] else model_help.get(name, argparse.SUPPRESS)
        if text is not argparse.SUPPRESS:
            text = text.replace("%", "%%") or None
        groups[entry["training"]].add_argument(flag, dest=name, default=None, help=text,
                                               **_flag_options(*merged_kind([flag_kind(h) for h in entry["hints"]])))
        names.append(name)
    return tuple(names)


def _first_sentence(text: str) -> str:
    """A description up to its first full stop, colon, semicolon or parenthesis past its first few
    words (``genlab train --help`` is a page, not the docs: they have the whole text)."""
    ends = [i for i in (text.find(mark, 15) for mark in (". ", "; ", ": ", " (")) if i >= 0]
    return text[:min(ends)] if ends else text.rstrip(".")


def _model_settings_help(model: str) -> dict[str, str]:
    """``{field: description (default VALUE)}`` of ``model``'s settings ({} for "")."""
    from .registry import model_settings

    if not model:
        return {}
    model_class, preset = model_settings(model)
    config = model_class.config_class
    docs = attribute_docs(config)
    found = {}
    for f in dataclasses.fields(config):
        default = preset.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
        shown = "" if default is None or callable(default) else f" (default {default})"
        found[f.name] = docs.get(f.name, "") + shown
    return found


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    """The options of a folder of images (``folder:PATH,key=value``) as flags of ``train``."""
    group = parser.add_argument_group("a folder of images (--data folder:PATH)")
    group.add_argument("--image-size", type=int, metavar="S", help="train at S x S: the shorter side resized to S, "
                       "then the centre (or, with --crop random, a random) S x S crop (also progan's side)")
    group.add_argument("--crop", choices=["center", "random"], help="the crop of training images (default center)")
    group.add_argument("--image-channels", type=int, choices=[1, 3], metavar="{1,3}",
                       help="grey (1) or colour (3) images (default: grey when every image is grey)")
    group.add_argument("--augment", metavar="KIND", help="random flips of training batches: hflip, vflip, "
                       "hflip+vflip, or dihedral (the 8 flips and quarter turns)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="processes that decode the images into the cache (default: one per core for a large folder)")


def _data_with_options(args: argparse.Namespace, data: str | None, settings: dict[str, Any]) -> str | None:
    """``data`` with the folder options given as flags (``--image-size 64`` -> ``,size=64``); the
    image size also goes to a model that takes one (progan's ``image_size``)."""
    from .registry import model_settings

    if args.workers is not None:
        if args.workers < 0:
            raise GenlabError("--workers must be 0 (decode in this process) or more")
        os.environ["GENLAB_WORKERS"] = str(args.workers)   # read by the loader, here and in torchrun's workers
    options = {"size": args.image_size, "crop": args.crop, "channels": args.image_channels, "augment": args.augment}
    options = {k: v for k, v in options.items() if v is not None}
    model_takes_size = "image_size" in {f.name for f in dataclasses.fields(model_settings(args.model)[0].config_class)}
    if args.image_size is not None and model_takes_size:
        settings["image_size"] = args.image_size
    if not options:
        return data
    if data is not None and data.startswith(("folder:", "hf:")):
        return data + "".join(f",{k}={v}" for k, v in options.items())
    if set(options) == {"size"} and model_takes_size:
        return data
    flags = {"size": "--image-size", "crop": "--crop", "channels": "--image-channels", "augment": "--augment"}
    given = ", ".join(flags[k] for k in options)
    if data is None and args.resume:
        raise GenlabError(f"{given} set how a folder of images is read, and a resumed run reads its data as before; "
                          "drop them")
    raise GenlabError(f"{given} only apply to a folder of images (--data folder:PATH) or a Hugging Face dataset "
                      f"(hf:NAME), and {data or 'digits'} is neither")


# ------------------------------------------------------------------------------ parser
def build_parser(train_help_for: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; ``train_help_for`` (a model name, or "") shapes the help of
    ``genlab train [MODEL] --help`` (:func:`_add_setting_flags`)."""
    from .registry import FAMILIES, dataset_kinds, model_names

    parser = argparse.ArgumentParser(prog="genlab", description="Deep generative models of images.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, handler: Callable[[argparse.Namespace], Iterable[Any] | None], **kwargs: Any):
        kwargs.setdefault("help", HELP.get(name))   # the core's commands: their line of `genlab --help`
        p = parsers[name] = sub.add_parser(name, **kwargs)
        p.set_defaults(_handler=handler)
        return p

    p = command("datasets", _datasets)
    p.add_argument("--data-dir", help="folder of dataset files (default $GENLAB_DATA or ~/.cache/genlab/data)")

    p = command("train", _train,
                usage="%(prog)s MODEL [--data DATA] [--data-dir DIR] [--out OUT] [--config FILE] [--resume] "
                "[--nproc N] [--set KEY=VALUE] [--quiet] [--SETTING VALUE ...]")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help=f"one of: {', '.join(model_names())}; with --resume --out RUN, the run's (may be left out)")
    kinds = "".join(f", {kind}:SPEC" for kind in dataset_kinds())
    p.add_argument("--data", help=f"dataset name (genlab datasets), folder:PATH, hf:NAME, npz:PATH{kinds} "
                   "(default digits; with --resume, the run's)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of dataset files (as for genlab datasets)")
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA)")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of model and training settings")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=int, metavar="N", help="data-parallel processes on this machine, started by torchrun")
    p.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="a setting by its name, as in a --config file (e.g. --set snapshot_every=100)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_flags(p)
    p.set_defaults(_settings=_add_setting_flags(p, train_help_for))
    if train_help_for == "":
        p.epilog = "Each model's own settings, with their defaults: genlab train MODEL --help."

    p = command("serve", _serve)
    p.add_argument("run")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir")

    p = command("sample", _on_run)
    p.add_argument("run")
    p.add_argument("-n", "--num", type=int, help="samples (default 64 images)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", type=int, help="class of the samples (conditional models)")
    p.add_argument("--sampler", help="denoising sampler (models that sample by denoising): ddim, ddpm (all "
                   "timesteps), dpm++2m or dpm++3m (DPM-Solver++: more accurate than DDIM at the same steps); "
                   "default the model's")
    p.add_argument("--steps", type=int, help="denoising steps, 1 to the model's timesteps (models that sample by "
                   "denoising; default the model's: 20 for a diffusion model trained now)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (conditional models that sample "
                   "by denoising; 1: none)")
    p.add_argument("--eta", type=float, help="DDIM noise in [0, 1] (models that sample by denoising; "
                   "0: deterministic)")
    p.add_argument("--out", help="PNG path (default RUN/samples.png); a model that samples by denoising also "
                   "writes the denoising as .gif")

    p = command("reconstruct", _on_run)
    p.add_argument("run")
    p.add_argument("-n", "--num", type=int, default=32)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--data-dir")
    p.add_argument("--out", help="PNG path (default RUN/reconstructions.png)")

    p = command("encode", _on_run)
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--data-dir")
    p.add_argument("--out", help=".npz path (default RUN/latents-SPLIT.npz)")

    p = command("evaluate", _on_run)
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--mc-samples", type=int, default=10, help="Monte-Carlo draws per image for the ELBO")
    p.add_argument("--metrics", type=_names, help="comma-separated: default (reconstruction, ELBO), nll "
                   "(importance-weighted), fid, kid, pr (precision/recall), dc (density/coverage); default: "
                   "default (a family that evaluates its runs its own way names its own)")
    p.add_argument("--importance-samples", type=int, default=5000,
                   help="draws per image for the importance-weighted nll (default 5000)")
    p.add_argument("--num-samples", type=int, help="generated images for fid/kid/pr/dc (default: size of --split)")
    p.add_argument("--features", default="classifier", choices=["classifier", "inception"],
                   help="feature network for fid/kid/pr/dc (default: a classifier genlab trains on the dataset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--out", help="JSON path (default RUN/evaluation-SPLIT.json)")

    p = command("interpolate", _on_run)
    p.add_argument("run")
    ends = ("a test-image index (models with an encoder), a seed (models without one: the z that "
            "model.prior_noise(1, torch.Generator().manual_seed(SEED)) draws), or a latent file "
            "(.npy, .npz, .txt)")
    p.add_argument("--from", dest="start", required=True, metavar="A", help=f"start: {ends}")
    p.add_argument("--to", dest="end", metavar="B", help=f"end: {ends}; omitted with --to-label")
    p.add_argument("--label", type=int, metavar="L",
                   help="class of the whole path (conditional models without an encoder)")
    p.add_argument("--to-label", type=int, metavar="M",
                   help="with --label L: keep A's z and move the class from L to M (conditional models without "
                   "an encoder)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--spherical", action="store_true", help="slerp: great circle, norm interpolated linearly")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="output folder (default RUN)")

    p = command("latent-map", _on_run)
    p.add_argument("run")
    p.add_argument("--projection", default="pca", choices=["pca", "tsne"], help="for codes wider than 2")
    p.add_argument("--limit", type=int, default=5000,
                   help="test images to encode, or draws from the prior for a model without an encoder (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws from the prior (models without an encoder)")
    p.add_argument("--grid", type=int, default=15, help="manifold grid side (default 15)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="output folder (default RUN)")

    p = command("concept", _on_run)
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

    p = command("probe", _on_run)
    p.add_argument("run")
    p.add_argument("--labels-per-class", default="10,100,all", help="label budgets, e.g. 10,100,all")
    p.add_argument("--seeds", type=_ints, default=(0, 1, 2), help="draws of the labelled images (default 0,1,2)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="JSON path (default RUN/probe.json)")

    p = command("demo", _demo)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--fresh", action="store_true", help="retrain models already trained by an earlier demo")
    p.add_argument("--quiet", action="store_true")

    p = command("translate", _on_run)
    p.add_argument("run")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, the inputs the run takes (noisy, "
                   "small or grey images: a colour file is made grey first), any size the network takes")
    p.add_argument("--out", help="folder for the results (default: beside each input, as NAME-TASK.png)")
    p.add_argument("--overwrite", action="store_true", help="replace results that already exist (default: refuse)")

    p = command("export", _export)
    p.add_argument("run")
    p.add_argument("--format", default="torchscript", choices=["torchscript", "onnx"])
    p.add_argument("--out", help="file path (default RUN/decoder.pt, RUN/translator.onnx, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace the file if it exists (default: refuse)")
    p.add_argument("--batch-size", type=int, default=2, help="items of the example input traced (default 2)")
    p.add_argument("--direction", help="a-to-b or b-to-a (runs that translate both ways; default a-to-b)")

    p = command("explain", _explain)
    p.add_argument("topic", choices=["transposed-conv", "checkerboard"])
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--padding", type=int, default=1)
    p.add_argument("--size", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/explain")

    for record in FAMILIES:   # each family's own commands
        for c in record.commands:
            c.arguments(command(c.name, c.run, help=c.help))
    owners: dict[str, dict[str, tuple[list[str], Any]]] = {}   # {command: {dest: (families, default)}}
    for record in FAMILIES:   # the flags families add to the run commands
        for name, add in record.tool_arguments.items():
            if name in parsers:
                flags = owners.setdefault(name, {})
                for dest, default in _add_family_flags(parsers[name], add, flags):
                    flags.setdefault(dest, ([], default))[0].append(record.name)
                parsers[name].set_defaults(_family_flags=flags)
    return parser


def _add_family_flags(parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser], None],
                      added: dict[str, Any]) -> list[tuple[str, Any]]:
    """Add to ``parser`` the flags ``add`` adds; a flag of the same name that another family added
    (in ``added``) is shared, and one of the command's own is left as it is. Returns the (dest,
    default) of the family's flags."""
    scratch = argparse.ArgumentParser(add_help=False)
    add(scratch)
    taken = {s: action for action in parser._actions for s in action.option_strings}
    flags = []
    for action in scratch._actions:
        known = [taken[s] for s in action.option_strings if s in taken]
        if not known:
            parser._add_action(action)
            flags.append((action.dest, action.default))
        elif known[0].dest in added:
            flags.append((known[0].dest, known[0].default))
    return flags


# ---------------------------------------------------------------------------- commands
def _train(args: argparse.Namespace) -> list[str]:
    from .registry import model_settings, resolve_model_name
    from .runs import default_run_dir, run_name
    from .train import TrainConfig

    if args.model is None:
        if not (args.resume and args.out):
            raise GenlabError("name the MODEL to train, or the run to continue with --resume --out RUN")
        args.model = _saved_model_name(args.out)
    args.model = resolve_model_name(args.model)
    settings = _read_config_file(args.config) if args.config else {}
    settings.update(dict(args.set))
    settings.update({name: getattr(args, name) for name in args._settings if getattr(args, name) is not None})
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    train_settings = {k: settings.pop(k) for k in list(settings) if k in train_fields}
    data = settings.pop("data", None) or args.data   # None: the run's with --resume, else digits
    data = _data_with_options(args, data, settings)
    # The one place the CLI names a run folder, as the library does: the model's settings over its preset.
    out = args.out or str(default_run_dir(run_name(args.model, data or "digits",
                                                   model_settings(args.model, **settings)[1]), args.resume))
    if args.resume and int(os.environ.get("RANK", "0")) == 0:
        finished = _resumed_run_notes(out, data, train_settings)
        if finished:
            return [finished]
    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        from .train.trainer import check_before_launch

        check_before_launch(args.model, args.nproc, out, args.resume, **train_settings)
        return _launch(args, out)
    from .train import distributed, train

    train(args.model, data, data_dir=args.data_dir, out_dir=out, resume=args.resume,
          progress=not args.quiet, model_settings=settings, **train_settings)
    distributed.shutdown()  # after a run that ended well; on an error torchrun stops the others
    if int(os.environ.get("RANK", "0")) != 0:
        return []
    stopped = _stopped_at_max_steps(out)
    if stopped is not None:
        return [f"trained {args.model} for {stopped} steps (max_steps) and stopped; run folder: {out}; continue "
                f"it with --resume --out {out} --max-steps N (more than {stopped}, or 0 for no limit)"]
    return [f"trained {args.model}; run folder: {out}"]


def _stopped_at_max_steps(run_dir: str) -> int | None:
    """The step a run stopped at by ``max_steps`` before its epochs were done; None otherwise."""
    from .runs import has_checkpoint, read_state

    if not has_checkpoint(Path(run_dir)):
        return None
    state = read_state(Path(run_dir))
    return None if state["done"] else state["step"]


def _saved_model_name(out: str) -> str:
    """The model of the run in ``out`` (``genlab train --resume --out RUN`` without a MODEL)."""
    from .runs import read_config

    name = read_config(out).get("name")
    if not isinstance(name, str):
        raise GenlabError(f"{Path(out) / 'config.json'} names no model; name the MODEL to resume it with")
    return name


def _resumed_run_notes(out: str, data: str | None, train_settings: dict[str, Any]) -> str | None:
    """Before resuming the run in ``out``: a note on stderr for data other than the run's, and the
    line to print instead of training when the run has finished the epochs it is given already."""
    from .runs import CONFIG_FILE, has_checkpoint, read_config, read_state

    if not (Path(out) / CONFIG_FILE).is_file() or not has_checkpoint(Path(out)):
        return None   # the library says what is missing
    saved = read_config(out)
    trained_on = saved.get("data", {}).get("name")
    if data is not None and isinstance(trained_on, str) and data != trained_on:
        print(f"genlab: note: the run was trained on {trained_on}; it continues on {data}", file=sys.stderr)
    state = read_state(Path(out))
    epochs = train_settings.get("epochs", saved.get("train", {}).get("epochs"))
    if state["done"] and state["epoch"] == epochs:
        return (f"the run in {out} has finished its {epochs} epochs already; nothing to do "
                f"(give --epochs more than {epochs} to train it further)")
    max_steps = train_settings.get("max_steps", saved.get("train", {}).get("max_steps"))
    if not state["done"] and isinstance(max_steps, int) and 0 < max_steps <= state["step"]:
        return (f"the run in {out} has taken its {max_steps} steps (max_steps) already; nothing to do "
                f"(give --max-steps more than {max_steps}, or 0 for no limit, to train it further)")
    return None


def _launch(args: argparse.Namespace, out: str) -> list[str]:
    """``genlab train ... --nproc N``: the same command in N processes under torchrun, with the
    run folder ``out`` chosen once here."""
    from .train import distributed

    argv = list(args.argv)
    for i, word in enumerate(argv):
        if word == "--nproc":
            del argv[i:i + 2]
            break
        if word.startswith("--nproc="):
            del argv[i]
            break
    if not args.out:
        argv += ["--out", out]
    code = distributed.launch(argv, args.nproc)
    if code:
        raise GenlabError(f"the data-parallel run ended with exit code {code} (its processes' messages are above)")
    return []


def _on_run(args: argparse.Namespace) -> Iterable[Any]:
    """A command on a trained run: the run's family's own version of it (``run_tools``) where the
    family declares one, otherwise the core's, given the flags the family added to it."""
    from .registry import FAMILIES, family_of
    from .runs import check_not_run_file
    from .train import load_run

    if getattr(args, "out", None):
        check_not_run_file(args.out)
    run = load_run(args.run)
    record = family_of(run.model)
    options = {}
    for dest, (families, default) in getattr(args, "_family_flags", {}).items():
        if getattr(args, dest, default) in (None, default):
            continue
        if record.name not in families:
            models = [m for f in FAMILIES if f.name in families for m in f.presets]
            raise GenlabError(f"`{dest}` applies to {', '.join(models)} runs; {run.path} holds a run of "
                              f"{run.model.name}")
        options[dest] = getattr(args, dest)
    tool = record.run_tools.get(args.command)
    if tool is not None:
        return tool(run, args)
    return RUN_COMMANDS[args.command](run, args, **options)


def _sample(run, args: argparse.Namespace, **options: Any) -> list[Path]:
    from .commands import run as tools

    return tools.sample_files(run, 64 if args.num is None else args.num, args.seed, args.label, args.out,
                              steps=args.steps, guidance=args.guidance, eta=args.eta, sampler=args.sampler,
                              **options)


def _reconstruct(run, args: argparse.Namespace, **options: Any) -> list[Path]:
    from .commands import run as tools

    return [tools.reconstruct(run, args.num, args.split, args.data_dir, args.out, **options)]


def _encode(run, args: argparse.Namespace, **options: Any) -> list[Path]:
    from .commands import run as tools

    return [tools.encode(run, args.split, args.data_dir, out=args.out, **options)]


def _evaluate(run, args: argparse.Namespace, **options: Any) -> list[str]:
    from .commands import run as tools

    results, path = tools.evaluate_run(run, args.split, args.mc_samples, args.seed, args.data_dir, args.out,
                                       args.metrics, args.num_samples, args.features,
                                       importance_samples=args.importance_samples, **options)
    return [tools.format_metrics(results), f"written to {path}"]


def _interpolate(run, args: argparse.Namespace, **options: Any) -> list[Path]:
    from .commands import latent as tools

    return tools.interpolate_run(run, args.start, args.end, args.steps, args.spherical, args.data_dir, args.out,
                                 label=args.label, to_label=args.to_label, **options)


def _latent_map(run, args: argparse.Namespace, **options: Any) -> list[Path]:
    from .commands import latent as tools

    return tools.latent_map_run(run, args.projection, args.limit, args.grid, args.seed, data_dir=args.data_dir,
                                out_dir=args.out, **options)


def _concept(run, args: argparse.Namespace, **options: Any) -> list[Any]:
    from .commands import latent as tools

    info, paths = tools.concept_run(run, args.attribute, args.attributes, args.split, args.images,
                                    args.strengths, args.limit, args.data_dir, args.out, **options)
    return [f"{info['attribute']}: {info['with']} images with, {info['without']} without; "
            f"vector norm {info['norm']:.3f}", *paths]


def _probe(run, args: argparse.Namespace, **options: Any) -> list[Any]:
    from .commands import latent as tools
    from .latent.probe import parse_budgets

    results, path = tools.probe_run(run, parse_budgets(args.labels_per_class), args.seeds, args.data_dir,
                                    out=args.out, **options)
    return [f"test accuracy (%) of a logistic regression on {results['dataset']}, "
            f"mean ± std over seeds {', '.join(map(str, results['seeds']))}:", results["table"], path]


def _translate(run, args: argparse.Namespace, **options: Any) -> list[Path]:
    from .commands.translate import translate_files

    def note(message: str) -> None:
        print(f"genlab: note: {message}", file=sys.stderr)

    return translate_files(run, args.images, args.out, note=note, overwrite=args.overwrite, **options)


def _export(args: argparse.Namespace) -> list[Any]:
    from .commands.export import export_run

    lines: list[str] = []
    path = export_run(args.run, args.format, args.out, overwrite=args.overwrite, direction=args.direction,
                      batch_size=args.batch_size, report=lines.append)
    return [f"written to {path}", *lines]


#: the core's version of each command on a trained run: ``(run, args, **family flags) -> lines``
RUN_COMMANDS = {"sample": _sample, "reconstruct": _reconstruct, "encode": _encode, "evaluate": _evaluate,
                "interpolate": _interpolate, "latent-map": _latent_map, "concept": _concept, "probe": _probe,
                "translate": _translate}


def _datasets(args: argparse.Namespace) -> list[str]:
    from .data import default_data_dir, list_datasets
    from .registry import FAMILIES

    root = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    rows = [("name", "shape", "train", "test", "classes", "here", "description")]
    for info in list_datasets():
        available, where = info.locate(root)
        shape = "x".join(map(str, info.image_shape))
        rows.append((info.name, shape, str(info.splits.get("train", "")), str(info.splits.get("test", "")),
                     str(info.num_classes or "-"), "yes" if available else "no", info.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    kinds = ["folder:PATH (class sub-folders give labels)", "npz:PATH (arrays x, y)",
             *(record.dataset_help for record in FAMILIES if record.dataset_help)]
    return lines + [f"\nfiles are read from {root} (set --data-dir or GENLAB_DATA); also: {', '.join(kinds)}"]


def _demo(args: argparse.Namespace) -> list[str]:
    from .demo import run_demo

    return [f"report: {run_demo(args.out, fresh=args.fresh, progress=not args.quiet)}"]


def _explain(args: argparse.Namespace) -> list[Path]:
    from . import explain

    if args.topic == "transposed-conv":
        paths = explain.transposed_conv(kernel=args.kernel, stride=args.stride, padding=args.padding,
                                        size=args.size, out_dir=args.out, seed=args.seed)
    else:
        paths = explain.checkerboard(out_dir=args.out, seed=args.seed, steps=args.steps)
    return [value for value in (paths.values() if isinstance(paths, dict) else [paths]) if isinstance(value, Path)]


def _serve(args: argparse.Namespace) -> None:
    from .serve import serve

    serve(args.run, args.host, args.port, args.data_dir)


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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """genlab's own warnings as one line, ``genlab: note: ...``; others as Python shows them."""
    if issubclass(category, GenlabWarning):
        print(f"genlab: note: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def _help_page(argv: list[str]) -> str:
    """The text ``genlab train [MODEL] --help`` prints: the parser's help, shaped for the model
    (the page of ``genlab train`` without one, or for a name genlab does not know)."""
    import contextlib
    import io

    from .registry import resolve_model_name

    name = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else ""
    try:
        name = resolve_model_name(name) if name else ""
    except GenlabError:
        name = ""
    page = io.StringIO()
    with contextlib.redirect_stdout(page), contextlib.suppress(SystemExit):
        build_parser(name).parse_args(["train", "--help"])
    return page.getvalue()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):   # without loading torch or any model
        print(top_help())
        if argv:
            raise SystemExit(0)   # as argparse's --help does
        return 0
    if argv[0] == "train" and {"-h", "--help"} & set(argv):   # from the cache after the first time
        print(cached_page(argv, lambda: _help_page(argv)), end="")
        raise SystemExit(0)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    warnings.showwarning = _show_warning
    try:
        for line in args._handler(args) or ():
            print(line)
    except GenlabError as err:
        print(f"genlab: error: {as_flags(str(err), _options(parser, args.command))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line for the user, the traceback with GENLAB_DEBUG=1
        line = os_error_line(err) if isinstance(err, OSError) else None
        if line is not None:   # a path the user gave, or the machine: the path and the problem
            print(f"genlab: error: {line}", file=sys.stderr)
            return 2
        if os.environ.get("GENLAB_DEBUG"):
            raise
        print(f"genlab: internal error: {type(err).__name__}: {first_line(err, 300)} "
              "(run again with GENLAB_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
