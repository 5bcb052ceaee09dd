"""What the commands do with a trained run: sample, reconstruct, encode, evaluate.

Each function takes a :class:`~genlab.train.Run` and writes its result into a file, returning the
path, so the CLI stays a thin layer over these.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError, check_seed
from ..latent.codes import encode_dataset
from ..metrics import evaluate
from ..files import write_atomic, write_json_atomic
from ..sampling import draw_samples
from ..train import Run
from ..viz import save_gif, save_grid



def _image_suffixes() -> tuple[str, ...]:
    from PIL import Image

    known = {ext for ext, kind in Image.registered_extensions().items() if kind in Image.SAVE and ext != ".gif"}
    first = tuple(ext for ext in (".png", ".jpg", ".jpeg", ".webp") if ext in known)
    return first + tuple(sorted(known - set(first)))


def output_file(out: str | os.PathLike | None, default: Path, suffixes: tuple[str, ...] | None = None,
                kind: str = "") -> Path:
    """The file a command writes: ``out``, or ``default`` in the run folder. Checked before any
    work, in one line each: a folder, a name without one of ``suffixes`` (what the file is:
    ``kind``). (A run folder's own files are refused by :func:`genlab.runs.check_not_run_file`.)"""
    path = Path(out) if out is not None else default
    if path.is_dir():
        raise GenlabError(f"`out={path}` is a folder; give a file name, e.g. `out={path / default.name}`")
    if suffixes and path.suffix.lower() not in suffixes:
        shown = ", ".join(suffixes[:4]) + (", ..." if len(suffixes) > 4 else "")
        raise GenlabError(f"`out` must name {kind or 'a file'} ending in {shown}, got '{path.name}'")
    return path


#: the most pixels of the samples in one picture, the frames of a denoising sampler's GIF counted
MAX_PICTURE_PIXELS = 2 ** 26


def check_picture_size(model, n: int, frames: int = 0) -> None:
    """Refuse ``n`` samples whose grid (and, for a denoising sampler, the frames of its GIF) would
    hold more than :data:`MAX_PICTURE_PIXELS` pixels, before any is drawn."""
    if n < 1:
        raise GenlabError(f"`num` (the number of samples) must be at least 1, got {n}")
    copies = 1 + (frames if model.capabilities.denoising_sampler else 0)
    per_sample = model.config.image_shape[-2] * model.config.image_shape[-1] * copies
    if n * per_sample > MAX_PICTURE_PIXELS:
        frames_note = f" in {copies} frames" if copies > 1 else ""
        raise GenlabError(f"{n:,} samples (`num`) make pictures of {n * per_sample:,} pixels{frames_note}, over the "
                          f"limit of {MAX_PICTURE_PIXELS:,}; draw at most {MAX_PICTURE_PIXELS // per_sample:,} "
                          "(and more with another `seed`)")


def sample(run: Run, n: int = 64, seed: int = 0, label: int | None = None,
           out: str | os.PathLike | None = None, **settings: float | str | None) -> Path:
    """A grid of ``n`` samples drawn with ``seed`` (of class ``label`` for conditional models);
    ``settings`` as for :func:`sample_files`."""
    return sample_files(run, n, seed, label, out, **settings)[0]


def sample_files(run: Run, n: int = 64, seed: int = 0, label: int | None = None,
                 out: str | os.PathLike | None = None, steps: int | None = None, guidance: float | None = None,
                 eta: float | None = None, frames: int = 40, sampler: str | None = None) -> list[Path]:
    """The grid of :func:`sample` and, for a model that samples by denoising (diffusion), a GIF
    of the batch being denoised beside it (same name, ``.gif``). ``sampler`` (its name, e.g.
    ``dpm++2m``), ``steps``, ``guidance`` and ``eta`` set the denoising sampler (default: the
    model's); other models refuse them."""
    path = output_file(out, run.path / "samples.png", _image_suffixes(), "an image file")
    check_picture_size(run.model, n, frames)
    images, shown = draw_samples(run.model, n, seed, label, steps, guidance, eta, frames, sampler)
    if not shown:
        return [save_grid(images, path)]
    gif = save_gif(shown + [images] * 12, path.with_suffix(".gif"), duration_ms=80)  # rest on the result
    return [save_grid(images, path), gif]


@torch.no_grad()
def reconstruct(run: Run, n: int = 32, split: str = "test", data_dir=None,
                out: str | os.PathLike | None = None) -> Path:
    """The first ``n`` images of ``split`` (odd rows) above their reconstructions (even rows)."""
    if n < 1:
        raise GenlabError(f"`n` (the number of images) must be at least 1, got {n}")
    path = output_file(out, run.path / "reconstructions.png", _image_suffixes(), "an image file")
    data = run.dataset(split, data_dir)
    x, y = data.tensors(slice(0, n))
    model = run.model
    r = model.reconstruct(x.to(model.device), None if y is None else y.to(model.device)).clamp(0, 1).cpu()
    per_row = min(16, len(x))
    rows = []
    for start in range(0, len(x), per_row):
        rows += [x[start:start + per_row], r[start:start + per_row]]
    return save_grid(torch.cat(rows), path, nrow=per_row)


@torch.no_grad()
def encode(run: Run, split: str = "test", data_dir=None, batch_size: int = 500,
           out: str | os.PathLike | None = None) -> Path:
    """Codes of every image of ``split`` into an .npz with arrays ``z`` (N, d) and ``labels``,
    written atomically at exactly ``out`` (which must end in ``.npz``)."""
    path = output_file(out, run.path / f"latents-{split}.npz", (".npz",), "an .npz file")
    data = run.dataset(split, data_dir)
    codes, _ = encode_dataset(run.model, data, batch_size=batch_size)
    arrays = {"z": codes.numpy()}
    if data.labels is not None:
        arrays["labels"] = data.labels.numpy()
    return write_atomic(path, lambda f: np.savez(f, **arrays))


#: bounds of ``evaluate``'s counts, checked before any work
MAX_MC_SAMPLES = 10_000
MIN_QUALITY_SAMPLES, MAX_QUALITY_SAMPLES = 10, 1_000_000


def evaluate_run(run: Run, split: str = "test", mc_samples: int = 10, seed: int = 0, data_dir=None,
                 out: str | os.PathLike | None = None, metrics: list[str] | None = None,
                 num_samples: int | None = None, features: str = "classifier",
                 importance_samples: int = 5000, progress: bool = True) -> tuple[dict, Path]:
    """Metrics on ``split``, written to ``evaluation-<split>.json``. ``metrics`` None (or containing
    ``default``): every reconstruction and likelihood metric that applies; ``nll``: the
    importance-weighted estimate of -log p(x) with ``importance_samples`` draws per image (nats,
    bits/dim, standard error over the images); ``fid``, ``kid``, ``pr`` (precision/recall) and
    ``dc`` (density/coverage) compare ``num_samples`` samples with ``split`` in the space of
    ``features`` (``classifier`` or ``inception``)."""
    metrics = None if metrics is None else _metric_names(metrics)
    if not 1 <= mc_samples <= MAX_MC_SAMPLES:
        raise GenlabError(f"`mc_samples` must lie in 1..{MAX_MC_SAMPLES}, got {mc_samples}")
    check_seed(seed)
    quality = [m for m in metrics or [] if m not in ("default", "nll")]
    if num_samples is not None and not MIN_QUALITY_SAMPLES <= num_samples <= MAX_QUALITY_SAMPLES:
        raise GenlabError(f"`num_samples` must lie in {MIN_QUALITY_SAMPLES}..{MAX_QUALITY_SAMPLES} (fewer "
                          f"samples make FID, KID and precision/recall meaningless), got {num_samples}")
    path = output_file(out, run.path / f"evaluation-{split}.json", (".json",), "a .json file")
    data = run.dataset(split, data_dir)
    results = {"split": split, "dataset": run.dataset_name}
    if not metrics or "default" in metrics:
        results.update(evaluate(run.model, data, mc_samples=mc_samples, seed=seed, data_dir=data_dir))
    if metrics and "nll" in metrics:
        results.update(_importance_weighted_nll(run.model, data, importance_samples, seed, progress))
    if quality:
        from ..metrics.sample_quality import evaluate_samples

        results.update(evaluate_samples(run.model, data, run.dataset("train", data_dir), quality,
                                        num_samples, features, seed))
    write_json_atomic(path, {**_earlier(path, out, split), **results})
    return results, path


def _earlier(path: Path, out, split: str) -> dict:
    """What an earlier ``evaluate`` of this split wrote to the run's own file, which this one adds
    to (``--metrics nll`` after the default keeps the ELBO); nothing for a file the user named."""
    if out is not None or not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return earlier if isinstance(earlier, dict) and earlier.get("split") == split else {}


def _metric_names(metrics: list[str]) -> list[str]:
    """The metrics asked for in genlab's words (``elbo`` is part of ``default``), each once."""
    from ..metrics.sample_quality import METRICS
    from ..names import METRIC_ALIASES, resolve

    names = [resolve(m, ["default", "nll", *METRICS], METRIC_ALIASES, "metric") for m in metrics]
    return list(dict.fromkeys(names))


def _importance_weighted_nll(model, data, k: int, seed: int, progress: bool) -> dict:
    from ..metrics.likelihood import importance_weighted_log_likelihood

    if not model.capabilities.likelihood:
        raise GenlabError(f"--metrics nll needs a model with a likelihood (a VAE), not a {model.family}")
    if not 1 <= k <= 100_000:
        raise GenlabError(f"--importance-samples must lie in 1..100000, got {k}")
    # Bounded memory: at most about 10,000 decoded images at a time, whatever K.
    batch_size = max(1, min(100, 10_000 // k))
    r = importance_weighted_log_likelihood(model, data, k=k, seed=seed, batch_size=batch_size,
                                           chunk=min(k, 10_000 // batch_size), progress=progress)
    out = {"nll": r["nll"], "nll_stderr": r["nll_stderr"], "nll_bits_per_dim": r["bits_per_dim"],
           "importance_samples": k, "sampling_seed": seed}
    if "binarization_seed" in r:
        out["binarization_seed"] = r["binarization_seed"]
    return out


#: figures shown on the line of another (``fid_floor`` beside ``fid``), not on their own
_BESIDE = {"fid": ("fid_floor", "fid_x_floor"), "kid": ("kid_std", "kid_floor")}


def format_metrics(results: dict) -> str:
    """The figures of ``evaluate``, one per line, each beside its baseline where it has one (FID
    beside the real data's own); a hint when no figure applies to the model by default."""
    beside = {k for main, keys in _BESIDE.items() if main in results for k in keys}
    lines = []
    for key, value in results.items():
        if key in beside:
            continue
        text = _number(value)
        if key == "fid" and "fid_floor" in results:
            text += f"   (real data: {_number(results['fid_floor'])}; {results['fid_x_floor']:.1f} x the floor)"
        elif key == "kid" and "kid_std" in results:
            text += f" +- {_number(results['kid_std'])} (over subsets)"
            if "kid_floor" in results:
                text += f"   (real data: {_number(results['kid_floor'])})"
        lines.append(f"{key:>22}: {text}")
    measured = [k for k in results if k not in ("split", "dataset", "num_images")]
    if not measured:
        lines.append("no figure applies to this model by default; ask for samples' with --metrics fid,kid,pr "
                     "(--features inception on unlabelled data)")
    return "\n".join(lines)


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)
