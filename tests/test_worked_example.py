"""Hand-worked forward pass, loss, backprop and one SGD step on tiny networks, checked against literals.

The weights are chosen so every intermediate value is an exact fraction, so each number below can
be re-derived with pencil and paper from the comments:

* example 1 (3-2-1, sigmoid hidden layer, identity output, MSE): the hidden pre-activations are
  integer multiples of ln 3, and sigmoid(k ln 3) = 3^k / (3^k + 1) is rational;
* example 2 (2-2-3, ReLU hidden layer, softmax output, cross-entropy): the logits are integer
  multiples of ln 2, so the softmax probabilities are rational.

Conventions (nnctl): rows are samples, Z = A_prev @ W + b, W has shape (fan_in, fan_out).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import layer

from nnctl.nn.losses import LOSSES
from nnctl.nn.model import MLP, LayerDef
from nnctl.nn.optimizers import OPTIMIZERS

LN2 = math.log(2.0)
LN3 = math.log(3.0)
TOL = dict(rtol=1e-12, atol=1e-15)


def _set(model: MLP, **arrays) -> None:
    """Write the given parameter arrays into the model's views (W1, b1, W2, b2)."""
    assert set(arrays) == set(model.params.views), "set every parameter explicitly"
    for name, value in arrays.items():
        model.params.views[name][...] = value


def _sgd_step(model: MLP, lr: float) -> None:
    """One plain SGD step on the flat parameter vector, exactly as training does it."""
    opt = OPTIMIZERS.get("sgd").bind(model.params.theta, 0.0)
    opt.step(model.params.theta, model.params.grad, lr)


# --------------------------------------------------------------------------- example 1: MSE


def _mse_model() -> MLP:
    hidden = [layer(2, activation="sigmoid")]
    output = LayerDef(units=1)
    return MLP(3, hidden, output, LOSSES.get("mse"), dtype=np.float64)


X1 = np.array([[1.0, 0.0, 2.0],
               [0.0, 1.0, -1.0]])
Y1 = np.array([[1.0],
               [0.5]])
K1 = np.array([[1.0, -1.0],
               [-1.0, 1.0],
               [0.0, 1.0]])  # W1 = ln3 * K1
C1 = np.array([0.0, 1.0])  # b1 = ln3 * C1
W2_1 = np.array([[2.0],
                 [-1.0]])
B2_1 = np.array([0.5])


