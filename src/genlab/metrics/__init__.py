"""Measures of models: reconstruction error, ELBO, sample quality (FID, KID, precision/recall,
density/coverage), and shared pieces of the families' own measures (PSNR and SSIM: ``image_quality``;
FID of translations: ``domain_transfer``)."""
from .likelihood import elbo
from .reconstruction import reconstruction_error
from .sample_quality import (against_floor, density_coverage, evaluate_samples, fid, frechet_distance, kid,
                             precision_recall)

__all__ = ["elbo", "reconstruction_error", "evaluate", "fid", "frechet_distance", "kid", "precision_recall",
           "density_coverage", "evaluate_samples"]


def evaluate(model, data, mc_samples: int = 10, seed: int = 0, data_dir=None) -> dict[str, float]:
    """Every metric that applies to ``model`` on ``data`` (a dict of floats): the core's
    (reconstruction error with an encoder and a decoder, the ELBO with a likelihood), then the
    figures its family measures (its record's ``measures``: PSNR beside the baseline, bits per
    pixel, the translations' FID...). ``data_dir``: where the training splits that a family's
    measures learn from (the translation measures' classifiers) are found."""
    from ..registry import family_of  # the registry imports the families, which import metrics

    able = model.capabilities
    results: dict[str, float] = {"num_images": len(data)}
    if able.encoder and able.decoder:
        results.update(reconstruction_error(model, data))
    if able.likelihood:
        results.update(elbo(model, data, mc_samples=mc_samples, seed=seed))
    if able.prior and not able.encoder and not able.condition_image and data.labels is not None:
        # A generator has no figure but its samples': FID and KID beside the real data's own.
        train_data = _training_split(model, data, data_dir, seed)
        if train_data is not None:
            results.update(against_floor(model, data, train_data, seed=seed))
    measures = family_of(model).measures
    if measures is not None:
        results.update(measures(model, data, seed=seed, data_dir=data_dir))
    return results


def _training_split(model, data, data_dir, seed: int):
    """The training split of ``data``'s dataset, prepared as ``model``'s family takes it; None for
    data that cannot be loaded again by name (arrays given in Python)."""
    from ..data import load_dataset
    from ..registry import family_of

    if not data.name or data.name == "arrays":
        return None
    train = load_dataset(data.name, "train", data_dir)
    prepare = family_of(model).prepare_data
    return train if prepare is None else prepare(train, model.config.to_dict(), data_dir, seed)

