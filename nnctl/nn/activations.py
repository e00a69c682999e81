"""Activation functions: forward and backward in one entry so they cannot drift apart.

Definitions follow torch.nn (ELU, LeakyReLU, ReLU6, SiLU, Mish, GELU, SELU, Softplus).
Every entry takes the pre-activation `Z` (n, width) and returns `A` (n, units); `backward`
receives the cache `(Z, A)` and dL/dA and returns dL/dZ. `out=` buffers are optional.
`init_family` picks the weight init that `init: auto` uses: "he" for the ReLU family,
"lecun" for SELU (its self-normalizing property assumes it), "xavier" otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from nnctl.registry import Component, Registry, require

ACTIVATIONS = Registry("activation")


class Activation(Component):
    """Base: identity-width activations (maxout overrides `pieces`). An activation holds only its
    options (immutable), so one object can serve any number of layers and models.
    """

    init_family = "xavier"
    pieces = 1  # columns of Z per output unit
    can_die = False  # zero gradient wherever Z <= 0: a unit never positive is dead (diagnostics)
    bounds: tuple[float, float] | None = None  # for saturation diagnostics

    def forward(self, Z, out=None):
        raise NotImplementedError

    def backward(self, Z, A, dA, out=None):
        """dL/dZ from dL/dA; `out` may be dA itself (the model passes it to save an allocation)."""
        raise NotImplementedError


def _sigmoid(Z, out=None):
    # 0.5 * (1 + tanh(z/2)) equals 1/(1+exp(-z)) and never overflows in float32.
    out = np.multiply(Z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


@ACTIVATIONS.register("linear")
class Linear(Activation):
    """A = Z. A network of linear layers is one linear map: it can only draw straight boundaries."""

    def forward(self, Z, out=None):
        if out is None:
            return Z.copy()
        np.copyto(out, Z)
        return out

    def backward(self, Z, A, dA, out=None):
        return dA


@ACTIVATIONS.register("sigmoid")
class Sigmoid(Activation):
    """A = 1 / (1 + exp(-Z)); dA/dZ = A (1 - A), at most 0.25, so deep sigmoid nets vanish."""

    bounds = (0.0, 1.0)

    def forward(self, Z, out=None):
        return _sigmoid(Z, out)

    def backward(self, Z, A, dA, out=None):
        d = np.subtract(1.0, A)
        d *= A
        return np.multiply(dA, d, out=out)


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """A = tanh(Z); dA/dZ = 1 - A^2."""

    bounds = (-1.0, 1.0)

    def forward(self, Z, out=None):
        return np.tanh(Z, out=out)

    def backward(self, Z, A, dA, out=None):
        d = np.multiply(A, A)
        np.subtract(1.0, d, out=d)
        return np.multiply(dA, d, out=out)


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """A = max(Z, 0); gradient 1 where Z > 0 and 0 elsewhere (torch's choice at 0)."""

    init_family = "he"
    can_die = True

    def forward(self, Z, out=None):
        return np.maximum(Z, 0.0, out=out)

    def backward(self, Z, A, dA, out=None):
        return np.multiply(dA, Z > 0, out=out)


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Activation):
    """A = Z for Z > 0, alpha * Z otherwise (torch's negative_slope, default 0.01)."""

    init_family = "he"

    def __init__(self, alpha: float = 0.01):
        self._set_options(alpha=alpha)

    def forward(self, Z, out=None):
        return _store(np.where(Z > 0, Z, self.alpha * Z), out)

    def backward(self, Z, A, dA, out=None):
        return _store(np.where(Z > 0, dA, self.alpha * dA), out)


@ACTIVATIONS.register("elu")
class ELU(Activation):
    """A = Z for Z > 0, alpha (exp(Z) - 1) otherwise; dA/dZ = A + alpha on the negative side."""

    init_family = "he"

    def __init__(self, alpha: float = 1.0):
        self._set_options(alpha=alpha)

    def forward(self, Z, out=None):
        neg = self.alpha * np.expm1(np.minimum(Z, 0.0))
        return _store(np.where(Z > 0, Z, neg), out)

    def backward(self, Z, A, dA, out=None):
        return _store(np.where(Z > 0, dA, (A + self.alpha) * dA), out)


@ACTIVATIONS.register("relu6")
class ReLU6(ReLU):
    """A = min(max(Z, 0), 6); gradient 1 strictly inside (0, 6), as torch's hardtanh. A ReLU (He init,
    dead when never positive) clipped at 6."""

    def forward(self, Z, out=None):
        return np.clip(Z, 0.0, 6.0, out=out)

    def backward(self, Z, A, dA, out=None):
        return np.multiply(dA, (Z > 0) & (Z < 6), out=out)


