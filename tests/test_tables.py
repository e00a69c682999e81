"""Tables keep their numbers and names at any width, and "best" means one thing everywhere.

The tables are drawn by the CLI in a subprocess with COLUMNS set and stdout piped, as a user's
`COLUMNS=80 nnctl compare runs | less` would; every value of the data behind a table (compare's and
inspect's --json, eval.json) must then be in the table whole, correctly rounded, or its column named
as hidden.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app

ROOT = Path(__file__).resolve().parents[1]
LONG = "an-experiment-with-a-rather-long-name"
BASE = """
data: {source: 'sklearn:moons', options: {n_samples: 160, noise: 0.25}, split: {val: 0.25, test: 0.2}}
model: {hidden: [8]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 5, batch_size: 32}
"""
VARIANTS = {  # many hyperparameters differ; leaky_relu brings activation_options.alpha along
    "sigmoid": ["model.activation=sigmoid", "optimizer.lr=0.0123", "model.hidden=[8]", "train.batch_size=16"],
    "leaky": ["model.activation=leaky_relu", "optimizer.lr=0.05", "model.hidden=[12,6]", "train.batch_size=32",
              "model.init=he_uniform", "optimizer.options={eps: 1.0e-7}"],
}


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def piped(*args, columns: int | None) -> str:
    """nnctl's stdout through a pipe, with COLUMNS set (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two configs x two seeds, with long names: a folder of four runs."""
    tmp = tmp_path_factory.mktemp("tables")
    cfg = tmp / "moons.yaml"
    cfg.write_text(BASE)
    for variant, sets in VARIANTS.items():
        for seed in (0, 1):
            args = [a for s in sets for a in ("--set", s)]
            out = cli("train", cfg, "--runs-dir", tmp / "runs", "-q", "--seed", seed, "--name",
                      f"{variant}-{LONG}-seed{seed}", *args)
            assert out.exit_code == 0, out.stderr
    return tmp / "runs"


# ------------------------------------------------------------------------------------ checks
def rounded_ok(token: str, value: float) -> bool:
    """Is `token` the value, correctly rounded to the token's own last digit (and not cut)?"""
    try:
        shown = float(token)
    except ValueError:
        return False
    mantissa = token.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(token.split("e")[1]) if "e" in token else 0
    return abs(shown - value) <= 0.5 * 10.0 ** (exponent - decimals) * (1 + 1e-9) + 1e-15


def has_value(line: str, value) -> bool:
    """The value is in the line whole: a string as a substring, a number as a correctly rounded token."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return True
        return any(rounded_ok(t, float(value)) for t in re.split(r"[\s±]+", line) if t)
    text = json.dumps(value, separators=(", ", ": ")) if isinstance(value, (list, dict)) else str(value)
    return text in line


def check_width(text: str, width: int) -> None:
    assert "…" not in text and "..." not in text, text
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, f"lines wider than {width}: {long}"


def hidden_of(text: str) -> list[str]:
    """The column keys the footer names as hidden ("hidden: a, b (--cols ...)"), footer lines joined."""
    footer = " ".join(text.splitlines())
    m = re.search(r"hidden: (.*?) \(--cols", footer)
    return [c.strip() for c in m.group(1).split(",")] if m else []


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of a text table as {header: cell}, headers and cells joined across the lines they
    wrap onto (a long name continues on the next lines, with the other cells blank)."""
    lines = text.splitlines()
    rows: list[dict[str, str]] = []
    start = 0
    for i, line in enumerate(lines):
        if not re.fullmatch(r"-+( +-+)*", line):
            if not line.strip():
                start = i + 1
            continue
        spans = [m.span() for m in re.finditer(r"-+", line)]

        def cells(x: str, spans=spans) -> list[str]:
            return [x[a:b].strip() for a, b in spans]

        heads = ["".join(parts) for parts in zip(*(cells(x) for x in lines[start:i]))]
        block: list[dict[str, str]] = []
        for x in lines[i + 1:]:
            if not x.strip() or re.fullmatch(r"-+( +-+)*", x):
                break
            got = dict(zip(heads, cells(x)))
            if block and not any(v for h, v in got.items() if h != "name"):  # a name's next line
                block[-1]["name"] += got["name"]
            else:
                block.append(got)
        rows += block
    return rows


