"""A data file's columns given their roles: the target, the id, ignored columns and features; rows
with missing values handled as `data.missing` says; the task decided (and the reason said).

`load_file` returns a `Dataset` whose features are still raw, typed columns: the encoding (levels,
imputation values) is fitted on the training rows later, by `Dataset.encode`, once the split is
known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnctl.config.spec import DataSpec
from nnctl.data.columns import fmt_number, infer_kind, likely_row_id
from nnctl.data.reading import read_table
from nnctl.data.sources import MAX_AUTO_CLASSES, MIN_AUTO_CLASS_ROWS, Dataset
from nnctl.data.table import RawColumn, Table, excerpt
from nnctl.errors import ConfigError, DataError, did_you_mean
from nnctl.files import local_path


def read_data_file(path: Path, data: DataSpec, dtype=np.float64, room: bool = False) -> Table:
    """The file `path` read with the data section's delimiter, decimal, header and na_values.
    `room`: training reads it (see from_arrow); only where the features are the file's columns in
    order (no id, ignore or features key), or the room would go unused."""
    target = -1 if data.target is None else data.target  # read exactly (float64), whatever the dtype
    room = room and data.id is None and not data.ignore and data.features is None
    return read_table(path, data.delimiter, data.decimal, data.header, data.na_values, dtype=dtype,
                      exact=(target,), room=room)


def memory_table(rows, data: DataSpec, dtype=np.float64) -> Table:
    """An in-memory Arrow table as read_data_file would read it from a Parquet file."""
    from nnctl.data.frames import arrow_table

    return arrow_table(rows, data.source, dtype, (-1 if data.target is None else data.target,))


def column_name(table: Table, key: Any, what: str) -> str:
    """The name of the column a config key names (a name, or an index counting from 0; -1 is the last)."""
    names = table.names
    if isinstance(key, int) and not isinstance(key, bool):
        i = key if key >= 0 else len(names) + key
        if not 0 <= i < len(names):
            raise DataError(f"{table.path}: data.{what} index {key} is out of range; the file has {len(names)} "
                            f"column{'s' * (len(names) != 1)}")
        return names[i]
    if key not in table.columns:
        raise DataError(f"{table.path}: no column {key!r} for data.{what}{did_you_mean(str(key), names)}"
                        f"{'; the file has no header, so its columns are c0, c1, ...' if names[0] == 'c0' else ''}")
    return key


def load_file(data: DataSpec, dtype=np.float64, rows=None) -> Dataset:
    """Read a data file and settle roles, missing values and the task; features stay raw columns.

    `dtype` float32 lets an all-numeric file be parsed straight to float32 (the training dtype).
    `rows`: an Arrow table held in memory (the Python API), read in place of the file; data.source
    is then only its name in messages."""
    path = Path(data.source)
    # (local_path: on a Dask worker, its copy of the client's file)
    table = read_data_file(local_path(path), data, dtype, room=True) if rows is None else \
        memory_table(rows, data, dtype)
    if table.n_rows == 0:
        raise DataError(f"{path}: no data rows" + (" after the header" if data.header else ""))
    target = column_name(table, -1 if data.target is None else data.target, "target")
    id_name = column_name(table, data.id, "id") if data.id is not None else None
    ignored = {column_name(table, k, "ignore") for k in data.ignore}
    for name, what in ((id_name, "id"),):
        if name == target:
            raise ConfigError(f"data.{what}: {name!r} is the target column")
    if target in ignored:
        raise ConfigError(f"data.ignore: lists the target column {target!r}")
    if data.features is None:
        features = [n for n in table.names if n != target and n != id_name and n not in ignored]
    else:
        features = [column_name(table, k, "features") for k in data.features]
        for n in features:
            if n == target:
                raise ConfigError(f"data.features: includes the target column {n!r}")
            if n == id_name:
                raise ConfigError(f"data.features: includes the id column {n!r}")
            if n in ignored:
                raise ConfigError(f"data.features: includes {n!r}, which data.ignore lists")
        if len(set(features)) != len(features):
            raise ConfigError("data.features: lists a column twice")
    notes: list[str] = list(table.notes)
    typed = {}
    for name in features:
        col = infer_kind(table.columns[name], table, data.decimal)
        if col.kind == "date":
            if data.dates == "error":
                raise DataError(f"{path}, column {name!r}: holds dates, and data.dates is error; set data.dates: "
                                f"expand (year, month, day, weekday, day of year) or ignore, or list it in "
                                f"data.ignore")
            if data.dates == "ignore":
                notes.append(f"column {name!r} holds dates: ignored (data.dates: ignore)")
                continue
            notes.append(f"column {name!r} holds dates: expanded to year, month, day, weekday, day of year")
        if likely_row_id(col):
            notes.append(f"column {name!r} looks like a row id (distinct integers in row order) but is used as a "
                         f"feature; set data.id: {name} or list it in data.ignore")
        typed[name] = col
    features = list(typed)
    if not features:
        raise DataError(f"{path}: no feature columns (only the target {target!r}"
                        f"{', the id' if id_name else ''}{' and ignored columns' if ignored else ''})")
    y_col = infer_kind(table.columns[target], table, data.decimal)
    if y_col.kind == "date":
        raise DataError(f"{path}: target column {target!r} holds dates; nnctl predicts classes or numbers")
    table.columns.update(typed)
    table.columns[target] = y_col
    file_columns = table.names
    table = table.select([*typed, target, *([id_name] if id_name is not None else [])])
    table, dropped = _missing(table, features, target, data)
    y_values = table.columns[target]
    ds = Dataset(None, np.empty(0), "auto", list(features), None, data.source, table.fingerprint,
                 target_name=target, table=table, feature_columns=features, id_name=id_name, notes=notes,
                 dropped=dropped, decimal=data.decimal)
    ds.file_columns = file_columns
    _target(ds, y_values, data.task, path)
    if dropped:
        ds.notes.insert(0, ", ".join(f"{n} row{'s' * (n != 1)} dropped ({why})" for why, n in dropped.items()))
    return ds


def _missing(table: Table, features: list[str], target: str, data: DataSpec) -> tuple[Table, dict]:
    """Apply data.missing: one error listing every column with missing values, or drop rows."""
    y_missing = table.columns[target].missing
    with_missing = {n: table.columns[n].missing for n in features if table.columns[n].has_missing()}
    if data.missing == "error" and (with_missing or y_missing.any()):
        parts = []
        for name, m in ([(target, y_missing)] if y_missing.any() else []) + list(with_missing.items()):
            first = int(np.flatnonzero(m)[0])
            what = "target " if name == target else ""
            parts.append(f"{what}{name!r}: {int(m.sum()):,} missing (first at {table.where(first)})")
        raise DataError(f"{table.path}: missing values in {len(parts)} column{'s' * (len(parts) != 1)}: "
                        f"{'; '.join(parts)}. Set data.missing: drop (drop those rows) or data.missing: impute "
                        f"(fill features from the training rows; rows without a target are dropped)")
    dropped: dict[str, int] = {}
    drop = y_missing.copy()
    if y_missing.any():
        dropped["missing target"] = int(y_missing.sum())
    if data.missing == "drop" and with_missing:
        any_missing = np.any(np.column_stack(list(with_missing.values())), axis=1) & ~y_missing
        if any_missing.any():
            dropped["missing values"] = int(any_missing.sum())
        drop |= any_missing
    if y_missing.all():
        raise DataError(f"{table.path}: the target column {target!r} has no value in any row")
    if drop.any():
        table = table.take(np.flatnonzero(~drop))
        if table.n_rows == 0:
            raise DataError(f"{table.path}: every row has a missing value; data.missing: impute keeps them")
    return table, dropped


def _target(ds: Dataset, col: RawColumn, task: str, path: Path) -> None:
    """Set ds.y, ds.task, ds.class_names and the reason for the task."""
    name = ds.target_name
    if col.kind == "text":
        if task == "regression":
            shown = ", ".join(excerpt(v) for v in col.levels[:3])
            raise DataError(f"{path}: target column {name!r} holds text ({shown}, ...), but data.task is regression")
        labels, codes = _distinct_codes(col.values)
        ds.class_names = [col.levels[k] for k in labels]
        ds.y = codes
        ds.task = "classification"
        ds.task_reason = f"{len(labels)} text labels in {name!r}"
    else:
        y = col.values.astype(np.float64, copy=False)
        distinct, inverse, counts = _distinct_numbers(y)
        integral = bool(np.all(np.mod(distinct, 1) == 0))
        if task == "auto":
            if integral and (len(distinct) == 2 or (len(distinct) <= MAX_AUTO_CLASSES
                                                    and counts.min() >= MIN_AUTO_CLASS_ROWS)):
                task = "classification"
                ds.task_reason = (f"{len(distinct)} integer values in {name!r} "
                                  f"({', '.join(fmt_number(v) for v in distinct[:6])}{', ...' * (len(distinct) > 6)})"
                                  f"; set data.task: regression to predict them as numbers")
            else:
                task = "regression"
                ds.task_reason = f"{len(distinct):,} distinct numbers in {name!r}"
                if integral and len(distinct) <= 50:
                    ds.task_reason += (" (too many values, or too few rows of some, to guess classes; set "
                                       "data.task: classification to treat them as classes)")
        elif task == "classification" and not integral:
            raise DataError(f"{path}: data.task is classification, but target column {name!r} holds fractional "
                            f"numbers ({fmt_number(distinct[~(np.mod(distinct, 1) == 0)][0])}); use regression")
        else:
            ds.task_reason = "data.task says so"
        ds.task = task
        if task == "classification":
            ds.class_names = [fmt_number(v) for v in distinct]
            ds.y = inverse.astype(np.int64, copy=False)
        else:
            ds.y = y
    if ds.task == "classification" and ds.n_classes < 2 or ds.task == "regression" and np.all(ds.y == ds.y[0]):
        only = ds.class_names[0] if ds.class_names else fmt_number(ds.y[0])
        what = "; classification needs at least 2 classes" if ds.task == "classification" else ""
        raise DataError(f"{path}: target column {name!r} has the same value ({only}) in every row: nothing to "
                        f"learn{what}")


def _distinct_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(codes, return_inverse=True) of text codes (small non-negative integers), by counting
    instead of sorting: the codes in use, ascending, and each row's index into them (int64)."""
    if len(codes) == 0 or codes.min() < 0:
        labels, inverse = np.unique(codes, return_inverse=True)
        return labels, inverse.astype(np.int64)
    used = np.flatnonzero(np.bincount(codes))
    index = np.zeros(used[-1] + 1, dtype=np.int64)
    index[used] = np.arange(len(used))
    return used, index[codes]


