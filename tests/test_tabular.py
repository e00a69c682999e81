"""Real-world data files (DESIGN §2, §5): reading options, column roles, missing values, levels
fitted on the training rows only, dates, ids, the task and its reason."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import zipfile

import numpy as np
import pytest

from nnctl.build import prepare
from nnctl.config.load import load_spec
from nnctl.data.sources import load_dataset
from nnctl.errors import ConfigError, DataError
from tests.test_cli import run

ROWS = [("Adelie", "Torgersen", 39.1, "male"), ("Gentoo", "Biscoe", 46.1, "female"),
        ("Chinstrap", "Dream", 49.5, "female"), ("Adelie", "Dream", 37.8, "female"),
        ("Gentoo", "Biscoe", 50.0, "male"), ("Chinstrap", "Dream", 51.3, "male")] * 5


def table_text(rows=ROWS, delimiter=",", decimal=".", header=("species", "island", "bill", "sex")):
    lines = [delimiter.join(header)] if header else []
    for r in rows:
        lines.append(delimiter.join(str(v).replace(".", decimal) if isinstance(v, float) else str(v) for v in r))
    return "\n".join(lines) + "\n"


def spec_for(path, **data):
    return load_spec(data={"name": "t", "seed": 0, "data": {"source": str(path), **data},
                           "model": {"hidden": [4]}, "train": {"epochs": 1}})


def loaded(path, **data):
    spec = spec_for(path, **data)
    ds = load_dataset(spec.data)
    ds.encode(spec.data, np.arange(len(ds.y)))
    return ds


def reference(tmp_path):
    p = tmp_path / "ref.csv"
    p.write_text(table_text())
    return loaded(p, target="species")


# ------------------------------------------------------------------------------------ reading
@pytest.mark.parametrize("delimiter,decimal,given", [
    (";", ",", {}),  # European: sniffed ';' although decimal commas also split on ','
    ("\t", ".", {}),
    ("|", ".", {}),
    (";", ",", {"delimiter": ";", "decimal": ","}),
])
def test_delimiters_and_decimal_commas_read_like_the_plain_csv(tmp_path, delimiter, decimal, given):
    p = tmp_path / "d.txt"
    p.write_text(table_text(delimiter=delimiter, decimal=decimal))
    ds = loaded(p, target="species", decimal=decimal, **{k: v for k, v in given.items() if k != "decimal"})
    ref = reference(tmp_path)
    np.testing.assert_array_equal(ds.X, ref.X)
    assert ds.feature_names == ref.feature_names and ds.class_names == ref.class_names


def test_decimal_comma_without_the_setting_names_the_fix(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(table_text(delimiter=";", decimal=","))
    with pytest.raises(DataError, match=r"line 2, column 'bill': expected a number, found '39,1'; numbers with a "
                                        r"decimal comma need data.decimal: ','"):
        loaded(p, target="species")


def test_runs_of_spaces_no_header_bom_and_crlf(tmp_path):
    p = tmp_path / "d.txt"
    text = table_text(header=None).replace(",", "   ").replace("\n", "\r\n")
    p.write_bytes(b"\xef\xbb\xbf" + ("  " + text.replace("\r\n", "\r\n  ", 3)).encode())
    ds = loaded(p, target=0, header=False)
    ref = reference(tmp_path)
    np.testing.assert_array_equal(ds.X, ref.X)
    assert ds.target_name == "c0" and ds.feature_names[0] == "c1=Biscoe"


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_files_by_extension(tmp_path, suffix):
    raw = table_text().encode()
    p = tmp_path / f"d.csv{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("d.csv", raw)
    else:
        p.write_bytes({".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix](raw))
    np.testing.assert_array_equal(loaded(p, target="species").X, reference(tmp_path).X)


def test_parquet_reads_like_the_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = list(zip(*ROWS))
    pq.write_table(pa.table({"species": cols[0], "island": cols[1], "bill": cols[2], "sex": cols[3]}),
                   tmp_path / "d.parquet")
    ds = loaded(tmp_path / "d.parquet", target="species")
    np.testing.assert_array_equal(ds.X, reference(tmp_path).X)


def test_na_values_list_replaces_the_defaults(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n" + "1,-999,0\n2,-999,1\n" * 5)
    with pytest.raises(DataError, match="'b': 10 missing"):
        loaded(p, na_values=["-999"])
    assert loaded(p).X[0].tolist() == [1.0, -999.0]


# ------------------------------------------------------------------------------------ missing values
MISSING = "a,b,color,y\n" + "".join(f"{i},{'' if i % 7 == 3 else i % 5},{'NA' if i % 9 == 4 else 'rgb'[i % 3]},"
                                      f"{'?' if i == 11 else i % 2}\n" for i in range(40))


def test_missing_error_lists_every_column_at_once(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text(MISSING)
    with pytest.raises(DataError) as e:
        loaded(p)
    msg = str(e.value)
    assert "missing values in 3 columns" in msg
    assert "target 'y': 1 missing (first at line 13)" in msg
    assert "'b': 6 missing (first at line 5)" in msg and "'color': 4 missing (first at line 6)" in msg
    assert "data.missing: drop" in msg and "data.missing: impute" in msg


def test_missing_drop_and_impute(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text(MISSING)
    dropped = loaded(p, missing="drop")
    assert len(dropped.y) == 40 - 1 - 9 and dropped.dropped == {"missing target": 1, "missing values": 9}
    imputed = loaded(p, missing="impute", impute={"numeric": "mean", "indicator": True})
    assert len(imputed.y) == 39 and imputed.dropped == {"missing target": 1}
    assert imputed.feature_names == ["a", "b", "b.missing", "color=b", "color=g", "color=r", "color.missing"]
    b_present = [i % 5 for i in range(40) if i != 11 and i % 7 != 3]
    rows_b_missing = imputed.X[:, 2] == 1
    assert np.allclose(imputed.X[rows_b_missing, 1], np.mean(b_present))
    assert imputed.X[:, 3:6].sum(axis=1).min() == 1  # the missing colour took the most frequent level


def test_imputation_and_levels_are_fitted_on_the_training_rows_only(tmp_path):
    p = tmp_path / "d.csv"
    rows = [f"{i},{'' if i == 0 else (100.0 if i >= 30 else 1.0)},{'zzz' if i >= 30 else 'ab'[i % 2]},{i % 2}"
            for i in range(40)]
    p.write_text("i,v,c,y\n" + "\n".join(rows) + "\n")
    spec = spec_for(p, missing="impute")
    ds = load_dataset(spec.data)
    ds.encode(spec.data, np.arange(30))  # rows 30-39 (v = 100, c = zzz) are not training rows
    enc = {c["name"]: c for c in ds.columns}
    assert enc["v"]["fill"] == 1.0 and enc["c"]["categories"] == ["a", "b"]
    assert ds.X[0, 1] == 1.0 and ds.X[35, 2:].tolist() == [0.0, 0.0]  # zzz: unknown, all zeros
    # the whole pipeline: what prepare fits matches its own training rows
    prep = prepare(spec_for(p, missing="impute"))
    train = prep.split["train"]
    enc = {c["name"]: c for c in prep.dataset.columns}
    assert enc["c"]["categories"] == sorted({("zzz" if i >= 30 else "ab"[i % 2]) for i in train})


# ------------------------------------------------------------------------------------ categories
def test_unknown_levels_are_counted_at_predict_and_eval(tmp_path):
    cfg = tmp_path / "c.yaml"
    (tmp_path / "d.csv").write_text(table_text())
    cfg.write_text("data: {source: d.csv, target: species}\nmodel: {hidden: [4]}\ntrain: {epochs: 2}\n")
    rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip().splitlines()[-1]
    new = tmp_path / "new.csv"
    new.write_text("island,bill,sex\nAtlantis,40.0,male\nDream,45.0,female\nAtlantis,41.0,unknown\n")
    out = run("predict", rd, new)
    assert out.exit_code == 0, out.stderr
    assert "column 'island': 2 rows with a value not seen in training, encoded as all zeros: 'Atlantis'" in out.stderr
    assert len(list(csv.DictReader(io.StringIO(out.stdout)))) == 3


def test_max_levels_and_min_frequency(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("name,k,y\n" + "".join(f"n{i},{'abcd'[i % 4] if i < 38 else 'rare' + str(i)},{i % 2}\n"
                                        for i in range(40)))
    with pytest.raises(DataError, match=r"column 'name': 40 distinct values in the training rows, more than "
                                        r"data.categorical.max_levels \(10\).*data.ignore.*data.id: name"):
        loaded(p, categorical={"max_levels": 10})
    ds = loaded(p, ignore=["name"], categorical={"min_frequency": 2})
    assert ds.feature_names == ["k=a", "k=b", "k=c", "k=d", "k=(other)"]
    assert ds.X[38:, 4].tolist() == [1.0, 1.0]


def test_unknown_error_policy_names_the_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(table_text())
    spec = spec_for(p, target="species", categorical={"unknown": "error"}, split={"val": 0, "test": 0})
    ds = load_dataset(spec.data)
    with pytest.raises(DataError, match=r"line 3, column 'island': level 'Biscoe' was not seen in training"):
        ds.encode(spec.data, np.array([0, 3, 5]))  # training rows from Torgersen and Dream only


# ------------------------------------------------------------------------------------ dates, ids, roles
def test_dates_expand_ignore_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("when,x,y\n" + "".join(f"2024-0{1 + i % 9}-{10 + i % 17},{i},{i % 2}\n" for i in range(30)))
    ds = loaded(p)
    assert ds.feature_names[:5] == ["when.year", "when.month", "when.day", "when.weekday", "when.dayofyear"]
    assert ds.X[0, :5].tolist() == [2024, 1, 10, 2, 10]  # 2024-01-10 was a Wednesday
    assert any("'when' holds dates: expanded" in n for n in ds.notes)
    assert loaded(p, dates="ignore").feature_names == ["x"]
    with pytest.raises(DataError, match="column 'when': holds dates, and data.dates is error"):
        loaded(p, dates="error")


def test_id_is_never_a_feature_and_a_row_number_is_reported(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("rownum,code,x,y\n" + "".join(f"{i + 1},id{i},{(i * 7) % 11},{i % 2}\n" for i in range(30)))
    ds = loaded(p, id="code")
    assert ds.feature_names == ["rownum", "x"] and ds.id_name == "code"
    assert any("'rownum' looks like a row id" in n for n in ds.notes)
    assert loaded(p, id="code", ignore=["rownum"]).feature_names == ["x"]
    with pytest.raises(ConfigError, match="data.features: includes the id column 'code'"):
        loaded(p, id="code", features=["code", "x"])


# ------------------------------------------------------------------------------------ the task
@pytest.mark.parametrize("y,task,reason", [
    (lambda i: "ab"[i % 2], "classification", "2 text labels in 'y'"),
    (lambda i: i % 3, "classification", "3 integer values in 'y' (0, 1, 2)"),
    (lambda i: i % 16, "regression", "16 distinct numbers in 'y' (too many values, or too few rows of some"),
    (lambda i: i * 0.5, "regression", "60 distinct numbers in 'y'"),
])
def test_task_auto_says_why(tmp_path, y, task, reason):
    p = tmp_path / "d.csv"
    p.write_text("x,y\n" + "".join(f"{i},{y(i)}\n" for i in range(60)))
    ds = load_dataset(spec_for(p).data)
    assert ds.task == task and ds.task_reason.startswith(reason)


def test_tiny_or_lopsided_data_stops_the_run(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("x,y\n" + "".join(f"{i},{'a' if i else 'b'}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"class with fewer than 2 training rows: 'b' \(1\)"):
        prepare(spec_for(p))
    p.write_text("x,y\n1,1.5\n2,2.5\n3,3.5\n4,4.5\n5,0.5\n")
    with pytest.raises(DataError, match=r"data.split.val is 0.2, but the val part gets 1 row of 5 \(r2 needs 2\)"):
        prepare(spec_for(p))


# ------------------------------------------------------------------------------------ target scaling
def test_regression_targets_are_standardized_and_reported_in_original_units(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 180 + 60 * X[:, 0] - 40 * X[:, 1] + rng.normal(scale=5, size=300)  # 25..346-like units
    (tmp_path / "d.csv").write_text("a,b,c,y\n" + "".join(f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{t:.3f}\n"
                                                          for r, t in zip(X, y)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [8]}\noptimizer: {name: adam, lr: 0.01}\n"
                   "train: {epochs: 60}\n")
    runs = tmp_path / "runs"
    scaled = run("train", cfg, "--runs-dir", runs, "-q").stdout.strip()
    raw = run("train", cfg, "--runs-dir", runs, "-q", "--set", "data.target_scale=none").stdout.strip()
    import json

    s, r = (json.loads((tmp_path / "runs" / d.split("/")[-1] / "summary.json").read_text()) for d in (scaled, raw))
    assert s["final"]["val_r2"] > 0.95 and r["final"]["val_r2"] < s["final"]["val_r2"]
    assert s["final"]["val_loss"] < 0.1  # mse in standardized units (about 1 - r2)
    # eval and predict speak the original units
    ev = json.loads(run("eval", scaled, "--json").stdout)["metrics"]
    assert ev["r2"] > 0.95 and 2 < ev["mae"] < 15
    pred = run("predict", scaled, tmp_path / "d.csv").stdout
    rows = list(csv.DictReader(io.StringIO(pred)))
    p = np.array([float(row["prediction"]) for row in rows])
    assert abs(p.mean() - y.mean()) < 5 and np.mean(np.abs(p - y)) < 15
    with np.load(tmp_path / "runs" / scaled.split("/")[-1] / "preprocess.npz") as z:
        train_rows = np.load(tmp_path / "runs" / scaled.split("/")[-1] / "split.npz")["train"]
        assert z["target_shift"][0] == pytest.approx(np.mean(np.round(y, 3)[train_rows]))


# ------------------------------------------------------------------------------------ imbalance
def test_class_weight_balanced_raises_minority_recall(tmp_path):
    import json

    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 2))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=600) > 1.9, "fraud", "ok")  # ~5% fraud
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(f"{r[0]:.4f},{r[1]:.4f},{t}\n" for r, t in zip(X, y)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [8]}\noptimizer: {name: adam, lr: 0.01}\n"
                   "train: {epochs: 40}\n")
    out = {}
    for cw in ("none", "balanced", "{fraud: 20}"):
        rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q", "--set", f"train.class_weight={cw}")
        assert rd.exit_code == 0, rd.stderr
        out[cw] = json.loads(run("eval", rd.stdout.strip(), "--json").stdout)["metrics"]
    for cw in ("balanced", "{fraud: 20}"):
        assert out[cw]["per_class"]["fraud"]["recall"] > out["none"]["per_class"]["fraud"]["recall"]
        assert out[cw]["balanced_accuracy"] > out["none"]["balanced_accuracy"]
    assert 0.5 < out["none"]["roc_auc"] <= 1 and 0 < out["none"]["average_precision"] <= 1
    bad = run("train", cfg, "--runs-dir", tmp_path / "runs", "--set", "train.class_weight={fruad: 3}")
    assert bad.exit_code == 2 and "train.class_weight names 'fruad', not a class; the classes are fraud, ok" \
        in bad.stderr


# ------------------------------------------------------------------------------------ nnctl init
def test_init_gives_every_column_a_role_and_the_config_trains(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["rownum,customer,country,note,when,const,age,income,label"]
    for i in range(120):
        age = "" if i % 17 == 5 else str(int(rng.integers(18, 80)))
        lines.append(f"{i + 1},cust{i:04d},{'ABC'[i % 3]},free text {i % 110},"
                     f"2023-{1 + i % 12:02d}-{1 + i % 28:02d},same,{age},{rng.normal(50, 10):.2f},{'yn'[i % 2]}")
    data = tmp_path / "sub" / "raw.csv"
    data.parent.mkdir()
    data.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "raw.yaml"
    out = run("init", data, "--target", "label", "-o", cfg)
    assert out.exit_code == 0, out.stderr
    text = cfg.read_text()
    spec = load_spec(cfg)
    d = spec.data
    assert d.source == str(data.resolve()) and d.target == "label" and d.task == "classification"
    assert d.id == "rownum" and set(d.ignore) == {"customer", "note", "const"} and d.missing == "impute"
    assert "note: text with 110 distinct values" in text and "const: the same value in every row" in text
    assert "customer: a different value in every row" in text
    import re

    assert re.search(r"#   when +date +2023-01-01 to 2023-12-28", text)
    trained = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q", "--set", "train.epochs=3")
    assert trained.exit_code == 0, trained.stderr
    again = run("init", data, "-o", cfg)
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    assert run("init", data, "--target", "lable").exit_code == 2


def test_encoding_matches_a_hand_computed_matrix_whatever_the_block_size(tmp_path):
    from nnctl.data.columns import encoding_from_json

    p = tmp_path / "d.csv"
    p.write_text("a,b,c,when,d,y\n1.5,2,x,2024-03-01,,0\n-1,4,y,2024-12-31,7,1\n0.25,6,z,,8,0\n3,8,x,2023-01-02,9,1\n")
    spec = spec_for(p, missing="impute", impute={"indicator": True}, split={"val": 0, "test": 0})
    ds = load_dataset(spec.data)
    ds.encode(spec.data, np.array([0, 1, 3]))  # row 2 (c = z) is not a training row: z is unknown
    d_fill = 8.0  # median of d over training rows 1 and 3
    when_fill = [2024, 3, 2, 1, 61]  # per part, the median over rows 0, 1 and 3 (row 2 has no date)
    expected = np.array([  # no when.missing: no training row lacks a date (the fill is there all the same)
        [1.5, 2, 1, 0, 2024, 3, 1, 4, 61, d_fill, 1],
        [-1, 4, 0, 1, 2024, 12, 31, 1, 366, 7, 0],
        [0.25, 6, 0, 0, *when_fill, 8, 0],
        [3, 8, 1, 0, 2023, 1, 2, 0, 2, 9, 0],
    ])
    assert ds.feature_names == ["a", "b", "c=x", "c=y", "when.year", "when.month", "when.day", "when.weekday",
                                "when.dayofyear", "d", "d.missing"]
    np.testing.assert_array_equal(ds.X, expected)
    table = load_dataset(spec.data).table
    for chunk in (1, 3, 100):
        np.testing.assert_array_equal(encoding_from_json(ds.columns).transform(table, np.float64, chunk=chunk),
                                      expected)


# ------------------------------------------------------------------------------------ policies end to end
@pytest.mark.parametrize("policy", ["error", "drop", "impute"])
def test_predict_applies_the_runs_missing_value_policy(tmp_path, policy):
    import json

    rows = "".join(f"{i % 7},{'' if (i % 11 == 3 and policy != 'error') else i % 5},{'ab'[i % 2]}\n"
                   for i in range(60))
    (tmp_path / "d.csv").write_text("a,b,y\n" + rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: d.csv, missing: {policy}}}\nmodel: {{hidden: [4]}}\ntrain: {{epochs: 2}}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 0, out.stderr
    assert "data: classification (2 text labels in 'y')" in out.stderr
    rd = out.stdout.strip().splitlines()[-1]
    summary = json.loads((tmp_path / "runs" / rd.split("/")[-1] / "summary.json").read_text())
    assert summary["data"]["dropped_rows"] == ({"missing values": 6} if policy == "drop" else {})
    (tmp_path / "new.csv").write_text("a,b\n1,2\n3,\n5,4\n")
    pred = run("predict", rd, tmp_path / "new.csv")
    if policy == "error":
        assert pred.exit_code == 2 and "'b': 1 missing (first at line 3)" in pred.stderr
    elif policy == "drop":
        assert pred.exit_code == 0 and "1 row with missing values skipped (data.missing: drop)" in pred.stderr
        assert [r["a"] for r in csv.DictReader(io.StringIO(pred.stdout))] == ["1", "5"]
    else:
        assert pred.exit_code == 0 and len(list(csv.DictReader(io.StringIO(pred.stdout)))) == 3


def test_no_val_part_means_no_val_metrics_not_nan(tmp_path):
    import json

    (tmp_path / "d.csv").write_text(table_text())
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv, target: species, split: {val: 0, test: 0.2}}\nmodel: {hidden: [4]}\n"
                   "train: {epochs: 3}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 0, out.stderr
    assert "nan" not in out.stderr.lower() and "train_accuracy" in out.stderr
    rd = tmp_path / "runs" / out.stdout.strip().splitlines()[-1].split("/")[-1]
    assert "nan" not in (rd / "metrics.csv").read_text()
    summary = json.loads((rd / "summary.json").read_text())
    assert "val_loss" not in summary["final"] and summary["best"]["epoch"] >= 1


def test_predict_on_parquet_repeats_integer_columns_as_integers(tmp_path):
    """predict repeats each input row; a Parquet file holds numbers, not text, so its integer
    columns (an id to join the predictions back on) are written as integers, not 1001.0."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 60
    t = pa.table({"key": pa.array(np.arange(1001, 1001 + n) * 7 % 997 + 100_000),
                  "x": rng.standard_normal(n), "k": pa.array([None if i == 3 else i % 4 for i in range(n)], pa.int16()),
                  "y": pa.array(["a", "b"] * (n // 2))})
    pq.write_table(t, tmp_path / "d.parquet")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: c\ndata: {{source: {tmp_path / 'd.parquet'}, target: y, id: key, missing: impute}}\n"
                   "train: {epochs: 2}\n")
    run_dir = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip().splitlines()[-1]
    out = run("predict", run_dir, tmp_path / "d.parquet", "-o", tmp_path / "p.csv")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["key"] for r in rows] == [str(v) for v in t.column("key").to_pylist()]
    assert [r["k"] for r in rows][:5] == ["0", "1", "2", "", "0"]
    assert float(rows[0]["x"]) == t.column("x")[0].as_py()


def test_arrow_types_become_numbers_dates_and_codes_with_nulls(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnctl.data.reading import read_table

    t = pa.table({
        "i8": pa.array([1, None, -3, 4], pa.int8()), "u16": pa.array([65535, 2, None, 4], pa.uint16()),
        "f32": pa.array([0.5, None, 1.5, 2.5], pa.float32()), "b": pa.array([True, False, None, True]),
        "d": pa.array([dt.date(2024, 2, 29), None, dt.date(1969, 12, 31), dt.date(2000, 1, 1)], pa.date32()),
        "ts": pa.array([dt.datetime(2024, 1, 1, 12), None, dt.datetime(1999, 12, 31, 23, 59, 59),
                        dt.datetime(2000, 1, 1)], pa.timestamp("ms")),
        "s": pa.array(["b", None, " a ", "b"]).dictionary_encode(),
    })
    pq.write_table(t.slice(1), tmp_path / "t.parquet")  # a slice: buffers with an offset
    cols = read_table(tmp_path / "t.parquet").columns
    np.testing.assert_array_equal(cols["i8"].values, [np.nan, -3, 4])
    np.testing.assert_array_equal(cols["u16"].values, [2, np.nan, 4])
    np.testing.assert_array_equal(cols["f32"].values, [np.nan, 1.5, 2.5])
    # booleans are the levels False and True, as a CSV written by pandas spells them
    assert cols["b"].kind == "text" and cols["b"].levels == ["False", "True"]
    assert cols["b"].values.tolist() == [0, -1, 1]
    assert [str(v) for v in cols["d"].values] == ["NaT", "1969-12-31T00:00:00", "2000-01-01T00:00:00"]
    assert [str(v) for v in cols["ts"].values] == ["NaT", "1999-12-31T23:59:59", "2000-01-01T00:00:00"]
    assert cols["s"].levels == ["a", "b"] and cols["s"].values.tolist() == [-1, 0, 1]


def test_init_points_at_word_like_missing_markers(tmp_path):
    p = tmp_path / "cars.csv"
    p.write_text("airbags,hp,price\n" + "".join(f"{['None', 'Driver', 'Both'][i % 3]},{100 + i},{10 + i % 7}\n"
                                               for i in range(30)))
    out = run("init", p, "--target", "price")
    assert out.exit_code == 0, out.stderr
    assert "airbags: 10 of its missing values are the word 'None'; if that is a real value" in out.stdout


def test_init_says_when_the_config_it_writes_cannot_train(tmp_path):
    """A target whose every label is in one row (a real file: Ecdat's USstateAbbreviations): the
    config is written, with what `nnctl train` would stop at on top and as a warning; a file that
    trains gets neither."""
    import json

    p = tmp_path / "abbrev.csv"
    p.write_text("x,abbr\n" + "".join(f"{(i * 7919) % 41 / 4},a{i}\n" for i in range(40)))
    cfg = tmp_path / "abbrev.yaml"
    out = run("init", p, "-o", cfg)
    assert out.exit_code == 0, out.stderr
    why = "classes with fewer than 2 training rows: 'a0' (1), 'a1' (1), 'a10' (1), 'a11' (1), 'a12' (1) and 35 more"
    assert f"warning: as written, nnctl train stops: {p}: {why}" in " ".join(out.stderr.split())
    text = cfg.read_text()
    assert "# As written, `nnctl train` stops here:" in text and why in text
    trained = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q")
    assert trained.exit_code == 2 and why in " ".join(trained.stderr.split())
    doc = json.loads(run("init", p, "--json").stdout)
    assert why in doc["train_problem"]
    named = tmp_path / "first name: abbrev.csv"  # the header comment names the file: the note goes below it
    named.write_bytes(p.read_bytes())
    out = run("init", named, "-o", tmp_path / "named.yaml")
    assert out.exit_code == 0 and "stops" in out.stderr
    assert load_spec(tmp_path / "named.yaml").name == "first name: abbrev"
    good = tmp_path / "good.csv"
    good.write_text("x,y\n" + "".join(f"{(i * 7919) % 41 / 4},{'ab'[i % 2]}\n" for i in range(40)))
    out = run("init", good, "-o", tmp_path / "good.yaml")
    assert out.exit_code == 0 and "stops" not in out.stderr and "stops" not in (tmp_path / "good.yaml").read_text()
    assert json.loads(run("init", good, "--json").stdout)["train_problem"] is None


def test_singleton_classes_are_named_as_the_reason_not_the_empty_split_they_cause(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("x,y\n" + "".join(f"{i},c{i}\n" for i in range(30)))
    why = r"classes with fewer than 2 training rows: .* and 25 more \(30 of 30 classes\)"
    with pytest.raises(DataError, match=why):
        prepare(spec_for(p))


# ------------------------------------------------------------------------------------ review findings
def test_large_offsets_keep_their_differences(tmp_path):
    """float32 cannot resolve 1e8 + N(0, 3): such columns are read in float64, and eval on the test
    split agrees with eval on the same file given as --data."""
    import json

    rng = np.random.default_rng(0)
    x = 1e8 + rng.normal(0, 3, 1000)
    (tmp_path / "d.csv").write_text("x,y\n" + "".join(f"{a:.4f},{int(a > 1e8)}\n" for a in x))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [8]}\noptimizer: {name: adam, lr: 0.01}\n"
                   "train: {epochs: 40}\n")
    rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip()
    test_acc = json.loads(run("eval", rd, "--json").stdout)["metrics"]["accuracy"]
    assert test_acc > 0.95
    assert json.loads(run("eval", rd, "--data", tmp_path / "d.csv", "--json").stdout)["metrics"]["accuracy"] > 0.95


@pytest.mark.parametrize("text,where,message", [
    (b"name,x,y\n" + b"".join(b"caf\xe9%d,%d,%d\n" % (i, i, i % 2) for i in range(12)), "d.csv",
     "not UTF-8 text"),
    (b"na\xefme,x,y\n" + b"".join(b"a,%d,%d\n" % (i, i % 2) for i in range(12)), "d.csv",
     "line 1: the header is not UTF-8 text"),
    (b"x,y\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(12)) + b"1e400,1\n", "d.csv",
     "line 14, column 'x': expected a finite number, found inf"),
    (b"a,b,y\n1,2,\n2,3,\n3,4,\n", "d.csv", "the target column 'y' has no value in any row"),
])
def test_bad_files_exit_2_with_the_place(tmp_path, text, where, message):
    (tmp_path / where).write_bytes(text)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {where}, missing: impute}}\ntrain: {{epochs: 1}}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 2 and message in out.stderr, out.stderr


