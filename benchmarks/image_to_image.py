"""The image-to-image benchmark of issue 19: each task trains for a fixed number of minutes
(``--minutes``, 30 in the issue; CPU time of the process with ``--clock cpu``, the default: with one
thread, the time of a core of its own, so tasks can run at once and a busy machine does not change
their figures) and is measured on held-out images against its trivial baseline
(the noisy input, bicubic upscaling, the grey image).

    GENLAB_DATA=~/data python benchmarks/image_to_image.py [--tasks superres-x2 ...] [--minutes 30] [--threads 1]

Tasks (``--tasks``; all by default):
- ``superres-x2``, ``superres-x4``: ESPCN (width in ``TASKS``) on ``photos-sr``: random patches
  (side and count in ``SUPERRES_PATCHES``) of the eleven training photos, each batch turned by the
  8 flips and quarter turns; measured on the whole held-out photos (astronaut, chelsea at
  256x256) as the literature measures: inputs and the bicubic baseline by MATLAB-style bicubic
  resizing, PSNR and Gaussian SSIM on the 8-bit luminance with the border crop. Figures recorded
  before that protocol (their records have ``psnr_y_border_crop``, not ``y_border_crop``) are
  marked "old protocol" in the table.
- ``denoise-gaussian``, ``denoise-masking``: U-Net on MNIST (Gaussian std 0.3; 50 % masking).
- ``colorize-photos``, ``colorize-mnist-m``: Lab chrominance from the grey image.
- ``compress-0.003``, ``compress-0.01``, ``compress-0.03``, ``compress-0.1``: the learned codec on MNIST at four
  values of ``lmbda`` (points of the rate-distortion curve), each beside JPEG and WebP at the same
  file size on the first 1,000 test images; ``compress-gdn-0.01``: the middle one with GDN
  transforms in place of GELU.
- ``cyclegan-mnist``: CycleGAN between MNIST and MNIST-M (U-Nets (32, 64), PatchGANs), measured by
  each direction's FID against the target domain's test images (and its real-data floor), the
  digit kept by the target domain's classifier, and the cycle error; ``cyclegan-mnist-semantic``:
  the same with CyCADA's semantic-consistency term (its own classifier, trained on MNIST's labels
  during the run; the measuring classifier is another, trained apart on the target domain).

Every task with a held-out measure during training records the held-out gain after each epoch
(``val/psnr`` - ``val/baseline_psnr``, RGB dB, the run's ``metrics.jsonl``); the table shows its
peak (and epoch) beside the last, flagged "overfits" when the last is more than ``OVERFIT_DB``
below the peak.

Each task's run folder is kept in ``benchmarks/runs/i2i-<task>`` (resumable: rerunning a task whose
run finished measures it again; one trained with other settings or data is refused), its figures are merged into
``benchmarks/results/image_to_image.json`` (the other tasks' figures stay), and a picture
(input, output, target for a few test images) goes to ``docs/images/i2i-<task>.png``. Once codec
runs exist, JPEG's and WebP's own rate-distortion curves on the same 1,000 MNIST test images are
added (``codec_curves``) and drawn with the codec's points in ``docs/images/i2i-rate-distortion.png``,
with each codec curve's BD-rate against them (``bd_rate``; the ``bjontegaard`` package, in the dev extra);
``--tasks`` with no task only remakes the tables and that picture.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, machine, mnist_data_dir, print_table, train_time, write_results  # noqa: E402

import genlab  # noqa: E402
from genlab.data import load_dataset, photos  # noqa: E402
from genlab.families.cyclegan.data import second_domain  # noqa: E402
from genlab.families.image_to_image import ImageToImage  # noqa: E402
from genlab.families.image_to_image.quality import seeded_conditions  # noqa: E402
from genlab.metrics import evaluate  # noqa: E402
from genlab.viz.grid import make_grid, png_bytes  # noqa: E402

#: task -> (model, dataset, batch size, lr, model settings, images in the picture)
TASKS = {
    "superres-x2": ("superres", "photos-sr", 16, 1e-3, {"scale": 2, "channels": (64, 32), "loss": "mse"}, 2),
    "superres-x4": ("superres", "photos-sr", 16, 1e-3, {"scale": 4, "channels": (64, 32), "loss": "mse"}, 2),
    "denoise-gaussian": ("denoise", "mnist", 64, 1e-3, {"noise": "gaussian", "noise_level": 0.3}, 8),
    "denoise-masking": ("denoise", "mnist", 64, 1e-3, {"noise": "masking", "noise_level": 0.5}, 8),
    "colorize-photos": ("colorize", "photos", 16, 1e-3, {}, 2),
    "colorize-mnist-m": ("colorize", "mnist-m", 64, 1e-3, {}, 8),
    "compress-0.003": ("compress", "mnist", 32, 1e-3, {"lmbda": 0.003}, 8),
    "compress-0.01": ("compress", "mnist", 32, 1e-3, {"lmbda": 0.01}, 8),
    "compress-0.03": ("compress", "mnist", 32, 1e-3, {"lmbda": 0.03}, 8),
    # a point above 0.03, where WebP's files are (from 113 bytes up)
    "compress-0.1": ("compress", "mnist", 32, 1e-3, {"lmbda": 0.1}, 8),
    # GDN transforms (Ballé et al.) in place of GELU, at the middle point of the curve
    "compress-gdn-0.01": ("compress", "mnist", 32, 1e-3, {"lmbda": 0.01, "transform": "gdn"}, 8),
    "cyclegan-mnist": ("cyclegan", "mnist", 16, 2e-4, {"domain_b": "mnist-m", "channels": (32, 64)}, 8),
    # with CyCADA's semantic-consistency term (weight 1, as theirs)
    "cyclegan-mnist-semantic": ("cyclegan", "mnist", 16, 2e-4,
                                {"domain_b": "mnist-m", "channels": (32, 64), "semantic_weight": 1.0}, 8),
    # the levers its docs name next: a stronger semantic term, and a light B -> A -> B round trip,
    # which asks G_ba to keep the photo patch
    "cyclegan-mnist-semantic-strong": ("cyclegan", "mnist", 16, 2e-4,
                                       {"domain_b": "mnist-m", "channels": (32, 64), "semantic_weight": 10.0,
                                        "cycle_weight_b": 1.0}, 8),
}
#: superres task -> its training patches (``photos.superres_patches``: side, how many)
SUPERRES_PATCHES = {"superres-x2": {"size": 64, "count": 8000}, "superres-x4": {"size": 64, "count": 8000}}
#: a last held-out gain this far below the run's peak marks a model that overfits (dB)
OVERFIT_DB = 0.05
RUNS = ROOT / "benchmarks" / "runs"
IMAGES = ROOT / "docs" / "images"


def picture(model, test_data, count: int, path: Path) -> None:
    """Rows: input (small inputs enlarged, nearest neighbour), output, target, for the first
    ``count`` test images, with the evaluation's seeded corruption."""
    batch = test_data.batch(slice(0, count)).to(model.device)
    if not isinstance(model, ImageToImage):   # its own rows: A, A -> B, B, B -> A (CycleGAN); or x, decoded (codec)
        rows = model.preview(batch)
    else:
        x = batch.images
        with torch.no_grad():
            condition = seeded_conditions(model, x)
            output = model.translate(condition)
        shown = F.interpolate(condition, size=x.shape[-2:], mode="nearest")
        rows = [shown.expand(-1, x.shape[1], -1, -1), output, x]
    scale = 1 if batch.images.shape[-1] >= 128 else 3
    grid = make_grid(torch.cat(rows).clamp(0, 1).cpu(), nrow=count, scale=scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(grid))


