"""Sample-quality metrics: how close a set of generated images is to a set of real ones.

All of them compare features (N, F) of images, taken by a feature network
(:mod:`genlab.metrics.features`), never the pixels:

- :func:`fid`: Frechet distance between Gaussians fitted to the two sets (Heusel et al. 2017);
  0 for equal statistics, in squared feature units. Biased upwards for small N.
- :func:`kid`: squared maximum mean discrepancy with the cubic polynomial kernel, unbiased
  (Binkowski et al. 2018): mean and standard deviation over random subsets; about 0 for two
  samples of one distribution (it can be slightly negative).
- :func:`precision_recall`: the share of generated images inside the real images' k-NN manifold
  (fidelity) and of real images inside the generated ones' (coverage of modes)
  (Kynkaanniemi et al. 2019).
- :func:`density_coverage`: density counts how many real k-NN balls hold each generated image
  (about 1 for matching sets; robust to real outliers); coverage is the share of real balls that
  hold at least one generated image (Naeem et al. 2020).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GenlabError

#: names for ``--metrics`` and the keys each one writes
METRICS = {"fid": ("fid",), "kid": ("kid", "kid_std"), "pr": ("precision", "recall"),
           "dc": ("density", "coverage")}


def _as_tensor(x) -> torch.Tensor:
    """float64 tensor of numpy arrays or tensors."""
    return torch.as_tensor(x).double() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x, np.float64))


def _sqrtm_psd(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + tr(s1 + s2 - 2 (s1 s2)^(1/2)) for Gaussians N(mu1, s1), N(mu2, s2)
    (means (F,), covariances (F, F), numpy or torch).

    tr((s1 s2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix s1^(1/2) s2 s1^(1/2), which has the same spectrum: real, stable for singular
    covariances (fewer images than features), in float64."""
    mu1, s1, mu2, s2 = (_as_tensor(v) for v in (mu1, s1, mu2, s2))
    r = _sqrtm_psd(s1)
    middle = r @ s2 @ r
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * trace_sqrt)


def fid(real, fake) -> float:
    """Frechet distance between Gaussians fitted to features (N, F) and (M, F)."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    return frechet_distance(real.mean(0), real.T.cov(), fake.mean(0), fake.T.cov())


def kid(real, fake, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with kernel k(a, b) = (a.b / F + 1)^3 between features (N, F) and (M, F):
    (mean, standard deviation) over ``subsets`` random subsets of ``subset_size`` from each set.
    Sets of at most ``subset_size`` images are drawn from in subsets of half their size, so that
    the spread over subsets still says how much the figure varies."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    m = min(subset_size, len(real), len(fake))
    if m < 4:
        raise GenlabError("KID needs at least 4 images in each set")
    if m == min(len(real), len(fake)):
        m = max(2, m // 2)   # whole sets would give one value and no spread
    generator = torch.Generator().manual_seed(seed)
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        a = real[torch.randperm(len(real), generator=generator)[:m]]
        b = fake[torch.randperm(len(fake), generator=generator)[:m]]
        kaa, kbb, kab = [(u @ v.T / d + 1) ** 3 for u, v in ((a, a), (b, b), (a, b))]
        # Off-diagonal means: dropping k(x, x) makes the estimate unbiased.
        off = (kaa.sum() - kaa.trace() + kbb.sum() - kbb.trace()) / (m * (m - 1))
        values.append(float(off - 2 * kab.mean()))
    return float(np.mean(values)), float(np.std(values))


def _distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Euclidean distances (N, M) in float64, computed in row chunks."""
    return torch.cat([torch.cdist(a[i:i + chunk], b) for i in range(0, len(a), chunk)])


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance (N,) from each point to its k-th nearest other point of the same set."""
    if len(x) <= k:
        raise GenlabError(f"k-nearest-neighbour metrics need more than k={k} images per set")
    return _distances(x, x).kthvalue(k + 1, dim=1).values  # k + 1: the point itself is at 0


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of features (N, F) and (M, F):
    precision is the share of fake points within the k-NN radius of some real point, recall the
    share of real points within the k-NN radius of some fake point."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    cross = _distances(fake, real)  # (M, N)
    precision = (cross <= _knn_radii(real, k)[None, :]).any(1).double().mean()
    recall = (cross.T <= _knn_radii(fake, k)[None, :]).any(1).double().mean()
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of features (N, F) and (M, F), both from the real
    points' k-NN balls: density = (1 / kM) * sum over fakes of the balls holding them; coverage =
    share of real balls holding at least one fake."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    inside = _distances(fake, real) <= _knn_radii(real, k)[None, :]  # (M, N)
    return float(inside.double().sum() / (k * len(fake))), float(inside.any(0).double().mean())


def compare_features(real, fake, metrics: list[str] | tuple[str, ...],
                     seed: int = 0) -> dict[str, float]:
    """The named metrics (keys of :data:`METRICS`) of fake against real features."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise GenlabError(f"unknown sample-quality metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    out: dict[str, float] = {}
    if "fid" in metrics:
        out["fid"] = fid(real, fake)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kid(real, fake, seed=seed)
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(real, fake)
    if "dc" in metrics:
        out["density"], out["coverage"] = density_coverage(real, fake)
    return out


