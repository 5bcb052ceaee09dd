"""Diffusion benchmark on MNIST: FID and KID against training time and against the number of
DDIM sampling steps, with the sampling time per image, next to the GAN's figures at the same
training budgets and the real-data floor (training images against test images).

The model trains epoch by epoch (resuming its run folder) until its training time passes each
budget (5, 15 and 30 minutes by default, as benchmarks/gan.py); at the first epoch end past a
budget, N samples (DDIM, eta = 0, from the moving average of the weights) are compared with the N
test images in the feature space of genlab's MNIST classifier, once for each number of steps
(10 and 50; 250 too after the last budget, where it costs most). Times count training only; the
sampling time per image is measured on its own, for batches of 500. The GAN rows are read from
benchmarks/results/gan.json (gan-quick.json with --quick) when benchmarks/gan.py has been run;
they use 10,000 samples where this uses 2,000 by default (on one busy core a 250-step sample took
1.05 s, so 2,000 of them take 35 minutes): KID is unbiased and compares across sample sizes, FID is
biased upwards for fewer samples (``--num-samples 10000`` to match).

    python benchmarks/diffusion.py [--data-dir DIR] [--budgets 5 15 30] [--steps 10 50 250] [--threads 2]
    python benchmarks/diffusion.py --table   # the saved table again, beside the GAN's latest rows
    python benchmarks/diffusion.py --more-steps 250   # the last model of the saved run at 250 steps too
    python benchmarks/diffusion.py --quick   # digits28, budgets of seconds: checks the harness in a few minutes

MNIST is read from DIR/mnist (default: $GENLAB_DATA, else ../shared/datasets). Results go to
benchmarks/results/diffusion.json (diffusion-quick.json with --quick); the run folder to benchmarks/runs/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import genlab  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402
from genlab.metrics.sample_quality import compare_features  # noqa: E402
from genlab.registry import build_model

from common import (AS_RECORDED, RESULTS, ROOT, machine, mnist_data_dir, print_table,  # noqa: E402
                    sample_quality_reference, train_time, write_results)

# Widths 16, 32 and 32 at 28x28, 14x14 and 7x7 (attention at 7x7 and in the middle): 0.28 M weights;
# an MNIST epoch (938 steps of 64 images) took 8 to 10 minutes on one busy core (width 32: three
# times slower, too coarse for a 5-minute budget). A constant learning rate: the
# run's length is a time budget, not a number of epochs.
MODEL = {"channels": 16, "channel_mults": (1, 2, 2), "attention_resolution": 7, "ema_decay": 0.999}
TRAIN = {"batch_size": 64, "lr": 2e-3}
QUICK_MODEL = {**MODEL, "ema_decay": 0.99}  # a few dozen steps: a shorter average
METRICS = ["fid", "kid"]


@torch.no_grad()
def timed_samples(model, n: int, steps: int, seed: int = 0, batch_size: int = 500) -> tuple[torch.Tensor, float]:
    """``n`` DDIM samples (eta = 0) with ``steps`` steps, and the seconds per image it took."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out, started = [], time.perf_counter()
    for start in range(0, n, batch_size):
        noise = model.prior_noise(min(batch_size, n - start), generator)
        out.append(model.generate(noise, steps=steps, eta=0.0)[0].cpu())
    return torch.cat(out), (time.perf_counter() - started) / n


def benchmark(train_data, extractor, real, budgets_s, step_counts, quick, num_samples, seed=0):
    """Rows (model, minutes, epochs, steps, fid, kid, kid_std, ms_per_image) at each budget."""
    settings = QUICK_MODEL if quick else MODEL
    out = ROOT / "benchmarks" / "runs" / f"diffusion{'-quick' if quick else ''}"
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    model = build_model("diffusion", image_shape=train_data.image_shape, **settings)
    rows, epoch, pending = [], 0, list(budgets_s)
    while pending:
        epoch += 1
        model = genlab.train(model, train_data, None, out_dir=out, epochs=epoch, resume=epoch > 1,
                             progress=sys.stderr.isatty(), seed=seed, snapshot_every=-1,
                             **{**AS_RECORDED, **TRAIN})
        elapsed = train_time(out)
        if elapsed < pending[0]:
            continue
        while pending and elapsed >= pending[0]:
            pending.pop(0)
        for steps in step_counts if not pending else [s for s in step_counts if s <= 50]:
            rows.append(evaluate(model, elapsed / 60, epoch, steps, extractor, real, num_samples, seed))
        model.train()
    return rows


def evaluate(model, minutes, epoch, steps, extractor, real, num_samples, seed=0) -> dict:
    """One row: ``num_samples`` samples of ``steps`` DDIM steps scored against ``real``."""
    images, per_image = timed_samples(model, num_samples, steps, seed)
    scores = compare_features(real, extractor(images), METRICS, seed)
    print(f"  diffusion: {minutes:.1f} min, epoch {epoch}, {steps} steps: FID {scores['fid']:.2f}, "
          f"KID {scores['kid']:.3f} +- {scores['kid_std']:.3f}, {1000 * per_image:.1f} ms/image", flush=True)
    return {"model": "diffusion", "minutes": minutes, "epochs": epoch, "steps": steps,
            "ms_per_image": 1000 * per_image, **scores}


