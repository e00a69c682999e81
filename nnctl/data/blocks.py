"""Large all-numeric text files read block by block on threads, straight into the rows of one
matrix (arrow.from_arrow's result without Arrow's whole table beside it): the file is read once, a
block at a time into each worker's reused buffer, and the matrix is reserved for the most rows the
file can hold, so the peak memory is about the numbers and a few blocks in flight."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.arrow import _copy_rows, _matrix_table, _numbers, _Stats, is_number_type
from nnctl.data.table import RawColumn, Table, populated_empty

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
        size = _without_blank_end(fd, at, size)
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


def _without_blank_end(fd: int, at: int, size: int) -> int:
    """The file's size without the empty lines at its end (many writers leave one), which the
    whole-file reader skips too: in a block they would count as rows and send the file back to it.
    The last line keeps its own line end."""
    import os

    n = min(size - at, 4096)
    tail = os.pread(fd, n, size - n)
    text = tail.rstrip(b"\r\n")
    if not text or len(text) == len(tail):  # nothing but line ends (a file of blank lines), or no blank end
        return size
    ends = tail[len(text):]
    return size - len(ends) + (2 if ends.startswith(b"\r\n") else 1)


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
