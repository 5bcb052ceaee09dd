"""3-D GAN on real micro-CT rock (Ketton limestone): train on cubes of the 256^3 volume, generate
20 volumes of 200^3 and judge them by the rock's statistics against the original and against the
paper's GAN (Mosser, Dubrule and Blunt 2017, whose own statistics ship with the data).

    python benchmarks/porous.py --data ../shared/datasets/porous --minutes 90 [--edge 32] [--threads 1]
    python benchmarks/porous.py --data ../shared/datasets/porous --run benchmarks/runs/porous-ketton-64 --pictures
    python benchmarks/porous.py --data ../shared/datasets/porous --real-only [--median-filter]

First the real data alone, against the paper's reference files: the Euler characteristic of
the scan's 8 corner 200^3 cubes by both methods (MorphoLibJ's, as the paper; scikit-image's),
on the segmented image as it is, beside the paper's figures, with the grain voxels and surface
that show how the paper's sub-volumes compare with the scan's. ``--median-filter`` adds the same
after a 3x3x3 median filter (off by default: the paper's figures are judged raw against raw).
``--real-only`` stops there (no model; results: benchmarks/results/porous-real.json).

Then a model: with ``--run`` an existing run folder is judged (a run trained with the same
command-line settings, e.g. in the background); otherwise one is trained first for
``--minutes`` minutes. The table compares, for each statistic, the original (computed here, the
same way for every column), the paper's GAN (its reference files) and genlab's volumes, with
the issue's targets. Also: the largest volume generated (time, memory) and the statistics
pipeline on a synthetic overlapping-spheres volume against its closed form. Results:
benchmarks/results/porous.json.

With ``--slices``, SliceGAN joins the table: trained for the same ``--minutes`` on three
orthogonal slices through the middle of the scan only (256^2 each, written as PNGs to
benchmarks/runs/ketton-slices/), or judged from ``--slice-run``, its 200^3 volumes are compared
with the real 3-D scan by the same statistics as the 3-D-trained GAN's:

    python benchmarks/porous.py --data ../shared/datasets/porous --minutes 90 --slices [--slice-edge 32]
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, print_table, train_time, write_results  # noqa: E402
from PIL import Image  # noqa: E402

from genlab.families.porous.media import closed_form, make_volume  # noqa: E402
from genlab.families.porous.commands import reference_cubes  # noqa: E402
from genlab.families.porous.volumes import parse_volume_spec, phase_record, read_volume_spec  # noqa: E402
from genlab.families.porous.statistics import EULER_METHODS, describe, euler_characteristic  # noqa: E402
from genlab.train import load_run, train  # noqa: E402

EDGE = 200  # the paper's Minkowski functionals are of 200^3 volumes
MAX_LAG = 30


def data_folder(explicit: str | None) -> Path:
    import os

    for candidate in (explicit, os.environ.get("GENLAB_POROUS"), ROOT.parent / "shared" / "datasets" / "porous"):
        if candidate and (Path(candidate) / "ketton.tif").exists():
            return Path(candidate)
    raise SystemExit("no ketton.tif: pass --data FOLDER (the porous dataset folder) or set GENLAB_POROUS")


def paper_reference(folder: Path) -> dict:
    """The paper's statistics from its reference files: original and its GAN's volumes."""
    ref = folder / "reference"
    cov = json.loads((ref / "ketton_covariance_data.json").read_text())
    gan = [v for k, v in cov.items() if k != "orig"]

    def minkowski(name, column="euler"):
        with open(ref / name, encoding="utf-8-sig") as f:
            return [float(r[column]) for r in csv.DictReader(f)]

    with open(ref / "ketton_orig_pph.csv") as f:
        s2 = np.array([[float(v) for v in r.values()] for r in csv.DictReader(f)]).mean(1)
    return {"original": {"specific_surface_s2": cov["orig"]["specific_surface"],
                         "chord_pore_s2": cov["orig"]["chord_length_pph"],
                         "chord_grain_s2": cov["orig"]["chord_length_gph"],
                         "euler_morpholibj": minkowski("ketton_200_minkowski_original.csv"),
                         "grain_voxels": minkowski("ketton_200_minkowski_original.csv", "volume"),
                         "surface": minkowski("ketton_200_minkowski_original.csv", "surface"), "s2": s2.tolist()},
            "gan": {"specific_surface_s2": float(np.mean([g["specific_surface"] for g in gan])),
                    "chord_pore_s2": float(np.mean([g["chord_length_pph"] for g in gan])),
                    "chord_grain_s2": float(np.mean([g["chord_length_gph"] for g in gan])),
                    "euler_morpholibj": minkowski("ketton_200_minkowski_dcgan.csv"), "volumes": len(gan)}}


@torch.no_grad()
def generate(model, n: int, edge: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """``n`` binary volumes of exactly ``edge`` voxels a side (generated at the nearest size the
    generator makes that is at least ``edge``, then cropped), and the seconds per volume."""
    size = edge
    while model.edge_for(size) < edge:
        size += 1
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    out, started = [], time.perf_counter()
    for _ in range(n):
        v = model.decode(model.latent_grid(1, size, generator))[0, 0].numpy() > 0.5
        out.append(v[:edge, :edge, :edge])
    return np.stack(out), (time.perf_counter() - started) / n


def largest_volume(model, edge: int) -> dict:
    """Time and peak memory of one volume of ``edge``^3 voxels."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with torch.no_grad():
        model.eval()
        v = model.decode(model.latent_grid(1, edge, torch.Generator().manual_seed(0)))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"edge": int(v.shape[-1]), "seconds": round(seconds, 2), "peak_rss_gib": round(peak / 2 ** 20, 2),
            "rss_growth_gib": round(max(peak - before, 0) / 2 ** 20, 2), "porosity": float((v > 0.5).float().mean())}


