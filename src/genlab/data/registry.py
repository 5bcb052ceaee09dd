"""Dataset registry: every dataset genlab knows, by name, and where its files are looked for.

genlab's own datasets are those its loader modules declare (each module's ``DATASETS``), in the
order ``genlab datasets`` shows; :func:`register` adds more (or replaces one). The loaders do not
import this module, so there is no circle of imports."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import GenlabError
from .base import DatasetInfo, ImageDataset

SPLITS = ("train", "test")


_REGISTERED: dict[str, DatasetInfo] = {}   # what register() added


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset (or replace the one of the same name, genlab's own included)."""
    _REGISTERED[info.name] = info
    return info


def _datasets() -> dict[str, DatasetInfo]:
    """Every dataset by name: genlab's own, then those registered. The loader modules are imported
    on first use (scikit-image, scikit-learn); this order is the order ``genlab datasets`` lists."""
    from . import celeba, digits, idx, photos

    own = {info.name: info for module in (digits, idx, photos, celeba) for info in module.DATASETS}
    return {**own, **_REGISTERED}


def default_data_dir() -> Path:
    """``$GENLAB_DATA`` if set, else ``~/.cache/genlab/data``."""
    env = os.environ.get("GENLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genlab" / "data"


def list_datasets() -> list[DatasetInfo]:
    return list(_datasets().values())


def get_info(name: str) -> DatasetInfo:
    datasets = _datasets()
    if name not in datasets:
        known = ", ".join(sorted(datasets)) + ", folder:PATH, npz:PATH, hf:NAME, volume:PATH"
        raise GenlabError(f"unknown dataset '{name}'; choose one of: {known}")
    return datasets[name]


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None) -> ImageDataset:
    """Load one split of a dataset as float images in [0, 1], shape (N, C, H, W) (volumes: (N, C, D, H, W)).

    Args:
        name: a registry name (``genlab datasets`` lists them), ``folder:PATH[,key=value...]``
            for a folder of images (class sub-folders give labels; options resize, crop and
            augment them: :mod:`genlab.data.folders`), ``hf:NAME_OR_PATH[,...]`` for a Hugging Face
            dataset (:mod:`genlab.data.hf`), ``npz:PATH`` for arrays ``x`` (and ``y``), or
            ``KIND:SPEC`` for a kind a family reads (``volume:PATH[,key=value...]``: cubes cut
            from a segmented 3-D volume, the porous family's).
        split: ``"train"`` or ``"test"``.
        data_dir: where dataset files live; default :func:`default_data_dir`.
    """
    if split not in SPLITS:
        raise GenlabError(f"unknown split '{split}'; choose 'train' or 'test'")
    if ":" in name:
        kind, _, path = name.partition(":")
        from . import files, folders, hf
        from ..registry import dataset_kinds

        # Each loader takes the rest of the name (after the prefix) as given; a family can read
        # datasets of its own kinds (the 3-D GAN: volume:PATH).
        loaders: dict[str, Callable[[str], ImageDataset]] = {
            "folder": lambda rest: folders.load_folder(rest, split),
            "npz": lambda rest: files.load_npz(Path(rest).expanduser(), split),
            "hf": lambda rest: hf.load_hf(rest, split),
            **{k: (lambda rest, load=load: load(rest, split)) for k, load in dataset_kinds().items()},
        }
        if kind not in loaders:
            raise GenlabError(f"unknown dataset prefix '{kind}:'; use one of: "
                              + ", ".join(f"{k}:PATH" for k in loaders))
        return loaders[kind](path)
    info = get_info(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return info.load(split, root)
