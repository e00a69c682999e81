"""Test helpers: hidden layers by name, as a config would write them."""

from __future__ import annotations

from nnctl.nn.activations import ACTIVATIONS
from nnctl.nn.model import LayerDef
from nnctl.nn.norms import NORMS


def layer(units: int, activation: str = "linear", activation_options: dict | None = None, norm: str = "none",
          norm_options: dict | None = None, **settings) -> LayerDef:
    """A LayerDef with its activation and norm built from their registry names and options."""
    return LayerDef(units=units, activation=ACTIVATIONS.get(activation, activation_options),
                    norm=None if norm == "none" else NORMS.get(norm, norm_options), **settings)
