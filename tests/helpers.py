"""Test helpers: hidden layers by name, as a config would write them; waiting for a condition."""

from __future__ import annotations

import time

from nnctl.nn.activations import ACTIVATIONS
from nnctl.nn.model import LayerDef
from nnctl.nn.norms import NORMS


def layer(units: int, activation: str = "linear", activation_options: dict | None = None, norm: str = "none",
          norm_options: dict | None = None, **settings) -> LayerDef:
    """A LayerDef with its activation and norm built from their registry names and options."""
    return LayerDef(units=units, activation=ACTIVATIONS.get(activation, activation_options),
                    norm=None if norm == "none" else NORMS.get(norm, norm_options), **settings)


def wait_for(condition, timeout: float = 60, what: str = ""):
    """condition()'s first truthy value, polled until `timeout` seconds (a loaded machine is slow to
    start a process: tests wait for what they need instead of sleeping a fixed time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
