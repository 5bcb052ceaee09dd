"""genlab: deep generative models of images, from PCA to VAEs, trainable from one command.

Three lines from data to pictures::

    import genlab
    data = genlab.load_dataset("digits")
    model = genlab.train(genlab.build_model("conv-vae", image_shape=data.image_shape), data, epochs=20)
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

from .data import load_dataset, list_datasets  # noqa: E402
from .errors import GenlabError  # noqa: E402
from .registry import build_model, load_model  # noqa: E402
from .train import TrainConfig, train, load_run, Run  # noqa: E402

__all__ = ["load_dataset", "list_datasets", "build_model", "load_model", "train", "TrainConfig",
           "load_run", "Run", "GenlabError", "__version__"]
