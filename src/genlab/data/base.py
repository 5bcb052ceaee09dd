"""The in-memory image dataset every loader returns.

Images are kept as they were stored (uint8 is 4x smaller than float32) and converted to float
tensors in [0, 1], shape (N, C, H, W), only when a batch is taken.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageDataset:
    """A split of an image dataset held in memory.

    Attributes:
        images: (N, C, H, W) uint8 in [0, 255] or float32 in [0, 1].
        labels: (N,) int64 class indices, or None for unlabelled data.
        name: the registry name (e.g. ``"mnist"``).
        split: ``"train"`` or ``"test"``.
        class_names: names of the classes, index-aligned with the labels.
        attributes: optional per-image attributes, (N, A) float, with ``attribute_names``.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = "arrays"
    split: str = "train"
    class_names: list[str] | None = None
    attributes: torch.Tensor | None = None
    attribute_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if self.labels is not None:
            self.labels = self.labels.long()
            if len(self.labels) != len(self.images):
                raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")
            if self.class_names is None and len(self.labels):
                self.class_names = [str(i) for i in range(int(self.labels.max()) + 1)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        label = -1 if self.labels is None else int(self.labels[i])
        return self._to_float(self.images[i]), label

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        return f"ImageDataset({self.name}/{self.split}: {len(self)} images of {c}x{h}x{w}{classes})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @staticmethod
    def _to_float(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (B, C, H, W) float in [0, 1] and labels (B,) or None at ``index``."""
        labels = None if self.labels is None else self.labels[index]
        return self._to_float(self.images[index]), labels

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole split as float images in [0, 1] and labels."""
        return self.batch(slice(None))

    def subset(self, index: torch.Tensor | slice) -> "ImageDataset":
        return ImageDataset(
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            name=self.name,
            split=self.split,
            class_names=self.class_names,
            attributes=None if self.attributes is None else self.attributes[index],
            attribute_names=list(self.attribute_names),
        )
