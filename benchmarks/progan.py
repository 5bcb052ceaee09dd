"""Progressive growing against the DCGAN at the same resolution and budget: FID against training
time, with the real-data floor, on grey digits and on colour photo patches, both at 32 x 32.
(Rows recorded before --chunk-steps were taken at epoch ends.)

    python benchmarks/progan.py                      # MNIST padded to 32 and photo patches, 5/15/30 min each
    python benchmarks/progan.py --sets mnist32 --only progan --threads 1 &   # the two models at once,
    python benchmarks/progan.py --sets mnist32 --only dcgan --threads 1      # one core each
    python benchmarks/progan.py --quick              # digits28 padded to 32, budgets of seconds: the harness

Data: ``mnist32`` is MNIST padded to 32 x 32 (MNIST from DIR/mnist: --data-dir, $GENLAB_DATA, else
../shared/datasets); ``photos32`` is 32 x 32 colour patches of the scikit-image photos of genlab's
``photos`` set (both its splits), 24,000 for training and 4,000 held out at other positions of the
same photos, labelled with the photo each comes from. FID is measured in the features of a classifier genlab trains on each set
(of the digit; of the photo a patch comes from, which sees colour and texture), cached like
`genlab evaluate`'s. Each model trains a chunk of steps at a time (resuming its run folder) until
its training time passes each budget; at the first check past a budget (every --chunk-steps
steps), N samples are compared with N held-out images.

Training time is the CPU time of the benchmark's process while it trains (evaluation not
counted): with one thread (--threads 1, the default) it is the time on a core of its own, whatever
else the machine runs, so the models can train at once, one core each, and a busy machine slows
the run without changing its figures. progan's samples at the end of each stage of
its growth go to benchmarks/results/progan-stages-SET.png. Results: benchmarks/results/progan.json;
a run with --only replaces the rows of its sets and models there and keeps the others (under a
file lock, so two runs at once, one model each, both land).

progan's schedule is shorter than its default (60,000 images a phase, for a run of hours): at 10,000
images per fade and per stable phase it reaches 32 x 32 (6 phases) within about two thirds of the
30-minute budget on one core, and trains at full size for the rest.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import genlab  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402
from genlab.data import ImageDataset  # noqa: E402
from genlab.metrics.sample_quality import compare_features, generate  # noqa: E402
from genlab.registry import build_model  # noqa: E402

from common import (RESULTS, ROOT, epochs_in_cpu_time, machine, merge_results, mnist_data_dir,  # noqa: E402
                    photo_patches, print_table, sample_quality_reference)

SIDE = 32
DCGAN = {"latent_dim": 64, "channels": 32, "ema_decay": 0.999}
#: name -> (model, its settings, training settings); the same batch, learning rate and width budget.
#: dcgan: genlab's DCGAN, with its lazy R1 penalty (gamma 1 every 16th D step); dcgan-no-r1: without
#: it, the DCGAN before that default, which collapsed on digits at 32 x 32
ENTRIES = {
    "progan": ("progan", {"image_size": SIDE, "latent_dim": 64, "channels": 32, "ema_decay": 0.999,
                          "fade_images": 10_000, "stable_images": 10_000}, {"batch_size": 64, "lr": 1e-3}),
    "dcgan": ("dcgan", DCGAN, {"batch_size": 64, "lr": 2e-4}),
    "dcgan-no-r1": ("dcgan", {**DCGAN, "r1_gamma": 0.0}, {"batch_size": 64, "lr": 2e-4}),
}
QUICK = {"progan": {"channels": 8, "fade_images": 600, "stable_images": 600}, "dcgan": {"channels": 8},
         "dcgan-no-r1": {"channels": 8}}
METRICS = ["fid", "kid"]
#: the budgets are checked every CHUNK_STEPS steps (16,000 images at batch 64), not only at epoch
#: ends: an epoch of MNIST took 9 (DCGAN) to 26 (progan) CPU minutes, so a row could land far past its budget
CHUNK_STEPS = 250


def padded(data: ImageDataset, name: str) -> ImageDataset:
    """``data`` padded (replicating the border) to SIDE x SIDE, under another name (its own
    feature classifier)."""
    from genlab.families.progan.data import fit_images

    return ImageDataset(images=fit_images(data.images, SIDE, "pad"), labels=data.labels, name=name,
                        split=data.split, class_names=data.class_names)


def datasets(name: str, data_dir, quick: bool) -> tuple[ImageDataset, ImageDataset]:
    if name == "photos32":
        sizes, label = ((2000, 500), "photos32-quick") if quick else ((24000, 4000), "photos32")
        return tuple(photo_patches(split, size, 0, name=label) for split, size in zip(("train", "test"), sizes))
    source = "digits28" if quick else "mnist"
    return tuple(padded(genlab.load_dataset(source, split, data_dir), f"{source}-32") for split in ("train", "test"))


def benchmark(name, set_name, train_data, extractor, real, budgets_s, quick, n, keep, chunk_steps, seed=0):
    """Rows (model, minutes, epochs, fid, kid, kid_std) at the first check past each budget,
    each given to ``keep`` as it is measured; returns progan's samples at the end of each stage."""
    model_name, settings, train_settings = ENTRIES[name]
    settings = {**settings, **(QUICK[name] if quick else {})}
    out = ROOT / "benchmarks" / "runs" / f"progan-{set_name}-{name}{'-quick' if quick else ''}"
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    model = build_model(model_name, image_shape=train_data.image_shape, num_classes=train_data.num_classes, **settings)
    stages, pending, last_stage = [], list(budgets_s), 0
    fixed = model.prior_noise(16, torch.Generator().manual_seed(seed))
    for model, epoch, elapsed in epochs_in_cpu_time(model, train_data, out, seed, train_settings, chunk_steps):
        stage = model.growth()["stage"] if name == "progan" else 0
        if stage != last_stage or not pending[1:] and elapsed >= pending[0]:
            with torch.no_grad():
                stages.append((f"{4 << last_stage}x{4 << last_stage}", model.decode(fixed).clamp(0, 1)))
            last_stage = stage
        if elapsed < pending[0]:
            model.train()
            continue
        while pending and elapsed >= pending[0]:
            pending.pop(0)
        scores = compare_features(real, extractor(generate(model, n, seed)), METRICS, seed)
        keep({"set": set_name, "model": name, "minutes": elapsed / 60, "epochs": epoch, **scores,
              **({"stage_side": 4 << stage} if name == "progan" else {})})
        print(f"  {set_name} {name}: {elapsed / 60:.1f} min, epoch {epoch:.2f}: FID {scores['fid']:.2f}", flush=True)
        model.train()
        if not pending:
            return stages


