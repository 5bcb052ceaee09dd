"""The latent space: encode a dataset, interpolate, map, find concept vectors, probe with few labels.

Every tool works on any model with an encoder and a decoder (PCA, autoencoders, VAEs). Models with
a latent input but no encoder (GANs; diffusion, whose code is its starting noise) take part through
``decode`` and their prior (:mod:`genlab.latent.prior`): paths between seeds or saved codes, maps of
prior draws labelled by a classifier, manifold grids. Concept vectors and probes need an encoder.
"""
from .codes import decode_codes, encode_dataset, encode_images, require_latent_space
from .concept import apply_concept, attribute_masks, concept_vector, read_attribute_file, select
from .interpolate import linear_interpolate, spherical_interpolate
from .maps import grid_codes, latent_scatter, manifold_grid, project_2d
from .prior import draw_codes, predict_classes, prior_map, seed_code
from .probe import budget_indices, format_probe_table, linear_probe_accuracy, parse_budgets, probe

__all__ = [
    "decode_codes", "encode_dataset", "encode_images", "require_latent_space", "apply_concept",
    "attribute_masks", "concept_vector", "read_attribute_file", "select", "linear_interpolate",
    "spherical_interpolate", "grid_codes", "latent_scatter", "manifold_grid", "project_2d",
    "draw_codes", "predict_classes", "prior_map", "seed_code",
    "budget_indices", "format_probe_table", "linear_probe_accuracy", "parse_budgets", "probe",
]
