"""Reading data files into a `Table` of raw columns: CSV-like text (any delimiter, decimal comma,
quotes, BOM, CRLF, header or not, compressed) and Parquet, parsed by Apache Arrow.

Arrow's CSV reader is multi-threaded C++ and as fast as pandas' C parser (benchmarks/csv_memory.py
measures both side by side); it also infers numbers, dates and strings and reads Parquet. What
this module adds: the delimiter sniffed, runs of spaces as a delimiter, xz and zip archives,
messages that name the file, line and column, and the conversion of Arrow columns into NumPy
(`RawColumn`): numbers as float64 with NaN for missing, strings as integer codes into their
distinct values, dates as datetime64.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.textformat import (
    UNIT_SEP,
    WHITESPACE,
    first_ragged_line,
    is_parquet,
    row_lines,
    sample,
    sniff_delimiter,
    source,
    text_lines,
)
from nnctl.errors import DataError

AUTO_NA = ["", "NA", "N/A", "NaN", "nan", "null", "None", "?", "-", "na", "n/a", "NULL", "NAN", "none"]


@dataclass
class RawColumn:
    """One column as read, before any role or encoding: number, text, date or empty (all missing)."""

    name: str
    kind: str  # number | text | date | empty
    values: np.ndarray  # number: float64, NaN = missing; text: int64 codes, -1 = missing; date: datetime64[s]
    levels: list[str] | None = None  # text: the distinct (stripped) strings, code k -> levels[k]
    _any_nan: bool | None = field(default=None, repr=False, compare=False)

    def has_missing(self) -> bool:
        if self.kind == "number":
            if self._any_nan is None:
                self._any_nan = bool(np.isnan(self.values).any())
            return self._any_nan
        return bool(self.missing.any())

    @property
    def missing(self) -> np.ndarray:
        if self.kind == "number":
            return np.isnan(self.values)
        if self.kind == "text":
            return self.values < 0
        if self.kind == "date":
            return np.isnat(self.values)
        return np.ones(len(self.values), dtype=bool)

    def cell(self, row: int) -> str:
        """The value of one row, as text (for messages)."""
        v = self.values[row]
        if self.kind == "text":
            return self.levels[v] if v >= 0 else ""
        if self.kind == "date":
            return "" if np.isnat(v) else str(v)
        return "" if np.isnan(v) else repr(float(v))

    def take(self, rows: np.ndarray) -> RawColumn:
        return RawColumn(self.name, self.kind, self.values[rows], self.levels)


@dataclass
class Table:
    """The columns of a data file, in file order, and how to name a row's place in the file."""

    path: Path
    columns: dict[str, RawColumn]
    n_rows: int
    fingerprint: str
    parquet: bool = False
    row_ids: np.ndarray | None = None  # after dropping rows: original row number of each row
    _lines: dict[int, int] = field(default_factory=dict, repr=False)
    _reader: Any = field(default=None, repr=False)  # (delimiter, header) to map rows to lines
    matrix: np.ndarray | None = field(default=None, repr=False)  # the numeric columns, (n, k), C order
    matrix_columns: list[str] = field(default_factory=list, repr=False)  # their names, in matrix order
    notes: list[str] = field(default_factory=list)  # what reading decided (unnamed columns, ...)

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def where(self, row: int) -> str:
        """'line 17' (text files: the physical line of data row `row`) or 'row 17' (Parquet)."""
        original = int(self.row_ids[row]) if self.row_ids is not None else row
        if self.parquet:
            return f"row {original + 1}"
        return f"line {self.line_of(original)}"

    def line_of(self, row: int) -> int:
        if row not in self._lines:
            self._lines.update(row_lines(self.path, *self._reader, wanted={row}))
        return self._lines.get(row, row + 2)

    def take(self, rows: np.ndarray) -> Table:
        """The table restricted to `rows` (which keep their original line numbers)."""
        ids = self.row_ids[rows] if self.row_ids is not None else rows
        return Table(self.path, {n: c.take(rows) for n, c in self.columns.items()}, len(rows), self.fingerprint,
                     self.parquet, ids, self._lines, self._reader)

    def select(self, names: list[str]) -> Table:
        """The table with only the columns `names` (the numeric matrix stays shared)."""
        return Table(self.path, {n: self.columns[n] for n in names}, self.n_rows, self.fingerprint, self.parquet,
                     self.row_ids, self._lines, self._reader, self.matrix, self.matrix_columns, self.notes)


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_table(path: Path, delimiter: str = "auto", decimal: str = ".", header: bool = True,
               na_values: Any = "auto", text: bool = False, dtype=np.float64) -> Table:
    """Read a data file into a Table. DataError names the file, line and column of any problem.

    text=True reads every cell as the string written in the file (for repeating input rows in
    predict's output): the table's columns are then lists of str."""
    path = Path(path)
    if is_parquet(path):
        table = _read_parquet(path, dtype)
        if text:
            for name, c in table.columns.items():
                table.columns[name] = [c.cell(i) for i in range(table.n_rows)]
        return table
    head = sample(path)
    lines = text_lines(head, path)
    if not lines:
        raise DataError(f"{path}: the file is empty; expected rows of values" + (", the first naming the columns"
                                                                                   if header else ""))
    if delimiter == "auto":
        delimiter = sniff_delimiter(lines, decimal)
        if delimiter is None:
            if len(lines) >= 1 and all(len(ln.split(",")) == 1 for ln in lines) and \
                    all(len(ln.split()) == 1 for ln in lines):
                delimiter = ","  # a single column: only a target, reported below
            elif len(lines) > 2 and (d := sniff_delimiter(lines[1:], decimal)) is not None:
                n_first = len(lines[0].split()) if d == WHITESPACE else len(next(csv.reader([lines[0]], delimiter=d)))
                n_rest = len(lines[1].split()) if d == WHITESPACE else len(next(csv.reader([lines[1]], delimiter=d)))
                raise DataError(f"{path}, line 1: {n_first} field{'s' * (n_first != 1)}, but the lines after it have "
                                f"{n_rest} (delimiter {d!r}); is line 1 a title or a note? Remove it"
                                + (", or name every column there" if header else ""))
            else:
                raise DataError(f"{path}: cannot tell the delimiter: no one of , ; tab | or spaces splits the first "
                                f"{len(lines)} lines into the same number of fields; set data.delimiter "
                                f"(and check for ragged rows)")
    first = next(csv.reader([lines[0]], delimiter=delimiter)) if delimiter != WHITESPACE else lines[0].split()
    if header:
        names = [h.strip() for h in first]
        unnamed = [i for i, h in enumerate(names) if not h]
        for i in unnamed:  # R's write.csv leaves the row-name column unnamed
            names[i] = f"c{i}"
        seen: dict[str, int] = {}
        for i, h in enumerate(names):
            if h in seen:
                raise DataError(f"{path}, line 1: duplicate column name {h!r} (columns {seen[h] + 1} and {i + 1})")
            seen[h] = i
    else:
        names = [f"c{i}" for i in range(len(first))]
    table = _read_text(path, names, delimiter, decimal, header, na_values, text, dtype)
    table._reader = (delimiter, header)
    if header and unnamed:
        table.notes.append(f"column{'s' * (len(unnamed) > 1)} {', '.join(str(i + 1) for i in unnamed)} "
                           f"{'have' if len(unnamed) > 1 else 'has'} no name in the header: called "
                           f"{', '.join(names[i] for i in unnamed)}")
    return table


