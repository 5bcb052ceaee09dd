"""``genlab compress RUN IMAGES...`` and ``genlab decompress FILES... --run RUN``: a learned codec's files.

A file (``.glc``) is 20 bytes of header and the range coder's 32-bit words:

    b"GLC3" | 8 bytes: the first bytes of the SHA-256 of the model's weights | uint16 H | uint16 W
            | uint32 CRC-32 of the rest of the file (the 16 bytes before it, then the words) | words

The code's symbols are range-coded (``constriction``'s queue coder, a well-tested Rust library)
with each code channel's table of integer frequencies (:meth:`Codec.coding_frequencies`, saved
with the run's weights), so a file is within a few bytes of the model's ideal bit count and decodes
bit-exactly on any machine that loads the same weights. Decoding needs the same model: the header
names it by its weights, and a file given to another model is refused rather than decoded into
noise. A file cut short (no coded words, or a part of one) is refused too, and so is a header whose
image size the coded part could not hold (each symbol costs at least the bits of its channel's
likeliest one), before anything of that size is allocated. A file whose checksum does not match its
bytes is refused as damaged, so damage anywhere gives an error rather than a wrong image (CRC-32
catches every burst of up to 32 flipped bits). Files of the formats before (``GLC2``: the same
header, coded with the densities' floating-point tables; ``GLC1``: that without the checksum) still
decode on the machine that wrote them, ``GLC1`` unchecked.
"""
from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...errors import GenlabError
from ...files import write_atomic
from ...models.base import GenerativeModel
from ...train import Run
from ...image_files import MAX_IMAGE_PIXELS, check_outputs, decode_image, image_tensor, output_folder, save_png
from .model import CODING_PRECISION, Codec, state_digest

MAGIC = b"GLC3"
#: the fields every format starts with (magic, the weights' fingerprint, H, W): the whole header of
#: the format before the checksum (``OLD_MAGIC``), and what the checksum covers before the words
FIELDS = struct.Struct("<4s8sHH")
HEADER = struct.Struct("<4s8sHHI")
#: the formats coded with the floating-point tables: with the checksum, and before it
FLOAT_MAGIC, OLD_MAGIC = b"GLC2", b"GLC1"
SUFFIX = ".glc"


def require_codec(model: GenerativeModel) -> None:
    if not isinstance(model, Codec):
        raise GenlabError(f"a {model.name} model is not a codec; compress takes a run of `genlab train compress`")


def fingerprint(model: GenerativeModel) -> bytes:
    """8 bytes that name the model's weights (the first of a SHA-256 over every tensor, in order;
    the coder's tables, made from the weights, are not counted, so files written before the
    tables were saved keep their name)."""
    return state_digest(model.state_dict(), skip=model.derived_state)


def _coder():
    try:
        import constriction
    except ImportError:  # a dependency of genlab; only a broken install lacks it
        raise GenlabError("compress needs the constriction package: pip install constriction") from None
    return constriction


def _channel_models(model: GenerativeModel, integer: bool = True) -> list:
    """The range coder's model of each code channel: a categorical distribution over the symbols
    0..2R (the code's -R..R) with the channel's table: its integer frequencies over 2^precision
    (exact in float32, so the coder quantises the same numbers everywhere), or, for the files of
    the formats before (``integer=False``), the densities' probabilities. The code (M, h, w) is
    coded channel after channel, each with its channel's model, so the coder needs one table per
    channel and not one per symbol (an image's worth of tables would take gigabytes)."""
    constriction = _coder()
    if integer:
        table = (model.coding_frequencies().double() / 2 ** CODING_PRECISION).numpy().astype(np.float32)
    else:
        table = model.probability_table().numpy().astype(np.float32)   # (M, 2R + 1)
    return [constriction.stream.model.Categorical(row, perfect=False) for row in table]


#: the most probability the coder's quantisation may add to a symbol, and the bits of its state
#: that a coded message may leave unwritten: the margins of the bound on a file's length below
_QUANTISATION, _STATE_BITS = 2.0 ** -12, 64


