"""Time to quality: how long genlab's defaults take to reach the quality a plain PyTorch recipe
reaches in a fixed time, on the same machine.

    python benchmarks/time_to_quality.py [--only vae cgan diffusion] [--budget 5] [--threads 2]
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
- ``diffusion``: FID of 1,000 samples against 1,000 test images, likewise. The reference is the
  plain v-prediction loop on genlab's U-Net at the throughput benchmark's width (16), with the
  usual moving average; both sides are sampled by genlab's default sampler (DPM-Solver++ 2M,
  20 steps) from their averaged weights, so the row compares the training recipes.
- ``superres``: PSNR on the 8-bit luminance of the held-out photos at x2, as the literature
  measures it (genlab's ``psnr_y``). The reference is the PyTorch super-resolution example's
  ESPCN on the luminance, trained on genlab's training patches of the photos (``photos-sr``) made
  small by the same bicubic, with MSE and Adam (batch 64, learning rate 1e-3).

Data: MNIST (in $GENLAB_DATA/mnist), digits28 with --quick; superres: photos-sr, shipped. Both sides use --threads torch
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
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from common import RESULTS, machine, mnist_data_dir, print_table, sample_quality_reference, write_results  # noqa: E402
from genlab.families.image_to_image.quality import image_quality  # noqa: E402
from genlab.families.image_to_image.resize import imresize  # noqa: E402
from genlab.metrics.image_quality import psnr_y  # noqa: E402
from genlab.metrics.sample_quality import compare_features, generate  # noqa: E402
from genlab.models.base import GenerativeModel  # noqa: E402
from genlab.registry import build_model  # noqa: E402
from throughput_worker import DIFFUSION, GAN, ENTRIES, SHAPE, Recipe, vae_loss  # noqa: E402

MODELS = ("vae", "cgan", "diffusion", "superres")
#: steps between genlab's measurements (a few per minute of training on 2 cores)
CHUNK_STEPS = {"vae": 200, "cgan": 100, "diffusion": 200, "superres": 200}
#: the super-resolution row's factor, and the reference's batch and learning rate (the PyTorch
#: example's batch, and the learning rate its README trains with)
SCALE, SR_TRAIN = 2, {"batch_size": 64, "lr": 1e-3}
#: samples an FID is computed from (diffusion's cost 20 network evaluations each)
NUM_SAMPLES = {"cgan": 2000, "diffusion": 1000}


# --------------------------------------------------------------------- quality
def reference_loss(model, x: torch.Tensor) -> torch.Tensor:
    logits, mu, logvar = model(x)
    return vae_loss(logits, x, mu, logvar)


def vae_test_loss(model, test_images: torch.Tensor) -> float:
    """The PyTorch example's test loss (nats per image) of a genlab VAE or the reference VAE, one
    draw of z from a fixed seed."""
    model.eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        if isinstance(model, GenerativeModel):
            total = sum(-model.elbo_terms(x, mc_samples=1)["elbo"].sum().item() for x in test_images.split(1000))
        else:
            total = sum(reference_loss(model, x).item() * len(x) for x in test_images.split(1000))
    model.train()
    return total / len(test_images)


def reference_diffusion(recipe: Recipe) -> GenerativeModel:
    """A genlab diffusion model of the reference's settings holding the reference U-Net's moving
    average: both sides are sampled by the same sampler (genlab's default) from their weights."""
    model = build_model("diffusion", image_shape=SHAPE, **DIFFUSION)
    for net in (model.net, model.ema["net"]):
        torch.nn.utils.vector_to_parameters(torch.nn.utils.parameters_to_vector(recipe.ema), net.parameters())
    return model


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) the Y of ITU-R BT.601 (16..235) over 255 of RGB images (N, 3, H, W) in [0, 1]."""
    r, g, b = rgb.unbind(1)
    return ((16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255).unsqueeze(1)


class ReferenceESPCN(nn.Module):
    """The network of the PyTorch super-resolution example: on the small image's luminance, 5x5
    and three 3x3 convolutions, then a pixel shuffle to the large luminance; orthogonal weights."""

    def __init__(self, scale: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 64, 5, padding=2), nn.Conv2d(64, 64, 3, padding=1),
                                    nn.Conv2d(64, 32, 3, padding=1), nn.Conv2d(32, scale ** 2, 3, padding=1)])
        self.shuffle = nn.PixelShuffle(scale)
        for conv in self.convs[:-1]:
            nn.init.orthogonal_(conv.weight, nn.init.calculate_gain("relu"))
        nn.init.orthogonal_(self.convs[-1].weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            y = F.relu(conv(y))
        return self.shuffle(self.convs[-1](y))


class SuperresRecipe:
    """The reference super-resolution recipe: :class:`ReferenceESPCN` on the luminance of the same
    training patches made small by the same bicubic as genlab's (no augmentation), MSE, Adam."""

    def __init__(self, lr: float):
        self.model, self.steps = ReferenceESPCN(SCALE), 0
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)

    def predict(self, rgb: torch.Tensor) -> torch.Tensor:
        """The large luminance (N, 1, H, W) from large RGB images made small first."""
        return self.model(luminance(imresize(rgb, 1 / SCALE).clamp(0, 1)))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        loss = F.mse_loss(self.predict(x), luminance(x))
        Recipe.update(self.opt, loss)
        return loss


