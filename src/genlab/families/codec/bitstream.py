"""``genlab compress RUN IMAGES...`` and ``genlab decompress FILES... --run RUN``: a learned codec's files.

A file (``.glc``) is 16 bytes of header and the range coder's 32-bit words:

    b"GLC1" | 8 bytes: the first bytes of the SHA-256 of the model's weights | uint16 H | uint16 W | words

The code's symbols are range-coded (``constriction``'s queue coder, a well-tested Rust library)
with each code channel's probability table from the model's entropy model, so a file is within a
few bytes of the model's ideal bit count. Decoding needs the same model: the header names it by its
weights, and a file given to another model is refused rather than decoded into noise. A file cut
short (no coded words, or a part of one) is refused too; the format has no checksum, so damage
inside the coded part gives a wrong image rather than an error.
"""
from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...errors import GenlabError
from ...files import write_atomic
from ...models.base import GenerativeModel
from ...train import Run
from ...image_files import check_outputs, decode_image, image_tensor, output_folder, save_png
from .model import Codec

MAGIC = b"GLC1"
HEADER = struct.Struct("<4s8sHH")
SUFFIX = ".glc"


def require_codec(model: GenerativeModel) -> None:
    if not isinstance(model, Codec):
        raise GenlabError(f"a {model.name} model is not a codec; compress takes a run of `genlab train compress`")


def fingerprint(model: GenerativeModel) -> bytes:
    """8 bytes that name the model's weights (the first of a SHA-256 over every tensor, in order)."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()[:8]


def _coder():
    try:
        import constriction
    except ImportError:  # a dependency of genlab; only a broken install lacks it
        raise GenlabError("compress needs the constriction package: pip install constriction") from None
    return constriction


def _per_symbol(model: GenerativeModel, code_shape: tuple[int, int, int]) -> np.ndarray:
    """(M h w, 2R + 1) float32: each symbol's row of its channel's probability table, in the
    order of the flattened code (M, h, w)."""
    table = model.probability_table()   # (M, 2R + 1)
    m, h, w = code_shape
    return table[:, None, :].expand(m, h * w, table.shape[1]).reshape(-1, table.shape[1]).numpy().astype(np.float32)


@torch.no_grad()
def encode_symbols(model: GenerativeModel, symbols: torch.Tensor, size: tuple[int, int],
                   print_: bytes | None = None) -> bytes:
    """The file of one image's integer code (M, h, w) (:meth:`quantize` of :meth:`analyse`),
    for an image of ``size`` (H, W)."""
    constriction = _coder()
    h, w = size
    if max(h, w) > 65535:
        raise GenlabError(f"images of at most 65535 pixels a side can be compressed, got {w}x{h}")
    symbols = symbols.cpu()
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode((symbols.flatten() + model.config.symbol_range).numpy().astype(np.int32),
                   constriction.stream.model.Categorical(perfect=False), _per_symbol(model, tuple(symbols.shape)))
    words = encoder.get_compressed()
    return HEADER.pack(MAGIC, print_ or fingerprint(model), h, w) + words.astype("<u4").tobytes()


@torch.no_grad()
def encode_image(model: GenerativeModel, x: torch.Tensor, print_: bytes | None = None) -> bytes:
    """The file of one image (1, C, H, W) in [0, 1]."""
    model.eval()
    symbols = model.quantize(model.analyse(x.to(model.device)))[0]   # (M, h', w')
    return encode_symbols(model, symbols, tuple(x.shape[-2:]), print_)


@torch.no_grad()
def decode_file(model: GenerativeModel, data: bytes, name: str = "the file", print_: bytes | None = None
                ) -> torch.Tensor:
    """The image (1, C, H, W) in [0, 1] of a file's bytes; one clear line for a file that is not
    genlab's or was written by another model."""
    constriction = _coder()
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise GenlabError(f"{name} is not a genlab codec file (it does not start with {MAGIC!r})")
    _, mark, h, w = HEADER.unpack(data[:HEADER.size])
    own = print_ or fingerprint(model)
    if mark != own:
        raise GenlabError(f"{name} was written by another model (weights {mark.hex()}, this run's are "
                          f"{own.hex()}); decompress it with the run that compressed it")
    payload = data[HEADER.size:]
    if len(payload) % 4 or not payload:
        raise GenlabError(f"{name} is truncated (its coded part is empty or not whole 32-bit words)")
    model.eval()
    shape = model.code_shape(h, w)
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        symbols = decoder.decode(constriction.stream.model.Categorical(perfect=False), _per_symbol(model, shape))
    except Exception as err:  # the coder's own errors for data it cannot decode
        raise GenlabError(f"{name} is damaged: its coded part cannot be decoded ({' '.join(str(err).split())})") from None
    code = torch.from_numpy(symbols.astype(np.int64) - model.config.symbol_range).view(1, *shape)
    return model.synthesise(code.to(model.device), (h, w)).cpu()


def compress_files(run: Run | GenerativeModel, images: list[str | os.PathLike], out_dir: str | os.PathLike | None = None,
                   note: Callable[[str], None] | None = None, overwrite: bool = False) -> list[Path]:
    """Each image file to ``NAME.glc`` beside it (or in ``out_dir``); the paths written. Every
    input, and every file's path, is checked first: an existing file is not replaced unless
    ``overwrite``, and two inputs that would give the same file are refused. ``note`` is told each
    file's size and bits per pixel."""
    model = run.model if isinstance(run, Run) else run
    require_codec(model)
    if not images:
        raise GenlabError("give at least one image file to compress")
    inputs = []
    for path in map(Path, images):
        x = image_tensor(decode_image(path, str(path)), model.config.image_shape[0], str(path))
        try:
            model.check_images(x)
        except GenlabError as err:
            raise GenlabError(f"{path}: {err}") from None
        inputs.append((path, x))
    into = Path(out_dir) if out_dir is not None else None
    targets = [(path, (into or path.parent) / (path.stem + SUFFIX)) for path, _ in inputs]
    check_outputs(targets, overwrite)
    output_folder(out_dir)
    mark, written = fingerprint(model), []
    for (path, x), (_, target) in zip(inputs, targets):
        data = encode_image(model, x, mark)
        write_atomic(target, lambda f: f.write(data))
        if note is not None:
            h, w = x.shape[-2:]
            note(f"{target}: {len(data)} bytes, {8 * len(data) / (h * w):.3f} bits per pixel")
        written.append(target)
    return written


def decompress_files(run: Run | GenerativeModel, files: list[str | os.PathLike],
                     out_dir: str | os.PathLike | None = None, overwrite: bool = False) -> list[Path]:
    """Each ``NAME.glc`` to ``NAME.png`` beside it (or in ``out_dir``); the paths written. Like
    ``gzip -d``, an existing ``NAME.png`` (often the original that was compressed) is not replaced
    unless ``overwrite``: the command refuses, naming it, before anything is written."""
    model = run.model if isinstance(run, Run) else run
    require_codec(model)
    if not files:
        raise GenlabError("give at least one .glc file to decompress")
    into = Path(out_dir) if out_dir is not None else None
    targets = [(path, (into or path.parent) / (path.stem + ".png")) for path in map(Path, files)]
    for path, _ in targets:
        if not path.is_file():
            raise GenlabError(f"no file at {path}")
    mark, decoded = fingerprint(model), []
    for path, _ in targets:
        decoded.append(decode_file(model, path.read_bytes(), str(path), mark))
    check_outputs(targets, overwrite)
    output_folder(out_dir)
    return [save_png(image[0], target) for image, (_, target) in zip(decoded, targets)]
