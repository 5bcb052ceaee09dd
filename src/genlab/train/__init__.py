"""Training loop and checkpoints; run folders are :mod:`genlab.runs` (``Run`` and ``load_run``
are re-exported here).

``genlab.train(...)`` is :func:`train`: the package itself can be called as the function, so that
it is, whichever of the two an import left under the name ``genlab.train``."""
import sys
import types

from ..runs import Run, load_run
from .trainer import TrainConfig, Trainer, evaluate_loss, resolve_device, train

__all__ = ["Run", "load_run", "TrainConfig", "Trainer", "evaluate_loss",
           "resolve_device", "train"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
