"""Pictures of a latent space: 2-D scatter maps of codes, and manifold grids of the decoder.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state)
and returned as PIL images, so the CLI, the demo report and tests all use them the same way.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..errors import GenlabError
from ..models.base import GenerativeModel
from .codes import decode_codes, require_latent_space

PROJECTIONS = ("pca", "tsne")


def project_2d(codes: np.ndarray | torch.Tensor, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, 2) coordinates of codes (N, d), and axis names. Codes of width 1 get a zero second
    axis, width 2 are returned as they are, wider codes are projected by ``pca`` (the two
    directions of largest variance) or ``tsne`` (neighbourhoods; slow beyond ~5,000 points)."""
    z = np.asarray(codes, dtype=np.float64)
    if z.shape[1] == 1:
        return np.c_[z, np.zeros(len(z))], ("z1", "")
    if z.shape[1] == 2:
        return z, ("z1", "z2")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(2, random_state=seed).fit_transform(z), ("PC 1", "PC 2")
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(z) - 1) / 3))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z), ("t-SNE 1", "t-SNE 2")
    raise GenlabError(f"unknown projection '{method}'; choose one of: {', '.join(PROJECTIONS)}")


def _figure(width_px: int, height_px: int, dpi: int = 100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _to_image(fig) -> Image.Image:
    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())


def draw_scatter(ax, points: np.ndarray, labels=None, class_names: list[str] | None = None,
                 title: str = "", axis_names: tuple[str, str] = ("", ""), legend: bool = True) -> None:
    """Draw points (N, 2) on a matplotlib Axes, one colour per class (tab10/tab20)."""
    from matplotlib import colormaps

    size = max(2.0, min(20.0, 4000 / max(len(points), 1)))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, c="#444", alpha=0.6, linewidths=0)
    else:
        labels = np.asarray(labels)
        classes = np.unique(labels)
        cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, k in enumerate(classes):
            sel = labels == k
            name = class_names[k] if class_names is not None and k < len(class_names) else str(k)
            ax.scatter(points[sel, 0], points[sel, 1], s=size, color=cmap(i % cmap.N), alpha=0.7,
                       linewidths=0, label=name)
        if legend and len(classes) <= 20:
            ax.legend(markerscale=max(1.0, 12 / size) ** 0.5, fontsize=8, loc="center left",
                      bbox_to_anchor=(1.0, 0.5), frameon=False, handletextpad=0.1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(axis_names[0], fontsize=8)
    ax.set_ylabel(axis_names[1], fontsize=8)
    ax.tick_params(labelsize=7)


def latent_scatter(codes, labels=None, class_names: list[str] | None = None, method: str = "pca",
                   title: str = "", size_px: tuple[int, int] = (560, 480), seed: int = 0) -> Image.Image:
    """A scatter plot (RGB image of ``size_px`` = (width, height) pixels) of codes (N, d)
    coloured by class, projected to 2-D by :func:`project_2d` when d > 2."""
    points, axis_names = project_2d(codes, method, seed)
    fig = _figure(*size_px)
    top = max(0.09, (15 * (title.count("\n") + 1) + 12) / size_px[1])  # room for every line of the title
    ax = fig.add_axes((0.12, 0.11, 0.72, 0.89 - top))
    draw_scatter(ax, points, labels, class_names, title, axis_names)
    return _to_image(fig)


def grid_codes(n: int, gaussian: bool, low=None, high=None) -> torch.Tensor:
    """(n*n, 2) regular grid of 2-D codes, row-major with z2 decreasing down the rows (so the
    picture has the orientation of a scatter plot). ``gaussian``: the points are the standard
    normal's quantiles at probabilities evenly spaced in (0, 1) (the inverse CDF maps equal
    prior mass to each cell); otherwise evenly spaced between ``low`` and ``high`` (2,)."""
    if gaussian:
        p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        axis = torch.distributions.Normal(0.0, 1.0).icdf(p).float()
        xs, ys = axis, axis
    else:
        xs = torch.linspace(float(low[0]), float(high[0]), n)
        ys = torch.linspace(float(low[1]), float(high[1]), n)
    gy, gx = torch.meshgrid(ys.flip(0), xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def has_gaussian_prior(model: GenerativeModel) -> bool:
    """True for models whose codes follow N(0, I) by construction: VAEs, and models without an
    encoder, whose only codes are the prior's draws (a GAN's z, a diffusion model's noise)."""
    able = model.capabilities
    return able.likelihood or not able.encoder


@torch.no_grad()
def manifold_grid(model: GenerativeModel, n: int = 15, codes: torch.Tensor | None = None,
                  label: int | None = None) -> torch.Tensor:
    """The decoder on an n x n grid of a 2-D latent space: images (n*n, C, H, W) in [0, 1].

    A VAE's grid, and that of a model without an encoder (a GAN), follows the prior's inverse CDF;
    other models' grids span the 1st to 99th percentile of ``codes`` (N, 2), e.g. the test codes.
    A conditional model decodes every point with class ``label`` (default 0)."""
    if require_latent_space(model, encoder=False) != 2:
        raise GenlabError(f"a manifold grid needs a 2-d code; this model's is {model.latent_dim}-d")
    if has_gaussian_prior(model):
        z = grid_codes(n, gaussian=True)
    else:
        if codes is None or len(codes) < 2:
            raise GenlabError("a manifold grid of a model without a Gaussian prior needs codes to span")
        q = torch.quantile(codes.float(), torch.tensor([0.01, 0.99]), dim=0)
        z = grid_codes(n, gaussian=False, low=q[0], high=q[1])
    labels = torch.full((len(z),), label or 0) if model.conditional else None
    return decode_codes(model, z, labels)
