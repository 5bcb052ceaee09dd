"""Training and sampling speed: genlab against the plain PyTorch code users would write.

    python benchmarks/throughput.py [--threads 1 2] [--steps 60] [--rounds 3] [--only vae dcgan cgan diffusion]

For each model, in one run and alternating (genlab, reference, genlab, ...) so that noise falls
on both: training images per second of ``genlab.train`` and of a straightforward reference loop
written here (a DataLoader over the same images, the same architecture, loss, optimizer and
batch, ``loss.item()`` each step as the common examples do), their ratio, the model's FLOPs per
training image (forward and backward, counted by torch's FlopCounterMode), and the fraction of the
machine's matmul rate (fp32 and bf16, measured in the same run) each reaches. Also DDIM sampling:
images per second at 10 and 50 steps, and the time to a 64-image grid at 50 steps.

The models: the VAE 784-400-20 of the PyTorch examples (Bernoulli, grey targets, Adam 1e-3,
batch 128); the DCGAN and the conditional GAN at 28x28 with the settings of benchmarks/gan.py
(width 24, batch 64); the diffusion U-Net of benchmarks/diffusion.py (batch 64). The reference
GANs and VAE are written out here; the reference diffusion loop trains genlab's U-Net module
(writing a second U-Net would measure the writing, not the loop). Images are random in [0, 1]
at MNIST's shape: speed does not depend on what they show. Writes benchmarks/results/throughput.json.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genlab  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from common import machine, print_table, write_results  # noqa: E402
from genlab.data import ImageDataset  # noqa: E402
from genlab.models import build_model  # noqa: E402
from genlab.models.diffusion import velocity  # noqa: E402

SHAPE = (1, 28, 28)
GAN = {"latent_dim": 64, "channels": 24, "spectral_norm": True}
DIFFUSION = {"channels": 16, "channel_mults": (1, 2, 2), "attention_resolution": 7, "ema_decay": 0.999}
ENTRIES = {  # name -> (genlab model, settings, training settings)
    "vae": ("vae", {"arch": "dense", "hidden": (400,), "latent_dim": 20, "norm": "none", "activation": "relu"},
            {"batch_size": 128, "lr": 1e-3, "binarize": False}),
    "dcgan": ("dcgan", GAN, {"batch_size": 64, "lr": 2e-4}),
    "cgan": ("cgan", GAN, {"batch_size": 64, "lr": 2e-4}),
    "diffusion": ("diffusion", DIFFUSION, {"batch_size": 64, "lr": 2e-3}),
}


# --------------------------------------------------------------------- the reference code
class ReferenceVAE(nn.Module):
    """The VAE of the PyTorch examples: 784-400-(20, 20), 20-400-784."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def vae_loss(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    return (bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / len(x)


def reference_gan(conditional: bool):
    """G and D of the same shapes as genlab's DCGAN at 28x28 (width 24, 2 stages from 7x7)."""
    sn = nn.utils.parametrizations.spectral_norm
    k, c, z = (10 if conditional else 0), GAN["channels"], GAN["latent_dim"]
    g = nn.Sequential(nn.Linear(z + k, 4 * c * 49), nn.Unflatten(1, (4 * c, 7, 7)), nn.BatchNorm2d(4 * c), nn.ReLU(),
                      nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c), nn.ReLU(),
                      nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
                      nn.Conv2d(c, 1, 3, padding=1), nn.Sigmoid())
    d = nn.Sequential(sn(nn.Conv2d(1 + k, c, 3, padding=1)), nn.LeakyReLU(0.2),
                      sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                      sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                      nn.Flatten(), sn(nn.Linear(4 * c * 49, 1)))
    return g, d


