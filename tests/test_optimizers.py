"""Every optimizer follows torch.optim's documented update rule (the "Algorithm" boxes of
https://pytorch.org/docs/stable/optim.html).

Four kinds of check:

* trajectories on a small quadratic against `reference_step`, a plain scalar-loop transcription
  of the torch algorithm boxes written for this file (no nnctl code involved);
* two steps on a 1- or 2-element vector against numbers worked out by hand (HAND_CASES);
* defaults (options, learning rate, weight decay) equal to torch's;
* when torch is installed: five steps against torch.optim itself on the same gradients.

Naming: `momentum` is torch SGD(momentum=0.9), `nesterov` is SGD(momentum=0.9, nesterov=True).
Weight decay is coupled L2 (g += wd * theta) except for adamw (theta *= 1 - lr * wd).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.nn.optimizers import OPTIMIZERS

TOL = dict(rtol=1e-12, atol=1e-15)

# ------------------------------------------------------------------------------------------
# The reference: torch's algorithm boxes, one scalar at a time.
# `state` is a dict of per-element lists created on the first call; `t` counts from 1.
# ------------------------------------------------------------------------------------------


def ref_sgd(theta, grad, state, t, lr, wd, momentum=0.0, dampening=0.0, nesterov=False):
    """torch.optim.SGD:
        g <- g + wd theta                       (if wd != 0)
        b <- g (t = 1),  mu b + (1 - tau) g     (t > 1)          (if mu != 0)
        g <- g + mu b (nesterov),  b (otherwise)
        theta <- theta - lr g
    """
    buf = state.setdefault("b", [0.0] * len(theta))
    out = []
    for i, (p, g) in enumerate(zip(theta, grad)):
        if wd != 0:
            g = g + wd * p
        if momentum != 0:
            buf[i] = g if t == 1 else momentum * buf[i] + (1 - dampening) * g
            g = g + momentum * buf[i] if nesterov else buf[i]
        out.append(p - lr * g)
    return out


def ref_adagrad(theta, grad, state, t, lr, wd, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    """torch.optim.Adagrad:
        lr~ <- lr / (1 + (t - 1) lr_decay)
        g <- g + wd theta                       (if wd != 0)
        sum <- sum + g^2                        (sum_0 = initial_accumulator_value)
        theta <- theta - lr~ g / (sqrt(sum) + eps)
    """
    acc = state.setdefault("sum", [initial_accumulator_value] * len(theta))
    clr = lr / (1 + (t - 1) * lr_decay)
    out = []
    for i, (p, g) in enumerate(zip(theta, grad)):
        if wd != 0:
            g = g + wd * p
        acc[i] = acc[i] + g * g
        out.append(p - clr * g / (math.sqrt(acc[i]) + eps))
    return out


def ref_rmsprop(theta, grad, state, t, lr, wd, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    """torch.optim.RMSprop:
        g <- g + wd theta                       (if wd != 0)
        v <- alpha v + (1 - alpha) g^2;  v~ <- v
        if centered: g_ave <- alpha g_ave + (1 - alpha) g;  v~ <- v~ - g_ave^2
        if mu > 0:   b <- mu b + g / (sqrt(v~) + eps);  theta <- theta - lr b
        else:        theta <- theta - lr g / (sqrt(v~) + eps)
    """
    n = len(theta)
    v, g_ave, buf = (state.setdefault(k, [0.0] * n) for k in ("v", "g_ave", "b"))
    out = []
    for i, (p, g) in enumerate(zip(theta, grad)):
        if wd != 0:
            g = g + wd * p
        v[i] = alpha * v[i] + (1 - alpha) * g * g
        v_tilde = v[i]
        if centered:
            g_ave[i] = alpha * g_ave[i] + (1 - alpha) * g
            v_tilde = v_tilde - g_ave[i] ** 2
        if momentum > 0:
            buf[i] = momentum * buf[i] + g / (math.sqrt(v_tilde) + eps)
            out.append(p - lr * buf[i])
        else:
            out.append(p - lr * g / (math.sqrt(v_tilde) + eps))
    return out


def ref_adam(theta, grad, state, t, lr, wd, betas=(0.9, 0.999), eps=1e-8, amsgrad=False, decoupled=False):
    """torch.optim.Adam (decoupled=False) and torch.optim.AdamW (decoupled=True):
        Adam:  g <- g + wd theta                (if wd != 0)
        AdamW: theta <- theta - lr wd theta
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        m^ <- m / (1 - b1^t)
        amsgrad: v_max <- max(v_max, v);  v^ <- v_max / (1 - b2^t)
        else:    v^ <- v / (1 - b2^t)
        theta <- theta - lr m^ / (sqrt(v^) + eps)
    """
    b1, b2 = betas
    n = len(theta)
    m, v, v_max = (state.setdefault(k, [0.0] * n) for k in ("m", "v", "v_max"))
    out = []
    for i, (p, g) in enumerate(zip(theta, grad)):
        if decoupled:
            p = p - lr * wd * p
        elif wd != 0:
            g = g + wd * p
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        m_hat = m[i] / (1 - b1**t)
        if amsgrad:
            v_max[i] = max(v_max[i], v[i])
            v_hat = v_max[i] / (1 - b2**t)
        else:
            v_hat = v[i] / (1 - b2**t)
        out.append(p - lr * m_hat / (math.sqrt(v_hat) + eps))
    return out


def reference_step(name, options, theta, grad, state, t, lr, wd):
    """One step of optimizer `name` (nnctl naming) by the reference transcriptions above.

    Only the options the test passes are forwarded; everything else takes the reference's own
    (torch) defaults, except nnctl's momentum/nesterov entries whose momentum defaults to 0.9.
    """
    if name == "sgd":
        return ref_sgd(theta, grad, state, t, lr, wd, **options)
    if name == "momentum":
        return ref_sgd(theta, grad, state, t, lr, wd, **{"momentum": 0.9, **options})
    if name == "nesterov":
        return ref_sgd(theta, grad, state, t, lr, wd, **{"momentum": 0.9, **options}, nesterov=True)
    if name == "adagrad":
        return ref_adagrad(theta, grad, state, t, lr, wd, **options)
    if name == "rmsprop":
        return ref_rmsprop(theta, grad, state, t, lr, wd, **options)
    if name == "adam":
        return ref_adam(theta, grad, state, t, lr, wd, **options)
    if name == "adamw":
        return ref_adam(theta, grad, state, t, lr, wd, **options, decoupled=True)
    raise AssertionError(f"no reference for optimizer {name!r}: add one")


REFERENCE_NAMES = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}

# ------------------------------------------------------------------------------------------
# Quadratic test problem: f(theta) = 1/2 theta^T A theta - b^T theta, grad = A theta - b.
# ------------------------------------------------------------------------------------------

A = [[3.0, 1.0, 0.0],
     [1.0, 2.0, 0.5],
     [0.0, 0.5, 1.0]]  # symmetric positive definite
B = [1.0, -2.0, 0.5]
THETA0 = [0.5, -1.0, 2.0]


def quadratic_grad(theta):
    """A theta - b, as a plain list."""
    return [sum(a * p for a, p in zip(row, theta)) - bi for row, bi in zip(A, B)]


def run_nnctl(name, options, theta0, lr, wd, grads):
    """Run optimizer `name` from theta0; `grads` is a list of gradients or a function of theta.

    Returns the parameter vector after each step (copies). Each step gets a fresh gradient array,
    since `step` may scale it in place.
    """
    theta = np.array(theta0, dtype=np.float64)
    opt = OPTIMIZERS.get(name, options).bind(theta, wd)
    steps = len(grads) if isinstance(grads, list) else 5
    trajectory = []
    for t in range(steps):
        g = grads[t] if isinstance(grads, list) else grads(list(theta))
        opt.step(theta, np.array(g, dtype=np.float64), lr)
        trajectory.append(theta.copy())
    return trajectory


def run_reference(name, options, theta0, lr, wd, grad_fn, steps=5):
    theta, state, trajectory = list(theta0), {}, []
    for t in range(1, steps + 1):
        theta = reference_step(name, options, theta, grad_fn(theta), state, t, lr, wd)
        trajectory.append(theta)
    return trajectory


# (name, options, weight decay, lr): every option of every optimizer is exercised somewhere.
CASES = [
    ("sgd", {}, 0.0, 0.1),
    ("sgd", {}, 0.05, 0.1),
    ("momentum", {}, 0.0, 0.05),
    ("momentum", {"momentum": 0.5, "dampening": 0.3}, 0.0, 0.05),
    ("momentum", {"momentum": 0.8}, 0.1, 0.05),
    ("nesterov", {}, 0.0, 0.05),
    ("nesterov", {"momentum": 0.6}, 0.1, 0.05),
    ("adagrad", {}, 0.0, 0.1),
    ("adagrad", {"lr_decay": 0.2}, 0.0, 0.1),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-3}, 0.05, 0.1),
    ("rmsprop", {}, 0.0, 0.01),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-4}, 0.05, 0.01),
    ("rmsprop", {"centered": True}, 0.0, 0.01),
    ("rmsprop", {"momentum": 0.7}, 0.0, 0.01),
    ("rmsprop", {"alpha": 0.8, "momentum": 0.5, "centered": True}, 0.1, 0.01),
    ("adam", {}, 0.0, 0.1),
    ("adam", {"betas": (0.8, 0.9), "eps": 1e-3}, 0.0, 0.1),
    ("adam", {}, 0.1, 0.1),
    ("adam", {"amsgrad": True}, 0.0, 0.3),
    ("adam", {"betas": (0.5, 0.6), "amsgrad": True}, 0.1, 0.3),
    ("adamw", {}, 0.0, 0.1),
    ("adamw", {}, 0.01, 0.1),
    ("adamw", {"betas": (0.8, 0.9)}, 0.5, 0.1),
    ("adamw", {"amsgrad": True}, 0.5, 0.3),
    ("adamw", {"betas": (0.9, 0.9), "amsgrad": True}, 0.5, 0.3),
]


def _case_id(case):
    name, options, wd, _ = case
    opts = ",".join(f"{k}={v}" for k, v in options.items())
    return f"{name}[{opts}]" + (f"-wd{wd}" if wd else "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_reference_on_quadratic(case):
    """Five steps on the quadratic: every iterate equals the scalar reference's."""
    name, options, wd, lr = case
    got = run_nnctl(name, options, THETA0, lr, wd, quadratic_grad)
    want = run_reference(name, options, THETA0, lr, wd, quadratic_grad)
    for t, (g, w) in enumerate(zip(got, want), start=1):
        np.testing.assert_allclose(g, w, **TOL, err_msg=f"step {t}")
    assert not np.allclose(got[-1], THETA0), "the optimizer did not move"


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_some_amsgrad_case_really_uses_the_running_max(name):
    """Sanity check of the test data: for some amsgrad case on the quadratic, v decreases at some
    coordinate within five steps, so amsgrad changes the trajectory (with the default beta2 = 0.999
    it does not within five steps, hence the cases with a small beta2)."""
    effective = []
    for case_name, options, wd, lr in CASES:
        if case_name == name and options.get("amsgrad"):
            plain = {k: v for k, v in options.items() if k != "amsgrad"}
            a = run_reference(name, options, THETA0, lr, wd, quadratic_grad)
            b = run_reference(name, plain, THETA0, lr, wd, quadratic_grad)
            effective.append(not np.allclose(a[-1], b[-1], rtol=1e-9))
    assert any(effective)


