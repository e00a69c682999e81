"""The fast loading path (Parquet strings read as dictionaries, numbers copied into the matrix a
block of rows at a time with their statistics, X written into the matrix's room, classes counted)
gives exactly what a straightforward reading of the same values gives: same columns, same bits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from nnctl.config.load import load_spec
from nnctl.data.sources import load_dataset

N = 3000  # rows: several of the matrix's 8192-row blocks only with a smaller block (see the fixture)


def crafted(rows: int = N, seed: int = 0):
    """An Arrow table with every kind of column nnctl reads, missing values in most."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    gap = rng.random(rows) < 0.1  # where the columns with missing values have none

    def with_gaps(values):
        return [None if g else v for g, v in zip(gap, values)]

    levels = np.array(["red", " blue", "green ", "NA", "", "x y"])
    return pa.table({
        "f64": pa.array(rng.standard_normal(rows) * 1e3),
        "f64_nan": pa.array(np.where(gap, np.nan, rng.standard_normal(rows))),
        "f32": pa.array(with_gaps(rng.standard_normal(rows).astype(np.float32).tolist()), pa.float32()),
        "i64": pa.array(rng.integers(-2**40, 2**40, rows)),  # not exact in float32
        "i16": pa.array(with_gaps(rng.integers(-300, 300, rows).tolist()), pa.int16()),
        "u8": pa.array(rng.integers(0, 255, rows).astype(np.uint8)),
        "big": pa.array(1e8 + 30 * rng.standard_normal(rows)),  # too coarse for float32: read in float64
        "when": pa.array(with_gaps([dt.date(2000, 1, 1) + dt.timedelta(days=int(d))
                                    for d in rng.integers(0, 9000, rows)]), pa.date32()),
        "kind": pa.array(with_gaps(levels[rng.integers(0, len(levels), rows)].tolist())),
        "cat": pa.array(levels[rng.integers(0, 3, rows)].tolist()).dictionary_encode(),
        "y": pa.array(rng.standard_normal(rows) / 7),  # an exact float64 target
    })


