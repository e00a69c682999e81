"""The multilayer perceptron: dense layers `Z = A_prev @ W + b`, optional norm, activation, dropout.

Layer l = 1..L (L is the output layer). Parameters live in one flat vector (`Params`) under the
keys W1, b1, [the norm's parameters: gamma1, beta1], ..., WL, bL. `forward` returns the logits and
a cache of `LayerCache` tuples; `backward` consumes that cache and writes every gradient into
`params.grad`. A norm's running statistics are state, not parameters: the model keeps them in
`buffers` (running_mean1, ...), outside the flat vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nnctl.nn.activations import Activation
from nnctl.nn.init import INITS
from nnctl.nn.losses import Loss
from nnctl.nn.norms import Norm
from nnctl.nn.params import Params


@dataclass(frozen=True)
class LayerDef:
    """One layer as the resolved config describes it, with its activation and norm built.

    The activation and norm objects hold hyperparameters only (no state), so one LayerDef can
    build any number of models. The output layer has neither: its loss applies the link.
    """

    units: int
    activation: Activation | None = None
    init: str = "xavier_uniform"
    init_std: float = 0.01
    bias_init: float = 0.0
    norm: Norm | None = None
    dropout: float = 0.0

    @property
    def width(self) -> int:
        """Columns of Z: units, or units * pieces for maxout."""
        return self.units * (self.activation.pieces if self.activation is not None else 1)

    def to_config(self) -> dict:
        """The layer as the resolved config.yaml writes it (names and options, not objects)."""
        act, norm = self.activation, self.norm
        return {"units": self.units, "activation": act.registry_name, "activation_options": _plain(act.options),
                "init": self.init, "init_std": self.init_std, "bias_init": self.bias_init,
                "norm": norm.registry_name if norm is not None else "none",
                "norm_options": _plain(norm.options) if norm is not None else {}, "dropout": self.dropout}


def _plain(options: Mapping) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


class LayerCache(NamedTuple):
    """What backward needs from one hidden layer's forward pass."""

    A_prev: np.ndarray  # (n, fan_in) the layer's input
    Z: np.ndarray  # (n, width) pre-activation, after the norm
    H: np.ndarray  # (n, units) activation output, before dropout
    mask: np.ndarray | None  # (n, units) inverted-dropout mask, or None
    norm: object  # the norm's own cache, or None


class ForwardCache(NamedTuple):
    hidden: list[LayerCache]
    A_last: np.ndarray  # (n, fan_in of the output layer)


# Built on every step: tuple.__new__ makes the same named tuple without the Python-level __new__ a
# NamedTuple call goes through (0.2 us a call; three calls are 1% of a tiny network's step).
_named = tuple.__new__


class Layer:
    """A built layer: its number, sizes, definition, and the keys of its arrays."""

    def __init__(self, index: int, fan_in: int, definition: LayerDef):
        self.index = index
        self.fan_in = fan_in
        self.definition = definition
        self.units = definition.units
        self.activation = definition.activation
        self.pieces = self.activation.pieces if self.activation is not None else 1
        self.width = definition.width
        self.norm = definition.norm
        self.dropout = definition.dropout
        self.W, self.b = f"W{index}", f"b{index}"
        # the norm's arrays, named as in weights.npz: {"gamma": "gamma1", ...}
        self.norm_params = {k: f"{k}{index}" for k in self.norm.parameters()} if self.norm else {}
        self.norm_buffers = {k: f"{k}{index}" for k in self.norm.buffers()} if self.norm else {}
        # views into the model's flat vectors, set once they exist: W and b, their gradients, and
        # the dicts the norm's forward/backward take
        self.weight = self.bias = self.grad_weight = self.grad_bias = None
        self.norm_p = self.norm_g = self.norm_state = None


