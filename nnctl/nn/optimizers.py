"""Optimizers over the flat parameter vector, with torch.optim's exact update rules.

Each `step(theta, grad, lr)` updates `theta` IN PLACE (the per-layer views depend on it) and may
scale `grad` in place too. Weight decay is L2 added to the gradient of every parameter, as torch
does over `model.parameters()`; AdamW's decay is decoupled (theta *= 1 - lr * wd).
References: https://pytorch.org/docs/stable/optim.html (each class's "Algorithm" box).
"""

from __future__ import annotations

import math

import numpy as np

from nnctl.registry import Registry, require

OPTIMIZERS = Registry("optimizer")


class Optimizer:
    """Base class: state is a dict of arrays (same length as theta) plus a step counter.

    A new optimizer is one subclass registered in OPTIMIZERS: its `step`, its state vectors, and the
    defaults `lr: auto` and `weight_decay: auto` stand for (torch.optim's, for the torch ones).
    """

    default_lr = 1e-3  # what `optimizer.lr: auto` means (torch.optim's default)
    default_weight_decay = 0.0  # what `optimizer.weight_decay: auto` means
    high_lr: float | None = None  # at or above this lr the config gets the ADAM_HIGH_LR warning
    adaptive = False  # divides each gradient by a running estimate of its size (small gradients still move)

    def __init__(self):
        self.weight_decay = 0.0
        self.t = 0
        self.state: dict[str, np.ndarray] = {}

    def bind(self, theta: np.ndarray, weight_decay: float) -> Optimizer:
        """Allocate state vectors for `theta`; returns self."""
        self.weight_decay = weight_decay
        for name in self.state_names():
            self.state[name] = np.zeros_like(theta)
        return self

    def state_names(self) -> tuple[str, ...]:
        return ()

    def _buf(self, like: np.ndarray) -> np.ndarray:
        """A scratch vector the size of theta, reused across steps (not part of the state)."""
        buf = getattr(self, "_scratch", None)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._scratch = np.empty_like(like)
        return buf

    def _decayed(self, theta, grad):
        """grad + weight_decay * theta (L2, coupled), computed into grad."""
        if self.weight_decay:
            grad += np.multiply(theta, self.weight_decay, out=self._buf(theta))
        return grad

    def step(self, theta: np.ndarray, grad: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Arrays and the step count, for checkpoints."""
        return {"t": self.t, **{k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        for k in self.state:
            self.state[k][...] = state[k]


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """theta -= lr * grad."""

    def __init__(self):
        super().__init__()

    def step(self, theta, grad, lr):
        self.t += 1
        g = self._decayed(theta, grad)
        g *= lr
        theta -= g  # in place: layer views stay attached


class _MomentumSGD(Optimizer):
    """torch SGD with momentum: buf = g on the first step, then buf = mu buf + (1 - dampening) g."""

    nesterov = False

    def __init__(self, momentum: float = 0.9, dampening: float = 0.0):
        super().__init__()
        require(0.0 < momentum < 1.0, f"momentum must be in (0, 1); got {momentum}")
        require(not self.nesterov or dampening == 0.0, "nesterov momentum requires dampening 0 (as torch)")
        self.momentum, self.dampening = momentum, dampening

    def state_names(self):
        return ("momentum_buffer",)

    def step(self, theta, grad, lr):
        self.t += 1
        g = self._decayed(theta, grad)
        buf = self.state["momentum_buffer"]
        if self.t == 1:
            buf[...] = g
        else:
            buf *= self.momentum
            buf += (1.0 - self.dampening) * g
        if self.nesterov:
            g += self.momentum * buf  # d_p = g + mu * buf
            g *= lr
            theta -= g
        else:
            theta -= lr * buf


@OPTIMIZERS.register("momentum")
class Momentum(_MomentumSGD):
    """SGD with heavy-ball momentum (default 0.9)."""


@OPTIMIZERS.register("nesterov")
class Nesterov(_MomentumSGD):
    """SGD with Nesterov momentum (torch's formulation; default 0.9)."""

    nesterov = True

    def __init__(self, momentum: float = 0.9):
        super().__init__(momentum, 0.0)


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """sum += g^2; theta -= lr_t g / (sqrt(sum) + eps), lr_t = lr / (1 + (t - 1) lr_decay)."""

    adaptive = True

    default_lr = 1e-2

    def __init__(self, lr_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__()
        require(lr_decay >= 0 and initial_accumulator_value >= 0 and eps >= 0,
                "lr_decay, initial_accumulator_value and eps must be >= 0")
        self.lr_decay, self.init_acc, self.eps = lr_decay, initial_accumulator_value, eps

    def state_names(self):
        return ("sum",)

    def bind(self, theta, weight_decay):
        super().bind(theta, weight_decay)
        self.state["sum"].fill(self.init_acc)
        return self

    def step(self, theta, grad, lr):
        self.t += 1
        g = self._decayed(theta, grad)
        clr = lr / (1.0 + (self.t - 1) * self.lr_decay)
        acc = self.state["sum"]
        acc += g * g
        denom = np.sqrt(acc)
        denom += self.eps
        g /= denom
        g *= clr
        theta -= g


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """sq = alpha sq + (1 - alpha) g^2; theta -= lr g / (sqrt(sq) + eps) (centered, momentum opt.)."""

    adaptive = True

    default_lr = 1e-2

    def __init__(self, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0, centered: bool = False):
        super().__init__()
        require(0.0 <= alpha <= 1.0, f"alpha must be in [0, 1]; got {alpha}")
        require(momentum >= 0 and eps >= 0, "momentum and eps must be >= 0")
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered

    def state_names(self):
        names = ("square_avg",)
        if self.momentum > 0:
            names += ("momentum_buffer",)
        if self.centered:
            names += ("grad_avg",)
        return names

    def step(self, theta, grad, lr):
        self.t += 1
        g = self._decayed(theta, grad)
        sq = self.state["square_avg"]
        sq *= self.alpha
        sq += (1.0 - self.alpha) * (g * g)
        if self.centered:
            ga = self.state["grad_avg"]
            ga += (1.0 - self.alpha) * (g - ga)  # torch: grad_avg.lerp_(grad, 1 - alpha)
            avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += self.eps
        if self.momentum > 0:
            buf = self.state["momentum_buffer"]
            buf *= self.momentum
            buf += g / avg
            theta -= lr * buf
        else:
            g /= avg
            g *= lr
            theta -= g


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """m, v moving averages of g and g^2 with bias correction (Kingma & Ba; torch's Adam).

    torch's rule: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    theta -= lr (m / bc1) / (sqrt(v / bc2) + eps) with bc_i = 1 - b_i^t.
    The state holds m' = m / (1 - b1) instead of m, which obeys m' = b1 m' + g (one vector pass
    fewer per step), and torch's own v (scaling v the same way would make it overflow float32 a
    thousand times sooner). The same update is then
    theta -= (lr (1 - b1) sqrt(bc2) / bc1) m' / (sqrt(v) + eps sqrt(bc2)) -- equal in exact
    arithmetic and within rounding of torch's numbers (tests/test_optimizers.py checks both).
    """

    adaptive = True

    decoupled = False
    high_lr = 0.1  # Adam moves every parameter by about lr per step, whatever the gradient's scale

    def __init__(self, betas: tuple = (0.9, 0.999), eps: float = 1e-8, amsgrad: bool = False):
        super().__init__()
        b1, b2 = betas
        require(0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0, f"betas must each be in [0, 1); got {list(betas)}")
        require(eps >= 0, f"eps must be >= 0; got {eps}")
        self.beta1, self.beta2, self.eps, self.amsgrad = float(b1), float(b2), eps, amsgrad

    def state_names(self):
        return ("exp_avg_scaled", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def exp_avg(self) -> np.ndarray:
        """torch's exp_avg (m), recomputed from the scaled state."""
        return self.state["exp_avg_scaled"] * (1.0 - self.beta1)

    def step(self, theta, grad, lr):
        self.t += 1
        if self.decoupled:
            if self.weight_decay:
                theta *= 1.0 - lr * self.weight_decay
            g = grad
        else:
            g = self._decayed(theta, grad)
        m, v = self.state["exp_avg_scaled"], self.state["exp_avg_sq"]
        m *= self.beta1
        m += g
        np.square(g, out=g)
        g *= 1.0 - self.beta2
        v *= self.beta2
        v += g
        if self.amsgrad:
            vmax = self.state["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            v = vmax
        bc1 = 1.0 - self.beta1**self.t
        bc2_sqrt = math.sqrt(1.0 - self.beta2**self.t)
        denom = np.sqrt(v, out=g)  # reuse the gradient buffer; it is not needed any more
        denom += self.eps * bc2_sqrt
        np.divide(m, denom, out=denom)
        denom *= lr * (1.0 - self.beta1) * bc2_sqrt / bc1
        theta -= denom


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): theta *= 1 - lr wd, then Adam."""

    decoupled = True
    default_weight_decay = 1e-2  # torch.optim.AdamW's default
