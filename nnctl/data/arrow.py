"""Arrow tables into nnctl's raw columns: numbers copied into one C-ordered matrix batch by batch,
text as integer codes into its distinct values, dates as datetime64.

Conversion goes through the arrays' buffers: pyarrow's own to_numpy, and any pyarrow call given a
Python value, import pandas when it is installed (0.2 s and 80 MB on every load), and nnctl does
not need it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.table import RawColumn, Table, populated_empty
from nnctl.errors import DataError

ROOM_MAX = 64  # at most this many spare columns (or twice the numeric ones) are kept for the encoding


def from_arrow(holder: list, path: Path, number_dtype, exact=(), parquet: bool = False,
               na: frozenset = frozenset(), encoded: set = frozenset(), room: bool = False) -> Table:
    """The Arrow table in `holder` (taken out of it) as a Table. Numeric columns are copied into ONE
    C-ordered matrix of `number_dtype`, one record batch at a time, each batch released once
    copied: a large numeric file needs about one copy of its numbers, not two, and the numeric
    features are a view of that matrix. Columns named in `exact` (the target) stay float64, apart.
    `encoded`: string columns the reader returned dictionary-encoded (unused values are dropped).

    With `room` (training, which encodes every row next), when every other feature column comes
    after the numeric ones (numbers, then a few text or date columns) and no number is missing, the
    matrix is the left part of a wider one with room for their usual encoding (one column per
    level, five per date): `Encoding.transform` then writes those beside the numbers instead of
    copying every number into a new matrix (`Table.matrix_room`). The room is memory whether used
    or not (every row's numbers touch its pages), so it is not made where it would not be used:
    for eval and predict, or with missing numbers (imputed or dropped rows are encoded apart)."""
    tb = holder.pop()
    names = [str(n) for n in tb.column_names]
    numeric = [n for n, c in zip(names, tb.columns) if is_number_type(c.type) and n not in set(exact)]
    integral = {n for n, c in zip(names, tb.columns) if n in numeric and _is_integer(c.type)}
    others = {n: c for n, c in zip(names, tb.columns) if n not in set(numeric)}
    n_rows = tb.num_rows
    room = room and not any(tb.column(n).null_count for n in numeric)
    batches = tb.select(numeric).to_batches() if numeric else []
    del tb

    def taken():  # each batch let go of once copied
        for i in range(len(batches)):
            batch, batches[i] = batches[i], None
            yield batch

    return _assemble(path, names, numeric, integral, others, n_rows, taken(), number_dtype, exact, parquet, na,
                     encoded, room)


def from_parquet(pf, path: Path, number_dtype, exact=(), encoded: set = frozenset(), room: bool = False,
                 batch_rows: int = 1 << 16) -> Table:
    """An open pyarrow ParquetFile as a Table, as from_arrow makes it from the whole table, without
    ever holding the whole table: the columns that are not numbers (text as dictionaries, dates,
    the `exact` target) are read first, then the numeric ones `batch_rows` rows at a time, each
    batch copied into the matrix as it comes. The numbers then exist about once (from_arrow holds
    Arrow's table beside the matrix), and no large Arrow buffer is allocated and faulted in only
    to be copied. The room (see from_arrow) needs every numeric column free of nulls, known from
    the file's statistics before the first batch; without them there is no room (same result,
    the encoding then writes a new matrix)."""
    schema = pf.schema_arrow
    names = [str(n) for n in schema.names]
    numeric = [f.name for f in schema if is_number_type(f.type) and f.name not in set(exact)]
    integral = {f.name for f in schema if f.name in numeric and _is_integer(f.type)}
    rest = [n for n in names if n not in set(numeric)]
    n_rows = pf.metadata.num_rows
    if n_rows < 0:
        raise DataError(f"{path}: damaged file (its footer says {n_rows} rows)")
    rest_tb = pf.read(columns=rest, use_pandas_metadata=False) if rest else None
    others = {n: rest_tb.column(n) for n in rest}
    del rest_tb
    for n, c in others.items():  # the footer's row count against the data (the numbers are counted as copied)
        if len(c) != n_rows:
            raise DataError(f"{path}: damaged file (column {n!r} holds {len(c)} rows where its footer says {n_rows})")
    room = room and _no_nulls(pf.metadata, numeric)
    batches = pf.iter_batches(batch_size=batch_rows, columns=numeric, use_threads=True, use_pandas_metadata=False)
    return _assemble(path, names, numeric, integral, others, n_rows, batches, number_dtype, exact, True,
                     frozenset(), encoded, room)


def _no_nulls(metadata, columns: list[str]) -> bool:
    """Whether the Parquet statistics say that none of `columns` holds a null (False if unknown)."""
    wanted = set(columns)
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.path_in_schema not in wanted:
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_null_count or stats.null_count:
                return False
    return True


def _is_integer(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t)


def _assemble(path: Path, names: list[str], numeric: list[str], integral: set, others: dict, n_rows: int,
              batches, number_dtype, exact, parquet: bool, na: frozenset, encoded: set, room: bool) -> Table:
    """The Table from_arrow and from_parquet make: `others` (Arrow columns) as raw columns, and the
    record `batches` of the numeric columns (in row order) copied into one matrix."""
    import pyarrow as pa

    others = {n: to_raw(n, c, path, na, n in encoded) for n, c in others.items()}  # float64: an `exact` column
    room = _room(names, numeric, others, set(exact)) if room else 0
    full = populated_empty((n_rows, len(numeric) + room), number_dtype)
    M = full[:, :len(numeric)]
    stats = _Stats(len(numeric))
    at = 0
    for batch in batches if numeric else ():
        # by name: a reader asked for column "a" may also return "a.b" (a nested path's prefix)
        _copy_rows(M[at:at + batch.num_rows], [_numbers(batch.column(n)) for n in numeric], stats)
        at += batch.num_rows
        del batch
    if numeric and at != n_rows:
        raise DataError(f"{path}: damaged file ({at} rows of numbers where its footer says {n_rows})")
    pa.default_memory_pool().release_unused()
    table = _matrix_table(path, names, M, numeric, others, parquet, stats)
    table.integral = integral
    if room:
        table.matrix_room = full
    return table


def _room(names: list[str], numeric: list[str], others: dict[str, RawColumn], exact: set) -> int:
    """Spare matrix columns for the features after the numeric ones: their usual encoded width (one
    column per text level, five per date), if they all follow the numbers and are few (else 0)."""
    after = [n for n in names if n in others and n not in exact]
    if not numeric or not after or min(names.index(n) for n in after) < max(names.index(n) for n in numeric):
        return 0
    width = 0
    for n in after:
        c = others[n]
        width += {"text": len(c.levels or []), "date": 5, "number": 1, "empty": 1}.get(c.kind, 0)
    return width if width <= max(ROOM_MAX, 2 * len(numeric)) else 0


class _Stats:
    """Per matrix column, while it is filled: any NaN, and the least and greatest value (NaN ignored;
    +inf / -inf when a column has none)."""

    def __init__(self, k: int):
        self.any_nan = np.zeros(k, dtype=bool)
        self.lo, self.hi = np.full(k, np.inf), np.full(k, -np.inf)

    def add(self, T: np.ndarray) -> None:
        """Add the values of T, (columns, rows): each column's values contiguous."""
        if T.shape[1] == 0:
            return
        lo, hi = T.min(axis=1), T.max(axis=1)
        nan = np.isnan(lo)  # (min and max propagate NaN)
        if nan.any():
            import warnings

            self.any_nan |= nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: "All-NaN slice"
                lo[nan], hi[nan] = np.nanmin(T[nan], axis=1), np.nanmax(T[nan], axis=1)
        self.lo, self.hi = np.fmin(self.lo, lo), np.fmax(self.hi, hi)


ROWS = 8192  # rows per block when columns are copied into the row-major matrix


def _copy_rows(out: np.ndarray, values: list[np.ndarray], stats: _Stats) -> None:
    """out[:, j] = values[j] (converted to out's dtype), a block of rows at a time: each column is
    converted into a contiguous row of a small (columns, rows) buffer, which is then copied
    transposed into the block (2.5x faster than a strided, converting write per column), and the
    buffer's statistics counted while it is in cache."""
    k = len(values)
    T = np.empty((k, min(ROWS, len(out))), dtype=out.dtype)
    for start in range(0, len(out), ROWS):
        stop = min(start + ROWS, len(out))
        t = T[:, :stop - start]
        for j, v in enumerate(values):
            t[j] = v[start:stop]
        stats.add(t)
        out[start:stop] = t.T


def _matrix_table(path: Path, names: list[str], M: np.ndarray, numeric: list[str], others: dict[str, RawColumn],
                  parquet: bool = False, stats: _Stats | None = None) -> Table:
    """A Table whose numeric columns are the columns of M (views) and whose others are given.
    `stats`: M's statistics, counted while it was filled (else measured here)."""
    if stats is None:
        stats = _Stats(len(numeric))
        for start in range(0, len(M), ROWS):
            stats.add(np.ascontiguousarray(M[start:start + ROWS].T))
    columns = {}
    for name in names:
        if name in others:
            columns[name] = others[name]
        else:
            j = numeric.index(name)
            columns[name] = RawColumn(name, "number", M[:, j], None, bool(stats.any_nan[j]),
                                      bool(np.isfinite(stats.lo[j]) and np.isfinite(stats.hi[j])) or None)
    table = Table(path, columns, len(M), "", parquet)
    table.matrix, table.matrix_columns, table.matrix_range = M, numeric, (stats.lo, stats.hi)
    return table


def _values(arr, dtype) -> np.ndarray:
    """The data buffer of a fixed-width Arrow array as NumPy (a view)."""
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=arr.offset + len(arr))[arr.offset:]


