"""Backprop against central finite differences (float64), over every registry entry."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import layer

from nnctl.nn.activations import ACTIVATIONS
from nnctl.nn.gradcheck import gradient_errors
from nnctl.nn.losses import LOSSES
from nnctl.nn.model import MLP, LayerDef
from nnctl.nn.norms import NORMS

TOL = 1e-6


def _model(n_in, hidden, loss_name, n_out, seed=0):
    loss = LOSSES.get(loss_name)
    out = LayerDef(units=n_out, init="xavier_uniform", bias_init=0.1)
    model = MLP(n_in, hidden, out, loss, dtype=np.float64)
    model.initialize(np.random.default_rng(seed))
    return model


def _data(n, n_in, loss_name, n_out, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    loss = LOSSES.get(loss_name)
    if loss.task == "classification":
        n_classes = 2 if n_out == 1 else n_out
        y = rng.integers(0, n_classes, size=n)
        return X, loss.encode(y, n_classes, np.float64)
    return X, rng.normal(size=(n, n_out))


def _assert_close(errors):
    bad = {k: e for k, (e, _, _) in errors.items() if e > TOL}
    for key in bad:
        err, a, n = errors[key]
        print(f"{key}: rel err {err:.2e}\nanalytic\n{a}\nnumeric\n{n}")
    assert not bad, f"gradients disagree with finite differences: {bad}"


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_every_activation(name):
    hidden = [layer(5, activation=name, init="xavier_normal", bias_init=0.1),
              layer(4, activation=name, init="xavier_normal", bias_init=0.1)]
    model = _model(3, hidden, "cross_entropy", 3)
    X, Y = _data(7, 3, "cross_entropy", 3)
    _assert_close(gradient_errors(model, X, Y))


# every activation with its default options, plus the options that switch to another formula
ACTIVATION_VARIANTS = [(name, {}) for name in ACTIVATIONS.names()] + [("gelu", {"approximate": "tanh"})]


@pytest.mark.parametrize("name,options", ACTIVATION_VARIANTS)
def test_every_activation_keeps_float32(name, options):
    """A float32 network stays float32 through every activation, forward and backward (a NumPy
    scalar constant would silently promote to float64, and batch norm's float32 gradients then fail)."""
    act = ACTIVATIONS.get(name, options)
    Z = np.random.default_rng(0).normal(size=(5, 4 * act.pieces)).astype(np.float32)
    A = act.forward(Z)
    dZ = act.backward(Z, A, np.ones_like(A))
    assert A.dtype == np.float32 and dZ.dtype == np.float32, (A.dtype, dZ.dtype)


LOSS_CASES = [("cross_entropy", 3), ("bce", 1), ("mse", 2), ("mae", 2), ("huber", 2), ("hinge", 1), ("hinge", 4),
              ("perceptron", 1)]


@pytest.mark.parametrize("loss_name,n_out", LOSS_CASES)
def test_every_loss_and_output_pair(loss_name, n_out):
    assert {name for name, _ in LOSS_CASES} == set(LOSSES.names()), "a new loss needs a case here"
    hidden = [layer(4, activation="tanh", init="xavier_normal", bias_init=0.1)]
    if loss_name == "perceptron":
        hidden = []  # a single neuron, as the config requires
    model = _model(3, hidden, loss_name, n_out)
    X, Y = _data(6, 3, loss_name, n_out)
    if loss_name == "huber":
        Y = Y * 3  # both branches of the Huber loss
    if loss_name in ("hinge", "perceptron"):
        model.params.theta *= 4.0  # scores beyond the margin for some rows, inside it for others
        _assert_away_from_kinks(model, X, Y)
    _assert_close(gradient_errors(model, X, Y))


def _assert_away_from_kinks(model, X, Y, h=1e-4):
    """Margin losses are piecewise linear: the check means something only when every row has active
    and inactive pieces well apart from the kinks, and the subgradient is not all zero."""
    Z, _ = model.forward(X, train=True, rng=np.random.default_rng(0))
    kinks = [0.0] if model.loss.registry_name == "perceptron" else [1.0]
    if Z.shape[1] == 1:
        margins = (2 * Y[:, :1] - 1 if model.loss.registry_name == "bce" else Y[:, :1]) * Z
    else:
        margins = np.einsum("ij,ij->i", Y, Z)[:, None] - Z[Y == 0].reshape(len(Z), -1)
    assert min(np.abs(margins - k).min() for k in kinks) > h, "a row sits on a kink: change the seed"
    _, dZ = model.loss.value_and_grad(Z, Y)
    assert np.abs(dZ).max() > 0 and (dZ == 0).any(), "want both violating and satisfied rows"


def test_perceptron_update_is_rosenblatts_rule():
    """One row with sgd: w <- w + lr y x, b <- b + lr y on a mistake; a correct row changes nothing."""
    from nnctl.nn.optimizers import OPTIMIZERS

    model = _model(3, [], "perceptron", 1)
    sgd, lr = OPTIMIZERS.get("sgd", {}), 0.5
    mistakes = 0
    for x, label in ((np.array([[1.0, -2.0, 0.5]]), 1), (np.array([[-1.0, 2.0, -0.5]]), 1),
                     (np.array([[3.0, 1.0, 1.0]]), 0), (np.array([[-3.0, -1.0, -1.0]]), 0)):
        before = model.params.state()
        z = float((x @ before["W1"] + before["b1"])[0, 0])
        model.loss_and_grad(x, model.loss.encode(np.array([label]), 2, np.float64), rng=np.random.default_rng(0))
        sgd.step(model.params.theta, model.params.grad, lr)
        after, y = model.params.state(), (1.0 if label == 1 else -1.0)
        wrong = (z >= 0) != (label == 1)
        mistakes += wrong
        np.testing.assert_array_equal(after["W1"], before["W1"] + (lr * y * x.T if wrong else 0))
        np.testing.assert_array_equal(after["b1"], before["b1"] + (lr * y if wrong else 0))
    assert 0 < mistakes < 4, "want both kinds of row"


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 3.0]])
def test_mse_on_a_classification_task(n_classes, weights):
    """`train.loss: mse` on classification (asked explicitly): a sigmoid unit (binary) or softmax
    (multi-class) before the squared error; its gradient goes through the link, not the fused (P - Y)/n."""
    from nnctl.nn.losses import loss_for

    loss = loss_for("mse", "classification", n_classes)
    assert loss.link == ("sigmoid" if n_classes == 2 else "softmax")
    out = LayerDef(units=loss.n_outputs(n_classes, 1), init="xavier_uniform", bias_init=0.1)
    model = MLP(3, [layer(4, activation="sigmoid", init="xavier_normal", bias_init=0.1)], out, loss,
                dtype=np.float64)
    model.initialize(np.random.default_rng(0))
    if weights is not None:
        loss.class_weight = np.array(weights[:n_classes])
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(7, 3)) * 2, rng.integers(0, n_classes, size=7)
    Y = loss.encode(y, n_classes, np.float64)
    _assert_close(gradient_errors(model, X, Y))
    Z, _ = model.forward(X)
    P = loss.output(Z)  # the loss is the squared error of the probabilities, weighted per row
    w = np.ones(7) if weights is None else np.array(weights)[y]
    assert loss.value(Z, Y) == pytest.approx(np.mean(w[:, None] * (P - Y) ** 2), rel=1e-12)
    assert loss.value_and_grad(Z, Y)[0] == pytest.approx(loss.value(Z, Y), rel=1e-12)


