"""eval and predict: the model rebuilt from the run dir alone gives the in-process numbers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.build import prepare
from nnctl.cli import app
from nnctl.config.load import load_spec
from nnctl.evaluate import evaluate_run, load_run
from nnctl.metrics import classification_report, score
from nnctl.training.session import train_run

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory):
    """A batch-norm + dropout classifier trained in-process, with its prepared data."""
    tmp = tmp_path_factory.mktemp("bn")
    data = {"data": {"source": "sklearn:blobs", "options": {"n_samples": 300, "centers": 3, "cluster_std": 3.0}},
            "model": {"hidden": [8], "norm": "batch", "dropout": 0.2}, "train": {"epochs": 5}}
    result = train_run(load_spec(data=data), tmp)
    return result, prepare(load_spec(data=data))


def test_eval_reproduces_in_process_metrics(bn_run):
    result, prepared = bn_run
    loaded = load_run(result.run.path)
    # in-process: the trained model (running statistics, no dropout) on the prepared test split
    expected = score(loaded.model, prepared.X["test"], prepared.Y["test"], prepared.y["test"], "classification")
    got = evaluate_run(result.run.path)
    assert got["metrics"]["accuracy"] == pytest.approx(expected["accuracy"], abs=0)
    assert got["metrics"]["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    saved = json.loads((result.run.path / "eval.json").read_text())
    assert saved["metrics"] == got["metrics"] and saved["split"] == "test"
    cm = np.array(got["metrics"]["confusion_matrix"]["matrix"])
    assert cm.sum() == len(prepared.split["test"]) == got["metrics"]["n_rows"]
    assert got["notes"] == []


def test_eval_json_cli(bn_run):
    result, _ = bn_run
    out = run("eval", result.run.path, "--json")
    assert out.exit_code == 0
    doc = json.loads(out.stdout)
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix", "loss"} <= set(doc["metrics"])
    assert set(doc["metrics"]["per_class"]) == {"0", "1", "2"}
    table = run("eval", result.run.path).stdout
    assert "confusion matrix" in table and "macro-F1" in table


def test_classification_report_matches_hand_counts():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    r = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert r["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["per_class"]["b"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert r["accuracy"] == pytest.approx(4 / 6)
    f1 = [2 * 0.5 * 0.5 / 1.0, 0.8, 2 * 1.0 * 0.5 / 1.5]
    assert r["macro_f1"] == pytest.approx(np.mean(f1))


def test_balanced_accuracy_roc_auc_and_average_precision_equal_sklearn():
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

    rng = np.random.default_rng(0)
    for _trial in range(30):
        n = int(rng.integers(5, 60))
        y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
        y[0], y[1] = 0, 1  # both classes present
        s = np.round(rng.random(n) + 0.3 * y, int(rng.integers(1, 4)))  # rounding: tied scores
        pred = (s > 0.6).astype(np.int64)
        r = classification_report(y, pred, ["no", "yes"], s)
        assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert r["average_precision"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    one_class = classification_report(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64), ["a", "b"],
                                      np.array([0.1, 0.2, 0.3, 0.4]))
    assert one_class["roc_auc"] is None and one_class["average_precision"] is None


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("iris")
    out = run("train", ROOT / "configs" / "iris_csv.yaml", "--runs-dir", tmp, "-q", "--set", "train.epochs=30")
    assert out.exit_code == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1])


def test_predict_string_labels_and_probabilities(iris_run, tmp_path):
    out = run("predict", iris_run, ROOT / "datasets" / "iris.csv", "--proba", "-o", tmp_path / "p.csv")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 150
    assert {r["prediction"] for r in rows} <= {"setosa", "versicolor", "virginica"}
    assert sum(r["prediction"] == r["species"] for r in rows) > 120
    for r in rows:
        assert sum(float(r[f"p_{c}"]) for c in ("setosa", "versicolor", "virginica")) == pytest.approx(1, abs=1e-5)


def test_predict_to_stdout_without_target(iris_run, tmp_path):
    src = tmp_path / "new.csv"
    src.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.0,3.4,1.5,0.2\n6.7,3.0,5.2,2.3\n")
    out = run("predict", iris_run, src)
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0][-1] == "prediction" and rows[1][-1] == "setosa" and rows[2][-1] == "virginica"


def test_binary_proba_has_both_classes(tmp_path):
    out = run("train", ROOT / "configs" / "moons.yaml", "--runs-dir", tmp_path, "-q", "--set", "train.epochs=3")
    rd = Path(out.stdout.strip())
    src = tmp_path / "x.csv"
    src.write_text("x0,x1\n0.0,1.0\n1.5,-0.5\n")
    rows = list(csv.DictReader(io.StringIO(run("predict", rd, src, "--proba").stdout)))
    for r in rows:
        assert float(r["p_0"]) + float(r["p_1"]) == pytest.approx(1)
        assert r["prediction"] == ("1" if float(r["p_1"]) > 0.5 else "0")


@pytest.mark.parametrize("text,message", [
    ("sepal_length,sepal_width,petal_length\n1,2,3\n", "missing column 'petal_width'"),
    ("sepal_length,sepal_width,petal_length,petal_width\n1,2,x,4\n", "line 2, column 'petal_length': expected a "
     "number"),
])
def test_predict_bad_input_exits_2(iris_run, tmp_path, text, message):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    out = run("predict", iris_run, src)
    assert out.exit_code == 2 and message in out.stderr


def test_predict_ignores_extra_columns_with_a_note_and_repeats_them(iris_run, tmp_path):
    src = tmp_path / "new.csv"
    src.write_text("row_id,sepal_length,sepal_width,petal_length,petal_width,color\n"
                   "a7,5.1,3.5,1.4,0.2,red\nb8,6.7,3.0,5.2,2.3,blue\n")
    out = run("predict", iris_run, src)
    assert out.exit_code == 0, out.stderr
    assert "not used by the model, ignored: 'row_id', 'color'" in out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["row_id"] for r in rows] == ["a7", "b8"] and [r["color"] for r in rows] == ["red", "blue"]
    assert [r["prediction"] for r in rows] == ["setosa", "virginica"]


def test_eval_on_a_csv_and_unknown_labels(iris_run, tmp_path):
    out = run("eval", iris_run, "--data", ROOT / "datasets" / "iris.csv", "--json")
    doc = json.loads(out.stdout)
    assert doc["split"] == "csv" and doc["metrics"]["n_rows"] == 150
    assert (iris_run / "eval-iris.json").exists()  # eval.json stays the held-out test result
    blank = tmp_path / "blank.csv"  # predict ignores the target column, even when it is empty
    blank.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n5.0,3.4,1.5,0.2,\n")
    assert run("predict", iris_run, blank).stdout.strip().splitlines()[1].endswith(",setosa")
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n1,2,3,4,tulip\n")
    out = run("eval", iris_run, "--data", bad)
    assert out.exit_code == 2 and "line 2, column 'species': label 'tulip' is not one of the trained" in out.stderr


def test_eval_notes_a_changed_data_file(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 5},{i % 3},{'xy'[i % 2]}\n" for i in range(40)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv}\ntrain: {epochs: 2}\n")
    rd = Path(run("train", cfg, "--runs-dir", tmp_path / "runs", "-q").stdout.strip())
    with data.open("a") as f:
        f.write("1,1,x\n")
    out = run("eval", rd)
    assert out.exit_code == 0
    assert "changed since training" in out.stderr


@pytest.mark.parametrize("damage,message", [
    (lambda p: (p / "weights.npz").unlink(), "no such weights file"),
    (lambda p: (p / "weights.npz").write_bytes(b"PK\x03\x04junk"), "not a readable .npz"),
    (lambda p: (p / "summary.json").write_text("{trunc"), "summary.json: damaged"),
    (lambda p: (p / "config.yaml").write_text("model: {hidden: [3]}\n"), "config.yaml is invalid"),
])
def test_eval_damaged_run_exits_2(tmp_path, damage, message):
    out = run("train", ROOT / "configs" / "xor.yaml", "--runs-dir", tmp_path, "-q", "--set", "train.epochs=1")
    rd = Path(out.stdout.strip())
    damage(rd)
    out = run("eval", rd)
    assert out.exit_code == 2 and message in out.stderr, out.stderr


@pytest.mark.parametrize("source", ["sklearn:moons", str(ROOT / "datasets" / "iris.csv")])
def test_mse_on_a_classification_task_trains_and_evaluates(tmp_path, source):
    """`train.loss: mse` on classification (the lecture's pairing) trains, says why cross-entropy is
    the usual choice, and eval and predict --proba give probabilities."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: '{source}'}}\nmodel: {{hidden: [8]}}\noptimizer: {{name: adam, lr: 0.02}}\n"
                   f"train: {{loss: mse, epochs: 30}}\n")
    out = run("train", cfg, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 0, out.stderr
    assert "MSE_CLASSIFICATION" in out.stderr and "cross_entropy" in out.stderr
    path = Path(out.stdout.strip().splitlines()[-1])
    summary = json.loads((path / "summary.json").read_text())
    assert summary["loss"] == "mse" and "MSE_CLASSIFICATION" in [f["code"] for f in summary["findings"]]
    assert "BAD_INIT_LOSS" not in [f["code"] for f in summary["findings"]]  # ln C is no landmark for mse
    doc = json.loads(run("eval", path, "--json").stdout)
    assert doc["metrics"]["accuracy"] > 0.8 and 0 <= doc["metrics"]["loss"] < 0.25
    loaded = load_run(path)
    assert loaded.model.loss.link == ("sigmoid" if source == "sklearn:moons" else "softmax")
    assert loaded.model.output_layer.units == (1 if source == "sklearn:moons" else 3)
    P = loaded.model.loss.output(loaded.model.logits(prepare(loaded.spec).X["test"]))
    assert ((P >= 0) & (P <= 1)).all()
    if source.endswith(".csv"):  # predict: class names and one probability column per class, summing to 1
        pred = list(csv.DictReader(io.StringIO(run("predict", path, source, "--proba").stdout)))
        assert {r["prediction"] for r in pred} <= {"setosa", "versicolor", "virginica"}
        sums = [sum(float(r[f"p_{c}"]) for c in ("setosa", "versicolor", "virginica")) for r in pred]
        assert sums == pytest.approx([1.0] * len(pred), abs=1e-5)
