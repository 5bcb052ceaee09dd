"""Feature networks for the sample-quality metrics.

- ``classifier``: a small conv net that genlab trains on a labelled dataset's training split and
  caches in ``$GENLAB_CACHE/features/<dataset>/`` (default ``~/.cache/genlab``) as ``config.json``
  plus ``model.safetensors``; its test accuracy is stored and reported with every figure, since a
  feature space is only as good as the classifier behind it. Features: the 128-d penultimate layer.
- ``inception``: Inception-v3 pool features (2048-d) of pytorch-fid, so that figures compare with
  published FIDs; used only when ``pytorch_fid`` is installed and its weights file is already in
  the torch hub cache (genlab never downloads it behind your back).

An extractor is called on images (N, C, H, W) in [0, 1] and returns features (N, F) float64.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenlabError
from ..files import cache_dir, save_weights_atomic, write_json_atomic
from ..runs import CONFIG_FILE, WEIGHTS_FILE, read_config

ARCH = "genlab-classifier-v3"  # bump when the network or its training changes: old caches retrain
INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's FID Inception weights


class Classifier(nn.Module):
    """Images (N, C, H, W) in [0, 1] -> class logits (N, K); ``features`` gives (N, 128)."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c = image_shape[0]
        # Pooling to 4x4, not 1x1, keeps where strokes are: the convolutions see only 15 pixels.
        self.body = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """Images of another size or channel count brought to this network's input."""
        c, h, w = self.image_shape
        if x.shape[1] != c:
            x = x.mean(1, keepdim=True).expand(-1, c, -1, -1) if c in (1, 3) else x
        if x.shape[2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.adapt(x) - 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def accuracy(net: Classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    net.eval()
    hits = sum(int((net(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
               for i in range(0, len(images), batch_size))
    return hits / len(images)


def train_classifier(train_data, test_data, steps: int | None = None, batch_size: int = 64, lr: float = 1e-3,
                     seed: int = 0) -> tuple[Classifier, float]:
    """Train a :class:`Classifier` on ``train_data`` (without touching the global random state) for
    ``steps`` (default: 20 epochs, at least 300 and at most 6000 steps); returns it in eval mode and
    its accuracy on ``test_data`` (a fraction)."""
    if train_data.labels is None:
        raise GenlabError(f"{train_data.name} has no labels, so genlab cannot train a feature classifier "
                          "on it; use --features inception")
    steps = steps or min(6000, max(300, 20 * len(train_data) // batch_size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Classifier(train_data.image_shape, train_data.num_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        net.train()
        for _ in range(steps):   # a batch at a time: a folder streamed from disk stays there
            batch = train_data.batch(torch.randint(len(train_data), (batch_size,)))
            loss = F.cross_entropy(net(batch.images), batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    x, y = test_data.tensors()
    return net, accuracy(net, x, y)


class FeatureExtractor:
    """Callable: images (N, C, H, W) in [0, 1] -> features (N, F) float64 numpy."""

    def __init__(self, network, name: str, test_accuracy: float | None = None, batch_size: int = 500):
        self.network, self.name, self.test_accuracy, self.batch_size = network, name, test_accuracy, batch_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = [self.network(images[i:i + self.batch_size].float()).double().cpu().numpy()
               for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out)

    def describe(self) -> dict:
        info = {"features": self.name}
        if self.test_accuracy is not None:
            info["feature_classifier_test_accuracy"] = self.test_accuracy
        return info


def _cache_folder(dataset_name: str) -> Path | None:
    if not dataset_name or dataset_name == "arrays":
        return None  # in-memory arrays have no name to cache under
    return cache_dir() / "features" / re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name)


def feature_classifier(train_data, test_data) -> tuple[Classifier, float]:
    """The cached classifier of ``train_data``'s dataset and its test accuracy; trained and cached
    on first use (seconds on digits, about 2 minutes on MNIST on 2 cores)."""
    from safetensors.torch import load_file

    folder = _cache_folder(train_data.name)
    # The name alone does not say which images: the same name over another number of training
    # images (a subset, a folder that grew) trains anew.
    expected = {"arch": ARCH, "dataset": train_data.name, "image_shape": list(train_data.image_shape),
                "num_classes": train_data.num_classes, "train_size": len(train_data)}
    if folder is not None and (folder / WEIGHTS_FILE).exists():
        saved = read_config(folder)
        if {k: saved.get(k) for k in expected} == expected:
            net = Classifier(train_data.image_shape, train_data.num_classes)
            net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
            return net.eval(), saved["test_accuracy"]
    net, acc = train_classifier(train_data, test_data)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        save_weights_atomic(net.state_dict(), folder / WEIGHTS_FILE)
        write_json_atomic(folder / CONFIG_FILE, {**expected, "test_accuracy": acc, "test_size": len(test_data)})
    return net, acc


def inception_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS


def _without_pickle(build, path: Path):
    """``build()`` with pytorch-fid's weights read by a weights-only load of the local ``path``:
    pytorch-fid itself reads them with ``torch.hub``'s loader, which unpickles arbitrary objects,
    so genlab swaps that loader, for the length of the call, for ``torch.load(weights_only=True)``,
    which accepts tensors and plain containers only."""
    import pytorch_fid.inception as fid

    original = fid.load_state_dict_from_url
    fid.load_state_dict_from_url = lambda *args, **kwargs: torch.load(path, map_location="cpu", weights_only=True)
    try:
        return build()
    finally:
        fid.load_state_dict_from_url = original


def inception_network() -> nn.Module:
    """pytorch-fid's Inception-v3 (images in [0, 1], any size, 1 or 3 channels) -> (N, 2048)."""
    path = inception_weights_path()
    try:
        from pytorch_fid.inception import InceptionV3  # needs torchvision
    except ImportError:
        available = False
    else:
        available = path.exists()
    if not available:
        raise GenlabError(f"Inception-v3 weights are not in the local cache (needs the pytorch-fid package "
                          f"and {INCEPTION_WEIGHTS}); use --features classifier or put the file at {path}")
    net = _without_pickle(lambda: InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                              normalize_input=True), path).eval()

    def features(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey images as equal RGB channels, as pytorch-fid does
        return net(x)[0].flatten(1)

    return features


def feature_extractor(kind: str, train_data, test_data) -> FeatureExtractor:
    """``classifier`` (trained on ``train_data``, cached) or ``inception``."""
    if kind == "classifier":
        net, acc = feature_classifier(train_data, test_data)
        return FeatureExtractor(net.features, f"classifier:{train_data.name}", acc)
    if kind == "inception":
        return FeatureExtractor(inception_network(), "inception-v3", batch_size=100)
    raise GenlabError(f"unknown features '{kind}'; choose 'classifier' or 'inception'")