def reference_columns(tb, exact: set, dtype, coarse: set) -> dict:
    """Each column as nnctl reads it, the plain way: Python values, one at a time."""
    import pyarrow as pa

    out = {}
    for name, col in zip(tb.column_names, tb.columns):
        t = col.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        values = col.to_pylist()
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            v = np.array([np.nan if x is None else float(x) for x in values])
            out[name] = ("number", v if name in exact | coarse else v.astype(dtype), None)
        elif pa.types.is_date(t):
            out[name] = ("date", np.array([np.datetime64("NaT") if x is None else np.datetime64(x, "s")
                                           for x in values], dtype="datetime64[s]"), None)
        else:
            stripped = ["" if x is None else x.strip() for x in values]  # (Parquet: no missing-value markers)
            levels = sorted(set(s for s in stripped if s))
            out[name] = ("text", np.array([levels.index(s) if s else -1 for s in stripped]), levels)
    return out


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 1000 rows: the crafted table spans several, as a large file does."""
    from nnctl.data import arrow

    monkeypatch.setattr(arrow, "ROWS", 1000)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parquet_and_arrow_columns_equal_a_value_by_value_reading(tmp_path, small_blocks, dtype):
    import pyarrow.parquet as pq

    from nnctl.data.frames import arrow_table
    from nnctl.data.reading import read_table

    tb = crafted()
    pq.write_table(tb, tmp_path / "t.parquet", row_group_size=700)  # several row groups and chunks
    coarse = {"big"} if dtype == np.float32 else set()
    expected = reference_columns(tb, {"y"}, dtype, coarse)
    for table in (read_table(tmp_path / "t.parquet", dtype=dtype, exact=("y",)),
                  arrow_table(tb, "t", dtype, ("y",))):
        assert table.names == tb.column_names and table.coarse == coarse
        for name, (kind, values, levels) in expected.items():
            col = table.columns[name]
            assert (col.kind, col.levels) == (kind, levels), name
            assert col.values.dtype == values.dtype, name
            assert col.values.tobytes() == values.tobytes(), name  # bit for bit
            if kind == "number":
                assert col.has_missing() == bool(np.isnan(values).any()), name
                assert col.maybe_infinite() is not (name in table.matrix_columns), name
        lo, hi = table.matrix_range
        for j, name in enumerate(table.matrix_columns):
            v = expected[name][1]
            assert (lo[j], hi[j]) == (np.nanmin(v), np.nanmax(v)), name
        assert table.integral == {"i64", "i16", "u8"}


def test_a_dictionary_value_no_row_has_is_no_level(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnctl.data.arrow import text_column
    from nnctl.data.reading import read_table

    col = text_column("c", np.array([2, -1, 2, 0], dtype=np.int32), ["b", "zz", "a", " b"], used_only=True)
    assert col.levels == ["a", "b"] and col.values.tolist() == [0, -1, 0, 1]
    assert text_column("c", np.array([2, 0]), ["b", "zz", "a"]).levels == ["a", "b", "zz"]  # a categorical's own
    # a string column in Parquet comes back as a dictionary; its levels are the values present
    pq.write_table(pa.table({"s": ["q", None, "p", "q"], "x": [1.0, 2, 3, 4]}), tmp_path / "s.parquet")
    s = read_table(tmp_path / "s.parquet").columns["s"]
    assert s.levels == ["p", "q"] and s.values.tolist() == [1, -1, 0, 1]


def reference_x(tb, features: list[str], dtype) -> np.ndarray:
    """One column per number, one-hot per text level (sorted), as the plain reading gives them."""
    cols = reference_columns(tb, set(), dtype, set())
    parts = []
    for name in features:
        kind, v, levels = cols[name]
        parts.append(v[:, None] if kind == "number" else (v[:, None] == np.arange(len(levels))).astype(dtype))
    return np.hstack(parts).astype(dtype)


@pytest.mark.parametrize("order", [("n1", "n2", "kind", "cat"), ("n1", "kind", "n2", "cat"), ("kind", "n1", "n2")])
def test_x_written_into_the_matrix_room_equals_a_separate_x(tmp_path, small_blocks, order):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    data = {"n1": rng.standard_normal(N), "n2": rng.integers(0, 9, N),
            "kind": np.array(["u", "v", "w"])[rng.integers(0, 3, N)],
            "cat": np.array(["p", "q"])[rng.integers(0, 2, N)]}
    tb = pa.table({**{k: data[k] for k in order}, "label": np.array(["a", "b"])[rng.integers(0, 2, N)]})
    pq.write_table(tb, tmp_path / "t.parquet")
    spec = load_spec(data={"data": {"source": str(tmp_path / "t.parquet"), "target": "label"}})
    ds = load_dataset(spec.data, np.float32)
    matrix, room = ds.table.matrix, ds.table.matrix_room
    ds.encode(spec.data, np.arange(N), np.float32)
    assert ds.X.dtype == np.float32 and ds.X.tobytes() == reference_x(tb, list(order), np.float32).tobytes()
    numbers_first = order[0] == "n1" and order[1] == "n2"
    assert (room is not None) == numbers_first
    assert np.shares_memory(ds.X, matrix) == numbers_first  # the numbers were not copied
    if numbers_first:
        assert ds.X.flags.c_contiguous  # the room was just wide enough
    assert ds.class_names == ["a", "b"] and ds.y.tolist() == [["a", "b"].index(v) for v in tb["label"].to_pylist()]


@pytest.mark.parametrize("categorical,names,in_room", [
    ("most_frequent", ["n1", "kind=u", "kind=v", "kind.missing"], True),  # 4 columns: the room's width
    ("missing", ["n1", "kind=(missing)", "kind=u", "kind=v", "kind.missing"], False),  # 5: too wide
])
def test_x_in_the_room_or_apart_equals_x_made_without_room(tmp_path, small_blocks, categorical, names, in_room):
    """Imputation with an indicator and a level seen only outside the training rows (all zeros):
    X is the same whether it is written into the room or apart, and the room is used only if wide
    enough."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnctl.data.columns import encoding_from_json

    rng = np.random.default_rng(2)
    kind = np.array(["u", "v", "w"])[rng.integers(0, 3, N)].astype(object)
    kind[rng.random(N) < 0.1] = None
    tb = pa.table({"n1": rng.standard_normal(N), "kind": list(kind), "label": rng.integers(0, 3, N)})
    pq.write_table(tb, tmp_path / "t.parquet")
    spec = load_spec(data={"data": {"source": str(tmp_path / "t.parquet"), "target": "label", "missing": "impute",
                                    "impute": {"indicator": True, "categorical": categorical}}})
    train = np.flatnonzero(kind != "w")
    ds = load_dataset(spec.data, np.float32)
    matrix = ds.table.matrix
    table = load_dataset(spec.data, np.float32).table
    table.matrix_room = None
    ds.encode(spec.data, train, np.float32)
    assert ds.feature_names == names
    apart = encoding_from_json(ds.columns).transform(table, np.float32)
    assert ds.X.tobytes() == apart.tobytes()
    assert np.shares_memory(ds.X, matrix) == in_room


