"""Losses, each with the output activation ("link") it is paired with.

The network's last layer produces logits Z (n, k); a loss owns the link that turns Z into
predictions, so softmax + cross-entropy and sigmoid + BCE are computed from logits (stable) and
their gradient is the fused `(P - Y) / N`, which is valid only for these two pairs (the link is
the canonical one for the loss; sklearn's `deltas[last]` makes the same shortcut). Identity
links pass Z through and use each loss's own derivative; mse on a classification task (asked for
explicitly) puts a sigmoid or softmax link before the squared error and differentiates through it.
Means follow torch: cross-entropy is a mean over rows; bce, mse, mae and huber are means over all
n * k elements.
"""

from __future__ import annotations

import numpy as np

from nnctl.registry import Registry

LOSSES = Registry("loss")


class Loss:
    """Base class; subclasses fill in `value` and `value_and_grad`."""

    link = "identity"
    task = "regression"
    has_proba = True  # classification: `output` gives probabilities (False: a raw score, e.g. hinge)

    def n_outputs(self, n_classes: int, n_targets: int) -> int:
        """Units of the output layer."""
        return n_targets

    def encode(self, y: np.ndarray, n_classes: int, dtype) -> np.ndarray:
        """Targets as the (n, k) matrix the loss compares with; y holds class indices or values."""
        y = np.asarray(y, dtype=dtype)
        return y[:, None] if y.ndim == 1 else y  # (n, 1) or (n, k); n may be 0 (an empty val part)

    def output(self, Z: np.ndarray) -> np.ndarray:
        """Predictions (probabilities for classification) from logits Z."""
        return Z

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Class indices (classification) or values (regression) from logits Z."""
        return Z

    def value(self, Z: np.ndarray, Y: np.ndarray) -> float:
        """Mean loss."""
        raise NotImplementedError

    def value_and_grad(self, Z: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean loss and dL/dZ (n, k)."""
        raise NotImplementedError


def _log_softmax_parts(Z):
    m = Z.max(axis=1, keepdims=True)  # subtract the row max: exp never overflows
    E = np.exp(Z - m)
    s = E.sum(axis=1, keepdims=True)
    return m, E, s


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    """Softmax over k >= 2 units; -mean(log p_true). One unit per class."""

    link = "softmax"
    task = "classification"

    def n_outputs(self, n_classes, n_targets):
        return n_classes

    def encode(self, y, n_classes, dtype):
        Y = np.zeros((len(y), n_classes), dtype=dtype)
        Y[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1
        return Y

    def output(self, Z):
        m, E, s = _log_softmax_parts(Z)
        return E / s

    def predict(self, Z):
        return np.argmax(Z, axis=1)

    class_weight: np.ndarray | None = None  # (k,): torch CrossEntropyLoss(weight=...): sum w_i l_i / sum w_i

    def value(self, Z, Y):
        m, E, s = _log_softmax_parts(Z)
        lse = np.log(s) + m  # (n, 1) log-sum-exp
        per_row = lse[:, 0] - np.einsum("ij,ij->i", Y, Z)
        if self.class_weight is not None:
            w = Y @ self.class_weight
            return float(per_row @ w / w.sum())
        return float(np.mean(per_row))

    def value_and_grad(self, Z, Y):
        if self.class_weight is not None:
            w = (Y @ self.class_weight)[:, None]
            total = float(w.sum())
            P = self.output(Z)
            loss = self.value(Z, Y)
            P -= Y
            P *= w / total  # dZ = w_i (P - Y) / sum w
            return loss, P
        n = Z.shape[0]
        P = np.subtract(Z, Z.max(axis=1, keepdims=True))  # shifted logits, max 0 per row
        # per row: log-sum-exp minus the true logit = log(sum exp(shifted)) - shifted true logit, which
        # is exactly 0 - 0 when the true class dominates (no cancellation between large batch sums)
        true_shifted = np.einsum("ij,ij->i", Y, P)
        np.exp(P, out=P)
        s = P.sum(axis=1, keepdims=True)
        loss = float(np.subtract(np.log(s[:, 0]), true_shifted).sum(dtype=np.float64)) / n
        P /= s
        P -= Y
        P *= 1.0 / n  # fused softmax + cross-entropy: dZ = (P - Y) / n
        return loss, P


@LOSSES.register("bce")
class BinaryCrossEntropy(Loss):
    """Binary classification with ONE sigmoid unit: the probability of the second class."""

    link = "sigmoid"
    task = "classification"

    def n_outputs(self, n_classes, n_targets):
        return 1

    def encode(self, y, n_classes, dtype):
        return (np.asarray(y, dtype=np.int64) == 1).astype(dtype).reshape(-1, 1)

    def output(self, Z):
        return 0.5 * (1.0 + np.tanh(0.5 * Z))

    def predict(self, Z):
        return (Z[:, 0] > 0).astype(np.int64)

    class_weight: np.ndarray | None = None  # (2,): torch BCEWithLogitsLoss(weight=w[y]): sum w_i l_i / n

    def value(self, Z, Y):
        # -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))
        per = np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))
        if self.class_weight is not None:
            per = per * self.row_weights(Y)
        return float(np.mean(per))

    def row_weights(self, Y):
        return np.where(Y > 0.5, self.class_weight[1], self.class_weight[0]).astype(Y.dtype)

    def value_and_grad(self, Z, Y):
        loss = self.value(Z, Y)
        if self.class_weight is not None:
            out = self.output(Z) - Y
            out *= self.row_weights(Y) / Z.size
            return loss, out
        out = np.multiply(Z, 0.5)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5  # sigmoid(Z)
        out -= Y
        out *= 1.0 / Z.size  # fused sigmoid + BCE: dZ = (P - Y) / n (one unit)
        return loss, out


