"""Every model family, one line each, and how a model is built or loaded by name.

This is the one module of the core that names families: the rest of the core asks it for the
records (:class:`~genlab.family.Family`) and reads their fields and hooks. A family outside this
package joins with :func:`register` (the toy family of the tests does).

A name selects a family and default settings: ``conv-vae`` is the VAE family with
``arch="conv"``. Any setting can be overridden, e.g.
``build_model("conv-vae", image_shape=(1, 28, 28), latent_dim=2)``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from .errors import GenlabError
from .names import resolve
from .family import Family
from .families import autoencoder, codec, cyclegan, diffusion, gan, image_to_image, pca, porous, progan, vae
from .models.base import GenerativeModel, out_of_memory
from .devices import check_device
from .runs import CONFIG_FILE, WEIGHTS_FILE, check_fits_in_memory, check_weights, folder_path, load_state, read_config

FAMILIES: list[Family] = [
    pca.FAMILY,
    autoencoder.FAMILY,
    vae.FAMILY,
    gan.FAMILY,
    diffusion.FAMILY,
    porous.FAMILY,
    image_to_image.FAMILY,
    cyclegan.FAMILY,
    codec.FAMILY,
    progan.FAMILY,
]


def register(family: Family) -> Family:
    """Add a family (or replace the one of the same name): its models, commands and endpoints
    appear in ``genlab train``, ``evaluate``, ``serve`` and ``--help`` like those of genlab's own."""
    taken = {name: f.name for f in FAMILIES for name in f.presets if f.name != family.name}
    clash = sorted(set(family.presets) & set(taken))
    if clash:
        raise GenlabError(f"model name(s) {', '.join(clash)} of family {family.name!r} are taken by "
                          f"{taken[clash[0]]!r}; choose other names")
    FAMILIES[:] = [f for f in FAMILIES if f.name != family.name] + [family]
    return family


def unregister(name: str) -> None:
    """Remove the family ``name`` (what :func:`register` added)."""
    FAMILIES[:] = [f for f in FAMILIES if f.name != name]


