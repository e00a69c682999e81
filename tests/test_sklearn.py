"""nnctl.sklearn: NNClassifier and NNRegressor as scikit-learn estimators (DESIGN §7)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from nnctl.config.spec import Spec
from nnctl.files import read_npz
from nnctl.sklearn import NOT_PARAMS, PARAMS, NNClassifier, NNRegressor

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "datasets" / "penguins.csv"
# No check is expected to fail. A check listed here would need its reason in a comment.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.mark.parametrize("estimator", [NNClassifier(), NNRegressor()], ids=["classifier", "regressor"])
def test_check_estimator_passes_every_check(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None, expected_failed_checks=EXPECTED_FAILED_CHECKS)
    failed = [(r["check_name"], repr(r["exception"])[:300]) for r in results if r["status"] == "failed"]
    assert not failed
    ran = [r for r in results if r["status"] == "passed"]
    assert len(ran) > 40  # the checks really ran (not all skipped)


def _config_keys(record_type, prefix=()) -> list[tuple]:
    """Every config key's path, sections (data, data.split, ...) walked into, except those with no
    parameter (sweep)."""
    from nnctl.config.fields import Section
    from nnctl.config.spec import config_fields

    out = []
    for name, field in config_fields(record_type).items():
        path = (*prefix, name)
        if isinstance(field, Section) and field.cls is not None and path not in NOT_PARAMS:
            out += _config_keys(field.cls, path)
        else:
            out.append(path)
    return out


def test_every_config_key_is_a_parameter_or_says_why_not():
    keys = set(_config_keys(Spec))
    assert ("optimizer", "lr") in keys and ("data", "split", "val") in keys  # the walk goes into sections
    covered = set(PARAMS.values()) | set(NOT_PARAMS)
    assert keys - covered == set()
    assert set(PARAMS.values()) - keys == set()  # and every parameter names a real key
    for cls in (NNClassifier, NNRegressor):
        names = set(cls().get_params())
        assert names >= set(PARAMS) - ({"class_weight"} if cls is NNRegressor else {"target_scale"})


def _moons(n=300, seed=0):
    from sklearn.datasets import make_moons

    return make_moons(n_samples=n, noise=0.2, random_state=seed)


def test_fit_equals_nnctl_train_on_the_same_rows_and_config(tmp_path):
    X, y = _moons()
    params = dict(hidden=(8, 8), activation="tanh", optimizer="momentum", lr=0.05, epochs=7, batch_size=16,
                  val=0.2, test=0.0, seed=3)
    clf = NNClassifier(**params).fit(X, y)
    csv = tmp_path / "moons.csv"
    csv.write_text("x0,x1,target\n" + "".join(f"{float(a)!r},{float(b)!r},{int(c)}\n" for (a, b), c in zip(X, y)))
    config = tmp_path / "moons.yaml"
    config.write_text("seed: 3\ndata: {source: moons.csv, task: classification, split: {val: 0.2, test: 0.0}}\n"
                      "model: {hidden: [8, 8], activation: tanh}\noptimizer: {name: momentum, lr: 0.05}\n"
                      "train: {epochs: 7, batch_size: 16}\n")
    proc = subprocess.run([sys.executable, "-m", "nnctl", "train", config, "--runs-dir", tmp_path / "runs", "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    w = read_npz(Path(proc.stdout.strip().splitlines()[-1]) / "weights.npz", "weights")
    mine = clf.model_.model.state_arrays()
    assert mine.keys() == w.keys() and all(np.array_equal(mine[k], w[k]) for k in w)
    assert len(clf.loss_curve_) == 7 and len(clf.validation_scores_) == 7 and clf.n_iter_ == 7


def test_fit_writes_nothing_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _moons(100)
    NNClassifier(epochs=2).fit(X, y)
    assert os.listdir(tmp_path) == []
    clf = NNClassifier(epochs=2, runs_dir=tmp_path / "runs").fit(X, y)
    assert clf.run_.summary["status"] == "completed" and (clf.run_.path / "data.parquet").is_file()
    assert np.array_equal(clf.predict(X), NNClassifier(epochs=2).fit(X, y).predict(X))


def test_labels_keep_their_type_and_order():
    X, y = _moons(200)
    names = np.array(["moon-b", "moon-a"])[y]
    clf = NNClassifier(epochs=20, lr=0.01, class_weight={"moon-a": 2.0}).fit(X, names)
    assert list(clf.classes_) == ["moon-a", "moon-b"]
    assert set(clf.predict(X)) <= {"moon-a", "moon-b"} and clf.predict_proba(X).shape == (200, 2)
    assert clf.score(X, names) > 0.8
    with pytest.raises(ValueError, match="not a class"):
        NNClassifier(epochs=1, class_weight={"moon-c": 2.0}).fit(X, names)


def _penguins():
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(PENGUINS)
    return df.drop(columns=["species"]), df["species"]


def test_pipeline_with_a_column_transformer_and_grid_search():
    X, y = _penguins()
    X = X.dropna()
    y = y[X.index]
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    prep = ColumnTransformer([("num", StandardScaler(), numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ["island", "sex"])])
    pipe = make_pipeline(prep, NNClassifier(hidden=(16,), epochs=30, lr=0.01, preprocess="none"))
    grid = GridSearchCV(pipe, {"nnclassifier__lr": [0.003, 0.01], "nnclassifier__hidden": [(8,), (16,)]}, cv=3,
                        n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.9 and set(grid.predict(X)) <= set(y)
    scores = cross_val_score(clone(pipe), X, y, cv=3)
    assert len(scores) == 3 and scores.min() > 0.85


def test_a_dataframe_with_strings_and_missing_values_needs_no_transformer():
    X, y = _penguins()  # island and sex are strings, sex has missing values
    clf = NNClassifier(hidden=(16,), epochs=40, lr=0.01, missing="impute")
    assert cross_val_score(clf, X, y, cv=3).mean() > 0.9
    clf.fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns)
    with pytest.raises(ValueError, match="NaN"):
        NNClassifier(epochs=1).fit(X.select_dtypes("number").to_numpy(), y)


def test_regressor_predicts_in_the_units_of_y():
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    y = 1000 + 50 * y
    reg = NNRegressor(hidden=(32,), epochs=60, lr=0.01, val=0.2).fit(X, y)
    assert reg.score(X, y) > 0.9 and abs(reg.predict(X).mean() - y.mean()) < 0.1 * y.std()
    assert len(reg.validation_scores_) == 60


def test_clone_and_params_round_trip():
    clf = NNClassifier(hidden=(64, 32), activation="tanh", optimizer="adam", lr=1e-3, epochs=100, dropout=0.1)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    twin.set_params(lr=0.5, schedule={"name": "cosine"})
    assert twin.lr == 0.5 and clf.lr == 1e-3


def test_a_run_written_by_an_estimator_names_its_classes_as_y_does(tmp_path):
    X, y = _penguins()
    clf = NNClassifier(hidden=(8,), epochs=5, missing="impute", runs_dir=tmp_path).fit(X, y)
    assert clf.run_.classes == list(clf.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    assert set(clf.run_.predict(X.head(20))) <= set(clf.classes_)
    assert list(clf.run_.predict(X.head(20))) == list(clf.predict(X.head(20)))
    ints = NNClassifier(epochs=2, runs_dir=tmp_path).fit(*_numbers_as_labels())
    assert ints.run_.classes == ["3", "5", "7"] and list(ints.classes_) == [3, 5, 7]


def _numbers_as_labels():
    X, y = _moons(150)
    return X, np.array([3, 5, 7])[np.arange(150) % 3]


def test_dates_and_text_arrays_are_features_too():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": np.arange(40.0), "d": pd.date_range("2020-01-01", periods=40),
                          "c": ["p", "q"] * 20})
    clf = NNClassifier(epochs=2).fit(frame, [0, 1] * 20)
    assert clf.predict(frame).shape == (40,)
    text = np.array([["p", "1"], ["q", "2"]] * 10)
    assert NNClassifier(epochs=2).fit(text, [0, 1] * 10).predict(text).shape == (20,)
