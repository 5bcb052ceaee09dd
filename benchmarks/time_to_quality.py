"""Time to quality: how long genlab's defaults take to reach the quality a plain PyTorch recipe
reaches in a fixed time, on the same machine.

    python benchmarks/time_to_quality.py [--only vae cgan] [--budget 5] [--threads 2]
    python benchmarks/time_to_quality.py --quick      # the harness on digits28, budgets of seconds

A user does not want images per second; they want a good model sooner. For each model:

1. The reference recipe (benchmarks/throughput_worker.py's plain loop: a DataLoader, the same
   loss, Adam, ``loss.item()`` each step, as the common PyTorch examples write it) trains for
   ``--budget`` minutes on the clock, and its quality is measured once at the end.
2. ``genlab train MODEL`` with its defaults trains in chunks of steps (the trainer's
   ``max_steps``: a run stopped mid-epoch goes on exactly), measured after each, until its
   quality is at least the reference's, or 2x the budget has passed. Its time is the run's own
   training time (``trained_s``, its end-of-epoch work included), not the measuring.

The row's figure is genlab's time over the budget (target: at most 0.5). Quality:

- ``vae``: the test loss of the PyTorch example (nats per image: binary cross-entropy against the
  grey test pixels plus the KL, one draw of z from a fixed seed). genlab's defaults train on
  binary pixels drawn afresh from the grey ones each batch, whose expected cross-entropy is this
  same grey-target loss, so both sides are scored on what they optimise.
- ``cgan``: FID of 2,000 samples (classes in turn) against 2,000 test images in the features of
  genlab's classifier of the dataset (as benchmarks/gan.py).

Data: MNIST (in $GENLAB_DATA/mnist); digits28 with --quick. Both sides use --threads torch
threads (2: the issue's 2 cores); run it on an otherwise idle machine, since the times are on the
clock. Results: benchmarks/results/time-to-quality.json (time-to-quality-quick.json with --quick).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import genlab  # noqa: E402  (first: it sets the OpenMP waits before torch starts its threads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from common import machine, mnist_data_dir, print_table, sample_quality_reference, write_results  # noqa: E402
from genlab.metrics.sample_quality import compare_features, generate  # noqa: E402
from throughput_worker import GAN, ENTRIES, ReferenceVAE, reference_gan, vae_loss  # noqa: E402

MODELS = ("vae", "cgan")
#: steps between genlab's measurements (a few per minute of training on 2 cores)
CHUNK_STEPS = {"vae": 200, "cgan": 100}
NUM_SAMPLES = 2000


# --------------------------------------------------------------------- quality
def example_loss(model: ReferenceVAE, x: torch.Tensor) -> torch.Tensor:
    logits, mu, logvar = model(x)
    return vae_loss(logits, x, mu, logvar)


def vae_test_loss(model, test_images: torch.Tensor) -> float:
    """The PyTorch example's test loss (nats per image) of a genlab VAE or the reference VAE, one
    draw of z from a fixed seed."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        if isinstance(model, ReferenceVAE):
            model.eval()
            total = sum(example_loss(model, x).item() * len(x) for x in test_images.split(1000))
            model.train()
            return total / len(test_images)
        model.eval()
        total = sum(-model.elbo_terms(x, mc_samples=1)["elbo"].sum().item() for x in test_images.split(1000))
        return total / len(test_images)


class Scorer:
    """Quality of each model kind on a dataset (lower is better for both: a loss, an FID)."""

    def __init__(self, name: str, train_data, test_data, quick: bool):
        self.name = name
        self.test_images = test_data.tensors()[0]   # float images in [0, 1], as every dataset loads
        if name == "cgan":
            n = min(200 if quick else NUM_SAMPLES, len(test_data), len(train_data))
            self.n = n
            self.extractor, self.real, self.floor = sample_quality_reference(train_data, test_data, n, ["fid"])

    def genlab(self, model) -> float:
        if self.name == "vae":
            return vae_test_loss(model, self.test_images)
        return compare_features(self.real, self.extractor(generate(model, self.n, seed=0)), ["fid"])["fid"]

    def reference(self, networks) -> float:
        if self.name == "vae":
            return vae_test_loss(networks[0], self.test_images)
        g = networks[0].eval()
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            labels = torch.arange(self.n) % 10
            z = torch.randn(self.n, GAN["latent_dim"], generator=generator)
            images = g(torch.cat([z, F.one_hot(labels, 10).float()], 1)).clamp(0, 1)
        g.train()
        return compare_features(self.real, self.extractor(images), ["fid"])["fid"]


