"""The per-epoch tax: how much of a training run's wall time goes outside the training steps.

    python benchmarks/epoch_overhead.py [--only vae vae-digits dcgan] [--threads 1] [--data-dir DIR]

For each model, two runs of ``genlab.train`` in fresh processes: ``before``, the end-of-epoch work
as genlab did it until now (a checkpoint and a snapshot at every epoch end, validation on the whole
test split: ``checkpoint_minutes=0, snapshot_budget=1, val_images=0``), and ``after``, genlab's
defaults (a checkpoint every ``checkpoint_minutes`` of training and at the end, snapshots within
``snapshot_budget`` of the training time, validation on a fixed subset of ``val_images``). The
wall time of the ``genlab.train`` call (the dataset already loaded) is split into the training
steps, validation, snapshots (with the final GIF), checkpoints, the metrics line and report of each
epoch, the start-up (from the call to the first step: building the model and optimizers, where
PyTorch imports ``torch._dynamo`` on the first optimizer, as plain code pays too) and the rest.
The end-of-epoch share (validation, snapshots, checkpoints, metrics) is what the defaults keep
under 5 %.

Each figure is a ratio of two times within one run, so it holds on a machine that other jobs share
(both parts slow down alike), unlike images per second. The models: genlab's default dense VAE
(784-512-256-16 with batch norm, batch 128) on MNIST, 2 epochs; the same on the embedded 8x8
digits (1,497 images, 11 steps an epoch: the default `genlab train vae`), 20 epochs; the DCGAN of
benchmarks/throughput.py (width 24, batch 64) on the digits at 28x28, 3 epochs. Writes
benchmarks/results/epoch-overhead.json (with --only, the other models' rows stay).
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genlab  # noqa: E402  (first: it sets the OpenMP waits before torch starts its threads)
import torch  # noqa: E402

from common import RESULTS, machine, mnist_data_dir, print_table, write_results  # noqa: E402
from throughput_worker import GAN  # noqa: E402

#: name -> (model, model settings, dataset, training settings)
MODELS = {
    "vae": ("vae", {}, "mnist", {"epochs": 2}),
    "vae-digits": ("vae", {}, "digits", {"epochs": 20}),
    "dcgan": ("dcgan", GAN, "digits28", {"epochs": 3, "batch_size": 64, "lr": 2e-4}),
}
VARIANTS = {"before": {"checkpoint_minutes": 0, "snapshot_budget": 1, "val_images": 0}, "after": {}}
#: the parts of a run outside its steps, and the trainer functions that do each
PARTS = {"validation": [("trainer", "evaluate_loss")],
         "snapshots": [("Trainer", "_snapshot"), ("Trainer", "_animate_snapshots")],
         "checkpoints": [("Trainer", "_checkpoint")],
         "metrics": [("Trainer", "_log"), ("Reporter", "epoch")]}
END_OF_EPOCH = ("validation", "snapshots", "checkpoints", "metrics")


def timed_run(name: str, variant: str, threads: int, data_dir: str) -> dict:
    """Seconds of one ``genlab.train`` call and of each of its parts, and how often each ran."""
    from genlab.data import load_dataset
    from genlab.train import TrainConfig, trainer
    from genlab.train.report import Reporter

    torch.set_num_threads(threads)
    model, settings, data, train_settings = MODELS[name]
    train_data, test_data = (load_dataset(data, split, data_dir) for split in ("train", "test"))
    seconds, calls, first_step = {"steps": 0.0}, {}, []
    owners = {"trainer": trainer, "Trainer": trainer.Trainer, "Reporter": Reporter}

    def timing(part, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            if part == "steps" and not first_step:
                first_step.append(started)
            try:
                return function(*args, **kwargs)
            finally:
                seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - started
                calls[part] = calls.get(part, 0) + 1
        return wrapper

    for part, places in {**PARTS, "steps": [("Trainer", "_step")]}.items():
        for owner, attribute in places:
            setattr(owners[owner], attribute, timing(part, getattr(owners[owner], attribute)))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        genlab.train(model, train_data, test_data, out_dir=Path(tmp) / "run", progress=False,
                     model_settings=settings, **train_settings, **VARIANTS[variant])
        wall = time.perf_counter() - started
        snapshots = len(list((Path(tmp) / "run" / "snapshots").glob("step-*.png")))
    seconds["start-up"] = first_step[0] - started
    validated = VARIANTS[variant].get("val_images", TrainConfig.val_images) or len(test_data)
    seconds["other"] = wall - sum(seconds.values())
    return {"wall_s": round(wall, 3), "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "share": {k: round(v / wall, 4) for k, v in seconds.items()},
            "end_of_epoch_share": round(sum(seconds.get(k, 0.0) for k in END_OF_EPOCH) / wall, 4),
            "outside_steps_share": round(1 - seconds["steps"] / wall, 4),
            "checkpoints": calls.get("checkpoints", 0), "snapshots": snapshots,
            "steps": calls["steps"], "epochs": train_settings["epochs"], "train_images": len(train_data),
            "val_images": min(validated, len(test_data))}


def measure(name: str, variant: str, threads: int, data_dir: str) -> dict:
    """:func:`timed_run` in a fresh process: each run pays its own start-up."""
    spec = json.dumps({"name": name, "variant": variant, "threads": threads, "data_dir": data_dir})
    done = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {variant} run of {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", help="where MNIST is (default: $GENLAB_DATA or ../shared/datasets)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(timed_run(**json.loads(args.worker))))
        return
    path = RESULTS / "epoch-overhead.json"
    results = json.loads(path.read_text()) if path.exists() and set(args.only) != set(MODELS) else {}
    results.update({"genlab": genlab.__version__, "variants": VARIANTS,
                    "note": "shares of the wall time of one genlab.train call, each a ratio within one run"})
    rows = results.setdefault("models", {})
    for name in args.only:
        model, settings, data, train_settings = MODELS[name]
        rows[name] = {"model": model, "model_settings": settings, "data": data, "train": train_settings,
                      "command": "python benchmarks/epoch_overhead.py " + " ".join(sys.argv[1:]),
                      "machine": machine() | {"cpu_threads": args.threads},
                      **{variant: measure(name, variant, args.threads, str(mnist_data_dir(args.data_dir)))
                         for variant in VARIANTS}}
        print(f"  {name}: end-of-epoch work {100 * rows[name]['before']['end_of_epoch_share']:.1f} % before, "
              f"{100 * rows[name]['after']['end_of_epoch_share']:.1f} % after", flush=True)
    results["models"] = rows = {k: rows[k] for k in MODELS if k in rows}
    columns = ["steps", *END_OF_EPOCH, "start-up", "other"]
    print("\nshare of the wall time of a run, % (checkpoints and snapshots: how many)")
    print_table(["model", "run", "epochs", "wall s", *columns, "end of epoch", "outside steps", "ckpt", "snap"],
                [[name, variant, r["epochs"], r["wall_s"], *(100 * r["share"].get(c, 0.0) for c in columns),
                  100 * r["end_of_epoch_share"], 100 * r["outside_steps_share"], r["checkpoints"], r["snapshots"]]
                 for name, row in rows.items() for variant, r in row.items() if variant in VARIANTS])
    print(f"written to {write_results('epoch-overhead', results)}")


if __name__ == "__main__":
    main()