def codec_curves(data_dir: Path, n: int = 1000, qualities=(1, 5, 10, 20, 30, 50, 75, 90)) -> dict:
    """JPEG's and WebP's own rate-distortion curves on the codec's test images (the first ``n`` of
    MNIST's test split): mean file bytes and PSNR at each quality."""
    import numpy as np

    from genlab.families.codec.quality import _decoded, _encoded, _pil
    from genlab.metrics.image_quality import psnr

    x = load_dataset("mnist", "test", data_dir).tensors(slice(0, n))[0].double().numpy()
    curves = {}
    for kind in ("JPEG", "WEBP"):
        points = []
        for q in qualities:
            sizes, values = [], []
            for image in x:
                data = _encoded(_pil(image), kind, q)
                sizes.append(len(data))
                values.append(psnr(_decoded(data, image.shape[0]), image))
            points.append({"quality": q, "bytes": float(np.mean(sizes)), "psnr": float(np.mean(values))})
        curves[kind.lower()] = points
    return curves


def codec_runs(results: dict) -> dict[str, list[dict]]:
    """The codec's runs, one curve per transform (``gelu``, ``gdn``), each sorted by file size."""
    curves: dict[str, list[dict]] = {}
    for r in results["tasks"].values():
        if "bpp" in r:
            curves.setdefault(r["settings"].get("transform", "gelu"), []).append(r)
    return {k: sorted(v, key=lambda r: r["bytes"]) for k, v in curves.items()}


