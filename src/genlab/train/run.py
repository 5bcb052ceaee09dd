"""A finished (or running) training run, loaded from its folder."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import ImageDataset, load_dataset
from ..errors import GenlabError
from ..models import GenerativeModel
from ..registry import family_of, load_model
from ..models.base import read_config
from .trainer import METRICS_FILE


@dataclass
class Run:
    """A run folder: its ``model`` (in eval mode), its ``config`` and its ``metrics``."""

    path: Path
    model: GenerativeModel
    config: dict[str, Any]

    @property
    def metrics(self) -> list[dict[str, Any]]:
        path = self.path / METRICS_FILE
        if not path.exists():
            return []
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GenlabError(f"{path} is not one JSON record a line ({err}); the run folder is damaged") from None

    @property
    def dataset_name(self) -> str:
        name = self.config.get("data", {}).get("name", "")
        return name if isinstance(name, str) else ""

    def dataset(self, split: str = "test", data_dir: str | os.PathLike | None = None) -> ImageDataset:
        """The split of the dataset the run was trained on."""
        name = self.dataset_name
        if not name or name == "arrays":
            raise GenlabError(f"{self.path} does not record a loadable dataset; pass `data`")
        data = load_dataset(name, split, data_dir)
        prepare = family_of(self.model).prepare_data
        if prepare is None:
            return data
        return prepare(data, self.config.get("model", {}), data_dir, self.config.get("train", {}).get("seed", 0))


def load_run(path: str | os.PathLike, family: str | None = None, map_location: str | None = None) -> Run:
    """Load a run folder. ``family`` (e.g. ``"vae"``) checks that it holds that kind of model."""
    path = Path(path)
    if not path.is_dir():
        raise GenlabError(f"no run folder at {path}; train one with `genlab train MODEL --out {path}`")
    config = read_config(path)
    if family is not None and config.get("family") != family:
        raise GenlabError(f"{path} holds a {config.get('family')} model, not a {family} model")
    return Run(path=path, model=load_model(path, map_location), config=config)
