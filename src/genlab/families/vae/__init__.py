"""Variational autoencoders: dense, convolutional and residual, conditional, importance-weighted,
with an optional autoregressive decoder; and the ELBO ablation experiment."""
from ...family import Command, Family
from .model import VAE, VAEConfig

_RESNET = {"arch": "resnet", "channels": (16, 32), "blocks_per_stage": 2, "norm": "none", "activation": "silu",
           "latent_dim": 32, "ema_decay": 0.999}


def _experiment_arguments(p) -> None:
    p.add_argument("name", choices=["elbo-ablation"])
    p.add_argument("--data", default="digits")
    p.add_argument("--data-dir")
    p.add_argument("--model", default="vae", choices=["vae", "conv-vae"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--train-size", type=int, help="train on the first N training images (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder (default runs/elbo-ablation-DATA)")
    p.add_argument("--quiet", action="store_true")


def _experiment(args) -> list[str]:
    """``genlab experiment elbo-ablation``: the three variants' test terms and the figure."""
    from .ablation import elbo_ablation

    summary = elbo_ablation(data=args.data, data_dir=args.data_dir, out=args.out, model=args.model,
                            epochs=args.epochs, train_size=args.train_size, seed=args.seed, progress=not args.quiet)
    return [*(f"{name:>10}: test recon {v['val_recon_nats']:.2f} nats, KL {v['val_kl_nats']:.2f} nats"
              for name, v in summary["variants"].items()), summary["figure"]]


FAMILY = Family(
    name="vae", model_class=VAE,
    presets={
        "vae": {"arch": "dense", "hidden": (512, 256)},
        "conv-vae": {"arch": "conv"},
        "cvae": {"arch": "dense", "hidden": (512, 256), "conditional": True},
        "conv-cvae": {"arch": "conv", "conditional": True},
        # Likelihood models (docs/likelihood.md): residual conv networks, weights averaged for evaluation.
        "resnet-vae": _RESNET,
        "iwae": {**_RESNET, "iw_samples": 5},
    },
    aliases={"dense-vae": "vae", "mlp-vae": "vae", "beta-vae": "vae", "convvae": "conv-vae",
             "conditional-vae": "cvae"},
    commands=(Command("experiment", "experiments that train and compare several runs (the ELBO ablation)",
                      _experiment_arguments, _experiment),),
)

__all__ = ["FAMILY", "VAE", "VAEConfig"]
