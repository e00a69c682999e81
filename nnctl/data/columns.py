"""Columns: what each one is (numeric, categorical, date), missing values, and the encoding that
turns raw columns into the feature matrix, fitted on the training rows only.

`infer_kind` decides a column's kind from its raw values (a text column whose values are all
numbers is numeric; a mostly-numeric one with stray text is an error naming the line). `fit_encoders`
learns, from the training rows, the levels of each categorical column, the fill value of each
column with missing values and which date parts to expand. An `Encoding` is stored in
preprocess.npz as JSON and applied unchanged to val/test rows and to `eval`/`predict` input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from nnctl.data.table import RawColumn, Table, excerpt, populated_empty
from nnctl.errors import DataError

DATE_PARTS = ("year", "month", "day", "weekday", "dayofyear")
OTHER = "(other)"
MISSING_LEVEL = "(missing)"
ONE_HOT_TABLE = 256  # up to this many levels, one-hot rows are copied from a table (faster than scattered 1s)
_ISO_DATE = re.compile(r"^\d{4}([-/])\d{2}\1\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def to_float(cell: str, decimal: str = ".") -> float | None:
    """A finite number written in `cell`, or None."""
    if decimal == ",":
        if "." in cell:
            return None
        cell = cell.replace(",", ".")
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


# ------------------------------------------------------------------------------------ kinds
def as_numbers(col: RawColumn, decimal: str = ".") -> RawColumn | None:
    """A text column whose every value is a number, as a number column (else None)."""
    if col.kind == "number" or col.kind == "empty":
        return col
    if col.kind != "text":
        return None
    values = [to_float(v, decimal) for v in col.levels]
    if any(v is None for v in values):
        return None
    lookup = np.array([*values, np.nan])  # code -1 -> NaN
    return RawColumn(col.name, "number", lookup[col.values])


def as_dates(col: RawColumn) -> RawColumn | None:
    """A text column whose every value is an ISO date (or date-time), as a date column (else None)."""
    if col.kind == "date":
        return col
    if col.kind != "text" or not col.levels or not all(_ISO_DATE.match(v) for v in col.levels):
        return None
    try:
        parsed = np.array([np.datetime64(v[:19].replace(" ", "T").replace("/", "-"), "s") for v in col.levels]
                          + [np.datetime64("NaT")],
                          dtype="datetime64[s]")
    except ValueError:
        return None
    return RawColumn(col.name, "date", parsed[col.values])


def infer_kind(col: RawColumn, table: Table, decimal: str = ".") -> RawColumn:
    """The column as number, date or text; DataError for a mostly-numeric column with stray text, an
    infinite number, or values of a type nnctl cannot use (lists, structs)."""
    if col.kind == "unsupported":
        raise DataError(f"{table.path}, column {col.name!r}: {col.levels[0]} values; nnctl reads numbers, text and "
                        f"dates: list it in data.ignore")
    if col.kind == "number" and col.maybe_infinite():
        inf = np.isinf(col.values)
        if inf.any():
            row = int(np.flatnonzero(inf)[0])
            raise DataError(f"{table.path}, {table.where(row)}, column {col.name!r}: expected a finite number, found "
                            f"{col.values[row]}; fix the value or list it in data.na_values")
    if col.kind != "text":
        return col
    numeric = as_numbers(col, decimal)
    if numeric is not None:
        return numeric
    dates = as_dates(col)
    if dates is not None:
        return dates
    if decimal == "." and as_numbers(col, ",") is not None:
        row = int(np.flatnonzero(col.values >= 0)[0])
        raise DataError(f"{table.path}, {table.where(row)}, column {col.name!r}: expected a number, found "
                        f"{excerpt(col.levels[col.values[row]])}; numbers with a decimal comma need "
                        f"data.decimal: ','")
    is_num = np.array([to_float(v, decimal) is not None for v in col.levels] + [False])
    present = col.values >= 0
    n_num = int(np.count_nonzero(is_num[col.values] & present))
    if n_num * 2 > int(np.count_nonzero(present)):  # mostly numbers: the text cells are junk, not categories
        row = int(np.flatnonzero(~is_num[col.values] & present)[0])
        cell = col.levels[col.values[row]]
        hint = ""
        if decimal == "." and re.fullmatch(r"[+-]?\d+,\d+", cell):
            hint = "; numbers with a decimal comma need data.decimal: ','"
        else:
            hint = f"; if {excerpt(cell)} means missing, list it in data.na_values"
        raise DataError(f"{table.path}, {table.where(row)}, column {col.name!r}: expected a number, found "
                        f"{excerpt(cell)}{hint}")
    return col


def likely_row_id(col: RawColumn) -> bool:
    """All distinct integers in row order (0, 1, 2, ... or any strictly increasing integers)."""
    v = col.values
    if col.kind != "number" or len(v) < 10 or col.has_missing():
        return False
    head = v[:256]  # most columns fail on their first rows: no pass over the whole column
    if not (np.all(np.mod(head, 1) == 0) and np.all(np.diff(head) > 0)):
        return False
    return bool(np.all(np.mod(v, 1) == 0) and np.all(np.diff(v) > 0))


# ------------------------------------------------------------------------------------ encoders
@dataclass
class ColumnEncoder:
    """How one input column becomes feature columns; fitted on the training rows."""

    name: str
    kind: str  # numeric | categorical | date
    fill: float | str | list | None = None  # numeric: a number; categorical: a level; date: one per part
    indicator: bool = False  # one more 0/1 column: the value was missing
    levels: list[str] = field(default_factory=list)  # categorical: one column each, sorted
    other: list[str] = field(default_factory=list)  # categorical: rare training levels, sharing "(other)"
    unknown: str = "ignore"  # categorical: a level not seen in training -> all zeros (ignore) or error

    @property
    def width(self) -> int:
        base = {"numeric": 1, "date": len(DATE_PARTS)}.get(self.kind)
        if base is None:
            base = len(self.levels) + bool(self.other)
        return base + self.indicator

    def feature_names(self) -> list[str]:
        if self.kind == "numeric":
            out = [self.name]
        elif self.kind == "date":
            out = [f"{self.name}.{p}" for p in DATE_PARTS]
        else:
            out = [f"{self.name}={lv}" for lv in self.levels] + ([f"{self.name}={OTHER}"] if self.other else [])
        return out + ([f"{self.name}.missing"] if self.indicator else [])

    def to_json(self) -> dict:
        out: dict = {"name": self.name, "kind": self.kind}
        if self.fill is not None:
            out["fill"] = self.fill
        if self.indicator:
            out["indicator"] = True
        if self.kind == "categorical":
            out.update(categories=self.levels, other=self.other, unknown=self.unknown)
        return out

    @classmethod
    def from_json(cls, d: dict) -> ColumnEncoder:
        """From preprocess.npz's `columns`; runs of earlier versions (categories, no unknown) refuse unknowns."""
        kind, name, fill = d["kind"], d["name"], d.get("fill")
        if kind not in ("numeric", "categorical", "date") or not isinstance(name, str):
            raise ValueError(f"column {str(name)[:40]!r}: unknown kind {str(kind)[:40]!r}")
        levels, other = d.get("categories", []), d.get("other", [])
        if not (isinstance(levels, list) and isinstance(other, list)
                and all(isinstance(c, str) for c in levels + other)):
            raise ValueError(f"column {name[:40]!r}: categories are not a list of text")
        def number(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        if not (fill is None or isinstance(fill, str) or number(fill)
                or (isinstance(fill, list) and all(number(v) for v in fill))):  # a date's parts: a list
            raise ValueError(f"column {name[:40]!r}: the fill value {str(fill)[:40]!r} is not a number or text")
        unknown = d.get("unknown", "error")
        if unknown not in ("error", "ignore"):
            raise ValueError(f"column {name[:40]!r}: unknown-level policy {str(unknown)[:40]!r}")
        return cls(name, kind, fill, bool(d.get("indicator", False)), levels, other, unknown)

    # -------------------------------------------------------------------------------- encoding
    def encoder_for(self, col: RawColumn, report: dict, table: Table, decimal: str = "."):
        """A function (rows: slice, out: (rows, width) view) -> None writing this column's features.

        Everything that needs the whole column (typing, level lookup, date parts, the missing-value
        check, unknown levels) happens here, once; the function does the per-row work."""
        col = self._coerce(col, table, decimal)
        if self.kind == "numeric" and self.fill is None and not self.indicator and not col.has_missing():
            v = col.values
            return lambda rows, out: out.__setitem__((slice(None), 0), v[rows])  # the common case: a copy
        missing = col.missing
        if self.fill is None and not self.indicator and missing.any():  # drop/error policies leave none
            row = int(np.flatnonzero(missing)[0])
            raise DataError(f"{table.path}, {table.where(row)}, column {self.name!r}: missing value, and the model "
                            f"was trained without imputation for it (data.missing)")
        if self.kind == "numeric":
            v = col.values if self.fill is None else np.where(missing, self.fill, col.values)
            values = [v]
        elif self.kind == "date":
            parts = date_parts(col.values)
            if self.fill is not None:
                parts = np.where(missing[:, None], np.asarray(self.fill, dtype=np.float64), parts)
            values = [parts]
        else:
            values = [self._level_columns(col, report, table)]
        width = self.width - self.indicator
        rows_of = {}  # categorical, not too wide: row k of this table is the encoding of code k (-1: all 0)

        def write(rows: slice, out: np.ndarray) -> None:
            v = values[0][rows]
            if self.kind == "numeric":
                out[:, 0] = v
            elif self.kind == "date":
                out[:, :width] = v
            elif width <= ONE_HOT_TABLE:
                if out.dtype not in rows_of:
                    rows_of[out.dtype] = np.vstack([np.eye(width, dtype=out.dtype), np.zeros((1, width), out.dtype)])
                out[:, :width] = rows_of[out.dtype][v]
            else:
                out[:, :width] = 0
                hit = np.flatnonzero(v >= 0)
                out[hit, v[hit]] = 1
            if self.indicator:
                out[:, -1] = missing[rows]
        return write

    def _level_columns(self, col: RawColumn, report: dict, table: Table) -> np.ndarray:
        """Per row, the output column of its level (-1: none: an unknown level, or missing without a fill)."""
        index = {lv: k for k, lv in enumerate(self.levels)}
        other_col = len(self.levels) if self.other else -1
        other = set(self.other)
        targets = [index.get(lv, other_col if lv in other else -1) for lv in (col.levels or [])]
        unknown = [k for k, lv in enumerate(col.levels or []) if lv not in index and lv not in other]
        fill = -1
        if self.fill is not None:
            fill = index.get(self.fill, other_col if self.fill in other else -1)
        lookup = np.array([*targets, fill], dtype=np.int64)
        codes = lookup[col.values]
        if unknown:
            is_unknown = np.isin(col.values, unknown)
            n_unknown = int(np.count_nonzero(is_unknown))
            if n_unknown:
                if self.unknown == "error":
                    row = int(np.flatnonzero(is_unknown)[0])
                    cell = col.levels[col.values[row]]
                    raise DataError(f"{table.path}, {table.where(row)}, column {self.name!r}: level "
                                    f"{excerpt(cell)} was not seen in training (data.categorical.unknown is error); "
                                    f"known: {_few(self.levels)}")
                seen = sorted({col.levels[c] for c in np.unique(col.values[is_unknown])})
                report.setdefault("unknown_levels", {})[self.name] = {"rows": n_unknown, "levels": seen[:10]}
        return codes

    def _coerce(self, col: RawColumn, table: Table, decimal: str) -> RawColumn:
        """The raw column in the kind this encoder expects (input files may be typed differently)."""
        if self.kind == "numeric" and col.kind != "number":
            num = as_numbers(col, decimal)
            if num is None:
                if col.kind == "text":
                    bad = np.array([to_float(v, decimal) is None for v in col.levels] + [False])
                    row = int(np.flatnonzero(bad[col.values])[0])
                    raise DataError(f"{table.path}, {table.where(row)}, column {self.name!r}: expected a number "
                                    f"(as in training), found {excerpt(col.levels[col.values[row]])}")
                raise DataError(f"{table.path}, column {self.name!r}: expected numbers (as in training), found "
                                f"{_describe(col)}")
            return num
        if self.kind == "date" and col.kind != "date":
            d = as_dates(col) if col.kind == "text" else (col if col.kind == "empty" else None)
            if d is None:
                raise DataError(f"{table.path}, column {self.name!r}: expected dates (as in training), found "
                                f"{_describe(col)}")
            if d.kind == "empty":
                return RawColumn(d.name, "date", np.full(len(d.values), np.datetime64("NaT"), dtype="datetime64[s]"))
            return d
        if self.kind == "categorical" and col.kind != "text":
            if col.kind == "number":
                from nnctl.data.arrow import text_column

                v = col.values
                uniq, codes = np.unique(v[~np.isnan(v)], return_inverse=True)
                full = np.full(len(v), -1, dtype=np.int64)
                full[~np.isnan(v)] = codes
                return text_column(col.name, full, [fmt_number(x) for x in uniq])
            if col.kind == "empty":
                return RawColumn(col.name, "text", np.full(len(col.values), -1, dtype=np.int64), [])
            raise DataError(f"{table.path}, column {self.name!r}: expected text categories (as in training), found "
                            f"{_describe(col)}")
        return col


def _describe(col: RawColumn) -> str:
    return {"number": "numbers", "text": "text", "date": "dates", "empty": "no values"}.get(col.kind, col.kind)


def _few(items: list[str], n: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def date_parts(values: np.ndarray) -> np.ndarray:
    """(n, 5) float64: year, month, day, weekday (Monday 0), day of year (1-366); NaN for NaT."""
    days = values.astype("datetime64[D]")
    nat = np.isnat(days)
    safe = np.where(nat, np.datetime64("1970-01-01"), days)
    y = safe.astype("datetime64[Y]")
    m = safe.astype("datetime64[M]")
    out = np.empty((len(values), len(DATE_PARTS)))
    out[:, 0] = y.astype(np.int64) + 1970
    out[:, 1] = (m - y).astype(np.int64) + 1
    out[:, 2] = (safe - m).astype(np.int64) + 1
    out[:, 3] = (safe.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    out[:, 4] = (safe - y).astype(np.int64) + 1
    out[nat] = np.nan
    return out


@dataclass
class Encoding:
    """Every input column's encoder, in order: raw table -> feature matrix."""

    encoders: list[ColumnEncoder]
    decimal: str = "."

    @property
    def width(self) -> int:
        return sum(e.width for e in self.encoders)

    def feature_names(self) -> list[str]:
        return [n for e in self.encoders for n in e.feature_names()]

    def to_json(self) -> list[dict]:
        return [e.to_json() for e in self.encoders]

    def transform(self, table: Table, dtype=np.float64, report: dict | None = None,
                  chunk: int = 32768, fill_room: bool = False) -> np.ndarray:
        """The (n, width) feature matrix of every row of `table`, in `dtype`. Written a block of rows
        at a time (all columns of those rows), so the writes stay in cache.

        fill_room=True (the table is not used afterwards): when the first features are the table's
        numeric matrix, unchanged, and its `matrix_room` has room for the others, they are written
        there and the result is a view of it: the numbers are not copied (the table's other
        columns stay as they are; its matrix is part of the result)."""
        report = {} if report is None else report
        lead = self._room_lead(table, dtype) if fill_room else 0
        if lead:
            out = table.matrix_room[:, :self.width]
        else:
            out = populated_empty((table.n_rows, self.width), dtype)
        writers, at = [], sum(e.width for e in self.encoders[:lead])
        M, in_matrix = table.matrix, {n: j for j, n in enumerate(table.matrix_columns)}
        for e in self.encoders[lead:]:
            col = table.columns[e.name]
            j = in_matrix.get(e.name, -1)
            if (j >= 0 and e.kind == "numeric" and e.fill is None and not e.indicator and col.kind == "number"
                    and not col.has_missing() and writers and writers[-1][0] == "block"
                    and writers[-1][4] == j and writers[-1][2] == at):  # the next matrix column: one block copy
                _, a, _, j0, _ = writers.pop()
                writers.append(("block", a, at + 1, j0, j + 1))
            elif j >= 0 and e.kind == "numeric" and e.fill is None and not e.indicator and not col.has_missing():
                writers.append(("block", at, at + 1, j, j + 1))
            else:
                writers.append((e.encoder_for(col, report, table, self.decimal), at, at + e.width, 0, 0))
            at += e.width
        writers = [(w if w != "block" else (lambda rows, out, j0=j0, j1=j1: out.__setitem__(Ellipsis, M[rows, j0:j1])),
                    a, b) for w, a, b, j0, j1 in writers]
        for start in range(0, table.n_rows if writers else 0, chunk):
            rows = slice(start, min(start + chunk, table.n_rows))
            block = out[rows]
            for write, a, b in writers:
                write(rows, block[:, a:b])
        return out

    def _room_lead(self, table: Table, dtype) -> int:
        """How many leading encoders are the columns of the table's matrix as they are (numbers, none
        missing: a fill value changes nothing), in matrix order, if the matrix's room holds the whole
        encoding; else 0."""
        room, names = table.matrix_room, table.matrix_columns
        if room is None or room.dtype != np.dtype(dtype) or room.shape[0] != table.n_rows or not names \
                or room.shape[1] < self.width or [e.name for e in self.encoders[:len(names)]] != names:
            return 0
        for e in self.encoders[:len(names)]:
            col = table.columns[e.name]
            if (e.kind != "numeric" or e.indicator or col.kind != "number"
                    or col.has_missing() or not np.may_share_memory(col.values, room)):
                return 0
        return len(names)


def fit_encoders(table: Table, names: list[str], train: np.ndarray, missing: str, impute, categorical,
                 ) -> list[ColumnEncoder]:
    """Encoders for the feature columns `names` (already typed by infer_kind), fitted on rows `train`."""
    out = []
    for name in names:
        col = table.columns[name]
        use_fill = missing == "impute"
        if col.kind == "number" and not use_fill:  # nothing to learn from the rows
            out.append(ColumnEncoder(name, "numeric"))
            continue
        tr = col.values[train]
        miss = col.missing[train]
        indicator = use_fill and impute.indicator and bool(miss.any())
        if col.kind in ("number", "empty"):
            fill = None
            if use_fill:
                present = tr[~miss]
                if len(present) == 0:
                    raise DataError(f"{table.path}, column {name!r}: no value in any training row, so nothing to "
                                    f"impute from; add it to data.ignore")
                fill = {"median": float(np.median(present)), "mean": float(np.mean(present)),
                        "zero": 0.0}[impute.numeric]
            out.append(ColumnEncoder(name, "numeric", fill, indicator))
        elif col.kind == "date":
            fill = None
            if use_fill:
                parts = date_parts(tr[~miss])
                if len(parts) == 0:
                    raise DataError(f"{table.path}, column {name!r}: no date in any training row; add it to "
                                    f"data.ignore")
                fill = [float(v) for v in np.median(parts, axis=0)]
            out.append(ColumnEncoder(name, "date", fill, indicator))
        else:
            out.append(_fit_categorical(table, col, tr, miss, use_fill, impute, categorical, indicator))
    return out


def _fit_categorical(table, col, tr, miss, use_fill, impute, categorical, indicator) -> ColumnEncoder:
    counts = np.bincount(tr[~miss], minlength=len(col.levels))
    seen = np.flatnonzero(counts > 0)
    keep = [col.levels[k] for k in seen if counts[k] >= categorical.min_frequency]
    rare = [col.levels[k] for k in seen if counts[k] < categorical.min_frequency]
    if len(keep) > categorical.max_levels:
        raise DataError(
            f"{table.path}, column {col.name!r}: {len(keep):,} distinct values in the training rows, more than "
            f"data.categorical.max_levels ({categorical.max_levels}); an id or free text? Add it to data.ignore "
            f"or set data.id: {col.name}; or raise data.categorical.max_levels, or group rare values with "
            f"data.categorical.min_frequency")
    fill = None
    if use_fill:
        if impute.categorical == "missing":
            fill = MISSING_LEVEL
            if miss.any() and fill not in keep:
                keep = sorted([*keep, fill])
        elif len(seen):
            fill = col.levels[int(np.argmax(counts))]  # the most frequent (ties: the first in sorted order)
        else:
            raise DataError(f"{table.path}, column {col.name!r}: no value in any training row, so nothing to "
                            f"impute from; add it to data.ignore")
    return ColumnEncoder(col.name, "categorical", fill, indicator, keep, rare, categorical.unknown)


def encoding_from_json(items: list[dict], decimal: str = ".") -> Encoding:
    return Encoding([ColumnEncoder.from_json(d) for d in items], decimal)
