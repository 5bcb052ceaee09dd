"""Drawing samples from any model with a prior, as data: the images and, for a denoising sampler,
the batch on its way from noise to images. The CLI, the demo and the report write them to files."""
from __future__ import annotations

import torch

from .errors import GenlabError, check_finite, check_seed
from .models.base import GenerativeModel, NotSupported


@torch.no_grad()
def draw_samples(model: GenerativeModel, n: int = 64, seed: int = 0, label: int | None = None,
                 steps: int | None = None, guidance: float | None = None, eta: float | None = None,
                 frames: int = 0, sampler: str | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``n`` images (n, C, *spatial) in [0, 1] on the CPU, drawn with ``seed``, all of class
    ``label`` for a conditional model (else classes in turn), and about ``frames`` intermediate
    batches of a denoising sampler (diffusion: ``sampler``, ``steps``, ``guidance`` and ``eta`` set
    it; the model's defaults otherwise). Other models refuse those settings and return no frames."""
    if n < 1:
        raise GenlabError(f"`num` (the number of samples) must be at least 1, got {n}")
    check_seed(seed)
    check_finite(guidance, "guidance")
    check_finite(eta, "eta")
    labels = None
    if label is not None:
        if not model.conditional:
            raise GenlabError(f"`label` needs a conditional model; a {model.name} model has no classes")
        k = model.config.num_classes
        if not 0 <= label < k:
            raise GenlabError(f"`label` must lie in 0..{k - 1}, got {label}")
        labels = torch.full((n,), label, dtype=torch.long)
    if not model.capabilities.prior:
        raise NotSupported(f"a {model.name} model cannot sample: it has no prior")
    generator = torch.Generator().manual_seed(seed)
    options = {k: v for k, v in (("sampler", sampler), ("steps", steps), ("guidance", guidance), ("eta", eta))
               if v is not None}
    model.eval()
    if not model.capabilities.denoising_sampler:  # one pass: nothing to set, nothing to animate
        if options:
            raise GenlabError(f"`{next(iter(options))}` applies to diffusion models only; this is a {model.name} model")
        return model.sample(n, generator=generator, labels=labels).cpu(), []
    # The same draws as model.sample(n, generator, labels), so a seed gives the same images.
    images, shown = model.generate(model.prior_noise(n, generator), labels, generator=generator,
                                   frames=frames, **options)
    return images.cpu(), [f.cpu() for f in shown]
