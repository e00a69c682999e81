"""Reading data files into a `Table` of raw columns: CSV-like text (any delimiter, decimal comma,
quotes, BOM, CRLF, header or not, compressed) and Parquet, parsed by Apache Arrow.

Arrow's CSV reader is multi-threaded C++, within 1.2-1.4x of pandas' C parser on 2 cores and far
leaner (benchmarks/data_load.py measures both side by side); it also reads Parquet. What this
module adds: the delimiter sniffed, runs of spaces as a delimiter, xz and zip archives, every
column's type fixed from the first block (so Arrow never holds the whole file), numbers parsed to
the training dtype, and messages that name the file, line and column.
"""

from __future__ import annotations

import csv
import hashlib
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.arrow import from_arrow, from_parquet
from nnctl.data.blocks import PARALLEL_FROM, read_numeric_blocks
from nnctl.data.table import Table
from nnctl.data.textformat import (
    UNIT_SEP,
    WHITESPACE,
    compression_of,
    decompression_errors,
    first_ragged_line,
    is_parquet,
    leading_blank_lines,
    sample,
    sniff_delimiter,
    source,
    text_lines,
    whitespace_fields,
)
from nnctl.errors import DataError

AUTO_NA = ["", "NA", "N/A", "NaN", "nan", "null", "None", "?", "-", "na", "n/a", "NULL", "NAN", "none"]