def check_compare(text: str, doc: list[dict], width: int, always_shown=("name",)) -> list[str]:
    """Every row's every column is in its cell whole, or the column is announced as hidden."""
    check_width(text, width)
    hidden = hidden_of(text)
    assert not set(hidden) & set(always_shown), hidden
    shown = parse_table(text)
    legend_only = {"run", "best_by", "runs", "seeds"}  # said below the table
    for row in doc:
        cells = {}
        for got in shown:  # the same run may continue in a block below
            if got.get("name") == row["name"]:
                cells.update(got)
        assert cells, (row["name"], text)
        for col, value in row.items():
            if col in hidden or col in legend_only or col.endswith("_std"):
                continue
            assert col in cells, (col, text)  # not hidden, so shown
            assert has_value(cells[col], value), (col, value, cells[col])
            std = row.get(f"{col}_std")
            if isinstance(std, float) and std != 0:
                assert has_value(cells[col].split("±")[1], std), (col, std, cells[col])
    return hidden


# ------------------------------------------------------------------------------------ compare
@pytest.mark.parametrize("width", [80, 200])
def test_compare_keeps_every_number_and_name(runs, width):
    doc = json.loads(piped("compare", runs, "--format", "json", columns=width))
    assert len(doc) == 4 and all(LONG in r["name"] for r in doc)
    params = [k for k in doc[0] if "." in k]
    assert "model.activation_options.alpha" in params and "model.activation_options" not in params  # once
    assert {"optimizer.lr", "model.hidden", "train.batch_size", "optimizer.options.eps", "model.init"} <= set(params)
    text = piped("compare", runs, columns=width)
    hidden = check_compare(text, doc, width)
    if width == 80:
        assert hidden, text  # 80 columns cannot hold them all: some are hidden, and said to be
        assert "best_epoch_val_accuracy" not in hidden and "model.activation" not in hidden
    else:
        assert len(hidden) < len(hidden_of(piped("compare", runs, columns=80))) or not hidden
    assert "best_epoch: the epoch with the lowest val_loss" in " ".join(text.splitlines())


@pytest.mark.parametrize("width", [80, 200])
def test_sweep_style_grouped_table(runs, width):
    doc = json.loads(piped("compare", runs, "--group-seeds", "--format", "json", columns=width))
    assert len(doc) == 2 and all(r["runs"] == 2 for r in doc)
    assert all(r["epochs"] == 5 and r["epochs_std"] == 0 for r in doc)  # seeds agree: an integer, no "± 0"
    text = piped("compare", runs, "--group-seeds", columns=width)
    check_compare(text, doc, width)
    assert "± 0 " not in text and not re.search(r"\b5 ± ", text)
    assert "±" in text and "mean ± std over 2 runs a row (seeds 0,1)" in " ".join(text.splitlines())


def test_cols_order_is_kept_and_never_hidden(runs):
    order = ["final_val_accuracy", "optimizer.lr", "name", "model.hidden", "time_s", "best_epoch_val_loss"]
    cols = "final_*,optimizer.lr,name,model.hidden,time_s,best_epoch_val_loss"
    doc = json.loads(piped("compare", runs, "--format", "json", "--cols", cols, columns=80))
    assert list(doc[0]) == order
    for width in (80, 120):
        text = piped("compare", runs, "--cols", cols, columns=width)
        check_compare(text, doc, width, always_shown=order)
        header = text.split("\n-")[0]
        assert all(list(r) == order for r in parse_table(text)), text  # the columns in the order asked
        assert not hidden_of(text) and header


def test_piped_without_columns_is_one_line_a_row_and_width_option_wins(runs):
    doc = json.loads(piped("compare", runs, "--format", "json", columns=None))
    text = piped("compare", runs, columns=None)
    assert not hidden_of(text) and len(text.splitlines()) == 2 + 4 + 2  # header, rule, rows, blank, legend
    check_compare(text, doc, 10_000)
    narrow = piped("compare", runs, "--width", "70", columns=200)
    check_compare(narrow, doc, 70)