def test_mse_sigmoid_network_forward_backward_and_sgd_step():
    """3-2-1 sigmoid net, MSE loss, 2 samples: every forward value, the loss, every gradient
    and the weights after one SGD step (lr = 0.5) equal the hand-derived numbers."""
    model = _mse_model()
    _set(model, W1=LN3 * K1, b1=LN3 * C1, W2=W2_1, b2=B2_1)

    # ---- forward
    # Z1 = X @ W1 + b1 = ln3 * (X @ K1 + C1)
    #   row 1: x = (1, 0, 2): (1*1 + 0*-1 + 2*0, 1*-1 + 0*1 + 2*1) + (0, 1) = (1, 2)   [* ln3]
    #   row 2: x = (0, 1, -1): (0 - 1 + 0, 0 + 1 - 1) + (0, 1)             = (-1, 1)  [* ln3]
    Z1 = LN3 * np.array([[1.0, 2.0],
                         [-1.0, 1.0]])
    # A1 = sigmoid(Z1); sigmoid(k ln3) = 3^k / (3^k + 1): k=1 -> 3/4, k=2 -> 9/10, k=-1 -> 1/4
    A1 = np.array([[0.75, 0.9],
                   [0.25, 0.75]])
    # Z2 = A1 @ W2 + b2:  row 1: 0.75*2 + 0.9*(-1) + 0.5 = 1.1
    #                     row 2: 0.25*2 + 0.75*(-1) + 0.5 = 0.25
    Z2 = np.array([[1.1],
                   [0.25]])
    # loss = mean((Z2 - Y)^2) = ((1.1 - 1)^2 + (0.25 - 0.5)^2) / 2 = (0.01 + 0.0625) / 2 = 0.03625
    expected_loss = 0.03625

    logits, (caches, A_last) = model.forward(X1)
    (_, z1_cached, a1_cached, _, _), = caches
    np.testing.assert_allclose(z1_cached, Z1, **TOL)
    np.testing.assert_allclose(a1_cached, A1, **TOL)
    np.testing.assert_allclose(A_last, A1, **TOL)
    np.testing.assert_allclose(logits, Z2, **TOL)
    assert model.loss.value(logits, Y1) == pytest.approx(expected_loss, rel=1e-12)

    # ---- backward
    loss = model.loss_and_grad(X1, Y1)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    g = model.params.grads
    # dZ2 = 2 (Z2 - Y) / (n k) = 2 * (0.1, -0.25) / 2 = (0.1, -0.25)
    dZ2 = np.array([[0.1],
                    [-0.25]])
    # dW2 = A1.T @ dZ2 = (0.75*0.1 + 0.25*(-0.25), 0.9*0.1 + 0.75*(-0.25)) = (0.0125, -0.0975)
    np.testing.assert_allclose(g["W2"], [[0.0125], [-0.0975]], **TOL)
    # db2 = sum over rows of dZ2 = 0.1 - 0.25 = -0.15
    np.testing.assert_allclose(g["b2"], [-0.15], **TOL)
    # dA1 = dZ2 @ W2.T = [[0.1*2, 0.1*(-1)], [-0.25*2, -0.25*(-1)]] = [[0.2, -0.1], [-0.5, 0.25]]
    # sigmoid'(Z1) = A1 (1 - A1) = [[3/16, 9/100], [3/16, 3/16]] = [[0.1875, 0.09], [0.1875, 0.1875]]
    # dZ1 = dA1 * A1 (1 - A1) = [[0.2*0.1875, -0.1*0.09], [-0.5*0.1875, 0.25*0.1875]]
    dZ1 = np.array([[0.0375, -0.009],
                    [-0.09375, 0.046875]])
    np.testing.assert_allclose(model.loss.value_and_grad(logits, Y1)[1], dZ2, **TOL)
    np.testing.assert_allclose(dZ1, (dZ2 @ W2_1.T) * A1 * (1 - A1), **TOL)  # re-check of the arithmetic
    # dW1 = X.T @ dZ1: row f is sum_i X[i, f] * dZ1[i]
    #   f=1: 1*dZ1[0] + 0*dZ1[1] = (0.0375, -0.009)
    #   f=2: 0*dZ1[0] + 1*dZ1[1] = (-0.09375, 0.046875)
    #   f=3: 2*dZ1[0] - 1*dZ1[1] = (0.075 + 0.09375, -0.018 - 0.046875) = (0.16875, -0.064875)
    dW1 = np.array([[0.0375, -0.009],
                    [-0.09375, 0.046875],
                    [0.16875, -0.064875]])
    np.testing.assert_allclose(g["W1"], dW1, **TOL)
    # db1 = column sums of dZ1 = (0.0375 - 0.09375, -0.009 + 0.046875) = (-0.05625, 0.037875)
    np.testing.assert_allclose(g["b1"], [-0.05625, 0.037875], **TOL)

    # ---- one SGD step, lr = 0.5: theta <- theta - 0.5 * grad
    _sgd_step(model, lr=0.5)
    v = model.params.views
    # W1 = ln3 * K1 - 0.5 * dW1
    np.testing.assert_allclose(v["W1"], LN3 * K1 - np.array([[0.01875, -0.0045],
                                                            [-0.046875, 0.0234375],
                                                            [0.084375, -0.0324375]]), **TOL)
    # b1 = ln3 * (0, 1) - 0.5 * (-0.05625, 0.037875) = (0.028125, ln3 - 0.0189375)
    np.testing.assert_allclose(v["b1"], [0.028125, LN3 - 0.0189375], **TOL)
    # W2 = (2 - 0.5*0.0125, -1 - 0.5*(-0.0975)) = (1.99375, -0.95125)
    np.testing.assert_allclose(v["W2"], [[1.99375], [-0.95125]], **TOL)
    # b2 = 0.5 - 0.5*(-0.15) = 0.575
    np.testing.assert_allclose(v["b2"], [0.575], **TOL)
    # and the step went downhill
    assert model.loss.value(model.forward(X1)[0], Y1) < expected_loss


# ------------------------------------------------------------------ example 2: cross-entropy


def _ce_model() -> MLP:
    hidden = [layer(2, activation="relu")]
    output = LayerDef(units=3)
    return MLP(2, hidden, output, LOSSES.get("cross_entropy"), dtype=np.float64)


X2 = np.array([[1.0, -1.0],
               [1.0, 2.0]])
Y2 = np.array([[1.0, 0.0, 0.0],   # sample 1 is class 0
               [0.0, 0.0, 1.0]])  # sample 2 is class 2
W1_2 = np.array([[1.0, 1.0],
                 [-1.0, 1.0]])
B1_2 = np.array([0.0, -1.0])
K2 = np.array([[0.5, 0.0, 0.0],
               [0.0, 0.0, 0.5]])  # W2 = ln2 * K2
C2 = np.array([0.0, 1.0, 0.0])  # b2 = ln2 * C2


