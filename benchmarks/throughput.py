"""Training and sampling speed: genlab against the plain PyTorch code users would write.

    python benchmarks/throughput.py [--threads 1 2] [--steps 40] [--rounds 2] [--only vae dcgan cgan diffusion porous]
                                    [--compile] [--results throughput]
    python benchmarks/throughput.py --device cuda [--steps 100]    # on a GPU: benchmarks/results/throughput-cuda.json
    python benchmarks/throughput.py --processes [--only vae dcgan] [--rounds 2]   # threads or processes: throughput-processes.json

(--only measures those models again and keeps the other models' rows of the results file;
--results names that file, so that runs on CPUs of different kinds can stand side by side.)

For each model, in one run and alternating (reference, genlab, each lever, ...) so that noise
falls on all: training images per second of a straightforward reference loop (a DataLoader over
the same images, the same architecture, loss, optimizer and batch, ``loss.item()`` each step, as
the common examples do) and of ``genlab.train`` with its defaults, their ratio, and genlab with
each speed lever alone: plain fp32, bf16 autocast, bf16 with channels-last convolutions, and its
defaults with sleeping OpenMP waits (``OMP_WAIT_POLICY=PASSIVE``, genlab's earlier setting). The
bf16 runs are left out on a CPU without native bf16 (AVX-512 BF16 or AMX), where PyTorch emulates
it at a fraction of the fp32 speed and genlab's ``precision="auto"`` trains in fp32. With
--compile, also genlab's defaults with its networks compiled (``torch.compile``): the steps of a
second epoch, and the compile time (what the first epoch took beyond them) beside, each run with
an empty inductor cache, as a user's first run has.
Every run is a fresh process (benchmarks/throughput_worker.py), so that each side has the OpenMP
settings it has on its own: PyTorch's defaults for the reference, genlab's for genlab. Also the
model's FLOPs per training image (forward and backward, torch's FlopCounterMode), the fraction
of the machine's matmul rate (fp32 and bf16, measured in the same run) each reaches, where
genlab's step spends its time (torch.profiler), and DDIM sampling: images per second at 10 and
50 steps, and the time to a 64-image grid at 50 steps.

With --processes, threads against processes, as a user runs genlab: ``genlab train MODEL --data mnist``
(digits28 where MNIST is not in $GENLAB_DATA) with the family's defaults (its batch size, its
network) for a fixed number of steps (``--max-steps``), whole processes timed on the clock, in one
process with 2 threads (``--threads 2``), in 2 processes of one thread each (``--nproc 2``:
PyTorch's DDP over gloo, the batch split between them), in one process of one thread, and with
genlab's default (``--threads 0``: fewer threads when other processes keep cores busy); on quiet cores and with another job on one core (a process spinning, as a shared
workstation or CI runner has). Each row gives the training images per second (the steps' time,
``trained_s`` of the run) and the whole process's wall time (start-up and checkpoints included).

With --device cuda, the same models on a GPU, each model's runs in one worker process (CUDA starts
once; a short warm-up run of each side first, not counted): the reference loop (fp32, each batch
moved to the GPU as it comes, ``loss.item()`` each step), genlab's defaults there (bf16 autocast
where the GPU has it, channels-last for the conv GANs, the fused AdamW, the losses read back every
25 steps), and genlab with each lever: plain fp32, bf16, fp16 (with its gradient scaler), and the
losses read back at every step as the reference does. No profile or torch.compile rows there.

The models: the VAE 784-400-20 of the PyTorch examples (Bernoulli, grey targets, Adam 1e-3,
batch 128); the DCGAN and the conditional GAN at 28x28 with the settings of benchmarks/gan.py
(width 24, batch 64); the diffusion U-Net of benchmarks/diffusion.py (batch 64); the 3-D GAN
for porous media at the paper's 64^3 cubes with its family's defaults (width 8, batch 16, binary
random cubes, instance noise 0.5, without the cube symmetries). The reference GANs and VAE are
written out in the worker; the reference diffusion loop trains genlab's U-Net
module (writing a second U-Net would measure the writing, not the loop). Quality with and
without the levers is benchmarks/precision.py's. Writes benchmarks/results/throughput.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORIGINAL_ENV = dict(os.environ)  # before genlab sets its OpenMP waits: what the reference code gets
sys.path.insert(0, str(Path(__file__).resolve().parent))
import genlab  # noqa: E402  (first: it sets the OpenMP waits before torch starts its threads)
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from common import machine, print_table, write_results  # noqa: E402
from genlab.registry import build_model
from genlab.train.trainer import CHANNELS_LAST, native_bf16, to_channels_last  # noqa: E402
from throughput_worker import DIFFUSION, ENTRIES, SHAPE, describe, shape_of, speed_defaults, synchronize  # noqa: E402

WORKER = Path(__file__).resolve().parent / "throughput_worker.py"
PASSIVE_ENV = {**{k: v for k, v in ORIGINAL_ENV.items() if k != "GOMP_SPINCOUNT"}, "OMP_WAIT_POLICY": "PASSIVE"}
#: the runs of each round: (column, who, genlab settings over the family's defaults, environment):
#: genlab's defaults, genlab with every lever off, the precision levers alone, and the defaults
#: less one lever (the fused optimizer; the short OpenMP spin)
VARIANTS = [("reference", "reference", {}, ORIGINAL_ENV),
            ("genlab", "genlab", {}, dict(os.environ)),
            ("plain fp32", "genlab", {"precision": "fp32", "channels_last": False, "fused_optimizer": False},
             dict(os.environ)),
            ("bf16", "genlab", {"precision": "bf16", "channels_last": False}, dict(os.environ)),
            ("bf16 + channels-last", "genlab", {"precision": "bf16", "channels_last": True}, dict(os.environ)),
            ("multi-tensor AdamW", "genlab", {"fused_optimizer": False}, dict(os.environ)),
            ("passive waits", "genlab", {}, PASSIVE_ENV)]
COMPILED = ("compiled", "genlab", {"compile": True}, dict(os.environ))
CONV = ("dcgan", "cgan", "diffusion", "porous")
#: the VAE's steps take milliseconds: ten times as many, for a steadier timing; the 3-D GAN's take
#: seconds: a quarter as many
STEPS_FACTOR = {"vae": 10, "porous": 0.25}


def measure(who: str, name: str, steps: int, threads: int, settings: dict, env: dict) -> dict:
    """The worker's timing of one run in a fresh process with ``env``."""
    spec = {"who": who, "name": name, "steps": steps, "threads": threads, "settings": settings}
    with tempfile.TemporaryDirectory() as cache:  # a compiled run starts from an empty cache
        env = {**env, "TORCHINDUCTOR_CACHE_DIR": cache} if settings.get("compile") else env
        done = subprocess.run([sys.executable, str(WORKER), json.dumps(spec)], env=env, capture_output=True,
                              text=True)
    if done.returncode:
        raise SystemExit(f"the {who} run of {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- the machine and the model
def matmul_rate(dtype: torch.dtype, n: int = 1024, repeats: int = 20, device: str = "cpu") -> float:
    """GFLOP/s of an n x n matrix product in ``dtype`` on the current threads (or the GPU)."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - started) / 1e9


def flops_per_image(name: str) -> float:
    """FLOPs of one training step per image (forward and backward of every objective)."""
    model_name, settings, train_settings = ENTRIES[name]
    model = build_model(model_name, image_shape=shape_of(name), num_classes=10, **settings)
    from genlab.data.batch import Batch
    from genlab.train.trainer import build_optimizers, training_step

    n = train_settings["batch_size"]
    batch = Batch(torch.rand(n, *shape_of(name)), torch.randint(0, 10, (n,)))
    optimizers = build_optimizers(model, 1e-3)
    counter = FlopCounterMode(display=False)
    with counter:
        training_step(model, batch, optimizers, 0)
    return counter.get_total_flops() / n


def speed_row(speed: dict, seconds: dict, walls: list, n: int, flops: float, rates: dict, digits: int) -> dict:
    """The figures of one model's row: images per second of each run (``speed``), each over the
    reference's (where it ran), genlab's on the clock (``walls``: its whole calls, ``n`` images),
    the rounds' ``seconds``, FLOPs per image and the fraction of each matmul rate reached."""
    base = speed.get("reference")
    return {"images_per_s": {k: round(v, 1) for k, v in speed.items()},
            "ratio": {k: round(v / base, 3) for k, v in speed.items() if k != "reference" and base},
            "genlab_wall_images_per_s": round(n / min(walls), 1) if walls else None,
            "seconds_per_round": {k: [round(x, digits) for x in v] for k, v in seconds.items()},
            "mflop_per_image": round(flops / 1e6, 2),
            "fraction_of_rate": {k: {p: round(v * flops / 1e9 / rates[p], digits) for p in rates}
                                 for k, v in speed.items()}}


def profile(name: str, steps: int = 10) -> dict:
    """Where genlab's training step (with its default settings) spends its time: the share of the
    wall time inside PyTorch's operators (the rest is Python), and the operators that take the
    most, by torch.profiler. The batch is already in memory: the data takes no time here."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from genlab.data.batch import Batch, StepNoise
    from genlab.train.trainer import build_optimizers, training_step

    model_name, settings, train_settings = ENTRIES[name]
    model = build_model(model_name, image_shape=shape_of(name), num_classes=10, **settings).train()
    levers = speed_defaults(model_name)  # genlab's step as it runs by default
    n = train_settings["batch_size"]
    x, y = torch.rand(n, *shape_of(name)), torch.randint(0, 10, (n,))
    if levers["channels_last"]:
        to_channels_last(model)
        x = x.contiguous(memory_format=CHANNELS_LAST[x.dim()])
    optimizers = build_optimizers(model, 1e-3, fused=levers["fused_optimizer"])

    def step(i):
        training_step(model, Batch(x, y, positions=torch.arange(n), noise=StepNoise(0, i, n)), optimizers, i,
                      precision=levers["precision"])

    step(0)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for i in range(1, steps + 1):
            step(i)
        wall = time.perf_counter() - started
    events = prof.key_averages()
    in_ops = sum(e.self_cpu_time_total for e in events) / 1e6
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:5]
    return {"ms_per_step": round(1000 * wall / steps, 2), "share_in_operators": round(min(in_ops / wall, 1.0), 3),
            "top_operators": [[e.key, round(e.self_cpu_time_total / 1e3 / steps, 2)] for e in top]}


def sampling(steps_list=(10, 50), device: str = "cpu") -> dict:
    model = build_model("diffusion", image_shape=SHAPE, **DIFFUSION).eval().to(device)
    rows = {}
    for steps in steps_list:
        noise = torch.randn(64, math.prod(SHAPE))
        model.generate(noise[:4], steps=2)  # warm-up
        synchronize(device)
        started = time.perf_counter()
        model.generate(noise, steps=steps)
        synchronize(device)
        seconds = time.perf_counter() - started
        rows[steps] = {"images_per_s": round(64 / seconds, 1), "grid_64_s": round(seconds, 2)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of every run")
    parser.add_argument("--only", nargs="*", choices=list(ENTRIES), default=list(ENTRIES))
    parser.add_argument("--compile", action="store_true", help="also genlab's defaults with torch.compile")
    parser.add_argument("--results", help="name of the results file (benchmarks/results/NAME.json; default "
                                           "throughput, or throughput-cuda with --device cuda)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: the GPU table")
    parser.add_argument("--processes", action="store_true", help="threads against processes, quiet and busy cores")
    args = parser.parse_args()
    if args.processes:
        return main_processes(args)
    if args.device != "cpu":
        return main_gpu(args)
    args.results = args.results or "throughput"
    bf16 = native_bf16(torch.device("cpu"))
    table = [v for v in VARIANTS if bf16 or "bf16" not in v[0]] + [COMPILED] * args.compile
    about = machine()
    print(f"{about['cpu']} ({about['cpu_capability']}, bf16 {'native' if bf16 else 'emulated: its runs left out'})")

    results = {"machine": about, "genlab": genlab.__version__, "steps": args.steps,
               "steps_factor": STEPS_FACTOR, "rounds": args.rounds, "threads": {},
               "openmp": {"genlab": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
                          "reference": {k: ORIGINAL_ENV.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = {"fp32": matmul_rate(torch.float32), **({"bf16": matmul_rate(torch.bfloat16)} if bf16 else {})}
        rows = {}
        for name in args.only:
            steps = max(2, round(args.steps * STEPS_FACTOR.get(name, 1)))
            n = steps * ENTRIES[name][2]["batch_size"]
            variants = [v for v in table if name in CONV or "channels-last" not in v[0]]
            seconds: dict[str, list[float]] = {v[0]: [] for v in variants}
            walls, compiling = [], []
            for _ in range(args.rounds):
                for column, who, settings, env in variants:
                    timing = measure(who, name, steps, threads, settings, env)
                    seconds[column].append(timing["seconds"])
                    if column == "genlab":
                        walls.append(timing["wall_seconds"])
                    if "compile_seconds" in timing:
                        compiling.append(timing["compile_seconds"])
            speed = {k: n / min(v) for k, v in seconds.items()}
            flops = flops_per_image(name)
            used = speed_defaults(ENTRIES[name][0])
            rows[name] = {"genlab_settings": describe(used),
                          **speed_row(speed, seconds, walls, n, flops, rates, digits=3),
                          "profile": profile(name),
                          **({"compile_seconds": [round(x, 1) for x in compiling]} if compiling else {})}
            r = rows[name]
            print(f"  {threads} thread(s), {name}: reference {speed['reference']:.0f} img/s, genlab "
                  f"{speed['genlab']:.0f} ({r['ratio']['genlab']:.2f} x)", flush=True)
        results["threads"][str(threads)] = {"matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
                                            "training": rows, "ddim": sampling()}
        measured = ", ".join(f"{v:.0f} GFLOP/s {k}" for k, v in rates.items())
        print(f"\n{threads} thread(s): matmul {measured}; images per second, and each over the reference")
        columns = [v[0] for v in table[2:]]
        print_table(["model", "MFLOP/img", "reference", "genlab", "(settings)", "ratio", *columns,
                     "genlab % " + " / ".join(rates) + " rate", "% in ops"],
                    [[k, r["mflop_per_image"], r["images_per_s"]["reference"], r["images_per_s"]["genlab"],
                      r["genlab_settings"], r["ratio"]["genlab"],
                      *[f"{r['images_per_s'][c]:.0f} ({r['ratio'][c]:.2f})" if c in r["ratio"] else "-"
                        for c in columns],
                      " / ".join(f"{100 * r['fraction_of_rate']['genlab'][p]:.0f}" for p in rates),
                      100 * r["profile"]["share_in_operators"]] for k, r in rows.items()])
        for k, r in rows.items():
            if "compile_seconds" in r:
                print(f"  {k} compiled: {r['ratio']['compiled']:.2f} x the reference, after "
                      f"{min(r['compile_seconds']):.0f} s of compiling")
        for k, r in rows.items():
            if r["ratio"]["genlab"] < 1.5:  # short of the target: what dominates genlab's step
                top = ", ".join(f"{op} {ms} ms" for op, ms in r["profile"]["top_operators"][:3])
                print(f"  {k} short of 1.5 x: {r['profile']['ms_per_step']} ms a step, "
                      f"{100 * r['profile']['share_in_operators']:.0f} % in PyTorch operators (the rest Python, "
                      f"no data loading: the batch is in memory); most: {top}")
        for steps, r in results["threads"][str(threads)]["ddim"].items():
            print(f"DDIM {steps} steps: {r['images_per_s']} images/s, a 64-image grid in {r['grid_64_s']} s")
    results["command"] = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    keep_other_rows(results, args.only, args.results)
    print(f"written to {write_results(args.results, results)}")


#: the runs of the process table: (column, words added to the command, environment over this one's)
#: (the first is the yardstick of the ratios; the last, genlab's default, which takes fewer threads
#: when other processes keep cores busy)
PROCESS_VARIANTS = [("1 process x 2 threads", ["--threads", "2"], {}),
                    ("2 processes x 1 thread", ["--nproc", "2"], {}),
                    ("1 process x 1 thread", [], {"OMP_NUM_THREADS": "1"}),
                    ("default (threads auto)", [], {})]
#: steps of each model's runs there (about 10-30 s of training on two quiet cores)
PROCESS_STEPS = {"vae": 1000, "dcgan": 10, "cgan": 10, "diffusion": 20}
SPINNER = "while True: pass"   # another job on one core


def cli_run(model: str, data: str, steps: int, words: list[str], env: dict) -> dict:
    """One ``genlab train`` of ``steps`` steps as a user runs it: its wall time, its training time
    (the run's ``trained_s`` and ``elapsed_s``) and the images it trained on."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [sys.executable, "-m", "genlab", "train", model, "--data", data, "--max-steps", str(steps),
                   "--quiet", "--out", str(out), *words]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"{' '.join(command[1:])} failed:\n{done.stderr[-2000:]}")
        state = json.loads((out / "trainer_state.json").read_text())
        batch = json.loads((out / "config.json").read_text())["train"]["batch_size"]
    # the finished epochs' training time and the current one's (a run stopped by max_steps mid-epoch)
    return {"wall_s": wall, "trained_s": state["trained_s"] + state["elapsed_s"], "images": state["step"] * batch,
            "batch_size": batch}


