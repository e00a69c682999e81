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

ROOM_MAX = 64  # at most this many spare columns (or twice the numeric ones) are kept for the encoding


def from_arrow(holder: list, path: Path, number_dtype, exact=(), parquet: bool = False,
               na: frozenset = frozenset(), encoded: set = frozenset()) -> Table:
    """The Arrow table in `holder` (taken out of it) as a Table. Numeric columns are copied into ONE
    C-ordered matrix of `number_dtype`, one record batch at a time, each batch released once
    copied: a large numeric file needs about one copy of its numbers, not two, and the numeric
    features are a view of that matrix. Columns named in `exact` (the target) stay float64, apart.
    `encoded`: string columns the reader returned dictionary-encoded (unused values are dropped).

    When every other feature column comes after the numeric ones (numbers, then a few text or date
    columns), the matrix is the left part of a wider one with room for their usual encoding (one
    column per level, five per date): `Encoding.transform` then writes those beside the numbers
    instead of copying every number into a new matrix (`Table.matrix_room`)."""
    import pyarrow as pa

    tb = holder.pop()
    names = [str(n) for n in tb.column_names]
    numeric = [n for n, c in zip(names, tb.columns) if is_number_type(c.type) and n not in set(exact)]
    integral = {n for n, c in zip(names, tb.columns) if n in numeric and pa.types.is_integer(c.type)}
    others = {n: c for n, c in zip(names, tb.columns) if n not in set(numeric)}
    n_rows = tb.num_rows
    batches = tb.select(numeric).to_batches() if numeric else []
    del tb
    others = {n: to_raw(n, c, path, na, n in encoded) for n, c in others.items()}  # float64: an `exact` column
    room = _room(names, numeric, others, set(exact))
    full = populated_empty((n_rows, len(numeric) + room), number_dtype)
    M = full[:, :len(numeric)]
    stats = _Stats(len(numeric))
    at = 0
    for i in range(len(batches)):
        batch, batches[i] = batches[i], None
        _copy_rows(M[at:at + batch.num_rows], [_numbers(c) for c in batch.columns], stats)
        at += batch.num_rows
        del batch
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
    """Dictionary indices as signed integers of their width, -1 for nulls (a view if none)."""
    v = _values(indices, np.dtype(f"i{indices.type.bit_width // 8}"))
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


BLOCK = 1 << 21  # bytes of text per Arrow call in the parallel block reader
PARALLEL_FROM = 1 << 24  # uncompressed all-numeric files from this size (16 MB) are read block by block
LONGEST_LINE = 1 << 25  # a line longer than this (32 MB) sends the block reader back to the whole-file reader


def read_numeric_blocks(path: Path, names: list[str], skip_lines: int, parse_options, convert_options, dtype,
                        exact, workers: int | None = None) -> Table | None:
    """An all-numeric, uncompressed text file parsed by Arrow in blocks of lines, `workers` blocks at
    a time (default: one per usable CPU, 2 to 8; Arrow releases the GIL), each block's numbers
    copied straight to its rows of the one matrix: the numbers exist about once (a whole-file read
    holds Arrow's table beside the matrix).

    The file is read once, a block at a time into each worker's reused buffer (a memory-mapped file
    counts its cached pages in the peak RSS): under a lock a worker reads the next BLOCK bytes,
    cuts them after their last line end and counts the lines, which fixes the block's first row;
    it parses and copies outside the lock. The matrix is reserved for the most rows the file can
    hold (a line has at least one byte per column) and only the pages written become memory.
    None if anything is unusual (a blank or ragged line, a value of another type, a quote, a quoted
    line break): the whole-file reader then decides, and explains."""
    import os

    import pyarrow as pa

    from nnctl.data.textformat import SNIFF_BYTES, offset_after_lines

    if not hasattr(os, "preadv"):  # Windows: the whole-file reader
        return None
    pool = pa.default_memory_pool()
    pool.release_unused()  # what sniffing the types left in Arrow's allocator (20-40 MB): not kept beside M
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        at = offset_after_lines(os.pread(fd, SNIFF_BYTES, 0), skip_lines)  # lines end at \r\n, \r or \n
        if at is None or at >= size:
            return None
        rows_max = (size - at) // len(names) + 1  # a line holds at least its delimiters and its end
        numeric = [n for n in names if n not in exact]
        M = _reserved((rows_max, len(numeric)), dtype)
        apart = {n: _reserved((rows_max,), np.float64) for n in names if n in exact}
        if M is None or any(v is None for v in apart.values()):  # no room to reserve: count the rows first
            rows_max = _count_lines(fd, at, size)
            if rows_max is None:
                return None
            M = populated_empty((rows_max, len(numeric)), dtype)
            apart = {n: np.empty(rows_max) for n in names if n in exact}
        if workers is None:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
            workers = max(2, min(cpus, 8))
        rows, stats = _parse_blocks(fd, at, size, names, numeric, parse_options, convert_options, M, apart, workers)
    finally:
        os.close(fd)
        pool.release_unused()
    if not rows:
        return None
    others = {n: RawColumn(n, "number", v[:rows]) for n, v in apart.items()}
    table = _matrix_table(path, names, M[:rows], numeric, others, stats=stats)
    table.integral = {n for n in numeric if pa.types.is_integer(convert_options.column_types[n])}
    return table


