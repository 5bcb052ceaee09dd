"""The surface every model shares (:mod:`.base`) and the likelihoods families build on
(:mod:`.distributions`). The families themselves live in :mod:`genlab.families`; build or load
one by name with :func:`genlab.build_model` / :func:`genlab.load_model` (:mod:`genlab.registry`)."""
from .base import Capabilities, GenerativeModel, ModelConfig, NotSupported, OptimizerGroup

__all__ = ["Capabilities", "GenerativeModel", "ModelConfig", "NotSupported", "OptimizerGroup"]
