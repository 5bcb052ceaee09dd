"""Latent against pixel diffusion at 64 x 64 colour: training images per second of each stage of
latent diffusion and of pixel diffusion with the same U-Net, one training step at a time.

    python benchmarks/latent_diffusion_speed.py [--batch 32] [--repeats 4] [--threads 1]

Untrained models (the cost does not depend on the weights) take steps of the trainer's own
``training_step`` on random images, fp32; each figure is the fastest of ``--repeats`` steps after
a warm-up step, the three models taking turns so that a busy machine slows them alike, on the
clock and in CPU time (this process's, all threads: with one thread, what a quiet machine gives).
Results: benchmarks/results/latent-diffusion-speed.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import genlab  # noqa: E402,F401  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402
from genlab.data.batch import Batch, StepNoise  # noqa: E402
from genlab.registry import build_model  # noqa: E402
from genlab.train.trainer import build_optimizers, training_step  # noqa: E402

from common import machine, print_table, write_results  # noqa: E402

SHAPE = (3, 64, 64)
#: the U-Nets compared: latent diffusion's default, and pixel diffusion's
UNETS = {"latent default": {"channels": 64, "channel_mults": (1, 2, 2)},
         "pixel default": {"channels": 32, "channel_mults": (1, 2)}}


def stepper(model, first_step: int, batch: int):
    """A function that takes one training step of ``model`` (from step ``first_step`` on) and
    returns its seconds on the clock and of CPU time."""
    optimizers = build_optimizers(model.train(), 1e-4)
    images = torch.rand(batch, *SHAPE, generator=torch.Generator().manual_seed(0))
    steps = iter(range(first_step, 2 ** 62))

    def step() -> tuple[float, float]:
        n = next(steps)
        data = Batch(images=images, labels=None, positions=torch.arange(batch), noise=StepNoise(0, n, batch))
        clock, cpu = time.perf_counter(), time.process_time()
        training_step(model, data, optimizers, n)
        return time.perf_counter() - clock, time.process_time() - cpu
    return step


def measure(batch: int, repeats: int) -> list[dict]:
    rows = []
    for name, unet in UNETS.items():
        torch.manual_seed(0)
        latent = build_model("latent-diffusion", image_shape=SHAPE, **unet)
        pixel = build_model("diffusion", image_shape=SHAPE, **unet)
        steps = {"latent stage 1 (autoencoder)": stepper(latent, 0, batch),
                 "latent stage 2 (denoiser)": stepper(latent, latent.config.autoencoder_steps, batch),
                 "pixel diffusion": stepper(pixel, 0, batch)}
        best = {k: (float("inf"), float("inf")) for k in steps}
        for i in range(repeats + 1):   # the first round warms up
            for what, step in steps.items():
                clock, cpu = step()
                if i:
                    best[what] = (min(best[what][0], clock), min(best[what][1], cpu))
        weights = {"latent U-Net": sum(p.numel() for p in latent.net.parameters()),
                   "autoencoder": sum(p.numel() for p in latent.autoencoder.parameters()),
                   "pixel U-Net": sum(p.numel() for p in pixel.net.parameters())}
        for what, (clock, cpu) in best.items():
            rows.append({"unet": name, **unet, "what": what, "images_per_s": batch / clock,
                         "images_per_cpu_s": batch / cpu, "weights": weights})
        print("  " + ", ".join(f"{r['what']}: {r['images_per_cpu_s']:.1f}" for r in rows[-3:]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = measure(args.batch, args.repeats)
    table = []
    for name, unet in UNETS.items():
        s1, s2, px = (r["images_per_cpu_s"] for r in rows if r["unet"] == name)
        table.append([f"{name}: channels={unet['channels']}, channel_mults={unet['channel_mults']}",
                      s1, s2, px, f"{s2 / px:.1f} x"])
    print(f"\ntraining images per CPU second, batch {args.batch} of 64 x 64 colour, {args.threads} thread(s)")
    print_table(["U-Net", "stage 1", "stage 2", "pixel", "stage 2 / pixel"], table)
    print("results:", write_results("latent-diffusion-speed", {"batch": args.batch, "repeats": args.repeats,
                                                                 "machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