def reference_run(name: str, images: torch.Tensor, labels: torch.Tensor, steps: int, batch: int, lr: float) -> float:
    """Seconds that ``steps`` training steps of the reference loop take."""
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch, shuffle=True, drop_last=True)
    if name == "vae":
        model = ReferenceVAE()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elif name in ("dcgan", "cgan"):
        g, d = reference_gan(name == "cgan")
        opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.0, 0.9))
        opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.0, 0.9))
    else:
        unet = build_model("diffusion", image_shape=SHAPE, **DIFFUSION).net
        ema = [p.detach().clone() for p in unet.parameters()]
        opt = torch.optim.Adam(unet.parameters(), lr=lr)
        abar = build_model("diffusion", image_shape=SHAPE, **DIFFUSION).alphas_cumprod
    done, started = 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            if name == "vae":
                logits, mu, logvar = model(x)
                loss = vae_loss(logits, x, mu, logvar)
                opt.zero_grad()
                loss.backward()
                opt.step()
            elif name in ("dcgan", "cgan"):
                z = torch.randn(len(x), GAN["latent_dim"])
                onehot = F.one_hot(y, 10).float() if name == "cgan" else None
                fake = g(z if onehot is None else torch.cat([z, onehot], 1))
                maps = None if onehot is None else onehot[:, :, None, None].expand(-1, -1, 28, 28)
                real_in = x if maps is None else torch.cat([x, maps], 1)
                fake_in = fake if maps is None else torch.cat([fake, maps], 1)
                d_loss = F.softplus(-d(real_in)).mean() + F.softplus(d(fake_in.detach())).mean()
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                loss = F.softplus(-d(fake_in)).mean()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
            else:
                x0 = 2 * x - 1
                t = torch.randint(0, len(abar), (len(x),))
                noise = torch.randn_like(x0)
                a, s = abar[t].sqrt().view(-1, 1, 1, 1), (1 - abar[t]).sqrt().view(-1, 1, 1, 1)
                loss = (unet(a * x0 + s * noise, t) - velocity(x0, noise, a, s)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for e, p in zip(ema, unet.parameters()):
                        e.lerp_(p, 0.001)
            loss.item()
            done += 1
            if done == steps:
                break
    return time.perf_counter() - started


def genlab_run(name: str, data: ImageDataset, steps: int, precision: str = "fp32") -> tuple[float, float]:
    """(seconds of the training steps, seconds of the whole ``genlab.train`` call) for ``steps`` steps."""
    model_name, settings, train_settings = ENTRIES[name]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        genlab.train(model_name, data, None, out_dir=Path(tmp) / "run", epochs=1, progress=False,
                     snapshot_every=-1, model_settings=settings, precision=precision, **train_settings)
        wall = time.perf_counter() - started
        steps_s = sum(r["time_s"] for r in genlab.load_run(Path(tmp) / "run").metrics)
    return steps_s, wall


# --------------------------------------------------------------------- the machine and the model
def matmul_rate(dtype: torch.dtype, n: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of an n x n matrix product in ``dtype`` on the current threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - started) / 1e9


def flops_per_image(name: str) -> float:
    """FLOPs of one training step per image (forward and backward of every objective)."""
    model_name, settings, train_settings = ENTRIES[name]
    model = build_model(model_name, image_shape=SHAPE, num_classes=10, **settings)
    from genlab.data.batch import Batch
    from genlab.train.trainer import build_optimizers, training_step

    n = train_settings["batch_size"]
    batch = Batch(torch.rand(n, *SHAPE), torch.randint(0, 10, (n,)))
    optimizers = build_optimizers(model, 1e-3)
    counter = FlopCounterMode(display=False)
    with counter:
        training_step(model, batch, optimizers, 0)
    return counter.get_total_flops() / n


def profile(name: str, steps: int = 10) -> dict:
    """Where genlab's training step spends its time: the share of the wall time inside PyTorch's
    operators (the rest is Python), and the operators that take the most, by torch.profiler."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from genlab.data.batch import Batch, StepNoise
    from genlab.train.trainer import build_optimizers, training_step

    model_name, settings, train_settings = ENTRIES[name]
    model = build_model(model_name, image_shape=SHAPE, num_classes=10, **settings).train()
    optimizers = build_optimizers(model, 1e-3)
    n = train_settings["batch_size"]
    x, y = torch.rand(n, *SHAPE), torch.randint(0, 10, (n,))

    def step(i):
        training_step(model, Batch(x, y, positions=torch.arange(n), noise=StepNoise(0, i, n)), optimizers, i)

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


def sampling(steps_list=(10, 50)) -> dict:
    model = build_model("diffusion", image_shape=SHAPE, **DIFFUSION).eval()
    rows = {}
    for steps in steps_list:
        noise = torch.randn(64, math.prod(SHAPE))
        model.generate(noise[:4], steps=2)  # warm-up
        started = time.perf_counter()
        model.generate(noise, steps=steps)
        seconds = time.perf_counter() - started
        rows[steps] = {"images_per_s": round(64 / seconds, 1), "grid_64_s": round(seconds, 2)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of genlab and reference")
    parser.add_argument("--only", nargs="*", choices=list(ENTRIES), default=list(ENTRIES))
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    results = {"machine": machine(), "steps": args.steps, "rounds": args.rounds, "threads": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}
        rows = {}
        for name in args.only:
            batch = ENTRIES[name][2]["batch_size"]
            images = torch.rand(args.steps * batch, *SHAPE, generator=g)
            labels = torch.randint(0, 10, (len(images),), generator=g)
            data = ImageDataset(images, labels, name="random")
            ours, theirs, walls, bf16 = [], [], [], []
            for _ in range(args.rounds):
                steps_s, wall = genlab_run(name, data, args.steps)
                ours.append(steps_s)
                walls.append(wall)
                theirs.append(reference_run(name, images, labels, args.steps, batch, ENTRIES[name][2]["lr"]))
                bf16.append(genlab_run(name, data, args.steps, "bf16")[0])
            n = args.steps * batch
            flops = flops_per_image(name)
            best_ours, best_theirs = n / min(ours), n / min(theirs)
            rows[name] = {"genlab_images_per_s": round(best_ours, 1), "genlab_wall_images_per_s": round(n / min(walls), 1),
                          "reference_images_per_s": round(best_theirs, 1), "ratio": round(best_ours / best_theirs, 3),
                          "genlab_bf16_images_per_s": round(n / min(bf16), 1),
                          "bf16_ratio": round(n / min(bf16) / best_theirs, 3),
                          "mflop_per_image": round(flops / 1e6, 2),
                          "genlab_fraction_of_fp32_rate": round(best_ours * flops / 1e9 / rates["fp32"], 3),
                          "reference_fraction_of_fp32_rate": round(best_theirs * flops / 1e9 / rates["fp32"], 3),
                          "profile": profile(name)}
        results["threads"][str(threads)] = {"matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
                                            "training": rows, "ddim": sampling()}
        print(f"\n{threads} thread(s): matmul {rates['fp32']:.0f} GFLOP/s fp32, {rates['bf16']:.0f} bf16")
        print_table(["model", "genlab img/s", "(whole run)", "reference img/s", "ratio", "bf16 img/s", "bf16 ratio",
                     "MFLOP/img", "genlab % fp32", "reference % fp32", "% in ops"],
                    [[k, r["genlab_images_per_s"], r["genlab_wall_images_per_s"], r["reference_images_per_s"], r["ratio"],
                      r["genlab_bf16_images_per_s"], r["bf16_ratio"], r["mflop_per_image"],
                      100 * r["genlab_fraction_of_fp32_rate"], 100 * r["reference_fraction_of_fp32_rate"],
                      100 * r["profile"]["share_in_operators"]] for k, r in rows.items()])
        for k, r in rows.items():
            if r["ratio"] < 1.5:  # short of the target: what dominates genlab's step
                top = ", ".join(f"{op} {ms} ms" for op, ms in r["profile"]["top_operators"][:3])
                print(f"  {k}: {r['profile']['ms_per_step']} ms a step, {100 * r['profile']['share_in_operators']:.0f} % "
                      f"in PyTorch operators (the rest Python); most: {top}")
        for steps, r in results["threads"][str(threads)]["ddim"].items():
            print(f"DDIM {steps} steps: {r['images_per_s']} images/s, a 64-image grid in {r['grid_64_s']} s")
    results["command"] = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    print(f"written to {write_results('throughput', results)}")


if __name__ == "__main__":
    main()
