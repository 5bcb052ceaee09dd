"""The own-data pipeline: decoding a folder of mixed-size JPEGs into the cache, reading it back,
the memory it takes, and how long a DCGAN's training waits for its batches.

    python benchmarks/data_pipeline.py                 # 20,000 JPEGs of 100-400 px at --image-size 64
    python benchmarks/data_pipeline.py --images 2000   # a quick look

A folder of JPEGs of mixed sizes (smooth random pictures: gradients and discs, which compress as
photos do) is generated once in --folder. Then, each in a fresh process with its own empty cache:
decoding with 0, 1 and 2 worker processes (images/s); one epoch read from the cache in random
batches of 128 with random crops and flips (images/s); the peak memory (max RSS) of a process that
decodes a folder and reads an epoch, at 5,000 images and at all of them (target: within 20 % of
each other); and the share of a DCGAN's training at 64 x 64 spent in taking batches after the
first epoch (target: under 5 %). Writes benchmarks/results/data_pipeline.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_results  # noqa: E402


def make_folder(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` JPEGs of 100 to 400 px a side (independently), smooth pictures in 10 class folders."""
    from PIL import Image, ImageDraw

    done = folder / ".complete"
    if done.is_file() and int(done.read_text()) == count:
        return
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = (int(v) for v in rng.integers(100, 401, 2))
        y, x = np.mgrid[0:h, 0:w] / max(w, h)
        base = rng.random(3) * 255
        slope = (rng.random((2, 3)) - 0.5) * 255
        pixels = base + x[..., None] * slope[0] + y[..., None] * slope[1]
        img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(5, 60)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        path = folder / f"class{i % 10}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, quality=90)
    done.write_text(str(count))


def subset_folder(source: Path, target: Path, count: int) -> None:
    """The first ``count`` images of ``source`` (by name), hard-linked into ``target``."""
    if (target / ".complete").is_file():
        return
    files = sorted(p for p in source.rglob("*.jpg"))[:count]
    for p in files:
        link = target / p.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.link(p, link)
    (target / ".complete").write_text(str(count))


# ---- what each fresh process measures ------------------------------------------------------------

def measure_decode(spec: str) -> dict:
    """Decode the folder into an empty cache: images per second."""
    from genlab.data import load_dataset

    started = time.perf_counter()
    data = load_dataset(spec, "train")
    seconds = time.perf_counter() - started
    total = len(data) + len(load_dataset(spec, "test"))
    return {"images": total, "seconds": seconds, "images_per_s": total / seconds}