@pytest.mark.parametrize("loss_name,n_out,weights", [("cross_entropy", 3, [0.5, 2.0, 3.0]), ("bce", 1, [0.3, 4.0])])
def test_class_weighted_losses(loss_name, n_out, weights):
    hidden = [layer(4, activation="tanh", init="xavier_normal", bias_init=0.1)]
    model = _model(3, hidden, loss_name, n_out)
    model.loss.class_weight = np.array(weights)
    X, Y = _data(8, 3, loss_name, n_out)
    _assert_close(gradient_errors(model, X, Y))


@pytest.mark.parametrize("loss_name,n_out", [("cross_entropy", 3), ("bce", 1)])
def test_class_weighted_losses_equal_torch(loss_name, n_out):
    """cross_entropy: torch CrossEntropyLoss(weight=w) (sum w_i l_i / sum w_i); bce:
    BCEWithLogitsLoss(weight=w[y]) (sum w_i l_i / n)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(9, n_out)) * 2
    y = rng.integers(0, max(n_out, 2), size=9)
    w = np.array([0.5, 2.0, 3.0][:max(n_out, 2)])
    loss = LOSSES.get(loss_name)
    loss.class_weight = w
    Y = loss.encode(y, max(n_out, 2), np.float64)
    value, grad = loss.value_and_grad(Z, Y)
    Zt = torch.tensor(Z, requires_grad=True)
    if loss_name == "cross_entropy":
        ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(w))(Zt, torch.tensor(y))
    else:
        ref = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w[y])[:, None])(Zt, torch.tensor(Y))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12)
    assert loss.value(Z, Y) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, Zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("norm", [n for n in NORMS.names()])
@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout"])
def test_norms_with_dropout(norm, activation):
    # 2 groups of 4: with 2 features per group every normalized value is +-1 and the gradient
    # through the norm is pure rounding noise
    opts = {"groups": 2} if norm == "group" else {}
    hidden = [layer(8, activation=activation, init="he_normal", bias_init=0.1, norm=norm,
                       norm_options=opts, dropout=0.2),
              layer(8, activation=activation, init="he_normal", bias_init=0.1, norm=norm,
                       norm_options=opts, dropout=0.0)]
    model = _model(4, hidden, "cross_entropy", 3)
    X, Y = _data(10, 4, "cross_entropy", 3)
    _assert_close(gradient_errors(model, X, Y))


def test_deep_network_mixed_layers():
    hidden = [layer(6, activation="elu", init="he_uniform", bias_init=0.1, norm="batch"),
              layer(5, activation="swish", init="lecun_normal", bias_init=0.1, norm="layer"),
              layer(4, activation="sigmoid", init="xavier_uniform", bias_init=0.1, dropout=0.3),
              layer(3, activation="leaky_relu", activation_options={"alpha": 0.2},
                       init="normal", init_std=0.5, bias_init=0.1)]
    model = _model(5, hidden, "mse", 2)
    X, Y = _data(9, 5, "mse", 2)
    _assert_close(gradient_errors(model, X, Y))


def test_no_hidden_layers_is_logistic_regression():
    model = _model(4, [], "bce", 1)
    X, Y = _data(8, 4, "bce", 1)
    _assert_close(gradient_errors(model, X, Y))


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """The check itself can fail: break tanh's derivative and it must notice."""
    tanh = ACTIVATIONS.entry("tanh")
    monkeypatch.setattr(tanh, "backward", lambda self, Z, A, dA, out=None: dA * (1 - A))
    model = _model(3, [layer(4, activation="tanh", bias_init=0.1)], "mse", 1)
    X, Y = _data(5, 3, "mse", 1)
    errors = gradient_errors(model, X, Y)
    assert errors["W1"][0] > 1e-3


