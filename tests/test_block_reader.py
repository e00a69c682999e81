"""The block reader for large all-numeric text files (nnctl/data/blocks.py read_numeric_blocks): the
same values as the whole-file reader, bit for bit, whatever the blocks' cuts; anything unusual goes
back to the whole-file reader; and it does not hold the file's text in memory (issue 14)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnctl.data.blocks as blocks_mod
import nnctl.data.reading as reading
from nnctl.data.reading import read_table


def _numbers_text(rows: int, seed: int = 0) -> str:
    """Lines of 4 columns: float32-level and 17-digit floats, missing cells (empty, NA), an integer
    column, an exact (float64) target."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(rows):
        a = f"{rng.normal():.6g}" if i % 89 != 7 else ""
        a = "-inf" if i == 4321 else a
        b = repr(float(rng.normal() * 1e-3)) if i % 61 != 3 else "NA"
        c = str(int(rng.integers(-50, 50)))
        t = f"{rng.normal() * 1e3:.9g}"
        out.append(f"{a},{b},{c},{t}")
    return "\n".join(out)


def _read_both(p: Path, monkeypatch, block: int = 4096):
    """(whole-file reader's table, block reader's table, calls of the block reader that returned a table)."""
    whole = read_table(p, dtype=np.float32, exact=("t",))
    used = []
    real = blocks_mod.read_numeric_blocks

    def spy(*a, **k):
        table = real(*a, **k)
        used.append(table is not None)
        return table

    with monkeypatch.context() as m:
        m.setattr(reading, "read_numeric_blocks", spy)
        m.setattr(reading, "PARALLEL_FROM", 0)
        m.setattr(blocks_mod, "BLOCK", block)
        blocks = read_table(p, dtype=np.float32, exact=("t",))
    return whole, blocks, used


def _assert_same(whole, blocks):
    assert blocks.n_rows == whole.n_rows and blocks.names == whole.names
    for name in whole.names:
        a, b = whole.columns[name].values, blocks.columns[name].values
        assert a.dtype == b.dtype, name
        assert a.tobytes() == b.tobytes(), name  # bit for bit, NaNs included
    assert blocks.fingerprint == whole.fingerprint and blocks.integral == whole.integral
    # the numeric columns' range, missing values and infinities, counted while the matrix is filled
    assert blocks.matrix_columns == whole.matrix_columns
    for a, b in zip(whole.matrix_range, blocks.matrix_range):
        np.testing.assert_array_equal(a, b)
    for name in whole.matrix_columns:
        w, b = whole.columns[name], blocks.columns[name]
        assert (w.has_missing(), w.maybe_infinite()) == (b.has_missing(), b.maybe_infinite()), name


@pytest.mark.parametrize("newline,trailing", [("\n", 1), ("\r\n", 1), ("\n", 0), ("\n", 3), ("\r\n", 2)])
def test_block_reader_gives_the_whole_file_readers_values_bit_for_bit(tmp_path, monkeypatch, newline, trailing):
    """Also with blank lines at the end of the file (skipped by both readers), which used to send
    the file to the whole-file reader."""
    p = tmp_path / "n.csv"
    body = _numbers_text(6000).replace("\n", newline)
    p.write_bytes(("a,b,c,t" + newline + body + newline * trailing).encode())
    whole, blocks, used = _read_both(p, monkeypatch)
    assert used == [True]  # the block reader read it (many blocks of 4 KB), not the whole-file reader
    _assert_same(whole, blocks)
    assert blocks.columns["t"].values.dtype == np.float64 and blocks.matrix.dtype == np.float32
    assert np.isnan(blocks.columns["a"].values[7]) and np.isnan(blocks.columns["b"].values[3])


def test_lines_longer_than_a_block_and_a_reservation_refused_give_the_same_values(tmp_path, monkeypatch):
    """A line longer than BLOCK grows the block; without room to reserve the rows' bound, the rows
    are counted first and the matrix allocated exactly; a line beyond LONGEST_LINE: whole file."""
    rng = np.random.default_rng(1)
    names = [f"x{i}" for i in range(300)] + ["t"]
    lines = [",".join(f"{v:.17g}" for v in rng.normal(size=len(names))) for _ in range(400)]  # ~5.5 KB each
    p = tmp_path / "wide.csv"
    p.write_text(",".join(names) + "\n" + "\n".join(lines) + "\n")
    whole, blocks, used = _read_both(p, monkeypatch, block=1024)
    assert used == [True]
    _assert_same(whole, blocks)
    monkeypatch.setattr(blocks_mod, "_reserved", lambda shape, dtype: None)
    whole, blocks, used = _read_both(p, monkeypatch, block=1024)
    assert used == [True]
    _assert_same(whole, blocks)
    assert blocks.matrix.shape == (400, 300)
    monkeypatch.setattr(blocks_mod, "LONGEST_LINE", 4096)  # a line longer than that: the whole-file reader
    whole, blocks, used = _read_both(p, monkeypatch, block=1024)
    assert used == [False]
    _assert_same(whole, blocks)


