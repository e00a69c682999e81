"""The vectorized CSV number reader: exactly Python's float() on what it accepts, None on anything else.

Differential tests against float(): random matrices printed in many number formats, then the same
text with random bytes replaced or inserted. Whenever the reader returns a matrix, every value is
bit-for-bit float(field); whenever some field is not a number or a row is ragged, it returns None
(and the caller falls back to loadtxt and the careful reader). Small blocks exercise the block
boundaries. NNCTL_FUZZ_EXAMPLES raises the example count.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnctl.data.fastcsv as fastcsv
from nnctl.data.reading import load_csv

EXAMPLES = int(os.environ.get("NNCTL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def read(text: str | bytes, ncols: int, block: int | None = None, dtype=np.float64, workers: int | None = None):
    data = text.encode() if isinstance(text, str) else text
    old = fastcsv.BLOCK
    if block is not None:
        fastcsv.BLOCK = block
    try:
        return fastcsv.read_numeric(io.BytesIO(data), ncols, dtype, workers)
    finally:
        fastcsv.BLOCK = old


def expected(text: str, ncols: int):
    """What float() makes of the text, or None if a field is not a number or a row is ragged."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    rows = []
    for line in lines:
        fields = line.split(",")
        if len(fields) != ncols:
            return None
        try:
            rows.append([float(x) for x in fields])
        except ValueError:
            return None
    return np.array(rows, dtype=np.float64)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


FORMATS = [repr, str, "{:.6g}".format, "{:.3e}".format, "{:.10E}".format, "{:.4f}".format, "{:.0f}".format,
           "{:+.5g}".format, lambda v: str(int(v)) if abs(v) < 1e15 else repr(v)]
PLAIN = FORMATS[2:3] + FORMATS[5:7]  # always within the fast grammar for |v| in {0} U [1e-15, 1e9]
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
small = st.floats(min_value=-1e-3, max_value=1e-3, allow_nan=False, allow_infinity=False)


@st.composite
def bodies(draw):
    ncols = draw(st.integers(1, 6))
    nrows = draw(st.integers(1, 25))
    values = draw(st.lists(st.one_of(finite, small, st.integers(-10**6, 10**6).map(float)),
                           min_size=ncols * nrows, max_size=ncols * nrows))
    fmt = draw(st.sampled_from(FORMATS))
    cells = [fmt(v) for v in values]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(cells[r * ncols:(r + 1) * ncols]) for r in range(nrows)]
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    plain = fmt in PLAIN and all(v == 0 or abs(v) >= 1e-15 for v in values)
    return text, ncols, plain


@FUZZ
@given(bodies(), st.sampled_from([None, 7, 64]), st.sampled_from([1, 2, 3]))
def test_matches_float_exactly_or_declines(body, block, workers):
    text, ncols, plain = body
    got, want = read(text, ncols, block, workers=workers), expected(text, ncols)
    assert want is not None
    if plain:
        assert got is not None, text
    if got is not None:
        assert same_bits(got, want), (text, got, want)


@FUZZ
@given(bodies(), st.data())
def test_corrupted_text_is_never_misread(body, data):
    text, ncols, _ = body
    chars = list("0123456789.-+eE,\n\r x\"")
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(text)))
        ch = data.draw(st.sampled_from(chars))
        text = text[:pos] + ch + text[pos + data.draw(st.integers(0, 1)):]
    got = read(text, ncols, data.draw(st.sampled_from([None, 5, 48])), workers=data.draw(st.sampled_from([1, 2])))
    want = expected(text, ncols)
    if want is None:
        assert got is None, (text, got)
    elif got is not None:
        assert same_bits(got, want), (text, got, want)