# --------------------------------------------------------------------- the two sides
def train_reference(name: str, images: torch.Tensor, labels: torch.Tensor, seconds: float) -> tuple[list, int]:
    """The reference recipe of ``name`` trained for ``seconds`` on the clock: its networks and steps."""
    train = ENTRIES[name][2]
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(images, labels), batch_size=train["batch_size"], shuffle=True, drop_last=True)
    if name == "vae":
        model = ReferenceVAE()
        opt = torch.optim.Adam(model.parameters(), lr=train["lr"])
    else:
        g, d = reference_gan(conditional=True)
        opt_g = torch.optim.Adam(g.parameters(), lr=train["lr"], betas=(0.0, 0.9))
        opt_d = torch.optim.Adam(d.parameters(), lr=train["lr"], betas=(0.0, 0.9))
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for x, y in loader:
            if name == "vae":
                loss = example_loss(model, x)
                opt.zero_grad()
                loss.backward()
                opt.step()
            else:
                onehot = F.one_hot(y, 10).float()
                fake = g(torch.cat([torch.randn(len(x), GAN["latent_dim"]), onehot], 1))
                maps = onehot[:, :, None, None].expand(-1, -1, *x.shape[-2:])
                d_loss = F.softplus(-d(torch.cat([x, maps], 1))).mean() + \
                    F.softplus(d(torch.cat([fake.detach(), maps], 1))).mean()
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                loss = F.softplus(-d(torch.cat([fake, maps], 1))).mean()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
            loss.item()
            steps += 1
            if time.perf_counter() - started >= seconds:
                break
    return ([model] if name == "vae" else [g, d]), steps


def genlab_until(name: str, train_data, target: float, limit_s: float, score, out: Path, chunk: int) -> dict:
    """``genlab train`` with the family's defaults, scored every ``chunk`` steps, until the score is
    at most ``target`` or ``limit_s`` of training have passed: the curve and the time it got there."""
    curve, model, k = [], name, 0
    while True:
        k += 1
        model = genlab.train(model, train_data, None, out_dir=out, resume=k > 1, max_steps=k * chunk,
                             progress=False, snapshot_every=-1)
        state = json.loads((out / "trainer_state.json").read_text())
        seconds = state["trained_s"] + state["elapsed_s"]
        quality = score(model)
        model.train()
        curve.append({"steps": state["step"], "seconds": round(seconds, 2), "quality": round(quality, 4)})
        print(f"    genlab {name}: {state['step']} steps, {seconds:.1f} s, {quality:.3f}", flush=True)
        if quality <= target:
            return {"curve": curve, "seconds_to_target": seconds}
        if seconds >= limit_s or state.get("done"):
            return {"curve": curve, "seconds_to_target": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--budget", type=float, default=5.0, help="minutes of the reference recipe (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--quick", action="store_true", help="digits28 and a budget of 20 seconds: the harness")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget_s = 20.0 if args.quick else 60 * args.budget
    if args.quick:
        train_data, test_data = genlab.load_dataset("digits28", split="train"), genlab.load_dataset("digits28", split="test")
    else:
        data_dir = mnist_data_dir(args.data_dir)
        train_data = genlab.load_dataset("mnist", split="train", data_dir=data_dir)
        test_data = genlab.load_dataset("mnist", split="test", data_dir=data_dir)
    images, labels = train_data.tensors()
    rows = []
    for name in args.only:
        score = Scorer(name, train_data, test_data, args.quick)
        networks, steps = train_reference(name, images, labels, budget_s)
        target = score.reference(networks)
        print(f"  reference {name}: {steps} steps in {budget_s:.0f} s, quality {target:.3f}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            chunk = max(10, CHUNK_STEPS[name] // (10 if args.quick else 1))
            got = genlab_until(name, train_data, target, 2 * budget_s, score.genlab, Path(tmp) / "run", chunk)
        reached = got["seconds_to_target"]
        rows.append({"model": name, "reference_steps": steps, "budget_s": budget_s, "reference_quality": target,
                     "quality": "test loss (nats)" if name == "vae" else f"FID ({score.n} samples)",
                     "genlab_seconds": reached, "ratio": None if reached is None else round(reached / budget_s, 3),
                     "curve": got["curve"]})
    print(f"\ntime for genlab's defaults to reach the reference's quality after {budget_s / 60:.1f} minutes "
          f"({args.threads} threads; target: at most 0.5 x)")
    print_table(["model", "quality", "reference", "genlab reaches it in (s)", "x budget"],
                [[r["model"], r["quality"], round(r["reference_quality"], 3),
                  "not within 2 x" if r["genlab_seconds"] is None else round(r["genlab_seconds"], 1),
                  "-" if r["ratio"] is None else r["ratio"]] for r in rows])
    results = {"machine": machine(), "genlab": genlab.__version__, "dataset": train_data.name, "rows": rows,
               "command": "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])}
    print(f"written to {write_results('time-to-quality' + ('-quick' if args.quick else ''), results)}")


if __name__ == "__main__":
    main()