def test_padded_missing_markers_quoted_spaces_and_leading_blank_lines(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("\n\na, b, c, y\n" + "".join(f"{i}, {' NA' if i == 3 else i % 4}, {' NA' if i == 5 else 'xy'[i % 2]}, "
                                             f"{i % 2}\n" for i in range(20)))
    ds = loaded(p, missing="impute")
    assert ds.feature_names == ["a", "b", "c=x", "c=y"] and len(ds.y) == 20
    w = tmp_path / "w.txt"
    w.write_text('city x y\n' + "".join(f'"New York" {i} {i % 2}\n' if i % 2 else f'Paris {i} {i % 2}\n'
                                       for i in range(20)))
    assert loaded(w).feature_names == ["city=New York", "city=Paris", "x"]


def test_class_weight_keys_and_values_are_checked(tmp_path):
    (tmp_path / "d.csv").write_text("x,y\n" + "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(20)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv}\ntrain: {epochs: 1, class_weight: {yes: 5, no: 1}}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs")  # keys are names: yes is the class 'yes'
    assert out.exit_code == 0, out.stderr
    cfg.write_text("data: {source: d.csv}\ntrain: {epochs: 1, class_weight: {'yes': 0}}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 2 and "train.class_weight.yes must be a number > 0" in out.stderr
    cfg.write_text("data: {source: d.csv}\ntrain: {epochs: 1, class_weight: {'yes': 3}}\n")
    assert run("train", cfg, "--runs-dir", tmp_path / "runs").exit_code == 0


def test_nested_parquet_columns_and_damaged_archives(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 30
    pq.write_table(pa.table({"x": np.arange(n) * 1.0, "l": [[1, 2]] * n, "y": np.arange(n) % 2}),
                   tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"column 'l': list<.*> values; nnctl reads numbers, text and dates"):
        loaded(tmp_path / "t.parquet")
    assert loaded(tmp_path / "t.parquet", ignore=["l"]).feature_names == ["x"]
    raw = ("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(100_000))).encode()
    for suffix in (".xz", ".zip"):
        p = tmp_path / f"d.csv{suffix}"
        if suffix == ".xz":
            data = bytearray(lzma.compress(raw))
        else:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("d.csv", raw)
            data = bytearray(buf.getvalue())
        k = len(data) * 3 // 4
        data[k:k + 50] = bytes(50)
        p.write_bytes(bytes(data))
        with pytest.raises(DataError, match="is the file damaged|damaged"):
            loaded(p)


def test_headerless_predict_input_without_the_target(tmp_path):
    (tmp_path / "d.csv").write_text("".join(f"{i % 2},{i},{i % 3}\n" for i in range(30)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv, header: false, target: 0}\nmodel: {hidden: [4]}\ntrain: {epochs: 2}\n")
    rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip()
    (tmp_path / "new.csv").write_text("5,2\n6,0\n")
    out = run("predict", rd, tmp_path / "new.csv")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.splitlines()[0] == "c1,c2,prediction" and len(out.stdout.splitlines()) == 3


def test_block_reader_equals_the_whole_file_reader_and_steps_aside(tmp_path, monkeypatch):
    """Large all-numeric files are parsed block by block into the matrix (lean); the result is the
    whole-file reader's, and anything unusual goes back to the whole-file reader and its messages."""
    import nnctl.data.blocks as blocks_mod
    import nnctl.data.reading as reading
    from nnctl.data.reading import read_table

    rng = np.random.default_rng(0)
    lines = [f"{rng.normal():.6g},{'' if i % 97 == 5 else rng.integers(0, 100)},{rng.normal() * 1e3:.4f}"
             for i in range(5000)]
    p = tmp_path / "n.csv"
    p.write_text("a,b,t\n" + "\n".join(lines) + "\n")
    whole = read_table(p, dtype=np.float32, exact=("t",))
    calls = []
    real = blocks_mod.read_numeric_blocks
    monkeypatch.setattr(reading, "read_numeric_blocks", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(reading, "PARALLEL_FROM", 0)
    monkeypatch.setattr(blocks_mod, "BLOCK", 4096)  # many blocks
    blocks = read_table(p, dtype=np.float32, exact=("t",))
    assert calls and blocks.matrix is not None and blocks.fingerprint == whole.fingerprint
    for name in ("a", "b", "t"):
        np.testing.assert_array_equal(blocks.columns[name].values, whole.columns[name].values)
    assert blocks.columns["t"].values.dtype == np.float64 and blocks.matrix.dtype == np.float32
    # a blank line in the middle, then a ragged row: the whole-file reader takes over
    p.write_text("a,b,t\n" + "\n".join(lines[:2000]) + "\n\n" + "\n".join(lines[2000:]) + "\n")
    assert len(read_table(p, dtype=np.float32).columns["a"].values) == 5000
    p.write_text("a,b,t\n" + "\n".join(lines[:3000]) + "\n1,2\n" + "\n".join(lines[3000:]) + "\n")
    with pytest.raises(DataError, match="line 3002: expected 3 fields"):
        read_table(p, dtype=np.float32)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_data_paths_that_are_not_regular_files_exit_2_at_once(tmp_path, kind):
    import os

    target = tmp_path / "data"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        target = "/dev/zero"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {target}}}\n")
    for args in (("train", cfg), ("init", target)):
        out = run(*args)
        assert out.exit_code == 2 and ("not a regular file" in out.stderr or "directory" in out.stderr), out.stderr


def test_populated_arrays_hold_the_training_rows_in_place(monkeypatch):
    """Large arrays come from a populated anonymous mapping (faster to fill in a VM); the training
    rows are still written over the parsed matrix's memory, not copied."""
    import mmap

    import nnctl.data.table as table_mod
    from nnctl.data.preprocess import fit_preprocessor

    monkeypatch.setattr(table_mod, "POPULATE_FROM", 0)
    M = table_mod.populated_empty((1000, 5), np.float32)
    root = M
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert isinstance(root.base.obj, mmap.mmap) and M.flags.c_contiguous and M.flags.writeable
    M[...] = np.random.default_rng(0).normal(size=(1000, 5))
    X, rows = M[:, 1:4], np.arange(0, 1000, 3)
    expected = ((X[rows] - X[rows].mean(axis=0)) / X[rows].std(axis=0)).astype(np.float32)
    pre = fit_preprocessor("standardize", X, None, rows=rows)
    out = pre.transform_rows(X, rows, np.float32, consume=True)
    assert np.shares_memory(out, M)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_second_review_findings(tmp_path, monkeypatch):
    import nnctl.data.blocks as blocks_mod
    import nnctl.data.reading as reading
    from nnctl.config.yamlio import load_yaml
    from nnctl.data.reading import read_table

    body = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(3000))
    for lead in (b"\r\r\n", b"\x0c\n", b"\n\r\n"):  # blank first lines ending in CR, a form feed, ...
        p = tmp_path / "d.csv"
        p.write_bytes(lead + b"a,b,y\n" + body.encode())
        whole = read_table(p, dtype=np.float32, exact=("y",))
        assert whole.n_rows == 3000 and whole.columns["a"].values[0] == 0
        monkeypatch.setattr(reading, "PARALLEL_FROM", 0)
        monkeypatch.setattr(blocks_mod, "BLOCK", 4096)
        blocks = read_table(p, dtype=np.float32, exact=("y",))
        monkeypatch.setattr(reading, "PARALLEL_FROM", 1 << 60)
        assert blocks.n_rows == 3000 and blocks.columns["a"].values[0] == 0
    # YAML keys: booleans keep their text, numbers their value
    keys = load_yaml("w: {+1: 5, -1: 1, yes: 2}", "x")[0]["w"]
    assert set(keys) == {"1", "-1", "yes"}
    # a column of small integers is exact in float32: not re-read in float64
    p = tmp_path / "years.csv"
    p.write_text("year,x,y\n" + "".join(f"{2020 + i % 2},{i * 0.5},{i % 2}\n" for i in range(100)))
    assert read_table(p, dtype=np.float32).coarse == set()
    p.write_text("big,x,y\n" + "".join(f"{1e8 + i * 0.25},{i * 0.5},{i % 2}\n" for i in range(100)))
    assert read_table(p, dtype=np.float32).coarse == {"big"}


def test_headerless_input_one_column_short_is_not_guessed_when_training_had_an_id(tmp_path):
    (tmp_path / "d.csv").write_text("".join(f"r{i},{i},{i % 3},{i % 2},{i % 5}\n" for i in range(40)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv, header: false, id: 0, target: 3}\nmodel: {hidden: [4]}\n"
                   "train: {epochs: 2}\n")
    rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip()
    (tmp_path / "new.csv").write_text("5,2,1,3\n")  # no id column: 4 columns, one short
    out = run("predict", rd, tmp_path / "new.csv")
    assert out.exit_code == 2 and "missing column 'c4'" in out.stderr, out.stderr


def test_a_value_far_outside_training_is_named_not_silently_labelled(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5},{'ab'[i % 2]}\n" for i in range(60)))
    cfg = tmp_path / "c.yaml"
    for pre in ("standardize", "pca"):
        cfg.write_text(f"data: {{source: d.csv, preprocess: {pre}}}\nmodel: {{hidden: [4]}}\ntrain: {{epochs: 2}}\n")
        rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip()
        (tmp_path / "new.csv").write_text("a,b\n1,2\n3,1e308\n")
        out = run("predict", rd, tmp_path / "new.csv")
        assert out.exit_code == 2 and "line 3: the model's output is not finite" in out.stderr, out.stderr
        assert "'b' (1e+308)" in out.stderr


# ------------------------------------------------------------------------------------ issue 15 (writes)
def test_output_dash_fifo_device_and_symlink(tmp_path):
    import os
    import stat
    import threading

    cfg = tmp_path / "c.yaml"
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [2]}\ntrain: {epochs: 1}\n")
    rd = run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip()
    out = run("predict", rd, tmp_path / "d.csv", "-o", "-")
    assert out.exit_code == 0 and out.stdout.startswith("a,y,prediction") and not (tmp_path / "-").exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert run("predict", rd, tmp_path / "d.csv", "-o", fifo).exit_code == 0
    reader.join(10)
    assert got and got[0].startswith("a,y,prediction") and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert run("schema", "-o", "/dev/null").exit_code == 0 and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    target, link = tmp_path / "target.txt", tmp_path / "link.json"
    target.write_text("keep")
    link.symlink_to(target)
    assert run("schema", "-o", link).exit_code == 0
    assert target.read_text() == "keep" and not link.is_symlink() and link.read_text().startswith("{")


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    import os

    cfg = tmp_path / "c.yaml"
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [2]}\ntrain: {epochs: 3, checkpoint_every: 1}\n")
    rd = tmp_path / "runs" / run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip().split("/")[-1]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (rd / ".lock").unlink(missing_ok=True)
    (rd / ".lock").symlink_to(victim)
    from nnctl.errors import RunDirError
    from nnctl.runs import RunDir, RunLock

    with pytest.raises(RunDirError, match="symbolic link or not a regular file, remove it"):
        RunLock.acquire(RunDir(rd))
    assert victim.read_text() == "precious"
    (rd / ".lock").unlink()
    os.mkfifo(rd / ".lock")
    with pytest.raises(RunDirError, match="not a regular file"):
        RunLock.acquire(RunDir(rd))


def test_hostile_run_files_are_read_bounded_and_without_following_links(tmp_path):
    """summary.json -> /dev/zero, a FIFO summary, an alias-bomb config.yaml, a summary that is a JSON
    list or a directory: compare, eval and inspect end at once, with the run marked or one message,
    never a hang or a traceback."""
    import os
    import subprocess
    import sys

    cfg = tmp_path / "c.yaml"
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [2]}\ntrain: {epochs: 1}\n")
    runs = tmp_path / "runs"
    dirs = []
    for _ in range(5):
        rd = runs / run("train", cfg, "--runs-dir", runs, "-q").stdout.strip().split("/")[-1]
        dirs.append(rd)
    (dirs[4] / "summary.json").unlink()
    (dirs[4] / "summary.json").mkdir()
    (dirs[0] / "summary.json").unlink()
    (dirs[0] / "summary.json").symlink_to("/dev/zero")
    (dirs[1] / "summary.json").unlink()
    os.mkfifo(dirs[1] / "summary.json")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    (dirs[2] / "config.yaml").write_text(bomb)
    (dirs[3] / "summary.json").write_text("[1, 2, 3]")

    def nnctl(*args):
        return subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                              timeout=60)

    out = nnctl("compare", runs, "--format", "json")
    assert out.returncode in (0, 2) and "Traceback" not in out.stderr, out.stderr
    for d in dirs:
        res = nnctl("eval", d)
        assert res.returncode == 2 and "Traceback" not in res.stderr, (d, res.stderr)
        res = nnctl("inspect", d)  # reads diagnostics.csv: fine, or one message
        assert res.returncode in (0, 2) and "Traceback" not in res.stderr, (d, res.stderr)


