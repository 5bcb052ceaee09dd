"""Diffusion benchmark: FID against training time for pixel diffusion (the uniform and the min-SNR
objective) and latent diffusion on MNIST, beside the GANs' rows; the samplers against their steps on
the same trained models; and latent against pixel diffusion on 64 x 64 colour photo patches
(training images per second and FID at equal CPU time).

    python benchmarks/diffusion.py                       # every set and entry, one after another
    python benchmarks/diffusion.py --sets mnist --only pixel-uniform &   # or one entry per process, one
    python benchmarks/diffusion.py --sets mnist --only pixel-min-snr     # thread each (--threads 1): two
    python benchmarks/diffusion.py --sets mnist --only latent &          # at a time on two cores
    python benchmarks/diffusion.py --sets photos64 --only pixel
    python benchmarks/diffusion.py --sets photos64 --only latent
    python benchmarks/diffusion.py --sets photos64 --only pixel-min-snr --budgets 15 30   # some budgets
    python benchmarks/diffusion.py --table               # the saved tables again, beside the GANs' latest rows
    python benchmarks/diffusion.py --sweep-only          # no training: the sampler sweep of the saved pixel runs
    python benchmarks/diffusion.py --sweep-only --device cuda   # sampled on a GPU: the same samples up to rounding, in minutes
    python benchmarks/diffusion.py --only pixel-uniform --no-sweep   # training and its rows; the sweep later
    python benchmarks/diffusion.py --quick               # both sets, tiny data, budgets of seconds: the harness

(MNIST in $GENLAB_DATA/mnist.) CPU time, estimated: each mnist pixel entry about 2.5 hours (35
minutes of training, 15 of scoring, 100 of the sampler sweep), mnist latent 45 minutes, photos64
pixel 2 hours, photos64 latent 1.2 hours: about 9 hours of one core in all, 4.5 to 5 on two cores
with two entries at a time. --quick: about 4 CPU minutes (10 on the clock on a busy machine).

Sets and their entries (``SETS``):

- ``mnist``: MNIST (from DIR/mnist: --data-dir, $GENLAB_DATA, else ../shared/datasets), budgets of 5,
  15 and 30 minutes. ``pixel-uniform`` and ``pixel-min-snr``: the U-Net below (0.28 M weights) with
  the uniform and the min-SNR loss weighting (batches of 64, learning rate 2e-3).
  ``pixel-defaults``: the U-Net and training settings that were genlab's defaults before these
  entries chose them (width 32 at two levels, 0.7 M weights; batches of 128, learning rate
  1e-3), its rows at the first 50-step chunk past each budget (an epoch takes longer than a
  budget). ``latent``: the
  ``latent-diffusion`` preset with its family's batch of 32 and learning rate of 1e-3, on MNIST
  padded to 32 x 32: its default code (f = 4) of a 28 x 28 digit is 4 x 7 x 7, which no U-Net of
  more than one level can halve; at 32 x 32 it is 4 x 8 x 8. Its samples are cropped back to 28 x 28
  for FID, so every entry is scored in the same feature space, against the same test images.
  After the last budget of each pixel entry, the sampler sweep: the FID of each sampler (DDIM,
  DPM-Solver++ 2M and 3M) at 5, 10, 20, 50 and 250 steps on that model (benchmarks/diffusion_samplers.py's
  ``fid``), the issue's targets (DPM-Solver++ within 10 % of the 250-step FID at 20 steps, within
  25 % at 10) printed as met or not, and a grid of 64 samples per sampler at 20 steps
  (benchmarks/results/diffusion-ENTRY-SAMPLER.png).
- ``photos64``: 64 x 64 colour patches of the photos of genlab's ``photos`` (both splits), 2,000 for
  training (random left-right flips) and 1,000 held out at other positions, labelled with their
  photo for the feature classifier (benchmarks/progan.py's ``photos32`` at 64); budgets of 15, 30 and
  60 minutes. ``pixel``: width 32 at two levels on the pixels (genlab's default U-Net when its
  rows were measured); ``latent``: the
  ``latent-diffusion`` preset, with 400 autoencoder steps (12,800 images, about 12 minutes of one
  thread) rather than 1,000 (30 minutes). Both with genlab's default objective, batches of 32 and a
  learning rate of 1e-3 (latent diffusion's defaults). ``pixel-min-snr``: genlab's default U-Net
  and training settings (chosen on MNIST by its entries), to see whether they carry over.

Each entry trains epoch by epoch (resuming its run folder, benchmarks/runs/diffusion-SET-ENTRY) until
its training time passes each budget; at the first epoch end past a budget, N samples from the
averaged weights (DDIM with 50 steps on mnist, as the recorded rows; DPM-Solver++ 2M with 20 on
photos64, where a pixel sample of 50 steps costs seconds) are compared with N test images in the
features of genlab's classifier of the set (``--num-samples``: 2,000 on mnist, 1,000 on photos64).
Training time is the CPU time of the benchmark's process while it trains (sampling and scoring not
counted): with one thread (--threads 1, the default) it is the time on a core of its own, whatever
else the machine runs, so the entries can train at once, one core each, and a busy machine slows the
run without changing its figures. The GAN rows are read from benchmarks/results/gan.json
(gan-quick.json with --quick) when benchmarks/gan.py has been run: their minutes are on the clock
and their FIDs from 10,000 samples (FID is biased upwards for fewer samples; KID is not).

Results: benchmarks/results/diffusion.json (mnist) and diffusion-photos64.json (with --quick,
diffusion-quick.json and diffusion-photos64-quick.json). A run replaces the rows of its entries there
and keeps the others' (under a file lock, so runs at once, one entry each, all land), when they were
measured with the same samples and budgets. Rows recorded before entries existed (no set, model
``diffusion``) are the uniform pixel entry with its time on the clock; they stay, marked so, until
``--only pixel-uniform`` replaces them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import genlab  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402
from genlab.metrics.sample_quality import compare_features  # noqa: E402
from genlab.registry import build_model  # noqa: E402

from common import (FLOOR_MODEL, RESULTS, ROOT, epochs_in_cpu_time, machine, merge_results,  # noqa: E402
                    mnist_data_dir, photo_patches, print_table, results_lock, sample_quality_reference,
                    write_results)
from diffusion_samplers import STEPS, draw, fid, report_fid  # noqa: E402

# Widths 16, 32 and 32 at 28x28, 14x14 and 7x7 (attention at 7x7 and in the middle): 0.28 M weights;
# an MNIST epoch (938 steps of 64 images) took 8 to 10 minutes on one busy core (width 32: three
# times slower, too coarse for a 5-minute budget). A constant learning rate: the
# run's length is a time budget, not a number of epochs.
MODEL = {"channels": 16, "channel_mults": (1, 2, 2), "attention_resolution": 7, "ema_decay": 0.999}
TRAIN = {"batch_size": 64, "lr": 2e-3}
METRICS = ["fid", "kid"]
SWEEP_SAMPLERS = ["ddim", "dpm++2m", "dpm++3m"]
#: DPM-Solver++'s FID over the 250-step FID the issue asks for, by steps
TARGETS = {20: 1.10, 10: 1.25}
GRID_STEPS = 20
#: with --quick: every entry's average over a few dozen steps is shorter; the rows at each budget take 10 steps
QUICK_SETTINGS, QUICK_SAMPLE_STEPS = {"ema_decay": 0.99}, 10


@dataclass(frozen=True)
class Entry:
    """A model of a set: its registry name and settings, and their overrides with --quick. ``pad``:
    it trains on the images padded to 32 x 32 and its samples are cropped back for FID; ``sweep``:
    the sampler sweep after its last budget; ``train``: training settings over the set's;
    ``chunk_steps``: rows at the first chunk of that many steps past a budget, not at an epoch's end
    (for an entry whose epoch is longer than a budget)."""

    model: str
    settings: dict
    quick: dict = field(default_factory=dict)
    pad: bool = False
    sweep: bool = False
    train: dict = field(default_factory=dict)
    chunk_steps: int = 0


@dataclass(frozen=True)
class Set:
    """A set of entries measured alike: budgets (minutes), samples per figure, the (sampler, steps)
    of the rows at each budget, training settings, and the entries."""

    budgets: tuple[float, ...]
    num_samples: int
    sampling: tuple[str, int]
    train: dict
    entries: dict[str, Entry]


TINY_LATENT = {"channels": 8, "autoencoder_channels": (8, 16, 16)}
SETS = {
    "mnist": Set((5, 15, 30), 2000, ("ddim", 50), TRAIN, {
        "pixel-uniform": Entry("diffusion", {**MODEL, "loss_weighting": "uniform"}, sweep=True),
        "pixel-min-snr": Entry("diffusion", {**MODEL, "loss_weighting": "min-snr"}, sweep=True),
        # genlab's defaults as they stood (the U-Net of width 32 at two levels, batch 128, learning
        # rate 1e-3), against which the entries above chose them
        "pixel-defaults": Entry("diffusion", {"channels": 32, "channel_mults": (1, 2), "attention_resolution": 8},
                                {"channels": 8}, train={"batch_size": 128, "lr": 1e-3}, chunk_steps=50),
        # 300 autoencoder steps: 9,600 digits, a sixth of an epoch; the rest of the budget denoises.
        # Its family's batch and learning rate (32, 1e-3): at the pixel entries' 64 and 2e-3 its
        # denoiser diverged in the third epoch (loss 0.05, 0.11, 0.27 over epochs 2-4).
        "latent": Entry("latent-diffusion", {"autoencoder_steps": 300},
                        {**TINY_LATENT, "autoencoder_steps": 10}, pad=True, train={"batch_size": 32, "lr": 1e-3}),
    }),
    "photos64": Set((15, 30, 60), 1000, ("dpm++2m", 20), {"batch_size": 32, "lr": 1e-3}, {
        # the pixel U-Net its rows were measured with, genlab's default of the time
        "pixel": Entry("diffusion", {"channels": 32, "channel_mults": (1, 2)}, {"channels": 8}),
        # genlab's default U-Net and training settings (chosen on MNIST by the mnist entries above):
        # do they carry over to 64 x 64 colour?
        "pixel-min-snr": Entry("diffusion", {}, {"channels": 8}, train={"batch_size": 64, "lr": 2e-3}),
        "latent": Entry("latent-diffusion", {"autoencoder_steps": 400}, {**TINY_LATENT, "autoencoder_steps": 8}),
    }),
}
#: photos64's patches (train, test); with --quick a few
PHOTO_PATCHES, QUICK_PHOTO_PATCHES = (2000, 1000), (128, 64)


def results_name(set_name: str, quick: bool) -> str:
    return "diffusion" + ("" if set_name == "mnist" else f"-{set_name}") + ("-quick" if quick else "")


def datasets(set_name: str, data_dir, quick: bool):
    """(train, test) of a set: MNIST (digits28 with --quick), or photo patches labelled with their photo."""
    if set_name == "photos64":
        (train, test), name = QUICK_PHOTO_PATCHES if quick else PHOTO_PATCHES, f"photos64{'-quick' if quick else ''}"
        train_data = photo_patches("train", train, 0, side=64, name=name)
        return dataclasses.replace(train_data, augment=("hflip",)), photo_patches("test", test, 0, side=64, name=name)
    source = "digits28" if quick else "mnist"
    return genlab.load_dataset(source, "train", data_dir), genlab.load_dataset(source, "test", data_dir)


def centre_crop(images: torch.Tensor, side: int) -> torch.Tensor:
    """The central ``side`` x ``side`` window of images (N, C, H, W): a padded entry's samples at the data's size."""
    top, left = (images.shape[-2] - side) // 2, (images.shape[-1] - side) // 2
    return images[..., top:top + side, left:left + side]


def train_entry(set_name, name, train_data, budgets_s, measure, keep, quick, threads, seed=0):
    """Train entry ``name`` of ``set_name`` epoch by epoch until its CPU time passes each budget; at
    the first epoch end past one, ``measure(model)`` scores it and ``keep`` takes the row. Returns
    the run folder and the row of the last budget."""
    spec = SETS[set_name]
    entry = spec.entries[name]
    if entry.pad:
        from progan import padded   # MNIST padded to 32 x 32, replicating its (black) border

        train_data = padded(train_data, f"{train_data.name}-32")
    out = ROOT / "benchmarks" / "runs" / f"diffusion-{set_name}-{name}{'-quick' if quick else ''}"
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    model = build_model(entry.model, image_shape=train_data.image_shape,
                        **{**entry.settings, **({**QUICK_SETTINGS, **entry.quick} if quick else {})})
    pending = list(budgets_s)
    for model, epoch, elapsed in epochs_in_cpu_time(model, train_data, out, seed, {**spec.train, **entry.train},
                                                      entry.chunk_steps):
        if elapsed < pending[0]:
            continue
        while pending and elapsed >= pending[0]:
            pending.pop(0)
        row = {"set": set_name, "model": name, "minutes": elapsed / 60, "clock": "cpu", "epochs": epoch,
               "images_per_s": epoch * len(train_data) / elapsed, "torch_threads": threads, **measure(model)}
        keep(row)
        print(f"  {set_name} {name}: {row['minutes']:.1f} CPU min, epoch {epoch}, {row['sampler']} "
              f"{row['steps']} steps: FID {row['fid']:.2f}, KID {row['kid']:.3f}", flush=True)
        model.train()
        if not pending:
            return out, row


def sweep(run_dir: Path, last: dict, n: int, steps: list[int], samplers: list[str], data_dir, keep,
          quick: bool, device: str = "cpu") -> None:
    """The sampler sweep of a trained pixel run (benchmarks/diffusion_samplers.py's ``fid``) sampled on
    ``device``, its rows tagged with the time of the budget row ``last``, and a grid of 64 samples
    per sampler."""
    from genlab.viz import save_grid

    data = fid(str(run_dir), n, steps, samplers, data_dir, device)
    for r in data["rows"]:
        keep({**{k: last[k] for k in ("set", "model", "minutes", "clock", "epochs", "torch_threads")},
              "sweep": True, "sampled_on": data["device"], **r})
    model = genlab.load_run(run_dir, family="diffusion", map_location=device).model
    for sampler in samplers:
        images = draw(model, sampler, GRID_STEPS, 64)[0]
        path = save_grid(images, RESULTS / f"diffusion-{last['model']}-{sampler}{'-quick' if quick else ''}.png", nrow=8)
        print(f"  {GRID_STEPS} steps of {sampler}: {path}")


def upgraded(data: dict) -> dict:
    """A results file of the benchmark's first form (before entries: one model, the uniform
    objective, sampled by DDIM, its training time on the clock, its floor apart) in this form;
    a file of this form as it is."""
    if "floor" not in data:
        return data
    rows = [{**r, "set": "mnist", "model": "pixel-uniform", "clock": "wall", "sampler": "ddim"} for r in data["rows"]]
    floor = {**data["floor"], "set": "mnist", "features": data["features"]}
    return {**{k: data[k] for k in ("command", "machine", "dataset", "num_samples", "budgets_s")},
            "rows": [floor, *rows],
            "runs": {"mnist/pixel-uniform": {"command": data["command"], "machine": data["machine"]}}}


def upgrade_recorded(name: str) -> None:
    """Rewrite RESULTS/NAME.json in this form if it holds the first form, before rows merge into it."""
    path = RESULTS / f"{name}.json"
    with results_lock(name):
        if path.exists() and "floor" in (data := json.loads(path.read_text())):
            write_results(name, upgraded(data))


def saved_rows(name: str) -> list[dict]:
    """The rows of RESULTS/NAME.json (in this form), which --sweep-only keeps."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"no {path}: train the entries before their sweep")
    return upgraded(json.loads(path.read_text()))["rows"]


