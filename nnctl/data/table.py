"""The raw table a data file is read into: typed columns (numbers, text codes, dates), before any
role or encoding, and how a row is named in messages (its line in the file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.textformat import row_lines

POPULATE_FROM = 1 << 23  # arrays of 8 MB and more are allocated with their pages already mapped


def populated_empty(shape: tuple, dtype) -> np.ndarray:
    """np.empty(shape, dtype), for a large array with every page mapped in one system call
    (MAP_POPULATE) rather than one page fault at a time when first written: in a virtual machine a
    fault is expensive, and 156 MB took 0.28 s to touch against 0.04 s populated (RESULTS.md).
    The array is C-ordered and writable; its memory is freed with it. Plain np.empty elsewhere."""
    import mmap

    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    flag = getattr(mmap, "MAP_POPULATE", None)
    if nbytes < POPULATE_FROM or flag is None:
        return np.empty(shape, dtype=dtype)
    try:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flag)
    except (OSError, ValueError):
        return np.empty(shape, dtype=dtype)
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def release_after(head: np.ndarray) -> None:
    """Give the memory after `head`, a C-contiguous array at the start of an anonymous mapping of
    nnctl's own (populated_empty, or the block reader's), back to the system: whatever the mapping
    held there is gone (reads as zeros). A no-op for memory that is not such a mapping."""
    import mmap

    owner = head
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    base = owner.base.obj if isinstance(owner.base, memoryview) else owner.base
    if not isinstance(base, mmap.mmap) or base.closed or not hasattr(mmap, "MADV_DONTNEED"):
        return
    offset = head.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    start = -(-(offset + head.nbytes) // mmap.PAGESIZE) * mmap.PAGESIZE  # the first whole page after head
    if offset < 0 or start >= len(base):
        return
    try:
        base.madvise(mmap.MADV_DONTNEED, start, len(base) - start)
    except (OSError, ValueError):
        pass


def excerpt(text: str, limit: int = 40) -> str:
    """A value quoted in a message: printable, at most `limit` characters (a file is data, and a
    message must not become a dump of it)."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in str(text)[:limit])
    return repr(shown + ("..." if len(str(text)) > limit else ""))


@dataclass
class RawColumn:
    """One column as read, before any role or encoding: number, text, date or empty (all missing)."""

    name: str
    kind: str  # number | text | date | empty
    values: np.ndarray  # number: float64, NaN = missing; text: int64 codes, -1 = missing; date: datetime64[s]
    levels: list[str] | None = None  # text: the distinct (stripped) strings, code k -> levels[k]
    _any_nan: bool | None = field(default=None, repr=False, compare=False)
    _finite: bool | None = field(default=None, repr=False, compare=False)  # True: no infinity (measured)

    def maybe_infinite(self) -> bool:
        """False when the column is known to hold no infinity (its range was measured while reading)."""
        return self._finite is not True

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
    fingerprint: Any  # the file's sha256: a str, or reading.PendingDigest (str() waits for it)
    parquet: bool = False
    row_ids: np.ndarray | None = None  # after dropping rows: original row number of each row
    _lines: dict[int, int] = field(default_factory=dict, repr=False)
    _reader: Any = field(default=None, repr=False)  # (delimiter, header) to map rows to lines
    matrix: np.ndarray | None = field(default=None, repr=False)  # the numeric columns, (n, k), C order
    matrix_columns: list[str] = field(default_factory=list, repr=False)  # their names, in matrix order
    notes: list[str] = field(default_factory=list)  # what reading decided (unnamed columns, ...)
    matrix_range: Any = field(default=None, repr=False)  # (min, max) of each matrix column, NaN ignored
    integral: set = field(default_factory=set, repr=False)  # matrix columns the file holds as integers
    coarse: set = field(default_factory=set, repr=False)  # numeric columns read in float64: float32 is too coarse
    # a wider matrix whose left columns are `matrix`: room for the encoding of the features after the
    # numeric ones (arrow.from_arrow), which Encoding.transform may fill to make X without a copy
    matrix_room: np.ndarray | None = field(default=None, repr=False)

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
        out = Table(self.path, {n: c.take(rows) for n, c in self.columns.items()}, len(rows), self.fingerprint,
                    self.parquet, ids, self._lines, self._reader, notes=self.notes)
        out.coarse = set(self.coarse)
        return out

    def renamed(self, names: list[str]) -> Table:
        """The same columns, in order, under new names."""
        mapping = dict(zip(self.names, names))
        columns = {mapping[n]: RawColumn(mapping[n], c.kind, c.values, c.levels, c._any_nan, c._finite)
                   for n, c in self.columns.items()}
        return Table(self.path, columns, self.n_rows, self.fingerprint, self.parquet, self.row_ids, self._lines,
                     self._reader, self.matrix, [mapping[n] for n in self.matrix_columns], self.notes,
                     self.matrix_range, {mapping[n] for n in self.integral}, {mapping[n] for n in self.coarse},
                     self.matrix_room)

    def select(self, names: list[str]) -> Table:
        """The table with only the columns `names` (the numeric matrix stays shared)."""
        return Table(self.path, {n: self.columns[n] for n in names}, self.n_rows, self.fingerprint, self.parquet,
                     self.row_ids, self._lines, self._reader, self.matrix, self.matrix_columns, self.notes,
                     self.matrix_range, self.integral, self.coarse, self.matrix_room)