@pytest.mark.parametrize("y", [
    np.array([3.0, -1, 3, 0, 7, 7, -1]),  # integers, negative ones too
    np.array([0.5, 0.25, 0.5, 1e9]),  # fractions
    np.array([0.0, 1e6, 2.0, 1e6]),  # integers too far apart to count
    np.array([-0.0, 0.0, 1.0]),
    np.array([2.0]),
])
def test_counted_classes_equal_sorted_ones(y):
    from nnctl.data.roles import _distinct_codes, _distinct_numbers

    got, want = _distinct_numbers(y), np.unique(y, return_inverse=True, return_counts=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    codes = np.array([4, 0, 4, 9, 0], dtype=np.int64)
    labels, inverse = _distinct_codes(codes)
    want_labels, want_inverse = np.unique(codes, return_inverse=True)
    assert labels.tolist() == want_labels.tolist() and inverse.tolist() == want_inverse.tolist()
    assert inverse.dtype == np.int64


@pytest.mark.parametrize("case", ["eval_read", "missing_number", "id_column", "ignored_column", "features_key"])
def test_no_room_where_it_would_go_unused(tmp_path, case):
    """The room is memory whether X is written into it or not (each row's numbers touch its pages),
    so it is made only for training reads whose X can use it: not for the rows eval and predict
    read, nor with a missing number or a column left out of the features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnctl.data.roles import read_data_file

    rng = np.random.default_rng(5)
    n1 = rng.standard_normal(N)
    if case == "missing_number":
        n1[7] = np.nan
    tb = pa.table({"n1": pa.array(n1, from_pandas=True), "n2": rng.standard_normal(N),
                   "kind": np.array(["u", "v"])[rng.integers(0, 2, N)], "label": rng.integers(0, 2, N)})
    pq.write_table(tb, tmp_path / "t.parquet")
    data = {"source": str(tmp_path / "t.parquet"), "target": "label", "missing": "impute"}
    data.update({"id_column": {"id": "n2"}, "ignored_column": {"ignore": ["n2"]},
                 "features_key": {"features": ["n2", "n1", "kind"]}}.get(case, {}))
    spec = load_spec(data={"data": data})
    if case == "eval_read":
        assert read_data_file(tmp_path / "t.parquet", spec.data, np.float32).matrix_room is None
        assert load_dataset(spec.data, np.float32).table.matrix_room is not None  # training's read has it
    else:
        assert load_dataset(spec.data, np.float32).table.matrix_room is None


def test_unsigned_dictionary_codes_keep_their_levels():
    """An Arrow table in memory whose text column is dictionary<uint8> with 200 levels (what some
    writers give for a categorical): code 150 is level 150, not the level of -106."""
    import pyarrow as pa

    from nnctl.data.arrow import to_raw

    levels = [f"v{i:03d}" for i in range(200)]
    codes = np.array([0, 127, 128, 150, 199, 3], dtype=np.uint8)
    arr = pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.uint8()), pa.array(levels))
    col = to_raw("c", pa.chunked_array([arr]), Path("mem"))
    assert [col.levels[k] for k in col.values] == [levels[k] for k in codes]
    with_null = pa.DictionaryArray.from_arrays(pa.array([200 - 1, None, 130], type=pa.uint8()), pa.array(levels))
    col = to_raw("c", pa.chunked_array([with_null]), Path("mem"))
    assert col.values[1] == -1 and [col.levels[col.values[0]], col.levels[col.values[2]]] == ["v199", "v130"]


def _same_table(a, b) -> None:
    assert a.names == b.names and a.n_rows == b.n_rows and a.integral == b.integral
    assert a.matrix_columns == b.matrix_columns
    assert a.matrix.tobytes() == b.matrix.tobytes()
    for lo_hi_a, lo_hi_b in zip(a.matrix_range, b.matrix_range):
        assert lo_hi_a.tobytes() == lo_hi_b.tobytes()
    for name in a.names:
        ca, cb = a.columns[name], b.columns[name]
        assert (ca.kind, ca.levels, ca.values.dtype) == (cb.kind, cb.levels, cb.values.dtype), name
        assert ca.values.tobytes() == cb.values.tobytes(), name
        assert ca.has_missing() == cb.has_missing() and ca.maybe_infinite() == cb.maybe_infinite(), name


@pytest.mark.parametrize("batch_rows", [7, 700, 1 << 16])
@pytest.mark.parametrize("stats", [True, False])
@pytest.mark.parametrize("gaps", [True, False])
def test_parquet_read_in_batches_equals_the_whole_table_converted(tmp_path, small_blocks, batch_rows, stats, gaps):
    """from_parquet (the numbers streamed in batches that need not line up with row groups or
    blocks, the rest read first) makes the same Table as from_arrow on the whole table, bit for bit,
    room included when the statistics say no number is missing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnctl.data.arrow import from_arrow, from_parquet

    tb = crafted()
    if not gaps:  # numbers without nulls (the room needs that), text and dates after them
        tb = tb.select(["f64", "i64", "u8", "big", "y", "cat", "when"])
        tb = tb.set_column(tb.column_names.index("when"), "when", tb.column("when").fill_null(dt.date(2001, 2, 3)))
    tb = tb.add_column(0, "a.b", pa.array(np.arange(len(tb), dtype=np.float64)))  # a dotted name, numeric
    path = tmp_path / "t.parquet"
    pq.write_table(tb, path, row_group_size=700, write_statistics=stats)
    strings = [f.name for f in tb.schema if pa.types.is_string(f.type)]
    whole = pq.ParquetFile(path, read_dictionary=strings).read()
    for dtype in (np.float32, np.float64):
        expected = from_arrow([whole], path, dtype, {"y"}, parquet=True, encoded=set(strings), room=True)
        with pq.ParquetFile(path, read_dictionary=strings) as pf:
            got = from_parquet(pf, path, dtype, {"y"}, encoded=set(strings), room=True, batch_rows=batch_rows)
        _same_table(got, expected)
        assert (expected.matrix_room is not None) == (not gaps)
        assert (got.matrix_room is not None) == (stats and not gaps), "room only with statistics saying no nulls"
        if got.matrix_room is not None:
            assert got.matrix_room.shape == expected.matrix_room.shape


def test_a_damaged_parquet_file_is_a_data_error_naming_it(tmp_path):
    import pyarrow.parquet as pq

    from nnctl.data.reading import read_table
    from nnctl.errors import DataError

    path = tmp_path / "t.parquet"
    pq.write_table(crafted(), path, row_group_size=700)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(4000)  # pages zeroed; header and footer intact
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"t\.parquet"):
        read_table(path, dtype=np.float32)