def save_stages(stages, path: Path) -> None:
    """One row of 16 samples (the same z) per stage of progan's growth."""
    from genlab.viz import save_grid

    if stages:
        save_grid(torch.cat([images for _, images in stages]), path, nrow=16)
        print(f"  stages ({', '.join(label for label, _ in stages)}): {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--sets", nargs="*", default=["mnist32", "photos32"], choices=["mnist32", "photos32"])
    parser.add_argument("--only", nargs="*", choices=list(ENTRIES))
    parser.add_argument("--budgets", nargs="*", type=float, default=[5, 15, 30], help="minutes of training")
    parser.add_argument("--num-samples", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; the budgets are CPU time, "
                        "summed over them")
    parser.add_argument("--chunk-steps", type=int,
                        help=f"check the budgets every this many steps (0: at epoch ends only; default {CHUNK_STEPS}, "
                        "0 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sets, budgets of 5, 10 and 15 seconds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budgets_s = [5, 10, 15] if args.quick else [60 * b for b in args.budgets]
    data_dir = None if args.quick else mnist_data_dir(args.data_dir)
    rows, floors = [], {}
    name_of_results = "progan-quick" if args.quick else "progan"
    about = {"command": "python benchmarks/" + " ".join([Path(__file__).name, *sys.argv[1:]]),
             "side": SIDE, "num_samples": args.num_samples, "budgets_s": budgets_s, "machine": machine()}

    def keep(row: dict) -> None:   # each row lands as it is measured: a run cut short keeps its rows
        rows.append(row)
        merge_results(name_of_results, rows, about)

    for set_name in args.sets:
        train_data, test_data = datasets(set_name, data_dir, args.quick)
        n = min(args.num_samples, len(test_data), len(train_data))
        extractor, real, floor = sample_quality_reference(train_data, test_data, n, METRICS)
        floors[set_name] = {**floor, "set": set_name, "features": extractor.describe()}
        keep(floors[set_name])
        for name in args.only or ENTRIES:
            stages = benchmark(name, set_name, train_data, extractor, real, budgets_s, args.quick, n, keep,
                               args.chunk_steps if args.chunk_steps is not None else 0 if args.quick else CHUNK_STEPS)
            if name == "progan":
                save_stages(stages, RESULTS / f"progan-stages-{set_name}{'-quick' if args.quick else ''}.png")
    header = ["set", "model", "training (CPU min)", "epochs", "FID", "x floor", "KID"]
    table = [[r["set"], r["model"], r["minutes"], r["epochs"], r["fid"], r["fid"] / floors[r["set"]]["fid"],
              r["kid"]] for r in rows]   # this run's rows; the file holds the others' too
    print_table(header, table)
    print(f"written to {RESULTS / (name_of_results + '.json')}")


if __name__ == "__main__":
    main()