def gan_rows(quick: bool) -> list[dict]:
    """The GAN benchmark's rows (not its floor), if it has been run, with one sampling step."""
    path = RESULTS / f"gan{'-quick' if quick else ''}.json"
    if not path.exists():
        print(f"  (no {path.name}: run benchmarks/gan.py{' --quick' if quick else ''} for the GAN rows)")
        return []
    data = json.loads(path.read_text())
    floor = next((r["fid"] for r in data["rows"] if r["model"].startswith("real data")), None)
    return [{**r, "clock": "wall", "sampler": "-", "steps": 1, "num_samples": data["num_samples"],
             "floor_fid": floor, "source": path.name}
            for r in data["rows"] if not r["model"].startswith("real data")]


def sweep_key(row: dict) -> tuple:
    """A row's identity in a sweep-only run: its model, sweep or not, sampler, steps and time."""
    return (row["set"], row["model"], bool(row.get("sweep")), row.get("sampler"), row.get("steps"), row.get("minutes"))


def run_set(set_name: str, args) -> None:
    """Train (or, with --sweep-only, sweep) the chosen entries of a set, rows merged as they land."""
    spec, name = SETS[set_name], results_name(set_name, args.quick)
    entries = [e for e in args.only or spec.entries if e in spec.entries
               and (spec.entries[e].sweep or not args.sweep_only)]
    if not entries:
        return
    upgrade_recorded(name)
    data_dir = None if args.quick or set_name != "mnist" else mnist_data_dir(args.data_dir)
    train_data, test_data = datasets(set_name, data_dir, args.quick)
    wanted = args.num_samples or ((100 if set_name == "mnist" else 64) if args.quick else spec.num_samples)
    n = min(wanted, len(test_data), len(train_data))
    budgets_s = [5, 10, 15] if args.quick else [60 * b for b in (args.budgets or spec.budgets)]
    sampler, steps = spec.sampling[0], QUICK_SAMPLE_STEPS if args.quick else spec.sampling[1]
    extractor, real, floor = sample_quality_reference(train_data, test_data, n, METRICS)
    # some of the set's budgets (--budgets) measure rows as the others do: they merge with them
    set_budgets_s = [60 * b for b in spec.budgets]
    recorded_budgets = set_budgets_s if not args.quick and set(budgets_s) <= set(set_budgets_s) else budgets_s
    about = {"command": "python benchmarks/" + " ".join([Path(__file__).name, *sys.argv[1:]]), "machine": machine(),
             "dataset": train_data.name, "num_samples": n, "budgets_s": recorded_budgets}
    rows = [r for r in saved_rows(name) if r["model"] in entries and not r.get("sweep")] if args.sweep_only else []

    def keep(row: dict) -> None:   # each row lands as it is measured: a run cut short keeps its rows
        rows.append(row)
        # a sweep replaces only the rows it measures, so that sweeps of one model at once all land
        merge_results(name, rows, about, sweep_key if args.sweep_only else None)

    def measure(model) -> dict:
        images, per_image, _ = draw(model, sampler, steps, n)
        scores = compare_features(real, extractor(centre_crop(images, test_data.image_shape[-1])), METRICS)
        return {"sampler": sampler, "steps": steps, "ms_per_image": 1000 * per_image, **scores}

    keep({**floor, "set": set_name, "features": extractor.describe()})
    for entry in entries:
        if args.sweep_only:
            run_dir = ROOT / "benchmarks" / "runs" / f"diffusion-{set_name}-{entry}{'-quick' if args.quick else ''}"
            last = max((r for r in rows if r["model"] == entry), key=lambda r: r["minutes"], default=None)
            if last is None or not run_dir.is_dir():
                raise SystemExit(f"no trained {entry} run of {set_name} with rows: run --only {entry} first")
        else:
            run_dir, last = train_entry(set_name, entry, train_data, budgets_s, measure, keep, args.quick, args.threads)
        if spec.entries[entry].sweep and not args.no_sweep:
            sweep(run_dir, last, n, sorted(args.steps or ([5, 10, 20] if args.quick else STEPS)),
                  args.samplers, data_dir, keep, args.quick, args.device)