def _valid(arr) -> np.ndarray | None:
    """True where the array has a value; None if it has no nulls."""
    if arr.null_count == 0:
        return None
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")[arr.offset:].astype(bool)


def _numbers(arr) -> np.ndarray:
    """A numeric Arrow array (ints, floats, decimals, booleans) as NumPy floats, NaN for nulls.
    Integers and floats are read from their buffers (Arrow's cast imports pyarrow.compute: 35 ms)."""
    import pyarrow as pa

    t = arr.type
    if pa.types.is_floating(t) and t.bit_width in (32, 64):
        v = _values(arr, np.float32 if t.bit_width == 32 else np.float64)
    elif pa.types.is_integer(t):
        v = _values(arr, np.dtype(f"{'i' if pa.types.is_signed_integer(t) else 'u'}{t.bit_width // 8}"))
        v = v.astype(np.float64)
    else:  # decimals, booleans, half floats
        arr = arr.cast(pa.float64())
        v = _values(arr, np.float64)
    valid = _valid(arr)
    return v if valid is None else np.where(valid, v, np.nan).astype(v.dtype)


_UNITS = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}


def _to_numpy(col, dtype) -> np.ndarray:
    """A ChunkedArray of numbers (-> dtype, NaN for nulls) or dates/timestamps (-> datetime64[s], NaT)."""
    import pyarrow as pa

    chunks = []
    for c in col.chunks:
        if np.dtype(dtype).kind == "M":
            t = c.type
            if pa.types.is_date32(t):
                v = _values(c, np.int32).astype("datetime64[D]")
            elif pa.types.is_timestamp(t) and t.unit in _UNITS:
                v = _values(c, np.int64).view(f"datetime64[{t.unit}]")
            else:  # date64 and anything else: Arrow converts
                c = c.cast(pa.timestamp("s"))
                v = _values(c, np.int64).view("datetime64[s]")
            v = v.astype("datetime64[s]")
            valid = _valid(c)
            chunks.append(v if valid is None else np.where(valid, v, np.datetime64("NaT")))
        else:
            chunks.append(_numbers(c).astype(dtype, copy=False))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)