# ------------------------------------------------------------------------------------------
# Hand-worked cases: two steps on a 1- or 2-element vector with a given gradient sequence.
# Numbers are chosen so the square roots come out exact. Each entry:
#   (options, weight decay, lr, theta0, [g1, g2], [theta1, theta2])
# ------------------------------------------------------------------------------------------

HAND_CASES = {
    "sgd": [
        # wd = 0.5, lr = 0.1, theta0 = (1, -2)
        # t=1: g = (0.5, 1) + 0.5*(1, -2) = (1, 0);           theta1 = (1 - 0.1, -2 - 0) = (0.9, -2)
        # t=2: g = (-1, 2) + 0.5*(0.9, -2) = (-0.55, 1);      theta2 = (0.9 + 0.055, -2 - 0.1) = (0.955, -2.1)
        ({}, 0.5, 0.1, [1.0, -2.0], [[0.5, 1.0], [-1.0, 2.0]], [[0.9, -2.0], [0.955, -2.1]]),
    ],
    "momentum": [
        # mu = 0.9, dampening = 0.5, lr = 0.1, theta0 = (1, 0)
        # t=1: b = g = (2, -1)   (no dampening on the first step);  theta1 = (1 - 0.2, 0 + 0.1) = (0.8, 0.1)
        # t=2: b = 0.9*(2, -1) + 0.5*(1, 4) = (1.8 + 0.5, -0.9 + 2) = (2.3, 1.1)
        #      theta2 = (0.8 - 0.23, 0.1 - 0.11) = (0.57, -0.01)
        ({"momentum": 0.9, "dampening": 0.5}, 0.0, 0.1, [1.0, 0.0], [[2.0, -1.0], [1.0, 4.0]],
         [[0.8, 0.1], [0.57, -0.01]]),
        # default mu = 0.9, no dampening, lr = 0.1, theta0 = (1)
        # t=1: b = 2;                       theta1 = 1 - 0.2 = 0.8
        # t=2: b = 0.9*2 + 1 = 2.8;         theta2 = 0.8 - 0.28 = 0.52
        ({}, 0.0, 0.1, [1.0], [[2.0], [1.0]], [[0.8], [0.52]]),
    ],
    "nesterov": [
        # mu = 0.5, wd = 1, lr = 0.1, theta0 = 1
        # t=1: g = 2 + 1*1 = 3;  b = 3;  d = g + mu b = 3 + 1.5 = 4.5;        theta1 = 1 - 0.45 = 0.55
        # t=2: g = 1 + 0.55 = 1.55;  b = 0.5*3 + 1.55 = 3.05;
        #      d = 1.55 + 0.5*3.05 = 3.075;                                  theta2 = 0.55 - 0.3075 = 0.2425
        ({"momentum": 0.5}, 1.0, 0.1, [1.0], [[2.0], [1.0]], [[0.55], [0.2425]]),
    ],
    "adagrad": [
        # lr_decay = 1, eps = 1, lr = 0.6, theta0 = (1, -1); lr~ = 0.6 at t=1, 0.6 / 2 = 0.3 at t=2
        # t=1: g = (3, -3);  sum = (9, 9);    theta1 = (1, -1) - 0.6*(3, -3)/(3 + 1) = (0.55, -0.55)
        # t=2: g = (4, -4);  sum = (25, 25);  theta2 = (0.55, -0.55) - 0.3*(4, -4)/(5 + 1) = (0.35, -0.35)
        ({"lr_decay": 1.0, "eps": 1.0}, 0.0, 0.6, [1.0, -1.0], [[3.0, -3.0], [4.0, -4.0]],
         [[0.55, -0.55], [0.35, -0.35]]),
        # initial_accumulator_value = 7, lr_decay = 0.5, eps = 1, lr = 1, theta0 = 2
        # t=1: g = 3;  sum = 7 + 9 = 16;   lr~ = 1;                theta1 = 2 - 3/(4 + 1) = 1.4
        # t=2: g = 3;  sum = 16 + 9 = 25;  lr~ = 1/1.5 = 2/3;      theta2 = 1.4 - (2/3)*3/(5 + 1) = 1.4 - 1/3
        ({"initial_accumulator_value": 7.0, "lr_decay": 0.5, "eps": 1.0}, 0.0, 1.0, [2.0], [[3.0], [3.0]],
         [[1.4], [1.4 - 1 / 3]]),
        # wd = 2, eps = 1, lr = 0.5, theta0 = 1
        # t=1: g = 1 + 2*1 = 3;        sum = 9;   theta1 = 1 - 0.5*3/(3 + 1) = 0.625
        # t=2: g = 2.75 + 2*0.625 = 4; sum = 25;  theta2 = 0.625 - 0.5*4/(5 + 1) = 0.625 - 1/3
        ({"eps": 1.0}, 2.0, 0.5, [1.0], [[1.0], [2.75]], [[0.625], [0.625 - 1 / 3]]),
    ],
    "rmsprop": [
        # alpha = 0.75, eps = 2, lr = 0.1, theta0 = 1
        # t=1: v = 0.25*4^2 = 4;             theta1 = 1 - 0.1*4/(2 + 2) = 0.9
        # t=2: v = 0.75*4 + 0.25*2^2 = 4;    theta2 = 0.9 - 0.1*2/(2 + 2) = 0.85
        ({"alpha": 0.75, "eps": 2.0}, 0.0, 0.1, [1.0], [[4.0], [2.0]], [[0.9], [0.85]]),
        # centered, momentum 0.5, alpha = 0.5, eps = 0.25, lr = 0.1, theta0 = 1
        # t=1: g = 2:   v = 0.5*4 = 2;  g_ave = 0.5*2 = 1;  v~ = 2 - 1 = 1;  sqrt = 1
        #      b = 2/(1 + 0.25) = 1.6;                                       theta1 = 1 - 0.16 = 0.84
        # t=2: g = 1.5: v = 0.5*2 + 0.5*2.25 = 2.125;  g_ave = 0.5*1 + 0.5*1.5 = 1.25
        #      v~ = 2.125 - 1.5625 = 0.5625;  sqrt = 0.75
        #      b = 0.5*1.6 + 1.5/(0.75 + 0.25) = 2.3;                        theta2 = 0.84 - 0.23 = 0.61
        ({"alpha": 0.5, "eps": 0.25, "momentum": 0.5, "centered": True}, 0.0, 0.1, [1.0], [[2.0], [1.5]],
         [[0.84], [0.61]]),
    ],
    "adam": [
        # betas = (0.5, 0.5), eps = 1, lr = 0.6, theta0 = 1
        # t=1: g = 5:  m = 2.5, v = 12.5;  m^ = 2.5/0.5 = 5, v^ = 12.5/0.5 = 25
        #      theta1 = 1 - 0.6*5/(5 + 1) = 0.5
        # t=2: g = -1: m = 1.25 - 0.5 = 0.75, v = 6.25 + 0.5 = 6.75
        #      m^ = 0.75/0.75 = 1, v^ = 6.75/0.75 = 9
        #      theta2 = 0.5 - 0.6*1/(3 + 1) = 0.35
        ({"betas": (0.5, 0.5), "eps": 1.0}, 0.0, 0.6, [1.0], [[5.0], [-1.0]], [[0.5], [0.35]]),
        # amsgrad, betas = (0.5, 0.5625 = 9/16), eps = 0.8, lr = 0.6, theta0 = 1
        # t=1: g = 4:  m = 2, v = (7/16)*16 = 7, v_max = 7;  m^ = 4, v^ = 7/(7/16) = 16
        #      theta1 = 1 - 0.6*4/(4 + 0.8) = 0.5
        # t=2: g = 1:  m = 1 + 0.5 = 1.5, m^ = 1.5/0.75 = 2
        #      v = (9/16)*7 + (7/16)*1 = 4.375 < v_max = 7, so v_max stays 7
        #      1 - b2^2 = 1 - 81/256 = 175/256;  v^ = 7*256/175 = 10.24;  sqrt = 3.2
        #      theta2 = 0.5 - 0.6*2/(3.2 + 0.8) = 0.2
        #      (without amsgrad: v^ = 4.375*256/175 = 6.4; with torch's old max over v^: sqrt(16) = 4)
        ({"betas": (0.5, 0.5625), "eps": 0.8, "amsgrad": True}, 0.0, 0.6, [1.0], [[4.0], [1.0]],
         [[0.5], [0.2]]),
    ],
    "adamw": [
        # decoupled wd = 0.5, lr = 0.6 -> theta is first scaled by 1 - 0.6*0.5 = 0.7;
        # the Adam part is the first "adam" case above (g = 5 then -1: steps 0.5 and 0.15)
        # t=1: theta1 = 0.7*1 - 0.5 = 0.2
        # t=2: theta2 = 0.7*0.2 - 0.15 = -0.01
        ({"betas": (0.5, 0.5), "eps": 1.0}, 0.5, 0.6, [1.0], [[5.0], [-1.0]], [[0.2], [-0.01]]),
    ],
}


