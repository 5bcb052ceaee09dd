"""Worked examples with real numbers: the transposed convolution and its checkerboard artifacts.

:func:`transposed_conv` prints a small convolution matrix W, its transpose W^T, and the checks that
W^T is the ConvTranspose2d and equals a stride-1 convolution over the zero-inserted, padded input
with the flipped kernel. :func:`checkerboard` measures the checkerboard pattern that transposed
convolutions (and pixel shuffle) print on a constant input, and that resize-then-convolve avoids.
Both write figures; they draw on ``matplotlib.figure.Figure`` directly, never pyplot, so no display
or global backend is involved.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import GenlabError, check_seed
from .nn.blocks import upsampler
from .nn import (conv_matrix, flipped_kernel, transposed_conv_as_conv, transposed_conv_matrix, transposed_conv_output_size, transposed_conv_padding, zero_insert)

MAX_EXAMPLE_SIZE = 8  # beyond this the printed W stops fitting a terminal


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GenlabError("the explain figures need matplotlib; install it with: pip install matplotlib") from None
    return Figure(figsize=(width, height), layout="constrained")


@contextmanager
def _one_thread():
    """Run tiny layers on one thread: on a busy machine OpenMP's barriers cost 10-100x their work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_int(name: str, value, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise GenlabError(f"{name} must be an integer {bound}, got {value!r}")


def _format_matrix(m: Tensor) -> str:
    """Integer matrix as text, zeros shown as '.' so the band structure of W stands out."""
    cells = [["." if v == 0 else f"{v:g}" for v in row] for row in m.tolist()]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(" ".join(c.rjust(width) for c in row) for row in cells)


def _show(ax, m: Tensor, title: str, cmap: str = "Blues", annotate: bool = True, zeros: str = "") -> None:
    """An integer matrix as a heat map on a light grid: zeros blank (or written as ``zeros``), values written in."""
    from matplotlib import colormaps
    m = m.detach().double()
    high = m.abs().max().item() or 1.0
    colours = colormaps[cmap].with_extremes(bad="white")
    # vmin below 0 keeps the smallest values visibly coloured against the blank zeros.
    ax.imshow(m.masked_fill(m == 0, float("nan")).numpy(), cmap=colours, vmin=-0.3 * high, vmax=high,
              interpolation="nearest")
    ax.set_title(title, fontsize=10)
    rows, cols = m.shape
    ax.set_xticks([x - 0.5 for x in range(cols + 1)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(rows + 1)], minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if not annotate:
        return
    size = 9 if max(rows, cols) <= 12 else 7
    for r in range(rows):
        for c in range(cols):
            v = m[r, c].item()
            if v != 0:
                ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=size,
                        color="white" if v > 0.55 * high else "black")
            elif zeros:
                ax.text(c, r, zeros, ha="center", va="center", fontsize=size, color="0.6")


