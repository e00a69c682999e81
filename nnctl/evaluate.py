"""Reading a trained run back: rebuild the model from the run dir alone, evaluate it, predict.

`load_run` needs only the run directory (config.yaml, weights.npz, preprocess.npz): no retraining
and no access to the original data. `evaluate_run` scores the held-out test split (re-creating
the data from the config and checking its fingerprint) or another CSV with the same columns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.config.spec import Spec
from nnctl.data.preprocess import Preprocessor, TargetScaler
from nnctl.errors import ConfigError, DataError, NnctlError, RunDirError
from nnctl.files import read_npz
from nnctl.metrics import classification_report, regression_report
from nnctl.nn.model import MLP
from nnctl.runs import RunDir, RunLock, open_run, read_split


@dataclass
class LoadedRun:
    """A run directory's trained model and everything needed to feed it new rows."""

    run: RunDir
    spec: Spec
    model: MLP
    pre: Preprocessor
    task: str
    classes: list[str] | None
    columns: list[dict]
    feature_names: list[str]
    target_name: str | None
    summary: dict
    id_name: str | None = None
    target: TargetScaler | None = None  # regression targets standardized in training
    file_columns: list[str] | None = None  # the training file's columns, in order

    def values(self, Z: np.ndarray) -> np.ndarray:
        """Regression predictions (n, k) in the original units, float64."""
        P = self.model.loss.predict(Z)
        return self.target.unscale(P) if self.target is not None else P.astype(np.float64)

    def logits(self, X_raw: np.ndarray, where=None) -> np.ndarray:
        """Inference-mode logits for raw feature rows: the run's preprocessing, then the network.

        A row whose output is not finite (a value far outside anything seen in training, such as
        1e308) is a DataError naming it (`where(row)` says where it is), never a silent label."""
        with np.errstate(over="ignore", invalid="ignore"):
            X = np.ascontiguousarray(self.pre.transform(X_raw), dtype=self.model.dtype)
            Z = self.model.logits(X)  # batch norm uses running statistics, no dropout
        bad = ~np.isfinite(Z).all(axis=1)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            with np.errstate(over="ignore", invalid="ignore"):  # the raw column furthest from the training data
                z = np.abs((X_raw[r] - self.pre.shift) / self.pre.scale)
                j = int(np.nanargmax(np.where(np.isfinite(z), z, np.inf)))
            names = self.feature_names
            col = names[j] if j < len(names) else f"input {j}"
            place = where(r) if where is not None else f"row {r + 1}"
            raise DataError(f"{place}: the model's output is not finite for this row ({int(bad.sum())} row"
                            f"{'s' * (int(bad.sum()) != 1)} in all); its value of {col!r} ({X_raw[r, j]:.6g}) is far "
                            f"outside the training data")
        return Z


