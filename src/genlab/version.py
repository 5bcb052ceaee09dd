"""genlab's version, in a module of its own so that genlab's modules can read it without
importing the package (whose ``__init__`` imports the whole library)."""
__version__ = "0.1.0"
