"""Training loop and checkpoints; run folders are :mod:`genlab.runs` (``Run`` and ``load_run``
are re-exported here)."""
from ..runs import Run, load_run
from .trainer import TrainConfig, Trainer, evaluate_loss, resolve_device, train

__all__ = ["Run", "load_run", "TrainConfig", "Trainer", "evaluate_loss",
           "resolve_device", "train"]