def test_softmax_cross_entropy_network_forward_backward_and_sgd_step():
    """2-2-3 ReLU net, softmax + cross-entropy, 2 samples: logits, probabilities, loss, every
    gradient and the weights after one SGD step (lr = 1) equal the hand-derived numbers."""
    model = _ce_model()
    _set(model, W1=W1_2, b1=B1_2, W2=LN2 * K2, b2=LN2 * C2)

    # ---- forward
    # Z1 = X @ W1 + b1:  row 1: (1*1 + -1*-1, 1*1 + -1*1) + (0, -1) = (2, -1)
    #                    row 2: (1*1 + 2*-1,  1*1 + 2*1)  + (0, -1) = (-1, 2)
    Z1 = np.array([[2.0, -1.0],
                   [-1.0, 2.0]])
    # A1 = relu(Z1)
    A1 = np.array([[2.0, 0.0],
                   [0.0, 2.0]])
    # Z2 = A1 @ W2 + b2 = ln2 * (A1 @ K2 + C2)
    #   row 1: 2 * (0.5, 0, 0) + (0, 1, 0) = (1, 1, 0)   [* ln2]
    #   row 2: 2 * (0, 0, 0.5) + (0, 1, 0) = (0, 1, 1)   [* ln2]
    Z2 = LN2 * np.array([[1.0, 1.0, 0.0],
                         [0.0, 1.0, 1.0]])
    # P = softmax(Z2) row-wise: exp(k ln2) = 2^k -> row 1 (2, 2, 1) / 5, row 2 (1, 2, 2) / 5
    P = np.array([[0.4, 0.4, 0.2],
                  [0.2, 0.4, 0.4]])
    # loss = mean(-log p_true) = (-ln 0.4 - ln 0.4) / 2 = ln 2.5
    expected_loss = math.log(2.5)  # 0.916290731874155...

    logits, (caches, A_last) = model.forward(X2)
    (_, z1_cached, _, _, _), = caches
    np.testing.assert_allclose(z1_cached, Z1, **TOL)
    np.testing.assert_allclose(A_last, A1, **TOL)
    np.testing.assert_allclose(logits, Z2, **TOL)
    np.testing.assert_allclose(model.loss.output(logits), P, **TOL)

    # ---- backward
    loss = model.loss_and_grad(X2, Y2)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert loss == pytest.approx(0.9162907318741551, rel=1e-12)
    g = model.params.grads
    # dZ2 = (P - Y) / n = ((-0.6, 0.4, 0.2), (0.2, 0.4, -0.6)) / 2
    #     = ((-0.3, 0.2, 0.1), (0.1, 0.2, -0.3))
    np.testing.assert_allclose(model.loss.value_and_grad(logits, Y2)[1], [[-0.3, 0.2, 0.1],
                                                                          [0.1, 0.2, -0.3]], **TOL)
    # dW2 = A1.T @ dZ2 = (2 * dZ2[0], 2 * dZ2[1])   (A1 = 2 * identity)
    np.testing.assert_allclose(g["W2"], [[-0.6, 0.4, 0.2],
                                         [0.2, 0.4, -0.6]], **TOL)
    # db2 = column sums of dZ2 = (-0.2, 0.4, -0.2)
    np.testing.assert_allclose(g["b2"], [-0.2, 0.4, -0.2], **TOL)
    # dA1 = dZ2 @ W2.T, W2.T = ln2 * ((0.5, 0, 0), (0, 0, 0.5))
    #     = ln2 * ((-0.3*0.5, 0.1*0.5), (0.1*0.5, -0.3*0.5)) = ln2 * ((-0.15, 0.05), (0.05, -0.15))
    # dZ1 = dA1 * (Z1 > 0) = ln2 * ((-0.15, 0), (0, -0.15))
    # dW1 = X.T @ dZ1, X.T = ((1, 1), (-1, 2)):
    #   row 1: 1*(-0.15, 0) + 1*(0, -0.15)  = (-0.15, -0.15)   [* ln2]
    #   row 2: -1*(-0.15, 0) + 2*(0, -0.15) = (0.15, -0.3)     [* ln2]
    dW1 = LN2 * np.array([[-0.15, -0.15],
                          [0.15, -0.3]])
    np.testing.assert_allclose(g["W1"], dW1, **TOL)
    # db1 = column sums of dZ1 = ln2 * (-0.15, -0.15)
    np.testing.assert_allclose(g["b1"], LN2 * np.array([-0.15, -0.15]), **TOL)

    # ---- one SGD step, lr = 1: theta <- theta - grad
    _sgd_step(model, lr=1.0)
    v = model.params.views
    # W1 = ((1 + 0.15 ln2, 1 + 0.15 ln2), (-1 - 0.15 ln2, 1 + 0.3 ln2))
    np.testing.assert_allclose(v["W1"], [[1 + 0.15 * LN2, 1 + 0.15 * LN2],
                                         [-1 - 0.15 * LN2, 1 + 0.3 * LN2]], **TOL)
    # b1 = (0 + 0.15 ln2, -1 + 0.15 ln2)
    np.testing.assert_allclose(v["b1"], [0.15 * LN2, -1 + 0.15 * LN2], **TOL)
    # W2 = ln2 * K2 - dW2 = ((0.5 ln2 + 0.6, -0.4, -0.2), (-0.2, -0.4, 0.5 ln2 + 0.6))
    np.testing.assert_allclose(v["W2"], [[0.5 * LN2 + 0.6, -0.4, -0.2],
                                         [-0.2, -0.4, 0.5 * LN2 + 0.6]], **TOL)
    # b2 = ln2 * (0, 1, 0) - (-0.2, 0.4, -0.2) = (0.2, ln2 - 0.4, 0.2)
    np.testing.assert_allclose(v["b2"], [0.2, LN2 - 0.4, 0.2], **TOL)
    # and the step went downhill
    assert model.loss.value(model.forward(X2)[0], Y2) < expected_loss