HAND_PARAMS = [pytest.param(name, *case, id=f"{name}-{i}")
               for name, cases in HAND_CASES.items() for i, case in enumerate(cases)]


@pytest.mark.parametrize("name,options,wd,lr,theta0,grads,expected", HAND_PARAMS)
def test_hand_worked_two_steps(name, options, wd, lr, theta0, grads, expected):
    """Two steps equal the numbers worked out by hand in the HAND_CASES comments."""
    got = run_nnctl(name, options, theta0, lr, wd, grads)
    np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize("name,options,wd,lr,theta0,grads,expected", HAND_PARAMS)
def test_reference_agrees_with_hand_worked_numbers(name, options, wd, lr, theta0, grads, expected):
    """The reference transcription itself reproduces the hand-worked numbers (checks the checker)."""
    state, theta, got = {}, list(theta0), []
    for t, g in enumerate(grads, start=1):
        theta = reference_step(name, options, theta, list(g), state, t, lr, wd)
        got.append(theta)
    np.testing.assert_allclose(got, expected, **TOL)


def test_adam_and_adamw_weight_decay_differ():
    """Coupled (adam) and decoupled (adamw) weight decay give different steps from the same start."""
    options, theta0, lr, wd, grads = {"betas": (0.5, 0.5), "eps": 1.0}, [1.0], 0.6, 0.5, [[5.0], [-1.0]]
    adam = run_nnctl("adam", options, theta0, lr, wd, grads)
    adamw = run_nnctl("adamw", options, theta0, lr, wd, grads)
    assert not np.allclose(adam, adamw)
    # adam, coupled: g1 = 5 + 0.5*1 = 5.5; first step lr * g/(|g| + eps) = 0.6*5.5/6.5
    assert adam[0][0] == pytest.approx(1 - 0.6 * 5.5 / 6.5, rel=1e-12)


