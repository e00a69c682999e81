"""A vectorized reader for CSV bodies made only of plain decimal numbers, in NumPy alone.

`np.loadtxt` parses about 50 MB of text a second; this reader does the same work with whole-array
operations on blocks of 512 KB, on two threads, about four times faster. It accepts fields of
the form `[+-]digits[.digits][(e|E)[+-]digits]` (or `.5`, `5.`) with at most 15 digits before the
exponent, separated by commas, one row per line (`\n` or `\r\n`). Anything else -- spaces, quotes,
`nan`, a ragged row, an empty field, 16+ digit mantissas, exponents that need more than one
rounding -- makes it return None, and the caller falls back to `np.loadtxt` and then to the
careful reader that names the line.

Exactness: a field's digits form an integer M < 10^15 < 2^53 and its decimal exponent E satisfies
|E| <= 22, so M and 10^|E| are exact doubles and the one division or multiplication is correctly
rounded (Clinger's fast path): the float64 value equals Python's float(field). float32 output is
that double rounded to float32, which is what `np.loadtxt(..., dtype=np.float32)` returns too.

How one block is parsed: separators (`,` `\n`) and dots are found in one pass over the bytes, the
`e`s in another; a single count of digit bytes checks that every mantissa and exponent byte is a
digit. A mantissa of up to 8 bytes, dot included, is read as the one little-endian 64-bit word that
ends where it does: the bytes below the dot move up one byte over it, bytes outside the digits are
masked to '0', and the eight ASCII digits become their value in three multiply-shift-mask steps
(pairs, quads, octets). Longer mantissas read their integer and fraction runs separately, a run of
9-15 digits taking a second word for its leading digits.
"""

# ruff: noqa: N806  (matrices are upper case, as in nnctl/nn)
from __future__ import annotations

import itertools
import os
from collections import deque
from typing import BinaryIO

import numpy as np

BLOCK = 1 << 19  # bytes per block: enough to amortize NumPy calls; temporaries near 10 MB per thread
MAX_DIGITS = 15  # significant digits: M < 10^15 < 2^53 is an exact double
MAX_EXP = 22  # 10^22 is the largest exact power of ten in float64

_ASCII0 = np.uint64(0x3030303030303030)
# _KEEP[k]: the top k bytes of a word (the last k bytes of the run in memory order); _FILL: '0' elsewhere
_KEEP = np.array([(0xFFFFFFFFFFFFFFFF << (8 * (8 - k))) & 0xFFFFFFFFFFFFFFFF for k in range(9)], dtype=np.uint64)
_FILL = (~_KEEP) & _ASCII0
# _BELOW[d], _ABOVE[d]: the bytes of a word below / above a dot in byte d; d = 8 (no dot): none / all
_BELOW = np.array([(1 << (8 * d)) - 1 for d in range(8)] + [0], dtype=np.uint64)
_ABOVE = np.array([0xFFFFFFFFFFFFFFFF ^ ((1 << (8 * (d + 1))) - 1) for d in range(8)] + [0xFFFFFFFFFFFFFFFF],
                  dtype=np.uint64)
_POW10 = 10.0 ** np.arange(MAX_EXP + 1)
_SIGNED_POW10 = np.concatenate([_POW10, -_POW10])  # [k + (MAX_EXP + 1) * negative]: the sign is exact
_SWAR_STEPS = tuple((np.uint64(s), np.uint64(m), np.uint64(k)) for s, m, k in
                    ((8, 10, 0x00FF00FF00FF00FF), (16, 100, 0x0000FFFF0000FFFF), (32, 10000, 0xFFFFFFFF)))


