"""nnctl: train NumPy multilayer perceptrons from YAML experiment specs."""

__version__ = "0.1.0"
