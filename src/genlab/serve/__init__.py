"""Serving a trained run: an HTTP API (FastAPI) and the latent explorer page (``genlab serve``)."""
from .app import create_app, serve

__all__ = ["create_app", "serve"]