def transposed_conv(kernel: int = 3, stride: int = 2, padding: int = 1, size: int = 4,
                    out_dir: str | Path = "runs/explain", seed: int = 0) -> dict[str, Path]:
    """Explain one single-channel transposed convolution with integers; print it and draw it.

    The kernel holds 1..kernel^2 (row by row, so its flip is easy to see); the input is a seeded
    size x size image of integers 1..4 (no zeros, so the inserted zeros stand out); every number
    printed is exact. With o = (size-1)*stride - 2*padding + kernel (Dumoulin and Visin), W is the
    (size^2, o^2) matrix of Conv2d(kernel, stride, padding) on an o x o image, and ConvTranspose2d
    with the same kernel maps the size x size input to o x o by W^T.

    Writes ``transposed_conv.png`` (input, W, W^T, the padded zero-inserted input with the flipped
    kernel, the output) and ``transposed_conv.json`` (settings and the max abs differences of each
    equivalence) under ``out_dir``; returns their paths as ``figure`` and ``checks``.
    """
    _check_int("kernel", kernel, 1, 7)
    _check_int("stride", stride, 1, 4)
    _check_int("padding", padding, 0)
    _check_int("size", size, 1, MAX_EXAMPLE_SIZE)
    check_seed(seed)
    o = transposed_conv_output_size(size, kernel, stride, padding)  # GenlabError if padding crops it all

    weight = torch.arange(1, kernel * kernel + 1, dtype=torch.float64).reshape(1, 1, kernel, kernel)
    x = torch.randint(1, 5, (1, 1, size, size), generator=torch.Generator().manual_seed(seed)).double()
    tconv = nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding, bias=False).double()
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, bias=False).double()
    with torch.no_grad():
        tconv.weight.copy_(weight)
        conv.weight.copy_(weight)
        W = conv_matrix(conv, o)                   # (size^2, o^2): o x o image -> size x size
        WT = transposed_conv_matrix(tconv, size)   # (o^2, size^2): size x size -> o x o
        y = tconv(x)
        y_matrix = (W.T @ x.flatten()).reshape(o, o)
        padded = torch.nn.functional.pad(zero_insert(x, tconv.stride), transposed_conv_padding(tconv))
        y_conv = transposed_conv_as_conv(tconv, x)
        z = torch.randint(0, 4, (1, 1, o, o), generator=torch.Generator().manual_seed((seed + 1) % 2 ** 64)).double()
        checks = {
            "W z vs Conv2d(z)": (W @ z.flatten() - conv(z).flatten()).abs().max().item(),
            "W^T vs matrix of ConvTranspose2d": (W.T - WT).abs().max().item(),
            "W^T x vs ConvTranspose2d(x)": (y_matrix - y[0, 0]).abs().max().item(),
            "padded stride-1 conv vs ConvTranspose2d(x)": (y_conv - y).abs().max().item(),
        }

    print(f"ConvTranspose2d(kernel={kernel}, stride={stride}, padding={padding}): "
          f"{size}x{size} -> {o}x{o}   [o = (i-1)s - 2p + k = ({size}-1)*{stride} - 2*{padding} + {kernel}]")
    print(f"\nkernel:\n{_format_matrix(weight[0, 0])}\n\ninput x ({size}x{size}):\n{_format_matrix(x[0, 0])}")
    print(f"\nW, the Conv2d matrix ({size * size} x {o * o}; row = output pixel, column = input pixel):\n"
          f"{_format_matrix(W)}")
    print(f"\nW^T, the ConvTranspose2d matrix ({o * o} x {size * size}):\n{_format_matrix(WT)}")
    print(f"\nzero-inserted ({stride - 1} zeros between pixels) and padded (k-1-p = {kernel - 1 - padding} per side)"
          f" input ({padded.shape[-2]}x{padded.shape[-1]}):\n{_format_matrix(padded[0, 0])}")
    print(f"\nflipped kernel (rotated 180 degrees):\n{_format_matrix(flipped_kernel(tconv)[0, 0])}")
    print(f"\noutput y = W^T x ({o}x{o}):\n{_format_matrix(y[0, 0])}")
    print("\nchecks (max abs difference, float64):")
    for name, diff in checks.items():
        print(f"  {name:<44} {diff:.1e}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = _figure(15, 9)
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1.2])
    _show(fig.add_subplot(grid[0, 0]), x[0, 0], f"input x ({size}x{size})")
    _show(fig.add_subplot(grid[0, 1]), flipped_kernel(tconv)[0, 0], "kernel flipped 180 degrees", cmap="Oranges")
    ax = fig.add_subplot(grid[0, 2])
    _show(ax, padded[0, 0], f"input zero-inserted and padded ({padded.shape[-2]}x{padded.shape[-1]});\n"
          f"slide the flipped kernel with stride 1 (orange: output (0,0))", zeros="0")
    ax.add_patch(_rectangle(kernel))
    _show(fig.add_subplot(grid[0, 3]), y[0, 0], f"output y = W^T x ({o}x{o})", cmap="Purples")
    _show(fig.add_subplot(grid[1, :3]), W, f"W: the Conv2d k={kernel} s={stride} p={padding} as a {size * size} x "
          f"{o * o} matrix (row = output pixel, column = input pixel of a {o}x{o} image)",
          cmap="Oranges", annotate=W.numel() <= 1000)
    _show(fig.add_subplot(grid[1, 3]), WT, f"W^T ({o * o} x {size * size}):\nthe ConvTranspose2d's matrix",
          cmap="Oranges", annotate=False)
    fig.suptitle(f"Transposed convolution k={kernel} s={stride} p={padding}: y = W^T x = stride-1 conv of the "
                 f"padded input (max difference {max(checks.values()):.0e})", fontsize=12)
    figure = out / "transposed_conv.png"
    fig.savefig(figure, dpi=110)
    settings = dict(kernel=kernel, stride=stride, padding=padding, size=size, seed=seed, output_size=o)
    checks_path = out / "transposed_conv.json"
    checks_path.write_text(json.dumps({"settings": settings, "max_abs_difference": checks}, indent=2) + "\n")
    return {"figure": figure, "checks": checks_path}


