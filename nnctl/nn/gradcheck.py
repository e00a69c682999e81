"""Backprop against central finite differences, per parameter tensor (float64 only)."""

from __future__ import annotations

import numpy as np

from nnctl.nn.model import MLP


def gradient_errors(model: MLP, X: np.ndarray, Y: np.ndarray, h: float = 1e-6, seed: int = 0
                    ) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
    """For each parameter key: (relative error, analytic grad, numeric grad).

    The relative error of a tensor is max|analytic - numeric| / scale, where scale is the
    tensor's largest gradient entry, floored at 1e-3 times the largest entry of any tensor: so
    near-zero entries (dead units) and tensors whose true gradient is zero (a bias feeding batch
    norm) are judged against a meaningful scale, not against rounding noise. ReLU-family kinks
    make central differences meaningless for pre-activations within h of 0: test inputs should
    keep away from them (e.g. a non-zero bias_init). Dropout masks are fixed (same seed at every
    evaluation) and batch-norm
    running statistics are frozen, so the loss is a deterministic function of theta.
    float64 only: in float32 the rounding of the loss swamps a central difference.
    """
    if model.dtype != np.float64:
        raise ValueError("gradient checks need a float64 model")

    def loss_at() -> float:
        rng = np.random.default_rng(seed)
        Z, _ = model.forward(X, train=True, rng=rng, update_stats=False)
        return model.loss.value(Z, Y)

    model.loss_and_grad(X, Y, rng=np.random.default_rng(seed), update_stats=False)
    analytic = model.params.grad.copy()
    theta = model.params.theta
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + h
        up = loss_at()
        theta[i] = old - h
        down = loss_at()
        theta[i] = old
        numeric[i] = (up - down) / (2 * h)
    out = {}
    floor = max(1e-3 * max(np.max(np.abs(analytic)), np.max(np.abs(numeric))), 1e-12)
    for name, sl in model.params.slices.items():
        a, n = analytic[sl], numeric[sl]
        scale = max(np.max(np.abs(a)), np.max(np.abs(n)), floor)
        shape = model.params.shapes[name]
        out[name] = (float(np.max(np.abs(a - n)) / scale), a.reshape(shape), n.reshape(shape))
    return out