@ACTIVATIONS.register("swish")
class Swish(Activation):
    """A = Z * sigmoid(Z) (torch's SiLU); dA/dZ = s (1 + Z (1 - s))."""

    init_family = "he"

    def forward(self, Z, out=None):
        s = _sigmoid(Z)
        return np.multiply(Z, s, out=out)

    def backward(self, Z, A, dA, out=None):
        s = _sigmoid(Z)
        return np.multiply(dA, s * (1.0 + Z * (1.0 - s)), out=out)


def _softplus(Z):
    # log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))
    return np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z)))


@ACTIVATIONS.register("mish")
class Mish(Activation):
    """A = Z * tanh(softplus(Z)); dA/dZ = t + Z (1 - t^2) sigmoid(Z)."""

    init_family = "he"

    def forward(self, Z, out=None):
        return np.multiply(Z, np.tanh(_softplus(Z)), out=out)

    def backward(self, Z, A, dA, out=None):
        t = np.tanh(_softplus(Z))
        return np.multiply(dA, t + Z * (1.0 - t * t) * _sigmoid(Z), out=out)


# Python floats, not NumPy scalars: a np.float64 factor would turn a float32 layer's output into float64
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@ACTIVATIONS.register("gelu")
class GELU(Activation):
    """A = Z * Phi(Z) (exact, erf); approximate: tanh uses torch's tanh formula."""

    init_family = "he"

    def __init__(self, approximate: str = "none"):
        require(approximate in ("none", "tanh"), f"approximate must be 'none' or 'tanh'; got {approximate!r}")
        self._set_options(approximate=approximate)

    def forward(self, Z, out=None):
        if self.approximate == "tanh":
            u = _SQRT_2_OVER_PI * (Z + 0.044715 * Z**3)
            return np.multiply(0.5 * Z, 1.0 + np.tanh(u), out=out)
        from scipy.special import erf

        return np.multiply(Z, 0.5 * (1.0 + erf(Z / _SQRT_2)), out=out)

    def backward(self, Z, A, dA, out=None):
        if self.approximate == "tanh":
            u = _SQRT_2_OVER_PI * (Z + 0.044715 * Z**3)
            t = np.tanh(u)
            du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * Z * Z)
            return np.multiply(dA, 0.5 * (1.0 + t) + 0.5 * Z * (1.0 - t * t) * du, out=out)
        from scipy.special import erf

        cdf = 0.5 * (1.0 + erf(Z / _SQRT_2))
        pdf = np.exp(-0.5 * Z * Z) / _SQRT_2PI
        return np.multiply(dA, cdf + Z * pdf, out=out)


# SELU constants from Klambauer et al. 2017, as in torch.nn.SELU.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@ACTIVATIONS.register("selu")
class SELU(Activation):
    """A = scale * (Z if Z > 0 else alpha (exp(Z) - 1)); pair with lecun_normal init."""

    init_family = "lecun"

    def forward(self, Z, out=None):
        neg = _SELU_ALPHA * np.expm1(np.minimum(Z, 0.0))
        return np.multiply(_SELU_SCALE, np.where(Z > 0, Z, neg), out=out)

    def backward(self, Z, A, dA, out=None):
        # on the negative side dA/dZ = scale * alpha * exp(Z) = A + scale * alpha
        return _store(np.where(Z > 0, _SELU_SCALE * dA, (A + _SELU_SCALE * _SELU_ALPHA) * dA), out)


@ACTIVATIONS.register("softplus")
class Softplus(Activation):
    """A = log(1 + exp(beta Z)) / beta, and Z itself where beta Z > threshold (torch)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        self._set_options(beta=beta, threshold=threshold)

    def forward(self, Z, out=None):
        bz = self.beta * Z
        return _store(np.where(bz > self.threshold, Z, _softplus(bz) / self.beta), out)

    def backward(self, Z, A, dA, out=None):
        bz = self.beta * Z
        return _store(np.where(bz > self.threshold, dA, dA * _sigmoid(bz)), out)


@ACTIVATIONS.register("maxout")
class Maxout(Activation):
    """Unit j is the max over columns j*k ... j*k+k-1 of Z (k = pieces); Z is (n, units*k)."""

    init_family = "he"

    def __init__(self, pieces: int = 2):
        require(pieces >= 1, f"pieces must be an integer >= 1; got {pieces}")
        self._set_options(pieces=pieces)

    def forward(self, Z, out=None):
        n, width = Z.shape
        return np.max(Z.reshape(n, width // self.pieces, self.pieces), axis=2, out=out)

    def backward(self, Z, A, dA, out=None):
        n, width = Z.shape
        Zr = Z.reshape(n, width // self.pieces, self.pieces)
        winner = np.argmax(Zr, axis=2)[:, :, None]  # the gradient goes to one column (ties: first)
        dZ = np.zeros_like(Zr) if out is None else out.reshape(Zr.shape)
        if out is not None:
            dZ.fill(0)
        np.put_along_axis(dZ, winner, dA[:, :, None], axis=2)
        return dZ.reshape(n, width)


def _store(value, out):
    if out is None:
        return value
    np.copyto(out, value)
    return out