def main_processes(args) -> None:
    """Threads against processes on quiet and on busy cores (see the module's docstring)."""
    import contextlib

    from genlab.data.registry import default_data_dir

    data = "mnist" if (default_data_dir() / "mnist").is_dir() else "digits28"
    names = [n for n in args.only if n in PROCESS_STEPS]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    rows = []
    for regime in ("quiet", "one core busy"):
        for name in names:
            steps = PROCESS_STEPS[name]
            timings = {v[0]: [] for v in PROCESS_VARIANTS}
            for _ in range(args.rounds):
                for column, words, extra in PROCESS_VARIANTS:
                    spinner = subprocess.Popen([sys.executable, "-c", SPINNER]) if regime != "quiet" else None
                    try:
                        timings[column].append(cli_run(name, data, steps, words, {**env, **extra}))
                    finally:
                        if spinner is not None:
                            spinner.kill()
                            with contextlib.suppress(subprocess.TimeoutExpired):
                                spinner.wait(5)
            mine = []   # this regime's rows of this model, the default's first
            for column, runs in timings.items():
                best = min(runs, key=lambda r: r["trained_s"])
                speed = round(best["images"] / best["trained_s"], 1)
                mine.append({"regime": regime, "model": name, "data": data, "steps": steps,
                             "batch_size": best["batch_size"], "run": column, "images_per_s": speed,
                             "speed_over_two_threads": round(speed / (mine[0]["images_per_s"] if mine else speed), 3),
                             "wall_s": round(min(r["wall_s"] for r in runs), 2),
                             "trained_s_per_round": [round(r["trained_s"], 2) for r in runs],
                             "wall_s_per_round": [round(r["wall_s"], 2) for r in runs]})
            rows += mine
            print(f"  {regime}, {name}: " + ", ".join(f"{r['run']} {r['images_per_s']:.0f} img/s" for r in mine),
                  flush=True)
    print(f"\ngenlab train MODEL --data {data} --max-steps N: training images per second (over 1 process x 2 "
          "threads), whole process on the clock")
    print_table(["cores", "model", "steps", "batch", "run", "images/s", "x 2 threads", "wall s"],
                [[r["regime"], r["model"], r["steps"], r["batch_size"], r["run"], r["images_per_s"],
                  r["speed_over_two_threads"], r["wall_s"]] for r in rows])
    results = {"machine": machine(), "genlab": genlab.__version__, "rounds": args.rounds, "data": data,
               "rows": rows, "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:])}
    print(f"written to {write_results(args.results or 'throughput-processes', results)}")


#: the runs of each round on a GPU: (column, who, genlab settings over the family's defaults)
GPU_VARIANTS = [("reference", "reference", {}),
                ("genlab", "genlab", {}),
                ("plain fp32", "genlab", {"precision": "fp32", "channels_last": False, "fused_optimizer": False}),
                ("bf16", "genlab", {"precision": "bf16"}),
                ("fp16", "genlab", {"precision": "fp16"}),
                ("reads every step", "genlab", {"host_reads": 1})]


def main_gpu(args) -> None:
    """The GPU table: each model's runs in one worker process, alternating over the rounds."""
    device = args.device
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA GPU, and this machine's torch sees none")
    gpu = torch.cuda.get_device_name(device)
    rates = {k: matmul_rate(dtype, n=4096, repeats=20, device=device)
             for k, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16))}
    print(f"{gpu}: matmul " + ", ".join(f"{v / 1000:.0f} TFLOP/s {k}" for k, v in rates.items()), flush=True)
    rows = {}
    for name in args.only:
        steps = max(2, round(args.steps * STEPS_FACTOR.get(name, 1)))
        n = steps * ENTRIES[name][2]["batch_size"]
        warm = [{"who": who, "name": name, "steps": max(2, steps // 4)} for who in ("reference", "genlab")]
        runs = warm + [{"who": who, "name": name, "steps": steps, "settings": settings}
                       for _ in range(args.rounds) for _, who, settings in GPU_VARIANTS]
        spec = {"device": device, "threads": torch.get_num_threads(), "runs": runs}
        done = subprocess.run([sys.executable, str(WORKER), json.dumps(spec)], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the runs of {name} failed:\n{done.stderr[-2000:]}")
        timings = json.loads(done.stdout.strip().splitlines()[-1])[len(warm):]
        seconds: dict[str, list[float]] = {v[0]: [] for v in GPU_VARIANTS}
        errors, walls = {}, []
        for (column, *_), timing in zip(GPU_VARIANTS * args.rounds, timings):
            if "error" in timing:
                errors[column] = timing["error"]
                continue
            seconds[column].append(timing["seconds"])
            if column == "genlab":
                walls.append(timing["wall_seconds"])
        speed = {k: n / min(v) for k, v in seconds.items() if v}
        flops = flops_per_image(name)
        rows[name] = {"genlab_settings": describe(speed_defaults(ENTRIES[name][0], device)),
                      **speed_row(speed, seconds, walls, n, flops, rates, digits=4),
                      **({"errors": errors} if errors else {})}
        print(f"  {name}: reference {speed.get('reference', 0):.0f} img/s, genlab {speed.get('genlab', 0):.0f} "
              f"({rows[name]['ratio'].get('genlab', 0):.2f} x)" + (f"; failed: {errors}" if errors else ""), flush=True)
    results = {"machine": {**machine(), "gpu": gpu}, "genlab": genlab.__version__, "device": device,
               "steps": args.steps, "steps_factor": STEPS_FACTOR, "rounds": args.rounds,
               "matmul_gflops": {k: round(v, 1) for k, v in rates.items()}, "training": rows,
               "ddim": sampling(device=device),
               "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:])}
    columns = [v[0] for v in GPU_VARIANTS[2:]]
    print(f"\n{gpu}: images per second, and each over the reference")
    print_table(["model", "MFLOP/img", "reference", "genlab", "(settings)", "ratio", *columns, "genlab % bf16 rate"],
                [[k, r["mflop_per_image"], r["images_per_s"].get("reference", "-"), r["images_per_s"].get("genlab", "-"),
                  r["genlab_settings"], r["ratio"].get("genlab", "-"),
                  *[f"{r['images_per_s'][c]:.0f} ({r['ratio'][c]:.2f})" if c in r["ratio"] else "failed"
                    for c in columns],
                  f"{100 * r['fraction_of_rate'].get('genlab', {}).get('bf16', 0):.1f}"] for k, r in rows.items()])
    for steps, r in results["ddim"].items():
        print(f"DDIM {steps} steps: {r['images_per_s']} images/s, a 64-image grid in {r['grid_64_s']} s")
    print(f"written to {write_results(args.results or 'throughput-cuda', results)}")


def keep_other_rows(results: dict, measured: list[str], name: str = "throughput") -> None:
    """With --only, the other models' rows of the results file ``name`` stay, each with the command
    and the matmul rates of the run that measured it."""
    path = Path(__file__).resolve().parent / "results" / f"{name}.json"
    if set(measured) == set(ENTRIES) or not path.exists():
        return
    earlier = json.loads(path.read_text())
    for threads, now in results["threads"].items():
        before = earlier.get("threads", {}).get(threads, {})
        for name, row in before.get("training", {}).items():
            if name not in measured:
                row.setdefault("measured_by", {"command": earlier.get("command"),
                                               "matmul_gflops": before.get("matmul_gflops")})
                now["training"][name] = row
        now["training"] = {k: now["training"][k] for k in ENTRIES if k in now["training"]}


if __name__ == "__main__":
    main()
