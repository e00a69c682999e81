"""Every weight initializer in INITS draws from the distribution torch.nn.init defines.

nnctl's W has shape (fan_in, fan_out) (rows are samples: Z = A_prev @ W + b), so fan_in is the
number of ROWS here (torch's Linear.weight is (fan_out, fan_in), the transpose).

Expected distributions (torch.nn.init conventions):
    zeros           all 0
    normal          N(0, init_std^2)
    xavier_uniform  U(-a, a),  a = sqrt(6 / (fan_in + fan_out))       (gain 1)
    xavier_normal   N(0, 2 / (fan_in + fan_out))                       (gain 1)
    he_uniform      U(-a, a),  a = sqrt(6 / fan_in)   (kaiming_uniform_: a=0, fan_in, gain sqrt(2))
    he_normal       N(0, 2 / fan_in)                  (kaiming_normal_ with the same defaults)
    lecun_normal    N(0, 1 / fan_in)

Statistical checks use 400 x 300 = 120,000 draws: the relative standard error of a variance
estimate is then about 0.4%, so the 5% tolerance is loose but still catches fan_in/fan_out mix-ups
(a 33% difference at this shape).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.nn.init import INITS

# name -> (family, std as a function of (fan_in, fan_out, init_std))
# For uniform families the std is bound / sqrt(3).
EXPECTED = {
    "zeros": ("zeros", lambda fi, fo, s: 0.0),
    "normal": ("normal", lambda fi, fo, s: s),
    "xavier_uniform": ("uniform", lambda fi, fo, s: math.sqrt(6.0 / (fi + fo)) / math.sqrt(3.0)),
    "xavier_normal": ("normal", lambda fi, fo, s: math.sqrt(2.0 / (fi + fo))),
    "he_uniform": ("uniform", lambda fi, fo, s: math.sqrt(6.0 / fi) / math.sqrt(3.0)),
    "he_normal": ("normal", lambda fi, fo, s: math.sqrt(2.0 / fi)),
    "lecun_normal": ("normal", lambda fi, fo, s: math.sqrt(1.0 / fi)),
}
UNIFORM_BOUND = {
    "xavier_uniform": lambda fi, fo: math.sqrt(6.0 / (fi + fo)),
    "he_uniform": lambda fi, fo: math.sqrt(6.0 / fi),
}

NAMES = INITS.names()
RANDOM_NAMES = [n for n in NAMES if EXPECTED.get(n, ("?",))[0] != "zeros"]
UNIFORM_NAMES = [n for n in NAMES if EXPECTED.get(n, ("?",))[0] == "uniform"]
NORMAL_NAMES = [n for n in NAMES if EXPECTED.get(n, ("?",))[0] == "normal"]
SHAPES = [(400, 300), (150, 800)]  # fan_in > fan_out and fan_in < fan_out
INIT_STD = 0.05


def draw(name, fan_in, fan_out, seed=0, init_std=INIT_STD):
    return INITS.entry(name)(np.random.default_rng(seed), fan_in, fan_out, init_std)


def test_every_registered_init_is_covered():
    """The table of expected distributions names exactly the registered initializers."""
    assert set(EXPECTED) == set(INITS.names()), "a new or removed initializer needs an EXPECTED entry"
    assert set(UNIFORM_BOUND) == set(UNIFORM_NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fan_in,fan_out", [(3, 5), (7, 1), (1, 4)])
def test_shape_and_dtype(name, fan_in, fan_out):
    """W is a float64 array of shape (fan_in, fan_out) with finite entries."""
    W = draw(name, fan_in, fan_out)
    assert isinstance(W, np.ndarray)
    assert W.shape == (fan_in, fan_out)
    assert W.dtype == np.float64
    assert np.all(np.isfinite(W))


def test_zeros_is_all_zeros():
    """`zeros` gives exactly 0 everywhere, whatever init_std says."""
    np.testing.assert_array_equal(draw("zeros", 4, 3, init_std=1.0), np.zeros((4, 3)))


@pytest.mark.parametrize("name", RANDOM_NAMES)
@pytest.mark.parametrize("fan_in,fan_out", SHAPES)
def test_variance_matches_formula(name, fan_in, fan_out):
    """Empirical variance within 5% of the formula's (fan_in = rows, fan_out = columns)."""
    W = draw(name, fan_in, fan_out)
    _, std = EXPECTED[name]
    expected_var = std(fan_in, fan_out, INIT_STD) ** 2
    assert W.var() == pytest.approx(expected_var, rel=0.05)