def _cell(value) -> str:
    """A table cell: four significant figures for numbers, as they are otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        return str(value)
    return f"{value:.4g}"


def synthetic_check(size: int = 192, porosity: float = 0.3, radius: float = 6.0) -> dict:
    """The statistics of an overlapping-spheres volume against the closed form."""
    volume = make_volume("overlapping-spheres", size, porosity, radius=radius, seed=0)
    measured = describe([volume], max_lag=MAX_LAG)
    known = closed_form("overlapping-spheres", porosity, max_lag=MAX_LAG, radius=radius)
    s2_known = np.asarray(known["s2"])[: len(measured["s2"]["mean"])]
    rows = {}
    for key in ("porosity", "specific_surface_s2", "specific_surface_mesh", "chord_pore_s2", "chord_grain_s2",
                "chord_pore", "chord_grain"):
        target = known.get(key, known.get("specific_surface") if key == "specific_surface_mesh" else None)
        if target is not None:
            rows[key] = {"measured": measured[key]["mean"], "closed_form": float(target)}
    rows["s2_mae"] = float(np.abs(np.asarray(measured["s2"]["mean"]) - s2_known).mean())
    return {"size": size, "porosity": porosity, "radius": radius, "statistics": rows}


def crofton_surface(phase: np.ndarray) -> float:
    """Area of a phase's boundary in voxel faces, by the 3-direction Crofton estimate: an
    isotropic medium's area per unit volume is twice its crossings per unit length, averaged
    here over lines along the three axes (faces of the cube not counted)."""
    per_length = [np.count_nonzero(np.diff(phase, axis=a)) / (phase.size // phase.shape[a] * (phase.shape[a] - 1))
                  for a in range(3)]
    return float(2 * np.mean(per_length) * phase.size)


def window_extremes(phase: np.ndarray, edge: int) -> list[int]:
    """The fewest and the most voxels of ``phase`` in any ``edge``^3 window of the volume (a
    summed-volume table: each window's count from its eight corners)."""
    table = np.pad(phase.astype(np.int64), ((1, 0),) * 3).cumsum(0).cumsum(1).cumsum(2)
    lo, hi = slice(None, -edge), slice(edge, None)
    counts = sum((-1) ** (a + b + c) * table[(hi, lo)[a], (hi, lo)[b], (hi, lo)[c]]
                 for a in (0, 1) for b in (0, 1) for c in (0, 1))
    return [int(counts.min()), int(counts.max())]


def cube_figures(volume: np.ndarray) -> dict:
    """Of the 8 corner 200^3 cubes of ``volume`` (True = pore), each: its grain voxels, grain
    surface (Crofton), and Euler characteristic by both methods (each with its own phase); and
    the fewest and most grain voxels of any 200^3 window."""
    cubes = reference_cubes(volume, EDGE)
    side = min(volume.shape)
    corners = list(itertools.product(range(0, side - EDGE + 1, max(side - EDGE, 1)), repeat=3))
    assert len(corners) == len(cubes)
    return {"corners": corners, "grain_voxels": [int((~c).sum()) for c in cubes],
            "surface": [crofton_surface(~c) for c in cubes],
            **{f"euler_{m}": [euler_characteristic(c, m) for c in cubes] for m in EULER_METHODS},
            "window_grain_voxels": window_extremes(~volume, EDGE)}


def _spread(values, form: str = "{:.4g}") -> str:
    """'mean (min to max)' of a list of numbers, each written with ``form``."""
    return f"{form.format(np.mean(values))} ({form.format(min(values))} to {form.format(max(values))})"


def real_data(original: np.ndarray, paper: dict, median: bool) -> dict:
    """The scan's corner cubes beside the paper's 8 reference sub-volumes, raw (and, when asked,
    cut from the scan after a 3x3x3 median filter of the whole): tables printed, figures returned."""
    figures = {"raw": cube_figures(original)}
    if median:
        from scipy.ndimage import median_filter

        figures["median_filtered"] = cube_figures(median_filter(original, size=3))
    ref = paper["original"]
    rows = [["Euler, MorphoLibJ's method (grain, cells inside)", _spread(ref["euler_morpholibj"])],
            ["Euler, scikit-image (pore, padded)", "-"],
            ["porosity", _spread([1 - g / EDGE ** 3 for g in ref["grain_voxels"]], "{:.4f}")],
            ["grain voxels", _spread(ref["grain_voxels"], "{:,.0f}")],
            ["grain voxels, fewest and most of any 200^3 window", "-"],
            ["grain surface (voxel faces; here 3-direction Crofton)", _spread(ref["surface"], "{:,.0f}")]]
    for f in figures.values():
        low, high = f["window_grain_voxels"]
        cells = [_spread(f["euler_morpholibj"]), _spread(f["euler_skimage"]),
                 _spread([1 - g / EDGE ** 3 for g in f["grain_voxels"]], "{:.4f}"),
                 _spread(f["grain_voxels"], "{:,.0f}"), f"{low:,} to {high:,}", _spread(f["surface"], "{:,.0f}")]
        for row, cell in zip(rows, cells):
            row.append(cell)
    print_table(["200^3 sub-volumes", "paper's reference (8)", "ketton.tif, 8 corner cubes"]
                + (["the same, median-filtered"] if median else []), rows)
    raw = figures["raw"]
    print("\nper sub-volume (the reference's rows are not these cubes: their positions are not published)")
    print_table(["reference: grain voxels", "Euler", "corner", "grain voxels", "Euler MorphoLibJ", "Euler skimage"],
                [[int(ref["grain_voxels"][i]), ref["euler_morpholibj"][i], str(raw["corners"][i]),
                  raw["grain_voxels"][i], raw["euler_morpholibj"][i], raw["euler_skimage"][i]]
                 for i in range(len(raw["corners"]))])
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="the porous dataset folder (ketton.tif, reference/)")
    p.add_argument("--run", help="an existing run folder to judge (default: train one)")
    p.add_argument("--real-only", action="store_true",
                   help="only the real data against the paper's reference files: no model, no training")
    p.add_argument("--median-filter", action="store_true",
                   help="also the Euler characteristics after a 3x3x3 median filter (of every volume compared)")
    p.add_argument("--minutes", type=float, default=90.0, help="training time when training (default 90)")
    p.add_argument("--edge", type=int, default=32,
                   help="training cube edge (default 32: the paper's 64 takes 8 times as long a step, about 1,600 "
                   "steps in 90 CPU minutes here)")
    p.add_argument("--instance-noise-steps", type=int, default=10000,
                   help="the steps over which D's instance noise decays to 0 (default 10000: a little more than "
                   "half of a 90-minute run at edge 32 on one thread, about 18,000 steps)")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="what --minutes counts: the process's CPU time (default) or time on the clock")
    p.add_argument("--volumes", type=int, default=20)
    p.add_argument("--largest", type=int, default=512, help="edge of the largest volume to time (default 512)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--slices", action="store_true",
                   help="also SliceGAN trained on three orthogonal slices of the scan only, in the same table")
    p.add_argument("--slice-run", help="an existing SliceGAN run folder to judge (default: train one)")
    p.add_argument("--slice-edge", type=int, default=32,
                   help="SliceGAN's patch and training volume edge (default 32: on a CPU a step of 64^3 volumes, "
                   "whose 1,536 slices the critic scores, takes about 15 times as long)")
    p.add_argument("--name", help="results file name (benchmarks/results/NAME.json; default porous, "
                   "or porous-real with --real-only)")
    p.add_argument("--pictures", action="store_true", help="also write the docs' pictures (docs/images/porous-*.png)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    folder = data_folder(args.data)
    original, options = read_volume_spec(f"volume:{folder / 'ketton.tif'}")
    paper = paper_reference(folder)
    print("the scan's 200^3 corner cubes against the paper's reference sub-volumes ...", flush=True)
    real = real_data(original, paper, args.median_filter)
    common = {"machine": machine(), "phase": phase_record(options, original), "real_data": real, "paper": paper}
    if args.real_only:
        path = write_results(args.name or "porous-real", common)
        print(f"\nwritten to {path}")
        return
    judge_model(args, folder, original, common)


def judge_model(args, folder: Path, original: np.ndarray, common: dict) -> None:
    """Train (or load ``--run``), generate, and compare with the original and the paper's GAN."""
    ketton = folder / "ketton.tif"
    if args.run:
        run_dir = Path(args.run)
    else:
        run_dir = ROOT / "benchmarks" / "runs" / f"porous-ketton-{args.edge}"
        # precision auto: bf16 where the CPU has it natively; emulated, a step of 64^3 cubes took
        # 78 s of CPU time here against 3.4 s in fp32
        train("porous-gan", f"volume:{ketton},edge={args.edge},stride={args.edge // 4}", out_dir=run_dir,
              resume=(run_dir / "trainer_state.json").exists(), epochs=1000, max_minutes=args.minutes,
              clock=args.clock, precision="auto", checkpoint_minutes=10,
              model_settings={"channels": 16, "instance_noise_steps": args.instance_noise_steps})
    run = load_run(run_dir)
    model = run.model
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]

    reference = reference_cubes(original, EDGE)  # what `genlab evaluate` compares with: the 8 corner 200^3 cubes
    paper = common["paper"]
    print(f"generating {args.volumes} volumes of {EDGE}^3 ...", flush=True)
    generated, per_volume = generate(model, args.volumes, EDGE)
    print("statistics ...", flush=True)
    gen = describe(generated, max_lag=MAX_LAG)
    orig = describe(reference, max_lag=MAX_LAG)
    whole = describe([original], metrics=("porosity", "s2", "surface", "chords"), max_lag=MAX_LAG)
    s2_original = np.asarray(whole["s2"]["mean"])
    s2_mae = float(np.abs(np.asarray(gen["s2"]["mean"]) - s2_original).mean())
    s2_mae_paper_file = float(np.abs(s2_original - np.asarray(paper["original"]["s2"][: MAX_LAG + 1])).mean())
    euler = euler_figures(reference, generated, args.median_filter)
    rows = target_rows(whole, paper, gen, euler, s2_mae)
    columns = ["statistic", "original", "paper's GAN", "genlab", "target", "met"]
    sliced = judge_slicegan(args, original, reference, s2_original, whole, paper) if args.slices else None
    if sliced:   # its value and whether it meets the target, beside the 3-D-trained GAN's
        columns += ["SliceGAN, 3 slices", "met"]
        rows = [r + s[3:4] + s[5:6] for r, s in zip(rows, sliced["rows"])]
    print()
    print_table(columns, [[_cell(v) for v in r] for r in rows])
    print(f"\n{args.volumes} generated volumes of {EDGE}^3 against the 256^3 original (Euler: its 8 corner "
          f"200^3 cubes); genlab trained {train_time(run_dir) / 60:.0f} min, {metrics[-1]['step']} steps on "
          f"{model.config.image_shape[1]}^3 cubes; {per_volume:.1f} s per 200^3 volume")
    if sliced:
        print(f"SliceGAN trained {sliced['train_minutes']:.0f} min, {sliced['train_steps']} steps on "
              f"{sliced['edge']}^2 patches of 3 slices (their porosity {sliced['slices_porosity']:.4f}); "
              f"{sliced['seconds_per_volume']:.1f} s per 200^3 volume")

    print(f"\nlargest volume: {args.largest}^3 ...", flush=True)
    big = largest_volume(model, args.largest)
    print(f"  {big['edge']}^3 in {big['seconds']} s, peak memory {big['peak_rss_gib']} GiB")
    print("synthetic overlapping spheres against the closed form ...", flush=True)
    synthetic = synthetic_check()
    print_table(["statistic", "measured", "closed form"],
                [[k, _cell(v["measured"]), _cell(v["closed_form"])] for k, v in synthetic["statistics"].items()
                 if isinstance(v, dict)] + [["S2 mean abs. error", _cell(synthetic["statistics"]["s2_mae"]), "0"]])

    path = write_results(args.name or "porous", {
        **common, "run": str(run_dir), "train_minutes": round(train_time(run_dir) / 60, 1),
        "train_steps": metrics[-1]["step"], "train_edge": model.config.image_shape[1],
        "model": run.config["model"], "train": run.config["train"],
        "run_phase": phase_record(parse_volume_spec(run.dataset_name)),
        "volumes": args.volumes, "edge": EDGE, "seconds_per_volume": round(per_volume, 2),
        "original_whole": {k: whole[k] for k in whole if k != "s2"}, "original_s2": s2_original.tolist(),
        "original_200_cubes": orig, "generated": gen, "s2_mae": s2_mae, "euler": euler,
        "s2_check_against_paper_file": s2_mae_paper_file,
        "table": [[c if isinstance(c, (bool, str)) else float(c) for c in r] for r in rows],
        "largest_volume": big, "synthetic": synthetic,
        "slicegan": None if sliced is None else {k: v for k, v in sliced.items() if k not in ("rows", "sample")}})
    print(f"\nwritten to {path}")
    if args.pictures:
        pictures(run, generated[0], original, gen, orig, s2_original, None if sliced is None else sliced["sample"])


