"""genlab: deep generative models of images, from PCA to VAEs, trainable from one command.

Three lines from data to pictures::

    import genlab
    data = genlab.load_dataset("digits")
    model = genlab.train(genlab.build_model("conv-vae", image_shape=data.image_shape), data, epochs=20)
"""
import os

__version__ = "0.1.0"

# OpenMP threads that spin while waiting make PyTorch 10-100x slower on small models whenever
# another process shares the cores (measured: 8 ms vs 590 ms per step on 2 busy cores). Sleeping
# waits cost little when the machine is idle. This must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .data import load_dataset, list_datasets  # noqa: E402
from .errors import GenlabError  # noqa: E402
from .models import build_model, load_model  # noqa: E402
from .train import TrainConfig, train, load_run, Run  # noqa: E402

__all__ = ["load_dataset", "list_datasets", "build_model", "load_model", "train", "TrainConfig",
           "load_run", "Run", "GenlabError", "__version__"]