SPAN = 1 << 16  # integer targets whose values span less than this are counted (np.unique sorts)


def _distinct_numbers(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(y, return_inverse=True, return_counts=True) of a float64 target, without NaN. A
    target of integers spanning fewer than SPAN values (class labels) is counted, not sorted."""
    if len(y):
        lo, hi = y.min(), y.max()
        if hi - lo < SPAN and np.all(np.mod(y[:256], 1) == 0) and np.all(np.mod(y, 1) == 0):
            offsets = (y - lo).astype(np.int64)
            counts = np.bincount(offsets)
            used = np.flatnonzero(counts)
            index = np.zeros(len(counts), dtype=np.int64)
            index[used] = np.arange(len(used))
            return used + lo, index[offsets], counts[used]
    return np.unique(y, return_inverse=True, return_counts=True)  # one sort


# ------------------------------------------------------------------------------------ new rows
class InputRows:
    """Rows of an eval/predict input file encoded as the run's training data was."""

    def __init__(self, table: Table, X: np.ndarray, y: np.ndarray | None, rows: np.ndarray, notes: list[str]):
        self.table, self.X, self.y, self.rows, self.notes = table, X, y, rows, notes


def encode_input(path: Path, data: DataSpec, columns: list[dict], target_name: str | None,
                 class_names: list[str] | None, need_target: bool, id_name: str | None = None,
                 file_columns: list[str] | None = None, rows=None) -> InputRows:
    """Read `path` with the run's reading options and encode it with the run's fitted `columns`.

    Missing values follow the run's data.missing (error lists them, drop drops the rows, impute fills
    them); unknown categorical levels follow data.categorical.unknown and are counted in the notes.
    Columns the model does not use are ignored, with a note. `rows` are the input rows kept."""
    from nnctl.data.columns import encoding_from_json

    path = Path(path)
    # rows: an Arrow table in memory (the Python API), named `path` in messages
    table = read_data_file(path, data) if rows is None else memory_table(rows, data.replace(source=str(path)))
    if table.n_rows == 0:
        raise DataError(f"{path}: no data rows" + (" after the header" if data.header else ""))
    if (not data.header and file_columns and target_name in file_columns and len(table.names) == len(file_columns) - 1
            and set(file_columns) == {e["name"] for e in columns} | {target_name}):
        # no header and one column fewer than training, which had only features and the target: the
        # columns are the training file's without the target (with an id or ignored columns in
        # training, which one is absent would be a guess: the column check below names what is missing)
        table = table.renamed([n for n in file_columns if n != target_name])
    enc = encoding_from_json(columns, data.decimal)
    needed = [e.name for e in enc.encoders]
    absent = [n for n in needed if n not in table.columns]
    if absent:
        raise DataError(f"{path}: missing column{'s' * (len(absent) > 1)} {', '.join(repr(m) for m in absent)} "
                        f"(the model uses: {', '.join(needed)})")
    notes = []
    extra = [n for n in table.names if n not in needed and n != target_name and n != id_name]
    if extra:
        notes.append(f"column{'s' * (len(extra) > 1)} not used by the model, ignored: "
                     f"{', '.join(repr(e) for e in extra[:10])}{' ...' if len(extra) > 10 else ''}")
    keep = np.ones(table.n_rows, dtype=bool)
    y_col = None
    if need_target:
        if not target_name or target_name not in table.columns:
            raise DataError(f"{path}: no target column {target_name!r}; evaluation needs the true values")
        y_col = table.columns[target_name]
        if y_col.missing.any():
            notes.append(f"{int(y_col.missing.sum())} row{'s' * (int(y_col.missing.sum()) != 1)} without a target "
                         f"value skipped")
            keep &= ~y_col.missing
    miss = {e.name: table.columns[e.name].missing for e in enc.encoders if e.fill is None}  # nothing to fill with
    with_missing = {n: m & keep for n, m in miss.items() if (m & keep).any()}
    if with_missing and data.missing == "drop":
        dropped = np.any(np.column_stack(list(with_missing.values())), axis=1)
        notes.append(f"{int(dropped.sum())} row{'s' * (int(dropped.sum()) != 1)} with missing values skipped "
                     f"(data.missing: drop)")
        keep &= ~dropped
    elif with_missing:
        parts = [f"{n!r}: {int(m.sum()):,} missing (first at {table.where(int(np.flatnonzero(m)[0]))})"
                 for n, m in with_missing.items()]
        raise DataError(f"{path}: missing values in {'; '.join(parts)}; the run was trained with data.missing: "
                        f"{data.missing}, which has no value to fill them with")
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DataError(f"{path}: no row left to use (every row has a missing value)")
    sub = table.take(rows) if len(rows) < table.n_rows else table
    report: dict = {}
    X = enc.transform(sub, np.float64, report)
    for name, info in report.get("unknown_levels", {}).items():
        notes.append(f"column {name!r}: {info['rows']} row{'s' * (info['rows'] != 1)} with a value not seen in "
                     f"training, encoded as all zeros: {', '.join(repr(v) for v in info['levels'])}")
    y = _input_target(sub, sub.columns[target_name], class_names) if y_col is not None else None
    return InputRows(table, X, y, rows, notes)


def _input_target(table: Table, col: RawColumn, class_names: list[str] | None) -> np.ndarray:
    name = col.name
    if class_names is not None:
        index = {c: k for k, c in enumerate(class_names)}
        if col.kind == "number":
            labels = [fmt_number(v) for v in col.values]
        elif col.kind == "text":
            labels = [col.levels[c] for c in col.values]
        else:
            raise DataError(f"{table.path}, column {name!r}: expected class labels ({', '.join(class_names)})")
        y = np.empty(len(labels), dtype=np.int64)
        for r, label in enumerate(labels):
            if label not in index:
                raise DataError(f"{table.path}, {table.where(r)}, column {name!r}: label {excerpt(label)} is not "
                                f"one of the trained classes ({', '.join(class_names)})")
            y[r] = index[label]
        return y
    from nnctl.data.columns import as_numbers

    num = as_numbers(col)
    if num is None:
        infer_kind(col, table)
        raise DataError(f"{table.path}, column {name!r}: expected numbers (the target of a regression)")
    return num.values.astype(np.float64)