class Scorer:
    """Quality of each model kind on a dataset (lower is better but for superres's PSNR)."""

    def __init__(self, name: str, train_data, test_data, quick: bool):
        self.name, self.higher_is_better, self.test_data = name, name == "superres", test_data
        self.test_images = test_data.tensors()[0]   # float images in [0, 1], as every dataset loads
        if name not in ("vae", "superres"):
            n = min(200 if quick else NUM_SAMPLES[name], len(test_data), len(train_data))
            self.n = n
            self.extractor, self.real, self.floor = sample_quality_reference(train_data, test_data, n, ["fid"])

    def fid(self, images: torch.Tensor) -> float:
        return compare_features(self.real, self.extractor(images), ["fid"])["fid"]

    @property
    def measure(self) -> str:
        if self.name == "vae":
            return "test loss (nats)"
        return f"PSNR-Y x{SCALE} (dB)" if self.name == "superres" else f"FID ({self.n} samples)"

    def reached(self, quality: float, target: float) -> bool:
        return quality >= target if self.higher_is_better else quality <= target

    def genlab(self, model) -> float:
        if self.name == "vae":
            return vae_test_loss(model, self.test_images)
        if self.name == "superres":
            return image_quality(model, self.test_data)["psnr_y"]
        return self.fid(generate(model, self.n, seed=0))

    def reference(self, recipe) -> float:
        if self.name == "vae":
            return vae_test_loss(recipe.model, self.test_images)
        if self.name == "superres":
            with torch.no_grad():
                predicted = recipe.predict(self.test_images).double().numpy()
            return sum(psnr_y(a, b, SCALE) for a, b in zip(predicted, self.test_images.double().numpy())) / len(predicted)
        if self.name == "diffusion":
            return self.fid(generate(reference_diffusion(recipe), self.n, seed=0))
        g = recipe.g.eval()
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            labels = torch.arange(self.n) % 10
            z = torch.randn(self.n, GAN["latent_dim"], generator=generator)
            images = g(torch.cat([z, F.one_hot(labels, 10).float()], 1)).clamp(0, 1)
        g.train()
        return self.fid(images)


# --------------------------------------------------------------------- the two sides
def train_reference(name: str, images: torch.Tensor, labels: torch.Tensor, seconds: float):
    """The reference recipe of ``name`` trained for ``seconds`` on the clock."""
    train = SR_TRAIN if name == "superres" else ENTRIES[name][2]
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(images, labels), batch_size=train["batch_size"], shuffle=True, drop_last=True)
    recipe = SuperresRecipe(train["lr"]) if name == "superres" else Recipe(name, train["lr"])
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for x, y in loader:
            recipe.step(x, y).item()
            if time.perf_counter() - started >= seconds:
                break
    return recipe


