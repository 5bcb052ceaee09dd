"""The surface every genlab model shares, and how models are saved and loaded.

A model is an ``nn.Module`` built from a config dataclass. Tools (sampling, reconstruction,
latent maps, metrics) rely only on this surface, so they work on any family. Shapes are
``(N, C, *spatial)``: (N, C, H, W) for images, (N, C, D, H, W) for volumes.

- ``encode(x, labels=None) -> z``       (N, C, *spatial) in [0, 1] -> (N, latent_dim)
- ``decode(z, labels=None) -> x``       (N, latent_dim) -> (N, C, *spatial) in [0, 1]
- ``reconstruct(x, labels=None) -> x``
- ``sample(n, generator=None, labels=None) -> x``
- ``loss(batch) -> dict``               named scalar terms (batch means); ``"loss"`` is minimised

What a family can do is declared once, in :attr:`GenerativeModel.capabilities`; a part it lacks
raises :class:`NotSupported` with a clear message.

Training: a model says what to minimise and the trainer (:mod:`genlab.train.trainer`) does the
rest. :meth:`~GenerativeModel.optimizer_groups` names the parameters of each optimizer,
:meth:`~GenerativeModel.update_order` the objectives of a step in order (one per optimizer; a GAN:
discriminator, then generator), and :meth:`~GenerativeModel.objective` the value each one
minimises. The moving average of the weights is one mechanism for every family: a family names
the networks to average (:meth:`~GenerativeModel.keep_average`), the trainer updates them after
each step, and :meth:`~GenerativeModel.network` gives the averaged copy in eval mode.

On disk a model is ``config.json`` (family, name and config) plus ``model.safetensors`` (weights),
in the format of the run folder (:mod:`genlab.runs`).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import operator
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.batch import Batch
from ..config import ModelConfig, require_planar  # noqa: F401  (part of the model surface)
from ..devices import free_bytes
from ..errors import GenlabError
from ..runs import write_model


class NotSupported(GenlabError):
    """The model family has no such part (e.g. a PCA cannot take class labels)."""


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, declared once per family (from its config) and read everywhere.

    Attributes:
        encoder: ``encode(x)`` gives a code of an image.
        decoder: ``decode(z)`` gives an image of a code.
        prior: ``sample(n)`` draws new images.
        labels: class-conditional: encode, decode and sample take class labels.
        condition_image: image-conditional: the batch's condition image is an input, and the
            model maps images to images (``genlab translate``, ``/api/translate``): it offers
            ``condition_from_image(image, name, direction)`` (a PIL image as its input, and a
            note when the image was changed for it), ``translate(x)``, ``result_size(h, w)``
            and ``result_suffix(direction)`` (what ends a translated file's name).
        closed_form: fitted by ``fit(images)`` in closed form, not by gradient steps.
        binary_likelihood: the likelihood expects binary pixels (the trainer binarizes by default).
        likelihood: bounds on log p(x) per image (``elbo_terms``, ``importance_weighted_terms``).
        denoising_sampler: sampling is a loop of denoising steps (``generate``), whose steps,
            eta, guidance and frames the tools offer.
        class_interpolation: ``interpolate_classes(z, a, b)`` decodes one code while the label
            input moves from class a to class b.
        domain_transfer: translates between two datasets (``translate(x, direction)``), whose
            second (``domain_b``) each batch brings as its condition images.
        latent_space: codes of one fixed width exist: ``latent_dim`` is that width and
            ``decode(z)`` makes images of codes (N, latent_dim), so the latent tools
            (interpolation, maps, the explorer's map) apply; without it ``latent_dim`` raises
            :class:`NotSupported` with the reason.
        held_out_loss: ``loss(batch)`` is meaningful on data the model did not train on, so the
            trainer logs it on the validation split every epoch (``val/...``, what
            :func:`~genlab.train.evaluate_loss` computes); without it ``loss`` raises
            :class:`NotSupported` (a GAN's losses are a game, not a measure).
        preview: ``preview(batch, generator)`` gives rows of images to look at (input, output,
            target, ...), which the training snapshots show instead of samples or reconstructions.
    """

    encoder: bool = False
    decoder: bool = False
    prior: bool = False
    labels: bool = False
    condition_image: bool = False
    closed_form: bool = False
    binary_likelihood: bool = False
    likelihood: bool = False
    denoising_sampler: bool = False
    class_interpolation: bool = False
    domain_transfer: bool = False
    latent_space: bool = False
    held_out_loss: bool = False
    preview: bool = False


