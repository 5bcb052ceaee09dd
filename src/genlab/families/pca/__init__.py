"""PCA: the linear baseline, fitted in closed form."""
from ...family import Family
from .model import PCA, PCAConfig

FAMILY = Family(name="pca", model_class=PCA, presets={"pca": {}}, aliases={"linear": "pca"})

__all__ = ["FAMILY", "PCA", "PCAConfig"]