def report(set_name: str, quick: bool) -> None:
    """Print a set's saved tables: FID against training time (with the GANs' rows on mnist), and
    the sampler sweep of each entry that has one, with the issue's targets."""
    path = RESULTS / f"{results_name(set_name, quick)}.json"
    if not path.exists():
        print(f"\n(no {path.name}: run benchmarks/diffusion.py --sets {set_name}{' --quick' if quick else ''})")
        return
    data = upgraded(json.loads(path.read_text()))
    floor = next(r for r in data["rows"] if r["model"] == FLOOR_MODEL)
    budget_rows = [r for r in data["rows"] if r["model"] != FLOOR_MODEL and not r.get("sweep")]
    others = gan_rows(quick) if set_name == "mnist" else []
    header = ["model", "training (min)", "clock", "epochs", "images / s", "sampler", "steps", "FID", "x floor",
              "KID", "KID std", "ms / image"]
    # "x floor": each FID over the floor measured with the same number of samples (the GANs' own)
    table = [[r["model"], r["minutes"], r["clock"], r["epochs"], r.get("images_per_s", "-"), r["sampler"],
              r["steps"], r["fid"], r["fid"] / (r.get("floor_fid") or floor["fid"]), r["kid"], r["kid_std"],
              r.get("ms_per_image", "-")]
             for r in sorted(budget_rows + others, key=lambda r: (r["minutes"], r["model"], r["steps"]))]
    table.insert(0, [FLOOR_MODEL, 0.0, "-", 0, "-", "-", "-", floor["fid"], 1.0, floor["kid"], floor["kid_std"], "-"])
    features = floor["features"]
    accuracy = features.get("feature_classifier_test_accuracy")
    print(f"\n{set_name} ({data['dataset']}): FID against training time, {data['num_samples']} samples against as "
          f"many test images; features {features['features']}"
          + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""))
    print_table(header, table)
    print("training (min): 'cpu', the CPU time of the training process (with one thread, of a core of its own); "
          "'wall', on the clock. images / s: training images per second of that time.")
    if any(r["clock"] == "wall" and r["model"] == "pixel-uniform" for r in budget_rows):
        print("note: the pixel-uniform rows on the clock were recorded before this benchmark had entries "
              "(benchmarks/diffusion.py at 170eb05, one torch thread on a shared machine; 250 steps with two): "
              "the uniform objective, time on the clock; --only pixel-uniform replaces them")
    if others:
        print("note: the GAN rows (benchmarks/gan.py) are timed on the clock and scored with "
              f"{others[0]['num_samples']} samples: compare KID (unbiased), not FID (biased upwards for fewer samples)")
    for entry in dict.fromkeys(r["model"] for r in data["rows"] if r.get("sweep")):
        rows = [r for r in data["rows"] if r.get("sweep") and r["model"] == entry]
        print(f"\nsampler sweep of {entry} after {rows[0]['minutes']:.1f} minutes ({rows[0]['epochs']} epochs):", end="")
        report_fid({"dataset": data["dataset"], "num_samples": data["num_samples"], "features": features,
                    "floor": floor, "rows": rows})
        for line in target_lines(rows):
            print(line)