@pytest.mark.parametrize("oddity", ["quoted", "blank", "text", "float_in_int"])
def test_an_unusual_block_goes_back_to_the_whole_file_reader(tmp_path, monkeypatch, oddity):
    """A quote, a blank line, a word or a decimal in an integer column, deep in the file: the block
    reader steps aside and the whole-file reader's result (or message) is what the user gets. (The
    column types come from the file's first MB: the oddity is after it.)"""
    lines = _numbers_text(30000).split("\n")
    at = 28000
    if oddity == "quoted":
        lines[at] = '"1.5","2.5",3,"4.5"'
    elif oddity == "blank":
        lines.insert(at, "")
    elif oddity == "text":
        lines[at] = "1.5,oops,3,4.5"
    else:
        lines[at] = "1.5,2.5,3.25,4.5"
    p = tmp_path / "odd.csv"
    p.write_text("a,b,c,t\n" + "\n".join(lines) + "\n")
    assert len("\n".join(lines[:at])) > 1 << 20
    whole, blocks, used = _read_both(p, monkeypatch)
    assert used == [False]
    _assert_same(whole, blocks)
    assert whole.columns["b"].kind == ("text" if oddity == "text" else "number")


_PEAK_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import nnctl.data.blocks as blocks_mod
    import nnctl.data.reading as reading

    def rss(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

    growth = []
    real = blocks_mod.read_numeric_blocks

    def measured(*a, **k):
        with open("/proc/self/clear_refs", "w") as f:  # the peak starts again from here
            f.write("5")
        before = rss("VmRSS")
        table = real(*a, **k)
        numbers = table.matrix.nbytes + sum(c.values.nbytes for n, c in table.columns.items() if n == "t")
        growth.append((rss("VmHWM") - before, numbers))
        return table

    reading.read_numeric_blocks = measured
    reading.read_table(sys.argv[1], dtype=np.float32, exact=("t",))
    print(*growth[0])
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc (peak RSS reset)")
def test_the_block_reader_does_not_hold_the_files_text_in_memory(tmp_path):
    """The peak memory of reading a 64 MB numeric file block by block is its numbers (16 MB) and
    some blocks in flight, well below numbers + half the text (a memory-mapped file counts all of
    its text: about numbers + text)."""
    rng = np.random.default_rng(0)
    chunk = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rng.normal(size=(5000, 4)))
    p = tmp_path / "big.csv"
    with open(p, "w") as f:
        f.write("a,b,c,t\n")
        while f.tell() < 64 << 20:
            f.write(chunk)
    size = p.stat().st_size
    assert size > blocks_mod.PARALLEL_FROM  # the block reader's size, without any patching
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(p)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    growth, numbers = map(int, out.stdout.split())
    assert numbers < size / 3
    assert growth < numbers + size / 2, f"peak grew {growth / 2**20:.0f} MB reading a {size / 2**20:.0f} MB file"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc (RSS)")
def test_training_rows_written_over_the_matrix_give_the_rest_of_it_back():
    """After the training rows are written over the start of the parsed matrix, the rest of it (the
    val and test rows, already copied out) no longer counts in the process's memory."""
    from nnctl.data.preprocess import fit_preprocessor
    from nnctl.data.table import populated_empty

    def rss() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

    M = populated_empty((2_000_000, 8), np.float32)  # 64 MB
    M[...] = np.arange(8, dtype=np.float32)
    M[:, 0] = np.arange(len(M))
    rows = np.arange(0, len(M), 4)  # a quarter: 16 MB
    pre = fit_preprocessor("standardize", M, None, rows=rows)
    expected = pre.transform(M[rows[::1000]]).astype(np.float32)
    before = rss()
    out = pre.transform_rows(M, rows, np.float32, consume=True)
    assert np.shares_memory(out, M)
    assert before - rss() > 32 << 20, f"{(before - rss()) >> 20} MB given back"
    np.testing.assert_array_equal(out[::1000], expected)
