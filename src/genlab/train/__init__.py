"""Training loop, checkpoints and run folders."""
from .run import Run, load_run
from .trainer import TrainConfig, Trainer, evaluate_loss, resolve_device, train

__all__ = ["Run", "load_run", "TrainConfig", "Trainer", "evaluate_loss",
           "resolve_device", "train"]