def target_lines(rows: list[dict]) -> list[str]:
    """The issue's targets on a sweep's rows: DPM-Solver++'s FID over DDIM's at its most steps
    (250 unless --steps left it out)."""
    ddim = [r for r in rows if r["sampler"] == "ddim"]
    if not ddim:
        return ["targets: no DDIM rows to compare with"]
    reference = max(ddim, key=lambda r: r["steps"])
    lines = []
    for r in rows:
        if r["sampler"].startswith("dpm++") and r["steps"] in TARGETS:
            ratio, target = r["fid"] / reference["fid"], TARGETS[r["steps"]]
            lines.append(f"target: {r['sampler']} at {r['steps']} steps within {target - 1:.0%} of ddim at "
                         f"{reference['steps']} steps: {ratio:.3f} x, {'met' if ratio <= target else 'NOT met'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--only", nargs="*", choices=sorted({e for s in SETS.values() for e in s.entries}),
                        help="these entries of each set (default: all)")
    parser.add_argument("--budgets", nargs="*", type=float, help="minutes of training (default: the set's)")
    parser.add_argument("--num-samples", type=int, help="samples per figure (default: 2000 on mnist, 1000 on photos64)")
    parser.add_argument("--steps", nargs="*", type=int, help=f"the sweep's steps (default {' '.join(map(str, STEPS))})")
    parser.add_argument("--samplers", nargs="*", default=SWEEP_SAMPLERS, choices=SWEEP_SAMPLERS + ["ddpm"],
                        help="the sweep's samplers")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; the budgets are CPU time, summed over them")
    parser.add_argument("--quick", action="store_true",
                        help="digits28 and a few photo patches, budgets of 5, 10 and 15 seconds, 100 and 64 samples")
    parser.add_argument("--sweep-only", action="store_true",
                        help="no training: the sampler sweep of the saved runs of the pixel entries")
    parser.add_argument("--device", default="cpu", help="where the sampler sweep samples (cpu, or cuda: its FIDs do "
                                                        "not depend on it; training is on the CPU, in CPU time)")
    parser.add_argument("--table", action="store_true", help="no training: print the saved tables again")
    parser.add_argument("--no-sweep", action="store_true",
                        help="train and score the entries, leave their sampler sweep to a later --sweep-only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.table:
        for set_name in args.sets:
            run_set(set_name, args)
    for set_name in args.sets:
        report(set_name, args.quick)


if __name__ == "__main__":
    main()
