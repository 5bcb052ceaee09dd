"""Porous media in 3-D (Mosser et al. 2017): a GAN of 3-D convolutions learns a rock from cubes
cut from one micro-CT scan (``volume:PATH``) and generates volumes of any size, judged by the
rock's statistics (porosity, S2, specific surface, chord lengths, Euler characteristic).
SliceGAN (Kench and Cooper 2021) learns the same kind of generator from 2-D images
(``image:PATH``) with critics of its volumes' slices."""
from ...family import Command, Family
from .model import PorousGAN, PorousGANConfig
from .slicegan import SliceGAN, SliceGANConfig


def _tool(name: str):
    """The command ``name`` of :mod:`.commands`, imported when first used (it reads files and
    draws pictures, which loading a model does not need)."""
    def run(*args):
        from . import commands

        return getattr(commands, name)(*args)
    return run


def _load_volume_dataset(spec: str, split: str):
    from .volumes import load_volume_dataset

    return load_volume_dataset(f"volume:{spec}", split)


def _load_section_dataset(spec: str, split: str):
    from .sections import load_section_dataset

    return load_section_dataset(f"image:{spec}", split)


def _size_argument(parser) -> None:
    parser.add_argument("--size", type=int, help="volumes (porous-gan, slicegan): edge of the generated volumes in "
                        "voxels, any size the 3-D generator can make (default: the training volumes')")


def _make_volume_arguments(parser) -> None:
    from .commands import make_volume_arguments

    make_volume_arguments(parser)


FAMILY = Family(
    name="porous", model_class=PorousGAN,
    presets={"porous-gan": {"ema_decay": 0.999}, "slicegan": {}},
    model_classes={"slicegan": SliceGAN},
    aliases={"gan3d": "porous-gan", "3d-gan": "porous-gan", "dcgan3d": "porous-gan", "porousgan": "porous-gan",
             "slice-gan": "slicegan"},
    former_names=("gan3d",),
    run_tools={"sample": _tool("sample_command"), "evaluate": _tool("evaluate_command"),
               "interpolate": _tool("interpolate_command")},
    tool_arguments={"sample": _size_argument, "evaluate": _size_argument, "interpolate": _size_argument},
    commands=(Command("make-volume", "a synthetic porous medium with known statistics (.npy or .tif)",
                      _make_volume_arguments, _tool("make_volume_command")),),
    dataset_kinds={"volume": _load_volume_dataset, "image": _load_section_dataset},
    dataset_help="volume:PATH[,edge=64,stride=32] (cubes of a 3-D image: TIFF stack, .npy or raw), "
                 "image:PATH[,Y,Z][,edge=64] (patches of 2-D sections of a medium, for slicegan)",
)

__all__ = ["FAMILY", "PorousGAN", "PorousGANConfig", "SliceGAN", "SliceGANConfig"]
