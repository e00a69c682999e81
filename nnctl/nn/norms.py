"""Normalization between the dense product and the activation (torch.nn BatchNorm1d, LayerNorm,
GroupNorm conventions): Y = gamma * (Z - mean) / sqrt(var + eps) + beta, with the biased variance
in the normalization.

- batch: statistics over the rows of the batch in training; running statistics in inference,
  running = (1 - momentum) * running + momentum * batch, running_var from the UNBIASED batch
  variance (torch's choice).
- layer: statistics over the features of each row (one group).
- group: statistics over each group of `width / groups` features of each row.

A norm object holds only its hyperparameters (immutable), so one object can serve any number of models. It
declares the per-column arrays it needs and the model owns them: `parameters()` (trained, in the
flat parameter vector) and `buffers()` (running statistics: state, not parameters). `forward` and
`backward` receive them as dicts keyed by those names.
"""

from __future__ import annotations

import numpy as np

from nnctl.registry import Component, Registry, require

NORMS = Registry("norm")


class Norm(Component):
    """Base: a learned per-column scale and shift, no running state."""

    needs_batch_stats = False  # statistics over a batch's rows: every training step needs >= 2 rows

    def check_width(self, width: int) -> None:
        """ValueError if this norm cannot normalise a layer with `width` columns."""

    def parameters(self) -> dict[str, float]:
        """Trained per-column arrays and their initial value (weights.npz keys gamma{l}, beta{l})."""
        return {"gamma": 1.0, "beta": 0.0}

    def buffers(self) -> dict[str, float]:
        """Per-column running statistics and their initial value (saved in weights.npz, never trained)."""
        return {}

    def forward(self, Z, p: dict, state: dict, train: bool, update_stats: bool = True):
        """(Y, cache) for Z (n, width); `p` the parameter views, `state` the buffers (updated in place
        in training unless update_stats is False)."""
        raise NotImplementedError

    def backward(self, dY, cache, p: dict, grads: dict):
        """dL/dZ from dL/dY; writes the parameters' gradients into the `grads` views."""
        raise NotImplementedError


@NORMS.register("batch")
class BatchNorm(Norm):
    """Batch normalization (Ioffe & Szegedy 2015) over the rows of each training batch."""

    needs_batch_stats = True

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5):
        require(0.0 <= momentum <= 1.0, f"momentum must be in [0, 1]; got {momentum}")
        require(eps > 0, f"eps must be > 0; got {eps}")
        self._set_options(momentum=momentum, eps=eps)

    def buffers(self):
        return {"running_mean": 0.0, "running_var": 1.0}

    def forward(self, Z, p, state, train, update_stats=True):
        n = Z.shape[0]
        if train:
            if n < 2:
                raise ValueError(
                    "batch norm needs at least 2 rows per training batch (the variance of one row is "
                    "0, so every unit would output beta); use a larger batch_size or norm: layer"
                )
            mean = Z.mean(axis=0)
            D = Z - mean
            var = np.einsum("ij,ij->j", D, D) / n  # biased, used to normalize
            if update_stats:
                m = self.momentum
                running_mean, running_var = state["running_mean"], state["running_var"]
                running_mean *= 1.0 - m
                running_mean += m * mean
                running_var *= 1.0 - m
                running_var += m * var * (n / (n - 1))  # unbiased, as torch's running_var
        else:
            D = Z - state["running_mean"]
            var = state["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)
        Xhat = D
        Xhat *= inv_std
        Y = Xhat * p["gamma"]
        Y += p["beta"]
        return Y, (Xhat, inv_std, train)

    def backward(self, dY, cache, p, grads):
        Xhat, inv_std, train = cache
        np.einsum("ij,ij->j", dY, Xhat, out=grads["gamma"])
        np.sum(dY, axis=0, out=grads["beta"])
        dX = dY * p["gamma"]
        if not train:  # running statistics are constants
            dX *= inv_std
            return dX
        n = dY.shape[0]
        # dZ = inv_std / n * (n dXhat - sum(dXhat) - Xhat * sum(dXhat * Xhat))
        s1 = dX.sum(axis=0)
        s2 = np.einsum("ij,ij->j", dX, Xhat)
        dX -= s1 / n
        dX -= Xhat * (s2 / n)
        dX *= inv_std
        return dX


@NORMS.register("group")
class GroupNorm(Norm):
    """Group normalization (Wu & He 2018): each row's features in `groups` equal groups."""

    def __init__(self, groups: int = 4, eps: float = 1e-5):
        require(groups >= 1, f"groups must be an integer >= 1; got {groups}")
        require(eps > 0, f"eps must be > 0; got {eps}")
        self._set_options(groups=groups, eps=eps)

    def check_width(self, width):
        if width % self.groups:
            raise ValueError(f"group norm needs groups to divide the layer's width; {self.groups} groups do not "
                             f"divide {width} units")
        if self.groups == width:  # one feature per group: x - mean(x) = 0, so the output is always beta
            raise ValueError(f"groups {self.groups} equals the layer's {width} units: each group would hold one "
                             f"feature, whose mean is itself, so the output would always be beta (this is instance "
                             f"norm, which has nothing to normalise in an MLP; nnctl explain instance_norm). Use "
                             f"fewer groups, or norm: layer")

    def forward(self, Z, p, state, train, update_stats=True):
        n, width = Z.shape
        Zg = Z.reshape(n, self.groups, width // self.groups)
        mean = Zg.mean(axis=2, keepdims=True)
        D = Zg - mean
        var = np.mean(D * D, axis=2, keepdims=True)  # biased, per row and group
        inv_std = 1.0 / np.sqrt(var + self.eps)
        Xhat = (D * inv_std).reshape(n, width)
        Y = Xhat * p["gamma"]
        Y += p["beta"]
        return Y, (Xhat, inv_std)

    def backward(self, dY, cache, p, grads):
        Xhat, inv_std = cache
        n, width = dY.shape
        m = width // self.groups
        np.einsum("ij,ij->j", dY, Xhat, out=grads["gamma"])
        np.sum(dY, axis=0, out=grads["beta"])
        dX = (dY * p["gamma"]).reshape(n, self.groups, m)
        Xg = Xhat.reshape(n, self.groups, m)
        s1 = dX.sum(axis=2, keepdims=True)
        s2 = np.sum(dX * Xg, axis=2, keepdims=True)
        dZ = (dX - s1 / m - Xg * (s2 / m)) * inv_std
        return dZ.reshape(n, width)


@NORMS.register("layer")
class LayerNorm(GroupNorm):
    """Layer normalization (Ba et al. 2016): all features of each row, i.e. group norm with 1 group."""

    def __init__(self, eps: float = 1e-5):
        super().__init__(groups=1, eps=eps)