def more_steps(data: dict, step_counts: list[int], data_dir, quick: bool) -> dict:
    """``data`` (a saved results file) with rows for the finished run's last model at more step
    counts, scored against the same test images in the same feature space."""
    run = genlab.load_run(ROOT / "benchmarks" / "runs" / f"diffusion{'-quick' if quick else ''}")
    train_data = genlab.load_dataset(data["dataset"], "train", data_dir)
    test_data = genlab.load_dataset(data["dataset"], "test", data_dir)
    extractor, real, floor = sample_quality_reference(train_data, test_data, data["num_samples"], METRICS)
    if extractor.describe() != data["features"] or abs(floor["fid"] - data["floor"]["fid"]) > 1e-6:
        raise SystemExit("the feature network or the test images differ from the saved run's: rerun the benchmark")
    last = max(data["rows"], key=lambda r: r["epochs"])
    rows = [evaluate(run.model, last["minutes"], last["epochs"], steps, extractor, real, data["num_samples"])
            for steps in step_counts]
    return {**data, "rows": data["rows"] + rows, "steps": sorted(set(data["steps"]) | set(step_counts))}


def gan_rows(quick: bool) -> list[dict]:
    """The GAN benchmark's rows (not its floor), if it has been run, with one sampling step."""
    path = RESULTS / f"gan{'-quick' if quick else ''}.json"
    if not path.exists():
        print(f"  (no {path.name}: run benchmarks/gan.py{' --quick' if quick else ''} for the GAN rows)")
        return []
    data = json.loads(path.read_text())
    floor = next((r["fid"] for r in data["rows"] if r["model"].startswith("real data")), None)
    return [{**r, "steps": 1, "num_samples": data["num_samples"], "floor_fid": floor, "source": path.name}
            for r in data["rows"] if not r["model"].startswith("real data")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--budgets", nargs="*", type=float, default=[5, 15, 30], help="minutes of training")
    parser.add_argument("--steps", nargs="*", type=int, default=[10, 50, 250], help="DDIM steps to compare")
    parser.add_argument("--num-samples", type=int, default=2000,
                        help="samples per figure (default 2000)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the issue's budget: 2 cores)")
    parser.add_argument("--quick", action="store_true",
                        help="digits28, budgets of 5, 10 and 15 seconds, 100 samples")
    parser.add_argument("--table", action="store_true",
                        help="no training: print the saved results again beside the GAN's latest rows")
    parser.add_argument("--more-steps", nargs="*", type=int, metavar="STEPS",
                        help="no training: add rows for the saved run's last model at these step counts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.table or args.more_steps:
        path = RESULTS / f"diffusion{'-quick' if args.quick else ''}.json"
        if not path.exists():
            raise SystemExit(f"no {path}: run benchmarks/diffusion.py{' --quick' if args.quick else ''} first")
        data = json.loads(path.read_text())
        if args.more_steps:
            data = more_steps(data, args.more_steps, None if args.quick else mnist_data_dir(args.data_dir),
                              args.quick)
        report(data, args.quick)
        return

    if args.quick:
        dataset, data_dir, budgets_s = "digits28", None, [5, 10, 15]  # as benchmarks/gan.py --quick
    else:
        dataset, data_dir, budgets_s = "mnist", mnist_data_dir(args.data_dir), [60 * b for b in args.budgets]
    train_data = genlab.load_dataset(dataset, "train", data_dir)
    test_data = genlab.load_dataset(dataset, "test", data_dir)
    n = min(100 if args.quick else args.num_samples, len(test_data), len(train_data))
    extractor, real, floor = sample_quality_reference(train_data, test_data, n, METRICS)
    rows = benchmark(train_data, extractor, real, budgets_s, sorted(args.steps), args.quick, n)
    report({"dataset": dataset, "num_samples": n, "features": extractor.describe(), "budgets_s": budgets_s,
            "steps": sorted(args.steps), "model": QUICK_MODEL if args.quick else MODEL, "train": TRAIN,
            "floor": floor, "rows": rows, "machine": machine(), "command": " ".join(sys.argv)}, args.quick)


def report(data: dict, quick: bool) -> None:
    """Print the table of ``data`` (diffusion rows and floor) beside the GAN rows, and write it."""
    rows, floor, n = data["rows"], data["floor"], data["num_samples"]
    others = gan_rows(quick)
    header = ["model", "training (min)", "epochs", "steps", "FID", "x floor", "KID", "KID std", "ms / image"]
    # "x floor": each FID over the floor measured with the same number of samples (the GAN's own).
    table = [[r["model"], r["minutes"], r["epochs"], r.get("steps", "-"), r["fid"],
              r["fid"] / (r.get("floor_fid") or floor["fid"]),
              r["kid"], r["kid_std"], r.get("ms_per_image", "-")]
             for r in sorted(rows + others, key=lambda r: (r["minutes"], r["model"], r.get("steps", 0)))]
    table.insert(0, [floor["model"], 0.0, 0, "-", floor["fid"], 1.0, floor["kid"], floor["kid_std"], "-"])
    features, accuracy = data["features"]["features"], data["features"].get("feature_classifier_test_accuracy")
    features += f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""
    print(f"\n{data['dataset']}: {n} samples against {n} test images; features {features}; "
          f"{data['machine']['cpu_threads']} torch threads; diffusion sampled by DDIM (eta 0) from its averaged weights")
    print_table(header, table)
    if others and any(r.get("num_samples", n) != n for r in others):
        print("note: the GAN rows were measured with another number of samples: compare KID (unbiased), "
              "not FID (biased upwards for fewer samples)")
    path = write_results("diffusion-quick" if quick else "diffusion", {**data, "gan_rows": others})
    print(f"written to {path}")

if __name__ == "__main__":
    main()