def require_regular_file(path: Path) -> None:
    """DataError unless `path` is (a link to) a regular file: a FIFO or a device would hang or never end."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory, not a data file")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file (a pipe or a device?); data files are CSV-like text or Parquet")


class PendingDigest:
    """A file's sha256 (its fingerprint), hashed on a thread once the file has been parsed; `str()`
    waits for it. The file is opened when reading begins, so the bytes hashed are the ones parsed
    even if the path is replaced or removed meanwhile; the hashing starts after the parse (`start`),
    because beside Arrow's parse it took the cores the parse runs on, and after it, it runs beside
    the single-threaded work that follows (the conversion, encoding, the preprocessing fit, the
    model). `prepare` resolves it before anything is written. Pickled as the str it stands for."""

    def __init__(self, path: Path):
        self.path = path
        self.value: str | None = None
        self.error: OSError | None = None
        self.thread: threading.Thread | None = None
        try:
            self.file = open(path, "rb")  # noqa: SIM115 - closed by _hash, or by close()
        except OSError as exc:
            self.file, self.error = None, exc

    def start(self) -> PendingDigest:
        if self.thread is None:
            self.thread = threading.Thread(target=self._hash, daemon=True)
            self.thread.start()
        return self

    def close(self) -> None:
        """Reading failed: no hash will be asked for."""
        if self.thread is None and self.file is not None:
            self.file.close()
            self.file = None

    def _hash(self) -> None:
        if self.file is None:
            return
        try:
            h = hashlib.sha256()
            for chunk in iter(lambda: self.file.read(1 << 20), b""):
                h.update(chunk)
            self.value = h.hexdigest()
        except OSError as exc:
            self.error = exc
        finally:
            self.file.close()

    def __str__(self) -> str:
        if self.value is None:
            self.start().join()
            if self.value is None:
                exc = self.error
                raise DataError(f"{self.path}: cannot read ({getattr(exc, 'strerror', None) or exc}); was it "
                                f"moved or changed while nnctl read it?")
        return self.value

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def __eq__(self, other) -> bool:  # by value, like the str it stands for
        return str(self) == str(other) if isinstance(other, (str, PendingDigest)) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self):
        return str, (str(self),)


def read_table(path: Path, delimiter: str = "auto", decimal: str = ".", header: bool = True,
               na_values: Any = "auto", text: bool = False, dtype=np.float64, exact=(), room: bool = False) -> Table:
    """Read a data file into a Table. DataError names the file, line and column of any problem.

    text=True reads every cell as the string written in the file (for repeating input rows in
    predict's output): the table's columns are then lists of str. Numbers are read in `dtype` (the
    training dtype), except the columns named in `exact` (the target), which stay float64.
    room=True: the numeric matrix may get spare columns for the encoded features (see from_arrow);
    only for a table whose every row is encoded next (training)."""
    path = Path(path)
    require_regular_file(path)
    table = _read_any(path, delimiter, decimal, header, na_values, text, dtype, exact, room)
    if not text and table.matrix is not None and table.matrix.dtype == np.float32:
        coarse = coarse_columns(table)
        if coarse:  # numbers whose spread float32 cannot resolve: read those in float64
            exact = {table.names[k] if isinstance(k, int) else k for k in exact} | set(coarse)
            table = _read_any(path, delimiter, decimal, header, na_values, text, dtype, exact, room)
            table.coarse = set(coarse)
    return table


COARSE = 2.0 ** -10  # a column whose range is below this fraction of its magnitude: < 8192 float32 steps


def coarse_columns(table: Table) -> list[str]:
    """Columns of a float32 matrix whose values span too few float32 steps to keep their differences
    (1e8 + N(0, 3): all but a handful of values collapse): they are read again in float64."""
    if table.matrix_range is None or table.n_rows == 0:
        return []
    lo, hi = table.matrix_range
    magnitude = np.maximum(np.abs(lo), np.abs(hi))
    exact = np.array([n in table.integral for n in table.matrix_columns], dtype=bool) & (magnitude < 2.0 ** 24)
    with np.errstate(invalid="ignore"):  # (integers below 2^24 are exact in float32; a constant says nothing)
        coarse = np.isfinite(magnitude) & (hi > lo) & ~exact & (hi - lo < COARSE * magnitude)
    return [n for n, c in zip(table.matrix_columns, coarse) if c]


def _read_any(path: Path, delimiter, decimal, header, na_values, text, dtype, exact, room=False) -> Table:
    if is_parquet(path):
        table = _read_parquet(path, dtype, exact, room)
        if text:  # each cell as text; integer columns (an id, a year) as integers: 1001, not 1001.0
            for name, c in table.columns.items():
                if name in table.integral:
                    table.columns[name] = ["" if np.isnan(v) else str(int(v)) for v in c.values]
                else:
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
                def width(line: str) -> int:
                    fields = whitespace_fields(line) if d == WHITESPACE else next(csv.reader([line], delimiter=d))
                    return len(fields)

                n_first, n_rest = width(lines[0]), width(lines[1])
                raise DataError(f"{path}, line 1: {n_first} field{'s' * (n_first != 1)}, but the lines after it have "
                                f"{n_rest} (delimiter {d!r}); is line 1 a title or a note? Remove it"
                                + (", or name every column there" if header else ""))
            else:
                raise DataError(f"{path}: cannot tell the delimiter: no one of , ; tab | or spaces splits the first "
                                f"{len(lines)} lines into the same number of fields; set data.delimiter "
                                f"(and check for ragged rows)")
    first = next(csv.reader([lines[0]], delimiter=delimiter)) if delimiter != WHITESPACE \
        else whitespace_fields(lines[0])
    if header and "\ufffd" in lines[0]:
        raise DataError(f"{path}, line {leading_blank_lines(head) + 1}: the header is not UTF-8 text; save the file "
                        f"as UTF-8")
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
    exact = {names[k] if isinstance(k, int) and -len(names) <= k < len(names) else k for k in exact}
    table = _read_text(path, names, delimiter, decimal, header, na_values, text, dtype, exact,
                       leading_blank_lines(head), room)
    table._reader = (delimiter, header)
    if header and unnamed:
        table.notes.append(f"column{'s' * (len(unnamed) > 1)} {', '.join(str(i + 1) for i in unnamed)} "
                           f"{'have' if len(unnamed) > 1 else 'has'} no name in the header: called "
                           f"{', '.join(names[i] for i in unnamed)}")
    return table


def _read_text(path: Path, names: list[str], delimiter: str, decimal: str, header: bool, na_values,
               text: bool = False, dtype=np.float64, exact=(), lead: int = 0, room: bool = False) -> Table:
    digest = PendingDigest(path) if not text else None  # opened now, hashed once parsed
    try:
        return _parse_text(path, names, delimiter, decimal, header, na_values, text, dtype, exact, lead, room,
                           digest)
    except BaseException:
        if digest is not None:
            digest.close()
        raise


def _parse_text(path: Path, names: list[str], delimiter: str, decimal: str, header: bool, na_values,
                text: bool, dtype, exact, lead: int, room: bool, digest: PendingDigest | None) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    nulls = [] if text else (AUTO_NA if na_values == "auto" else list(na_values))

    arrow_delim = UNIT_SEP if delimiter == WHITESPACE else delimiter
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=lead + header, use_threads=True)

    def parsing(newlines: bool):  # newlines in quoted values make Arrow find row ends serially: 20% slower
        return pacsv.ParseOptions(delimiter=arrow_delim, newlines_in_values=newlines)

    parse_options = parsing(False)

    def convert(types):
        return pacsv.ConvertOptions(null_values=nulls, strings_can_be_null=True, quoted_strings_can_be_null=True,
                                    decimal_point=decimal, auto_dict_encode=True, auto_dict_max_cardinality=1 << 30,
                                    column_types=types, true_values=[], false_values=[])

    text_type = pa.dictionary(pa.int32(), pa.string())
    if text:
        types: dict[str, Any] = {n: pa.string() for n in names}
    else:
        # Every column's type fixed in advance, from Arrow's inference on the first block: with any
        # column left to infer, Arrow holds the whole file while it reads (2.7x the memory, and
        # slower). Floats are parsed straight to the training dtype; a column whose later rows do
        # not fit its type is widened (int -> float64 -> text) and the file read again.
        types = _first_block_types(path, delimiter, read_options, parse_options, convert({}))
        for n, t in list(types.items()):
            if pa.types.is_floating(t):
                types[n] = pa.float64() if n in exact or np.dtype(dtype) != np.float32 else pa.float32()
            elif pa.types.is_null(t) or pa.types.is_string(t) or pa.types.is_boolean(t):
                types[n] = text_type
        if types and all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types.values()) \
                and compression_of(path) is None and delimiter != WHITESPACE \
                and path.stat().st_size >= PARALLEL_FROM:  # a large numeric file: block by block, lean
            table = read_numeric_blocks(path, names, lead + header, parsing(False), convert(types), dtype, exact)
            if table is not None:
                table.fingerprint = digest.start()  # the file's sha256, on a thread (see PendingDigest)
                return table
    for _ in range(2 * len(names) + 4):
        src = source(path, delimiter)
        try:
            tb = pacsv.read_csv(src, read_options=read_options, parse_options=parse_options,
                                convert_options=convert(types))
        except pa.ArrowInvalid as exc:
            m = re.search(r"In CSV column #(\d+): .*conversion error", str(exc))
            name = names[int(m.group(1))] if m is not None else None
            ragged = re.search(r"Expected (\d+) columns, got (\d+)", str(exc))
            if not parse_options.newlines_in_values and m is None:  # a quoted line break, a ragged row: again
                parse_options = parsing(True)
            elif ragged is not None:  # (an invalid_row_handler would name the row, but Arrow decodes it
                # as UTF-8 first and prints a traceback on other bytes; the csv module finds the line)
                found = int(ragged.group(2))
                line = first_ragged_line(path, delimiter, len(names), header)
                raise DataError(f"{path}, line {line}: expected {len(names)} field{'s' * (len(names) != 1)} "
                                f"({'as in the header' if header else 'as in the first line'}), found {found}"
                                + ("; is data.delimiter right?" if found == 1 else "")) from None
            elif name is None or types.get(name) == text_type or text:
                raise DataError(f"{path}: cannot parse ({_arrow_message(exc)})") from None
            elif pa.types.is_integer(types[name]) and "to float" not in str(exc):
                types[name] = pa.float64()  # e.g. 3.5 below rows of integers
            else:
                types[name] = text_type
            continue
        except (OSError, *decompression_errors()) as exc:
            raise DataError(f"{path}: cannot read ({exc}); is the file damaged?") from None
        finally:
            if hasattr(src, "close"):
                src.close()
        break
    if text:
        return Table(path, {n: c.to_pylist() for n, c in zip(names, tb.columns)}, tb.num_rows, "")
    holder = [tb]
    del tb
    digest.start()  # the file's sha256, on a thread beside the conversion (see PendingDigest)
    table = from_arrow(holder, path, dtype, exact, na=frozenset(n.strip() for n in nulls if n.strip()), room=room)
    table.fingerprint = digest
    table._reader = (delimiter, header)
    for c in table.columns.values():
        if c.kind == "binary":
            row = int(np.flatnonzero(c.values)[0])
            raise DataError(f"{path}, {table.where(row)}, column {c.name!r}: not UTF-8 text; save the file as "
                            f"UTF-8")
    return table


def _first_block_types(path, delimiter, read_options, parse_options, convert_options) -> dict:
    """Arrow's inferred type of every column, from the first block of the file ({} if it fails)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    src = source(path, delimiter)
    try:
        schema = pacsv.open_csv(src, read_options=read_options, parse_options=parse_options,
                                convert_options=convert_options).schema
    except (pa.ArrowInvalid, OSError, *decompression_errors()):
        return {}
    finally:
        if hasattr(src, "close"):
            src.close()
    return {f.name: f.type for f in schema}


def _arrow_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0]
    return text[:300]