def target_rows(whole: dict, paper: dict, gen: dict, euler: dict, s2_mae: float) -> list[list]:
    """The table's rows for one model's volumes: statistic, original, paper's GAN, the model's
    figure, the target, whether it is met."""
    def rel(a, b):
        return (a - b) / b

    w = {k: whole[k]["mean"] for k in ("porosity", "specific_surface_s2", "chord_pore_s2", "chord_grain_s2")}
    return [
        ["porosity", w["porosity"], "within 0.002", gen["porosity"]["mean"], "within 0.005",
         abs(gen["porosity"]["mean"] - w["porosity"]) <= 0.005],
        ["specific surface from S2", w["specific_surface_s2"],
         f"{paper['gan']['specific_surface_s2']:.4f} ({100 * rel(paper['gan']['specific_surface_s2'], w['specific_surface_s2']):+.1f}%)",
         gen["specific_surface_s2"]["mean"], "within 5%",
         abs(rel(gen["specific_surface_s2"]["mean"], w["specific_surface_s2"])) <= 0.05],
        ["mean pore chord (S2)", w["chord_pore_s2"],
         f"{paper['gan']['chord_pore_s2']:.2f} ({100 * rel(paper['gan']['chord_pore_s2'], w['chord_pore_s2']):+.1f}%)",
         gen["chord_pore_s2"]["mean"], "within 3%", abs(rel(gen["chord_pore_s2"]["mean"], w["chord_pore_s2"])) <= 0.03],
        ["mean grain chord (S2)", w["chord_grain_s2"],
         f"{paper['gan']['chord_grain_s2']:.2f} ({100 * rel(paper['gan']['chord_grain_s2'], w['chord_grain_s2']):+.1f}%)",
         gen["chord_grain_s2"]["mean"], "within 6%",
         abs(rel(gen["chord_grain_s2"]["mean"], w["chord_grain_s2"])) <= 0.06],
        *euler_table_rows(euler, paper),
        ["S2(r) mean abs. error, r <= 30", 0.0, "-", s2_mae, "under 0.005", s2_mae < 0.005],
    ]