def measure_epoch(spec: str, batch_size: int = 128) -> dict:
    """Decode (if not cached) and read one epoch of random batches with their crops and flips:
    images per second of the read, and the process's peak memory."""
    import torch

    from genlab.data import load_dataset
    from genlab.data.augment import step_draws

    data = load_dataset(spec, "train")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    for step, start in enumerate(range(0, len(data), batch_size)):
        index = order[start:start + batch_size]
        data.batch(index, step_draws(0, step, len(index)))
    seconds = time.perf_counter() - started
    return {"images": len(data), "seconds": seconds, "images_per_s": len(data) / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_training(spec: str, images: int, batch_size: int, out: str) -> dict:
    """A DCGAN at the folder's size, two epochs on ``images`` of the folder (the cache written
    before): the share of the second epoch's time spent in taking batches."""
    import torch

    from genlab.data import ImageDataset, load_dataset
    from genlab.train import train

    data = load_dataset(spec, "train")
    data = data.subset(torch.arange(min(images, len(data))))
    spent = {"batch": 0.0}
    take = ImageDataset.batch

    def timed(self, index, draws=None):
        started = time.perf_counter()
        try:
            return take(self, index, draws)
        finally:
            spent["batch"] += time.perf_counter() - started

    train("dcgan", data, out_dir=out, epochs=1, batch_size=batch_size, snapshot_every=-1, progress=False)
    ImageDataset.batch = timed
    train(None, data, out_dir=out, epochs=2, resume=True, batch_size=batch_size, progress=False)
    seconds = json.loads((Path(out) / "metrics.jsonl").read_text().splitlines()[-1])["time_s"]
    return {"images": len(data), "epoch_s": seconds, "batch_s": spent["batch"],
            "waiting_share": spent["batch"] / seconds}


def in_fresh_process(what: str, cache: Path, workers: int | None, *args) -> dict:
    """Run ``measure_<what>(*args)`` in a new Python process with its own cache and workers."""
    env = {**os.environ, "GENLAB_CACHE": str(cache)}
    env.pop("GENLAB_WORKERS", None)
    if workers is not None:
        env["GENLAB_WORKERS"] = str(workers)
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import data_pipeline as d; "
            f"print('RESULT', json.dumps(d.measure_{what}(*{list(args)!r})))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--small", type=int, default=5000, help="the smaller folder of the memory comparison")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=2560, help="images of the DCGAN's epochs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "genlab-data-pipeline"))
    args = parser.parse_args()

    root = Path(args.folder)
    started = time.perf_counter()
    make_folder(root / "all", args.images)
    subset_folder(root / "all", root / "small", args.small)
    print(f"folder of {args.images} JPEGs ready ({time.perf_counter() - started:.0f} s)", flush=True)
    options = f",size={args.image_size},crop=random,augment=hflip"
    spec, small_spec = f"folder:{root / 'all'}{options}", f"folder:{root / 'small'}{options}"
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        decode = {w: in_fresh_process("decode", scratch / f"decode-{w}", w, spec) for w in (0, 1, 2)}
        for w, r in decode.items():
            print(f"decode, {w} workers: {r['images_per_s']:.0f} images/s", flush=True)
        cached = in_fresh_process("epoch", scratch / "decode-2", None, spec)   # the cache written above
        memory = {n: in_fresh_process("epoch", scratch / f"memory-{n}", None, s)
                  for n, s in ((args.small, small_spec), (args.images, spec))}
        training = in_fresh_process("training", scratch / "decode-2", None, spec, args.train_images,
                                    args.batch_size, str(scratch / "run"))
    small, large = memory[args.small]["peak_rss_mib"], memory[args.images]["peak_rss_mib"]
    rows = [[f"decode, {w} worker{'s' if w != 1 else ''}", f"{r['images_per_s']:.0f} images/s",
             f"{r['images']} images in {r['seconds']:.1f} s", ""] for w, r in decode.items()]
    rows += [["epoch from the cache (crops, flips)", f"{cached['images_per_s']:.0f} images/s",
              f"{cached['images']} images in {cached['seconds']:.2f} s", ""],
             [f"peak memory, {args.small} images", f"{small:.0f} MiB", "decode + one epoch", ""],
             [f"peak memory, {args.images} images", f"{large:.0f} MiB", "decode + one epoch",
              f"{'met' if large <= 1.2 * small else 'MISSED'}: within 20 % ({large / small - 1:+.1%})"],
             [f"DCGAN {args.image_size}x{args.image_size}, waiting for batches", f"{training['waiting_share']:.2%}",
              f"{training['batch_s']:.2f} s of a {training['epoch_s']:.1f} s epoch of {training['images']}",
              f"{'met' if training['waiting_share'] < 0.05 else 'MISSED'}: under 5 %"]]
    print_table(["measure", "value", "detail", "target"], rows)
    write_results("data_pipeline", {
        "command": "python benchmarks/" + " ".join([Path(__file__).name, *sys.argv[1:]]),
        "machine": machine(), "images": args.images, "image_size": args.image_size,
        "decode": {str(w): r for w, r in decode.items()}, "cached_epoch": cached,
        "memory": {str(n): r for n, r in memory.items()}, "training": training,
    })


if __name__ == "__main__":
    main()