# ------------------------------------------------------------------------------------------
# Coverage: a new optimizer must get a reference, a quadratic case, a hand case and defaults.
# ------------------------------------------------------------------------------------------

# torch.optim defaults (torch 2.x signatures); nnctl's momentum/nesterov default momentum is 0.9
# (torch's SGD default momentum is 0, which would make them plain SGD).
TORCH_OPTION_DEFAULTS = {
    "sgd": {},
    "momentum": {"momentum": 0.9, "dampening": 0.0},
    "nesterov": {"momentum": 0.9},
    "adagrad": {"lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    "rmsprop": {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False},
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False},
    "adamw": {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False},
}
TORCH_DEFAULT_LR = {"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-2,
                    "adam": 1e-3, "adamw": 1e-3}
TORCH_DEFAULT_WEIGHT_DECAY = {"sgd": 0.0, "momentum": 0.0, "nesterov": 0.0, "adagrad": 0.0, "rmsprop": 0.0,
                              "adam": 0.0, "adamw": 1e-2}

COVERED = {
    "reference": REFERENCE_NAMES,
    "quadratic cases": {case[0] for case in CASES},
    "hand cases": set(HAND_CASES),
    "option defaults": set(TORCH_OPTION_DEFAULTS),
    "default lr": set(TORCH_DEFAULT_LR),
    "default weight decay": set(TORCH_DEFAULT_WEIGHT_DECAY),
}