def slice_data(original: np.ndarray) -> tuple[str, float]:
    """Three orthogonal slices through the middle of the scan, written as PNGs (0 = pore, as the
    scan), the only data SliceGAN sees: their ``image:`` name and their porosity."""
    out = ROOT / "benchmarks" / "runs" / "ketton-slices"
    out.mkdir(parents=True, exist_ok=True)
    d, h, w = (side // 2 for side in original.shape)
    sections = (original[d], original[:, h], original[:, :, w])
    paths = [out / f"{axis}.png" for axis in "xyz"]
    for section, path in zip(sections, paths):
        Image.fromarray(np.where(section, 0, 255).astype(np.uint8)).save(path)
    return "image:" + ",".join(map(str, paths)), float(np.mean([s.mean() for s in sections]))


def judge_slicegan(args, original: np.ndarray, reference: np.ndarray, s2_original: np.ndarray, whole: dict,
                   paper: dict) -> dict:
    """SliceGAN trained on three slices of the scan (or ``--slice-run``), its 200^3 volumes judged
    as the 3-D-trained GAN's are: the table's rows and the figures behind them."""
    data, slices_porosity = slice_data(original)
    run_dir = ROOT / "benchmarks" / "runs" / f"slicegan-ketton-{args.slice_edge}"
    if args.slice_run:
        run_dir = Path(args.slice_run)
    else:
        print(f"training SliceGAN on 3 slices for {args.minutes:g} min ...", flush=True)
        # fp32: a bf16 step of 8 volumes of 32^3 took 11.4 s on one thread of this CPU, fp32 0.7 s
        train("slicegan", f"{data},edge={args.slice_edge}", out_dir=run_dir, epochs=1000, max_minutes=args.minutes,
              clock=args.clock, resume=(run_dir / "trainer_state.json").exists(), checkpoint_minutes=10,
              model_settings={"channels": 16})
    run = load_run(run_dir)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    print(f"generating {args.volumes} SliceGAN volumes of {EDGE}^3 ...", flush=True)
    generated, per_volume = generate(run.model, args.volumes, EDGE)
    gen = describe(generated, max_lag=MAX_LAG)
    s2_mae = float(np.abs(np.asarray(gen["s2"]["mean"]) - s2_original).mean())
    euler = euler_figures(reference, generated, args.median_filter)
    return {"run": str(run_dir), "data": run.dataset_name, "slices_porosity": slices_porosity,
            "edge": run.model.config.image_shape[1], "train_minutes": round(train_time(run_dir) / 60, 1),
            "train_steps": metrics[-1]["step"] if metrics else 0, "model": run.config["model"],
            "train": run.config["train"], "seconds_per_volume": round(per_volume, 2), "generated": gen,
            "s2_mae": s2_mae, "euler": euler, "rows": target_rows(whole, paper, gen, euler, s2_mae),
            "sample": generated[0]}


def euler_figures(reference: np.ndarray, generated: np.ndarray, median: bool) -> dict:
    """The Euler characteristic of the original's cubes and the generated volumes by both
    methods, on the volumes as they are, and after a 3x3x3 median filter of both when asked
    (each volume filtered alone, as a generated volume must be)."""
    out = {}
    for method in EULER_METHODS:
        out[method] = {side: [euler_characteristic(v, method) for v in volumes]
                       for side, volumes in (("original", reference), ("generated", generated))}
    if median:
        from scipy.ndimage import median_filter

        for method in EULER_METHODS:
            out[f"{method}_median_filtered"] = {
                side: [euler_characteristic(median_filter(v, size=3), method) for v in volumes]
                for side, volumes in (("original", reference), ("generated", generated))}
    return out


def euler_table_rows(euler: dict, paper: dict) -> list[list]:
    """The benchmark table's rows of the Euler characteristic: each method raw against raw (and
    median-filtered, when computed), then the paper's own figures (its method on its images)."""
    labels = {"morpholibj": "MorphoLibJ's method (grain, cells inside)", "skimage": "scikit-image (pore, padded)"}
    rows = []
    for key, figures in euler.items():
        method, _, filtered = key.partition("_")
        original, generated = figures["original"], np.mean(figures["generated"])
        rows.append([f"Euler char. 200^3, {labels[method]}{', median-filtered' if filtered else ''}",
                     _spread(original), "-", generated, "inside the originals' range",
                     bool(min(original) <= generated <= max(original))])
    rows.append(["Euler char. 200^3, the paper's reference files", _spread(paper["original"]["euler_morpholibj"]),
                 _spread(paper["gan"]["euler_morpholibj"]), "-", "(the same method, another image)", "-"])
    return rows


def pictures(run, sample: np.ndarray, original: np.ndarray, gen: dict, orig: dict, s2_original: np.ndarray,
             slice_sample: np.ndarray | None = None) -> None:
    """The docs' pictures: slices beside the original's (and SliceGAN's, when judged), the pore
    space, S2 and the statistics."""
    from genlab.families.porous.pictures import orthogonal_slices, pore_isosurface, s2_plot, statistics_panels

    out = ROOT / "docs" / "images"
    shown = {"Ketton (original)": original[:EDGE, :EDGE, :EDGE], "genlab 3-D GAN": sample}
    if slice_sample is not None:
        shown["SliceGAN, from 3 slices"] = slice_sample
    orthogonal_slices(shown, out / "porous-slices.png")
    pore_isosurface(sample, out / "porous-pores-generated.png", title="pore space, generated (96^3 corner)")
    pore_isosurface(original, out / "porous-pores-original.png", title="pore space, Ketton (96^3 corner)")
    lags = np.arange(len(gen["s2"]["mean"]))
    s2_plot(lags, {"genlab": (np.array(gen["s2"]["mean"]), np.array(gen["s2"]["std"])),
                   "Ketton 200^3": (np.array(orig["s2"]["mean"]), np.array(orig["s2"]["std"])),
                   "Ketton 256^3": s2_original[: len(lags)]},
            out / "porous-s2.png", title="pore S2: 20 generated 200^3 volumes, Ketton's 8 corner 200^3 cubes")
    names = [("porosity", "porosity"), ("specific_surface_s2", "specific surface (S2)"),
             ("chord_pore_s2", "pore chord (S2)"), ("chord_grain_s2", "grain chord (S2)"), ("euler", "Euler (200^3)")]
    statistics_panels([{"name": label, "generated": gen[k]["values"], "training": orig[k]["values"]}
                       for k, label in names], out / "porous-statistics.png",
                      title="20 generated 200^3 volumes (points) against Ketton's 8 corner cubes (band)")


if __name__ == "__main__":
    main()