def genlab_until(name: str, train_data, target: float, limit_s: float, scorer: Scorer, out: Path, chunk: int) -> dict:
    """``genlab train`` with the family's defaults, scored every ``chunk`` steps, until the score
    reaches ``target`` or ``limit_s`` of training have passed: the curve and the time it got there."""
    curve, model, k = [], name, 0
    while True:
        k += 1
        model = genlab.train(model, train_data, None, out_dir=out, resume=k > 1, max_steps=k * chunk,
                             progress=False, snapshot_every=-1)
        state = json.loads((out / "trainer_state.json").read_text())
        seconds = state["trained_s"] + state["elapsed_s"]
        quality = scorer.genlab(model)
        model.train()
        curve.append({"steps": state["step"], "seconds": round(seconds, 2), "quality": round(quality, 4)})
        print(f"    genlab {name}: {state['step']} steps, {seconds:.1f} s, {quality:.3f}", flush=True)
        if scorer.reached(quality, target):
            return {"curve": curve, "seconds_to_target": seconds}
        if seconds >= limit_s or state.get("done"):
            return {"curve": curve, "seconds_to_target": None}


def datasets(name: str, quick: bool, data_dir: str | None):
    """(train, test) data of model ``name``: MNIST (digits28 with ``quick``); photos-sr for superres."""
    if name == "superres":
        return genlab.load_dataset("photos-sr", split="train"), genlab.load_dataset("photos-sr", split="test")
    if quick:
        return genlab.load_dataset("digits28", split="train"), genlab.load_dataset("digits28", split="test")
    data_dir = mnist_data_dir(data_dir)
    return (genlab.load_dataset("mnist", split="train", data_dir=data_dir),
            genlab.load_dataset("mnist", split="test", data_dir=data_dir))


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
    rows = []
    for name in args.only:
        train_data, test_data = datasets(name, args.quick, args.data_dir)
        images, labels = train_data.tensors()
        labels = torch.zeros(len(images), dtype=torch.long) if labels is None else labels  # unlabelled photos
        scorer = Scorer(name, train_data, test_data, args.quick)
        recipe = train_reference(name, images, labels, budget_s)
        steps, target = recipe.steps, scorer.reference(recipe)
        print(f"  reference {name}: {steps} steps in {budget_s:.0f} s, {scorer.measure} {target:.3f}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            chunk = max(10, CHUNK_STEPS[name] // (10 if args.quick else 1))
            got = genlab_until(name, train_data, target, 2 * budget_s, scorer, Path(tmp) / "run", chunk)
        reached = got["seconds_to_target"]
        rows.append({"model": name, "dataset": train_data.name, "quality": scorer.measure,
                     "reference_steps": steps, "budget_s": budget_s, "threads": args.threads, "reference_quality": target,
                     "floor": round(scorer.floor["fid"], 3) if hasattr(scorer, "floor") else None,
                     "genlab_seconds": reached, "ratio": None if reached is None else round(reached / budget_s, 3),
                     "curve": got["curve"]})
    # the rows of models not run this time stay, when measured with the same budget and threads
    name = "time-to-quality" + ("-quick" if args.quick else "")
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    command = "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])
    rows = [{**r, "command": command, "machine": machine()} for r in rows]
    rows += [r for r in old.get("rows", []) if r["model"] not in args.only and r["budget_s"] == budget_s
             and r.get("threads", args.threads) == args.threads]
    rows.sort(key=lambda r: MODELS.index(r["model"]))
    print(f"\ntime for genlab's defaults to reach the reference's quality after {budget_s / 60:.1f} minutes "
          f"({args.threads} threads; target: at most 0.5 x)")
    print_table(["model", "quality", "reference", "genlab reaches it in (s)", "x budget"],
                [[r["model"], r["quality"], round(r["reference_quality"], 3),
                  "not within 2 x" if r["genlab_seconds"] is None else round(r["genlab_seconds"], 1),
                  "-" if r["ratio"] is None else r["ratio"]] for r in rows])
    print(f"written to {write_results(name, {'genlab': genlab.__version__, 'rows': rows})}")


if __name__ == "__main__":
    main()