def _next_block(fd: int, buf: bytearray, offset: int, size: int) -> tuple[bytearray, int, int] | None:
    """(buffer, length, lines) of the block of whole lines starting at `offset`: the next BLOCK bytes
    cut after their last \\n (the rest of the file at its end), read into `buf` or a larger buffer for
    a long line. None for a line longer than LONGEST_LINE."""
    import os

    want = BLOCK
    while True:
        want = min(want, size - offset)
        if len(buf) < want:
            buf = bytearray(want)
        view = memoryview(buf)
        got = 0
        while got < want:
            k = os.preadv(fd, [view[got:want]], offset + got)
            if k <= 0:  # the file shrank while read
                return None
            got += k
        view.release()
        if offset + want >= size:
            length = want
        else:
            length = buf.rfind(b"\n", 0, want) + 1
        if length > 0:
            return buf, length, _count_newlines(buf, length) + (buf[length - 1] != 0x0A)
        if want >= LONGEST_LINE:
            return None
        want *= 4


def _count_newlines(buf: bytearray, length: int, step: int = 1 << 18) -> int:
    """The \\n bytes in buf[:length], counted by NumPy a cache-sized piece at a time (3x as fast as
    bytearray.count, and without holding the GIL)."""
    data = np.frombuffer(buf, dtype=np.uint8, count=length)
    hits = np.empty(min(step, length), dtype=bool)
    total = 0
    for start in range(0, length, step):
        piece = data[start:start + step]
        total += int(np.count_nonzero(np.equal(piece, 0x0A, out=hits[:len(piece)])))
    return total


def _count_lines(fd: int, at: int, size: int) -> int | None:
    """The lines from byte `at` to the end, counted as the block reader cuts and counts them."""
    buf, rows = bytearray(BLOCK), 0
    while at < size:
        block = _next_block(fd, buf, at, size)
        if block is None:
            return None
        buf, length, lines = block
        at, rows = at + length, rows + lines
    return rows