@LOSSES.register("mse")
class MSE(Loss):
    """mean((Z - Y)^2) over all elements; dZ = 2 (Z - Y) / (n k)."""

    def value(self, Z, Y):
        D = Z - Y
        return float(np.mean(D * D))

    def value_and_grad(self, Z, Y):
        out = np.subtract(Z, Y)
        loss = float(np.vdot(out, out)) / Z.size
        out *= 2.0 / Z.size
        return loss, out


@LOSSES.register("mae")
class MAE(Loss):
    """mean(|Z - Y|) (torch L1Loss); dZ = sign(Z - Y) / (n k), 0 where equal."""

    def value(self, Z, Y):
        return float(np.mean(np.abs(Z - Y)))

    def value_and_grad(self, Z, Y):
        D = Z - Y
        loss = float(np.mean(np.abs(D)))
        out = np.sign(D)
        out *= 1.0 / Z.size
        return loss, out


@LOSSES.register("huber")
class Huber(Loss):
    """torch HuberLoss(delta=1): 0.5 d^2 where |d| < delta, delta (|d| - delta/2) elsewhere."""

    delta = 1.0

    def value(self, Z, Y):
        A = np.abs(Z - Y)
        d = self.delta
        return float(np.mean(np.where(A < d, 0.5 * A * A, d * (A - 0.5 * d))))

    def value_and_grad(self, Z, Y):
        loss = self.value(Z, Y)
        out = np.subtract(Z, Y)
        np.clip(out, -self.delta, self.delta, out=out)
        out *= 1.0 / Z.size
        return loss, out


def _signs(Y):
    """The +-1 targets of a margin loss's single unit."""
    return Y[:, :1]


@LOSSES.register("hinge")
class Hinge(Loss):
    """Margin loss on raw scores (identity link, no probabilities). Binary: ONE unit, labels mapped to
    +-1, mean(max(0, 1 - y z)), predict z >= 0 -> second class. Multi-class: one unit per class, torch's
    MultiMarginLoss (margin 1, p 1): per row sum over j != y of max(0, 1 - z_y + z_j) / k, mean over
    rows; predict argmax. Subgradient 0 at the kink (y z = 1 exactly)."""

    task = "classification"
    has_proba = False

    def n_outputs(self, n_classes, n_targets):
        return 1 if n_classes <= 2 else n_classes

    def encode(self, y, n_classes, dtype):
        if n_classes <= 2:
            return np.where(np.asarray(y, dtype=np.int64) == 1, 1, -1).astype(dtype).reshape(-1, 1)
        return CrossEntropy().encode(y, n_classes, dtype)

    def predict(self, Z):
        return (Z[:, 0] >= 0).astype(np.int64) if Z.shape[1] == 1 else np.argmax(Z, axis=1)

    def _margins(self, Z, Y):
        if Z.shape[1] == 1:
            return 1.0 - _signs(Y) * Z
        true = np.einsum("ij,ij->i", Y, Z)[:, None]
        M = 1.0 - true + Z
        M[Y > 0] = 0.0  # j = y is not a violation
        return M

    def value(self, Z, Y):
        M = self._margins(Z, Y)
        return float(np.maximum(M, 0).sum(dtype=np.float64)) / M.size

    def value_and_grad(self, Z, Y):
        M = self._margins(Z, Y)
        loss = float(np.maximum(M, 0).sum(dtype=np.float64)) / M.size
        active = (M > 0).astype(Z.dtype)
        if Z.shape[1] == 1:
            return loss, active * (-_signs(Y) / Z.shape[0])
        dZ = active - Y * active.sum(axis=1, keepdims=True)  # +1 at each violating j, -(count) at y
        dZ *= 1.0 / M.size
        return loss, dZ


