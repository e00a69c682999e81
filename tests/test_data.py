"""Data: CSV parsing, task detection, the split and preprocessing fitted on train only."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.data import fit_preprocessor, load_csv, load_dataset, split_indices
from nnctl.datasets import BUILTINS
from nnctl.errors import DataError


def test_split_sizes_are_disjoint_and_stratified():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    rng = np.random.default_rng(0)
    train, val, test = split_indices(100, y, 0.2, 0.2, True, rng)
    assert len(val) == 20 and len(test) == 20 and len(train) == 60
    assert len(np.unique(np.concatenate([train, val, test]))) == 100
    for part, n in ((val, 20), (test, 20)):
        assert np.bincount(y[part], minlength=3).tolist() == [n * 6 // 10, n * 3 // 10, n // 10]


def test_split_is_deterministic_and_seed_dependent():
    a = split_indices(50, None, 0.2, 0.2, False, np.random.default_rng(1))
    b = split_indices(50, None, 0.2, 0.2, False, np.random.default_rng(1))
    c = split_indices(50, None, 0.2, 0.2, False, np.random.default_rng(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_too_few_rows():
    with pytest.raises(DataError, match="too few for data.split"):
        split_indices(3, None, 0.2, 0.2, False, np.random.default_rng(0), "tiny.csv")


@pytest.mark.parametrize("method", ["none", "center", "standardize", "minmax", "pca", "whiten"])
def test_preprocessing_is_fitted_on_the_given_rows_only(method):
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(200, 3)) * [1.0, 5.0, 0.1] + [3.0, -2.0, 0.0]
    X_other = rng.normal(size=(50, 3)) * 100
    pre = fit_preprocessor(method, X_train, None)
    T = pre.transform(X_train)
    if method in ("center", "standardize", "pca", "whiten"):
        np.testing.assert_allclose(T.mean(axis=0), 0, atol=1e-12)
    if method == "standardize":
        np.testing.assert_allclose(T.std(axis=0), 1, atol=1e-12)
    if method == "minmax":
        np.testing.assert_allclose(T.min(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(T.max(axis=0), 1, atol=1e-12)
    if method == "whiten":
        np.testing.assert_allclose(np.cov(T, rowvar=False), np.eye(3), atol=1e-10)
    # the transform of other rows uses the training statistics, not their own
    refit = fit_preprocessor(method, np.vstack([X_train, X_other]), None)
    if method != "none":
        assert not np.allclose(pre.transform(X_other), refit.transform(X_other))


def test_pca_components_count_and_fraction():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) * [10, 5, 1, 0.1, 0.01]
    assert fit_preprocessor("pca", X, 2).n_outputs == 2
    pre = fit_preprocessor("pca", X, 0.95)
    assert pre.n_outputs == 2 and pre.explained_variance_ratio.sum() >= 0.95


def write(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return p


def test_csv_numeric_labels_sort_numerically_and_quotes(tmp_path):
    p = write(tmp_path, 'x,"name, with comma",y\n1,a,10\n2,b,2\n3,a,10\n4,"b",2\n5,a,1\n')
    ds = load_dataset({"source": str(p), "target": "y", "features": None, "task": "auto"}, tmp_path)
    assert ds.task == "classification" and ds.class_names == ["1", "2", "10"]
    assert ds.y.tolist() == [2, 1, 2, 1, 0]
    assert ds.feature_names == ["x", "name, with comma=a", "name, with comma=b"]


def test_csv_float_target_is_regression(tmp_path):
    p = write(tmp_path, "x,y\n" + "".join(f"{i},{i * 0.5 + 0.25}\n" for i in range(10)))
    ds = load_dataset({"source": str(p), "target": None, "features": None, "task": "auto"}, tmp_path)
    assert ds.task == "regression" and ds.y.dtype == np.float64


def test_csv_header_only(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        load_csv(write(tmp_path, "a,b\n"), None, None, "auto")


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_dataset_loads_with_defaults(name):
    ds = load_dataset({"source": f"sklearn:{name}", "options": {}, "task": "auto"}, None)
    assert ds.X.ndim == 2 and len(ds.X) == len(ds.y) and np.isfinite(ds.X).all()
    assert ds.task == BUILTINS[name].task
    again = load_dataset({"source": f"sklearn:{name}", "options": {}, "task": "auto"}, None)
    assert again.fingerprint == ds.fingerprint  # random_state 0: the data never changes


def test_sklearn_datasets_are_cached_on_disk(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("NNCTL_CACHE_DIR", str(tmp_path))
    spec = {"source": "sklearn:moons", "options": {"n_samples": 50, "noise": 0.1}, "task": "auto"}
    first = load_dataset(spec, None)
    assert len(list((tmp_path / "datasets").glob("moons-*.npz"))) == 1
    again = load_dataset(spec, None)
    assert again.fingerprint == first.fingerprint and np.array_equal(again.X, first.X)
    code = ("import sys; from nnctl.data import load_dataset; "
            "load_dataset({'source': 'sklearn:moons', 'options': {'n_samples': 50, 'noise': 0.1}, 'task': 'auto'}, "
            "None); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "NNCTL_CACHE_DIR": str(tmp_path)})
    assert out.stdout.strip() == "False"  # a cache hit never imports scikit-learn
    next((tmp_path / "datasets").glob("moons-*.npz")).write_bytes(b"garbage")
    assert load_dataset(spec, None).fingerprint == first.fingerprint  # damaged entries are regenerated