def read_numeric(f: BinaryIO, ncols: int, dtype, workers: int | None = None, hasher=None) -> np.ndarray | None:
    """The (rows, ncols) matrix of the rest of binary file `f` (positioned after the header), or
    None if any part of it is not plain decimal numbers (the file position is then undefined).
    `hasher` (a hashlib object), if given, is fed every byte of the rest of the file as the
    blocks are handed to the threads (hashlib releases the GIL: it overlaps with the parsing);
    when None is returned it may have seen only part of the file.

    Blocks are parsed by `workers` threads (default: 2 if 2 cores are usable and the file
    spans several blocks): NumPy releases the GIL inside each operation, so two threads parse
    almost twice as fast. Each block's rows land at their own offset: the result does not depend
    on the thread count."""
    start = f.tell()
    counts, last = [], b"\n"  # newlines per BLOCK-sized read: the row offset of every block
    while chunk := f.read(BLOCK):
        counts.append(chunk.count(b"\n"))
        last = chunk[-1:]
    rows = sum(counts) + (last != b"\n")  # a last line without its newline counts too
    if rows == 0:
        return None
    f.seek(start)
    first = next(_blocks(f, counts), (b"", 0))[0]
    if parse_block(first, ncols) is None:  # not plain numbers: decline before allocating the matrix
        return None
    out = np.empty((rows, ncols), dtype=dtype)
    f.seek(start)
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = min(2, cores) if len(counts) > 4 else 1

    def parse_into(block: bytes, at: int) -> bool:
        values = parse_block(block, ncols)
        if values is None or at + len(values) > rows:
            return False
        out[at:at + len(values)] = values
        return True

    done = 0
    if workers <= 1:
        for block, n in _blocks(f, counts, hasher):
            if not parse_into(block, done):
                return None
            done += n
        return out if done == rows else None
    from concurrent.futures import ThreadPoolExecutor

    pending: deque = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="nnctl-csv") as pool:
        for block, n in _blocks(f, counts, hasher):
            pending.append(pool.submit(parse_into, block, done))
            done += n
            if len(pending) > 2 * workers:  # a few blocks in flight: memory stays bounded
                if not pending.popleft().result():
                    break
        else:
            if all(fut.result() for fut in pending):
                return out if done == rows else None
        for fut in pending:
            fut.cancel()
    return None


def _blocks(f: BinaryIO, counts: list[int], hasher=None):
    """(block, lines) over the rest of `f`: blocks of whole lines, each ending in b"\\n", with
    \\r\\n made \\n; `counts` are the newlines of each BLOCK-sized read, counted before; `hasher`
    is fed each read. A line longer than a block is gathered chunk by chunk and joined once."""
    pieces: list[bytes] = []  # the start of an unfinished line, possibly over several chunks
    for i in itertools.count():
        chunk = f.read(BLOCK)
        if not chunk:
            if pieces:
                yield b"".join(pieces) + b"\n", 1  # a last line without its newline
            return
        if hasher is not None:
            hasher.update(chunk)
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            pieces.append(chunk)
            continue
        block = b"".join([*pieces, chunk[:cut]]) if pieces else chunk[:cut]
        pieces = [chunk[cut:]] if cut < len(chunk) else []
        yield (block.replace(b"\r\n", b"\n") if b"\r" in block else block), counts[i]


