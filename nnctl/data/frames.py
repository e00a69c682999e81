"""Rows held in memory (a pandas DataFrame, a dict of columns, a 2-D array) as nnctl's raw Table.

The Python API and the scikit-learn estimators train and predict on in-memory rows. They go
through Arrow, exactly as a Parquet file does (`reading._read_parquet`): a column is numeric,
text (strings, with None/NaN missing), a date (datetime64) or unsupported, by its type. So rows
written to Parquet and read back give the same Table, and a run trained in memory can keep its
data as `data.parquet` in the run directory and be evaluated, resumed and re-trained from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nnctl.data.table import Table
from nnctl.errors import DataError

KINDS = "a pandas DataFrame, a dict of columns, or a 2-D array (rows x features)"


def is_frame(rows) -> bool:
    """A pandas DataFrame (without importing pandas)."""
    return type(rows).__module__.split(".")[0] == "pandas" and hasattr(rows, "columns") and hasattr(rows, "iloc")


def to_arrow(rows, names: list[str] | None = None, label: str = "rows"):
    """`rows` as a pyarrow Table with string column names. `names` names the columns of a 2-D array
    (default x0, x1, ...). DataError for anything that is not rows of numbers, strings or dates."""
    import pyarrow as pa

    if is_frame(rows):
        columns = [str(c) for c in rows.columns]
        _check_names(columns, label)
        arrays = []
        for name, key in zip(columns, rows.columns):
            series = rows[key]
            values = series.to_numpy() if not hasattr(series.dtype, "categories") else None
            if values is None:  # a pandas Categorical: its values as text
                values = np.asarray(series.astype(object))
            arrays.append(_column(values, name, label))
        return pa.table(arrays, names=columns)
    if isinstance(rows, Mapping):
        columns = [str(c) for c in rows]
        _check_names(columns, label)
        arrays = [_column(v, name, label) for name, v in zip(columns, rows.values())]
        lengths = {len(a) for a in arrays}
        if len(lengths) > 1:
            sizes = ", ".join(f"{n!r}: {len(a)}" for n, a in zip(columns, arrays))
            raise DataError(f"{label}: the columns have different lengths ({sizes})")
        return pa.table(arrays, names=columns)
    if hasattr(rows, "toarray") and hasattr(rows, "nnz"):
        raise DataError(f"{label}: a sparse matrix; nnctl takes dense rows ({KINDS}): use .toarray()")
    try:
        arr = np.asarray(rows)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{label}: cannot be read as rows ({str(exc)[:120]}); expected {KINDS}") from None
    if arr.ndim != 2:
        hint = ("; for one feature use .reshape(-1, 1), for one row .reshape(1, -1)" if arr.ndim == 1 else "")
        raise DataError(f"{label}: expected {KINDS}; got a {arr.ndim}-D array of shape {arr.shape}{hint}")
    if names is None:
        names = [f"x{j}" for j in range(arr.shape[1])]
    elif len(names) != arr.shape[1]:
        raise DataError(f"{label}: has {arr.shape[1]} column{'s' * (arr.shape[1] != 1)}, but the model takes "
                        f"{len(names)} ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}), in that order")
    _check_names(list(names), label)
    return pa.table([_column(arr[:, j], name, label) for j, name in enumerate(names)], names=list(names))


def _check_names(names: list[str], label: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise DataError(f"{label}: two columns are named {n!r}; column names must be unique")
        seen.add(n)


def _column(values, name: str, label: str):
    """One column as an Arrow array: numbers, strings (None/NaN = missing) or dates."""
    import pyarrow as pa

    v = np.asarray(values)
    if v.ndim != 1:
        raise DataError(f"{label}, column {name!r}: expected one value per row; got shape {v.shape}")
    kind = v.dtype.kind
    try:
        if kind in "biuf":
            return pa.array(np.ascontiguousarray(v))
        if kind == "M":
            return pa.array(v.astype("datetime64[s]") if v.dtype.name.endswith("[D]") else v)
        if kind in "US":
            return pa.array([None if s == "" else str(s) for s in v.astype(str)], type=pa.string())
        if kind == "O":
            cleaned = [None if _missing(x) else x for x in v.tolist()]
            if any(isinstance(x, str) for x in cleaned) and not all(isinstance(x, str) or x is None for x in cleaned):
                bad = next(x for x in cleaned if x is not None and not isinstance(x, str))
                raise DataError(f"{label}, column {name!r}: mixes text and {type(bad).__name__} values "
                                f"({bad!r}); make the column all numbers or all strings")
            return pa.array(cleaned)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
            ValueError) as exc:
        raise DataError(f"{label}, column {name!r}: cannot be used as numbers, strings or dates "
                        f"({str(exc).splitlines()[0][:120]})") from None
    raise DataError(f"{label}, column {name!r}: values of type {v.dtype} are not numbers, strings or dates")


def _missing(x) -> bool:
    if x is None:
        return True
    if isinstance(x, float) and x != x:  # NaN
        return True
    return type(x).__name__ in ("NAType", "NaTType")  # pandas.NA, pandas.NaT


def arrow_table(tb, label: str, dtype=np.float64, exact=()) -> Table:
    """An Arrow table as a Table, exactly as `reading.read_table` reads the same rows from Parquet:
    numbers in `dtype` (float64 for the columns in `exact`, and for those float32 cannot resolve)."""
    from nnctl.data.arrow import from_arrow
    from nnctl.data.reading import coarse_columns

    path = Path(label)
    table = from_arrow([tb], path, dtype, set(exact), parquet=True)
    if table.matrix is not None and table.matrix.dtype == np.float32:
        coarse = coarse_columns(table)
        if coarse:
            table = from_arrow([tb], path, dtype, set(exact) | set(coarse), parquet=True)
            table.coarse = set(coarse)
    for c in table.columns.values():
        if c.kind == "binary":
            raise DataError(f"{label}, column {c.name!r}: bytes values; nnctl reads numbers, strings and dates")
    return table


def parquet_bytes(tb) -> bytes:
    """The Arrow table as a Parquet file's bytes (kept in a run directory as data.parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(tb.replace_schema_metadata(None), sink)
    return sink.getvalue().to_pybytes()