def family(name: str) -> Family:
    """The record of the family ``name`` (or a name older run folders gave it)."""
    for f in FAMILIES:
        if f.answers_to(name):
            return f
    raise GenlabError(f"unknown model family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


def family_of(model: GenerativeModel | str) -> Family:
    """The record of a model, or of a model name (``conv-vae``, or another name for it). A model
    of a family no record declares (one built by hand and passed to ``train``) gets a record with
    no hooks: it trains, saves and samples like any other."""
    if isinstance(model, GenerativeModel):
        known = [f for f in FAMILIES if f.answers_to(model.family)]
        return known[0] if known else Family(name=model.family, model_class=type(model), presets={})
    name = resolve_model_name(model)
    return next(f for f in FAMILIES if name in f.presets)


def model_names() -> list[str]:
    """Every model name, family by family."""
    return [name for f in FAMILIES for name in f.presets]


def resolve_model_name(name: str) -> str:
    """genlab's name for a model: ``name`` itself, or what another name for it stands for; an
    unknown name gets one line naming the closest known one."""
    aliases = {alias: target for f in FAMILIES for alias, target in f.aliases.items()}
    return resolve(name, model_names(), aliases, "model")


def model_settings(name: str, **overrides: Any) -> tuple[type[GenerativeModel], dict[str, Any]]:
    """The model class and the merged settings for a model name (or another name for it, such
    as ``ddpm`` for ``diffusion``)."""
    name = resolve_model_name(name)
    record = family_of(name)
    return record.model_class_of(name), {**record.presets[name], **{k: v for k, v in overrides.items() if v is not None}}


def build_model(name: str, **settings: Any) -> GenerativeModel:
    """Build a fresh model by name; ``settings`` override the config fields
    (``image_shape`` and, for conditional models, ``num_classes`` describe the data). The model
    is first built on the meta device (no memory), and one whose weights would not fit in the
    memory left is refused, naming the setting that makes it so large, before anything is
    allocated."""
    cls, merged = model_settings(name, **settings)
    name = resolve_model_name(name)
    _check_size(cls, merged, name, settings)
    with out_of_memory(f"building the {name} model", "check its settings (widths, latent size)"):
        return cls.from_config(merged, name=name)


def _weight_bytes(cls: type[GenerativeModel], settings: dict[str, Any], name: str) -> int | None:
    """The bytes of the weights of ``cls`` built from ``settings`` on the meta device, or None
    where the model cannot be built there (its own checks then speak when it is built)."""
    try:
        with torch.device("meta"):
            model = cls.from_config(settings, name=name)
    except GenlabError:
        raise
    except Exception:  # noqa: BLE001  (a layer that cannot live on the meta device: no estimate)
        return None
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _check_size(cls: type[GenerativeModel], merged: dict[str, Any], name: str, given: dict[str, Any]) -> None:
    from .memory import available_bytes

    needed = _weight_bytes(cls, merged, name)
    free = available_bytes()
    if needed is None or free is None or needed <= free:
        return
    defaults = model_settings(name)[1]
    culprits = []
    for key, value in given.items():   # the settings without which the model would fit
        if value is None or key in ("image_shape", "num_classes"):
            continue
        smaller = {k: v for k, v in merged.items() if k != key}
        if key in defaults:
            smaller[key] = defaults[key]
        size = _weight_bytes(cls, smaller, name)
        if size is not None and size <= free:
            culprits.append(f"`{key}={value}`")
    because = f" (set by {', '.join(culprits)})" if culprits else ""
    raise GenlabError(f"a {name} model of these settings has {needed / 2 ** 30:,.1f} GiB of weights{because}, more "
                      f"than the {free / 2 ** 30:.1f} GiB of memory left; choose smaller settings (widths, latent size)")


def model_from_config(config: dict[str, Any], source: Path, meta: bool = False) -> GenerativeModel:
    """The model a run's config describes (``family``, ``name``, ``model`` settings), with one
    clear line naming ``source`` when it does not describe one; ``meta``: built on the meta
    device, without memory, to check its size first."""
    name, settings = config.get("family"), config.get("model")
    try:
        record = family(name) if isinstance(name, str) else None
    except GenlabError:
        record = None
    if record is None:
        raise GenlabError(f"{source} names an unknown model family {name!r}; the run folder is damaged")
    if not isinstance(settings, dict):
        raise GenlabError(f"{source} has no 'model' section of settings; the run folder is damaged")
    preset = config.get("name", record.name)
    preset = preset if isinstance(preset, str) else record.name
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            cls = record.model_class_of(preset)
            return cls.from_config(cls.config_class.from_saved(settings), name=preset)
    except GenlabError as err:
        raise GenlabError(f"{source}: {err}; the run folder is damaged") from None
    except (TypeError, ValueError, OverflowError, RuntimeError) as err:
        raise GenlabError(f"{source} describes no {record.name} model that can be built ({err}); "
                          "the run folder is damaged") from None


def load_model(directory: str | Path, map_location: str | None = None) -> GenerativeModel:
    """Load a model saved with ``save`` (or a run folder) exactly as it was saved. A damaged or
    hostile folder gives one clear line: the config is checked, the model is first built on the
    meta device (no memory) and its size and tensor shapes are checked against the memory left
    and against the weights file's header before anything is allocated."""
    directory = folder_path(directory, "a model or run folder")
    if map_location is not None:
        map_location = check_device(map_location, "map_location")
    config = read_config(directory)
    model = model_from_config(config, directory / CONFIG_FILE, meta=True)
    check_fits_in_memory(model, directory / CONFIG_FILE)
    check_weights(model, directory / WEIGHTS_FILE)
    model = model_from_config(config, directory / CONFIG_FILE)
    if map_location:
        model.to(map_location)
    load_state(model, directory / WEIGHTS_FILE)
    model.eval()
    return model


def dataset_kinds() -> dict[str, Any]:
    """``{prefix: loader}`` of the ``PREFIX:SPEC`` datasets the families read."""
    return {kind: load for f in FAMILIES for kind, load in f.dataset_kinds.items()}


def presets() -> dict[str, tuple[str, dict[str, Any]]]:
    """``{model name: (family name, default settings)}`` of every model, family by family."""
    return {name: (f.name, dict(settings)) for f in FAMILIES for name, settings in f.presets.items()}
