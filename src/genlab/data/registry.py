"""Dataset registry: every dataset genlab knows, by name, and where its files are looked for."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import GenlabError
from .base import ImageDataset

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What ``genlab datasets`` shows, and how to load each split.

    ``load(split, data_dir)`` returns an :class:`ImageDataset`; ``locate(data_dir)`` returns
    ``(available, where)``: whether the files are here, and the folder they are read from.
    """

    name: str
    description: str
    image_shape: tuple[int, int, int]
    splits: dict[str, int]
    num_classes: int | None
    load: Callable[[str, Path], ImageDataset]
    locate: Callable[[Path], tuple[bool, str]]


_REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    _REGISTRY[info.name] = info
    return info


def default_data_dir() -> Path:
    """``$GENLAB_DATA`` if set, else ``~/.cache/genlab/data``."""
    env = os.environ.get("GENLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genlab" / "data"


def list_datasets() -> list[DatasetInfo]:
    _load_builtin_modules()
    return list(_REGISTRY.values())


def get_info(name: str) -> DatasetInfo:
    _load_builtin_modules()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) + ", folder:PATH, npz:PATH, volume:PATH"
        raise GenlabError(f"unknown dataset '{name}'; choose one of: {known}")
    return _REGISTRY[name]


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None) -> ImageDataset:
    """Load one split of a dataset as float images in [0, 1], shape (N, C, H, W) (volumes: (N, C, D, H, W)).

    Args:
        name: a registry name (``genlab datasets`` lists them), ``folder:PATH`` for a folder of
            images (class sub-folders give labels), ``npz:PATH`` for arrays ``x`` (and ``y``), or
            ``KIND:SPEC`` for a kind a family reads (``volume:PATH[,key=value...]``: cubes cut
            from a segmented 3-D volume, the porous family's).
        split: ``"train"`` or ``"test"``.
        data_dir: where dataset files live; default :func:`default_data_dir`.
    """
    if split not in SPLITS:
        raise GenlabError(f"unknown split '{split}'; choose 'train' or 'test'")
    if ":" in name:
        kind, _, path = name.partition(":")
        from . import files
        from ..registry import dataset_kinds

        # Each loader takes the rest of the name (after the prefix) as given; a family can read
        # datasets of its own kinds (the 3-D GAN: volume:PATH).
        loaders: dict[str, Callable[[str], ImageDataset]] = {
            "folder": lambda rest: files.load_folder(Path(rest).expanduser(), split),
            "npz": lambda rest: files.load_npz(Path(rest).expanduser(), split),
            **{k: (lambda rest, load=load: load(rest, split)) for k, load in dataset_kinds().items()},
        }
        if kind not in loaders:
            raise GenlabError(f"unknown dataset prefix '{kind}:'; use one of: "
                              + ", ".join(f"{k}:PATH" for k in loaders))
        return loaders[kind](path)
    info = get_info(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return info.load(split, root)


def _load_builtin_modules() -> None:
    # Importing a loader module registers its datasets.
    from . import digits, idx, photos, celeba  # noqa: F401  (this order is the order `genlab datasets` lists)