@pytest.mark.parametrize("name", ["cross_entropy", "bce", "mse", "mae", "huber", "hinge", "perceptron"])
def test_training_loss_matches_value_and_float64_in_float32(name):
    """value_and_grad's loss (what train_loss, stop_at_loss and no-val early stopping see) equals
    value() and, in float32, the float64 loss to float32 accuracy -- also for large, confident
    logits, where a difference of large batch sums would cancel catastrophically (and go negative)."""
    from nnctl.nn.losses import LOSSES

    rng = np.random.default_rng(1)
    n, k = 4096, 10
    loss = LOSSES.get(name)
    y = rng.integers(0, k, n)
    Z64 = rng.normal(size=(n, k)) * 3 + (1000.0 if name == "cross_entropy" else 0.0)
    if name == "cross_entropy":
        Z64[np.arange(n), y] += 25.0  # confident and right: the true loss is tiny
        Y64 = loss.encode(y, k, np.float64)
    elif name in ("bce", "perceptron"):
        Y64 = loss.encode(y % 2, 2, np.float64)
        Z64 = Z64[:, :1]
    elif name == "hinge":
        Y64 = loss.encode(y, k, np.float64)
    else:
        Y64 = rng.normal(size=(n, k))
    want = loss.value(Z64, Y64)
    got64 = loss.value_and_grad(Z64.copy(), Y64)[0]
    assert got64 == pytest.approx(want, rel=1e-12, abs=1e-15)
    got32 = loss.value_and_grad(Z64.astype(np.float32), Y64.astype(np.float32))[0]
    assert got32 >= 0.0
    assert got32 == pytest.approx(want, rel=1e-5, abs=1e-6)