def _codes(indices) -> np.ndarray:
    """Dictionary indices as signed integers, -1 for nulls (a view when signed and none is null).
    Unsigned indices (a DataFrame's uint8 codes: up to 255 levels) are widened to int64 first: read
    as signed, code 200 would be -56."""
    import pyarrow as pa

    width = indices.type.bit_width // 8
    if pa.types.is_unsigned_integer(indices.type):
        v = _values(indices, np.dtype(f"u{width}")).astype(np.int64)
    else:
        v = _values(indices, np.dtype(f"i{width}"))
    valid = _valid(indices)
    return v if valid is None else np.where(valid, v, np.array(-1, dtype=v.dtype))


def is_number_type(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def to_raw(name: str, col, path: Path, na: frozenset = frozenset(), used_only: bool = False) -> RawColumn:
    """An Arrow column as a RawColumn (strings stripped; a stripped value in `na` is missing).
    Types nnctl cannot use (lists, structs, ...) become kind 'unsupported', an error only if used.
    used_only: a dictionary's values that no row uses are not levels (as if the column had been
    read as strings and encoded here)."""
    import pyarrow as pa

    t = col.type
    if pa.types.is_dictionary(t) and (pa.types.is_binary(t.value_type) or pa.types.is_large_binary(t.value_type)):
        col, t = col.cast(t.value_type), t.value_type  # bytes that are not UTF-8, dictionary-encoded
    if pa.types.is_null(t):
        return RawColumn(name, "empty", np.full(len(col), np.nan))
    if pa.types.is_boolean(t):  # the levels False and True, as a CSV written by pandas spells them
        values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
        codes = np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
        return text_column(name, codes, ["False", "True"])
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = _to_numpy(col, np.float64)
        return RawColumn(name, "number", np.asarray(values, dtype=np.float64))
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            col = col.cast(pa.timestamp("s", tz=t.tz)).cast(pa.timestamp("s"))
        values = _to_numpy(col, "datetime64[s]")
        return RawColumn(name, "date", values.astype("datetime64[s]"))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):  # Arrow's answer to bytes that are not UTF-8
        def not_utf8(v: bytes | None) -> bool:
            try:
                v is None or v.decode("utf-8")
                return False
            except UnicodeDecodeError:
                return True

        return RawColumn(name, "binary", np.array([not_utf8(v) for v in col.to_pylist()], dtype=bool))
    if not (pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        return RawColumn(name, "unsupported", np.zeros(len(col), dtype=bool), [str(t)])
    if not pa.types.is_dictionary(t):
        col = col.dictionary_encode()
    col = col.unify_dictionaries() if isinstance(col, pa.ChunkedArray) else col
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not chunks:
        return RawColumn(name, "empty", np.zeros(0))
    dictionary = chunks[0].dictionary.to_pylist()
    codes = [_codes(c.indices) for c in chunks]
    return text_column(name, codes[0] if len(codes) == 1 else np.concatenate(codes), dictionary, na, used_only)


def text_column(name: str, codes: np.ndarray, dictionary: list, na: frozenset = frozenset(),
                used_only: bool = False) -> RawColumn:
    """A text RawColumn from codes into `dictionary` (integers, -1: missing): values stripped, equal
    ones merged; blank or a missing-value marker once stripped (' NA') = missing. used_only: values
    no row has are not levels."""
    stripped = [str(v).strip() for v in dictionary]
    stripped = ["" if v in na else v for v in stripped]
    levels = sorted(set(s for s in stripped if s))
    index = {s: k for k, s in enumerate(levels)}
    remap = np.array([index.get(s, -1) for s in stripped] + [-1], dtype=np.int64)  # [-1]: code -1 stays missing
    values = remap[codes]
    if used_only and levels:
        seen = values if len(values) and values.min() >= 0 else values[values >= 0]
        used = np.bincount(seen, minlength=len(levels)) > 0
        if not used.all():
            levels = [lv for lv, u in zip(levels, used) if u]
            values = np.append(np.cumsum(used) - 1, -1)[values]
    return RawColumn(name, "text", values, levels)
