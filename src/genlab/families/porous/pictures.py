"""Pictures of 3-D porous media: orthogonal slices, slice strips, a pore isosurface, and plots of
the statistics (two-point function S2, scalar statistics) of generated against training volumes.

Conventions. A volume is an array (D, H, W) whose values are 1 (or True) for pore and 0 for
grain; floats in [0, 1] (a generator's soft output) are shown as they are, in grey levels. A
torch tensor and a single-channel (1, D, H, W) array are accepted too. The three axes (D, H, W)
are called (z, y, x). Slices show **pore black and grain white**, like micro-CT pictures of rock;
every slice figure says so in its caption.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state),
as in :mod:`genlab.latent.maps`, and each PNG is written to a temporary file beside its path and
then renamed over it, so a reader never sees half a picture. Every function creates the parent
folders and returns the written :class:`~pathlib.Path`.
"""
from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import GenlabError
from ...files import write_atomic
from .statistics import checked_volume

__all__ = [
    "as_volume", "middle_slices", "slice_layout", "orthogonal_slices", "slice_strip", "pore_mesh",
    "pore_isosurface",
    "s2_plot", "statistics_panels", "AXIS_NAMES",
]

#: Names of the volume axes (D, H, W).
AXIS_NAMES = ("z", "y", "x")
#: Slices are drawn at one voxel scale only when their sizes differ by at most this factor.
SAME_SCALE_RATIO = 4.0
PORE_CAPTION = "pore black, grain white"
_DPI = 100
_SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_REFERENCE_COLOURS = ("#000000", "#9467bd", "#ff7f0e", "#2ca02c", "#8c564b")


# ---- input -------------------------------------------------------------------------------------

def as_volume(volume: Any, name: str = "volume") -> np.ndarray:
    """``volume`` as a float32 array (D, H, W) with values in [0, 1] (1 = pore).

    Accepted: bool arrays, integer 0/1 arrays, float arrays in [0, 1], torch tensors of these,
    and single-channel arrays (1, D, H, W). Anything else raises :class:`GenlabError` with one
    line naming the problem (``name`` says which volume)."""
    return checked_volume(volume, name).astype(np.float32)


def _volume_items(volumes: Any) -> list[tuple[str, np.ndarray]]:
    """(label, volume) pairs from a dict {label: volume}, a list of volumes, or one volume."""
    if isinstance(volumes, Mapping):
        items = [(str(k), v) for k, v in volumes.items()]
    elif isinstance(volumes, (list, tuple)):
        items = [(f"volume {i + 1}", v) for i, v in enumerate(volumes)]
    else:
        items = [("volume", volumes)]
    if not items:
        raise GenlabError("no volumes to show; pass at least one volume")
    return [(label, as_volume(v, f"volume '{label}'")) for label, v in items]


