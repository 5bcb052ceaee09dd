"""Diffusion samplers side by side: the cost of sampling (milliseconds per image) and the quality
of the samples (FID) for each sampler (DDIM, DPM-Solver++ 2M and 3M; ancestral DDPM, which always
takes all T steps) at 5, 10, 20, 50 and 250 steps.

    python benchmarks/diffusion_samplers.py cost [--batch 8] [--repeats 3] [--threads 2]
    python benchmarks/diffusion_samplers.py fid RUN [--num-samples 2000] [--data-dir DIR]
    python benchmarks/diffusion_samplers.py fid benchmarks/runs/diffusion-mnist-pixel-min-snr   # a run of benchmarks/diffusion.py

``cost`` times an untrained model of benchmarks/diffusion.py's architecture at 28 x 28 (the
network's cost does not depend on its weights): the fastest of a few batches per sampler and step
count after a warm-up batch, so the figures are per image at that batch size. ``fid`` draws ``--num-samples``
samples (eta 0, the averaged weights) from a trained diffusion run for each sampler and step count
and scores them against as many test images of the run's dataset, in the features of genlab's
classifier of that dataset (as benchmarks/diffusion.py), beside the real-data floor; the column
"x ddim-250" is each FID over DDIM's at 250 steps, the issue's targets being 1.10 at 20 steps and
1.25 at 10 for DPM-Solver++. Results: benchmarks/results/diffusion-samplers-cost.json
and diffusion-samplers-fid.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import genlab  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402
from genlab.families.diffusion.model import SAMPLERS  # noqa: E402
from genlab.metrics.sample_quality import compare_features  # noqa: E402
from genlab.registry import build_model  # noqa: E402

from common import machine, print_table, sample_quality_reference, write_results  # noqa: E402

STEPS = [5, 10, 20, 50, 250]
METRICS = ["fid", "kid"]


def step_counts(model, sampler: str, steps: list[int]) -> list[int]:
    """The step counts a sampler takes: ddpm all T, whatever is asked."""
    return [model.timesteps] if sampler == "ddpm" else steps


@torch.no_grad()
def draw(model, sampler: str, steps: int, n: int, seed: int = 0,
         batch_size: int = 500) -> tuple[torch.Tensor, float, float]:
    """``n`` samples (eta 0 for DDIM), and the seconds per image they took on the clock and of
    this process's CPU time (all threads; the clock's figure with one thread on an idle machine)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out, started, cpu = [], time.perf_counter(), time.process_time()
    for start in range(0, n, batch_size):
        noise = model.prior_noise(min(batch_size, n - start), generator)
        out.append(model.generate(noise, steps=steps, sampler=sampler, generator=generator)[0].cpu())
    return torch.cat(out), (time.perf_counter() - started) / n, (time.process_time() - cpu) / n


def cost(batch: int, steps: list[int], samplers: list[str], repeats: int) -> dict:
    """Milliseconds per image of each sampler and step count, on the clock and of CPU time: the
    fastest of ``repeats`` batches (one at 250 steps and over), the samplers taking turns so that a
    busy machine slows them alike."""
    from diffusion import MODEL   # here, not above: benchmarks/diffusion.py imports this module

    torch.manual_seed(0)
    model = build_model("diffusion", image_shape=(1, 28, 28), **MODEL).eval()
    draw(model, "ddim", 2, batch, batch_size=batch)  # warm-up
    best, cpu = {}, {}
    for n in sorted(set(steps) | ({model.timesteps} if "ddpm" in samplers else set())):
        runs = [s for s in samplers if n in step_counts(model, s, steps)]
        for _ in range(repeats if n < 250 else 1):
            for sampler in runs:
                _, seconds, cpu_seconds = draw(model, sampler, n, batch, batch_size=batch)
                best[sampler, n] = min(seconds, best.get((sampler, n), seconds))
                cpu[sampler, n] = min(cpu_seconds, cpu.get((sampler, n), cpu_seconds))
        print("  " + ", ".join(f"{s} {n} steps: {1000 * best[s, n]:.1f} ms/image" for s in runs), flush=True)
    rows = [{"sampler": s, "steps": n, "ms_per_image": 1000 * best[s, n], "cpu_ms_per_image": 1000 * cpu[s, n],
             "ms_per_image_step": 1000 * best[s, n] / n} for s in samplers for n in step_counts(model, s, steps)]
    return {"image_shape": [1, 28, 28], "model": MODEL, "weights": sum(p.numel() for p in model.net.parameters()),
            "batch": batch, "repeats": repeats, "rows": rows}