@dataclass
class OptimizerGroup:
    """The parameters of one named optimizer and how it differs from the run's settings:
    ``lr_scale`` multiplies the run's learning rate, ``betas`` are Adam's, ``weight_decay``
    None takes the run's."""

    params: list[nn.Parameter]
    lr_scale: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float | None = None


class GenerativeModel(nn.Module):
    """Base class: stores the config and name, declares capabilities, validates inputs, keeps the
    moving average of the weights, saves and loads."""

    family: ClassVar[str] = "model"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: training settings (:class:`~genlab.train.TrainConfig` fields) this family starts from;
    #: the user's settings override them
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ModelConfig, name: str | None = None):
        super().__init__()
        self.config = config
        #: the name the model was built under (``conv-vae``, ``dcgan``); the family by default
        self.name = name or self.family
        self.ema: nn.ModuleDict | None = None
        self._averaged_names: tuple[str, ...] = ()
        #: the run folder the model was last trained into or loaded from (None: neither)
        self.run_dir: Path | None = None

    # ----------------------------------------------------------------- what it can do
    @property
    def capabilities(self) -> Capabilities:
        """What this model can do; each family declares it from its config."""
        return Capabilities()

    @property
    def conditional(self) -> bool:
        """Shorthand for ``capabilities.labels``."""
        return self.capabilities.labels

    def training_note(self, device: torch.device) -> str | None:
        """One line for the user as training starts on ``device`` (a better choice of model for
        this data there, from the benchmarks), or None."""
        return None

    # ----------------------------------------------------------------- the common surface
    @property
    def latent_dim(self) -> int:
        raise NotSupported(f"a {self.family} model has no latent space")

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

    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """Named batch-mean terms; ``"loss"`` is what training minimises. Takes a
        :class:`~genlab.data.Batch`, or images and optional labels."""
        raise NotSupported(f"a {self.family} model has no held-out loss")

    # ----------------------------------------------------------------- what training minimises
    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        """Named optimizers' parameters; one over every trainable parameter by default. A model
        whose networks train by turns (a GAN) names one per network."""
        return {"model": OptimizerGroup([p for p in self.parameters() if p.requires_grad])}

    def update_order(self, step: int) -> tuple[str, ...]:
        """The objectives of training ``step`` (counted from 0), in the order of their updates;
        each names an optimizer of :meth:`optimizer_groups`."""
        return tuple(self.optimizer_groups())

    def objective(self, name: str, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the value optimizer ``name`` minimises, the terms to log) on ``batch`` at ``step``. The
        default: ``loss(batch, step=step)["loss"]`` and every term."""
        terms = self.loss(batch, step=step)
        return terms["loss"], terms

    def forward(self, batch: Batch, objective: str = "model", step: int = 0
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`objective`: the call that data-parallel training wraps."""
        return self.objective(objective, batch, step)

    # ----------------------------------------------------------------- the moving average
    def keep_average(self, *names: str) -> None:
        """Keep a moving average of the named submodules (or parameters) when ``ema_decay`` > 0.
        The copies live in the state dict (``ema.<name>`` for modules, ``ema_<name>`` for
        parameters, with the counter ``ema_updates``), so save/load and resume keep them."""
        if not self.config.ema_decay:
            return
        modules = {n: copy.deepcopy(getattr(self, n)).requires_grad_(False) for n in names
                   if isinstance(getattr(self, n), nn.Module)}
        self.ema = nn.ModuleDict(modules)
        for n in names:
            if isinstance(getattr(self, n), torch.Tensor):
                self.register_buffer(f"ema_{n}", getattr(self, n).detach().clone())
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self._averaged_names = names

    @property
    def averaged(self) -> bool:
        """True when the averaged weights are in use: kept, and the model is in eval mode."""
        return bool(self._averaged_names) and not self.training

    def network(self, name: str) -> Any:
        """The submodule (or parameter) ``name``: its moving average in eval mode, when kept."""
        if self.averaged and name in self._averaged_names:
            return self._average_of(name)
        return getattr(self, name)

    def _average_of(self, name: str) -> Any:
        return self.ema[name] if name in self.ema else getattr(self, f"ema_{name}")

    @torch.no_grad()
    def update_average(self) -> None:
        """One step of the moving average towards the live weights (the trainer calls it after
        every training step; a no-op without ``ema_decay``)."""
        if not self._averaged_names:
            return
        pairs = [(self._average_of(n), getattr(self, n)) for n in self._averaged_names]
        moving_average_step(pairs, self.config.ema_decay, self.ema_updates)

    # ----------------------------------------------------------------- input checks
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every family's ``sample``, ``encode``, ``decode`` and ``reconstruct`` get the checks of
        the common surface (:func:`_checked`), so that no family has to repeat them."""
        super().__init_subclass__(**kwargs)
        for name in _CHECKED:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_checks_inputs", False):
                setattr(cls, name, _checked(name, method))

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the weights (float32 unless the model was converted)."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32

    def check_count(self, n: Any, what: str = "samples") -> int:
        """``n`` as an int, if it is a whole number of at least 1 whose images (float32) fit in
        the memory left on the model's device; otherwise one line naming ``n``."""
        if isinstance(n, bool):
            raise GenlabError(f"`n` (the number of {what}) must be a whole number, got {n!r}")
        try:
            n = operator.index(n)
        except TypeError:
            shown = n if isinstance(n, (int, float, str)) else type(n).__name__
            raise GenlabError(f"`n` (the number of {what}) must be a whole number, got {shown!r}") from None
        if n < 1:
            raise GenlabError(f"`n` (the number of {what}) must be at least 1, got {n}")
        need = n * self.config.num_pixels * 4
        free = free_bytes(self.device) if need > _SMALL_BYTES else None   # no system call for small batches
        if free is not None and need > free:
            shape = "x".join(map(str, self.config.image_shape))
            raise GenlabError(f"{n:,} {what} of {shape} take {need / 2 ** 30:,.1f} GiB, more than the "
                              f"{free / 2 ** 30:.1f} GiB of memory left; draw fewer at a time (e.g. in batches of 500)")
        return n

    def as_input(self, x: Any, what: str = "images") -> torch.Tensor:
        """``x`` (a tensor or a NumPy array) as the model's floating-point type on its device:
        uint8 images (pixels 0..255) are scaled to [0, 1], booleans become 0 and 1, integer
        codes become floats; integer images of other types, complex numbers and anything that is
        not an array get one clear line."""
        if not torch.is_tensor(x):
            import numpy as np

            if not isinstance(x, np.ndarray) or x.dtype == object:
                raise GenlabError(f"{what} must be a tensor (or a NumPy array), got {type(x).__name__}")
            x = torch.from_numpy(x)
        if x.is_complex():
            raise GenlabError(f"{what} must be real numbers, got {x.dtype}")
        if what == "images" and x.dtype == torch.uint8:
            x = x.float() / 255
        elif what == "images" and not (x.is_floating_point() or x.dtype == torch.bool):
            raise GenlabError(f"images must be floats in [0, 1] or uint8 pixels (0..255), got {x.dtype}")
        return x.to(device=self.device, dtype=self.dtype)

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

    def class_indices(self, labels: torch.Tensor | int | None, n: int | None = None,
                      in_turn: bool = False) -> torch.Tensor | None:
        """Validated class indices (n,) on the model's device for a conditional model (one label
        is repeated n times), None for an unconditional one. Without labels: classes in turn
        (0, 1, ..., K-1, 0, ...) when ``in_turn``, else an error naming the ``labels`` setting."""
        if not self.conditional:
            return None
        k = self.config.num_classes
        if labels is None:
            if in_turn and n is not None:
                return torch.arange(n, device=self.device) % k
            raise GenlabError(f"this conditional {self.name} model needs class labels (labels)")
        labels = torch.as_tensor(labels, device=self.device).long().reshape(-1)
        if n is not None and len(labels) == 1:
            labels = labels.expand(n)
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise GenlabError(f"class labels must lie in 0..{k - 1}, got {labels.tolist()[:8]}")
        return labels

    def one_hot(self, labels: torch.Tensor | None, n: int | None = None) -> torch.Tensor | None:
        """One-hot labels (N, num_classes) for a conditional model, None otherwise."""
        classes = self.class_indices(labels, n)
        return None if classes is None else nn.functional.one_hot(classes, self.config.num_classes).float()

    def prior_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal (n, latent_dim), drawn on the CPU so a seed gives the same
        samples on every device."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    # ----------------------------------------------------------------- persistence
    def config_dict(self) -> dict[str, Any]:
        return {"family": self.family, "name": self.name, "model": self.config.to_dict()}

    #: names of buffers derived from the weights, which weights saved before they existed lack;
    #: such a file loads, the buffers keep their initial values, and the family remakes them
    derived_state: tuple[str, ...] = ()

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint or :meth:`save` writes: the state dict (a family whose
        buffers derive from its weights brings them up to date first)."""
        return self.state_dict()

    def save(self, directory: str | os.PathLike, extra_config: dict[str, Any] | None = None) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``, each atomically
        (the format is :mod:`genlab.runs`'; :func:`genlab.load_model` reads it back)."""
        write_model(directory, {**self.config_dict(), **(extra_config or {})}, self.saved_state())

    @classmethod
    def from_config(cls, config: ModelConfig | dict[str, Any], name: str | None = None) -> "GenerativeModel":
        if isinstance(config, dict):
            config = cls.config_class.from_dict(config)
        return cls(config, name=name)