@pytest.mark.parametrize("what", COVERED)
def test_every_registered_optimizer_is_covered(what):
    """The optimizers covered by each kind of test are exactly the registered ones."""
    assert COVERED[what] == set(OPTIMIZERS.names()), f"{what}: a new or removed optimizer needs a test update"


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_option_defaults_match_torch(name):
    """Constructor defaults equal torch.optim's (momentum 0.9 for the momentum entries)."""
    assert OPTIMIZERS.option_defaults(name) == TORCH_OPTION_DEFAULTS[name]


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_default_lr_and_weight_decay_match_torch(name):
    """`lr: auto` and the default weight decay are torch's defaults for that optimizer."""
    assert OPTIMIZERS.entry(name).default_lr == TORCH_DEFAULT_LR[name]
    assert OPTIMIZERS.entry(name).default_weight_decay == TORCH_DEFAULT_WEIGHT_DECAY[name]


# ------------------------------------------------------------------------------------------
# The in-place contract and checkpoints.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_step_updates_theta_in_place(name):
    """`step` changes the array it is given (views of it see the update); it never rebinds it."""
    theta = np.array(THETA0)
    view = theta[1:]
    before = view.copy()
    opt = OPTIMIZERS.get(name).bind(theta, 0.01)
    opt.step(theta, np.array(quadratic_grad(list(theta))), 0.1)
    assert not np.array_equal(view, before)
    np.testing.assert_array_equal(view, theta[1:])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_dict_round_trip_resumes_the_same_trajectory(case):
    """Saving the state after 2 steps and loading it into a fresh optimizer continues identically."""
    name, options, wd, lr = case
    theta = np.array(THETA0)
    opt = OPTIMIZERS.get(name, options).bind(theta, wd)
    for _ in range(2):
        opt.step(theta, np.array(quadratic_grad(list(theta))), lr)
    saved_theta, saved_state = theta.copy(), opt.state_dict()
    for _ in range(3):
        opt.step(theta, np.array(quadratic_grad(list(theta))), lr)

    resumed_theta = saved_theta.copy()
    resumed = OPTIMIZERS.get(name, options).bind(resumed_theta, wd)
    resumed.load_state_dict(saved_state)
    for _ in range(3):
        resumed.step(resumed_theta, np.array(quadratic_grad(list(resumed_theta))), lr)
    np.testing.assert_array_equal(resumed_theta, theta)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ("adam", "adamw")], ids=_case_id)
