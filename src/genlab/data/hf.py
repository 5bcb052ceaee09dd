"""Hugging Face datasets: ``hf:NAME_OR_PATH[,split=...,image=...,label=...,size=64,...]``.

Needs the ``datasets`` package (``pip install genlab[hf]``). ``NAME_OR_PATH`` is a dataset saved
with ``save_to_disk`` (a folder with ``dataset_dict.json`` or ``dataset_info.json``), a local
folder the library reads (``imagefolder``, parquet files), or a name on the Hub, where the machine
has network (the library's own cache and ``HF_DATASETS_OFFLINE`` apply).

Splits: the dataset's ``train`` and ``test`` (``validation`` when there is no ``test``); with
``split=NAME`` (or a dataset of one split), that split, of which a seed-0 draw puts 10 % in
``test``. Columns: ``image=`` (default: the first column of images), ``label=`` (default: a
``label`` column, or the first class-label column; ``label=none`` for none). The images go
through the same cache and options as a folder's (:mod:`genlab.data.folders`: ``size``,
``crop``, ``channels``, ``augment``, ``strict``).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import GenlabError
from .base import ImageDataset
from .folders import MAX_PIXELS, ImageSource, load_images, parse_folder_spec

OWN_KEYS = ("split", "image", "label")


def _datasets():
    try:
        import datasets
    except ImportError:
        raise GenlabError("hf: datasets need the `datasets` package: pip install 'genlab[hf]' "
                          "(or pip install datasets)") from None
    return datasets


def _load(name: str):
    """The dataset (a ``DatasetDict``, or one ``Dataset``) that ``name`` refers to."""
    datasets = _datasets()
    path = Path(name).expanduser()
    try:
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            return datasets.load_from_disk(str(path))
        return datasets.load_dataset(str(path) if path.exists() else name)
    except GenlabError:
        raise
    except Exception as e:   # the library's own errors: not found, offline, a bad file
        raise GenlabError(f"cannot load the Hugging Face dataset '{name}': {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}") from None


class HFSource(ImageSource):
    """The rows of the chosen splits of a Hugging Face dataset, with their image and label columns."""

    def __init__(self, name: str, options: dict[str, str]):
        datasets = _datasets()
        loaded = _load(name)
        parts = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        chosen = options.get("split")
        if chosen is not None:
            if chosen not in parts:
                raise GenlabError(f"hf:{name} has no split '{chosen}'; its splits: {', '.join(parts)}")
            parts = {None: parts[chosen]}
        elif "train" in parts and ("test" in parts or "validation" in parts):
            parts = {"train": parts["train"], "test": parts.get("test", parts.get("validation"))}
        elif len(parts) == 1:
            parts = {None: next(iter(parts.values()))}
        else:
            raise GenlabError(f"hf:{name} has the splits {', '.join(parts)}; choose one with ,split=NAME")
        first = next(iter(parts.values()))
        self.image_column = self._image_column(first, options.get("image"), name)
        self.label_column, self.class_names = self._label_column(first, options.get("label"), name)
        self.where = f"hf:{name}"
        self.parts = [(split, data.cast_column(self.image_column, datasets.Image(decode=False)))
                      for split, data in parts.items()]
        self.rows = [(k, r) for k, (_, data) in enumerate(self.parts) for r in range(len(data))]
        self.names = [f"{split} row {r}" if split else f"row {r}" for split, data in self.parts
                      for r in range(len(data))]
        self.splits = [split for split, data in self.parts for _ in range(len(data))]
        self.labels = ([int(v) for _, data in self.parts for v in data[self.label_column]]
                       if self.label_column else [-1] * len(self.rows))

    @staticmethod
    def _image_column(data, asked: str | None, name: str) -> str:
        datasets = _datasets()
        images = [k for k, f in data.features.items() if isinstance(f, datasets.Image)]
        if asked is not None:
            if asked not in data.features:
                raise GenlabError(f"hf:{name} has no column '{asked}'; its columns: {', '.join(data.features)}")
            return asked
        if not images:
            raise GenlabError(f"hf:{name} has no column of images; its columns: {', '.join(data.features)} "
                              "(choose one with ,image=COLUMN)")
        return images[0]

    @staticmethod
    def _label_column(data, asked: str | None, name: str) -> tuple[str | None, list[str] | None]:
        datasets = _datasets()
        if asked == "none":
            return None, None
        if asked is None:
            classes = [k for k, f in data.features.items() if isinstance(f, datasets.ClassLabel)]
            asked = "label" if "label" in data.features else (classes[0] if classes else None)
            if asked is None:
                return None, None
        if asked not in data.features:
            raise GenlabError(f"hf:{name} has no column '{asked}'; its columns: {', '.join(data.features)}")
        feature = data.features[asked]
        if isinstance(feature, datasets.ClassLabel):
            return asked, list(feature.names)
        integer = isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))
        values = data.unique(asked) if integer else [None]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise GenlabError(f"the label column '{asked}' of hf:{name} is not class indices 0, 1, ...; "
                              "give ,label=none or another column")
        return asked, [str(i) for i in range(max(values, default=-1) + 1)]

    def open(self, i: int) -> Image.Image:
        from ..image_files import open_image

        k, r = self.rows[i]
        cell = self.parts[k][1][r][self.image_column]
        if not isinstance(cell, dict) or not (cell.get("bytes") or cell.get("path")):
            raise GenlabError(f"cannot read image {self.names[i]} of {self.where}: it is empty")
        content = cell["bytes"] if cell.get("bytes") else cell["path"]
        return open_image(content if isinstance(content, bytes) else Path(content), f"{self.names[i]} of {self.where}",
                          max_pixels=MAX_PIXELS)

    def fingerprint(self) -> str:
        return "|".join(f"{split}:{data._fingerprint}:{self.image_column}" for split, data in self.parts)


def load_hf(rest: str, split: str) -> ImageDataset:
    """One split of ``hf:NAME_OR_PATH[,options]`` (see the module's doc)."""
    spec = parse_folder_spec(rest, kind="hf", own_keys=OWN_KEYS)
    source = HFSource(str(spec.path), dict(spec.extra))
    return load_images(source, spec, split, source.class_names if source.label_column else None)

