"""The latent-space commands (``interpolate``, ``latent-map``, ``concept``, ``probe``): each takes
a trained run, computes with the library's functions (:mod:`genlab.latent`, which return tensors
and dicts), writes the pictures and tables into the run folder (or ``out_dir``) and returns their
paths. Their messages name the command's flags."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError, check_finite, check_seed
from ..files import write_json_atomic
from ..train import Run
from ..viz import auto_scale, save_gif, save_grid
from ..latent.codes import encode_dataset, encode_images, require_latent_space
from ..latent.concept import apply_concept, attribute_masks, concept_vector, with_attribute_file
from ..latent.interpolate import interpolation_path
from ..latent.maps import latent_scatter, manifold_grid
from ..latent.prior import prior_map, seed_code
from ..latent.probe import format_probe_table, pca_features, probe


def _out(run: Run, out_dir) -> Path:
    path = Path(out_dir) if out_dir is not None else run.path
    path.mkdir(parents=True, exist_ok=True)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


# ------------------------------------------------------------------------ interpolation
def read_latent_file(path: Path, width: int) -> torch.Tensor:
    """One latent vector (width,) from a .npy, .npz (array ``z`` or the first) or text file."""
    try:
        if path.suffix == ".npz":
            with np.load(path) as f:
                z = f["z"] if "z" in f else f[f.files[0]]
        elif path.suffix == ".npy":
            z = np.load(path)
        else:
            z = np.loadtxt(path)
    except (OSError, ValueError, KeyError) as err:
        raise GenlabError(f"cannot read a latent vector from {path}: {err}") from None
    z = np.asarray(z, dtype=np.float32).reshape(-1)
    if z.size != width:
        raise GenlabError(f"{path} holds {z.size} numbers but the model's code is {width}-d")
    if not np.isfinite(z).all():
        raise GenlabError(f"{path} holds numbers that are not finite (NaN or infinity); a latent vector "
                          "is finite")
    return torch.from_numpy(z)


def resolve_endpoint(run: Run, spec: str, data) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
    """A path end point: ``spec`` is a test-image index, or a .npy/.npz/.txt file holding one
    latent vector. Returns the code (d,), the image (C, H, W) or None, and the label or None."""
    model = run.model
    width = require_latent_space(model)
    if spec.lstrip("-").isdigit():
        i = int(spec)
        if not 0 <= i < len(data):
            raise GenlabError(f"image index {i} is out of range: the {data.split} split has {len(data)} images")
        x, y = data.tensors(slice(i, i + 1))
        return encode_images(model, x, y)[0], x[0], None if y is None else int(y[0])
    path = Path(spec)
    if not path.is_file():
        raise GenlabError(f"'{spec}' is neither a test-image index nor a latent-vector file (.npy, .npz, .txt)")
    if model.conditional:
        raise GenlabError("a conditional model needs test-image indices as end points (they give the class)")
    return read_latent_file(path, width), None, None


def resolve_prior_endpoint(model, spec: str) -> torch.Tensor:
    """A path end point of a model without an encoder: ``spec`` is a seed (the z that
    ``model.prior_noise(1, torch.Generator().manual_seed(seed))`` draws) or a latent-vector file."""
    width = require_latent_space(model, encoder=False)
    if spec.lstrip("-").isdigit():
        return seed_code(model, int(spec))
    path = Path(spec)
    if not path.is_file():
        raise GenlabError(f"'{spec}' is neither a seed (an integer) nor a latent-vector file (.npy, .npz, .txt)")
    return read_latent_file(path, width)


@torch.no_grad()
def class_path(model, z: torch.Tensor, a: int, b: int, steps: int) -> torch.Tensor:
    """Images (steps, C, H, W) in [0, 1] from one code z (d,) while the class moves from ``a`` to ``b``
    (a model with ``interpolate_classes``: the label input moves linearly)."""
    if not model.conditional:
        raise GenlabError(f"--to-label needs a conditional model (cgan); a {model.name} model has no classes")
    if not model.capabilities.class_interpolation:
        raise GenlabError(f"a {model.name} model cannot blend two classes; interpolate within a class "
                          "with --label L and --to B instead")
    if steps < 2:
        raise GenlabError(f"an interpolation needs at least 2 steps (its two end points), got {steps}")
    model.eval()
    return model.interpolate_classes(z.to(model.device), a, b, steps).clamp(0, 1).cpu()


def _check_labels_for_encoder_model(model, label, to_label) -> None:
    if label is None and to_label is None:
        return
    if not model.conditional:
        raise GenlabError(f"--label and --to-label need a conditional model; a {model.name} model "
                          "has no classes")
    raise GenlabError(f"a {model.name} model takes the class of each end point from its test image; "
                      "--label and --to-label are for conditional models without an encoder (cgan)")


def prior_path(model, start: str, end: str | None = None, steps: int = 10, spherical: bool = False,
               label: int | None = None, to_label: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor, str]:
    """The path of a model without an encoder between ``start`` and ``end`` (seeds or latent files,
    see :func:`resolve_prior_endpoint`): codes (steps, d), images (steps, C, H, W) in [0, 1] and a
    name for its files. A conditional model decodes it with class ``label``; given ``to_label``,
    the path keeps the z of ``start`` while the class moves from ``label`` to ``to_label`` (codes
    None)."""
    for flag, k in (("--label", label), ("--to-label", to_label)):
        if k is not None and model.conditional and not 0 <= k < model.config.num_classes:
            raise GenlabError(f"{flag} {k} is out of range: this {model.name} has classes "
                              f"0..{model.config.num_classes - 1}")
    za = resolve_prior_endpoint(model, start)
    if to_label is not None:  # between classes: one z, the class changes
        if label is None:
            raise GenlabError("a path between classes needs --label L (where it starts) as well as --to-label M")
        if end is not None and end != start:
            raise GenlabError("a path between classes keeps one z: give --from A with --label L --to-label M, "
                              "without --to")
        tail = f"{_slug(Path(start).stem)}-class{label}-to-{to_label}"
        return None, class_path(model, za, label, to_label, steps), tail
    if end is None:
        raise GenlabError("give the end of the path: --to B (a seed or a latent file), or --to-label M for a "
                          "path between classes with the same z")
    if model.conditional and label is None:
        raise GenlabError(f"a conditional {model.name} needs --label L for a path within class L "
                          "(add --to-label M for a path between classes)")
    if label is not None and not model.conditional:
        raise GenlabError(f"--label needs a conditional model; a {model.name} model has no classes")
    zb = resolve_prior_endpoint(model, end)
    model.eval()
    z, images = interpolation_path(model, za, zb, steps, spherical, (label, label))
    tail = f"{_slug(Path(start).stem)}-{_slug(Path(end).stem)}" + ("" if label is None else f"-class{label}")
    return z, images, tail


#: the most images an interpolation decodes (a strip and a GIF of them)
MAX_STEPS = 1000


def interpolate_run(run: Run, start: str, end: str | None = None, steps: int = 10, spherical: bool = False,
                    data_dir=None, out_dir: str | os.PathLike | None = None, label: int | None = None,
                    to_label: int | None = None) -> list[Path]:
    """A strip (PNG) and an animation (GIF, there and back) of the decoder along the path from
    ``start`` to ``end``. With an encoder, end points are test-image indices or latent files, and
    image end points are shown beside the strip, left of A's end and right of B's. Without one
    (GANs, diffusion), they are seeds or latent files; a conditional model decodes the path with
    class ``label``, or, given ``to_label``, keeps A's z while the class moves from ``label`` to
    ``to_label`` (``end`` then omitted)."""
    if not 2 <= steps <= MAX_STEPS:
        raise GenlabError(f"`steps` must lie in 2..{MAX_STEPS} (the images of the path, its two ends "
                          f"included), got {steps}")
    model = run.model
    require_latent_space(model, encoder=False, purpose="interpolations")
    if model.capabilities.encoder:
        _check_labels_for_encoder_model(model, label, to_label)
        if end is None:
            raise GenlabError("give the end of the path: --to B (a test-image index or a latent file)")
        data = run.dataset("test", data_dir)
        za, xa, la = resolve_endpoint(run, start, data)
        zb, xb, lb = resolve_endpoint(run, end, data)
        _, images = interpolation_path(model, za, zb, steps, spherical, (la, lb))
        strip = torch.cat([t for t in (xa[None] if xa is not None else None, images,
                                       xb[None] if xb is not None else None) if t is not None])
        tail = f"{_slug(Path(start).stem)}-{_slug(Path(end).stem)}"
    else:
        _, images, tail = prior_path(model, start, end, steps, spherical, label, to_label)
        strip = images
        spherical = spherical and to_label is None  # a path between classes moves no code
    stem = f"interpolation-{tail}{'-slerp' if spherical else ''}"
    out = _out(run, out_dir)
    frames = [images[i:i + 1] for i in list(range(steps)) + list(range(steps - 2, 0, -1))]
    scale = auto_scale(images, 96)
    return [save_grid(strip, out / f"{stem}.png", nrow=len(strip)),
            save_gif(frames, out / f"{stem}.gif", scale=scale, duration_ms=100)]


# ------------------------------------------------------------------------ maps
def latent_map_run(run: Run, method: str = "pca", limit: int | None = 5000, grid: int = 15, seed: int = 0,
                   data_dir=None, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """``latent-map.png``: the codes of the first ``limit`` test images, coloured by class
    (projected to 2-D when wider); for 2-D codes also ``manifold-grid.png``. A model without an
    encoder maps ``limit`` draws from its prior instead, coloured by the class the dataset's cached
    classifier predicts for each generated image (see :func:`genlab.latent.prior.prior_map`)."""
    if limit is not None and limit < 1:
        raise GenlabError(f"`limit` must be at least 1 (images to encode or codes to draw), got {limit}")
    if grid < 1:
        raise GenlabError(f"`grid` must be at least 1, got {grid}")
    check_seed(seed)
    model = run.model
    require_latent_space(model, encoder=False, purpose="latent maps")
    out = _out(run, out_dir)
    if not model.capabilities.encoder:
        image, info = prior_map(model, run.dataset("train", data_dir), run.dataset("test", data_dir),
                                limit or 5000, method, seed)
        codes, width = info["codes"], info["codes"].shape[1]
    else:
        data = run.dataset("test", data_dir)
        codes, labels = encode_dataset(model, data, limit)
        width = codes.shape[1]
        how = "" if width <= 2 else f", {method.upper() if method == 'pca' else 't-SNE'} projection"
        title = f"{run.config.get('name', model.family)} on {data.name}: {len(codes)} test codes ({width}-d{how})"
        image = latent_scatter(codes, None if labels is None else labels.numpy(), data.class_names, method, title,
                               seed=seed)
    path = out / "latent-map.png" if method == "pca" or width <= 2 else out / f"latent-map-{method}.png"
    image.save(path)
    paths = [path]
    if width == 2:
        images = manifold_grid(model, grid, codes)
        paths.append(save_grid(images, out / "manifold-grid.png", nrow=grid, scale=auto_scale(images, 40)))
    return paths


# ------------------------------------------------------------------------ concepts
def concept_run(run: Run, attribute: str, attributes_file=None, split: str = "test", images: list[int] | None = None,
                strengths=(-1.5, -1, -0.5, 0, 0.5, 1, 1.5), limit: int | None = 10000, data_dir=None,
                out_dir: str | os.PathLike | None = None) -> tuple[dict, list[Path]]:
    """The concept vector of ``attribute`` (see :mod:`genlab.latent.concept` for the syntax),
    from the first ``limit`` images of ``split``; written as ``concept-NAME.npy`` (d,) and a
    grid ``concept-NAME.png``: one row per chosen image (default: the first 8 without the
    attribute), the image itself, then its code plus s * vector decoded for each strength s."""
    for strength in strengths:
        check_finite(strength, "strengths")
    if not strengths:
        raise GenlabError("give at least one of `strengths`")
    if limit is not None and limit < 1:
        raise GenlabError(f"`limit` must be at least 1 (images used to compute the vector), got {limit}")
    require_latent_space(run.model, purpose="concept vectors")
    data = run.dataset(split, data_dir).subset(slice(0, limit))
    if attributes_file is not None:
        data = with_attribute_file(data, attributes_file)
    pos, neg = attribute_masks(data, attribute)
    codes, labels = encode_dataset(run.model, data)
    vector = concept_vector(codes, pos, neg)
    if images is None:
        images = torch.nonzero(neg).reshape(-1)[:8].tolist()
    bad = [i for i in images if not 0 <= i < len(data)]
    if bad:
        raise GenlabError(f"image index {bad[0]} is out of range: the {split} split has {len(data)} images")
    chosen = torch.tensor(images, dtype=torch.long)
    x = data.batch(chosen).images
    grid = apply_concept(run.model, codes[chosen], vector, strengths, None if labels is None else labels[chosen])
    rows = torch.cat([x[:, None], grid.reshape(len(chosen), len(strengths), *x.shape[1:])], 1)
    out = _out(run, out_dir)
    stem = f"concept-{_slug(attribute)}"
    np.save(out / f"{stem}.npy", vector.numpy())
    info = {"attribute": attribute, "split": split, "with": int(pos.sum()), "without": int(neg.sum()),
            "norm": float(vector.norm()), "strengths": list(strengths), "images": images}
    write_json_atomic(out / f"{stem}.json", info)
    png = save_grid(rows.flatten(0, 1), out / f"{stem}.png", nrow=len(strengths) + 1)
    return info, [out / f"{stem}.npy", png, out / f"{stem}.json"]


# ------------------------------------------------------------------------ probes
def probe_run(run: Run, budgets: list[int | None], seeds=(0, 1, 2), data_dir=None, max_iter: int = 200,
              out: str | os.PathLike | None = None) -> tuple[dict, Path]:
    """Linear probes on codes, raw pixels and PCA features of the same width (see
    :mod:`genlab.latent.probe`); results written to ``probe.json`` in the run folder."""
    model = run.model
    width = require_latent_space(model, purpose="linear probes")
    if model.conditional:
        raise GenlabError("a conditional model's code is computed from the class label itself; "
                          "probe an unconditional model")
    train, test = run.dataset("train", data_dir), run.dataset("test", data_dir)
    if train.labels is None or test.labels is None:
        raise GenlabError(f"a probe needs class labels, and {train.name} has none")
    pixels = [d.tensors()[0].flatten(1).numpy() for d in (train, test)]
    codes = [encode_dataset(model, d)[0].numpy() for d in (train, test)]
    features = {f"code ({width}-d)": tuple(codes),
                f"pixels ({pixels[0].shape[1]}-d)": tuple(pixels),
                f"PCA ({width}-d)": pca_features(*pixels, width)}
    rows = probe(features, train.labels.numpy(), test.labels.numpy(), budgets, list(seeds), max_iter)
    results = {"run": str(run.path), "model": run.config.get("name", model.family), "dataset": train.name,
               "train_images": len(train), "test_images": len(test), "seeds": list(seeds),
               "metric": "test accuracy (fraction); std over seeds", "rows": rows,
               "table": format_probe_table(rows)}
    path = Path(out) if out is not None else run.path / "probe.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, results)
    return results, path
