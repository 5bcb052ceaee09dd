"""The commands for volumes (porous media): make a synthetic medium, sample volumes of any size
from a 3-D GAN, walk between two latent grids, and judge generated volumes by the rock's
statistics against the training volume's. Each writes files and returns their paths (or the
figures with them); the computing is in :mod:`genlab.families.porous.statistics`, :mod:`genlab.families.porous.media`
and the model."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from .volumes import VolumeSpec, parse_volume_spec, phase_record, read_volume_spec, subvolumes, write_volume
from ...errors import GenlabError, check_seed
from ...files import write_atomic, write_json_atomic
from .statistics import METRICS
from ...train import Run

#: the statistics of ``genlab evaluate RUN --metrics ...`` for volumes
POROUS_METRICS = METRICS
#: volumes per evaluation unless told otherwise (the paper compared 20)
DEFAULT_VOLUMES = 20


def require_volume_model(run: Run, what: str):
    """The run's model, which must generate volumes (the 3-D GAN)."""
    model = run.model
    if model.config.spatial_dims != 3 or not model.capabilities.prior:
        raise GenlabError(f"{what} needs a model that generates volumes (`genlab train porous-gan --data volume:PATH`); "
                          f"{run.path} holds a {model.name} model of {model.config.spatial_dims}-D images")
    return model


#: the most volumes along one interpolation path (as many as the core's interpolations)
MAX_STEPS = 1000


def _grid_seed_volumes(model, n: int, size: int | None, seed: int, progress: bool = False,
                       count: str = "n") -> np.ndarray:
    """``n`` binary volumes (n, E, E, E), True = pore, drawn with ``seed`` one at a time
    (``count`` names the setting that gives ``n`` in messages)."""
    generator = torch.Generator().manual_seed(check_seed(seed))
    model.eval()
    z = model.latent_grid(n, size, generator, count)
    out = []
    from tqdm.auto import tqdm

    for i in tqdm(range(n), desc="generating volumes", disable=not progress or n < 2, leave=False):
        with torch.no_grad():
            out.append(model.decode(z[i:i + 1]).cpu()[0, 0].numpy() > 0.5)
    return np.stack(out)


def training_volume(run: Run) -> tuple[np.ndarray, VolumeSpec]:
    """The whole volume the run was trained on (True = pore) and its options, ``pore`` resolved."""
    name = run.dataset_name
    if not name.startswith("volume:"):
        raise GenlabError(f"{run.path} was not trained on a volume (`--data volume:PATH`); its data is {name!r}")
    return read_volume_spec(name)


def _recorded_phase(run: Run) -> dict | None:
    """The phase record of a run's data as its name gives it (without reading the volume or images)."""
    from .sections import parse_section_spec

    name = run.dataset_name
    if name.startswith("image:"):
        return phase_record(parse_section_spec(name))
    return phase_record(parse_volume_spec(name)) if name.startswith("volume:") else None


def _reference_statistics(run: Run, metrics: list[str], edge: int) -> tuple[dict, str, dict]:
    """What generated volumes of ``edge`` voxels are compared with: the statistics of the
    training volume's sub-volumes of that size, or, for a run trained on 2-D images (SliceGAN),
    the 3-D statistics the images estimate (:func:`~.statistics.describe_sections`); with
    words for the reference and the phase record of the data."""
    from .sections import read_section_spec
    from .statistics import describe, describe_sections

    if run.dataset_name.startswith("image:"):
        sections, options = read_section_spec(run.dataset_name)
        phase = {**phase_record(options), "porosity": float(np.mean([s.mean() for s in sections]))}
        what = f"the 2-D statistics of the {len(sections)} training image{'s' if len(sections) > 1 else ''}"
        return describe_sections(sections, metrics, max_lag=min(edge - 1, 30)), what, phase   # describe's lags
    volume, options = training_volume(run)
    reference = reference_cubes(volume, edge)
    return describe(reference, metrics), f"{len(reference)} training sub-volumes of that size", \
        phase_record(options, volume)