def _patch_footer(path: Path, old: bytes, new: bytes, which: int = 0) -> None:
    """Replace the `which`-th occurrence of `old` in the Parquet footer (thrift) by `new`."""
    import struct

    data = bytearray(path.read_bytes())
    start = len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]
    hits = [i for i in range(start, len(data)) if data[i:i + len(old)] == old]
    if len(hits) <= which:
        pytest.skip("this pyarrow writes its footer differently: the damage cannot be made here")
    data[hits[which]:hits[which] + len(old)] = new
    path.write_bytes(bytes(data))


def _set_row_count(path: Path, rows: int, claimed: int) -> None:
    """Make the footer's FileMetaData.num_rows say `claimed` (an i64, zigzag varint) instead of `rows`."""
    import pyarrow.parquet as pq

    def varint(v: int) -> bytes:
        z, out = (v << 1) ^ (v >> 63), b""
        while True:
            out += bytes([(z & 0x7F) | (0x80 if z > 0x7F else 0)])
            z >>= 7
            if not z:
                return out

    original = path.read_bytes()
    for which in range(8):  # the first field-header + value that, patched, changes num_rows
        path.write_bytes(original)
        _patch_footer(path, b"\x16" + varint(rows), b"\x16" + varint(claimed), which)
        try:
            if pq.ParquetFile(path).metadata.num_rows == claimed:
                return
        except Exception:  # noqa: BLE001 - that occurrence was another field
            pass
    pytest.skip("the footer's row count could not be found")


