"""The record that declares a model family: what the core reads instead of naming one.

A family is a package under ``genlab/families/`` (or anywhere else) that owns its whole slice:
its model class, the model names it offers, the data it prepares, its own measures, commands,
endpoints and pictures. It tells the core about them in one plain :class:`Family` record, and
the registry (:mod:`genlab.registry`) lists the records, one line each. Every hook is optional;
a family that only defines a model and its presets (PCA) sets three fields.

The core (train/, data/, metrics/, latent/, viz/, serve/, the CLI) asks the record through the
registry and never imports a family, so adding one touches its own package, one registry line
and its tests.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for the annotations: the records of every family import this module
    from .data.base import ImageDataset
    from .models.base import GenerativeModel

@dataclass(frozen=True)
class Command:
    """A command a family adds: ``genlab NAME ...``.

    ``arguments(parser)`` adds its flags and positionals; ``run(args)`` does the work and returns
    the lines to print (paths written, a table), or None. Library errors (``GenlabError``) become
    the CLI's one-line messages as for every core command."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Iterable[str] | None]


@dataclass(frozen=True)
class Family:
    """One model family, declared once.

    Attributes:
        name: the family's one name: its package, ``config.json``'s ``family`` and the docs.
        model_class: the :class:`~genlab.models.base.GenerativeModel` subclass (its
            ``config_class`` holds the settings, its ``capabilities`` say what tools apply).
            A family with several model classes (one per task) maps each preset to its class
            with ``model_classes``.
        presets: the model names this family offers and the settings each starts from
            (``{"conv-vae": {"arch": "conv"}}``); the user's settings override them.
        aliases: other names people use for those models (``{"ddpm": "diffusion"}``).
        former_names: what run folders of older genlab versions call this family in their
            ``config.json``, so that they still load.
        model_classes: ``{preset: class}`` for presets not built by ``model_class``; a run folder
            finds its class by the ``name`` it records.
        data_settings: ``(data) -> settings`` that describe the training data to a fresh model
            beyond ``image_shape`` and ``num_classes`` (the image-to-image tasks: the shape of
            paired condition images).
        prepare_data: ``(data, settings, data_dir, seed) -> data``: the training and test data
            as this family's model takes them, from the model's ``settings`` (CycleGAN joins the
            second domain to the first). Also applied when a run's dataset is loaded back.
        run_name: ``(model_name, data_name, settings) -> str``: the default run folder's name
            (default ``MODEL-DATA``).
        measures: ``(model, data, seed=, data_dir=) -> dict`` of this family's own figures, added
            to the core's by ``genlab evaluate`` (PSNR beside the baseline, bits per pixel, FID
            of translations).
        run_tools: ``{command: (run, args) -> lines}``: this family's own version of a core
            command (``sample``, ``evaluate``, ``interpolate``) for its runs, as the 3-D GAN's
            volumes need.
        tool_arguments: ``{command: (parser) -> None}``: flags this family adds to a core
            command; they are refused, with the family named, for runs of other families.
        commands: commands of this family's own (``genlab translate``, ``genlab compress``).
        endpoints: ``(app, explorer) -> None``: HTTP endpoints this family adds to
            ``genlab serve`` for its runs.
        dataset_kinds: ``{prefix: (spec, split) -> data}``: datasets named ``PREFIX:SPEC`` that
            this family reads (the 3-D GAN: ``volume:rock.tif,edge=64``).
        dataset_help: one line for ``genlab datasets`` on those kinds.
    """

    name: str
    model_class: type[GenerativeModel]
    presets: Mapping[str, Mapping[str, Any]]
    aliases: Mapping[str, str] = field(default_factory=dict)
    former_names: tuple[str, ...] = ()
    model_classes: Mapping[str, type[GenerativeModel]] = field(default_factory=dict)
    data_settings: Callable[[ImageDataset], dict[str, Any]] | None = None
    prepare_data: Callable[[ImageDataset, Mapping[str, Any], Any, int], ImageDataset] | None = None
    run_name: Callable[[str, str, Mapping[str, Any]], str] | None = None
    measures: Callable[..., dict[str, Any]] | None = None
    run_tools: Mapping[str, Callable[[Any, argparse.Namespace], Iterable[str]]] = field(default_factory=dict)
    tool_arguments: Mapping[str, Callable[[argparse.ArgumentParser], None]] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()
    endpoints: Callable[[Any, Any], None] | None = None
    dataset_kinds: Mapping[str, Callable[[str, str], ImageDataset]] = field(default_factory=dict)
    dataset_help: str = ""

    def answers_to(self, name: object) -> bool:
        """Whether ``name`` (a ``config.json``'s ``family``) is this family, by its name or a former one."""
        return name == self.name or name in self.former_names

    def model_class_of(self, preset: str) -> type[GenerativeModel]:
        """The class that builds the model named ``preset``."""
        return self.model_classes.get(preset, self.model_class)

    def classes(self) -> tuple[type[GenerativeModel], ...]:
        """Every model class of this family, ``model_class`` first."""
        return tuple(dict.fromkeys((self.model_class, *self.model_classes.values())))
