"""scikit-learn estimators: `NNClassifier` and `NNRegressor` (DESIGN §7).

    from nnctl.sklearn import NNClassifier
    clf = NNClassifier(hidden=(64, 32), activation="tanh", optimizer="adam", lr=1e-3, epochs=100)
    clf.fit(X_train, y_train).score(X_test, y_test)

Every config key is a constructor parameter, flattened: `PARAMS` maps each parameter to its key
(`lr` is optimizer.lr, `optimizer` is optimizer.name, `val` is data.split.val, ...). A parameter
left at None takes nnctl's default for that key, so `NNClassifier(**p).fit(X, y)` trains exactly
what `nnctl train` trains from a config with the same keys on the same rows (tests check the
weights are equal). The keys about reading a file (data.source, options, target, delimiter,
decimal, header, na_values) and data.task (the class says it) have no parameter; `sweep` neither.

Two defaults differ from a config's, because scikit-learn users split their data themselves:
`val=0.0` and `test=0.0` train on every row given (set `val` for validation_scores_ and early
stopping). Nothing is written unless `runs_dir` is given; then each fit is an ordinary run
directory (`run_` opens it) holding the rows as data.parquet.

X is a 2-D array or a pandas DataFrame; a DataFrame's string, categorical and date columns are
encoded as nnctl encodes a file's (one-hot levels, date parts, imputation, all from the rows
given to fit), so no ColumnTransformer is needed for them (though one works).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from nnctl.errors import DataError

# estimator parameter -> config key
PARAMS: dict[str, tuple[str, ...]] = {
    "hidden": ("model", "hidden"), "layers": ("model", "layers"), "activation": ("model", "activation"),
    "activation_options": ("model", "activation_options"), "init": ("model", "init"),
    "init_std": ("model", "init_std"), "bias_init": ("model", "bias_init"), "norm": ("model", "norm"),
    "norm_options": ("model", "norm_options"), "dropout": ("model", "dropout"), "init_from": ("model", "init_from"),
    "optimizer": ("optimizer", "name"), "lr": ("optimizer", "lr"), "optimizer_options": ("optimizer", "options"),
    "weight_decay": ("optimizer", "weight_decay"), "schedule": ("optimizer", "schedule"),
    "clip_grad_norm": ("optimizer", "clip_grad_norm"),
    "epochs": ("train", "epochs"), "gd": ("train", "gd"), "batch_size": ("train", "batch_size"),
    "loss": ("train", "loss"), "class_weight": ("train", "class_weight"), "shuffle": ("train", "shuffle"),
    "early_stopping": ("train", "early_stopping"), "stop_at_loss": ("train", "stop_at_loss"),
    "snapshot_every": ("train", "snapshot_every"), "checkpoint_every": ("train", "checkpoint_every"),
    "dtype": ("train", "dtype"), "threads": ("train", "threads"), "diagnostics": ("train", "diagnostics"),
    "log_steps": ("train", "log_steps"), "log": ("train", "log"),
    "val": ("data", "split", "val"), "test": ("data", "split", "test"), "stratify": ("data", "split", "stratify"),
    "preprocess": ("data", "preprocess"), "pca_components": ("data", "pca_components"),
    "features": ("data", "features"), "ignore": ("data", "ignore"), "id": ("data", "id"),
    "missing": ("data", "missing"), "impute_numeric": ("data", "impute", "numeric"),
    "impute_categorical": ("data", "impute", "categorical"), "impute_indicator": ("data", "impute", "indicator"),
    "max_levels": ("data", "categorical", "max_levels"), "min_frequency": ("data", "categorical", "min_frequency"),
    "unknown": ("data", "categorical", "unknown"), "dates": ("data", "dates"),
    "target_scale": ("data", "target_scale"), "seed": ("seed",), "name": ("name",),
}
# config keys without a parameter, and why
NOT_PARAMS = {
    ("data", "source"): "the rows are fit's X and y", ("data", "options"): "for sklearn: datasets only",
    ("data", "target"): "y is the target", ("data", "delimiter"): "no file is read",
    ("data", "decimal"): "no file is read", ("data", "header"): "no file is read",
    ("data", "na_values"): "no file is read: missing is None or NaN", ("data", "task"): "the class says it",
    ("sweep",): "sweeps are nnctl sweep's (or GridSearchCV's)",
}
TARGET = "target"  # the name y gets beside X's columns (another if X has a column of that name)


class _NNEstimator(BaseEstimator):
    """What both estimators share: parameters -> config, fit on rows in memory, predict."""

    _task = ""

    def _keep(self, params: dict) -> None:
        """__init__'s parameters as attributes, unchanged (scikit-learn's rule: no logic in __init__)."""
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _config(self, class_names=None) -> dict:
        params = self.get_params(deep=False)
        config: dict = {"data": {"task": self._task,
                                 "split": {"val": self.val, "test": self.test}}}
        for param, path in PARAMS.items():
            value = params.get(param)
            if value is None or param in ("val", "test"):
                continue
            if param == "class_weight":
                value = _class_weight(value, class_names)
            if isinstance(value, tuple):
                value = list(value)
            node = config
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return config

    # -- fit
    def fit(self, X, y):
        """Train on X (2-D array or DataFrame) and y; returns self."""
        from nnctl.api import MEMORY, _progress
        from nnctl.config.load import load_spec
        from nnctl.data.frames import to_arrow

        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y, frame = self._validate(X, y, reset=True)
        y_enc, class_names = self._encode_target(y)
        target = TARGET
        while target in self._names():
            target = "_" + target
        rows = self._columns(X, frame)
        rows[target] = y_enc
        config = self._config(class_names)
        config["data"]["target"] = target
        spec = load_spec(None, data=config, base_dir=None, memory=MEMORY)
        arrow = to_arrow(rows, label=MEMORY)
        on_epoch = _progress(bool(self.verbose), spec.train.epochs) if self.verbose else None
        if spec.train.log != "none" and self.runs_dir is None:
            raise DataError(f"log={self.log!r} tracks a run directory: give runs_dir= as well")
        if self.runs_dir is not None:
            from nnctl.api import Run
            from nnctl.training.session import train_run

            result = train_run(spec, Path(self.runs_dir), command=["python", f"({type(self).__name__}.fit)"],
                               on_epoch=on_epoch, rows=arrow)
            self.run_ = Run(result.run.path)
            self.model_ = self.run_._model()
            rows_metrics, best = self.run_.metrics, result.summary.get("best")
        else:
            self.run_ = None
            self.model_, rows_metrics, best = _fit_in_memory(spec, arrow, on_epoch)
        self.n_iter_ = len(rows_metrics)
        self.loss_curve_ = [r["train_loss"] for r in rows_metrics]
        metric = "val_accuracy" if self._task == "classification" else "val_r2"
        self.validation_scores_ = [r.get(metric) for r in rows_metrics] if self.val else None
        self.best_ = best
        return self

    def _names(self) -> list[str]:
        return list(getattr(self, "feature_names_in_", [f"x{j}" for j in range(self.n_features_in_)]))

    def _columns(self, X, frame) -> dict:
        if frame is not None:
            return {name: frame[col].to_numpy() for name, col in zip(self._names(), frame.columns)}
        return {name: X[:, j] for j, name in enumerate(self._names())}

    def _validate(self, X, y=None, reset=False):
        """sklearn's input checks (shapes, feature names, n_features_in_; infinity refused) -> (X, y,
        the DataFrame if X is one). String columns are kept (nnctl one-hot encodes them); NaN is
        a missing value, handled as `missing` says."""
        from sklearn.utils.validation import validate_data

        from nnctl.data.frames import is_frame

        frame = X if is_frame(X) else None
        if frame is not None:  # its columns keep their types (strings, dates): nnctl reads them itself
            from sklearn.utils import check_consistent_length
            from sklearn.utils.validation import column_or_1d

            validate_data(self, X, reset=reset, skip_check_array=True)  # feature names, n_features_in_
            if y is not None:
                y = column_or_1d(y, warn=True)
                check_consistent_length(X, y)
            if reset and len(frame) < 2:
                raise DataError(f"Found array with {len(frame)} sample(s) (shape={frame.shape}) while a minimum of 2 "
                                f"is required by {type(self).__name__}")
            return None, y, frame
        kw = dict(reset=reset, ensure_all_finite="allow-nan", ensure_min_samples=2 if reset else 1)
        if y is not None:
            kw.update(y_numeric=self._task == "regression")
        args = (X,) if y is None else (X, y)
        try:
            out = validate_data(self, *args, dtype="numeric" if frame is None else None, **kw)
        except ValueError:
            if np.asarray(X).dtype.kind not in "OUS":
                raise
            out = validate_data(self, *args, dtype=None, **kw)  # an array with text columns
        X_checked, y_checked = (out, None) if y is None else out
        if X_checked.dtype.kind == "f" and (self.missing or "error") == "error" and np.isnan(X_checked).any():
            cols = np.flatnonzero(np.isnan(X_checked).any(axis=0))
            names = self._names() if reset is False or hasattr(self, "n_features_in_") else []
            shown = ", ".join(repr(names[j]) if j < len(names) else str(j) for j in cols[:5])
            raise DataError(f"Input X contains NaN (missing values) in {len(cols)} column{'s' * (len(cols) != 1)}: "
                            f"{shown}; set missing='impute' (fill from the training rows) or missing='drop'")
        return X_checked, y_checked, frame

    # -- predict
    def _logits(self, X):
        from sklearn.utils.validation import check_is_fitted

        from nnctl.api import logits

        check_is_fitted(self, "model_")
        X, _, frame = self._validate(X)
        Z, kept, n = logits(self.model_, self._columns(X, frame))
        if len(kept) != n:
            raise DataError(f"X has {n - len(kept)} row(s) with missing values; missing='drop' drops rows only in "
                            f"fit: use missing='impute' to predict rows with missing values")
        return Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing in ("impute", "drop")
        tags.input_tags.string = True  # a DataFrame's string columns are one-hot encoded
        tags.input_tags.categorical = True
        return tags


def _fit_in_memory(spec, arrow, on_epoch):
    """Train without a run directory: (the model as a LoadedRun, metrics rows, best)."""
    from nnctl.build import prepare
    from nnctl.errors import TrainingFailed
    from nnctl.evaluate import LoadedRun
    from nnctl.training.loop import Trainer

    prepared = prepare(spec, arrow, min_class_rows=1)
    result = Trainer(prepared, on_epoch=on_epoch).fit()
    if result.status in ("diverged", "interrupted"):
        raise TrainingFailed(result.message)
    ds = prepared.dataset
    loaded = LoadedRun(None, prepared.spec, prepared.model, prepared.pre, ds.task, ds.class_names, ds.columns,
                       ds.feature_names, ds.target_name, {"status": result.status, "best": result.best},
                       ds.id_name, prepared.target, ds.file_columns)
    return loaded, result.rows, result.best


def _class_weight(value, class_names):
    """sklearn's class_weight (None, 'balanced', {label: weight}) as nnctl's (class names as keys)."""
    if value in ("balanced", "none"):
        return value
    if isinstance(value, dict):
        if class_names is None:
            return {str(k): v for k, v in value.items()}
        index = {label: name for label, name in class_names}
        unknown = [k for k in value if k not in index]
        if unknown:
            raise DataError(f"class_weight names {unknown[0]!r}, which is not a class of y "
                            f"({', '.join(repr(k) for k in list(index)[:10])})")
        return {index[k]: float(w) for k, w in value.items()}
    return value


class NNClassifier(ClassifierMixin, _NNEstimator):
    """A multilayer perceptron classifier trained by nnctl (softmax, or one sigmoid unit for two
    classes). Parameters: every config key (see the module docstring and `PARAMS`); None = nnctl's
    default. Attributes after fit: classes_, n_features_in_, feature_names_in_ (DataFrame X),
    loss_curve_ (training loss per epoch), validation_scores_ (val accuracy per epoch, when
    val > 0), n_iter_ (epochs run), best_ (the best epoch's metrics), run_ (an nnctl.Run, with
    runs_dir), model_ (the trained model).

    >>> NNClassifier(hidden=(32,), epochs=50).fit(X, y).predict_proba(X[:3])
    """

    _task = "classification"

    def __init__(self, hidden=(16, 16), activation="relu", optimizer="adam", lr="auto", epochs=100,
                 batch_size=32, *, layers=None, activation_options=None, init=None, init_std=None, bias_init=None,
                 norm=None, norm_options=None, dropout=None, init_from=None, optimizer_options=None,
                 weight_decay=None, schedule=None, clip_grad_norm=None, gd=None, loss=None, class_weight=None,
                 shuffle=None, early_stopping=None, stop_at_loss=None, snapshot_every=None, checkpoint_every=None,
                 dtype=None, threads=None, diagnostics=None, log_steps=None, log=None, val=0.0, test=0.0,
                 stratify=None, preprocess=None, pca_components=None, features=None, ignore=None, id=None, missing=None,
                 impute_numeric=None, impute_categorical=None, impute_indicator=None, max_levels=None,
                 min_frequency=None, unknown=None, dates=None, seed=0, name=None, runs_dir=None, verbose=False):
        self._keep(locals())

    def _encode_target(self, y):
        """(the target column for nnctl, [(label, nnctl's class name)]). The labels themselves where
        nnctl keeps them as they are, so a run written with runs_dir names its classes as y does
        (strings, bools, integers); class indices otherwise (fractional or untidy labels)."""
        from sklearn.utils.multiclass import check_classification_targets

        from nnctl.data.columns import fmt_number

        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        labels = self.classes_.tolist()
        kind = self.classes_.dtype.kind
        if kind == "b":
            return self.classes_[y_index], [(label, str(label)) for label in labels]
        if kind in "iuf" and all(float(v).is_integer() and abs(v) < 2**53 for v in labels):
            return self.classes_.astype(np.float64)[y_index], [(label, fmt_number(float(label))) for label in labels]
        if all(isinstance(v, str) and v and v == v.strip() for v in labels) and labels == sorted(labels):
            return np.array(labels, dtype=object)[y_index], [(label, label) for label in labels]
        return y_index.astype(np.int64), [(label, str(k)) for k, label in enumerate(labels)]

    def predict(self, X):
        """The class of each row of X (labels as given to fit)."""
        Z = self._logits(X)
        return self.classes_[self.model_.model.loss.predict(Z)]

    def predict_proba(self, X):
        """Class probabilities (n, n_classes), columns in classes_ order."""
        Z = self._logits(X)
        if not self.model_.model.loss.has_proba:
            raise DataError(f"predict_proba: loss {self.model_.spec.train.loss} gives scores, not probabilities")
        P = self.model_.model.loss.output(Z).astype(np.float64)
        return np.hstack([1.0 - P, P]) if P.shape[1] == 1 else P

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class NNRegressor(RegressorMixin, _NNEstimator):
    """A multilayer perceptron regressor trained by nnctl (identity output, mse unless `loss` says
    mae or huber; y standardized on the training rows unless target_scale='none', predictions in
    y's units). Parameters and attributes as NNClassifier's (validation_scores_ holds val r2).

    >>> NNRegressor(hidden=(64, 64), epochs=200, lr=1e-3).fit(X, y).score(X_test, y_test)
    """

    _task = "regression"

    def __init__(self, hidden=(16, 16), activation="relu", optimizer="adam", lr="auto", epochs=100,
                 batch_size=32, *, layers=None, activation_options=None, init=None, init_std=None, bias_init=None,
                 norm=None, norm_options=None, dropout=None, init_from=None, optimizer_options=None,
                 weight_decay=None, schedule=None, clip_grad_norm=None, gd=None, loss=None, shuffle=None,
                 early_stopping=None, stop_at_loss=None, snapshot_every=None, checkpoint_every=None, dtype=None,
                 threads=None, diagnostics=None, log_steps=None, log=None, val=0.0, test=0.0, stratify=None,
                 preprocess=None,
                 pca_components=None, features=None, ignore=None, id=None, missing=None, impute_numeric=None,
                 impute_categorical=None, impute_indicator=None, max_levels=None, min_frequency=None, unknown=None,
                 dates=None, target_scale=None, seed=0, name=None, runs_dir=None, verbose=False):
        self._keep(locals())

    def _encode_target(self, y):
        y = np.asarray(y, dtype=np.float64)
        return y, None

    def predict(self, X):
        """Predicted values in y's units, shape (n,)."""
        Z = self._logits(X)
        return self.model_.values(Z)[:, 0]
