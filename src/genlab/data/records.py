"""Images on disk, read on demand: the store behind datasets larger than memory.

:class:`ImageRecords` holds images as fixed-size uint8 records ``(C, H, W)`` in one file (a
folder's cache, :mod:`genlab.data.folders`) and reads only the rows a batch asks for, with
``preadv``: nothing is mapped into the process, so its memory does not grow with the dataset (the
operating system's page cache keeps the file's hot rows, at memory speed, and gives them back
under pressure). It stands in for the ``images`` tensor of an :class:`~genlab.data.ImageDataset`:
``len``, ``shape``, ``ndim``, ``dtype`` and indexing (an int, a slice, a list or a tensor of
indices) return what the tensor would.

Records may be larger than the images they give (``side`` > ``crop``): indexing gives their
centre crop, and :meth:`ImageRecords.read` with offsets gives crops anywhere in them (random crops
for training, drawn by the trainer).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError


class ImageRecords:
    """``rows`` of the uint8 records ``(C, H, W)`` in ``file``, as images (N, C', h, w).

    Args:
        file: the records, one after the other, row ``r`` at byte ``r * C * H * W``.
        rows: (N,) the record of each image.
        record_shape: (C, H, W) of one record.
        crop: (h, w) of the images given (centred in the record by default); the record's own by default.
        channel: give only this channel of each record (a store of grey images kept as three equal
            channels); None gives them all.
    """

    dtype = torch.uint8
    ndim = 4

    def __init__(self, file: str | os.PathLike, rows: np.ndarray, record_shape: tuple[int, int, int],
                 crop: tuple[int, int] | None = None, channel: int | None = None):
        self.file = Path(file)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.record_shape = tuple(int(s) for s in record_shape)
        c, h, w = self.record_shape
        self.crop = (h, w) if crop is None else (int(crop[0]), int(crop[1]))
        if not (0 < self.crop[0] <= h and 0 < self.crop[1] <= w):
            raise ValueError(f"a crop of {self.crop} does not fit records of {h}x{w}")
        self.channel = channel
        self._fd: int | None = None
        self._pid = -1
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the tensor's surface
    @property
    def shape(self) -> torch.Size:
        channels = 1 if self.channel is not None else self.record_shape[0]
        return torch.Size((len(self.rows), channels, *self.crop))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index) -> torch.Tensor:
        """The images at ``index`` read into a tensor, as indexing the whole tensor would give
        them: an int gives one (C, h, w), a slice, list, mask or tensor of indices several (N,
        C, h, w); a tuple indexes the images' axes too (``records[:8, :, 2:-2]``)."""
        rest: tuple = ()
        if isinstance(index, tuple):
            index, rest = (index[0] if index else slice(None)), index[1:]
        if isinstance(index, (int, np.integer)) or (torch.is_tensor(index) and index.ndim == 0):
            images = self.read(self.positions(int(index)))[0]
        else:
            images = self.read(self.positions(index))
        return images[(slice(None), *rest)] if rest and images.ndim == 4 else images[rest] if rest else images

    def take(self, index) -> "ImageRecords":
        """The images at ``index`` as a store of their own (nothing is read)."""
        return ImageRecords(self.file, self.rows[self.positions(index)], self.record_shape, self.crop, self.channel)

    def __repr__(self) -> str:
        return f"ImageRecords({self.file.name}: {tuple(self.shape)} uint8)"

    def __getstate__(self) -> dict:   # an open file does not travel to another process
        return {**self.__dict__, "_fd": None, "_pid": -1, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    @property
    def random_crops(self) -> bool:
        """Whether the records leave room for crops elsewhere than the centre."""
        return self.crop != self.record_shape[1:]

    def read(self, positions: np.ndarray, offsets: np.ndarray | None = None) -> torch.Tensor:
        """The images at ``positions`` (N,), (N, C', h, w) uint8: each record's crop at ``offsets``
        (N, 2) (top, left), or its centre crop."""
        c, h, w = self.record_shape
        ch, cw = self.crop
        size = c * h * w
        out = np.empty((len(positions), c, h, w), dtype=np.uint8)
        rows = self.rows[positions]
        fd = self._file()
        for i in np.argsort(rows, kind="stable"):   # in file order: the disk (or page cache) reads ahead
            if _read_into(fd, out[i], int(rows[i]) * size, self._lock) != size:
                raise GenlabError(f"the image cache {self.file} is cut short; delete it (and its .json) and run again")
        if (ch, cw) != (h, w):
            if offsets is None:
                offsets = np.tile([(h - ch) // 2, (w - cw) // 2], (len(positions), 1))
            crops = np.empty((len(positions), c, ch, cw), dtype=np.uint8)
            for i, (t, l) in enumerate(np.asarray(offsets).tolist()):
                crops[i] = out[i, :, t:t + ch, l:l + cw]
            out = crops
        if self.channel is not None:
            out = out[:, self.channel:self.channel + 1]
        return torch.from_numpy(np.ascontiguousarray(out))

    def positions(self, index) -> np.ndarray:
        """The positions (K,) among these images that ``index`` (an int, slice, list, mask or tensor) picks."""
        if torch.is_tensor(index):
            index = index.cpu().numpy()
        return np.arange(len(self.rows))[index].reshape(-1)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():   # a forked process opens its own
            self._fd = os.open(self.file, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            self._pid = os.getpid()
        return self._fd

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass


def _read_into(fd: int, out: np.ndarray, offset: int, lock: threading.Lock) -> int:
    """Fill the contiguous array ``out`` with the bytes at ``offset``; returns the bytes read.
    ``os.preadv`` reads straight into it (no shared file position); elsewhere a seek and a read,
    under a lock."""
    view = memoryview(out).cast("B")
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    with lock:
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, len(view))
    view[:len(data)] = data
    return len(data)