def test_formats_stay_complete(runs):
    doc = json.loads(piped("compare", runs, "--format", "json", columns=40))
    rows = list(csv.DictReader(piped("compare", runs, "--format", "csv", columns=40).splitlines()))
    assert list(rows[0]) == list(doc[0])  # every column, whatever the width
    for r, d in zip(rows, doc):
        assert float(r["best_epoch_val_loss"]) == d["best_epoch_val_loss"]  # full precision
    md = piped("compare", runs, "--format", "markdown", columns=40).splitlines()
    assert all(c in md[0] for c in doc[0] if not c.endswith("_std") and c != "run")


# ------------------------------------------------------------------------------------ inspect and eval
def _numbers_in_order(line: str) -> list[str]:
    return [t for t in line.split() if re.fullmatch(r"-?[\d.]+(e[-+]\d+)?%?", t)]


@pytest.mark.parametrize("width", [80, 200])
def test_inspect_keeps_every_number(runs, width):
    run_dir = next(p for p in sorted(runs.iterdir()) if p.name.startswith("leaky"))
    report = json.loads(piped("inspect", run_dir, "--json", columns=width))
    text = piped("inspect", run_dir, columns=width)
    check_width(text, width)
    lines = text.splitlines()
    start = next(i for i, x in enumerate(lines) if set(x.replace(" ", "")) == {"-"}) + 1
    body = [x for x in lines[start:next(i for i, x in enumerate(lines) if x.startswith("epoch 0:"))] if x.strip()]
    assert len(body) == len(report["rows"])
    keys = ["epoch", "layer", "units", "act_mean", "act_std", "dead_frac", "grad_rms", "update_ratio"]
    for line, row in zip(body, report["rows"]):
        for key in keys:
            v = row.get(key)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            if key == "dead_frac":
                assert f"{v:.0%}" in line.split(), (key, v, line)
            else:
                assert any(rounded_ok(t, v) for t in line.split()), (key, v, line)
    for t in (t for line in body for t in _numbers_in_order(line) if "." in t and "e" not in t):
        digits = t.lstrip("-0.").replace(".", "")
        assert len(digits) >= 2 or float(t) == 0, t  # not cut to one digit


@pytest.fixture(scope="module")
def long_class_run(tmp_path_factory):
    """Four classes whose names are long and have no place to wrap: the confusion matrix is too wide
    for 80 columns."""
    tmp = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    names = [f"Pygoscelisspeciesnumber{i}withalongname" for i in range(4)]
    with open(tmp / "blobs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "x2", "kind"])
        for i in range(160):
            k = i % 4
            w.writerow([f"{k + rng.normal(0, 0.6):.4f}", f"{(k % 2) * 2 + rng.normal(0, 0.6):.4f}", names[k]])
    (tmp / "c.yaml").write_text("data: {source: blobs.csv, target: kind}\nmodel: {hidden: [8]}\n"
                                "optimizer: {name: adam, lr: 0.05}\ntrain: {epochs: 5}\n")
    out = cli("train", tmp / "c.yaml", "--runs-dir", tmp / "runs", "-q", "--name", f"blobs-{LONG}")
    assert out.exit_code == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1]), names


@pytest.mark.parametrize("width", [80, 200])
def test_eval_tables_keep_class_names_and_counts(long_class_run, width):
    run_dir, names = long_class_run
    text = piped("eval", run_dir, columns=width)
    check_width(text, width)
    m = json.loads((run_dir / "eval.json").read_text())["metrics"]
    lines = text.splitlines()
    for name in names:
        assert sum(name in line.split() for line in lines) >= 2, name  # per-class row, matrix row
    for name, r in m["per_class"].items():
        line = next(x for x in lines if x.startswith(name + " ") and len(x.split()) == 5)
        assert [float(t) for t in line.split()[1:4]] == [round(r[k], 3) for k in ("precision", "recall", "f1")]
        assert line.split()[4] == str(r["support"])
    cm = m["confusion_matrix"]
    rows = {label: [] for label in cm["labels"]}  # the matrix rows, across blocks
    start = next(i for i, x in enumerate(lines) if x.startswith("confusion matrix"))
    for line in lines[start:]:
        parts = line.split()
        if parts and parts[0] in rows and all(p.isdigit() for p in parts[1:]):
            rows[parts[0]] += [int(p) for p in parts[1:]]
    assert [rows[label] for label in cm["labels"]] == cm["matrix"]
    if width == 80:  # too wide for one block: the true-class column repeats
        assert sum(line.startswith("true \\ pred") for line in lines) > 1


