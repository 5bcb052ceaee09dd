"""A learned lossy codec (after Ballé et al. 2017): analysis and synthesis transforms, a quantized
code, an entropy model, and range-coded ``.glc`` files (``genlab compress`` / ``decompress``)."""
from ...family import Command, Family
from .model import Codec, CodecConfig


def _measures(model, data, seed: int = 0, data_dir=None) -> dict:
    from .quality import codec_quality

    return codec_quality(model, data)


def _compress_arguments(p) -> None:
    p.add_argument("run")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, any size the codec takes")
    p.add_argument("--out", help="folder for the .glc files (default: beside each input, as NAME.glc)")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist (default: refuse)")


def _decompress_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help=".glc files written by `genlab compress`")
    p.add_argument("--run", required=True, help="the codec run that compressed them (a file names it by its "
                   "weights, and another run's files are refused)")
    p.add_argument("--out", help="folder for the images (default: beside each file, as NAME.png; an existing "
                   "file, such as the original image, is not replaced without --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist (default: refuse)")


def _compress(args):
    import sys

    from ...train import load_run
    from .bitstream import compress_files

    return compress_files(load_run(args.run), args.images, args.out,
                          note=lambda m: print(f"genlab: {m}", file=sys.stderr), overwrite=args.overwrite)


def _decompress(args):
    from ...train import load_run
    from .bitstream import decompress_files

    return decompress_files(load_run(args.run), args.files, args.out, overwrite=args.overwrite)


FAMILY = Family(
    name="codec", model_class=Codec,
    presets={"compress": {}},
    aliases={"codec": "compress", "compression": "compress"},
    former_names=("compress",),
    measures=_measures,
    commands=(Command("compress", "image files to small .glc files with a trained codec (genlab train compress)",
                      _compress_arguments, _compress),
              Command("decompress", ".glc files back to PNG images, with the run that wrote them",
                      _decompress_arguments, _decompress)),
)

__all__ = ["FAMILY", "Codec", "CodecConfig"]