#: samples whose images take less than this are drawn without asking the system for its free memory
_SMALL_BYTES = 2 ** 26

#: the methods of the common surface whose inputs :class:`GenerativeModel` checks for every family
_CHECKED = ("sample", "encode", "decode", "reconstruct")


@contextlib.contextmanager
def out_of_memory(what: str, fix: str = "give fewer at a time") -> Iterator[None]:
    """One line (``what`` ran out of memory; ``fix``) instead of the allocator's message."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        if not (isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or "can't allocate memory" in str(err)):
            raise
        raise GenlabError(f"{what} ran out of memory; {fix}") from None


def _checked(name: str, method: Callable) -> Callable:
    """``method`` (a family's ``sample``, ``encode``, ``decode`` or ``reconstruct``) behind the
    checks every model shares: a count of samples that is a whole number of at least 1 whose
    images fit in memory, no labels for a model without classes, a ``torch.Generator``; images and
    codes of any real type as the model's floats (uint8 pixels scaled to [0, 1]); and one line
    when the work runs out of memory."""
    if name == "sample":
        @functools.wraps(method)
        def checked(self, n, *args, **kwargs):
            if not self.capabilities.prior:   # the method says so, in the family's own words
                return method(self, n, *args, **kwargs)
            n = self.check_count(n)
            generator = kwargs.get("generator", args[0] if args else None)
            labels = kwargs.get("labels", args[1] if len(args) > 1 else None)
            if generator is not None and not isinstance(generator, torch.Generator):
                raise GenlabError(f"`generator` must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                                  f"got {type(generator).__name__}")
            if labels is not None and not self.conditional:
                raise NotSupported(f"a {self.name} model is not class-conditional: it takes no labels; "
                                   "leave them out, or train a conditional model")
            with out_of_memory(f"drawing {n:,} samples"):
                return method(self, n, *args, **kwargs)
    else:
        what = "latent codes" if name == "decode" else "images"

        @functools.wraps(method)
        def checked(self, x, *args, **kwargs):
            x = self.as_input(x, what)
            with out_of_memory(f"{name} of {len(x) if x.ndim else 'the'} {what}"):
                return method(self, x, *args, **kwargs)
    checked._checks_inputs = True
    return checked


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
    random start for thousands of steps, so the decay is min(decay, (1 + n) / (10 + n)).

    The decay is computed where the counter lives, and all weights move by multi-tensor kernels
    that take it as a tensor: no value comes back to the host, which on a GPU would wait for the
    step to finish (a lerp by a tensor weight would read it back as a number)."""
    n = updates.float()
    weight = 1 - torch.clamp((1 + n) / (10 + n), max=decay)
    updates += 1
    averaged, live, stale, fresh = [], [], [], []
    for a, b in pairs:
        if isinstance(a, torch.Tensor):
            averaged.append(a)
            live.append(b)
            continue
        averaged += list(a.parameters())
        live += list(b.parameters())
        stale += list(a.buffers())
        fresh += list(b.buffers())
    if averaged:
        steps = torch._foreach_sub(live, averaged)
        torch._foreach_mul_(steps, weight)
        torch._foreach_add_(averaged, steps)
    if stale:
        torch._foreach_copy_(stale, fresh)