def _parse_blocks(fd: int, at: int, size: int, names: list[str], numeric: list[str], parse_options,
                  convert_options, M: np.ndarray, apart: dict[str, np.ndarray], workers: int):
    """Parse the lines from byte `at` into the rows of M (and the `apart` columns) with `workers`
    threads: (the number of rows, M's column statistics counted on the way), or (None, None) if a
    block is unusual or the file holds more rows than M."""
    import threading

    import pyarrow as pa
    import pyarrow.csv as pacsv

    def read_options(length: int):  # one Arrow block per call: each column comes back as one array
        return pacsv.ReadOptions(column_names=names, use_threads=False, block_size=max(length + 1, 2 * BLOCK))

    options = read_options(0)
    # no quoting: a quote in an all-numeric file fails the block, and the whole-file reader decides
    unquoted = pacsv.ParseOptions(delimiter=parse_options.delimiter, quote_char=False,
                                  newlines_in_values=False, ignore_empty_lines=parse_options.ignore_empty_lines)
    lock = threading.Lock()
    state = {"at": at, "rows": 0, "ok": True, "fast": _number_nulls_only(convert_options)}
    counted: list[_Stats] = []

    def work() -> None:
        try:
            stats = _Stats(len(numeric))
            counted.append(stats)
            step(bytearray(BLOCK), stats)
        except BaseException as exc:  # raised again by the caller's thread
            state["ok"], state["error"] = False, exc

    def step(buf: bytearray, stats: _Stats) -> None:
        while True:
            with lock:  # the blocks are cut and counted in file order: each knows its first row
                if not state["ok"] or state["at"] >= size:
                    return
                block = _next_block(fd, buf, state["at"], size)
                if block is None or state["rows"] + block[2] > len(M):
                    state["ok"] = False
                    return
                buf, length, lines = block
                r0 = state["rows"]
                state["at"] += length
                state["rows"] += lines
            tb = None
            for convert in (state["fast"], convert_options) if state["fast"] is not None else (convert_options,):
                try:
                    tb = pacsv.read_csv(pa.py_buffer(memoryview(buf)[:length]),
                                        read_options=options if length < 2 * BLOCK else read_options(length),
                                        parse_options=unquoted, convert_options=convert)
                    break
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    state["fast"] = None  # the file has word markers: the next blocks are parsed once, with all
            if tb is None or tb.num_rows != lines or not all(is_number_type(c.type) for c in tb.columns):
                state["ok"] = False  # a blank line, a ragged row, a quote, a value of another type
                return
            values = {}
            for name, col in zip(names, tb.columns):
                chunks = [_numbers(c) for c in col.chunks]
                values[name] = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            del tb
            for name in apart:
                apart[name][r0:r0 + lines] = values[name]
            _copy_rows(M[r0:r0 + lines], [values[n] for n in numeric], stats)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if "error" in state:
        raise state["error"]
    if not state["ok"]:
        return None, None
    stats = _Stats(len(numeric))
    for s in counted:
        stats.any_nan |= s.any_nan
        stats.lo, stats.hi = np.fmin(stats.lo, s.lo), np.fmax(stats.hi, s.hi)
    return state["rows"], stats


def _number_nulls_only(convert_options):
    """The convert options with only the missing-value markers that could pass for numbers ('' and
    'nan', say) - None if that is all of them. Arrow checks every cell against every marker (7% of
    its time with nnctl's 14); a block with a word marker ('NA') fails to convert with these and is
    parsed again with all of them, so every value comes out as the full options give it."""
    import copy

    def numberlike(v: str) -> bool:
        try:
            float(v.replace(convert_options.decimal_point, "."))
        except ValueError:
            return False
        return True

    kept = [v for v in convert_options.null_values if v == "" or numberlike(v)]
    if len(kept) == len(convert_options.null_values):
        return None
    fast = copy.copy(convert_options)
    fast.null_values = kept
    return fast


def _reserved(shape: tuple, dtype) -> np.ndarray | None:
    """An empty C-ordered array in an anonymous mapping whose pages become memory only when
    written (a bound on the rows costs nothing beyond the rows used); None if the system refuses.
    Its memory is given back with it, or in part by data.table.release_after."""
    import mmap

    dtype = np.dtype(dtype)
    nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0) | getattr(mmap, "MAP_NORESERVE", 0)
    if not hasattr(mmap, "MAP_ANONYMOUS"):
        return None
    try:
        buf = mmap.mmap(-1, nbytes, flags=flags)
    except (OSError, ValueError, OverflowError):
        return None
    try:  # 2 MB pages where the system allows: 512x fewer page faults to fill it (half the time)
        buf.madvise(mmap.MADV_HUGEPAGE)
    except (AttributeError, OSError, ValueError):
        pass
    return np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