def _rectangle(kernel: int):
    """The kernel window that computes output pixel (0, 0): the top-left corner of the padded input."""
    from matplotlib.patches import Rectangle
    return Rectangle((-0.5, -0.5), kernel, kernel, fill=False, edgecolor="tab:orange", linewidth=2.5)


# --- checkerboard artifacts -------------------------------------------------------------------

def nyquist_energy_fraction(image: Tensor) -> float:
    """Fraction of an image's spectral energy at the Nyquist frequencies (period-2 patterns).

    image: (H, W). After removing the mean, the share of sum |FFT|^2 that lies in the row or column
    of the 2-D spectrum at 1/2 cycle per pixel: patterns that alternate every pixel along y or x,
    i.e. the checkerboard of a stride-2 upsampler. 0 for a smooth image, 1 for a pure checkerboard;
    white noise gives about (H + W - 1) / (H W). Needs even H and W (odd sides have no Nyquist bin).
    """
    h, w = image.shape
    power = torch.fft.fft2(image.double() - image.double().mean()).abs() ** 2
    total = power.sum().item()
    if total == 0:
        return 0.0
    nyquist = power[h // 2].sum() + power[:, w // 2].sum() - power[h // 2, w // 2]
    return nyquist.item() / total


def _upsamplers() -> dict[str, callable]:
    """The variants compared; each maps (in_channels, out_channels) to a 2x upsampling layer."""
    return {
        "transposed": lambda a, b: upsampler("transposed", a, b),  # genlab's decoders: k4 s2 p1
        "transposed-k3": lambda a, b: nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1),
        "resize-conv": lambda a, b: upsampler("resize-conv", a, b),
        "pixel-shuffle": lambda a, b: upsampler("pixel-shuffle", a, b),
    }


def _decoder(make, width: int) -> nn.Sequential:
    """(N, width, 4, 4) -> (N, 1, 32, 32): three 2x upsamplers with ReLUs between."""
    return nn.Sequential(make(width, width), nn.ReLU(), make(width, width), nn.ReLU(), make(width, 1))


def _blob(side: int) -> Tensor:
    """A smooth target (side, side): an off-centre Gaussian blob of standard deviation side/5, peak 1."""
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    return torch.exp(-((yy - 0.4 * side) ** 2 + (xx - 0.55 * side) ** 2) / (2 * (side / 5) ** 2))


