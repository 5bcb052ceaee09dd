"""The names people use for the same thing: a name genlab knows under another word gets what was
meant, and an unknown one gets a line naming the closest known word. (Other names for the models
are declared by their families: ``Family.aliases``.)"""
from __future__ import annotations

import difflib

from .errors import GenlabError

#: other names for the metrics of ``genlab evaluate``
METRIC_ALIASES = {
    "elbo": "default", "kl": "default", "bits-per-dim": "default", "bpd": "default", "mse": "default",
    "reconstruction": "default", "recon": "default", "sq-error": "default", "all": "default",
    "likelihood": "nll", "log-likelihood": "nll", "iwae": "nll", "importance-weighted": "nll",
    "psnr": "default", "ssim": "default", "image-quality": "default",
    "precision": "pr", "recall": "pr", "precision-recall": "pr", "density": "dc", "coverage": "dc",
}


def resolve(name: str, known: list[str], aliases: dict[str, str], what: str) -> str:
    """``name`` if known, the known word an alias stands for, else an error naming the closest."""
    if name in known:
        return name
    key = name.lower().replace("_", "-")
    if key in known:
        return key
    if key in aliases:
        return aliases[key]
    close = difflib.get_close_matches(key, known + list(aliases), n=1, cutoff=0.6)
    hint = f"; did you mean '{aliases.get(close[0], close[0])}'?" if close else ""
    raise GenlabError(f"unknown {what} '{name}'{hint} Choose one of: {', '.join(known)}")