def bd_rates(results: dict) -> dict:
    """Each codec curve's Bjontegaard delta rate against JPEG's and WebP's curves: the mean
    change in bytes at equal PSNR over the PSNR range both cover (negative: the codec needs fewer
    bytes), by piecewise cubic interpolation of log-rate (the ``bjontegaard`` package's ``pchip``,
    as the JVET common test conditions), with that range; and whether each point is at or above
    WebP at its own file size (the issue's target)."""
    import warnings

    import bjontegaard

    out = {}
    for transform, runs in codec_runs(results).items():
        if len(runs) < 2:
            continue
        row = {"points": len(runs), "at_or_above_webp_everywhere": all(r["psnr_gain_over_webp_db"] >= 0 for r in runs)}
        for kind, anchor in results["codec_curves"].items():
            low = max(min(p["psnr"] for p in anchor), runs[0]["psnr"])
            high = min(max(p["psnr"] for p in anchor), runs[-1]["psnr"])
            with warnings.catch_warnings():   # a short overlap is reported as the range, not warned of
                warnings.simplefilter("ignore")
                rate = bjontegaard.bd_rate([p["bytes"] for p in anchor], [p["psnr"] for p in anchor],
                                           [r["bytes"] for r in runs], [r["psnr"] for r in runs],
                                           method="pchip", require_matching_points=False)
            row[kind] = {"bd_rate_percent": float(rate), "psnr_range": [float(low), float(high)]}
        out[transform] = row
    return out


def rate_distortion_picture(results: dict, path: Path) -> None:
    """Bytes per image against PSNR: the codec's runs as points, JPEG's and WebP's curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for kind, style in (("jpeg", "s-"), ("webp", "^-")):
        points = results["codec_curves"][kind]
        ax.plot([p["bytes"] for p in points], [p["psnr"] for p in points], style, label=f"{kind.upper()} (Pillow)")
    for (transform, runs), style in zip(codec_runs(results).items(), ("o-", "D--")):
        ax.plot([r["bytes"] for r in runs], [r["psnr"] for r in runs], style, color="black",
                label=f"genlab compress ({transform})")
        for r in runs:
            ax.annotate(f"lmbda {r['lmbda']:g}", (r["bytes"], r["psnr"]), textcoords="offset points",
                        xytext=(6, -10), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per 28x28 image (file, headers included)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("MNIST test images: rate and distortion")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def held_out_gains(out: Path) -> dict:
    """The held-out gain after each epoch (``val/psnr`` - ``val/baseline_psnr``, RGB dB) of the run
    in ``out``, its peak and the epoch of it, the last, and whether the last is more than
    ``OVERFIT_DB`` below the peak; empty for a run without those measures."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    gains = [(r["epoch"], round(r["val/psnr"] - r["val/baseline_psnr"], 3)) for r in records
             if "val/psnr" in r and "val/baseline_psnr" in r]
    if not gains:
        return {}
    epoch, peak = max(gains, key=lambda g: g[1])
    return {"val_gain_by_epoch": [g for _, g in gains], "val_gain_peak": peak, "val_gain_peak_epoch": epoch,
            "val_gain_final": gains[-1][1], "overfits": gains[-1][1] < peak - OVERFIT_DB}