def reference_cubes(volume: np.ndarray, edge: int, most_per_axis: int = 4) -> np.ndarray:
    """Sub-volumes of ``volume`` of side ``edge`` to compare generated volumes with: up to
    ``most_per_axis`` per axis, evenly spread (as many as fit side by side, plus one), so that a
    200^3 edge in a 256^3 volume gives the 8 corner cubes and 64^3 gives 64 disjoint ones."""
    side = min(volume.shape)
    if edge > side:
        raise GenlabError(f"generated volumes of {edge}^3 are larger than the training volume "
                          f"({'x'.join(map(str, volume.shape))}); choose `size` at most {side}")
    per_axis = max(1, min(most_per_axis, side // edge + 1, side - edge + 1))
    stride = (side - edge) // (per_axis - 1) if per_axis > 1 else edge
    return subvolumes(volume[:side, :side, :side], edge, max(stride, 1))


# ------------------------------------------------------------------------ commands
def make_volume_file(kind: str, size: int, porosity: float, out: str | os.PathLike, seed: int = 0,
                     **options: float) -> tuple[Path, dict]:
    """A synthetic medium written to ``out`` (.npy or .tif) and its closed-form statistics."""
    from .media import closed_form, make_volume

    volume = make_volume(kind, size, porosity, seed=seed, **options)
    path = write_volume(volume, out)
    known = closed_form(kind, porosity, **options)
    return path, {"kind": kind, "size": list(volume.shape), "measured_porosity": float(volume.mean()),
                  **{k: v for k, v in known.items() if isinstance(v, (int, float))}}


def sample_volumes(run: Run, n: int = 1, size: int | None = None, seed: int = 0,
                   out_dir: str | os.PathLike | None = None, pictures: bool = True) -> list[Path]:
    """``n`` volumes of about ``size`` voxels a side (default: the training edge), each as
    ``.npy`` and ``.tif``, with three orthogonal slices beside the training volume's and a 3-D
    picture of its pore space; returns the paths."""
    from .pictures import orthogonal_slices, pore_isosurface

    model = require_volume_model(run, "sampling volumes")
    check_seed(seed)
    model.grid_for(model.config.image_shape[1] if size is None else size, n)   # n and size, before any work
    edge = model.edge_for(size) if size is not None else model.config.image_shape[1]
    out = Path(out_dir) if out_dir is not None else run.path / f"samples-{edge}"
    started = time.perf_counter()
    volumes = _grid_seed_volumes(model, n, size, seed, progress=True)
    seconds = time.perf_counter() - started
    paths: list[Path] = []
    real = None
    if pictures:
        try:
            full, _ = training_volume(run)
            e = min(edge, *full.shape)
            real = full[:e, :e, :e]
        except GenlabError:
            real = None  # a run without its volume at hand: the slices alone
    for i, v in enumerate(volumes):
        stem = out / f"sample-{seed}-{i:03d}"
        paths += [write_volume(v, stem.with_suffix(".npy")), write_volume(v, stem.with_suffix(".tif"))]
        if pictures:
            shown = {f"generated {edge}^3": v} if real is None else {"training volume": real, f"generated {edge}^3": v}
            paths.append(orthogonal_slices(shown, out / f"slices-{seed}-{i:03d}.png"))
            paths.append(pore_isosurface(v, out / f"pores-{seed}-{i:03d}.png",
                                         title="pore space of a generated volume (first 96^3)"))
    write_json_atomic(out / f"sample-{seed}.json", {"volumes": n, "edge": edge, "seed": seed,
                                                    "seconds": round(seconds, 3),
                                                    "porosity": [float(v.mean()) for v in volumes],
                                                    "phase": _recorded_phase(run)})
    return paths


def interpolate_volumes(run: Run, start: int, end: int, steps: int = 8, size: int | None = None,
                        spherical: bool = False, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Volumes along the path between the latent grids drawn with seeds ``start`` and ``end``:
    the middle slice of each step in a strip (PNG), and the volumes (.npy, one array
    (steps, E, E, E))."""
    from ...latent.interpolate import linear_interpolate, spherical_interpolate
    from .pictures import slice_strip

    model = require_volume_model(run, "interpolating volumes")
    check_seed(start, "from")
    check_seed(end, "to")
    if not 2 <= steps <= MAX_STEPS:
        raise GenlabError(f"`steps` must lie in 2..{MAX_STEPS} (the volumes of the path, its two ends "
                          f"included), got {steps}")
    model.grid_for(model.config.image_shape[1] if size is None else size, steps, "steps")
    ends = [model.latent_grid(1, size, torch.Generator().manual_seed(s))[0] for s in (start, end)]
    shape = ends[0].shape
    path = (spherical_interpolate if spherical else linear_interpolate)(ends[0].flatten().cpu(),
                                                                       ends[1].flatten().cpu(), steps)
    model.eval()
    with torch.no_grad():
        volumes = np.stack([model.decode(z.reshape(1, *shape)).cpu()[0, 0].numpy() > 0.5 for z in path])
    edge = volumes.shape[-1]
    out = Path(out_dir) if out_dir is not None else run.path
    stem = f"interpolation-{start}-{end}-{edge}{'-slerp' if spherical else ''}"
    labels = [f"{i / (steps - 1):.2f}" for i in range(steps)]
    strip = slice_strip(list(volumes), out / f"{stem}.png", axis=0, labels=labels,
                        title=f"seed {start} to seed {end}: the middle slice of each {edge}^3 volume")
    array = write_atomic(out / f"{stem}.npy", lambda f: np.save(f, volumes, allow_pickle=False))
    return [strip, array]


def evaluate_volumes(run: Run, metrics: list[str] | None = None, num_volumes: int | None = None,
                     size: int | None = None, seed: int = 0, out_dir: str | os.PathLike | None = None,
                     progress: bool = True) -> dict:
    """The rock's statistics (``metrics`` of :data:`POROUS_METRICS`, default all) of
    ``num_volumes`` generated volumes of about ``size`` voxels a side (default the training
    edge) against the same statistics of the training volume's sub-volumes of that size; with
    plots written beside the results (``out_dir``, default the run folder)."""
    from .statistics import compare, describe
    from .pictures import s2_plot, statistics_panels

    model = require_volume_model(run, "the porous-media statistics")
    metrics = list(metrics or POROUS_METRICS)
    n = DEFAULT_VOLUMES if num_volumes is None else num_volumes
    if n < 2:
        raise GenlabError(f"`num_samples` must be at least 2 (a mean and a spread), got {n}")
    check_seed(seed)
    started = time.perf_counter()
    generated = _grid_seed_volumes(model, n, size, seed, progress, "num_samples")
    gen_seconds = time.perf_counter() - started
    edge = generated.shape[-1]
    ref_stats, reference, phase = _reference_statistics(run, metrics, edge)
    gen_stats = describe(generated, metrics)
    results = {"edge": edge, "num_volumes": n, "reference": reference, "reference_cubes": ref_stats["num_volumes"],
               "seed": seed, "phase": phase,
               "generation_seconds": round(gen_seconds, 3), "generated": gen_stats, "training": ref_stats,
               "comparison": compare(gen_stats, ref_stats)}
    out = Path(out_dir) if out_dir is not None else run.path
    results["pictures"] = [str(p) for p in _statistics_pictures(gen_stats, ref_stats, out, edge,
                                                               s2_plot, statistics_panels)]
    return results


def format_porous(results: dict) -> str:
    """The comparison as a table: statistic, generated mean ± std, training mean ± std, error."""
    gen, ref, cmp = results["generated"], results["training"], results["comparison"]
    lines = [f"{results['num_volumes']} generated {results['edge']}^3 volumes against {results['reference']}",
             f"{'statistic':>22}  {'generated':>18}  {'training':>18}  {'rel. error':>10}"]
    for name, entry in cmp.items():
        if name == "s2":
            lines.append(f"{'S2 mean abs. error':>22}  {entry['mae']:>18.5f}  (lags 0..{entry['lags'] - 1})")
            continue
        g, r = gen[name], ref[name]
        err = entry.get("relative_error")
        lines.append(f"{name:>22}  {g['mean']:>10.5g} ± {g['std']:<6.3g}  {r['mean']:>10.5g} ± {r['std']:<6.3g}  "
                     + (f"{100 * err:>+9.1f}%" if err is not None else f"{'-':>10}"))
    return "\n".join(lines)


def _statistics_pictures(gen: dict, ref: dict, out: Path, edge: int, s2_plot, statistics_panels) -> list[Path]:
    paths = []
    if "s2" in gen:
        lags = np.arange(len(gen["s2"]["mean"]))
        paths.append(s2_plot(lags, {f"generated ({edge}^3)": (np.array(gen["s2"]["mean"]), np.array(gen["s2"]["std"])),
                                    "training sub-volumes": (np.array(ref["s2"]["mean"]), np.array(ref["s2"]["std"]))},
                             out / f"porous-s2-{edge}.png", title="two-point probability function of the pore phase"))
    panels = [{"name": name, "generated": gen_values, "training": ref_values}
              for name, gen_values, ref_values in _scalar_series(gen, ref)]
    if panels:
        paths.append(statistics_panels(panels, out / f"porous-statistics-{edge}.png",
                                       title=f"generated {edge}^3 volumes against the training volume's"))
    return paths


def _scalar_series(gen: dict, ref: dict):
    """(name, generated values, training values) of every scalar statistic in both summaries."""
    for key, entry in gen.items():
        if isinstance(entry, dict) and "values" in entry and key in ref:
            yield key, entry["values"], ref[key]["values"]
        elif isinstance(entry, dict):
            for sub, inner in entry.items():
                if isinstance(inner, dict) and "values" in inner and sub in ref.get(key, {}):
                    yield f"{key} {sub}", inner["values"], ref[key][sub]["values"]


# ------------------------------------------------------------- the family's commands (CLI edge)
def sample_command(run: Run, args) -> list[Path]:
    """``genlab sample RUN`` for a 3-D GAN: volumes (.npy, .tif) and their pictures."""
    if getattr(args, "label", None) is not None or getattr(args, "steps", None) is not None:
        raise GenlabError("`label` and `steps` do not apply to the 3-D GAN; give `num`, `size` and `seed`")
    return sample_volumes(run, 1 if args.num is None else args.num, args.size, args.seed, args.out)


def evaluate_command(run: Run, args) -> list[str]:
    """``genlab evaluate RUN`` for a 3-D GAN: the rock's statistics of generated volumes."""
    metrics = args.metrics or list(POROUS_METRICS)
    unknown = [m for m in metrics if m not in POROUS_METRICS]
    if unknown:
        raise GenlabError(f"unknown metric '{unknown[0]}' for volumes; choose from: {', '.join(POROUS_METRICS)}")
    out = Path(args.out) if args.out else run.path / "evaluation-porous.json"
    results = evaluate_volumes(run, metrics, args.num_samples, args.size, args.seed, out.parent)
    write_json_atomic(out, results)
    return [format_porous(results), f"written to {out}"]


def interpolate_command(run: Run, args) -> list[Path]:
    """``genlab interpolate RUN --from SEED --to SEED`` for a 3-D GAN: volumes along a path."""
    seeds = []
    for flag, value in (("--from", args.start), ("--to", args.end)):
        if value is None or not value.isdigit():
            raise GenlabError(f"{flag} of a 3-D GAN's path is a seed (a whole number), got {value!r}")
        seeds.append(int(value))
    return interpolate_volumes(run, seeds[0], seeds[1], args.steps, args.size, args.spherical, args.out)


def make_volume_arguments(p) -> None:
    p.add_argument("kind", choices=["overlapping-spheres", "gaussian-field"])
    p.add_argument("--size", type=int, default=128, help="edge in voxels (default 128)")
    p.add_argument("--porosity", type=float, default=0.3, help="expected pore fraction (default 0.3)")
    p.add_argument("--radius", type=float, help="overlapping-spheres: ball radius in voxels (default 5)")
    p.add_argument("--correlation-length", type=float,
                   help="gaussian-field: std of the smoothing kernel in voxels (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="file to write: .npy (True = pore) or .tif (0 = pore, 255 = grain)")


def make_volume_command(args) -> list[str]:
    """``genlab make-volume KIND ...``: a synthetic porous medium with known statistics."""
    options = {}
    if args.radius is not None:
        if args.kind != "overlapping-spheres":
            raise GenlabError("`radius` applies to overlapping-spheres; the gaussian-field takes `correlation_length`")
        options["radius"] = args.radius
    if args.correlation_length is not None:
        if args.kind != "gaussian-field":
            raise GenlabError("`correlation_length` applies to gaussian-field; overlapping-spheres takes `radius`")
        options["correlation_length"] = args.correlation_length
    path, info = make_volume_file(args.kind, args.size, args.porosity, args.out, args.seed, **options)
    return [f"{args.kind}, {'x'.join(map(str, info['size']))}: porosity {info['measured_porosity']:.4f} "
            f"(expected {info['porosity']:.4f})", str(path)]