def _read_text(path: Path, names: list[str], delimiter: str, decimal: str, header: bool, na_values,
               text: bool = False, dtype=np.float64) -> Table:
    import threading

    import pyarrow as pa
    import pyarrow.csv as pacsv

    nulls = [] if text else (AUTO_NA if na_values == "auto" else list(na_values))
    bad: list = []

    def on_invalid(row):  # ragged rows: remember the first, skip the rest of the check
        bad.append(row)
        return "skip"

    digest: list[str] = []  # the file's sha256, computed on a thread while Arrow parses
    hasher = threading.Thread(target=lambda: digest.append(file_fingerprint(path)), daemon=True)
    if not text:
        hasher.start()
    arrow_delim = UNIT_SEP if delimiter == WHITESPACE else delimiter
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0, use_threads=True)

    def parsing(newlines: bool):  # newlines in quoted values make Arrow find row ends serially: 20% slower
        return pacsv.ParseOptions(delimiter=arrow_delim, invalid_row_handler=on_invalid, newlines_in_values=newlines)

    parse_options = parsing(False)

    def convert(types):
        return pacsv.ConvertOptions(null_values=nulls, strings_can_be_null=True, quoted_strings_can_be_null=True,
                                    decimal_point=decimal, auto_dict_encode=True, auto_dict_max_cardinality=1 << 30,
                                    column_types=types, true_values=[], false_values=[])

    types: dict[str, Any] = {n: pa.string() for n in names} if text else {}
    narrow = not text and np.dtype(dtype) == np.float32 and _all_numeric(path, delimiter, read_options,
                                                                         parse_options, convert({}))
    if narrow:  # every column numbers: parsed straight to float32, half the memory of float64
        types = {n: pa.float32() for n in names}
    for _ in range(len(names) + 4):  # a column whose inferred type fails later is re-read as strings
        src = source(path, delimiter)
        try:
            tb = pacsv.read_csv(src, read_options=read_options, parse_options=parse_options,
                                convert_options=convert(types))
        except pa.ArrowInvalid as exc:
            m = re.search(r"In CSV column #(\d+): .*conversion error", str(exc))
            if not parse_options.newlines_in_values and m is None:  # e.g. a quote left open: try again
                parse_options = parsing(True)
            elif narrow:  # text after the first block: infer every column's type again
                narrow, types = False, {}
            elif m is None or names[int(m.group(1))] in types:
                raise DataError(f"{path}: cannot parse ({_arrow_message(exc)})") from None
            else:
                types[names[int(m.group(1))]] = pa.dictionary(pa.int32(), pa.string())
            bad.clear()
            continue
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None
        finally:
            if hasattr(src, "close"):
                src.close()
        if bad and not parse_options.newlines_in_values:  # a quoted value with a line break, or a ragged row
            bad.clear()
            parse_options = parsing(True)
            continue
        break
    if bad:
        row = bad[0]
        line = row.number or first_ragged_line(path, delimiter, len(names), header)
        raise DataError(f"{path}, line {line}: expected {len(names)} field{'s' * (len(names) != 1)} "
                        f"({'as in the header' if header else 'as in the first line'}), found {row.actual_columns}"
                        + ("; is data.delimiter right?" if row.actual_columns == 1 else ""))
    if text:
        return Table(path, {n: c.to_pylist() for n, c in zip(names, tb.columns)}, tb.num_rows, "")
    holder = [tb]
    del tb
    table = _from_arrow(holder, path, np.float32 if narrow else np.float64)
    hasher.join()
    table.fingerprint = digest[0] if digest else file_fingerprint(path)
    table._reader = (delimiter, header)
    for c in table.columns.values():
        if c.kind == "binary":
            row = int(np.flatnonzero(c.values)[0])
            raise DataError(f"{path}, {table.where(row)}, column {c.name!r}: not UTF-8 text; save the file as "
                            f"UTF-8")
    return table