@LOSSES.register("perceptron")
class Perceptron(Loss):
    """Rosenblatt's perceptron: ONE unit with a step output, binary only (labels mapped to +-1).

    predict: z >= 0 -> second class. The loss is the perceptron criterion mean(max(0, -y z)); its
    subgradient is -y / n on a misclassified row (predict disagrees with y; at z = 0 that is the
    first class's rows) and 0 on a correct one, so one row per step with sgd (gd: stochastic) is
    exactly w <- w + lr y x, b <- b + lr y on a mistake and nothing otherwise."""

    link = "step"  # what `output` applies; value and value_and_grad work on the raw score Z
    task = "classification"
    has_proba = False

    def n_outputs(self, n_classes, n_targets):
        return 1

    def encode(self, y, n_classes, dtype):
        return Hinge().encode(y, 2, dtype)

    def output(self, Z):
        return np.where(Z >= 0, 1.0, 0.0).astype(Z.dtype)  # the step: class index 0 or 1

    def predict(self, Z):
        return (Z[:, 0] >= 0).astype(np.int64)

    def value(self, Z, Y):
        return float(np.maximum(-_signs(Y) * Z, 0).sum(dtype=np.float64)) / Z.size

    def value_and_grad(self, Z, Y):
        y = _signs(Y)
        wrong = (Z >= 0) != (y > 0)
        return self.value(Z, Y), np.where(wrong, -y / Z.shape[0], 0).astype(Z.dtype)


class ProbabilityMSE(Loss):
    """`loss: mse` on a classification task, asked for explicitly (the lecture's pairing): the link
    (one sigmoid unit for binary, softmax over k units otherwise) turns Z into probabilities P, and
    the loss is mean((P - Y)^2) over all n * k elements against the 0/1 or one-hot targets.

    Not registered: the config says `mse`, and `loss_for` picks this class for a classification
    task. The gradient is NOT the fused (P - Y) / n: it goes through the link's derivative, which
    vanishes where P saturates at 0 or 1 (why cross-entropy is the usual choice).
    """

    registry_name = "mse"
    task = "classification"
    class_weight: np.ndarray | None = None  # (k,): row i weighted by its class's weight, mean over elements

    def __init__(self, binary: bool):
        self.binary = binary
        self.link = "sigmoid" if binary else "softmax"
        self._encoder = BinaryCrossEntropy() if binary else CrossEntropy()

    def n_outputs(self, n_classes, n_targets):
        return 1 if self.binary else n_classes

    def encode(self, y, n_classes, dtype):
        return self._encoder.encode(y, n_classes, dtype)

    def output(self, Z):
        return self._encoder.output(Z)

    def predict(self, Z):
        return self._encoder.predict(Z)

    def _row_weights(self, Y):
        """(n, 1) weight of each row's class, or None when unweighted."""
        if self.class_weight is None:
            return None
        if self.binary:
            return np.where(Y > 0.5, self.class_weight[1], self.class_weight[0]).astype(Y.dtype)
        return (Y @ self.class_weight.astype(Y.dtype))[:, None]

    def value(self, Z, Y):
        D = self.output(Z) - Y
        D *= D
        w = self._row_weights(Y)
        return float(np.mean(D * w if w is not None else D))

    def value_and_grad(self, Z, Y):
        P = self.output(Z)  # (n, k) probabilities
        G = P - Y
        w = self._row_weights(Y)
        wG = G * w if w is not None else G
        loss = float(np.vdot(wG, G)) / Z.size
        G = wG * (2.0 / Z.size)  # dL/dP
        if self.binary:  # sigmoid' = P (1 - P)
            return loss, G * P * (1.0 - P)
        # softmax Jacobian: dZ_j = P_j (G_j - sum_i G_i P_i), row by row
        return loss, P * (G - np.einsum("ij,ij->i", G, P)[:, None])


def loss_for(name: str, task: str, n_classes: int) -> Loss:
    """The loss object for a resolved `train.loss` on a task: `mse` on classification is the
    probability MSE (sigmoid for 2 classes, softmax for more); every other name is its registry entry."""
    if name == "mse" and task == "classification":
        return ProbabilityMSE(binary=n_classes <= 2)
    return LOSSES.get(name)


# `loss: auto` by task: multi-class softmax + CE, binary sigmoid + BCE, regression MSE.
def auto_loss(task: str, n_classes: int) -> str:
    """The loss `loss: auto` stands for."""
    if task == "regression":
        return "mse"
    return "bce" if n_classes == 2 else "cross_entropy"