@pytest.mark.parametrize("text, values", [
    ("1,-2,+3\n", [1.0, -2.0, 3.0]),
    (".5,5.,-.25\n", [0.5, 5.0, -0.25]),
    ("1e5,1E-05,-2.5e+3\n", [1e5, 1e-05, -2.5e3]),
    ("-0,0.0,-0.0\n", [-0.0, 0.0, -0.0]),
    ("123456789012345,0.00000000000001,1.e2\n", [123456789012345.0, 1e-14, 100.0]),
    ("0.1,0.2,0.30000000000004\n", [0.1, 0.2, 0.30000000000004]),
    ("1,2,3", [1.0, 2.0, 3.0]),  # no final newline
    ("1,2,3\r\n", [1.0, 2.0, 3.0]),
])
def test_accepted_forms(text, values):
    got = read(text, 3)
    assert got is not None and same_bits(got, np.array([values]))


@pytest.mark.parametrize("text", [
    "1,2\n", "1,2,3,4\n", "1,,3\n", "1,2,3\n\n", " 1,2,3\n", "1,2,nan\n", "1,2,inf\n", '1,"2",3\n',
    "1.2.3,1,1\n", "1e,1,1\n", "e5,1,1\n", "1e1234,1,1\n", "1e5.5,1,1\n", "--1,1,1\n", "1-2,1,1\n",
    "1234567890123456,1,1\n", "0.30000000000000004,1,1\n",
    "1e23,1,1\n", "1e-23,1,1\n", "1_0,1,1\n", "1,2,3\r\r\n", "1,2,3\n4,5\n6,7,8\n",
    ".,1,1\n", "+,1,1\n", "",
])
def test_declined_forms(text):
    assert read(text, 3) is None


def test_float32_is_the_double_rounded_once_like_loadtxt():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3000, 4)) * 10.0 ** rng.integers(-6, 6, size=(3000, 4))
    text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in values) + "\n"
    want = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32)
    for workers in (1, 2):  # 2 threads, many blocks: every block's rows at their own place
        got = read(text, 4, 1000, dtype=np.float32, workers=workers)
        assert got is not None and got.dtype == np.float32 and same_bits(got, want)


def test_load_csv_falls_back_for_what_the_fast_reader_declines(tmp_path):
    """Spaces and 'nan' are not the fast reader's grammar: loadtxt or the careful reader take over,
    with the same result or the same error as before."""
    path = tmp_path / "spaced.csv"
    path.write_text("a,b,y\n 1.5, 2,0\n3 ,4,1\n5,6,0\n7,8,1\n")
    ds = load_csv(path, "y", None, "classification")
    np.testing.assert_array_equal(ds.X, [[1.5, 2], [3, 4], [5, 6], [7, 8]])
    from nnctl.errors import DataError

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,0\n3,nan,1\n5,6,0\n")
    with pytest.raises(DataError, match=r"line 3, column 'b'"):
        load_csv(bad, "y", None, "classification")


def test_cr_only_line_ends_still_take_a_numeric_path(tmp_path):
    """Old-Mac \\r-only files are not the fast reader's: loadtxt reads them, to the training dtype
    (the careful reader would give float64)."""
    path = tmp_path / "cr.csv"
    path.write_bytes(b"a,b,y\r1.5,2,0\r3,4,1\r5,6,0\r7,8,1\r")
    ds = load_csv(path, "y", None, "classification", dtype=np.float32)
    assert ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X, [[1.5, 2], [3, 4], [5, 6], [7, 8]])


@pytest.mark.parametrize("text", ["a,b,y\n1,2,0\n3,4,1\n5,6,0\n", "a,b,y\r\n1,2,0\r\n3,4,1\r\n5,6,0",
                                  "a,b,y\n 1,2,0\n3,4,1\n5,6,0\n", "a,b,y\r1,2,0\r3,4,1\r5,6,0\r"])
def test_the_fingerprint_is_the_files_sha256_on_every_path(tmp_path, text):
    """The fast reader hashes the file while counting its lines; loadtxt's and the careful reader's
    paths hash it separately: the same sha256 of the file's bytes either way."""
    import hashlib

    from nnctl.data.reading import file_fingerprint

    path = tmp_path / "d.csv"
    path.write_bytes(text.encode())
    ds = load_csv(path, "y", None, "classification", dtype=np.float32)
    assert ds.fingerprint == file_fingerprint(path) == hashlib.sha256(text.encode()).hexdigest()