@pytest.mark.parametrize("damage", ["name not utf-8", "negative row count", "row count too high", "short column"])
def test_a_parquet_footer_that_disagrees_with_its_data_is_a_data_error(tmp_path, damage):
    """Footers that lie: `nnctl train` exits 2 with one message naming the file; never a traceback, and
    never a model trained on columns of different lengths (the streamed reader trusts the footer's
    row count to size the matrix, so it checks every column against it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.test_cli import run

    path = tmp_path / "d.parquet"
    n = 60
    table = pa.table({"f": np.arange(n, dtype=float), "g": np.arange(n, dtype=float) ** 2,
                      "c": pa.array(["a", "b", "c"] * (n // 3))})
    if damage == "name not utf-8":
        pq.write_table(table, path)
        data = bytearray(path.read_bytes())
        data[data.rindex(b"f\x15")] = 0xFF  # the last column chunk's path_in_schema "f"
        path.write_bytes(bytes(data))
    elif damage == "negative row count":
        pq.write_table(table, path)
        _set_row_count(path, n, -n)
    elif damage == "row count too high":  # text only: nothing streamed to count
        pq.write_table(table.select(["c"]).append_column("d", pa.array(["u", "v"] * (n // 2))), path)
        _set_row_count(path, n, n + 1)
    else:  # column "c" says it has -9 values in its second row group: it reads as 30 rows of 60
        pq.write_table(table, path, row_group_size=30, compression="none")
        _patch_footer(path, bytes.fromhex("19 18 01 63 15 00 16 3c"), bytes.fromhex("19 18 01 63 15 00 16 11"), 1)
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"name: d\ndata: {{source: {path}, target: c}}\ntrain: {{epochs: 2}}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q")
    assert out.exit_code == 2, (damage, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and str(path) in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["csv", "parquet", "big_csv"])
def test_reading_does_not_wait_for_the_fingerprint_and_runs_record_the_files_sha256(tmp_path, monkeypatch, kind):
    """The file's sha256 is hashed on a thread that reading does not wait for (it would take the
    cores Arrow parses on); the run's split.npz still holds exactly the file's sha256."""
    import hashlib
    import threading
    import time

    from nnctl.build import prepare
    from nnctl.data import reading

    path = _small_file(tmp_path, kind)
    if kind == "big_csv":
        monkeypatch.setattr(reading, "PARALLEL_FROM", 1)  # the block reader
    release = threading.Event()
    real = reading.PendingDigest._hash

    def held_back(self):
        release.wait(10)
        real(self)

    monkeypatch.setattr(reading.PendingDigest, "_hash", held_back)
    t0 = time.perf_counter()
    table = reading.read_table(path, dtype=np.float32)
    assert time.perf_counter() - t0 < 5  # it did not wait for the hash (held back 10 s)
    assert table.matrix is not None and table.fingerprint.value is None
    release.set()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(table.fingerprint) == sha and table.fingerprint == sha
    p = prepare(load_spec(data={"data": {"source": str(path), "target": "y"}, "train": {"epochs": 1}}))
    assert p.dataset.fingerprint == sha and isinstance(p.dataset.fingerprint, str)


def _small_file(tmp_path, kind: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 20_000 if kind == "big_csv" else 300
    x = rng.standard_normal((n, 3))
    y = (x[:, 0] > 0).astype(int)
    path = tmp_path / ("d.parquet" if kind == "parquet" else "d.csv")
    if kind == "parquet":
        pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}), path)
    else:
        path.write_text("a,b,c,y\n" + "".join(f"{a:.6g},{b:.6g},{c:.6g},{t}\n" for (a, b, c), t in zip(x, y)))
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet", "big_csv"])
@pytest.mark.parametrize("then", ["replaced", "removed"])
def test_the_fingerprint_is_of_the_bytes_parsed_even_if_the_file_changes_before_it_is_hashed(
        tmp_path, monkeypatch, kind, then):
    """The hash starts after the parse, but from a handle opened before it: a file replaced (or
    removed) in between is not what the fingerprint describes; the bytes trained on are."""
    import hashlib
    import os

    import pyarrow.csv as pacsv

    from nnctl.data import blocks, reading

    path = _small_file(tmp_path, kind)
    parsed = hashlib.sha256(path.read_bytes()).hexdigest()
    other = tmp_path / "other"
    other.write_bytes(path.read_bytes() + b"\n")

    def change():
        if then == "replaced":
            os.replace(other, path)
        else:
            path.unlink()

    def after(fn):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            change()
            return out
        return wrapped

    if kind == "big_csv":
        monkeypatch.setattr(reading, "PARALLEL_FROM", 1)
        monkeypatch.setattr(reading, "read_numeric_blocks", after(blocks.read_numeric_blocks))
    elif kind == "csv":
        monkeypatch.setattr(pacsv, "read_csv", after(pacsv.read_csv))
    else:
        monkeypatch.setattr(reading, "_parquet_table", after(reading._parquet_table))
    table = reading.read_table(path, dtype=np.float32)
    assert str(table.fingerprint) == parsed


def test_a_fingerprint_pickles_as_its_sha256(tmp_path):
    import hashlib
    import pickle

    from nnctl.data import reading

    path = _small_file(tmp_path, "csv")
    table = reading.read_table(path)
    assert pickle.loads(pickle.dumps(table.fingerprint)) == hashlib.sha256(path.read_bytes()).hexdigest()
