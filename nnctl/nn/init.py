"""Weight initializers, as torch.nn.init defines them, for W of shape (fan_in, fan_out).

Xavier uses gain 1; He is `kaiming_*` with torch's defaults (a=0, mode='fan_in',
nonlinearity='leaky_relu', so gain = sqrt(2)); LeCun normal is N(0, 1/fan_in).
Draws are made in float64 and cast by the caller, so float32 and float64 runs start alike.
"""

from __future__ import annotations

import math

import numpy as np

from nnctl.registry import Registry

INITS = Registry("init")


@INITS.register("zeros")
def zeros(rng: np.random.Generator, fan_in: int, fan_out: int, init_std: float) -> np.ndarray:
    """All zeros: every unit of a layer computes the same thing and gets the same gradient."""
    return np.zeros((fan_in, fan_out))


@INITS.register("normal")
def normal(rng, fan_in, fan_out, init_std):
    """N(0, init_std^2), independent of the layer's size."""
    return rng.normal(0.0, init_std, size=(fan_in, fan_out))


@INITS.register("xavier_uniform")
def xavier_uniform(rng, fan_in, fan_out, init_std):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, gain 1)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


@INITS.register("xavier_normal")
def xavier_normal(rng, fan_in, fan_out, init_std):
    """N(0, 2 / (fan_in + fan_out))."""
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


@INITS.register("he_uniform")
def he_uniform(rng, fan_in, fan_out, init_std):
    """U(-a, a) with a = sqrt(6 / fan_in) (He et al. 2015; torch kaiming_uniform_ defaults)."""
    bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


@INITS.register("he_normal")
def he_normal(rng, fan_in, fan_out, init_std):
    """N(0, 2 / fan_in) (torch kaiming_normal_ defaults)."""
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


@INITS.register("lecun_normal")
def lecun_normal(rng, fan_in, fan_out, init_std):
    """N(0, 1 / fan_in): keeps SELU activations at unit variance."""
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(fan_in, fan_out))


# What `init: auto` means for each activation family (see Activation.init_family).
AUTO_INIT = {"he": "he_normal", "xavier": "xavier_uniform", "lecun": "lecun_normal"}