class MLP:
    """A feed-forward network built from hidden `LayerDef`s, an output `LayerDef` and a loss."""

    def __init__(self, n_inputs: int, hidden: list[LayerDef], output: LayerDef, loss: Loss, dtype=np.float32):
        self.n_inputs = n_inputs
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = []
        fan_in = n_inputs
        for i, definition in enumerate([*hidden, output], start=1):
            self.layers.append(Layer(i, fan_in, definition))
            fan_in = definition.units
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:  # W, b, then the norm's parameters: the order of the flat vector
            shapes[layer.W] = (layer.fan_in, layer.width)
            shapes[layer.b] = (layer.width,)
            for key in layer.norm_params.values():
                shapes[key] = (layer.width,)
        self.params = Params(shapes, self.dtype)
        self.hidden = self.layers[:-1]
        self.buffers = {key: np.zeros(layer.width, dtype=self.dtype)
                        for layer in self.hidden for key in layer.norm_buffers.values()}
        views, grads = self.params.views, self.params.grads
        for layer in self.layers:  # views stay valid: theta is never rebound
            layer.weight, layer.bias = views[layer.W], views[layer.b]
            layer.grad_weight, layer.grad_bias = grads[layer.W], grads[layer.b]
        for layer in self.hidden:
            layer.norm_p = {k: views[v] for k, v in layer.norm_params.items()}
            layer.norm_g = {k: grads[v] for k, v in layer.norm_params.items()}
            layer.norm_state = {k: self.buffers[v] for k, v in layer.norm_buffers.items()}

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw every W from its layer's init (in layer order), set biases, norm parameters and buffers."""
        views = self.params.views
        for layer in self.layers:
            d = layer.definition
            views[layer.W][...] = INITS.entry(d.init)(rng, layer.fan_in, layer.width, d.init_std)
            views[layer.b][...] = d.bias_init
            if layer.norm is not None:
                for name, value in layer.norm.parameters().items():
                    views[layer.norm_params[name]][...] = value
                for name, value in layer.norm.buffers().items():
                    self.buffers[layer.norm_buffers[name]][...] = value

    # ----------------------------------------------------------------------------- forward
    def forward(self, X: np.ndarray, train: bool = False, rng: np.random.Generator | None = None,
                update_stats: bool = True) -> tuple[np.ndarray, ForwardCache]:
        """Logits (n, k) and the cache for `backward`.

        train: batch statistics and dropout (needs `rng`); otherwise inference (running
        statistics, no dropout). update_stats=False freezes batch-norm running statistics (gradcheck).
        """
        caches = []
        A = X
        for layer in self.hidden:
            Z = A @ layer.weight  # (n, width)
            Z += layer.bias
            norm_cache = None
            if layer.norm is not None:
                Z, norm_cache = layer.norm.forward(Z, layer.norm_p, layer.norm_state, train, update_stats)
            H = layer.activation.forward(Z)  # (n, units)
            mask = None
            if train and layer.dropout > 0.0:
                # inverted dropout: keep with prob 1 - p and scale by 1 / (1 - p) now, so
                # inference needs no rescaling
                mask = rng.random(H.shape, dtype=self.dtype) >= layer.dropout
                mask = mask.astype(self.dtype)
                mask *= 1.0 / (1.0 - layer.dropout)
                A_next = H * mask
            else:
                A_next = H
            caches.append(_named(LayerCache, (A, Z, H, mask, norm_cache)))
            A = A_next
        out = self.output_layer
        Z = A @ out.weight
        Z += out.bias
        return Z, _named(ForwardCache, (caches, A))

    def backward(self, dZ: np.ndarray, cache: ForwardCache, record: dict[int, np.ndarray] | None = None) -> None:
        """Fill `params.grad` from dL/dZ of the output layer and the forward cache.

        record: if given, receives a copy of every layer's dL/dZ by layer number (`nnctl trace`);
        for a normalised layer it is the gradient of `A_prev @ W + b`, before the norm.
        """
        out = self.output_layer
        if record is not None:
            record[out.index] = dZ.copy()
        np.matmul(cache.A_last.T, dZ, out=out.grad_weight)
        np.sum(dZ, axis=0, out=out.grad_bias)
        dA = dZ @ out.weight.T
        for i in range(len(self.hidden) - 1, -1, -1):
            layer, c = self.hidden[i], cache.hidden[i]
            if c.mask is not None:
                dA *= c.mask
            # dA is this step's own temporary: elementwise activations write dZ over it
            dZ = layer.activation.backward(c.Z, c.H, dA, out=dA if layer.pieces == 1 else None)
            if layer.norm is not None:
                dZ = layer.norm.backward(dZ, c.norm, layer.norm_p, layer.norm_g)
            if record is not None:
                record[layer.index] = dZ.copy()
            np.matmul(c.A_prev.T, dZ, out=layer.grad_weight)
            np.sum(dZ, axis=0, out=layer.grad_bias)
            if i > 0:  # the input layer's dA is never needed
                dA = dZ @ layer.weight.T

    def loss_and_grad(self, X, Y, rng=None, update_stats: bool = True) -> float:
        """One training-mode forward and backward pass; returns the mean loss, fills grads."""
        Z, cache = self.forward(X, train=True, rng=rng, update_stats=update_stats)
        loss, dZ = self.loss.value_and_grad(Z, Y)
        self.backward(dZ, cache)
        return loss

    def logits(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Inference-mode logits, in chunks so large inputs do not need huge temporaries."""
        if len(X) <= batch_size:
            return self.forward(X)[0]
        return np.concatenate([self.forward(X[i : i + batch_size])[0] for i in range(0, len(X), batch_size)])

    # ----------------------------------------------------------------------------- weights
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything `weights.npz` holds: parameters, then the norms' running statistics."""
        arrays = self.params.state()
        arrays.update({key: value.copy() for key, value in self.buffers.items()})
        return arrays

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Key -> shape of every array `state_arrays` produces."""
        return {**self.params.shapes, **{key: value.shape for key, value in self.buffers.items()}}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Load `state_arrays` output back. Raises ValueError naming the first bad key."""
        expected = self.expected_shapes()
        missing = [k for k in expected if k not in arrays]
        if missing:
            raise ValueError(f"missing key {missing[0]!r} (expected keys: {', '.join(expected)})")
        extra = [k for k in arrays if k not in expected]
        if extra:
            raise ValueError(f"unexpected key {extra[0]!r} (expected keys: {', '.join(expected)})")
        for key, shape in expected.items():
            value = arrays[key]
            if value.dtype.kind not in "fiu":
                raise ValueError(f"key {key!r} has dtype {value.dtype}; expected a numeric array")
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"key {key!r} has shape {tuple(value.shape)}; this model needs {tuple(shape)}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"key {key!r} holds non-finite values (NaN or inf)")
        self.params.load(arrays)
        for key, value in self.buffers.items():
            value[...] = arrays[key]

    def n_params(self) -> int:
        """Trainable scalars."""
        return self.params.size
