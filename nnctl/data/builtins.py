"""Built-in datasets: scikit-learn's offline toy data plus nnctl's own synthetic ones.

The option tables here (names, defaults, what they mean) are the single source for config
validation, `nnctl datasets`, `nnctl schema` and the README. Defaults follow scikit-learn's
signatures except `random_state`, which defaults to 0 so data never changes between runs; the
run's `seed` drives the split, init, shuffling and dropout, not the data itself.
scikit-learn is imported only inside the loaders (it costs about a second at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Builtin:
    """A built-in dataset: how to make it, what it is, and the options it takes."""

    name: str
    task: str  # classification | regression
    summary: str
    options: dict[str, Any]
    make: Callable[..., tuple[np.ndarray, np.ndarray, list[str] | None, list[str] | None]]
    option_help: dict[str, str] = field(default_factory=dict)
    shape: str = ""  # for `nnctl datasets`, with default options
    uses_sklearn: bool = True  # made by scikit-learn (cached on disk), or by nnctl itself


BUILTINS: dict[str, Builtin] = {}


def builtin(name, task, summary, options, shape, option_help=None, uses_sklearn=True):
    """Decorator registering a dataset maker returning (X, y, feature_names, class_names)."""

    def add(fn):
        BUILTINS[name] = Builtin(name, task, summary, options, fn, option_help or {}, shape, uses_sklearn)
        return fn

    return add


def _names(d: int) -> list[str]:
    return [f"x{i}" for i in range(d)]


# --------------------------------------------------------------------------- scikit-learn generators
@builtin("moons", "classification", "two interleaving half circles (2-D, 2 classes)",
         {"n_samples": 100, "noise": None, "shuffle": True, "random_state": 0}, "100 x 2, 2 classes",
         {"noise": "std of Gaussian noise added to the points"})
def _moons(**opts):
    from sklearn.datasets import make_moons

    X, y = make_moons(**opts)
    return X, y, _names(2), None


@builtin("circles", "classification", "a small circle inside a large one (2-D, 2 classes)",
         {"n_samples": 100, "noise": None, "factor": 0.8, "shuffle": True, "random_state": 0},
         "100 x 2, 2 classes", {"factor": "inner radius / outer radius, in (0, 1)"})
def _circles(**opts):
    from sklearn.datasets import make_circles

    X, y = make_circles(**opts)
    return X, y, _names(2), None


@builtin("blobs", "classification", "isotropic Gaussian blobs",
         {"n_samples": 100, "n_features": 2, "centers": None, "cluster_std": 1.0,
          "center_box": [-10.0, 10.0], "shuffle": True, "random_state": 0},
         "100 x 2, 3 classes", {"centers": "number of blobs (default 3) or a list of centres"})
def _blobs(**opts):
    from sklearn.datasets import make_blobs

    if isinstance(opts.get("center_box"), list):
        opts["center_box"] = tuple(opts["center_box"])
    X, y = make_blobs(**opts)
    return X, y, _names(X.shape[1]), None


@builtin("classification", "classification", "a random n-class problem (make_classification)",
         {"n_samples": 100, "n_features": 20, "n_informative": 2, "n_redundant": 2, "n_repeated": 0,
          "n_classes": 2, "n_clusters_per_class": 2, "weights": None, "flip_y": 0.01,
          "class_sep": 1.0, "hypercube": True, "shift": 0.0, "scale": 1.0, "shuffle": True,
          "random_state": 0},
         "100 x 20, 2 classes")
def _classification(**opts):
    from sklearn.datasets import make_classification

    X, y = make_classification(**opts)
    return X, y, _names(X.shape[1]), None


@builtin("regression", "regression", "a random linear regression problem (make_regression)",
         {"n_samples": 100, "n_features": 100, "n_informative": 10, "n_targets": 1, "bias": 0.0,
          "effective_rank": None, "tail_strength": 0.5, "noise": 0.0, "shuffle": True,
          "random_state": 0},
         "100 x 100, 1 target")
def _regression(**opts):
    from sklearn.datasets import make_regression

    X, y = make_regression(**opts)
    return X, y, _names(X.shape[1]), None


# --------------------------------------------------------------------------- scikit-learn's bundled data
def _bundled(loader_name: str, **opts):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)(**opts)
    names = [str(n) for n in bunch.feature_names] if getattr(bunch, "feature_names", None) is not None else None
    classes = [str(c) for c in bunch.target_names] if "target_names" in bunch else None
    return bunch.data, bunch.target, names or _names(bunch.data.shape[1]), classes


@builtin("iris", "classification", "Fisher's iris flowers", {}, "150 x 4, 3 classes")
def _iris():
    return _bundled("load_iris")


@builtin("wine", "classification", "wine cultivars from chemical analysis", {}, "178 x 13, 3 classes")
def _wine():
    return _bundled("load_wine")


@builtin("breast_cancer", "classification", "Wisconsin breast cancer diagnosis", {}, "569 x 30, 2 classes")
def _breast_cancer():
    return _bundled("load_breast_cancer")


@builtin("digits", "classification", "8x8 images of handwritten digits", {"n_class": 10},
         "1797 x 64, 10 classes", {"n_class": "number of digit classes to keep (1..10)"})
def _digits(n_class=10):
    return _bundled("load_digits", n_class=n_class)


@builtin("diabetes", "regression", "diabetes progression after one year", {"scaled": True},
         "442 x 10, 1 target", {"scaled": "features mean-centred and scaled (scikit-learn's default)"})
def _diabetes(scaled=True):
    return _bundled("load_diabetes", scaled=scaled)


# --------------------------------------------------------------------------- nnctl's synthetic data
@builtin("xor", "classification",
         "points in [-1, 1]^2, class = sign(x0 * x1): no straight line separates it",
         {"n_samples": 400, "noise": 0.1, "random_state": 0}, "400 x 2, 2 classes",
         {"noise": "std of Gaussian noise added to the points after labelling"}, uses_sklearn=False)
def _xor(n_samples=400, noise=0.1, random_state=0):
    _check_count(n_samples)
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    X += rng.normal(0.0, _nonneg(noise, "noise"), size=X.shape)
    return X, y, _names(2), None


@builtin("spiral", "classification", "interleaved spiral arms, one class per arm (CS231n's spiral)",
         {"n_samples": 600, "n_classes": 3, "noise": 0.2, "turns": 1.0, "random_state": 0},
         "600 x 2, 3 classes",
         {"n_samples": "total points, split evenly across arms", "turns": "revolutions of each arm"},
         uses_sklearn=False)
def _spiral(n_samples=600, n_classes=3, noise=0.2, turns=1.0, random_state=0):
    _check_count(n_samples)
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
    rng = np.random.default_rng(random_state)
    y = np.arange(n_samples) % n_classes
    r = np.empty(n_samples)
    for k in range(n_classes):
        idx = np.flatnonzero(y == k)
        r[idx] = np.linspace(0.0, 1.0, len(idx))
    theta = y * (2 * np.pi / n_classes) + r * (2 * np.pi * turns) + rng.normal(0.0, _nonneg(noise, "noise"), n_samples)
    X = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    return X, y.astype(np.int64), _names(2), None


@builtin("sine", "regression", "y = sin(x) on [-pi * periods, pi * periods], for universal approximation",
         {"n_samples": 500, "noise": 0.1, "periods": 1.0, "random_state": 0}, "500 x 1, 1 target",
         {"noise": "std of Gaussian noise added to y", "periods": "how many periods of sin to fit"}, uses_sklearn=False)
def _sine(n_samples=500, noise=0.1, periods=1.0, random_state=0):
    _check_count(n_samples)
    rng = np.random.default_rng(random_state)
    x = rng.uniform(-np.pi * periods, np.pi * periods, size=n_samples)
    y = np.sin(x) + rng.normal(0.0, _nonneg(noise, "noise"), n_samples)
    return x[:, None], y, ["x"], None


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_samples must be an integer >= 1; got {n!r}")


def _nonneg(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ValueError(f"{name} must be a number >= 0; got {v!r}")
    return float(v)