def parse_block(block: bytes, ncols: int) -> np.ndarray | None:
    """float64 (rows, ncols) of complete lines of plain numbers, each ending in b"\\n"; else None."""
    a = np.frombuffer(block, dtype=np.uint8)
    if len(a) == 0 or a[-1] != 10:
        return None
    # separators (the byte after each field) and dots, found in one pass over the bytes
    marks = np.flatnonzero((a == 44) | (a == 10) | (a == 46))
    is_dot = a[marks] == 46
    dot_at = np.flatnonzero(is_dot)
    if len(dot_at):
        ends, dots = marks[~is_dot], marks[dot_at]
        # a dot's field = the separators before it = its place among the marks minus the dots before it
        dot_field = dot_at - np.arange(len(dot_at))
    else:
        ends, dots, dot_field = marks, dot_at, dot_at
    nf = len(ends)
    if nf == 0:
        return None
    is_nl = a[ends] == 10
    if nf % ncols or not is_nl[ncols - 1::ncols].all() or np.count_nonzero(is_nl) * ncols != nf:
        return None  # a ragged row
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1

    # exponents: at most one e/E per field, then [+-] and 1..3 digits up to the field's end
    mant_end = ends
    exponent = None
    n_exp_digits = 0
    es = np.flatnonzero((a | 0x20) == 101)
    if len(es):
        fe = np.searchsorted(ends, es)
        if len(fe) > 1 and not bool((fe[1:] > fe[:-1]).all()):
            return None
        pos = es + 1
        sign = a[pos]  # es + 1 exists: the block ends in b"\n"
        pos = pos + ((sign == 45) | (sign == 43))
        nd = ends[fe] - pos
        if nd.min() < 1 or nd.max() > 3:
            return None
        value = np.zeros(len(es), dtype=np.int64)
        for k in range(3):
            has = nd > k
            digit = a[np.where(has, pos + k, pos)].astype(np.int64) - 48
            if bool((((digit < 0) | (digit > 9)) & has).any()):
                return None
            value = np.where(has, value * 10 + digit, value)
        exponent = np.zeros(nf, dtype=np.int64)
        exponent[fe] = np.where(sign == 45, -value, value)
        mant_end = ends.copy()
        mant_end[fe] = es
        n_exp_digits = int(nd.sum())

    # the sign, at most one dot before the exponent, and the two digit runs around it
    first = a[starts]
    neg = first == 45
    lead = starts + (neg | (first == 43))
    dot = mant_end.copy()  # no dot: the integer run ends where the mantissa does
    n_frac = np.zeros(nf, dtype=np.int64)
    if len(dots):
        fd = dot_field
        if len(fd) > 1 and not bool((fd[1:] > fd[:-1]).all()):
            return None
        if bool((dots >= mant_end[fd]).any()):
            return None  # a dot in the exponent
        dot[fd] = dots
        n_frac[fd] = mant_end[fd] - dots - 1
    n_int = dot - lead
    n_digits = n_int + n_frac
    if n_int.min() < 0 or n_digits.min() < 1 or n_digits.max() > MAX_DIGITS:
        return None
    # every byte of the runs must be a digit: the runs, the exponent digits and nothing else are
    if np.count_nonzero((a - np.uint8(48)) < 10) != int(n_digits.sum()) + n_exp_digits:
        return None

    padded = np.empty(len(a) + 16, dtype=np.uint8)  # 16 bytes of '0' before: windows never start before 0
    padded[:16] = 48
    padded[16:] = a
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    M = _mantissa(words, lead, dot, mant_end, n_int, n_frac)
    sign = (MAX_EXP + 1) * neg  # dividing by -10^k negates exactly, in the same operation
    if exponent is None:
        M /= _SIGNED_POW10[n_frac + sign]
    else:
        E = exponent - n_frac
        if np.abs(E).max() > MAX_EXP:
            return None
        M /= _SIGNED_POW10[np.maximum(-E, 0) + sign]
        M *= _POW10[np.maximum(E, 0)]
    return M.reshape(-1, ncols)


def _mantissa(words, lead, dot, mant_end, n_int, n_frac) -> np.ndarray:
    """float64 integer value of each field's digits with the dot left out (exact: < 10^15).

    Most mantissas, dot included, fit in the one word that ends where the mantissa does: there the
    bytes below the dot move up one byte over it, which leaves the digits contiguous, and one
    word is parsed. Longer ones parse the integer and fraction runs separately."""
    w = words[mant_end + 8]
    at = np.maximum(8 - (mant_end - dot), 0)  # the dot's byte in the word (8: no dot; < 0: long, redone)
    low = w & _BELOW[at]
    low <<= np.uint64(8)
    w &= _ABOVE[at]
    w |= low
    M = _digits(w, np.minimum(n_int + n_frac, 8)).astype(np.float64)
    long = np.flatnonzero((mant_end - lead) > 8)
    if len(long):
        value = _run_value(words, dot[long], n_int[long])
        value *= _POW10[n_frac[long]]
        value += _run_value(words, mant_end[long], n_frac[long])
        M[long] = value
    return M


def _run_value(words: np.ndarray, end: np.ndarray, n: np.ndarray) -> np.ndarray:
    """float64 value of each run of n (0..15) digits ending just before byte `end` of the block."""
    value = _octet(words, end + 8, np.minimum(n, 8)).astype(np.float64)
    long = np.flatnonzero(n > 8)
    if len(long):  # the leading n - 8 digits, from the word before
        value[long] += _octet(words, end[long], n[long] - 8).astype(np.float64) * 1e8
    return value


def _octet(words: np.ndarray, at: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Value of the last n (0..8) bytes, all digits, of each word `words[at]`, which holds block
    bytes [at - 16, at - 8) (`words` starts 16 pad bytes before the block)."""
    return _digits(words[at], n)


def _digits(w: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Value of the last (highest) n (0..8) bytes, all ASCII digits, of each word in `w` (a fresh
    array, overwritten), the first digit the most significant."""
    w &= _KEEP[n]
    w |= _FILL[n]
    w -= _ASCII0  # now one digit value per byte, the first (most significant) digit lowest
    t = np.empty_like(w)
    for shift, mul, mask in _SWAR_STEPS:
        np.right_shift(w, shift, out=t)
        w *= mul
        w += t
        w &= mask
    return w