# ------------------------------------------------------------------------------------ one "best"
DIVERGING = """
data: {source: 'sklearn:moons', options: {n_samples: 200, noise: 0.35}, split: {val: 0.2, test: 0.2, stratify: true}}
model: {hidden: [32, 32], activation: relu}
optimizer: {name: adam, lr: 0.05}
train: {epochs: 20, batch_size: 32}
"""


def test_train_line_and_compare_name_the_same_best(tmp_path):
    """On a run whose highest val_accuracy is NOT at its lowest val_loss epoch, train's line,
    summary.json and compare's best columns all give the lowest-val_loss epoch and its value."""
    cfg = tmp_path / "m.yaml"
    cfg.write_text(DIVERGING)
    out = cli("train", cfg, "--runs-dir", tmp_path / "runs", "--seed", "0", "--name", "overfits")
    assert out.exit_code == 0, out.stderr
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    lowest = min(rows, key=lambda r: float(r["val_loss"]))
    assert max(float(r["val_accuracy"]) for r in rows) > float(lowest["val_accuracy"]), "precondition"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_by"] == {"metric": "val_loss", "mode": "min"}
    assert summary["best"]["epoch"] == int(lowest["epoch"])
    m = re.search(r"best epoch (\d+) \(lowest val_loss ([\d.]+)\): val_accuracy ([\d.]+)", out.stderr)
    assert m, out.stderr
    doc = json.loads(cli("compare", run_dir, "--format", "json").stdout)[0]
    assert doc["best_epoch"] == int(m.group(1)) == int(lowest["epoch"])
    assert doc["best_by"] == "lowest val_loss"
    assert doc["best_epoch_val_accuracy"] == pytest.approx(float(lowest["val_accuracy"]))
    assert rounded_ok(m.group(3), doc["best_epoch_val_accuracy"]) and rounded_ok(m.group(2), doc["best_epoch_val_loss"])
    table = cli("compare", run_dir, "--width", "200").stdout
    line = next(x for x in table.splitlines() if x.startswith("overfits"))
    assert m.group(3) in line.split()  # the very text train printed
    # a run written before best_by (and with its best lost): compare finds the same epoch from metrics.csv
    del summary["best_by"], summary["best"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    old = json.loads(cli("compare", run_dir, "--format", "json").stdout)[0]
    assert (old["best_epoch"], old["best_epoch_val_accuracy"]) == (doc["best_epoch"], doc["best_epoch_val_accuracy"])


# ------------------------------------------------------------------------------------ predict
def test_predict_prints_float32_precision(tmp_path):
    rng = np.random.default_rng(1)
    with open(tmp_path / "r.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "price"])
        for _ in range(80):
            a, b = rng.normal(size=2)
            w.writerow([f"{a:.3f}", f"{b:.3f}", f"{150 + 20 * a - 7 * b:.2f}"])
    (tmp_path / "r.yaml").write_text("data: {source: r.csv, target: price}\nmodel: {hidden: [8]}\n"
                                     "optimizer: {name: adam, lr: 0.01}\ntrain: {epochs: 3, dtype: float32}\n")
    out = cli("train", tmp_path / "r.yaml", "--runs-dir", tmp_path / "runs", "-q")
    assert out.exit_code == 0, out.stderr
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    pred = cli("predict", run_dir, tmp_path / "r.csv")
    assert pred.exit_code == 0, pred.stderr
    values = [r["prediction"] for r in csv.DictReader(pred.stdout.splitlines())]
    assert len(values) == 80
    from nnctl import Run

    api = np.asarray(Run(run_dir).predict(np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1)[:, :2]))
    for text, v in zip(values, api.ravel()):
        assert len(text.lstrip("-").replace(".", "").lstrip("0")) <= 9, text  # float32 round-trips in 9 digits, not 17
        assert np.float32(float(text)) == np.float32(v), (text, v)