def check_recipe(out: Path, dataset: str, settings: dict, patches: dict | None) -> None:
    """Refuse to resume a run folder trained on other data or with other model settings."""
    config = json.loads((out / "config.json").read_text())
    data = config["data"]
    stored = {"data": data["name"], **{k: config["model"].get(k) for k in settings},
              "patches": {"size": data["image_shape"][-1], "count": data["train_size"]} if patches else None}
    wanted = {"data": dataset, **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
              "patches": patches}
    if stored != wanted:
        changed = ", ".join(f"{k}={stored[k]} (now {wanted[k]})" for k in wanted if stored[k] != wanted[k])
        raise SystemExit(f"{out} was trained with {changed}; delete it to train the current recipe")


def run_task(task: str, minutes: float, data_dir: Path, clock: str = "cpu") -> dict:
    name, dataset, batch, lr, settings, count = TASKS[task]
    patches = SUPERRES_PATCHES.get(task)
    train_data = photos.superres_patches(**patches) if patches else load_dataset(dataset, "train", data_dir)
    train_data = second_domain(train_data, settings.get("domain_b"), data_dir)
    test_data = second_domain(load_dataset(dataset, "test", data_dir), settings.get("domain_b"), data_dir)
    out = RUNS / f"i2i-{task}"
    resume = (out / "config.json").exists()
    if resume:
        check_recipe(out, dataset, settings, patches)
    started = time.perf_counter()
    model = genlab.train(name, train_data, test_data, out_dir=out, resume=resume, epochs=1000, batch_size=batch,
                         lr=lr, lr_schedule="cosine", max_minutes=minutes, clock=clock, progress=False,
                         model_settings=None if resume else settings)
    wall = time.perf_counter() - started
    model.eval()
    metrics = evaluate(model, test_data, data_dir=data_dir)
    picture(model, test_data, count, IMAGES / f"i2i-{task}.png")
    steps = sum(1 for _ in (out / "metrics.jsonl").read_text().splitlines())
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return {"task": task, "model": name, "data": dataset, "minutes_budget": minutes, "clock": clock,
            "train_minutes": round(train_time(out) / 60, 2), "wall_minutes": round(wall / 60, 2),
            "epochs_logged": steps, "steps": record.get("step"), "batch_size": batch, "lr": lr,
            "settings": settings, "patches": patches, "test_images": len(test_data), **metrics,
            **held_out_gains(out)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="*", choices=list(TASKS), default=list(TASKS),
                   help="tasks to run (none: only the tables, and the rate-distortion picture from the codec runs)")
    p.add_argument("--minutes", type=float, default=30.0, help="training minutes per task")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="what --minutes counts: this process's CPU time (default) or time on the clock")
    p.add_argument("--data-dir", default=None, help="where MNIST is (default $GENLAB_DATA)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data_dir = mnist_data_dir(args.data_dir)
    path = RESULTS / "image_to_image.json"
    for task in args.tasks:
        r = run_task(task, args.minutes, data_dir, args.clock)
        # Read just before writing: another invocation may have added its tasks meanwhile.
        results = json.loads(path.read_text()) if path.exists() else {"tasks": {}}
        results["tasks"][task] = {**r, "machine": machine()}
        write_results("image_to_image", results)
        if "baseline_psnr" in r:
            print(f"{task}: {r['psnr']:.2f} dB against {r['baseline_psnr']:.2f} ({r['psnr_gain_db']:+.2f})", flush=True)
    results = json.loads(path.read_text())
    if any("bpp" in r for r in results["tasks"].values()):
        results["codec_curves"] = codec_curves(data_dir)
        results["bd_rate"] = bd_rates(results)
        write_results("image_to_image", results)
        rate_distortion_picture(results, IMAGES / "i2i-rate-distortion.png")
    rows, transfers, codecs = [], [], []
    for task, r in results["tasks"].items():
        if "bpp" in r:
            codecs.append([task, f"{r['train_minutes']:.1f}", r["steps"], f"{r['bytes']:.1f}", f"{r['bpp']:.3f}",
                           f"{r['psnr']:.2f}", f"{r['webp_bytes']:.1f}", f"{r['webp_psnr']:.2f}",
                           f"{r['jpeg_bytes']:.1f}", f"{r['jpeg_psnr']:.2f}", r["jpeg_larger"]])
            continue
        if "psnr" not in r:
            for d in ("a_to_b", "b_to_a"):
                transfers.append([f"{task} {d.replace('_', ' ')}", f"{r['train_minutes']:.1f}", r["steps"],
                                  f"{r[d + '/fid']:.1f}", f"{r[d + '/baseline_fid']:.1f}", f"{r[d + '/fid_floor']:.1f}",
                                  f"{r[d + '/content_kept']:.3f}", f"{r[d + '/baseline_content_kept']:.3f}",
                                  f"{r[d + '/cycle_l1']:.4f}"])
            continue
        gain_y = f"{r['psnr_y_gain_db']:+.2f}" if "psnr_y_gain_db" in r else "-"
        if "psnr_y_border_crop" in r:   # measured before the literature's protocol was the default
            gain_y += " (old protocol)"
        pooled = f"{r['psnr_pooled_gain_db']:+.2f}" if "psnr_pooled_gain_db" in r else "-"
        peak, final = "-", "-"
        if "val_gain_peak" in r:   # recorded since issue 35
            peak = f"{r['val_gain_peak']:+.2f} ({r['val_gain_peak_epoch']})"
            final = f"{r['val_gain_final']:+.2f}" + (" overfits" if r["overfits"] else "")
        rows.append([task, f"{r['train_minutes']:.1f}", r["steps"], f"{r['psnr']:.2f}", f"{r['baseline_psnr']:.2f}",
                     f"{r['psnr_gain_db']:+.2f}", gain_y, pooled, f"{r['ssim']:.3f}", f"{r['baseline_ssim']:.3f}",
                     peak, final])
    print_table(["task", "train min", "steps", "PSNR", "baseline", "gain dB", "Y gain dB", "pooled gain",
                 "SSIM", "baseline SSIM", "peak gain (epoch)", "final gain"], rows)
    if codecs:
        print()
        print_table(["task", "train min", "steps", "bytes", "bpp", "PSNR", "WebP bytes", "WebP PSNR", "JPEG bytes",
                     "JPEG PSNR", "JPEG larger"], codecs)
    if results.get("bd_rate"):
        print("\nBD-rate: the codec's change in bytes at equal PSNR, over the PSNR range both curves cover")
        print_table(["codec curve", "points", "vs WebP", "PSNR range", "vs JPEG", "PSNR range", "at or above WebP"],
                    [[t, b["points"], f"{b['webp']['bd_rate_percent']:+.1f} %", "{:.1f}-{:.1f}".format(*b["webp"]["psnr_range"]),
                      f"{b['jpeg']['bd_rate_percent']:+.1f} %", "{:.1f}-{:.1f}".format(*b["jpeg"]["psnr_range"]),
                      "yes" if b["at_or_above_webp_everywhere"] else "no"] for t, b in results["bd_rate"].items()])
    if transfers:
        print()
        print_table(["task", "train min", "steps", "FID", "baseline FID", "FID floor", "digit kept", "baseline kept",
                     "cycle L1"], transfers)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
