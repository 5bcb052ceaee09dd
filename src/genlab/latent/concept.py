"""Concept vectors: the difference between the mean codes of images with and without an attribute.

An attribute is written as ``SELECTOR`` or ``SELECTOR vs SELECTOR``:

- ``label=8``      images of class 8 (a class index or a class name)
- ``NAME``         a per-image attribute column (CelebA's ``Smiling``, a CSV column): values in
                   {-1, 0, 1} select the images with a value > 0; other values are split at
                   the median (above it is "with")
- ``ink``          a measured property: mean pixel intensity, i.e. how much ink a digit has
                   (a proxy for stroke thickness), split at its median within each class (when
                   there are labels, so the vector thickens a digit rather than changing its
                   class); ``thickness`` is an alias

Without ``vs`` the images without the attribute are all the others (``Smiling``: smiling
against not smiling; ``label=8``: eights against every other digit). With ``vs`` both sides are
given (``label=8 vs label=3``); images that match both sides are left out of both.

Attribute files: a CSV with a header row of column names and one row per image of the split,
in order (a column named ``index`` instead gives each row's image index, and ``image_id`` or
``filename`` columns are ignored); or a file in the format of CelebA's ``list_attr_celeba.txt``
(a count, a line of names, then one line per image: file name and +1/-1 values), again one row
per image of the split in order.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..data import ImageDataset
from ..errors import GenlabError

MEASURED = {"ink": "mean pixel intensity", "thickness": "mean pixel intensity"}


def concept_vector(codes: torch.Tensor, with_mask: torch.Tensor, without_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(d,): mean of ``codes`` (N, d) where ``with_mask`` (N,) is true, minus the mean where
    ``without_mask`` is true (default: where ``with_mask`` is false)."""
    with_mask = torch.as_tensor(with_mask, dtype=torch.bool)
    without_mask = ~with_mask if without_mask is None else torch.as_tensor(without_mask, dtype=torch.bool)
    if not with_mask.any() or not without_mask.any():
        raise GenlabError(f"a concept vector needs images on both sides; got {int(with_mask.sum())} with "
                          f"and {int(without_mask.sum())} without the attribute")
    return codes[with_mask].mean(0) - codes[without_mask].mean(0)


def read_attribute_file(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Column names, values (N, A) float32 and row indices (N,) or None (rows in image order)
    of a CSV or a list_attr_celeba.txt-style file."""
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"attribute file {path} not found")
    lines = path.read_text().splitlines()
    if lines and lines[0].strip().isdigit():  # CelebA: count, names, then "file v1 v2 ..."
        from ..data.celeba import parse_attributes

        _, names, values = parse_attributes(lines, str(path))
        return names, values.astype(np.float32), None
    rows = list(csv.reader(lines))
    if len(rows) < 2:
        raise GenlabError(f"{path}: expected a header row of attribute names and one row per image")
    header = [h.strip() for h in rows[0]]
    keep = [i for i, h in enumerate(header) if h not in ("index", "image_id", "filename")]
    try:
        values = np.array([[float(r[i]) for i in keep] for r in rows[1:] if r], dtype=np.float32)
        index = (np.array([int(r[header.index("index")]) for r in rows[1:] if r])
                 if "index" in header else None)
    except (ValueError, IndexError) as err:
        raise GenlabError(f"{path}: attribute values must be numbers, one per column ({err})") from None
    return [header[i] for i in keep], values, index


def with_attribute_file(data: ImageDataset, path: str | Path) -> ImageDataset:
    """``data`` with the attributes of a file (see :func:`read_attribute_file`) attached."""
    names, values, index = read_attribute_file(path)
    full = np.full((len(data), len(names)), np.nan, dtype=np.float32)
    if index is None:
        if len(values) < len(data):
            raise GenlabError(f"{path} has {len(values)} rows but the {data.split} split has {len(data)} "
                              "images; give one row per image, or an 'index' column")
        full[:] = values[:len(data)]
    else:
        if index.min() < 0 or index.max() >= len(data):
            raise GenlabError(f"{path}: an index lies outside 0..{len(data) - 1}")
        full[index] = values
    out = data.subset(slice(None))
    out.attributes, out.attribute_names = torch.from_numpy(full), names
    return out


def _split(values: torch.Tensor) -> torch.Tensor:
    """Boolean (N,): > 0 for binary codings (+1/-1 or 1/0), else above the median. NaN is False."""
    known = values[~values.isnan()]
    if len(known) and set(known.unique().tolist()) <= {-1.0, 0.0, 1.0}:
        return values > 0
    return values > known.median()


def select(data: ImageDataset, selector: str) -> torch.Tensor:
    """Boolean mask (N,) of the images of ``data`` that one selector picks (see the module doc)."""
    selector = selector.strip()
    if selector.startswith("label="):
        if data.labels is None:
            raise GenlabError(f"'{selector}': the dataset {data.name} has no class labels")
        value, names = selector[len("label="):].strip(), data.class_names or []
        if value in names:
            return data.labels == names.index(value)
        if value.lstrip("-").isdigit() and 0 <= int(value) < len(names):
            return data.labels == int(value)
        raise GenlabError(f"'{selector}': no class '{value}'; classes are {', '.join(names)}")
    if selector in data.attribute_names:
        return _split(data.attributes[:, data.attribute_names.index(selector)].float())
    if selector in MEASURED:
        ink = data.tensors()[0].flatten(1).mean(1)
        if data.labels is None:
            return _split(ink)
        # Split within each class: ink also tells classes apart (an 8 has more than a 1), and
        # a vector from a global split would turn 1s into 8s instead of thickening them.
        mask = torch.zeros(len(ink), dtype=torch.bool)
        for k in data.labels.unique():
            members = data.labels == k
            mask[members] = _split(ink[members])
        return mask
    known = ["label=K"] + list(data.attribute_names) + list(MEASURED)
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    raise GenlabError(f"unknown attribute '{selector}'; known: {shown} (or 'A vs B'; attributes "
                      "from a CSV with --attributes)")


def attribute_masks(data: ImageDataset, attribute: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks (N,) of the images with and without ``attribute`` ('A' or 'A vs B')."""
    if " vs " in attribute:
        a, b = attribute.split(" vs ", 1)
        pos, neg = select(data, a), select(data, b)
        both = pos & neg
        return pos & ~both, neg & ~both
    pos = select(data, attribute)
    return pos, ~pos


@torch.no_grad()
def apply_concept(model, codes: torch.Tensor, vector: torch.Tensor, strengths, labels=None) -> torch.Tensor:
    """Images (len(codes) * len(strengths), C, H, W): row i decodes codes[i] + s * vector for
    each strength s (s = 1 adds the whole difference of the means)."""
    from .codes import decode_codes

    s = torch.as_tensor(list(strengths), dtype=codes.dtype)
    z = (codes[:, None, :] + s[None, :, None] * vector[None, None, :]).reshape(-1, codes.shape[1])
    y = None if labels is None else labels.repeat_interleave(len(s))
    return decode_codes(model, z, y)
