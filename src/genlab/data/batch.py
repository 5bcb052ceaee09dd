"""The one batch type: what the data layer hands to the trainer, the trainer to the model, and
the model to the tools.

A :class:`Batch` holds images ``(N, C, *spatial)`` in [0, 1] (2-D images and 3-D volumes alike),
optional class labels ``(N,)`` and an optional condition image ``(N, C', *spatial')`` (the
source of an image-to-image task: noisy, small, grey, or from the other domain).

During training it also carries the step's random draws (:class:`StepNoise`). Every draw a model
makes for a batch (the z of a GAN, the eps of a VAE, the t and noise of a diffusion model, dynamic
binarization) goes through :meth:`Batch.randn`, :meth:`Batch.rand` or :meth:`Batch.randint`, which
draw for the whole global batch from a generator seeded by (run seed, step) and hand each image
its own row. So an image gets the same draws whether the step runs in one process or is split
over several (data-parallel) or into micro-batches (gradient accumulation), and a resumed run
makes the same draws as an uninterrupted one. Outside training (``noise`` None) the draws come
from PyTorch's global generator, as ``torch.randn`` would.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


class StepNoise:
    """The random draws of one training step, made once for all ``size`` images of the global
    batch on the CPU (so a seed gives the same run on every device) and shared out by position.

    The k-th draw of every micro-batch is the k-th global draw: micro-batches and processes of
    the same step call the draws in the same order, so each image gets the same numbers."""

    def __init__(self, seed: int, step: int, size: int):
        # Distinct streams per (seed, step); the large odd multiplier keeps nearby seeds apart.
        self.generator = torch.Generator().manual_seed((seed * 1_000_003 + step) % 2 ** 63)
        self.size = size
        self._draws: list[tuple[tuple, torch.Tensor]] = []

    def draw(self, index: int, kind: str, shape: tuple[int, ...], high: int = 0) -> torch.Tensor:
        """The ``index``-th draw of this step: (size, *shape) of ``kind`` randn, rand or randint."""
        key = (kind, shape, high)
        if index == len(self._draws):
            full = (self.size, *shape)
            if kind == "randn":
                values = torch.randn(full, generator=self.generator)
            elif kind == "rand":
                values = torch.rand(full, generator=self.generator)
            else:
                values = torch.randint(0, high, full, generator=self.generator)
            self._draws.append((key, values))
        made, values = self._draws[index]
        if made != key:
            raise RuntimeError(f"draw {index} of a step was {made} for one micro-batch and {key} for another; "
                               "a model must make the same draws for every part of a batch")
        return values


@dataclass
class Batch:
    """Images ``(N, C, *spatial)`` in [0, 1], optional ``labels`` (N,) and ``condition`` image.

    ``positions`` (N,) are the images' rows in the global batch of a training step and ``noise``
    that step's draws; both None outside training. ``scratch`` holds what one objective of a
    training step leaves for a later one on the same batch (a GAN's generated images)."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    condition: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    noise: StepNoise | None = None
    scratch: dict = field(default_factory=dict, repr=False, compare=False)
    _draws: int = field(default=0, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> "Batch":
        """The same batch with its tensors on ``device`` (a new object; draws start afresh)."""
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return replace(self, images=move(self.images), labels=move(self.labels), condition=move(self.condition),
                       scratch={}, _draws=0)

    def split(self, parts: int) -> list["Batch"]:
        """``parts`` consecutive micro-batches (for gradient accumulation)."""
        size = -(-len(self) // parts)
        pieces = []
        for start in range(0, len(self), size):
            cut = slice(start, start + size)
            pick = (lambda t: None if t is None else t[cut])
            pieces.append(replace(self, images=self.images[cut], labels=pick(self.labels),
                                  condition=pick(self.condition), positions=pick(self.positions), scratch={}, _draws=0))
        return pieces

    # ------------------------------------------------------------------ random draws per image
    def randn(self, *shape: int, batch_dim: int = 0) -> torch.Tensor:
        """Standard normal draws (N, *shape), one row per image; ``batch_dim`` puts the image
        axis elsewhere (1: (shape[0], N, *shape[1:]))."""
        return self._draw("randn", shape, batch_dim)

    def rand(self, *shape: int, batch_dim: int = 0) -> torch.Tensor:
        """Uniform draws in [0, 1), (N, *shape)."""
        return self._draw("rand", shape, batch_dim)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        """Integers in [0, high), (N, *shape), int64."""
        return self._draw("randint", shape, 0, high)

    def _draw(self, kind: str, shape: tuple[int, ...], batch_dim: int, high: int = 0) -> torch.Tensor:
        if self.noise is None:
            full = (*shape[:batch_dim], len(self), *shape[batch_dim:])
            device, dtype = self.images.device, self.images.dtype
            if kind == "randn":
                return torch.randn(full, device=device, dtype=dtype)
            if kind == "rand":
                return torch.rand(full, device=device, dtype=dtype)
            return torch.randint(0, high, full, device=device)
        values = self.noise.draw(self._draws, kind, tuple(shape), high)
        self._draws += 1
        values = values[self.positions].movedim(0, batch_dim)
        if kind != "randint":
            values = values.to(self.images.dtype)
        return values.to(self.images.device, non_blocking=True)


def as_batch(x: "Batch | torch.Tensor", labels: torch.Tensor | None = None) -> Batch:
    """A :class:`Batch` from a batch or from images and optional labels."""
    if isinstance(x, Batch):
        return x
    return Batch(images=x, labels=labels)