def test_a_zip_bomb_npz_is_refused_before_unpacking(tmp_path):
    import zipfile

    from nnctl.errors import RunDirError
    from nnctl.files import read_npz

    buf = io.BytesIO()
    np.save(buf, np.zeros(40_000_000, np.float32))  # 160 MB of zeros: a few hundred KB deflated
    with zipfile.ZipFile(tmp_path / "w.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("W1.npy", buf.getvalue())
    with pytest.raises(RunDirError, match="would unpack to 152 MB"):
        read_npz(tmp_path / "w.npz", "weights file")


def test_a_network_too_large_for_memory_is_refused_before_allocation(tmp_path, monkeypatch):
    import nnctl.build as build

    monkeypatch.setattr(build, "_available_memory", lambda: 1 << 30)  # 1 GB free
    spec = load_spec(data={"data": {"source": "sklearn:moons"}, "model": {"hidden": [8192, 8192]}})
    with pytest.raises(ConfigError, match=r"model.hidden makes a network of 67,\d{3},\d{3} parameters .* 1.0 GB "
                                          r"available"):
        build.prepare(spec)
    build.prepare(load_spec(data={"data": {"source": "sklearn:moons"}, "model": {"hidden": [64]}}))


def test_a_huge_sweep_is_refused_before_any_point_is_drawn(tmp_path):
    import time

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: sklearn:xor}\n")
    t0 = time.perf_counter()
    out = run("sweep", cfg, "--random", "1000000000", "--space", "optimizer.lr=loguniform(1e-4,1e-1)",
              "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 2 and "1,000,000,000 trials" in out.stderr and time.perf_counter() - t0 < 10


def test_a_file_without_numeric_columns(tmp_path):
    (tmp_path / "t.csv").write_text("colour,size,label\n" + "".join(f"{'rgb'[i % 3]},{'SML'[i % 3]},{'yn'[i % 2]}\n"
                                                                   for i in range(30)))
    from nnctl.data.reading import read_table

    assert read_table(tmp_path / "t.csv", dtype=np.float32).matrix.shape == (30, 0)  # float32: the coarse check
    ds = loaded(tmp_path / "t.csv")
    assert ds.feature_names[:3] == ["colour=b", "colour=g", "colour=r"] and ds.X.shape == (30, 6)