def test_adam_scaled_state_is_torchs_moments(case):
    """The state keeps m / (1 - b1) and torch's own v (and v_max): rescaled, m is the reference's m."""
    name, options, wd, lr = case
    theta = np.array(THETA0)
    opt = OPTIMIZERS.get(name, options).bind(theta, wd)
    ref_state, ref_theta = {}, list(THETA0)
    for t in range(1, 4):
        opt.step(theta, np.array(quadratic_grad(list(theta))), lr)
        ref_theta = reference_step(name, options, ref_theta, quadratic_grad(ref_theta), ref_state, t, lr, wd)
    np.testing.assert_allclose(opt.exp_avg(), ref_state["m"], **TOL)
    np.testing.assert_allclose(opt.state["exp_avg_sq"], ref_state["v"], **TOL)
    if options.get("amsgrad"):
        np.testing.assert_allclose(opt.state["max_exp_avg_sq"], ref_state["v_max"], **TOL)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_in_float32_keeps_moving_under_huge_gradients(name):
    """Gradients of 1e19 square to 1e38, still finite in float32: each step moves about lr, as in
    torch. (A v kept scaled by 1 / (1 - b2) overflowed there and froze the parameter silently.)"""
    theta = np.zeros(3, dtype=np.float32)
    opt = OPTIMIZERS.get(name, {}).bind(theta, 0.0)
    for _ in range(10):
        opt.step(theta, np.full(3, 1e19, dtype=np.float32), 0.01)
    assert np.isfinite(opt.state["exp_avg_sq"]).all()
    np.testing.assert_allclose(theta, -0.1, rtol=1e-4)