def load_run(path: Path | str) -> LoadedRun:
    """Rebuild a run's model from its directory. Raises RunDirError naming the file at fault."""
    from nnctl.build import build_model
    from nnctl.config.load import load_spec

    run, summary = open_run(path)
    config_path = run.file(RunDir.CONFIG)
    if not os.path.lexists(config_path):
        raise RunDirError(f"{run.path}: no config.yaml; the run directory is incomplete")
    try:
        spec = load_spec(config_path, check_files=False, run_file=True)
    except ConfigError as exc:
        raise RunDirError(f"{run.path}: its config.yaml is invalid: {exc}") from None
    if spec.train.loss == "auto" or spec.data.task == "auto":
        raise RunDirError(f"{config_path}: not a resolved config (loss or task is still auto); was training "
                          f"started by this version of nnctl?")
    pre_file = run.file(RunDir.PREPROCESS)
    pre_arrays = read_npz(pre_file, "preprocess file")
    try:
        checked = _check_preprocess(pre_arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise RunDirError(f"{pre_file}: damaged or from another tool ({str(exc)[:200]})") from None
    pre, task, classes, columns, feature_names, target_name, id_name, target, file_columns = checked
    weights = read_npz(run.file(RunDir.WEIGHTS), "weights file")
    out_key = f"W{len(spec.model.layers) + 1}"
    if out_key not in weights:
        raise RunDirError(f"{run.file(RunDir.WEIGHTS)}: missing key {out_key!r} (the config has "
                          f"{len(spec.model.layers)} hidden layers)")
    if weights[out_key].ndim != 2 or weights[out_key].shape[1] < 1:
        raise RunDirError(f"{run.file(RunDir.WEIGHTS)}: key {out_key!r} has shape {weights[out_key].shape}; "
                          f"expected (inputs, outputs)")
    n_out = int(weights[out_key].shape[1])
    expected = (len(classes), 1) if task == "classification" and len(classes) == 2 else \
        (len(classes),) if task == "classification" else (len(target.shift) if target is not None else n_out,)
    if n_out not in expected:
        raise RunDirError(f"{run.file(RunDir.WEIGHTS)}: the output layer has {n_out} units, but "
                          f"{pre_file.name} describes {expected[0]} output{'s' * (expected[0] != 1)}")
    model = build_model(spec, pre.n_outputs, n_out, pre_arrays.get("class_weight"))
    try:
        model.load_state_arrays(weights)
    except ValueError as exc:
        raise RunDirError(f"{run.file(RunDir.WEIGHTS)}: {exc}") from None
    return LoadedRun(run, spec, model, pre, task, classes, columns, feature_names, target_name, summary,
                     id_name or None, target, file_columns)


def _check_preprocess(a: dict[str, np.ndarray]):
    """The contents of preprocess.npz, each array checked for its kind and shape before use (a run
    directory is data): ValueError/KeyError naming the key otherwise."""
    from nnctl.data.columns import ColumnEncoder

    def arr(key: str, kinds: str, ndim: int, optional: bool = False):
        if key not in a:
            if optional:
                return None
            raise KeyError(f"no {key!r}")
        v = a[key]
        if v.dtype.kind not in kinds or v.ndim != ndim:
            raise ValueError(f"{key!r} is a {v.ndim}-d array of {v.dtype}; expected a {ndim}-d array of "
                             f"{'text' if kinds == 'U' else 'numbers'}")
        return v

    def text(key: str, optional: bool = False) -> str | None:
        v = arr(key, "U", 0, optional)
        return None if v is None else str(v)

    def texts(key: str, optional: bool = False) -> list[str] | None:
        v = arr(key, "U", 1, optional)
        return None if v is None else [str(x) for x in v]

    shift, scale = arr("shift", "fiu", 1), arr("scale", "fiu", 1)
    if len(scale) != len(shift):
        raise ValueError(f"'scale' has {len(scale)} values for {len(shift)} features")
    projection, post_scale = arr("projection", "fiu", 2, True), arr("post_scale", "fiu", 1, True)
    if projection is not None and projection.shape[0] != len(shift):
        raise ValueError(f"'projection' has {projection.shape[0]} rows for {len(shift)} features")
    if post_scale is not None and (projection is None or len(post_scale) != projection.shape[1]):
        raise ValueError("'post_scale' does not match 'projection'")
    arrays = [shift, scale] + [x for x in (projection, post_scale) if x is not None]
    if not all(np.isfinite(x).all() for x in arrays) or not (scale != 0).all():
        raise ValueError("non-finite shift, scale or projection values (or a zero scale)")
    pre = Preprocessor(text("method"), shift.astype(np.float64), scale.astype(np.float64), projection,
                       post_scale, arr("explained_variance_ratio", "fiu", 1, True))
    task = text("task")
    if task not in ("classification", "regression"):
        raise ValueError(f"'task' is {task[:40]!r}; expected classification or regression")
    classes = texts("classes") if task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise ValueError(f"{len(classes)} class label(s); a classifier has at least 2")
    columns = json.loads(text("columns"))
    if not isinstance(columns, list) or not all(isinstance(c, dict) and "name" in c and "kind" in c
                                                 for c in columns):
        raise ValueError("'columns' is not a list of column encodings")
    encoders = [ColumnEncoder.from_json(c) for c in columns]
    feature_names = texts("feature_names")
    if len(feature_names) != len(shift) or sum(e.width for e in encoders) not in (0, len(shift)):
        raise ValueError(f"{len(feature_names)} feature names and columns {sum(e.width for e in encoders)} wide "
                         f"for {len(shift)} features")
    target_name = text("target_name") or None
    id_name = text("id_name", optional=True) or None
    target = None
    if "target_shift" in a:
        t_shift, t_scale = arr("target_shift", "fiu", 1), arr("target_scale", "fiu", 1)
        if len(t_shift) != len(t_scale) or not (np.isfinite(t_shift).all() and np.isfinite(t_scale).all()):
            raise ValueError("'target_shift' and 'target_scale' do not match or are not finite")
        target = TargetScaler(t_shift.astype(np.float64), t_scale.astype(np.float64))
    class_weight = arr("class_weight", "fiu", 1, True)
    if class_weight is not None and (classes is None or len(class_weight) != len(classes)
                                     or not (np.isfinite(class_weight) & (class_weight > 0)).all()):
        raise ValueError("'class_weight' does not hold one positive weight per class")
    return pre, task, classes, columns, feature_names, target_name, id_name, target, texts("file_columns", True)


def read_input(loaded: LoadedRun, path: Path, need_target: bool):
    """An eval/predict input file encoded as the run's training data (roles.encode_input)."""
    from nnctl.data.roles import encode_input

    return encode_input(Path(path), loaded.spec.data, loaded.columns, loaded.target_name, loaded.classes,
                        need_target, loaded.id_name, loaded.file_columns)


def score_rows(loaded: LoadedRun, X_raw: np.ndarray, y: np.ndarray) -> dict:
    """Loss and the task's report for raw feature rows and their targets."""
    model = loaded.model
    Z = loaded.logits(X_raw)
    n_classes = len(loaded.classes) if loaded.classes else 0
    scaled = loaded.target.apply(y) if loaded.target is not None and loaded.task == "regression" else y
    Y = model.loss.encode(scaled, n_classes, model.dtype)
    out = {"n_rows": int(len(y)), "loss": float(model.loss.value(Z, Y))}  # in the units the model learned
    if loaded.task == "classification":
        scores = None
        if n_classes == 2 and not model.loss.has_proba:  # hinge, perceptron: the raw score ranks the rows
            scores = Z[:, -1].astype(np.float64)
        elif n_classes == 2:  # the probability of the second class, for ROC-AUC and average precision
            P = model.loss.output(Z).astype(np.float64)
            scores = P[:, -1]
        out.update(classification_report(y, model.loss.predict(Z), loaded.classes, scores))
    else:
        T = y if loaded.target is not None else Y  # original units (unscaled runs: as the model saw them)
        out.update(regression_report(T, loaded.values(Z)))
    return out


def evaluate_run(path: Path | str, data: Path | None = None) -> dict:
    """Evaluate a run on its test split (default) or on a CSV; writes eval.json and returns it."""
    import time

    loaded = load_run(path)
    notes: list[str] = []
    if loaded.summary.get("status") in ("diverged", "interrupted", "running", "failed"):
        notes.append(f"this run is {loaded.summary['status']}: its weights are not a finished model")
    if data is None:
        X_raw, y, source, split_notes = _test_split(loaded)
        notes += split_notes
        split = "test"
    else:
        rows = read_input(loaded, Path(data), need_target=True)
        X_raw, y = rows.X, rows.y
        notes += rows.notes
        source, split = str(Path(data).resolve()), "csv"
    if len(y) == 0:
        raise DataError(f"{loaded.run.path}: the test split is empty (data.split.test is 0); pass --data CSV")
    result = {"run_dir": str(loaded.run.path), "name": loaded.spec.name, "task": loaded.task, "split": split,
              "source": source, "metrics": score_rows(loaded, X_raw, y), "notes": notes,
              "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    # eval.json is the held-out test result (compare shows it); other data get their own file
    target = loaded.run.file(RunDir.EVAL if split == "test" else f"eval-{Path(data).stem}.json")
    result["written_to"] = str(target)
    lock = RunLock.try_acquire(loaded.run)  # removes a killed writer's temp files, unless a trainer is at work
    try:
        loaded.run.write_json(target.name, result)
    except OSError as exc:  # the metrics are still worth printing: the caller warns (see "not_written")
        import errno

        read_only = "; the run directory is read-only" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""
        result.update(written_to=None, not_written=f"{target}: cannot write ({exc.strerror}){read_only}; the "
                                                   f"results were not saved")
    finally:
        if lock is not None:
            lock.release()
    return result


def _test_split(loaded: LoadedRun, part: str = "test", hint: str = "; evaluate on a CSV with --data instead"):
    """Re-create the run's data and pick the rows of its `part` (test, val or train) of the split, as
    training encoded them: (X_raw, y, source, notes); note a changed fingerprint. `hint` ends the
    message when the data cannot be re-created."""
    from nnctl.data.sources import load_dataset

    split = read_split(loaded.run)
    d = loaded.spec.data
    try:
        ds = load_dataset(d, loaded.model.dtype)  # as training read it
    except NnctlError as exc:
        raise DataError(f"cannot re-create the training data of {loaded.run.path}: {exc}{hint}") from None
    notes = []
    fingerprint = str(split.get("fingerprint", ""))
    if fingerprint and fingerprint != str(ds.fingerprint):
        notes.append(f"the data at {d.source} changed since training (fingerprint {fingerprint[:12]} -> "
                     f"{str(ds.fingerprint)[:12]}): the test rows may differ from the ones held out")
    rows = split[part]
    if len(rows) and int(rows.max()) >= len(ds.y):
        raise DataError(f"{d.source}: has {len(ds.y)} rows now, but the run's {part} split refers to row "
                        f"{int(rows.max())}; the data changed since training")
    report: dict = {}
    X = ds.features_of(rows, loaded.columns, report)
    for name, info in report.get("unknown_levels", {}).items():
        notes.append(f"column {name!r}: {info['rows']} {part} row{'s' * (info['rows'] != 1)} with a value not seen "
                     f"in training, encoded as all zeros")
    return X, ds.y[rows], d.source, notes


# ------------------------------------------------------------------------------------ prediction
def predict_csv(path: Path | str, input_csv: Path, proba: bool = False, typed: bool = False
                ) -> tuple[list[str], list[list[str]], list[str]]:
    """Predictions for the rows of `input_csv`: (header, rows, notes) of the output table.

    The output repeats the input columns as written, then `prediction` (original label names for
    classification) and, with `proba`, one `p_<class>` column per class. Rows skipped by the
    run's missing-value policy (data.missing: drop) are left out, and said in the notes. With
    `typed`, probabilities and regression values are floats (for JSON) rather than their text."""
    from nnctl.data.reading import read_table
    from nnctl.numfmt import float32_text

    loaded = load_run(path)
    if proba and loaded.task == "classification" and not loaded.model.loss.has_proba:
        raise DataError(f"--proba: probabilities are not available for this run: its loss "
                        f"({loaded.spec.train.loss}) gives a score and a class, not a probability "
                        f"(train with bce or cross_entropy for probabilities); drop --proba")
    inp = read_input(loaded, Path(input_csv), need_target=False)
    d = loaded.spec.data
    cells = read_table(Path(input_csv), d.delimiter, d.decimal, d.header, d.na_values, text=True)
    header = inp.table.names  # the input's columns under the names training gave them (header: false)
    columns = list(cells.columns.values())
    rows = [[c[i] for c in columns] for i in inp.rows]
    model = loaded.model
    Z = loaded.logits(inp.X, lambda r: f"{input_csv}, {inp.table.where(int(inp.rows[r]))}")
    out_header = list(header)
    if loaded.task == "classification":
        labels = [loaded.classes[i] for i in model.loss.predict(Z)]
        out_header.append("prediction")
        out_rows = [[*r, lab] for r, lab in zip(rows, labels)]
        if proba:
            P = model.loss.output(Z).astype(np.float64)
            if P.shape[1] == 1:  # one sigmoid unit: probability of the second class
                P = np.hstack([1.0 - P, P])
            out_header += [f"p_{c}" for c in loaded.classes]
            cell = (lambda v: float(f"{v:.6g}")) if typed else (lambda v: f"{v:.6g}")
            out_rows = [[*r, *map(cell, p)] for r, p in zip(out_rows, P)]
    else:
        if proba:
            raise DataError("--proba applies to classification runs; this run is a regression")
        P = loaded.values(Z)
        names = ["prediction"] if P.shape[1] == 1 else [f"prediction_{k}" for k in range(P.shape[1])]
        out_header += names
        text = float32_text if model.dtype == np.float32 else (lambda v: repr(float(v)))
        cell = (lambda v: float(text(v))) if typed else text  # the model's precision, not noise
        out_rows = [[*r, *map(cell, p)] for r, p in zip(rows, P)]
    return out_header, out_rows, inp.notes
