"""One timed training run for benchmarks/throughput.py, in a process of its own.

    python benchmarks/throughput_worker.py '{"who": "reference", "name": "dcgan", "steps": 40, "threads": 2}'

prints {"seconds": ...}: the time of ``steps`` training steps, either of the plain reference loop
written here (``who: reference``) or of ``genlab.train`` (``who: genlab``, with optional
``settings`` such as ``{"precision": "fp32"}`` over the family's defaults). Each run gets a fresh
process so that each side has the OpenMP settings it would have on its own: torch is imported
here before genlab, so the environment the caller passes decides them (genlab's own choice, or
PyTorch's default for the reference code).

On a GPU (``"device": "cuda"``) the spec may hold ``runs``, a list of such runs done in turn in
this one process (which pays CUDA's start once), and the output is the list of their timings; a
``host_reads`` setting makes genlab read its losses back every so many steps (its default off the
CPU is every 25; 1 is every step, as the reference's ``loss.item()``). Images are random in [0, 1] at MNIST's shape (the
3-D GAN's: binary cubes of 64^3), from a fixed seed: speed does not depend on what they show. ``settings`` may also hold ``compile: true``
(``torch.compile`` of the networks; see ``genlab_run``).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch  # first: OpenMP reads its settings when torch loads (genlab would set its own)
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import genlab
from genlab.data import ImageDataset
from genlab.registry import build_model
from genlab.families.diffusion.model import velocity
from genlab.train import trainer
from genlab.train.trainer import _family_train_defaults, data_description, resolve_precision

DEFAULT_HOST_READS = trainer.HOST_READS

SHAPE = (1, 28, 28)
GAN = {"latent_dim": 64, "channels": 24, "spectral_norm": True}
DIFFUSION = {"channels": 16, "channel_mults": (1, 2, 2), "attention_resolution": 7, "ema_decay": 0.999}
POROUS = {"latent_dim": 16, "channels": 8, "symmetries": False, "instance_noise": 0.5}
ENTRIES = {  # name -> (genlab model, settings, training settings)
    "vae": ("vae", {"arch": "dense", "hidden": (400,), "latent_dim": 20, "norm": "none", "activation": "relu"},
            {"batch_size": 128, "lr": 1e-3, "binarize": False}),
    "dcgan": ("dcgan", GAN, {"batch_size": 64, "lr": 2e-4}),
    "cgan": ("cgan", GAN, {"batch_size": 64, "lr": 2e-4}),
    "diffusion": ("diffusion", DIFFUSION, {"batch_size": 64, "lr": 2e-3}),
    # the 3-D GAN at the paper's cube size with its family's defaults; without the cube symmetries,
    # which plain code would not have (the instance noise is in both)
    "porous": ("porous-gan", POROUS, {"batch_size": 16, "lr": 5e-4}),
}
SHAPES = {"porous": (1, 64, 64, 64)}  # the others: MNIST's SHAPE


def shape_of(name: str) -> tuple[int, ...]:
    """The shape of one training image (or volume) of benchmark model ``name``."""
    return SHAPES.get(name, SHAPE)


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


def reference_porous():
    """G and D of the same shapes as genlab's 3-D GAN at 64^3 (width 8, 4 stages from a 4^3 grid)."""
    sn = nn.utils.parametrizations.spectral_norm
    z, c = POROUS["latent_dim"], POROUS["channels"]
    g = nn.Sequential(nn.Conv3d(z, 8 * c, 3, padding=1), nn.BatchNorm3d(8 * c), nn.ReLU(),
                      nn.ConvTranspose3d(8 * c, 4 * c, 4, 2, 1), nn.BatchNorm3d(4 * c), nn.ReLU(),
                      nn.ConvTranspose3d(4 * c, 2 * c, 4, 2, 1), nn.BatchNorm3d(2 * c), nn.ReLU(),
                      nn.ConvTranspose3d(2 * c, c, 4, 2, 1), nn.BatchNorm3d(c), nn.ReLU(),
                      nn.ConvTranspose3d(c, 1, 4, 2, 1), nn.Sigmoid())
    d = nn.Sequential(sn(nn.Conv3d(1, c, 4, 2, 1)), nn.LeakyReLU(0.2),
                      sn(nn.Conv3d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                      sn(nn.Conv3d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                      sn(nn.Conv3d(4 * c, 8 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                      nn.Flatten(), sn(nn.Linear(8 * c * 4 ** 3, 1)))
    return g, d


class Recipe:
    """The plain reference recipe of benchmark model ``name`` on ``device``: its networks, Adam,
    and ``step``, one training step as the common PyTorch examples write it (the U-Net's moving
    average with the usual warm-up, min(0.999, (1 + n) / (10 + n)))."""

    def __init__(self, name: str, lr: float, device: str = "cpu"):
        self.name, self.steps = name, 0
        if name == "vae":
            self.model = ReferenceVAE().to(device)
            self.opts = [torch.optim.Adam(self.model.parameters(), lr=lr)]
        elif name in ("dcgan", "cgan", "porous"):
            g, d = reference_porous() if name == "porous" else reference_gan(name == "cgan")
            self.g, self.d = g.to(device), d.to(device)
            self.opts = [torch.optim.Adam(net.parameters(), lr=lr, betas=(0.0, 0.9)) for net in (self.d, self.g)]
        else:
            diffusion = build_model("diffusion", image_shape=SHAPE, **DIFFUSION)
            self.unet, self.abar = diffusion.net.to(device), diffusion.alphas_cumprod.to(device)
            self.ema = [p.detach().clone() for p in self.unet.parameters()]
            self.opts = [torch.optim.Adam(self.unet.parameters(), lr=lr)]

    @staticmethod
    def update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        opt.zero_grad()
        loss.backward()
        opt.step()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training step on images ``x`` and labels ``y``; returns the (generator's) loss."""
        self.steps += 1
        if self.name == "vae":
            logits, mu, logvar = self.model(x)
            loss = vae_loss(logits, x, mu, logvar)
            self.update(self.opts[0], loss)
            return loss
        if self.name in ("dcgan", "cgan", "porous"):
            g, d = self.g, self.d
            if self.name == "porous":
                noisy = lambda v: v + POROUS["instance_noise"] * torch.randn_like(v)  # noqa: E731
                fake = g(torch.randn(len(x), POROUS["latent_dim"], 4, 4, 4, device=x.device))
                # D and G each see the fake under a fresh draw of the instance noise
                real_in, d_fake, g_fake = noisy(x), noisy(fake.detach()), noisy(fake)
            else:
                z = torch.randn(len(x), GAN["latent_dim"], device=x.device)
                onehot = F.one_hot(y, 10).float() if self.name == "cgan" else None
                fake = g(z if onehot is None else torch.cat([z, onehot], 1))
                maps = None if onehot is None else onehot[:, :, None, None].expand(-1, -1, *x.shape[-2:])
                real_in = x if maps is None else torch.cat([x, maps], 1)
                g_fake = fake if maps is None else torch.cat([fake, maps], 1)
                d_fake = g_fake.detach()
            self.update(self.opts[0], F.softplus(-d(real_in)).mean() + F.softplus(d(d_fake)).mean())
            loss = F.softplus(-d(g_fake)).mean()
            self.update(self.opts[1], loss)
            return loss
        x0 = 2 * x - 1
        t = torch.randint(0, len(self.abar), (len(x),), device=x.device)
        noise = torch.randn_like(x0)
        a, s = self.abar[t].sqrt().view(-1, 1, 1, 1), (1 - self.abar[t]).sqrt().view(-1, 1, 1, 1)
        loss = (self.unet(a * x0 + s * noise, t) - velocity(x0, noise, a, s)).pow(2).mean()
        self.update(self.opts[0], loss)
        with torch.no_grad():
            decay = min(DIFFUSION["ema_decay"], self.steps / (9 + self.steps))
            for e, p in zip(self.ema, self.unet.parameters()):
                e.lerp_(p, 1 - decay)
        return loss


def reference_run(name: str, images: torch.Tensor, labels: torch.Tensor, steps: int, batch: int, lr: float,
                  device: str = "cpu") -> float:
    """Seconds that ``steps`` training steps of the reference loop take (on ``device``: each batch
    moved there as it comes, as the common examples do)."""
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch, shuffle=True, drop_last=True)
    recipe = Recipe(name, lr, device)
    done, started = 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            recipe.step(x.to(device), y.to(device)).item()
            done += 1
            if done == steps:
                break
    synchronize(device)
    return time.perf_counter() - started


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work (nothing to wait for on the CPU)."""
    if device != "cpu":
        torch.cuda.synchronize(device)


def genlab_run(name: str, data: ImageDataset, settings: dict, device: str = "cpu") -> dict:
    """``seconds`` of the training steps and ``wall_seconds`` of the whole ``genlab.train`` call,
    for one epoch over ``data``, with ``settings`` over the family's training defaults.

    ``compile: true`` compiles the model's networks (``torch.compile``, in place) and trains two
    epochs: ``seconds`` is the second's, ``compile_seconds`` what the first took beyond it.
    ``host_reads: k`` reads the losses back every k steps (off the CPU; genlab's default is 25)."""
    model_name, model_settings, train_settings = ENTRIES[name]
    settings = dict(settings)
    compiled = settings.pop("compile", False)
    trainer.HOST_READS = settings.pop("host_reads", DEFAULT_HOST_READS)
    model = build_model(model_name, **data_description(model_name, data), **model_settings)
    if compiled:
        for child_name, child in model.named_children():
            if child_name != "ema" and any(True for _ in child.parameters()):
                child.compile()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        genlab.train(model, data, None, out_dir=Path(tmp) / "run", epochs=2 if compiled else 1, progress=False,
                     snapshot_every=-1, device=device, **{**train_settings, **settings})
        wall = time.perf_counter() - started
        epochs = [r["time_s"] for r in genlab.load_run(Path(tmp) / "run").metrics]
    timing = {"seconds": epochs[-1], "wall_seconds": wall}
    return {**timing, "compile_seconds": epochs[0] - epochs[-1]} if compiled else timing


def speed_defaults(model_name: str, device: str = "cpu") -> dict:
    """The speed settings genlab trains ``model_name`` with by default on ``device``: its family's
    ``train_defaults`` (precision ``auto`` resolved), and the fused AdamW of every family."""
    family = _family_train_defaults(model_name)
    return {"precision": resolve_precision(family.get("precision", "fp32"), torch.device(device)),
            "channels_last": bool(family.get("channels_last", False)), "fused_optimizer": True}


def describe(settings: dict) -> str:
    """``bf16 + channels-last + fused AdamW``, say, for these speed settings."""
    return " + ".join([settings["precision"]] + ["channels-last"] * settings["channels_last"] +
                      ["fused AdamW"] * settings["fused_optimizer"])


def random_data(name: str, steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` batches of random images and labels for ``name``."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(steps * ENTRIES[name][2]["batch_size"], *shape_of(name), generator=g)
    if name == "porous":
        images = (images < 0.3).float()   # binary, as segmented rock is
    return images, torch.randint(0, 10, (len(images),), generator=g)


def timed_run(spec: dict, device: str, data: dict) -> dict:
    """The timing of one run (``who``, ``name``, ``steps``, ``settings``); ``data`` caches the
    random images of each model and step count."""
    name, steps = spec["name"], spec["steps"]
    if (name, steps) not in data:
        data[name, steps] = random_data(name, steps)
    images, labels = data[name, steps]
    if spec["who"] == "reference":
        train = ENTRIES[name][2]
        return {"seconds": reference_run(name, images, labels, steps, train["batch_size"], train["lr"], device)}
    return genlab_run(name, ImageDataset(images, labels, name="random"), spec.get("settings", {}), device)


def main() -> None:
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    device, data = spec.get("device", "cpu"), {}
    if "runs" in spec:  # one failing run (fp16 overflowing, say) is reported, the others still timed
        out = []
        for run in spec["runs"]:
            try:
                out.append(timed_run({**spec, **run}, device, data))
            except Exception as error:  # noqa: BLE001  (what failed is the row's figure)
                out.append({"error": f"{type(error).__name__}: {error}"[:300]})
        print(json.dumps(out))
    else:
        print(json.dumps(timed_run(spec, device, data)))


if __name__ == "__main__":
    main()
