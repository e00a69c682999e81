"""Data: CSV parsing, task detection, the split and preprocessing fitted on train only."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.config.load import load_spec
from nnctl.data.builtins import BUILTINS
from nnctl.data.preprocess import fit_preprocessor
from nnctl.data.sources import load_dataset
from nnctl.data.split import split_indices
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


def data_spec(**data):
    """A loaded spec's data section."""
    return load_spec(data={"data": data}).data


def load_encoded(data_section):
    """A data file's Dataset with its encoding fitted on every row (as if all were training rows)."""
    ds = load_dataset(data_section)
    ds.encode(data_section, np.arange(len(ds.y)))
    return ds


def write(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return p


def test_csv_numeric_labels_sort_numerically_and_quotes(tmp_path):
    p = write(tmp_path, 'x,"name, with comma",y\n1,a,10\n2,b,2\n3,a,10\n4,"b",2\n5,a,1\n')
    ds = load_encoded(data_spec(source=str(p), target="y", task="classification"))
    assert ds.task == "classification" and ds.class_names == ["1", "2", "10"]
    assert ds.y.tolist() == [2, 1, 2, 1, 0]
    assert ds.feature_names == ["x", "name, with comma=a", "name, with comma=b"]


def test_csv_float_target_is_regression(tmp_path):
    p = write(tmp_path, "x,y\n" + "".join(f"{i},{i * 0.5 + 0.25}\n" for i in range(10)))
    ds = load_dataset(data_spec(source=str(p)))
    assert ds.task == "regression" and ds.y.dtype == np.float64


def test_csv_header_only(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        load_dataset(data_spec(source=str(write(tmp_path, "a,b\n"))))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_dataset_loads_with_defaults(name):
    ds = load_dataset(data_spec(source=f"sklearn:{name}"))
    assert ds.X.ndim == 2 and len(ds.X) == len(ds.y) and np.isfinite(ds.X).all()
    assert ds.task == BUILTINS[name].task
    again = load_dataset(data_spec(source=f"sklearn:{name}"))
    assert again.fingerprint == ds.fingerprint  # random_state 0: the data never changes


def test_sklearn_datasets_are_cached_on_disk(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("NNCTL_CACHE_DIR", str(tmp_path))
    spec = data_spec(source="sklearn:moons", options={"n_samples": 50, "noise": 0.1})
    first = load_dataset(spec)
    assert len(list((tmp_path / "datasets").glob("moons-*.npz"))) == 1
    again = load_dataset(spec)
    assert again.fingerprint == first.fingerprint and np.array_equal(again.X, first.X)
    code = ("import sys; from nnctl.config.load import load_spec; from nnctl.data.sources import load_dataset; "
            "load_dataset(load_spec(data={'data': {'source': 'sklearn:moons', 'options': {'n_samples': 50, "
            "'noise': 0.1}}}).data); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "NNCTL_CACHE_DIR": str(tmp_path)})
    assert out.stdout.strip() == "False"  # a cache hit never imports scikit-learn
    next((tmp_path / "datasets").glob("moons-*.npz")).write_bytes(b"garbage")
    assert load_dataset(spec).fingerprint == first.fingerprint  # damaged entries are regenerated


@pytest.mark.parametrize("method", ["standardize", "pca"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_rows_can_write_the_training_rows_over_the_raw_matrix(method, dtype):
    """consume=True gives exactly the copying result, in the raw matrix's own memory when that is
    safe (sorted rows, rows no narrower than the output), and falls back to a copy otherwise."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(3000, 7)).astype(dtype)  # column 0 plays the target: X is a strided view
    X = M[:, 1:]
    pre = fit_preprocessor(method, X, 3 if method == "pca" else None)
    idx = np.sort(rng.choice(3000, size=2400, replace=False))
    want = pre.transform_rows(X.copy(), idx, dtype, chunk=128)
    got = pre.transform_rows(X, idx, dtype, chunk=128, consume=True)
    np.testing.assert_array_equal(got, want)
    assert got.flags.c_contiguous and np.shares_memory(got, M)

    # no reuse: unsorted rows, another dtype, or a foreign (read-only) buffer; X is left intact
    X2 = rng.normal(size=(500, 6)).astype(dtype)
    shuffled = rng.permutation(500)[:400]
    foreign = np.frombuffer(X2.tobytes(), dtype=dtype).reshape(500, 6)
    for source, rows, out_dtype in ((X2, shuffled, dtype), (X2, np.sort(shuffled), np.float16),
                                    (foreign, np.sort(shuffled), dtype)):
        before = source.copy()
        got = pre.transform_rows(source, rows, out_dtype, chunk=64, consume=True)
        np.testing.assert_array_equal(got, pre.transform_rows(before, rows, out_dtype, chunk=64))
        assert not np.shares_memory(got, source)
        np.testing.assert_array_equal(source, before)


def test_the_training_rows_of_a_numeric_csv_live_in_the_parsed_matrix(tmp_path):
    """No second copy of a large numeric CSV: the training matrix is written over the memory of the
    parsed float32 matrix of the numeric columns, and holds the right rows, transformed."""
    from nnctl.build import prepare

    n, d = 5000, 6
    rng = np.random.default_rng(0)
    raw = np.column_stack([rng.integers(0, 3, n), rng.normal(size=(n, d))])  # target first: X is an offset view
    path = tmp_path / "data.csv"
    with open(path, "w") as f:
        f.write(",".join(["label"] + [f"x{i}" for i in range(d)]) + "\n")
        np.savetxt(f, raw, fmt=["%d"] + ["%.5f"] * d, delimiter=",")
    spec = load_spec(data={"name": "m", "data": {"source": str(path), "target": "label",
                                                 "split": {"val": 0.1, "test": 0.1}},
                           "model": {"hidden": [4]}})
    p = prepare(spec)
    owner = p.X["train"]
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    assert owner.shape == (n, d) and owner.dtype == np.float32  # the target is kept apart, in float64
    assert p.X["train"].shape == (n - 2 * (n // 10), d) and p.X["train"].flags.c_contiguous
    features = raw[:, 1:].astype(np.float32)
    np.testing.assert_allclose(p.X["train"], p.pre.transform(features[p.split["train"]]), rtol=1e-5,
                               atol=1e-5)
