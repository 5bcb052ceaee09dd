"""Measures of models: reconstruction error, ELBO, sample quality (FID, KID, precision/recall,
density/coverage), and the image quality of image-to-image models (PSNR, SSIM; ``image_quality``)."""
from .likelihood import elbo
from .reconstruction import reconstruction_error
from .sample_quality import density_coverage, evaluate_samples, fid, frechet_distance, kid, precision_recall

__all__ = ["elbo", "reconstruction_error", "evaluate", "fid", "frechet_distance", "kid", "precision_recall",
           "density_coverage", "evaluate_samples"]


def evaluate(model, data, mc_samples: int = 10, seed: int = 0, data_dir=None) -> dict[str, float]:
    """Every metric that applies to ``model`` on ``data`` (a dict of floats). ``data_dir``: where
    the training splits that the translation measures' classifiers learn from are found."""
    able = model.capabilities
    results: dict[str, float] = {"num_images": len(data)}
    if able.encoder and able.decoder:
        results.update(reconstruction_error(model, data))
    if able.likelihood:
        results.update(elbo(model, data, mc_samples=mc_samples, seed=seed))
    if able.codec:
        from ..families.codec.quality import codec_quality

        results.update(codec_quality(model, data))
    if able.domain_transfer:
        from .domain_transfer import domain_transfer_quality

        results.update(domain_transfer_quality(model, data, data_dir))
    elif able.condition_image:  # scikit-image is imported only here
        from .image_quality import image_quality

        results.update(image_quality(model, data, seed=seed))
        if model.paired and data.labels is not None:
            from .domain_transfer import paired_transfer_quality

            results.update(paired_transfer_quality(model, data, data_dir))
    return results