def fid(run_dir: str, num_samples: int, steps: list[int], samplers: list[str], data_dir=None,
        device: str = "cpu") -> dict:
    """FID and KID of each sampler and step count for the trained diffusion run at ``run_dir``,
    sampled on ``device`` (a GPU draws the same samples as the CPU up to rounding (in fp32, TF32 off): the starting
    noise comes from the CPU's generator; the milliseconds are then the GPU's)."""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32 as on the CPU
    run = genlab.load_run(run_dir, family="diffusion", map_location=device)
    train_data, test_data = run.dataset("train", data_dir), run.dataset("test", data_dir)
    n = min(num_samples, len(train_data), len(test_data))
    extractor, real, floor = sample_quality_reference(train_data, test_data, n, METRICS)
    rows = []
    for sampler in samplers:
        for k in step_counts(run.model, sampler, steps):
            images, per_image, _ = draw(run.model, sampler, k, n)
            scores = compare_features(real, extractor(images), METRICS)
            rows.append({"sampler": sampler, "steps": k, "ms_per_image": 1000 * per_image, **scores})
            print(f"  {sampler} {k} steps: FID {scores['fid']:.2f}, KID {scores['kid']:.3f}", flush=True)
    return {"run": str(run_dir), "dataset": run.dataset_name, "num_samples": n, "features": extractor.describe(),
            "floor": floor, "rows": rows, "device": device_name(device)}


def device_name(device: str) -> str:
    """``cpu``, or ``cuda (NVIDIA H100 80GB HBM3)``, say."""
    return device if device == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})"


def report_cost(data: dict) -> None:
    samplers = list(dict.fromkeys(r["sampler"] for r in data["rows"]))
    columns = sorted({r["steps"] for r in data["rows"] if r["sampler"] != "ddpm"})
    for key, what in (("ms_per_image", "ms per image on the clock"), ("cpu_ms_per_image", "CPU ms per image")):
        by = {(r["sampler"], r["steps"]): r[key] for r in data["rows"]}
        print(f"\n{what}, batches of {data['batch']} at 28 x 28, {data['weights']:,} weights, "
              f"{data['machine']['cpu_threads']} torch threads ({data['machine']['cpu']})")
        table = [[s] + [by.get((s, k), "-") for k in columns] for s in samplers if s != "ddpm"]
        table += [[f"ddpm ({k} steps)", v] + ["-"] * (len(columns) - 1) for (s, k), v in by.items() if s == "ddpm"]
        print_table(["sampler"] + [f"{k} steps" for k in columns], table)


def report_fid(data: dict) -> None:
    """The rows, each FID also over the floor's and over the reference: DDIM's FID at its most
    steps (250 by default), or the first sampler's without DDIM."""
    first = "ddim" if any(r["sampler"] == "ddim" for r in data["rows"]) else data["rows"][0]["sampler"]
    reference = max((r for r in data["rows"] if r["sampler"] == first), key=lambda r: r["steps"])
    print(f"\n{data['dataset']}: {data['num_samples']} samples against as many test images; features "
          f"{data['features']['features']}; floor FID {data['floor']['fid']:.2f}")
    print_table(["sampler", "steps", "FID", f"x {first}-{reference['steps']}", "x floor", "KID", "ms / image"],
                [[r["sampler"], r["steps"], r["fid"], r["fid"] / reference["fid"], r["fid"] / data["floor"]["fid"],
                  r["kid"], r["ms_per_image"]] for r in data["rows"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["cost", "fid"])
    parser.add_argument("run", nargs="?", help="fid: a trained diffusion run folder")
    parser.add_argument("--steps", nargs="*", type=int, default=STEPS)
    parser.add_argument("--samplers", nargs="*", default=list(SAMPLERS), choices=SAMPLERS)
    parser.add_argument("--batch", type=int, default=8, help="cost: images per timed batch (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="cost: batches timed per figure, the fastest kept "
                        "(default 3; 1 at 250 steps and over)")
    parser.add_argument("--num-samples", type=int, default=2000, help="fid: samples per figure (default 2000)")
    parser.add_argument("--data-dir")
    parser.add_argument("--results", help="results file name (benchmarks/results/NAME.json; default "
                        "diffusion-samplers-cost or -fid): runs of parts of a sweep at once keep apart")
    parser.add_argument("--device", default="cpu", help="fid: where to sample (cpu, or cuda: the figures do not "
                                                        "depend on it, the milliseconds do)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the issue's budget: 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "cost":
        data = cost(args.batch, sorted(args.steps), args.samplers, args.repeats)
        report = report_cost
    else:
        if not args.run:
            parser.error("fid needs a trained diffusion run folder")
        data = fid(args.run, args.num_samples, sorted(args.steps), args.samplers, args.data_dir, args.device)
        report = report_fid
    data = {**data, "machine": machine(), "command": " ".join(["python", *sys.argv])}
    report(data)
    print(f"written to {write_results(args.results or f'diffusion-samplers-{args.what}', data)}")


if __name__ == "__main__":
    main()
