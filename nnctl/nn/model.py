"""The multilayer perceptron: dense layers `Z = A_prev @ W + b`, optional norm, activation, dropout.

Layer l = 1..L (L is the output layer). Parameters live in one flat vector (`Params`) under the
keys W1, b1, [gamma1, beta1], ..., WL, bL. `forward` returns the logits and a cache of plain
tuples; `backward` consumes that cache and writes every gradient into `params.grad`.
Normalization running statistics are state, not parameters: they live in each norm object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnctl.nn.activations import ACTIVATIONS, Activation
from nnctl.nn.init import INITS
from nnctl.nn.losses import Loss
from nnctl.nn.norms import NORMS, Norm
from nnctl.nn.params import Params


@dataclass
class LayerDef:
    """What one layer is: the resolved per-layer settings of the config."""

    units: int
    activation: str = "linear"
    activation_options: dict = field(default_factory=dict)
    init: str = "xavier_uniform"
    init_std: float = 0.01
    bias_init: float = 0.0
    norm: str = "none"
    norm_options: dict = field(default_factory=dict)
    dropout: float = 0.0


class Layer:
    """A built layer: its number, sizes, activation object, norm object (or None), dropout rate."""

    def __init__(self, index: int, fan_in: int, spec: LayerDef, activation: Activation | None, norm: Norm | None):
        self.index = index
        self.fan_in = fan_in
        self.spec = spec
        self.units = spec.units
        self.activation = activation  # None for the output layer: the loss applies its link
        self.pieces = activation.pieces if activation is not None else 1
        self.width = spec.units * self.pieces  # columns of Z (maxout: units * pieces)
        self.norm = norm
        self.dropout = spec.dropout
        self.W, self.b = f"W{index}", f"b{index}"


class MLP:
    """A feed-forward network built from hidden `LayerDef`s, an output `LayerDef` and a loss."""

    def __init__(self, n_inputs: int, hidden: list[LayerDef], output: LayerDef, loss: Loss, dtype=np.float32):
        self.n_inputs = n_inputs
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = []
        fan_in = n_inputs
        for i, spec in enumerate([*hidden, output], start=1):
            is_output = i == len(hidden) + 1
            act = None if is_output else ACTIVATIONS.get(spec.activation, spec.activation_options)
            width = spec.units * (act.pieces if act is not None else 1)
            norm = None
            if not is_output and spec.norm != "none":
                norm = NORMS.get(spec.norm, spec.norm_options)
                norm.setup(width, self.dtype, where=f"layer {i}")
            self.layers.append(Layer(i, fan_in, spec, act, norm))
            fan_in = spec.units
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:
            shapes[layer.W] = (layer.fan_in, layer.width)
            shapes[layer.b] = (layer.width,)
            if layer.norm is not None:
                shapes[f"gamma{layer.index}"] = (layer.width,)
                shapes[f"beta{layer.index}"] = (layer.width,)
        self.params = Params(shapes, self.dtype)

    @property
    def hidden(self) -> list[Layer]:
        return self.layers[:-1]

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw every W from its layer's init (in layer order), set biases and norm gains."""
        views = self.params.views
        for layer in self.layers:
            s = layer.spec
            views[layer.W][...] = INITS.entry(s.init)(rng, layer.fan_in, layer.width, s.init_std)
            views[layer.b][...] = s.bias_init
            if layer.norm is not None:
                views[f"gamma{layer.index}"][...] = 1.0
                views[f"beta{layer.index}"][...] = 0.0
                layer.norm.reset_state()

    # ----------------------------------------------------------------------------- forward
    def forward(self, X: np.ndarray, train: bool = False, rng: np.random.Generator | None = None,
                update_stats: bool = True):
        """Logits (n, k) and the cache for `backward`.

        train: batch statistics and dropout (needs `rng`); otherwise inference (running
        statistics, no dropout). update_stats=False freezes batch-norm running statistics (gradcheck).
        """
        views = self.params.views
        caches = []
        A = X
        for layer in self.hidden:
            Z = A @ views[layer.W]  # (n, width)
            Z += views[layer.b]
            norm_cache = None
            if layer.norm is not None:
                g, bt = views[f"gamma{layer.index}"], views[f"beta{layer.index}"]
                Z, norm_cache = layer.norm.forward(Z, g, bt, train, update_stats)
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
            caches.append((A, Z, H, mask, norm_cache))
            A = A_next
        out = self.output_layer
        Z = A @ views[out.W]
        Z += views[out.b]
        return Z, (caches, A)

    def backward(self, dZ: np.ndarray, cache) -> None:
        """Fill `params.grad` from dL/dZ of the output layer and the forward cache."""
        caches, A_last = cache
        views, grads = self.params.views, self.params.grads
        out = self.output_layer
        np.matmul(A_last.T, dZ, out=grads[out.W])
        np.sum(dZ, axis=0, out=grads[out.b])
        dA = dZ @ views[out.W].T
        for i in range(len(self.hidden) - 1, -1, -1):
            layer = self.hidden[i]
            A_prev, Z, H, mask, norm_cache = caches[i]
            if mask is not None:
                dA *= mask
            # dA is this step's own temporary: elementwise activations write dZ over it
            dZ = layer.activation.backward(Z, H, dA, out=dA if layer.pieces == 1 else None)
            if layer.norm is not None:
                gname, bname = f"gamma{layer.index}", f"beta{layer.index}"
                dZ = layer.norm.backward(dZ, norm_cache, views[gname], grads[gname], grads[bname])
            np.matmul(A_prev.T, dZ, out=grads[layer.W])
            np.sum(dZ, axis=0, out=grads[layer.b])
            if i > 0:  # the input layer's dA is never needed
                dA = dZ @ views[layer.W].T

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
        """Everything `weights.npz` holds: parameters, then norm running statistics."""
        arrays = self.params.state()
        for layer in self.hidden:
            if layer.norm is not None:
                for name, value in layer.norm.state().items():
                    arrays[f"{name}{layer.index}"] = value.copy()
        return arrays

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Key -> shape of every array `state_arrays` produces."""
        shapes = dict(self.params.shapes)
        for layer in self.hidden:
            if layer.norm is not None:
                for name, value in layer.norm.state().items():
                    shapes[f"{name}{layer.index}"] = value.shape
        return shapes

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
        for layer in self.hidden:
            if layer.norm is not None:
                layer.norm.load_state({name: arrays[f"{name}{layer.index}"] for name in layer.norm.state()})

    def n_params(self) -> int:
        """Trainable scalars."""
        return self.params.size