def _all_numeric(path, delimiter, read_options, parse_options, convert_options) -> bool:
    """Are all columns numbers in the first block of the file (Arrow's inference)?"""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    src = source(path, delimiter)
    try:
        schema = pacsv.open_csv(src, read_options=read_options, parse_options=parse_options,
                                convert_options=convert_options).schema
    except (pa.ArrowInvalid, OSError, EOFError):
        return False
    finally:
        if hasattr(src, "close"):
            src.close()
    return all(pa.types.is_integer(f.type) or pa.types.is_floating(f.type) for f in schema)


def _from_arrow(holder: list, path: Path, number_dtype, parquet: bool = False) -> Table:
    """The Arrow table in `holder` (taken out of it) as a Table. Numeric columns are copied into ONE
    C-ordered matrix of `number_dtype`, one record batch at a time, each batch released once
    copied: a large numeric file needs about one copy of its numbers, not two, and the features of
    an all-numeric file are a view of that matrix."""
    import pyarrow as pa

    tb = holder.pop()
    names = [str(n) for n in tb.column_names]
    numeric = [n for n, c in zip(names, tb.columns) if _is_number_type(c.type)]
    others = {n: c for n, c in zip(names, tb.columns) if n not in set(numeric)}
    n_rows = tb.num_rows
    batches = tb.select(numeric).to_batches() if numeric else []
    del tb
    M = np.empty((n_rows, len(numeric)), dtype=number_dtype)
    at = 0
    for i in range(len(batches)):
        batch, batches[i] = batches[i], None
        k = batch.num_rows
        for j, col in enumerate(batch.columns):
            if not (pa.types.is_floating(col.type) and col.type.bit_width == np.dtype(number_dtype).itemsize * 8):
                col = col.cast(pa.float64())
            M[at:at + k, j] = col.to_numpy(zero_copy_only=False)
        at += k
        del batch
    pa.default_memory_pool().release_unused()
    columns = {}
    any_nan = np.zeros(len(numeric), dtype=bool)
    for start in range(0, n_rows, 65536):  # one pass over the matrix, not one strided pass per column
        any_nan |= np.isnan(M[start:start + 65536]).any(axis=0)
    for name in names:
        if name in others:
            columns[name] = _to_raw(name, others.pop(name), path)
        else:
            j = numeric.index(name)
            columns[name] = RawColumn(name, "number", M[:, j], None, bool(any_nan[j]))
    table = Table(path, columns, n_rows, "", parquet)
    table.matrix, table.matrix_columns = M, numeric
    return table