def _fit(net: nn.Module, ones: Tensor, code: Tensor, target: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Output (H, W) on the constant input at init, then on ``code`` after ``steps`` Adam steps towards target."""
    with torch.no_grad():
        init = net(ones)[0, 0]
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = (net(code)[0, 0] - target).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return init, net(code)[0, 0]


def checkerboard(out_dir: str | Path = "runs/explain", seed: int = 0, steps: int = 300) -> dict:
    """Measure the checkerboard of each upsampler at initialisation and after a short fit.

    The same small decoder, (1, 16, 4, 4) -> (1, 1, 32, 32) through three 2x upsamplers, is built
    with each variant: ``transposed`` (genlab's ConvTranspose2d k4 s2 p1), ``transposed-k3``
    (ConvTranspose2d k3 s2 p1 output_padding 1: uneven overlap, the strongest artifacts),
    ``resize-conv`` (nearest 2x then 3x3 conv) and ``pixel-shuffle`` (3x3 conv to 4x channels, then
    depth-to-space). All start from the same seed. At initialisation each decodes a constant input
    of ones; then ``steps`` Adam steps (lr 3e-3, CPU) fit a Gaussian blob from a fixed seeded code.

    The high-frequency energy is :func:`nyquist_energy_fraction` of the output. Writes
    ``checkerboard.png`` and ``checkerboard.json`` under ``out_dir``. Returns ``{"figure": Path,
    "json": Path, "results": {variant: {"hf_init", "hf_trained", "mse"}}}``; mse is the mean squared
    error per pixel against the target (pixels in [0, 1]).
    """
    check_seed(seed)
    _check_int("steps", steps, 0)
    width, side = 16, 32
    ones = torch.ones(1, width, 4, 4)
    code = torch.randn(1, width, 4, 4, generator=torch.Generator().manual_seed(seed))
    target = _blob(side)
    results, images = {}, {}
    for name, make in _upsamplers().items():
        with torch.random.fork_rng():  # same initial weights per seed, caller's RNG untouched
            torch.manual_seed(seed)
            net = _decoder(make, width)
        with _one_thread():
            init, trained = _fit(net, ones, code, target, steps)
        results[name] = {"hf_init": nyquist_energy_fraction(init), "hf_trained": nyquist_energy_fraction(trained),
                         "mse": (trained - target).pow(2).mean().item()}
        images[name] = (init, trained)

    print(f"high-frequency energy = share of the output's spectral energy (mean removed) at the Nyquist "
          f"frequencies\n(period-2 patterns); decoder 4x4 -> 32x32, seed {seed}, {steps} Adam steps\n")
    print(f"{'upsampler':<15} {'at init (constant input)':>25} {'after training':>15} {'mse per pixel':>14}")
    for name, r in results.items():
        print(f"{name:<15} {r['hf_init']:>25.4f} {r['hf_trained']:>15.2e} {r['mse']:>14.2e}")
    print(f"{'target':<15} {'':>25} {nyquist_energy_fraction(target):>15.2e}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = out / "checkerboard.png"
    _draw_checkerboard(images, results, target, steps).savefig(figure, dpi=100)
    json_path = out / "checkerboard.json"
    json_path.write_text(json.dumps({"seed": seed, "steps": steps, "results": results}, indent=2) + "\n")
    return {"figure": figure, "json": json_path, "results": results}


def _draw_checkerboard(images: dict, results: dict, target: Tensor, steps: int):
    """Rows: output at init, its log power spectrum, output after training; a column per variant."""
    names = list(images)
    fig = _figure(3.0 * (len(names) + 1), 9)
    axes = fig.subplots(3, len(names) + 1)
    for col, name in enumerate(names):
        init, trained = images[name]
        spectrum = torch.log10(torch.fft.fftshift(torch.fft.fft2(init - init.mean()).abs() ** 2) + 1e-30)
        panels = [
            (init, f"{name}\ninit, constant input\nNyquist energy {results[name]['hf_init']:.3f}",
             dict(cmap="gray")),
            # The top 6 decades; the removed mean leaves the centre (DC) at the floor.
            (spectrum, "log10 power spectrum at init\n(centre = DC, edges = Nyquist)",
             dict(cmap="magma", vmin=spectrum.max().item() - 6)),
            (trained, f"after {steps} steps (mse {results[name]['mse']:.1e})\n"
                      f"Nyquist energy {results[name]['hf_trained']:.1e}", dict(cmap="gray")),
        ]
        for row, (img, title, style) in enumerate(panels):
            _image(fig, axes[row, col], img, title, **style)
    for row in (0, 1):
        axes[row, -1].axis("off")
    axes[0, -1].text(0, 0.5, "Each column: the same decoder\n(4x4 -> 32x32, three 2x\nupsamplers, same seed)\n"
                     "with a different upsampler.\n\nA constant input should give\na smooth output; stripes and\n"
                     "checkers come from the\nupsampler's uneven overlap.\n\nNyquist energy: share of the\n"
                     "spectrum (mean removed) at\nperiod-2 patterns.", fontsize=9, va="center")
    _image(fig, axes[2, -1], target, "target (Gaussian blob)", cmap="gray")
    fig.suptitle("Checkerboard artifacts: transposed convolution vs resize-convolution vs pixel shuffle", fontsize=12)
    return fig


def _image(fig, ax, img: Tensor, title: str, **style) -> None:
    im = ax.imshow(img.detach().numpy(), interpolation="nearest", **style)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.75)