@torch.no_grad()
def generate(model, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """``n`` samples (n, C, H, W) in [0, 1] on the CPU, drawn with ``seed``; a conditional model
    gets classes in turn (0, 1, ..., K-1, 0, ...) so every class is equally represented."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    k = model.config.num_classes if model.conditional else None
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        labels = (torch.arange(start, start + m) % k) if k else None
        out.append(model.sample(m, generator=generator, labels=labels).clamp(0, 1).cpu())
    return torch.cat(out)


#: the fewest generated images a sample-quality measure is computed from
MIN_SAMPLES = 10


def evaluate_samples(model, test_data, train_data, metrics=("fid", "kid", "pr"), num_samples: int | None = None,
                     features: str = "classifier", seed: int = 0) -> dict:
    """Sample-quality ``metrics`` of ``num_samples`` images from ``model`` (default: as many as the
    test split holds) against the test split, in the space of ``features`` (``classifier`` or
    ``inception``). The result names the feature network and, for the classifier, its test accuracy."""
    from .features import feature_extractor

    if num_samples is not None and num_samples < MIN_SAMPLES:
        raise GenlabError(f"`num_samples` must be at least {MIN_SAMPLES} (fewer samples make FID, KID and "
                          f"precision/recall meaningless), got {num_samples}")
    extractor = feature_extractor(features, train_data, test_data)
    n = len(test_data) if num_samples is None else num_samples
    real = extractor(test_data.tensors()[0])
    fake = extractor(generate(model, n, seed))
    out = {**extractor.describe(), "num_samples": n, "num_real": len(test_data),
           **compare_features(real, fake, list(metrics), seed)}
    if {"fid", "kid"} & set(metrics):   # beside them, the figures of as many real training images: the floor
        order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(seed))[:n]
        floor = extractor(train_data.batch(order).images)
    if "fid" in metrics:
        out["fid_floor"] = fid(real, floor)
        out["fid_x_floor"] = out["fid"] / out["fid_floor"] if out["fid_floor"] > 0 else float("nan")
    if "kid" in metrics:   # KID's scale is the feature network's: the floor says what is small
        out["kid_floor"] = kid(real, floor, seed=seed)[0]
    return out


#: samples of the sample-quality figures ``evaluate`` gives a model without an encoder by default
DEFAULT_SAMPLES = 1000


def against_floor(model, test_data, train_data, num_samples: int | None = None, seed: int = 0) -> dict:
    """FID of samples from ``model`` against ``test_data`` beside its floor, the FID of as many
    real training images, the best a model can expect (a generator as good as the data scores
    what the training split scores), and their ratio. In the features of genlab's
    classifier of the dataset (which needs labels); ``num_samples`` default: the test split's
    size, at most :data:`DEFAULT_SAMPLES`. A seeded random subset of the test split when larger."""
    from .features import feature_extractor

    extractor = feature_extractor("classifier", train_data, test_data)
    n = min(len(test_data), DEFAULT_SAMPLES) if num_samples is None else num_samples
    pick = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(test_data), generator=pick)[:n] if n < len(test_data) else slice(None)
    real = extractor(test_data.batch(chosen).images)
    fake = extractor(generate(model, n, seed))
    floor = extractor(train_data.batch(torch.randperm(len(train_data), generator=pick)[:n]).images)
    out = {**extractor.describe(), "num_samples": n, "fid": fid(real, fake), "fid_floor": fid(real, floor)}
    out["fid_x_floor"] = out["fid"] / out["fid_floor"] if out["fid_floor"] > 0 else float("nan")
    return out