def _is_number_type(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)


def _arrow_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0]
    return text[:300]


def _to_raw(name: str, col, path: Path) -> RawColumn:
    """An Arrow column as a RawColumn (strings stripped; numbers that Arrow left as text parsed here)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_null(t):
        return RawColumn(name, "empty", np.full(len(col), np.nan))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        return RawColumn(name, "number", np.asarray(values, dtype=np.float64))
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            col = pc.cast(col, pa.timestamp("s", tz=t.tz)).cast(pa.timestamp("s"))
        values = pc.cast(col, pa.timestamp("s")).to_numpy(zero_copy_only=False)
        return RawColumn(name, "date", values.astype("datetime64[s]"))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):  # Arrow's answer to bytes that are not UTF-8
        bad = ~np.asarray(pc.fill_null(pc.utf8_is_printable(pc.cast(col, pa.string(), safe=False)), True))
        return RawColumn(name, "binary", bad)
    if not pa.types.is_dictionary(t):
        col = pc.dictionary_encode(pc.cast(col, pa.string()))
    col = col.unify_dictionaries() if isinstance(col, pa.ChunkedArray) else col
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not chunks:
        return RawColumn(name, "empty", np.zeros(0))
    dictionary = chunks[0].dictionary.to_pylist()
    codes = np.concatenate([np.asarray(pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
                            for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    return text_column(name, codes, dictionary)


def text_column(name: str, codes: np.ndarray, dictionary: list) -> RawColumn:
    """A text RawColumn from codes into `dictionary`: values stripped, equal ones merged, blank = missing."""
    stripped = [str(v).strip() for v in dictionary]
    levels = sorted(set(s for s in stripped if s))
    index = {s: k for k, s in enumerate(levels)}
    remap = np.array([index.get(s, -1) for s in stripped] + [-1], dtype=np.int64)  # [-1]: code -1 stays missing
    return RawColumn(name, "text", remap[codes], levels)


def _read_parquet(path: Path, dtype=np.float64) -> Table:
    try:
        import pyarrow.parquet as pq

        tb = pq.read_table(path)
    except Exception as exc:  # ArrowInvalid, OSError: not a Parquet file, damaged
        raise DataError(f"{path}: cannot read as Parquet ({_arrow_message(exc)})") from None
    names = [str(n) for n in tb.column_names]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate column names")
    narrow = np.dtype(dtype) == np.float32 and all(_is_number_type(c.type) for c in tb.columns)
    holder = [tb]
    del tb
    table = _from_arrow(holder, path, np.float32 if narrow else np.float64, parquet=True)
    table.fingerprint = file_fingerprint(path)
    for c in table.columns.values():
        if c.kind == "binary":
            raise DataError(f"{path}, column {c.name!r}: binary values; nnctl reads numbers, strings and dates")
    return table


