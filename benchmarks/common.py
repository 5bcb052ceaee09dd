"""Helpers shared by the benchmarks: where MNIST is, how long a run trained, the reference of the
sample-quality benchmarks, photo patches labelled with their photo, and how results are printed,
written and merged."""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: the model name of the real-data floor's row (training images against test images)
FLOOR_MODEL = "real data (train vs test)"


def mnist_data_dir(explicit: str | None) -> Path:
    """--data-dir, else $GENLAB_DATA, else ../shared/datasets beside the repository."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("GENLAB_DATA"):
        return Path(os.environ["GENLAB_DATA"]).expanduser()
    return ROOT.parent / "shared" / "datasets"


def machine() -> dict:
    """What ran a benchmark: figures from CPUs of different kinds (with and without native bf16,
    say) are not comparable."""
    from genlab.train.trainer import native_bf16

    return {"cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": native_bf16(torch.device("cpu")), "torch": torch.__version__,
            "python": platform.python_version(), "device": "cuda" if torch.cuda.is_available() else "cpu"}


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo, else the platform's word)."""
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_table(header: list[str], rows: list[list]) -> None:
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in [header] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


#: The training settings the recorded quality runs (likelihood, GAN, diffusion) were made with:
#: genlab's VAEs, GANs and diffusion models now train with bf16 autocast (where the hardware has
#: it), the fused AdamW and, for the GANs, channels-last by default (benchmarks/throughput.py).
#: Those benchmarks train with these, so a rerun repeats its recorded run.
AS_RECORDED = {"precision": "fp32", "channels_last": False, "fused_optimizer": False}


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def results_lock(name: str):
    """The file lock of RESULTS/NAME.json, for a read-modify-write by one of several processes."""
    from filelock import FileLock

    return FileLock(str(RESULTS / f"{name}.json") + ".lock")


def merge_results(name: str, rows: list[dict], about: dict, key=None) -> Path:
    """Write ``rows`` into RESULTS/NAME.json in place of the rows of the same set and model (and
    floor), keeping the others when they were measured the same way (the same values of every
    setting in ``about`` but its ``command`` and ``machine``: samples, budgets), under a file lock,
    so that runs at once, one model each, all land. With ``key`` (a row's identity), only the rows
    of the same key are replaced: runs at once that measure other rows of one model all land. The
    file's ``runs`` names the command and machine of each set and model."""
    path = RESULTS / f"{name}.json"
    with results_lock(name):
        old = json.loads(path.read_text()) if path.exists() else {}
        same = all(old.get(k) == v for k, v in about.items() if k not in ("command", "machine"))
        mine = {(r["set"], r["model"]) for r in rows}
        if key is None:
            kept = [r for r in old.get("rows", []) if same and (r["set"], r["model"]) not in mine]
        else:
            new = {key(r) for r in rows}
            kept = [r for r in old.get("rows", []) if same and key(r) not in new]
        runs = {**(old.get("runs", {}) if same else {}),
                **{f"{s}/{m}": {"command": about["command"], "machine": about["machine"]}
                   for s, m in mine if m != FLOOR_MODEL}}
        return write_results(name, {**about, "rows": kept + rows, "runs": runs})


def epochs_in_cpu_time(model, train_data, out: Path, seed: int, train_settings: dict, chunk_steps: int = 0):
    """Train ``model`` one more epoch at a time (or, with ``chunk_steps``, that many more steps at a
    time, through the trainer's ``max_steps``: a run stopped mid-epoch goes on exactly), resuming
    its run folder ``out`` (no snapshots, the recorded runs' precision and layout, then
    ``train_settings``), and yield ``(model, epochs, seconds)`` after each: the epochs trained
    (a fraction between epoch ends) and the CPU time of this process spent in training so far,
    which other work on the machine does not change with one thread."""
    import genlab

    chunk, elapsed = 0, 0.0
    # the steps of an epoch (the trainer drops a ragged last batch), for the epochs of a chunk
    per_epoch = max(len(train_data) // train_settings.get("batch_size", 1), 1) if chunk_steps else 1
    while True:
        chunk += 1
        started = time.process_time()
        limits = {"epochs": 10_000, "max_steps": chunk * chunk_steps} if chunk_steps else {"epochs": chunk}
        model = genlab.train(model, train_data, None, out_dir=out, resume=chunk > 1,
                             progress=sys.stderr.isatty(), seed=seed, snapshot_every=-1,
                             **{**AS_RECORDED, **train_settings, **limits})
        elapsed += time.process_time() - started
        yield model, (chunk * chunk_steps / per_epoch if chunk_steps else chunk), elapsed


def train_time(run_dir: Path) -> float:
    """Seconds of training of a run folder, summed over its epochs (evaluation not counted)."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return sum(json.loads(line)["time_s"] for line in lines if line.strip())


def sample_quality_reference(train_data, test_data, n: int, metrics: list[str]):
    """(feature extractor, features of ``n`` test images (all of them, or a seeded random subset),
    floor row): genlab's cached classifier of the dataset, and the scores of ``n`` random training
    images against those test images, the best a model can expect."""
    from genlab.metrics.features import feature_extractor
    from genlab.metrics.sample_quality import compare_features

    started = time.perf_counter()
    extractor = feature_extractor("classifier", train_data, test_data)
    print(f"features: {extractor.name}, test accuracy {extractor.test_accuracy:.4f} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    # A random subset when n is short of the test split: MNIST's test images are not shuffled (the
    # first 5,000 are cleaner and easier than the last 5,000, after MNIST's own description).
    test_images = test_data.tensors()[0]
    if n < len(test_images):
        test_images = test_images[torch.randperm(len(test_images), generator=torch.Generator().manual_seed(1))[:n]]
    real = extractor(test_images)
    order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(0))
    floor = {"model": FLOOR_MODEL, "minutes": 0.0, "epochs": 0,
             **compare_features(real, extractor(train_data.batch(order[:n]).images), metrics)}
    return extractor, real, floor


def photo_patches(split: str, count: int, seed: int, side: int = 32, name: str | None = None):
    """``count`` ``side`` x ``side`` patches (uint8) at seeded random positions of the colour photos
    of both of genlab's ``photos`` splits, labelled with their photo (a class for the feature
    classifier, which then sees colour and texture); ``test`` draws its positions with another seed.
    The dataset is named ``name`` (default ``photos{side}``): the feature classifier is cached by it."""
    import numpy as np
    from genlab.data import ImageDataset
    from genlab.data.photos import TEST_PHOTOS, TRAIN_PHOTOS, cut_patches, patch_positions, source_photos

    photos = source_photos("train") + source_photos("test")   # the photos of both of genlab's splits
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    source, top, left = patch_positions(photos, count, side, rng)
    images = torch.from_numpy(cut_patches(photos, source, top, left, side))
    return ImageDataset(images=images, labels=torch.from_numpy(source.astype(np.int64)), name=name or f"photos{side}",
                        split=split, class_names=[*TRAIN_PHOTOS, *TEST_PHOTOS])