# ------------------------------------------------------------------------------------------
# Oracle: torch.optim itself (skipped when torch is not installed).
# ------------------------------------------------------------------------------------------


def _torch_optimizer(torch, name, options, param, lr, wd):
    """The torch.optim object nnctl's `name` with `options` stands for (defaults filled from nnctl)."""
    o = {**OPTIMIZERS.option_defaults(name), **options}
    if name == "sgd":
        return torch.optim.SGD([param], lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD([param], lr=lr, momentum=o["momentum"], dampening=o["dampening"], weight_decay=wd)
    if name == "nesterov":
        return torch.optim.SGD([param], lr=lr, momentum=o["momentum"], nesterov=True, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad([param], lr=lr, weight_decay=wd, **o)
    if name == "rmsprop":
        return torch.optim.RMSprop([param], lr=lr, weight_decay=wd, **o)
    if name == "adam":
        return torch.optim.Adam([param], lr=lr, weight_decay=wd, **o)
    if name == "adamw":
        return torch.optim.AdamW([param], lr=lr, weight_decay=wd, **o)
    raise AssertionError(f"no torch counterpart for optimizer {name!r}: add one")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_torch_optim(case):
    """Five steps on the same (seeded, sign-changing) gradient sequence equal torch.optim's iterates."""
    torch = pytest.importorskip("torch")
    name, options, wd, lr = case
    grads = np.random.default_rng(7).normal(size=(5, 4)).tolist()
    theta0 = [0.5, -1.0, 2.0, 0.0]
    got = run_nnctl(name, options, theta0, lr, wd, grads)

    param = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = _torch_optimizer(torch, name, options, param, lr, wd)
    for t, g in enumerate(grads):
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        np.testing.assert_allclose(got[t], param.detach().numpy(), **TOL, err_msg=f"step {t + 1}")


def test_torch_defaults_are_the_ones_hard_coded_here():
    """The TORCH_* tables above equal the installed torch's constructor signatures."""
    torch = pytest.importorskip("torch")
    import inspect

    torch_class = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
                   "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
                   "adamw": torch.optim.AdamW}
    assert set(torch_class) == set(OPTIMIZERS.names())
    for name, cls in torch_class.items():
        sig = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
        assert sig["lr"] == TORCH_DEFAULT_LR[name], name
        assert sig["weight_decay"] == TORCH_DEFAULT_WEIGHT_DECAY[name], name
        for key, value in TORCH_OPTION_DEFAULTS[name].items():
            if name in ("momentum", "nesterov") and key == "momentum":
                continue  # nnctl's deliberate 0.9 (torch: 0)
            assert sig[key] == value, (name, key)
