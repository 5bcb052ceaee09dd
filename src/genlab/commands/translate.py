"""``genlab translate RUN IMAGES...``: an image-to-image run applied to image files.

Each file is read as the run's model takes it (:func:`~genlab.image_files.image_tensor`), and
the model says what that means and what comes out: a model with the ``condition_image``
capability offers ``condition_from_image(image, name, direction)`` (the condition tensor, made
from the file, and a note when the file was changed for it, e.g. a colour file made grey for a
model that takes grey input; a clear line naming the file when the network cannot take it),
``translate`` and ``result_suffix(direction)`` (what ends each result's name:
``NAME-SUFFIX.png``). Results are PNG files beside their inputs or in ``out_dir``. Every input is
read and checked before any result is written, so a bad file stops the command with one line and
nothing half done; an existing file is never replaced unless asked (``overwrite``, ``--overwrite``).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import GenlabError
from ..image_files import check_outputs, decode_image, output_folder, save_png
from ..models.base import GenerativeModel, NotSupported
from ..train import Run


def require_translation(model: GenerativeModel) -> None:
    """A clear error for a model that does not map images to images."""
    if not model.capabilities.condition_image:
        raise NotSupported(f"a {model.name} model is not an image-to-image task; translate takes a run of a "
                           "model that maps images to images")


@torch.no_grad()
def translate_images(model: GenerativeModel, x: torch.Tensor, direction: str | None = None) -> torch.Tensor:
    """Condition images (N, C, h, w) in [0, 1] to the model's outputs in [0, 1], on the CPU;
    ``direction`` for a model that translates both ways (``capabilities.domain_transfer``)."""
    require_translation(model)
    model.eval()
    if direction is None:
        return model.translate(x.to(model.device)).cpu()
    return model.translate(x.to(model.device), direction).cpu()


def translate_files(run: Run | GenerativeModel, images: list[str | os.PathLike],
                    out_dir: str | os.PathLike | None = None,
                    note: Callable[[str], None] | None = None, direction: str | None = None,
                    overwrite: bool = False) -> list[Path]:
    """Apply ``run`` (or a model) to each image file; write each result beside its input or into
    ``out_dir``; return the paths written. Every input, and every result's path, is checked before
    anything is written: an existing file is not replaced unless ``overwrite``, and two inputs
    whose results would share a name are refused (:func:`~genlab.image_files.check_outputs`).
    ``note`` is told, in one line each, of the files the model changed to take them (a colour
    file made grey). ``direction``: which way, for a run that translates both ways."""
    model = run.model if isinstance(run, Run) else run
    require_translation(model)
    suffix = model.result_suffix(direction)   # refuses a direction the model does not offer
    if not images:
        raise GenlabError("give at least one image file to translate")
    inputs = []
    for path in map(Path, images):
        x, told = model.condition_from_image(decode_image(path, str(path)), str(path), direction)
        if told and note is not None:
            note(told)
        inputs.append((path, x))
    into = Path(out_dir) if out_dir is not None else None
    targets = [(path, (into or path.parent) / f"{path.stem}-{suffix}.png") for path, _ in inputs]
    check_outputs(targets, overwrite)
    output_folder(out_dir)
    written = []
    for (path, x), (_, target) in zip(inputs, targets):
        written.append(save_png(translate_images(model, x, direction)[0], target))
    return written