def _read_parquet(path: Path, dtype=np.float64, exact=(), room: bool = False) -> Table:
    digest = PendingDigest(path)  # opened now, hashed once read
    try:
        table = _parquet_table(path, dtype, exact, room)
    except BaseException:
        digest.close()
        raise
    table.fingerprint = digest.start()  # the file's sha256, on a thread (see PendingDigest)
    return table


def _parquet_table(path: Path, dtype, exact, room: bool) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as pf:  # (pq.read_table imports pandas when it is installed)
            metadata = pf.metadata
            names = [str(n) for n in pf.schema_arrow.names]
            strings = [f.name for f in pf.schema_arrow
                       if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    except Exception as exc:  # ArrowInvalid, OSError: not a Parquet file, damaged
        raise DataError(f"{path}: cannot read as Parquet ({_arrow_message(exc)})") from None
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate column names")
    exact = {names[k] if isinstance(k, int) and -len(names) <= k < len(names) else k for k in exact}
    try:
        # string columns read as dictionaries (codes into the distinct values, as nnctl keeps text),
        # not as one string per row that would be dictionary-encoded next; the numbers in batches
        with pq.ParquetFile(path, metadata=metadata, read_dictionary=strings) as pf:
            table = from_parquet(pf, path, dtype, exact, encoded=set(strings), room=room)
    except DataError:  # (a ValueError too) said by from_parquet itself
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:  # damaged pages, a truncated file, a footer
        # whose names are not UTF-8 (UnicodeDecodeError is a ValueError)
        raise DataError(f"{path}: cannot read as Parquet ({_arrow_message(exc)})") from None
    for c in table.columns.values():
        if c.kind == "binary":
            raise DataError(f"{path}, column {c.name!r}: binary values; nnctl reads numbers, strings and dates")
    return table