def middle_slices(volume: Any) -> list[np.ndarray]:
    """The middle slice normal to each axis z, y, x of ``volume`` (D, H, W), as float arrays:
    ``[v[D // 2], v[:, H // 2], v[:, :, W // 2]]``, of shapes (H, W), (D, W) and (D, H)."""
    v = as_volume(volume)
    return [np.take(v, v.shape[a] // 2, axis=a) for a in range(3)]


# ---- figures -----------------------------------------------------------------------------------

def _figure(width_px: float, height_px: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width_px, 10) / _DPI, max(height_px, 10) / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file beside ``path``, then rename); free it."""
    try:
        return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=_DPI))
    finally:
        fig.clear()


def _use_same_scale(shapes: list[tuple[int, int]], same_scale: bool | None) -> bool:
    if same_scale is not None:
        return bool(same_scale)
    edges = [max(s) for s in shapes]
    return max(edges) <= SAME_SCALE_RATIO * min(edges)


def _scale(max_edge: int, target: int) -> float:
    """Screen pixels per voxel that bring the largest edge to about ``target`` pixels: a whole
    number when enlarging (crisp voxels), a fraction when shrinking."""
    return float(max(1, target // max_edge)) if max_edge <= target else target / max_edge


# Pixel margins of the slice grids.
_LABEL_W = 150      # row labels (orthogonal_slices)
_HEADER_H = 34      # column headers
_TITLE_H = 16       # per-cell title (the slice index)
_GAP = 14
_CAPTION_H = 26


Box = tuple[float, float, float, float]


def slice_layout(shapes: list[list[tuple[int, int]]], same_scale: bool | None = None, target: int = 240,
                 left: int = _LABEL_W, top: int = _HEADER_H) -> tuple[list[list[Box]], float, float, bool]:
    """Where each image of a grid of slices goes: ``shapes[i][j]`` is the (rows, columns) of the
    image in row i, column j. Returns ``(boxes, width, height, same)`` with ``boxes[i][j] =
    (left, top, width, height)`` in pixels from the figure's top-left corner.

    With ``same`` (``same_scale`` True, or None and sizes within :data:`SAME_SCALE_RATIO` of each
    other) every voxel gets the same number of pixels, so a smaller volume looks smaller; each
    column is as wide as its widest image and each row as tall as its tallest, images centred
    in their cells. Otherwise every image is scaled to fill a ``target``-pixel cell, keeping
    its aspect ratio."""
    flat = [s for row in shapes for s in row]
    same = _use_same_scale(flat, same_scale)
    ncol = max(len(row) for row in shapes)
    if same:
        s = _scale(max(max(sh) for sh in flat), target)
        col_w = [s * max(row[j][1] for row in shapes if j < len(row)) for j in range(ncol)]
        row_h = [s * max(sh[0] for sh in row) for row in shapes]
        sizes = [[(s * w, s * h) for h, w in row] for row in shapes]
    else:
        col_w = [float(target)] * ncol
        row_h = [float(target)] * len(shapes)
        sizes = []
        for row in shapes:
            fitted = []
            for h, w in row:
                f = target / max(h, w)
                fitted.append((w * f, h * f))
            sizes.append(fitted)
    boxes = []
    y = top
    for i, row in enumerate(sizes):
        y += _TITLE_H
        x = left
        line = []
        for j, (w, h) in enumerate(row):
            line.append((x + (col_w[j] - w) / 2, y + (row_h[i] - h) / 2, w, h))
            x += col_w[j] + _GAP
        boxes.append(line)
        y += row_h[i] + _GAP
    width = left + sum(col_w) + _GAP * (ncol - 1) + _GAP
    height = y + _CAPTION_H
    return boxes, width, height, same


def _image_axes(fig, box, width: float, height: float, image: np.ndarray, title: str):
    x, y, w, h = box
    ax = fig.add_axes((x / width, 1 - (y + h) / height, w / width, h / height))
    # gray_r: 1 (pore) black, 0 (grain) white; crisp voxels when enlarged.
    ax.imshow(image, cmap="gray_r", vmin=0.0, vmax=1.0, aspect="auto",
              interpolation="nearest" if w >= image.shape[1] else "antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#888")
    ax.set_title(title, fontsize=8, pad=2)
    return ax


def _describe(v: np.ndarray) -> str:
    shape = "\u00d7".join(str(n) for n in v.shape)
    return f"{shape} voxels\nporosity {float((v >= 0.5).mean()):.3f}"


def orthogonal_slices(volumes: Mapping[str, Any] | Sequence[Any], path: str | os.PathLike,
                      title: str | None = None, same_scale: bool | None = None, cell_px: int = 240) -> Path:
    """A PNG with one row per volume and three columns: the middle slice normal to z (axis 0),
    y (axis 1) and x (axis 2). Each row is labelled on the left with its name (the dict's key,
    or "volume i" for a list), its size and porosity; each cell with the slice's index.

    Volumes of different sizes are drawn at the same voxel scale when their largest edges
    differ by at most :data:`SAME_SCALE_RATIO` (or ``same_scale=True``), so that a 64^3 sample
    beside a 128^3 training crop looks half as large; otherwise (or ``same_scale=False``) each
    slice fills a ``cell_px`` cell. Pore is black, grain white (floats in grey)."""
    items = _volume_items(volumes)
    slices = [middle_slices(v) for _, v in items]
    shapes = [[s.shape for s in row] for row in slices]
    top = _HEADER_H + (22 if title else 0)
    boxes, width, height, same = slice_layout(shapes, same_scale, cell_px, top=top)
    fig = _figure(width, height)
    for j, axis in enumerate(AXIS_NAMES):
        others = [a for k, a in enumerate(AXIS_NAMES) if k != j]
        x0 = min(row[j][0] for row in boxes)
        x1 = max(row[j][0] + row[j][2] for row in boxes)
        fig.text((x0 + x1) / 2 / width, 1 - (top - 2) / height,
                 f"normal to {axis} (axis {j})\nrows {others[0]}, columns {others[1]}",
                 ha="center", va="bottom", fontsize=9)
    for (label, v), row, line in zip(items, slices, boxes):
        for j, (image, box) in enumerate(zip(row, line)):
            _image_axes(fig, box, width, height, image, f"{AXIS_NAMES[j]} = {v.shape[j] // 2} of {v.shape[j]}")
        middle = (min(b[1] for b in line) + max(b[1] + b[3] for b in line)) / 2
        name = "\n".join(textwrap.wrap(label, 20)) or label
        fig.text(8 / width, 1 - middle / height, f"{name}\n{_describe(v)}", ha="left", va="center", fontsize=9)
    if title:
        fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=11)
    scale = "same voxel scale in every row" if same else "each slice scaled to fill its cell"
    fig.text(0.5, 6 / height, f"middle slices; {PORE_CAPTION}; {scale}", ha="center", va="bottom",
             fontsize=8, color="#444")
    return _save(fig, path)


def slice_strip(volumes: Sequence[Any], path: str | os.PathLike, axis: int = 0,
                labels: Sequence[str] | None = None, title: str | None = None,
                same_scale: bool | None = None, cell_px: int = 128) -> Path:
    """A PNG of one row: the middle slice normal to ``axis`` (0 = z, 1 = y, 2 = x) of each volume,
    side by side, each titled with its label (default: its position 1, 2, ...), e.g. the steps
    of a latent interpolation. Scaling as in :func:`orthogonal_slices`; pore black, grain white."""
    if isinstance(volumes, Mapping):
        labels = list(volumes.keys()) if labels is None else labels
        volumes = list(volumes.values())
    if hasattr(volumes, "detach") or isinstance(volumes, np.ndarray):
        volumes = list(volumes)  # a batch (N, D, H, W) or (N, 1, D, H, W)
    volumes = list(volumes)
    if not volumes:
        raise GenlabError("no volumes to show; pass at least one volume")
    if axis not in (0, 1, 2):
        raise GenlabError(f"axis must be 0 (z), 1 (y) or 2 (x), not {axis!r}")
    labels = [str(i + 1) for i in range(len(volumes))] if labels is None else [str(s) for s in labels]
    if len(labels) != len(volumes):
        raise GenlabError(f"{len(labels)} labels for {len(volumes)} volumes; pass one label per volume")
    vols = [as_volume(v, f"volume '{label}'") for v, label in zip(volumes, labels)]
    images = [np.take(v, v.shape[axis] // 2, axis=axis) for v in vols]
    top = _HEADER_H if title else 8
    boxes, width, height, same = slice_layout([[im.shape for im in images]], same_scale, cell_px,
                                              left=_GAP, top=top)
    fig = _figure(width, height)
    for image, box, label in zip(images, boxes[0], labels):
        _image_axes(fig, box, width, height, image, label)
    if title:
        fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=10)
    others = [a for k, a in enumerate(AXIS_NAMES) if k != axis]
    fig.text(0.5, 6 / height, f"middle slices normal to {AXIS_NAMES[axis]} (rows {others[0]}, columns "
             f"{others[1]}); {PORE_CAPTION}", ha="center", va="bottom", fontsize=8, color="#444")
    return _save(fig, path)


# ---- isosurface --------------------------------------------------------------------------------

def _reduce(v: np.ndarray, max_edge: int, reduce: str) -> tuple[np.ndarray, str]:
    """At most ``max_edge`` voxels per axis: a corner crop (full resolution) or a strided subsample."""
    if max(v.shape) <= max_edge:
        return v, ""
    if reduce == "crop":
        out = v[:max_edge, :max_edge, :max_edge]
        return out, "corner crop " + "\u00d7".join(str(n) for n in out.shape) + " of " + \
            "\u00d7".join(str(n) for n in v.shape)
    if reduce == "stride":
        k = math.ceil(max(v.shape) / max_edge)
        return v[::k, ::k, ::k], f"every {k}th voxel of " + "\u00d7".join(str(n) for n in v.shape)
    raise GenlabError(f"reduce must be 'crop' or 'stride', not {reduce!r}")


def pore_mesh(volume: Any, step_size: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """The pore-grain interface of ``volume`` by marching cubes at level 0.5, without padding:
    ``(triangles (F, 3, 3) in (x, y, z) voxel coordinates, unit face normals (F, 3) in (x, y, z),
    number of faces)``. A volume that is all pore or all grain has no interface: empty arrays."""
    v = as_volume(volume)
    if not (v.min() < 0.5 <= v.max()) or min(v.shape) < 2:
        return np.zeros((0, 3, 3)), np.zeros((0, 3)), 0
    from skimage.measure import marching_cubes

    verts, faces, normals, _ = marching_cubes(v, 0.5, step_size=step_size, allow_degenerate=False)
    if len(faces) == 0:
        return np.zeros((0, 3, 3)), np.zeros((0, 3)), 0
    triangles = verts[faces][:, :, ::-1]                  # (z, y, x) -> (x, y, z)
    n = normals[faces].mean(axis=1)[:, ::-1]             # smooth: the vertices' gradient normals
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    return triangles, n, len(faces)


def pore_isosurface(volume: Any, path: str | os.PathLike, max_edge: int = 96, title: str | None = None,
                    max_faces: int = 200_000, reduce: str = "crop", size_px: int = 640) -> Path:
    """A PNG of the pore space in 3-D: the pore-grain interface by marching cubes (level 0.5),
    drawn with mplot3d as a Poly3DCollection, shaded by its normals against a light from above
    (mostly the z component, so that tops are bright and flanks darker), box aspect equal to the
    volume's, axes in voxels (x, y horizontal; z = axis 0 vertical).

    A volume larger than ``max_edge`` along an axis is reduced: ``reduce="crop"`` (default)
    keeps the corner ``[:max_edge, :max_edge, :max_edge]`` at full resolution, ``"stride"``
    keeps every k-th voxel of the whole volume. The volume is not padded, so pores cut by the
    box's faces are open there (no false surface on the faces). A mesh of more than
    ``max_faces`` triangles is remade with marching cubes' ``step_size=2`` (about 4 times fewer)
    to keep the drawing fast (~1 s for 96^3 at 13 % porosity). A volume with no interface (all
    grain or all pore) gives an empty box with a note."""
    v = as_volume(volume)
    v, note = _reduce(v, max_edge, reduce)
    triangles, normals, nfaces = pore_mesh(v)
    step = 1
    if nfaces > max_faces:
        triangles, normals, nfaces = pore_mesh(v, step_size=2)
        step = 2
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    fig = _figure(size_px, size_px)
    ax = fig.add_axes((0.0, 0.06, 1.0, 0.86), projection="3d")
    d, h, w = v.shape
    if nfaces:
        light = np.array([-0.35, -0.5, 1.0])
        light /= np.linalg.norm(light)
        shade = 0.25 + 0.75 * np.abs(normals @ light)
        colour = np.c_[shade[:, None] * np.array([0.35, 0.55, 0.85]), np.ones(len(shade))]
        # Edges in the face colour close the hairline seams between antialiased triangles.
        ax.add_collection3d(Poly3DCollection(triangles, facecolors=colour, edgecolors=colour, linewidths=0.3))
    else:
        phase = "pore" if v.min() >= 0.5 else "grain"
        ax.text2D(0.5, 0.5, f"no pore surface: the volume is all {phase}", transform=ax.transAxes,
                  ha="center", va="center", fontsize=10, color="#a00")
    ax.set_xlim(0, w - 1)
    ax.set_ylim(0, h - 1)
    ax.set_zlim(0, d - 1)
    ax.set_box_aspect((max(w - 1, 1), max(h - 1, 1), max(d - 1, 1)))
    for setter, name in ((ax.set_xlabel, "x"), (ax.set_ylabel, "y"), (ax.set_zlabel, "z")):
        setter(f"{name} (voxels)", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.text(0.5, 0.985, title or "pore space", ha="center", va="top", fontsize=11)
    parts = [f"pore-grain interface (marching cubes, level 0.5), porosity {float((v >= 0.5).mean()):.3f}",
             f"{int(nfaces):,} triangles" + (" (step 2)" if step == 2 else "")]
    if note:
        parts.append(note)
    fig.text(0.5, 0.01, "; ".join(parts), ha="center", va="bottom", fontsize=8, color="#444", wrap=True)
    return _save(fig, path)


# ---- statistics --------------------------------------------------------------------------------

def _series(label: str, value: Any, n_lags: int):
    """(mean, std or None, lags or None) from an array or a tuple (mean, std[, lags])."""
    if isinstance(value, tuple):
        if not 1 <= len(value) <= 3:
            raise GenlabError(f"series '{label}' must be mean or (mean, std) or (mean, std, lags)")
        mean, std, lags = (tuple(value) + (None, None))[:3]
    else:
        mean, std, lags = value, None, None
    mean = np.asarray(mean, dtype=np.float64).ravel()
    std = None if std is None else np.asarray(std, dtype=np.float64).ravel()
    lags = None if lags is None else np.asarray(lags, dtype=np.float64).ravel()
    n = len(lags) if lags is not None else n_lags
    if len(mean) != n or (std is not None and len(std) != n):
        raise GenlabError(f"series '{label}' has {len(mean)} values"
                          + (f" and {len(std)} std" if std is not None else "")
                          + f" for {n} lags; pass one value per lag")
    return mean, std, lags


def s2_plot(lags: Any, series: Mapping[str, Any], path: str | os.PathLike, title: str | None = None,
            ylabel: str = "S\u2082(r)", xlabel: str = "lag r (voxels)",
            size_px: tuple[int, int] = (640, 440)) -> Path:
    """A PNG of two-point functions S2(r) against the lag r.

    ``series`` maps a label to its curve, drawn in order with distinct colours:

    * ``(mean, std)``: a solid line for the mean and a shaded band mean ± std (e.g. the
      generated volumes, the training sub-volumes);
    * ``mean`` alone or ``(mean, None)``: a dashed line (a reference: the paper's GAN, a closed
      form);
    * a third element ``(mean, std, lags)`` gives a series its own lags instead of ``lags``.

    All arrays are plain sequences or numpy arrays of the same length as their lags."""
    lags = np.asarray(lags, dtype=np.float64).ravel()
    if not series:
        raise GenlabError("no curves to plot; pass at least one series")
    fig = _figure(*size_px)
    ax = fig.add_axes((0.11, 0.12, 0.62, 0.78))
    for i, (label, value) in enumerate(series.items()):
        mean, std, own = _series(str(label), value, len(lags))
        r = own if own is not None else lags
        colour = _SERIES_COLOURS[i % len(_SERIES_COLOURS)]
        if std is None:
            ax.plot(r, mean, "--", color=colour, lw=1.6, label=str(label))
        else:
            ax.plot(r, mean, "-", color=colour, lw=1.8, label=f"{label} (mean)")
            ax.fill_between(r, mean - std, mean + std, color=colour, alpha=0.2, lw=0, label=f"{label} (\u00b11 std)")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_xlim(left=0)
    ax.grid(True, color="#ddd", lw=0.6)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _finite(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def statistics_panels(panels: Sequence[Mapping[str, Any]], path: str | os.PathLike, title: str | None = None,
                      columns: int = 4, panel_px: tuple[int, int] = (230, 260)) -> Path:
    """A PNG with one small panel per scalar statistic (porosity, specific surface, mean chord
    lengths, Euler characteristic, ...). Each panel is a dict:

    * ``name``: the panel's title (e.g. "porosity");
    * ``generated``: the generated samples' values, drawn as jittered points and a box plot;
    * ``training`` (optional): the training sub-volumes' values, drawn as a grey band across the
      panel (light: min to max; darker: mean ± std) and a grey line at their mean;
    * ``reference`` (optional): {label: value}, dashed horizontal lines (the original volume's
      value, the paper's GAN);
    * ``unit`` (optional): the y axis label.

    Non-finite values are left out. Panels are laid out ``columns`` to a row."""
    if not panels:
        raise GenlabError("no statistics to plot; pass at least one panel")
    for p in panels:
        if not isinstance(p, Mapping) or "name" not in p:
            raise GenlabError("each panel must be a dict with a 'name' and 'generated' values")
    ncol = min(columns, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    legend_h = 40
    title_h = 30 if title else 8
    pw, ph = panel_px
    width, height = ncol * pw, nrow * ph + legend_h + title_h
    fig = _figure(width, height)
    ref_colours: dict[str, str] = {}
    handles: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for k, p in enumerate(panels):
        r, c = divmod(k, ncol)
        x0, y0 = c * pw, title_h + r * ph
        ax = fig.add_axes(((x0 + 52) / width, 1 - (y0 + ph - 28) / height, (pw - 68) / width, (ph - 58) / height))
        gen, train = _finite(p.get("generated")), _finite(p.get("training"))
        if len(train):
            lo, hi, m, s = train.min(), train.max(), train.mean(), train.std()
            handles["training min\u2013max"] = ax.axhspan(lo, hi, color="#bbb", alpha=0.45, lw=0)
            handles["training mean \u00b1 std"] = ax.axhspan(m - s, m + s, color="#888", alpha=0.45, lw=0)
            handles["training mean"] = ax.axhline(m, color="#555", lw=1.2)
        if len(gen):
            box = ax.boxplot([gen], positions=[0], widths=0.5, showfliers=False, patch_artist=True,
                             medianprops={"color": "#d62728"}, boxprops={"facecolor": "none", "edgecolor": "#1f77b4"},
                             whiskerprops={"color": "#1f77b4"}, capprops={"color": "#1f77b4"})
            handles["generated (median, quartiles)"] = box["boxes"][0]
            handles["generated samples"] = ax.scatter(rng.uniform(-0.18, 0.18, len(gen)), gen, s=12,
                                                      color="#1f77b4", alpha=0.7, lw=0, zorder=3)
        else:
            ax.text(0.5, 0.5, "no generated values", transform=ax.transAxes, ha="center", va="center",
                    fontsize=8, color="#a00")
        for label, value in (p.get("reference") or {}).items():
            if value is None or not np.isfinite(value):
                continue
            colour = ref_colours.setdefault(str(label), _REFERENCE_COLOURS[len(ref_colours) % len(_REFERENCE_COLOURS)])
            handles[str(label)] = ax.axhline(float(value), color=colour, ls="--", lw=1.2)
        ax.set_xlim(-0.6, 0.6)
        ax.set_xticks([0])
        ax.set_xticklabels([f"generated (n={len(gen)})"], fontsize=7)
        subtitle = str(p["name"]) + (f"\ntraining n={len(train)}" if len(train) else "")
        ax.set_title(subtitle, fontsize=8.5)
        if p.get("unit"):
            ax.set_ylabel(str(p["unit"]), fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="y", color="#e4e4e4", lw=0.6)
    if handles:
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=min(len(handles), 4),
                   fontsize=7.5, frameon=False, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=11)
    return _save(fig, path)