def check_declared_size(model: GenerativeModel, h: int, w: int, payload: int, name: str = "the file",
                        integer: bool = True) -> None:
    """Refuse a header's image size that this model could not have written into ``payload``
    bytes of code, before anything of that size is allocated: sides below the codec's smallest,
    more pixels than genlab reads, or more symbols than the coded words can hold. Each symbol of
    channel c costs at least -log2 of the largest probability of the channel's table, so an
    image's code needs at least that many bits at each of its positions."""
    side = 2 ** model.config.levels
    if min(h, w) < side:
        raise GenlabError(f"{name} declares a {w}x{h} image, smaller than the {side}x{side} this codec's images "
                          "are at least; the file is damaged")
    if h * w > MAX_IMAGE_PIXELS:
        raise GenlabError(f"{name} declares a {w}x{h} image, over the limit of {MAX_IMAGE_PIXELS:,} pixels; "
                          "the file is damaged")
    if integer:   # the tables the file was coded with (see _channel_models)
        most = model.coding_frequencies().max(1).values.double() / 2 ** CODING_PRECISION
    else:
        most = model.probability_table().max(1).values.double()
    bits_per_position = float(-torch.log2((most + _QUANTISATION).clamp(max=1.0)).sum())
    _, ch, cw = model.code_shape(h, w)
    least = ch * cw * bits_per_position - _STATE_BITS
    if 8 * payload < least:
        raise GenlabError(f"{name} declares a {w}x{h} image, whose code takes at least {least / 8:,.0f} bytes with "
                          f"this model, but holds {payload:,}; the file is damaged or cut short")


@torch.no_grad()
def encode_symbols(model: GenerativeModel, symbols: torch.Tensor, size: tuple[int, int],
                   print_: bytes | None = None) -> bytes:
    """The file of one image's integer code (M, h, w) (:meth:`quantize` of :meth:`analyse`),
    for an image of ``size`` (H, W)."""
    constriction = _coder()
    h, w = size
    if max(h, w) > 65535:
        raise GenlabError(f"images of at most 65535 pixels a side can be compressed, got {w}x{h}")
    symbols = (symbols.cpu() + model.config.symbol_range).numpy().astype(np.int32)   # (M, h, w) in 0..2R
    encoder = constriction.stream.queue.RangeEncoder()
    for channel, coder_model in zip(symbols, _channel_models(model)):
        encoder.encode(channel.ravel(), coder_model)
    words = encoder.get_compressed().astype("<u4").tobytes()
    fields = FIELDS.pack(MAGIC, print_ or fingerprint(model), h, w)
    return fields + struct.pack("<I", zlib.crc32(words, zlib.crc32(fields))) + words


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
    genlab's, is damaged, or was written by another model."""
    constriction = _coder()
    header = {MAGIC: HEADER, FLOAT_MAGIC: HEADER, OLD_MAGIC: FIELDS}.get(data[:4])
    if header is None:
        raise GenlabError(f"{name} is not a genlab codec file (it does not start with {MAGIC!r})")
    payload = data[header.size:]
    if len(payload) % 4 or not payload:
        raise GenlabError(f"{name} is truncated (its coded part is empty or not whole 32-bit words)")
    _, mark, h, w, *checksum = header.unpack(data[:header.size])
    if checksum and zlib.crc32(payload, zlib.crc32(data[:FIELDS.size])) != checksum[0]:
        raise GenlabError(f"{name} is damaged: its bytes do not match the checksum written with them; "
                          "use an intact copy, or compress the original image again")
    own = print_ or fingerprint(model)
    if mark != own:
        raise GenlabError(f"{name} was written by another model (weights {mark.hex()}, this run's are "
                          f"{own.hex()}); decompress it with the run that compressed it")
    model.eval()
    integer = data[:4] == MAGIC
    check_declared_size(model, h, w, len(payload), name, integer)
    shape = model.code_shape(h, w)
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        symbols = np.concatenate([decoder.decode(coder_model, shape[1] * shape[2])
                                  for coder_model in _channel_models(model, integer)])
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