@pytest.mark.parametrize("name", RANDOM_NAMES)
@pytest.mark.parametrize("fan_in,fan_out", SHAPES)
def test_mean_is_zero(name, fan_in, fan_out):
    """Empirical mean within 5 standard errors of 0."""
    W = draw(name, fan_in, fan_out)
    _, std = EXPECTED[name]
    sigma = std(fan_in, fan_out, INIT_STD)
    assert abs(W.mean()) < 5 * sigma / math.sqrt(W.size)


@pytest.mark.parametrize("name", UNIFORM_NAMES)
@pytest.mark.parametrize("fan_in,fan_out", SHAPES)
def test_uniform_within_bound_and_fills_it(name, fan_in, fan_out):
    """U(-a, a): every entry within the bound, the extremes close to it, about half below a/2."""
    W = draw(name, fan_in, fan_out)
    a = UNIFORM_BOUND[name](fan_in, fan_out)
    assert np.all(np.abs(W) <= a)
    assert W.max() > 0.99 * a and W.min() < -0.99 * a
    assert np.mean(np.abs(W) < a / 2) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("name", NORMAL_NAMES)
def test_normal_has_gaussian_shape(name):
    """Gaussian, not uniform: ~68.3% of draws within one std, and some beyond 3 std."""
    fan_in, fan_out = SHAPES[0]
    W = draw(name, fan_in, fan_out)
    sigma = EXPECTED[name][1](fan_in, fan_out, INIT_STD)
    assert np.mean(np.abs(W) < sigma) == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.01)
    assert np.mean(np.abs(W) > 3 * sigma) > 0.001  # expected 0.27%; uniform with that std: 0


def test_normal_uses_init_std_regardless_of_size():
    """`normal` takes its std from init_std, not from the layer's fans."""
    for std in (0.01, 0.5):
        for fan_in, fan_out in SHAPES:
            assert draw("normal", fan_in, fan_out, init_std=std).std() == pytest.approx(std, rel=0.025)


@pytest.mark.parametrize("name", [n for n in RANDOM_NAMES if n != "normal"])
def test_fan_based_inits_ignore_init_std(name):
    """Only `normal` reads init_std: the others give identical draws for any init_std."""
    np.testing.assert_array_equal(draw(name, 20, 10, init_std=0.01), draw(name, 20, 10, init_std=3.0))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_seed(name):
    """Same seed -> identical array; for the random ones a different seed -> a different array."""
    np.testing.assert_array_equal(draw(name, 30, 20, seed=123), draw(name, 30, 20, seed=123))
    if name in RANDOM_NAMES:
        assert not np.array_equal(draw(name, 30, 20, seed=123), draw(name, 30, 20, seed=124))


# torch counterpart of each init, applied to a (fan_out, fan_in) tensor as for nn.Linear.weight
TORCH_INITS = {
    "zeros": lambda init, w: init.zeros_(w),
    "normal": lambda init, w: init.normal_(w, 0.0, INIT_STD),
    "xavier_uniform": lambda init, w: init.xavier_uniform_(w),
    "xavier_normal": lambda init, w: init.xavier_normal_(w),
    "he_uniform": lambda init, w: init.kaiming_uniform_(w),
    "he_normal": lambda init, w: init.kaiming_normal_(w),
    "lecun_normal": lambda init, w: init.kaiming_normal_(w, nonlinearity="linear"),  # gain 1: 1/fan_in
}


@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_nn_init(name):
    """Oracle (skipped without torch): the torch.nn.init function on the transposed shape has the
    same std (within 5%) and, for the uniform ones, the same range."""
    torch = pytest.importorskip("torch")
    assert set(TORCH_INITS) == set(NAMES)
    fan_in, fan_out = SHAPES[0]
    torch.manual_seed(0)
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)
    TORCH_INITS[name](torch.nn.init, w)
    ours = draw(name, fan_in, fan_out)
    theirs = w.numpy().T
    assert ours.shape == theirs.shape
    if name == "zeros":
        np.testing.assert_array_equal(ours, theirs)
        return
    assert ours.std() == pytest.approx(theirs.std(), rel=0.05)
    if name in UNIFORM_NAMES:
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.01)
