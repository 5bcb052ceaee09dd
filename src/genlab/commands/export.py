"""``genlab export RUN --format torchscript|onnx``: the part of a trained model that people deploy,
as one file that runs without genlab.

What is exported depends on what the model declares (:attr:`~genlab.models.base.GenerativeModel.capabilities`):

- a model that maps images to images (``condition_image``: denoise, superres, colorize, pix2pix,
  CycleGAN) exports its image-to-image network, ``translate(x)``: input images (N, C', H, W) in
  [0, 1] to output images in [0, 1] (a CycleGAN one ``direction``);
- a model with a decoder (``decoder``: autoencoders, VAEs, GANs, PCA, diffusion) exports
  ``decode(z)``: codes (N, latent_dim) to images (N, C, *spatial); a class-conditional model takes
  the class indices (N,) (int64) as a second input;
- a model with neither gets one line saying so.

The model's own method is traced (:func:`torch.jit.trace`, then frozen, so that the file holds
only the weights that part uses); ONNX goes through the same trace (``torch.onnx.export``, its
TorchScript-based exporter, which needs the ``onnx`` package). The export is made in memory, on
the CPU, in eval mode (so with the moving average of the weights where one is kept), then loaded
back from its bytes (TorchScript: ``torch.jit.load``; ONNX: ``onnxruntime``, when installed) and
run: its output must equal the model's to ``tolerance`` on the example input and on a second input
of other values, or nothing is written. (A trace follows one path through the Python code: a
computation that depends on the input's values, an ``if`` on them, is fixed to the example's, and
the second input shows it.) A third input, of another batch size (and, for an image-to-image
network, twice the image size), tells whether the file takes other batch sizes (and image sizes);
the report says which, and an ONNX file that does not is written with fixed shapes. An existing
file is never replaced unless asked (``overwrite``).

A diffusion model's decoder is its whole sampler (the config's ``sampler``, DDIM by default, and
``sample_steps`` denoising steps, unrolled: slow to export, and the file takes one batch size, ``batch_size``). A TorchScript file
runs on the CPU: the trace records the model's moves of its inputs to its device (an ONNX file has
no device).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import GenlabError, first_line
from ..files import write_atomic
from ..models.base import GenerativeModel, NotSupported
from ..runs import check_not_run_file, load_run
from ..train import Run
from .run import output_file

#: the formats, and the file endings each takes
FORMATS = {"torchscript": (".pt", ".pth", ".ts"), "onnx": (".onnx",)}


@dataclass
class _Part:
    """What is exported: a module over the model's method, its inputs' names, a function that makes
    n inputs from a seed (of an image size ``scale`` times the model's, for an image-to-image
    network), what it is in words, and the axes of each input and of the output that may vary."""

    module: nn.Module
    input_names: list[str]
    make_inputs: Callable[[int, int, int], tuple[torch.Tensor, ...]]
    name: str           # decoder, translator, translator-b-to-a: the default file name
    what: str           # the model's decode, the model's translate (a-to-b)
    dynamic: dict[str, dict[int, str]]


class _Over(nn.Module):
    """A module whose ``forward`` calls a method of ``model``. The model's submodules, parameters and
    buffers are registered here (the same tensors), so the trace sees them as weights; the model
    itself is held as a plain attribute, since tracing reads every attribute of a module it is
    given, and a model's ``latent_dim`` may raise for want of one."""

    def __init__(self, model: GenerativeModel):
        super().__init__()
        for name, child in model.named_children():
            self.add_module(f"model_{name}", child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(f"model_{name}", param)
        for name, buffer in model.named_buffers(recurse=False):
            self.register_buffer(f"model_{name}", buffer)
        object.__setattr__(self, "model", model)


class _Decoder(_Over):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


class _ConditionalDecoder(_Over):
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z, labels)


class _Translator(_Over):
    def __init__(self, model: GenerativeModel, direction: str | None):
        super().__init__(model)
        self.direction = direction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.direction is None:
            return self.model.translate(x)
        return self.model.translate(x, self.direction)


def exported_part(model: GenerativeModel, direction: str | None = None) -> _Part:
    """The part of ``model`` that is exported (see the module's description); one line for a model
    that has none."""
    caps = model.capabilities
    if caps.condition_image:
        return _translator(model, direction)
    if direction is not None:
        raise GenlabError(f"`direction` is for a run that translates both ways; a {model.name} model exports its decoder")
    if caps.decoder:
        return _decoder(model)
    raise NotSupported(f"a {model.name} model has neither a decoder (codes to images) nor an image-to-image network "
                       "to export")


def _decoder(model: GenerativeModel) -> _Part:
    width = model.latent_dim
    conditional = model.capabilities.labels

    def make_inputs(n: int, scale: int, seed: int) -> tuple[torch.Tensor, ...]:
        z = torch.randn(n, width, generator=torch.Generator().manual_seed(seed))
        return (z, (torch.arange(n) + seed) % model.config.num_classes) if conditional else (z,)

    names = ["z", "labels"] if conditional else ["z"]
    return _Part(_ConditionalDecoder(model) if conditional else _Decoder(model), names, make_inputs, "decoder",
                 "the model's decode", {name: {0: "N"} for name in (*names, "images")})


