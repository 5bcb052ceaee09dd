"""genlab: deep generative models of images, from PCA to VAEs, trainable from one command.

Three lines from data to pictures::

    import genlab
    data = genlab.load_dataset("digits")
    model = genlab.train(genlab.build_model("conv-vae", image_shape=data.image_shape), data, epochs=20)
    run = genlab.load(model.run_dir)   # the run folder it wrote
"""
import os

from .version import __version__

# How long an idle OpenMP thread spins before it sleeps, unless the user chose (OMP_WAIT_POLICY or
# GOMP_SPINCOUNT). Sleeping at once (PASSIVE) pays a wake-up on every operator: multi-threaded
# steps run slower on idle cores (benchmarks/throughput.py, "passive waits"). Spinning long (GNU
# OpenMP's default, about 3 ms) made small models 10-100x slower whenever another busy process
# shared the cores. A short spin (about 0.3 ms) keeps the speed on idle cores; on cores shared with
# other busy processes it still costs, and `OMP_WAIT_POLICY=PASSIVE` (or one thread per process)
# is the setting there. OpenMP reads this when torch loads.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "30000"

# The API is imported on first use (PEP 562), so that `genlab --help` and the command line's other
# answers that need no model come without loading torch.
_API = {"load_dataset": ".data", "list_datasets": ".data", "GenlabError": ".errors", "build_model": ".registry",
        "load_model": ".registry", "TrainConfig": ".train", "train": ".train", "load_run": ".train", "Run": ".train",
        "load": ".train"}

__all__ = ["load_dataset", "list_datasets", "build_model", "load_model", "train", "TrainConfig",
           "load", "load_run", "Run", "GenlabError", "__version__"]


def __getattr__(name: str):
    import importlib

    if name not in _API:
        raise AttributeError(f"module 'genlab' has no attribute '{name}'")
    value = getattr(importlib.import_module(_API[name], __name__), "load_run" if name == "load" else name)
    globals()[name] = value   # over the submodule of the same name (genlab.train) that the import set
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
