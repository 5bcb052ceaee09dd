"""The image dataset every loader returns.

Images are kept as they were stored (uint8 is 4x smaller than float32), in memory or, for a
folder of images, on disk (:class:`~genlab.data.records.ImageRecords`, read a batch at a time),
and converted to float tensors in [0, 1], shape (N, C, *spatial) (H, W for images; D, H, W for
volumes), only when a batch is taken.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .augment import augment, crop_offsets
from .batch import Batch
from .records import ImageRecords


@dataclass
class ImageDataset:
    """A split of an image dataset.

    Attributes:
        images: (N, C, *spatial) uint8 in [0, 255] or float32 in [0, 1]; (N, C, H, W) for images;
            or :class:`ImageRecords`, uint8 images read from disk when a batch asks for them.
        labels: (N,) int64 class indices, or None for unlabelled data.
        name: the registry name (e.g. ``"mnist"``).
        split: ``"train"`` or ``"test"``.
        class_names: names of the classes, index-aligned with the labels.
        attributes: optional per-image attributes, (N, A) float, with ``attribute_names``.
        conditions: optional paired source images (N, C', *spatial'), stored like ``images``:
            the input of a paired translation (pix2pix) whose target is the image (for
            ``digits-m`` and ``mnist-m``, the grey digit each blend was made from), or, joined by
            :func:`unpaired`, images of a second domain (CycleGAN). Batches carry them as
            ``condition``.
        condition_labels: (N,) class indices of the condition images, when they have their own
            (a second domain's labels), else None.
        augment: the random flips of training batches (:data:`~genlab.data.augment.AUGMENTS`),
            applied by :meth:`batch` when it is given the step's draws.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = "arrays"
    split: str = "train"
    class_names: list[str] | None = None
    attributes: torch.Tensor | None = None
    attribute_names: list[str] = field(default_factory=list)
    conditions: torch.Tensor | None = None
    condition_labels: torch.Tensor | None = None
    augment: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images.ndim < 3:
            raise ValueError(f"images must be (N, C, *spatial), e.g. (N, C, H, W), got shape {tuple(self.images.shape)}")
        if self.labels is not None:
            self.labels = self.labels.long()
            if len(self.labels) != len(self.images):
                raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")
            if self.class_names is None and len(self.labels):
                self.class_names = [str(i) for i in range(int(self.labels.max()) + 1)]
        if self.conditions is not None and len(self.conditions) != len(self.images):
            raise ValueError(f"{len(self.conditions)} condition images for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        label = -1 if self.labels is None else int(self.labels[i])
        return self._to_float(self.images[i]), label

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.image_shape)
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        return f"ImageDataset({self.name}/{self.split}: {len(self)} images of {shape}{classes})"

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, *spatial) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def condition_shape(self) -> tuple[int, ...] | None:
        """(C', *spatial') of one paired condition image, or None without them."""
        return None if self.conditions is None else tuple(self.conditions.shape[1:])

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @staticmethod
    def _to_float(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    @property
    def augmented(self) -> bool:
        """Whether training batches are augmented (flips, or random crops of larger records)."""
        return bool(self.augment) or (isinstance(self.images, ImageRecords) and self.images.random_crops)

    def batch(self, index: torch.Tensor | slice, draws: torch.Tensor | None = None) -> Batch:
        """The :class:`Batch` at ``index``: images (B, C, *spatial) float in [0, 1], labels (B,) or
        None, and the paired condition images (float in [0, 1]) or None. With ``draws`` (B,
        :data:`~genlab.data.augment.DRAWS`), a training step's uniform draws for these images,
        they are augmented: cropped where the records leave room, and flipped (the condition
        images alike, so that pairs stay pairs)."""
        labels = None if self.labels is None else self.labels[index]
        condition = None if self.conditions is None else self.conditions[index]
        if draws is not None and isinstance(self.images, ImageRecords) and self.images.random_crops:
            records = self.images
            room = (records.record_shape[1] - records.crop[0] + 1, records.record_shape[2] - records.crop[1] + 1)
            images = records.read(records.positions(index), crop_offsets(draws, room).numpy())
        else:
            images = self.images[index]
        if draws is not None and self.augment:   # on the stored pixels (uint8: 4x less to move than floats)
            images = augment(images, self.augment, draws)
            condition = None if condition is None else augment(condition, self.augment, draws)
        return Batch(self._to_float(images), labels, None if condition is None else self._to_float(condition))

    def batches(self, batch_size: int = 500, device: torch.device | str | None = None) -> Iterator[Batch]:
        """The split in order, ``batch_size`` images at a time (the last may be smaller), on ``device``."""
        for start in range(0, len(self), batch_size):
            batch = self.batch(slice(start, start + batch_size))
            yield batch if device is None else batch.to(device)

    def tensors(self, index: torch.Tensor | slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Float images in [0, 1] and labels (or None) at ``index``: by default the whole split."""
        batch = self.batch(index)
        return batch.images, batch.labels

    def subset(self, index: torch.Tensor | slice) -> "ImageDataset":
        return dataclasses.replace(
            self,
            images=self.images.take(index) if isinstance(self.images, ImageRecords) else self.images[index],
            labels=None if self.labels is None else self.labels[index],
            name=self.name,
            split=self.split,
            class_names=self.class_names,
            attributes=None if self.attributes is None else self.attributes[index],
            attribute_names=list(self.attribute_names),
            conditions=None if self.conditions is None else self.conditions[index],
            condition_labels=None if self.condition_labels is None else self.condition_labels[index],
        )


def unpaired(a: ImageDataset, b: ImageDataset, seed: int = 0) -> ImageDataset:
    """``a``'s images and labels, with images of ``b`` as the ``conditions``: a random draw of
    ``len(a)`` of them (a permutation of ``b``, repeated as needed; fixed by ``seed``), so that
    every batch of ``a`` brings as many unrelated images of ``b`` (with their labels as
    ``condition_labels``). The two domains of a CycleGAN. With splits of equal size (MNIST's and
    MNIST-M's), every image of ``b`` appears once."""
    generator = torch.Generator().manual_seed(seed)
    rounds = -(-len(a) // max(len(b), 1))
    order = torch.cat([torch.randperm(len(b), generator=generator) for _ in range(rounds)])[:len(a)]
    return ImageDataset(images=a.images, labels=a.labels, name=a.name, split=a.split,
                        class_names=a.class_names, conditions=b.images[order], augment=a.augment,
                        condition_labels=None if b.labels is None else b.labels[order])


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset genlab knows by name: what ``genlab datasets`` shows, and how to load each split.

    ``load(split, data_dir)`` returns an :class:`ImageDataset`; ``locate(data_dir)`` returns
    ``(available, where)``: whether the files are here, and the folder they are read from. Each
    loader module declares its own in ``DATASETS``; :mod:`genlab.data.registry` lists them.
    """

    name: str
    description: str
    image_shape: tuple[int, int, int]
    splits: dict[str, int]
    num_classes: int | None
    load: Callable[[str, Path], ImageDataset]
    locate: Callable[[Path], tuple[bool, str]]