def _translator(model: GenerativeModel, direction: str | None) -> _Part:
    from PIL import Image

    suffix = model.result_suffix(direction)   # refuses a direction the model does not offer
    h, w = model.config.image_shape[-2:]
    out_h, out_w = model.result_size(h, w)
    two_way = model.capabilities.domain_transfer   # then the suffix names the direction (``a-to-b``)

    def example(pixels: np.ndarray) -> torch.Tensor:   # the input the model makes of an image file
        return model.condition_from_image(Image.fromarray(pixels), "the example image", direction)[0]

    # Colour examples for a network that takes colour, grey ones otherwise (a model that takes grey
    # input makes a colour file grey).
    colour = example(np.zeros((h, w), dtype=np.uint8)).shape[1] == 3

    def make_inputs(n: int, scale: int, seed: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng(seed)
        shape = (h * scale, w * scale, 3) if colour else (h * scale, w * scale)
        return (torch.cat([example(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(n)]),)

    return _Part(_Translator(model, direction), ["x"], make_inputs,
                 f"translator-{suffix}" if two_way else "translator",
                 f"the model's translate ({suffix})" if two_way else "the model's translate",
                 {"x": {0: "N", 2: "H", 3: "W"}, "images": {0: "N", 2: _times(out_h, h, "H"), 3: _times(out_w, w, "W")}})


def _times(size: int, side: int, name: str) -> str:
    """The output's side ``size`` for an input's ``side``, in terms of the input's (``H``, ``2H``)."""
    if size == side:
        return name
    return f"{size // side}{name}" if size % side == 0 else f"{name}_out"


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """No warnings from the trace (values read as Python numbers, which the check on the fixed
    input covers) nor about TorchScript and the ONNX exporter being deprecated in favour of
    torch.export."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _torchscript(part: _Part, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> bytes:
    with _quiet_tracing(), torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(part.module, inputs, check_trace=False).eval())
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _onnx(part: _Part, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> bytes:
    import onnx

    buffer = io.BytesIO()
    with _quiet_tracing(), torch.no_grad():
        torch.onnx.export(part.module, inputs, buffer, dynamo=False, input_names=part.input_names,
                          output_names=["images"], dynamic_axes=part.dynamic if dynamic else None)
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def _runner(data: bytes, format: str) -> Callable[..., torch.Tensor] | None:
    """The exported file, loaded back from its bytes, as a function of tensors; None for ONNX
    without onnxruntime."""
    if format == "torchscript":
        with _quiet_tracing():
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")

        def run(*inputs: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return loaded(*inputs)
        return run
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4   # a failed run is an exception here, not a line on stderr too
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])
    return run


def _compare(run: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], expected: torch.Tensor,
             tolerance: float) -> tuple[bool, float | None]:
    """(whether the exported file's output equals the model's to ``tolerance``, absolute and
    relative; their largest absolute difference, None when the file cannot take these inputs or
    gives another shape)."""
    try:
        got = run(*inputs)
    except Exception:   # noqa: BLE001  (TorchScript's and onnxruntime's errors: any, by design)
        return False, None
    if tuple(got.shape) != tuple(expected.shape):
        return False, None
    difference = float((got.double() - expected.double()).abs().max()) if got.numel() else 0.0
    return torch.allclose(got, expected, rtol=tolerance, atol=tolerance), difference


def _shape(shape: torch.Size | tuple[int, ...], names: dict[int, str] | None) -> str:
    names = names or {}
    return "(" + ", ".join(names.get(i, str(s)) for i, s in enumerate(shape)) + (",)" if len(shape) == 1 else ")")


def export_run(run: Run | GenerativeModel | str | os.PathLike, format: str = "torchscript",
               out: str | os.PathLike | None = None, *, overwrite: bool = False, direction: str | None = None,
               batch_size: int = 2, tolerance: float = 1e-5, report: Callable[[str], None] | None = None) -> Path:
    """Export the deployable part of ``run`` (a :class:`~genlab.train.Run`, a run folder, or a
    model) as ``format`` (``torchscript`` or ``onnx``) to ``out`` (default ``RUN/decoder.pt``,
    ``RUN/translator.onnx``, ...; see the module's description) and return the path.

    The file is written only if, loaded back, it gives the model's output on a fixed input of
    ``batch_size`` items to ``tolerance`` (absolute and relative). ``direction``: which way, for a
    run that translates both ways. ``report`` is told, in a few lines, the inputs and the output
    with their shapes (N: any batch size) and how far the check went."""
    if format not in FORMATS:
        raise GenlabError(f"unknown `format` '{format}'; choose one of: {', '.join(FORMATS)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise GenlabError(f"`batch_size` (of the example input the export is traced with) must be a whole number "
                          f"of at least 1, got {batch_size!r}")
    if not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise GenlabError(f"`tolerance` must be a number above 0, got {tolerance!r}")
    if format == "onnx":
        if importlib.util.find_spec("onnx") is None:
            raise GenlabError("exporting to ONNX needs the onnx package (and onnxruntime to check the file): "
                              "pip install onnx onnxruntime, or pip install 'genlab[export]'")
    if isinstance(run, (str, os.PathLike)):
        run = load_run(run)
    model = run.model if isinstance(run, Run) else run
    part = exported_part(model, direction)
    ending = FORMATS[format][0]
    if out is None and not isinstance(run, Run):
        raise GenlabError(f"give `out`, the file to write (e.g. {part.name}{ending}), when exporting a model "
                          "without its run folder")
    default = run.path / f"{part.name}{ending}" if isinstance(run, Run) else Path(f"{part.name}{ending}")
    path = output_file(out, default, FORMATS[format], f"a {format} file")
    check_not_run_file(path)
    if path.exists() and not overwrite:
        raise GenlabError(f"{path} already exists and is not replaced; give another `out`, or `overwrite=True` to "
                          "replace it")

    device, training = model.device, model.training
    model.cpu().eval()   # traced on the CPU, so that the file runs anywhere; in eval mode, as deployed
    part.module.eval()   # (the exporters set the module's mode, and set it back after)
    try:
        data, lines = _export_checked(part, model, format, batch_size, tolerance)
    finally:
        model.to(device).train(training)
    write_atomic(path, lambda f: f.write(data))
    for line in lines if report is not None else ():
        report(line)
    return path


def _export_checked(part: _Part, model: GenerativeModel, format: str, batch_size: int, tolerance: float
                    ) -> tuple[bytes, list[str]]:
    """The exported file's bytes, checked against the model, and the lines of its report."""
    def export(part: _Part, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> bytes:
        try:
            return (_torchscript if format == "torchscript" else _onnx)(part, inputs, dynamic)
        except GenlabError:
            raise
        except Exception as err:   # noqa: BLE001  (the tracer's and the exporter's errors: any)
            raise GenlabError(f"{part.what} could not be exported to {format}: {type(err).__name__}: "
                              f"{first_line(err, 200)}") from None

    inputs = part.make_inputs(batch_size, 1, 0)
    again = part.make_inputs(batch_size, 1, 1)    # other values: a trace that took one branch of an `if` fails here
    other = part.make_inputs(batch_size + 1, 2, 2)   # another batch size (and, for images in, twice the size)
    with torch.no_grad():
        expected, expected_again, expected_other = (part.module(*i) for i in (inputs, again, other))
    data = export(part, inputs, True)
    run = _runner(data, format)
    if run is None:
        return data, [*_shapes(part, inputs, expected, True),
                      "not run after export: onnxruntime is not installed, so its output was not compared with "
                      "the model's (pip install onnxruntime)"]
    varies = _compare(run, other, expected_other, tolerance)[0]
    if not varies and format == "onnx":   # declared fixed, so that a runtime refuses other shapes
        data = export(part, inputs, False)
        run = _runner(data, format)
    largest = 0.0
    for example, (same, difference) in (("the example input", _compare(run, inputs, expected, tolerance)),
                                        ("a second input", _compare(run, again, expected_again, tolerance))):
        if not same:
            found = "could not run on" if difference is None else f"differs by up to {difference:.3g} from the model on"
            raise GenlabError(f"the exported {format} file {found} {example} (`tolerance` {tolerance:g}); nothing "
                              f"written: {part.what} does not trace faithfully (its computation may depend on "
                              "the input's values)")
        largest = max(largest, difference)
    lines = _shapes(part, inputs, expected, varies)
    sizes = " and image sizes" if "H" in part.dynamic.get("x", {}).values() else ""
    if varies:
        shown = ", ".join(_shape(t.shape, None) for t in other)
        lines.append(f"checked: matches {part.what} to {tolerance:g} (largest difference {largest:.2g}), and "
                     f"takes other batch sizes{sizes} (checked again at {shown})")
    else:
        lines.append(f"checked: matches {part.what} to {tolerance:g} (largest difference {largest:.2g}); the trace "
                     f"holds for this batch size{sizes} only (N = {batch_size}: give another `batch_size`)")
    return data, lines


def _shapes(part: _Part, inputs: tuple[torch.Tensor, ...], output: torch.Tensor, varies: bool) -> list[str]:
    """A line for the inputs and one for the output: shapes (N etc. where they may vary), types."""
    def axes(name: str) -> dict[int, str] | None:
        return part.dynamic.get(name) if varies else None

    def dtype(t: torch.Tensor) -> str:
        return str(t.dtype).removeprefix("torch.")

    ins = ", ".join(f"{name} {_shape(t.shape, axes(name))} {dtype(t)}" for name, t in zip(part.input_names, inputs))
    note = {"z": "", "labels": " (class indices)"}
    ins += "".join(note.get(name, "") for name in part.input_names[1:])
    example = (f" (traced at {', '.join(_shape(t.shape, None) for t in inputs)} -> {_shape(output.shape, None)})"
               if varies else "")
    return [f"input: {ins}", f"output: images {_shape(output.shape, axes('images'))} {dtype(output)}{example}"]
