"""One flat parameter vector with per-layer views (sklearn's `_pack`, made the storage)."""

from __future__ import annotations

import math

import numpy as np


class Params:
    """All trainable arrays in one vector `theta`; views["W1"] is (fan_in, fan_out), grads alike.

    Optimizers see only `theta` and `grad`. They must update in place (`theta -= step`):
    rebinding `theta` would silently detach every layer's view.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], dtype):
        self.shapes = dict(shapes)
        sizes = [math.prod(s) for s in shapes.values()]
        self.theta = np.zeros(sum(sizes), dtype=dtype)
        self.grad = np.zeros_like(self.theta)
        self.views: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.slices: dict[str, slice] = {}
        start = 0
        for (name, shape), size in zip(shapes.items(), sizes):
            self.slices[name] = slice(start, start + size)
            self.views[name] = self.theta[start : start + size].reshape(shape)
            self.grads[name] = self.grad[start : start + size].reshape(shape)
            start += size

    @property
    def size(self) -> int:
        """Number of trainable scalars."""
        return self.theta.size

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every parameter array, keyed by name (the weights.npz keys W1, b1, ...)."""
        return {name: view.copy() for name, view in self.views.items()}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy arrays into the views (shapes must match; the caller checks and reports)."""
        for name, view in self.views.items():
            view[...] = arrays[name]
