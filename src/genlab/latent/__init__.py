"""The latent space: encode a dataset, interpolate, map, find concept vectors, probe with few labels.

Every tool works on any model with an encoder and a decoder (PCA, autoencoders, VAEs); models
without an encoder take part through ``decode`` only (manifold grids, paths between saved codes).
"""
from .codes import decode_codes, encode_dataset, encode_images, require_latent_space
from .concept import apply_concept, attribute_masks, concept_vector, read_attribute_file, select
from .interpolate import linear_interpolate, spherical_interpolate
from .maps import grid_codes, latent_scatter, manifold_grid, project_2d
from .probe import budget_indices, format_probe_table, linear_probe_accuracy, parse_budgets, probe

__all__ = [
    "decode_codes", "encode_dataset", "encode_images", "require_latent_space", "apply_concept",
    "attribute_masks", "concept_vector", "read_attribute_file", "select", "linear_interpolate",
    "spherical_interpolate", "grid_codes", "latent_scatter", "manifold_grid", "project_2d",
    "budget_indices", "format_probe_table", "linear_probe_accuracy", "parse_budgets", "probe",
]
