"""The surface every genlab model shares, and how models are saved and loaded.

A model is an ``nn.Module`` built from a config dataclass. Tools (sampling, reconstruction,
latent maps, metrics) rely only on this surface, so they work on any family:

- ``encode(x, labels=None) -> z``       (N, C, H, W) in [0, 1] -> (N, latent_dim)
- ``decode(z, labels=None) -> x``       (N, latent_dim) -> (N, C, H, W) in [0, 1]
- ``reconstruct(x, labels=None) -> x``
- ``sample(n, generator=None, labels=None) -> x``
- ``loss(x, labels=None) -> dict``      named scalar terms; ``"loss"`` is minimised

A family that lacks a part raises :class:`NotSupported` with a clear message.
On disk a model is ``config.json`` (family and config) plus ``model.safetensors`` (weights).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import GenlabError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class NotSupported(GenlabError):
    """The model family has no such part (e.g. a PCA cannot take class labels)."""


@dataclass
class ModelConfig:
    """Fields every model config has. ``image_shape`` is (C, H, W)."""

    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise GenlabError(
                f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(names))}"
            )
        values = dict(values)
        # JSON has no tuples; restore them so configs compare equal after a round trip.
        for f in dataclasses.fields(cls):
            if isinstance(values.get(f.name), list):
                values[f.name] = tuple(values[f.name])
        return cls(**values)

    @property
    def num_pixels(self) -> int:
        c, h, w = self.image_shape
        return c * h * w


class GenerativeModel(nn.Module):
    """Base class: stores the config, validates inputs, saves and loads."""

    family: ClassVar[str] = "model"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: True for models fitted in closed form by ``fit(images)`` instead of gradient steps.
    closed_form: ClassVar[bool] = False
    #: True when the model's likelihood expects binary pixels (the trainer binarizes by default).
    wants_binary_data: ClassVar[bool] = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    # ----------------------------------------------------------------- the common surface
    @property
    def latent_dim(self) -> int:
        raise NotSupported(f"a {self.family} model has no latent space")

    @property
    def conditional(self) -> bool:
        return False

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotSupported(f"a {self.family} model has no encoder")

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotSupported(f"a {self.family} model has no decoder")

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, labels), labels)

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotSupported(f"a {self.family} model cannot sample: it has no prior")

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        raise NotSupported(f"a {self.family} model is not trained by gradient steps")

    # ----------------------------------------------------------------- training hooks
    def configure_optimizers(self, lr: float, weight_decay: float = 0.0) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers; one AdamW over every parameter by default. A model with several
        networks trained by turns (a GAN: generator and discriminator) returns one per network."""
        return {"model": torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)}

    def training_step(self, x: torch.Tensor, labels: torch.Tensor | None,
                      optimizers: dict[str, torch.optim.Optimizer], step: int,
                      grad_clip: float = 0.0) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch; returns the loss terms (detached or not).

        The default minimises ``loss(x, labels)["loss"]`` with the single optimizer. Adversarial
        models override this with their alternating updates, so the trainer stays generic.
        """
        terms = self.loss(x, labels)
        check_finite(terms, step)
        (optimizer,) = optimizers.values()
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(self.parameters(), grad_clip)
        optimizer.step()
        return terms

    # ----------------------------------------------------------------- input checks
    def check_images(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != tuple(self.config.image_shape):
            raise GenlabError(
                f"images of shape {tuple(x.shape[1:])} given to a model built for "
                f"{tuple(self.config.image_shape)}; train a model on this dataset"
            )

    def check_latents(self, z: torch.Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise GenlabError(
                f"latent codes of shape {tuple(z.shape)} given to a model with a "
                f"{self.latent_dim}-d latent space; expected (N, {self.latent_dim})"
            )

    def one_hot(self, labels: torch.Tensor | None, n: int | None = None) -> torch.Tensor | None:
        """One-hot labels (N, num_classes) for a conditional model, None otherwise."""
        if not self.conditional:
            return None
        if labels is None:
            raise GenlabError(f"this conditional {self.family} needs class labels (--label)")
        k = self.config.num_classes
        labels = torch.as_tensor(labels, device=self.device).long().reshape(-1)
        if n is not None and len(labels) == 1:
            labels = labels.expand(n)
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise GenlabError(f"class labels must lie in 0..{k - 1}, got {labels.tolist()[:8]}")
        return nn.functional.one_hot(labels, k).float()

    def prior_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal (n, latent_dim), drawn on the CPU so a seed gives the same
        samples on every device."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    # ----------------------------------------------------------------- persistence
    def config_dict(self) -> dict[str, Any]:
        return {"family": self.family, "model": self.config.to_dict()}

    def save(self, directory: str | os.PathLike, extra_config: dict[str, Any] | None = None) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``, each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {**self.config_dict(), **(extra_config or {})}
        write_json_atomic(directory / CONFIG_FILE, config)
        save_weights_atomic(self.state_dict(), directory / WEIGHTS_FILE)

    @classmethod
    def from_config(cls, config: ModelConfig | dict[str, Any]) -> "GenerativeModel":
        if isinstance(config, dict):
            config = cls.config_class.from_dict(config)
        return cls(config)


class Diverged(GenlabError):
    """A loss became NaN or infinite; the trainer adds where the last good checkpoint is."""


def check_finite(terms: dict[str, torch.Tensor], step: int) -> None:
    """Raise :class:`Diverged` naming the step (counted from 1) if any loss term is not finite."""
    for name, value in terms.items():
        if torch.is_tensor(value) and value.numel() == 1 and not torch.isfinite(value):
            raise Diverged(f"the {name} became {value.item()} at step {step + 1}")


@torch.no_grad()
def moving_average_step(pairs, decay: float, updates: torch.Tensor) -> None:
    """One step of an exponential moving average of weights: each ``(averaged, live)`` pair of
    modules (or tensors) moves ``averaged``'s parameters towards ``live``'s; buffers (batch-norm
    statistics) are copied. ``updates`` (a long scalar buffer, saved with the model) counts the
    steps and warms the decay up: 0.999 from the first step would keep the average near the
    random start for thousands of steps, so the decay is min(decay, (1 + n) / (10 + n))."""
    n = int(updates)
    d = min(decay, (1 + n) / (10 + n))
    updates += 1
    for averaged, live in pairs:
        if isinstance(averaged, torch.Tensor):
            averaged.lerp_(live, 1 - d)
            continue
        for e, p in zip(averaged.parameters(), live.parameters()):
            e.lerp_(p, 1 - d)
        for e, b in zip(averaged.buffers(), live.buffers()):
            e.copy_(b)


# --------------------------------------------------------------------- files
def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def save_weights_atomic(tensors: dict[str, torch.Tensor], path: Path,
                        metadata: dict[str, str] | None = None) -> None:
    """safetensors needs contiguous, unshared tensors; write to a temp file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp),
              metadata=metadata)
    os.replace(tmp, path)


def read_config(directory: Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise GenlabError(f"no {CONFIG_FILE} in {directory}; is it a genlab model or run folder?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise GenlabError(f"{path} is not valid JSON ({err}); the run folder is damaged") from None


def load_state(model: GenerativeModel, path: Path) -> None:
    """Load safetensors weights into ``model``, with one clear line on any mismatch."""
    if not path.exists():
        raise GenlabError(f"no weights at {path}; the run has not finished an epoch yet")
    state = load_file(str(path), device=str(model.device))
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise GenlabError(
            f"the weights in {path} do not belong to this {model.family} model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); check the run folder"
        )
    for key, tensor in state.items():
        if own[key].shape != tensor.shape:
            raise GenlabError(
                f"weight '{key}' in {path} has shape {tuple(tensor.shape)} but the model "
                f"expects {tuple(own[key].shape)}; the config and the weights disagree"
            )
    model.load_state_dict(state)
