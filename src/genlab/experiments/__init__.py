"""Experiments: several runs trained and compared in one command, each writing a figure and JSON."""
from ..families.vae.ablation import elbo_ablation

EXPERIMENTS = {"elbo-ablation": elbo_ablation}

__all__ = ["EXPERIMENTS", "elbo_ablation"]
