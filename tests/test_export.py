"""nnctl export --format onnx: onnxruntime on the exported graph gives what `nnctl predict` gives.

Each test trains a small run (a few epochs), writes a CSV, runs predict on it (the library function
predict_csv, the CLI command's body) and the exported graph on the same rows read as the graph
expects them (float32 numbers, NaN = missing; text, "" = missing), and compares.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.config.load import load_spec
from nnctl.data.columns import date_parts, encoding_from_json
from nnctl.data.reading import AUTO_NA
from nnctl.errors import DataError
from nnctl.evaluate import load_run, predict_csv
from nnctl.export import export_onnx
from nnctl.nn.activations import ACTIVATIONS
from nnctl.training.session import train_run

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "datasets" / "penguins.csv"
TOL = 1e-5


def train(tmp: Path, config, *overrides: str) -> Path:
    """A run trained in-process from a config file (with --set style overrides) or a config dict."""
    spec = load_spec(config, list(overrides)) if isinstance(config, Path) else load_spec(data=config)
    return train_run(spec, tmp / "runs").run.path


def builtin_csv(run: Path, path: Path, rows: int = 200) -> Path:
    """The first `rows` rows of a built-in dataset's features, as a CSV named by its feature names."""
    from nnctl.data.sources import load_dataset

    ds = load_dataset(load_run(run).spec.data)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ds.feature_names)
        w.writerows([[repr(float(v)) for v in r] for r in ds.X[:rows]])
    return path


def feeds(run: Path, path: Path) -> dict[str, np.ndarray]:
    """The CSV's columns as the graph's inputs: numbers in float32 (NaN = missing), text as written."""
    loaded = load_run(run)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for e in encoding_from_json(loaded.columns).encoders:
        cells = [r[e.name].strip() for r in rows]
        if e.kind == "numeric":
            out[e.name] = np.array([[np.nan if c in AUTO_NA else float(c)] for c in cells], dtype=np.float32)
        else:
            out[e.name] = np.array([[c] for c in cells], dtype=object)  # "NA" as written: the graph knows it
    return out


def run_graph(run: Path, path: Path, inputs: dict | None = None) -> dict[str, np.ndarray]:
    """Export the run and run onnxruntime on the CSV (or on `inputs`)."""
    model, _ = export_onnx(run, run.parent / f"{run.name}.onnx")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs if inputs is not None else feeds(run, path))))


def predicted(run: Path, path: Path) -> tuple[list[str] | None, np.ndarray]:
    """predict's output for the CSV: (labels or None, the p_<class> or prediction columns as floats)."""
    loaded = load_run(run)
    proba = loaded.task == "classification" and loaded.model.loss.has_proba
    header, rows, _ = predict_csv(run, path, proba=proba)
    numeric = [j for j, h in enumerate(header) if h.startswith("p_") or (loaded.task == "regression"
                                                                           and h.startswith("prediction"))]
    values = np.array([[float(r[j]) for j in numeric] for r in rows]).reshape(len(rows), len(numeric))
    labels = [r[header.index("prediction")] for r in rows] if loaded.task == "classification" else None
    return labels, values


def agreement(run: Path, path: Path) -> float:
    """The largest difference between the graph's probabilities (values) and predict's; the labels must
    match wherever the two best classes are not within the tolerance of each other."""
    labels, expected = predicted(run, path)
    out = run_graph(run, path)
    loaded = load_run(run)
    if labels is None:
        scale = loaded.target.scale if loaded.target is not None else 1.0
        # a float32 network's own rounding (~1e-7 of its standardized output) is scale times that in the
        # target's units: the difference is measured in the units the network computes in
        return float(np.max(np.abs(out["value"] - expected) / np.maximum(scale, 1.0)))
    P = out["probabilities"]
    assert P.shape == expected.shape == (len(labels), len(loaded.classes))
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * TOL
    assert np.array_equal(out["label"][clear], np.array(labels)[clear])
    return float(np.max(np.abs(P - expected)))


# ------------------------------------------------------------------------------------ example configs
@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_config_agrees_with_predict(tmp_path, config):
    run = train(tmp_path, config, "train.epochs=3")
    spec = load_run(run).spec
    if spec.data.builtin:
        data = builtin_csv(run, tmp_path / "in.csv")
    else:
        data = (config.parent / spec.data.source).resolve()
    assert agreement(run, data) < TOL


@pytest.mark.parametrize("indicator", [False, True])
def test_penguins_with_imputation_agrees_on_every_row(tmp_path, indicator):
    run = train(tmp_path, ROOT / "configs" / "penguins.yaml", "train.epochs=3", "data.missing=impute",
                f"data.impute.indicator={str(indicator).lower()}")
    columns = load_run(run).columns
    assert any(c.get("indicator") for c in columns) == indicator
    assert agreement(run, PENGUINS) < TOL  # 344 rows, 11 with a missing sex, 2 with no measurements
    graph = onnx.load(str(run.parent / f"{run.name}.onnx"))
    assert graph.opset_import[0].version >= 17
    kinds = {i.name: i.type.tensor_type.elem_type for i in graph.graph.input}
    assert kinds == {"island": onnx.TensorProto.STRING, "sex": onnx.TensorProto.STRING,
                     **dict.fromkeys(["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                                      "year"], onnx.TensorProto.FLOAT)}
    assert [o.name for o in graph.graph.output] == ["label", "probabilities"]


@pytest.mark.parametrize("policy", ["drop", "error"])
def test_rows_predict_refuses_are_nan_and_the_others_agree(tmp_path, policy):
    """data.missing: drop or error leaves no fill: predict skips (drop) or refuses (error) a row with a
    missing value; the graph gives it NaN probabilities and an empty label, and the other rows agree."""
    with open(PENGUINS) as f:
        rows = list(csv.DictReader(f))
    incomplete = np.array(["NA" in r.values() for r in rows])
    complete = tmp_path / "complete.csv"
    with open(complete, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r, bad in zip(rows, incomplete) if not bad)
    source = PENGUINS if policy == "drop" else complete  # error: training itself needs complete rows
    run = train(tmp_path, ROOT / "configs" / "penguins.yaml", "train.epochs=3", f"data.missing={policy}",
                f"data.source={source}")
    out = run_graph(run, PENGUINS)
    P = out["probabilities"]
    assert np.isnan(P[incomplete]).all() and (out["label"][incomplete] == "").all()
    assert np.isfinite(P[~incomplete]).all() and (out["label"][~incomplete] != "").all()
    if policy == "error":
        with pytest.raises(DataError, match="missing values in"):
            predict_csv(run, PENGUINS, proba=True)
    else:  # predict skips the incomplete rows
        assert len(predict_csv(run, PENGUINS, proba=True)[1]) == int((~incomplete).sum())
    _, expected = predicted(run, complete)
    assert np.abs(P[~incomplete] - expected).max() < TOL


# ------------------------------------------------------------------------------------ dates and levels
DATES = ["2000-02-29", "1900-01-01", "1899-12-31", "2099-12-31", "2100-01-01", "2024/02/29", "2021-03-04T10:20:30",
         "2021-03-04 23:59", "2021-03-04T10:20:30.123+05:30", "2021-03-04T10:20Z", "1969-12-31", "0001-01-01",
         "9999-12-31", "1600-02-29", "2000/01/31 10:00", "", "NA"]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """A run on a date column (missing values), a color with a rare level (min_frequency: 'other'),
    and a number (missing values), imputed with indicators."""
    tmp = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    n = 400
    dates = np.datetime_as_string(np.datetime64("1995-01-01") + rng.integers(0, 365 * 30, n))
    colors = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    colors[:3] = "rare"
    x = rng.normal(size=n)
    with open(tmp / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["when", "color", "x", "y"])
        for i in range(n):
            w.writerow([dates[i] if i % 17 else "", colors[i] if i % 23 else "", x[i] if i % 29 else "",
                        "yes" if x[i] + (colors[i] == "red") > 0.3 else "no"])
    config = {"data": {"source": str(tmp / "train.csv"), "target": "y", "missing": "impute",
                       "impute": {"indicator": True}, "categorical": {"min_frequency": 5}},
              "model": {"hidden": [8]}, "train": {"epochs": 3}}
    return train(tmp, config), dates


@pytest.mark.filterwarnings("ignore:no explicit representation of timezones")  # numpy, on "+05:30" in predict
def test_dates_rare_and_unknown_levels_agree(mixed_run, tmp_path):
    run, dates = mixed_run
    columns = {c["name"]: c for c in load_run(run).columns}
    assert columns["when"]["kind"] == "date" and columns["when"]["indicator"]
    assert columns["color"]["other"] == ["rare"] and columns["color"]["indicator"]
    data = tmp_path / "new.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["when", "color", "x"])
        for i, d in enumerate(DATES + list(dates[:40])):  # a window date, a parsed one, a missing one ...
            w.writerow([d, ["red", "rare", "purple", "", "green", "NA"][i % 6], ["0.5", "", "-1.25"][i % 3]])
    _, _, notes = predict_csv(run, data, proba=True)
    assert any("'purple'" in n for n in notes)  # an unknown level: all zeros
    assert agreement(run, data) < TOL


def test_unreadable_dates_and_unknown_levels_under_error_are_nan(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("when,color,y\n" + "".join(f"20{10 + i % 9}-0{1 + i % 9}-1{i % 10},{'ab'[i % 2]},{i % 3}\n"
                                               for i in range(60)))
    run = train(tmp_path, {"data": {"source": str(data), "categorical": {"unknown": "error"}},
                           "model": {"hidden": [4]}, "train": {"epochs": 2}})
    when = ["2021-02-28", "2021-02-29", "2021-13-01", "2021-1-01", "hello", "2020-02-29", "2021-04-31", "2021-04-30"]
    color = ["a", "b", "a", "b", "a", "c", "a", "b"]
    out = run_graph(run, data, {"when": np.array(when, dtype=object)[:, None],
                                "color": np.array(color, dtype=object)[:, None]})
    refused = np.array([False, True, True, True, True, True, True, False])  # "c": unseen under unknown: error
    assert np.isnan(out["probabilities"][refused]).all() and (out["label"][refused] == "").all()
    assert np.isfinite(out["probabilities"][~refused]).all() and (out["label"][~refused] != "").all()
    bad = tmp_path / "bad.csv"
    bad.write_text("when,color\n2021-02-28,c\n")
    with pytest.raises(DataError, match="was not seen in training"):
        predict_csv(run, bad)


def test_date_parts_parsed_in_the_graph_match_numpy():
    """The in-graph parser (used for date-times, slashes and years outside the lookup table) against
    columns.date_parts, on random dates over the whole ISO range."""
    from onnx import helper

    from nnctl.export.columns import parse_dates
    from nnctl.export.graph import ML_OPSET, OPSET, Graph

    rng = np.random.default_rng(1)
    days = np.datetime64("0001-01-01") + rng.integers(0, 3_652_000, 3000)
    text = [str(d) + ["", "T12:00:00", " 23:59", "T00:00:00.5-03:00"][i % 4] for i, d in enumerate(
        np.datetime_as_string(days))]
    text = [t.replace("-", "/", 2) if i % 5 == 0 else t for i, t in enumerate(text)]
    g = Graph({"s"})
    parts, unreadable = parse_dates(g, "s")
    g.op("Identity", parts, out="parts")
    g.op("Identity", unreadable, out="unreadable")
    T, info = onnx.TensorProto, helper.make_tensor_value_info
    graph = helper.make_graph(g.nodes, "dates", [info("s", T.STRING, [None, 1])],
                              [info("parts", T.DOUBLE, [None, 5]), info("unreadable", T.BOOL, [None, 1])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got, bad = session.run(None, {"s": np.array(text + ["2021-02-29", "2021-00-10", "x"], dtype=object)[:, None]})
    assert np.array_equal(got[:len(days)], date_parts(days))
    assert not bad[:len(days)].any() and bad[len(days):].all()


# ------------------------------------------------------------------------------------ the network
BLOBS = {"source": "sklearn:blobs", "options": {"n_samples": 200, "centers": 3, "cluster_std": 2.0}}


def blobs_run(tmp: Path, model: dict, data: dict | None = None, train_: dict | None = None) -> Path:
    return train(tmp, {"data": {**BLOBS, **(data or {})}, "model": model, "train": {"epochs": 3, **(train_ or {})}})


@pytest.mark.parametrize("activation,options", [(name, {}) for name in ACTIVATIONS.names()] + [
    ("maxout", {"pieces": 3}), ("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5}),
    ("gelu", {"approximate": "tanh"}), ("softplus", {"beta": 2.0, "threshold": 1.0})])
def test_every_activation_agrees(tmp_path, activation, options):
    run = blobs_run(tmp_path, {"hidden": [8, 6], "activation": activation, "activation_options": options})
    assert agreement(run, builtin_csv(run, tmp_path / "in.csv")) < TOL


@pytest.mark.parametrize("norm,options", [("batch", {}), ("layer", {}), ("group", {"groups": 2})])
def test_every_norm_agrees(tmp_path, norm, options):
    run = blobs_run(tmp_path, {"hidden": [8, 8], "norm": norm, "norm_options": options})
    if norm == "batch":  # inference uses the running statistics, which training moved
        assert not np.allclose(load_run(run).model.buffers["running_mean1"], 0)
    assert agreement(run, builtin_csv(run, tmp_path / "in.csv")) < TOL


@pytest.mark.parametrize("method,components", [("none", None), ("center", None), ("standardize", None),
                                               ("minmax", None), ("pca", 0.9), ("whiten", 5)])
def test_every_preprocess_method_agrees(tmp_path, method, components):
    """On penguins: one-hot columns and indicators, whose scaling the graph folds into the first layer.
    Unscaled (none, center), body masses of 3,000-6,000 g and years of 2007-2009 make a float32 network's
    sums so large that its own rounding differs between two BLAS libraries by ~5e-5 of a probability:
    those two train in float64, where the graph's agreement is not drowned by it."""
    dtype = "float64" if method in ("none", "center") else "float32"
    run = train(tmp_path, ROOT / "configs" / "penguins.yaml", "train.epochs=3", "data.impute.indicator=true",
                f"data.preprocess={method}", f"data.pca_components={components if components else 'null'}",
                f"train.dtype={dtype}")
    assert load_run(run).pre.method == method
    assert agreement(run, PENGUINS) < TOL


# ------------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize("target_scale", ["auto", "none"])
def test_regression_values_are_in_the_targets_units(tmp_path, target_scale):
    run = train(tmp_path, ROOT / "configs" / "diabetes.yaml", "train.epochs=5", f"data.target_scale={target_scale}")
    data = builtin_csv(run, tmp_path / "in.csv")
    assert agreement(run, data) < TOL
    value = run_graph(run, data)["value"]
    assert value.dtype == np.float64 and value.shape == (200, 1)
    if target_scale == "auto":  # diabetes progression is 25-346: the standardized outputs would be near 0
        assert 100 < value.mean() < 200


def test_multi_target_regression(tmp_path):
    run = train(tmp_path, {"data": {"source": "sklearn:regression", "options": {"n_samples": 300, "n_features": 5,
                                                                              "n_targets": 3}},
                           "model": {"hidden": [8]}, "train": {"epochs": 3}})
    data = builtin_csv(run, tmp_path / "in.csv")
    assert run_graph(run, data)["value"].shape == (200, 3)
    assert agreement(run, data) < TOL


def test_float64_run_agrees_to_float64_precision(tmp_path):
    """float64 runs compute in float64 in the graph too: on inputs float32 holds exactly, the values
    agree to rounding in the target's own units (1e-5 absolute and far below)."""
    run = train(tmp_path, ROOT / "configs" / "diabetes.yaml", "train.epochs=3", "train.dtype=float64")
    data = builtin_csv(run, tmp_path / "in.csv")
    with open(data, newline="") as f:
        rows = list(csv.reader(f))
    with open(data, "w", newline="") as f:  # each number as the float32 the graph receives
        csv.writer(f).writerows([rows[0]] + [[repr(float(np.float32(v))) for v in r] for r in rows[1:]])
    _, expected = predicted(run, data)
    assert np.abs(run_graph(run, data)["value"] - expected).max() < 1e-9


@pytest.mark.parametrize("loss,centers", [("hinge", 2), ("hinge", 3), ("perceptron", 2)])
def test_margin_losses_give_labels_and_scores(tmp_path, loss, centers):
    settings = {"optimizer": {"name": "sgd", "lr": 0.1}} if loss == "perceptron" else {}
    config = {"data": {**BLOBS, "options": {**BLOBS["options"], "centers": centers}},
              "model": {"hidden": [] if loss == "perceptron" else [8]},
              "train": {"epochs": 3, "loss": loss, **({"gd": "stochastic"} if loss == "perceptron" else {})},
              **settings}
    run = train(tmp_path, config)
    data = builtin_csv(run, tmp_path / "in.csv")
    out = run_graph(run, data)
    assert set(out) == {"label", "scores"}  # no probabilities to give
    loaded = load_run(run)
    header, rows, _ = predict_csv(run, data)
    assert list(out["label"]) == [r[header.index("prediction")] for r in rows]
    X = np.array([[float(v) for v in r[:-1]] for r in rows])
    assert np.abs(out["scores"] - loaded.logits(X)).max() < TOL


@pytest.mark.parametrize("centers", [2, 3])
def test_mse_on_classification_gives_probabilities(tmp_path, centers):
    run = blobs_run(tmp_path, {"hidden": [8]}, {"options": {**BLOBS["options"], "centers": centers}},
                    {"loss": "mse"})
    data = builtin_csv(run, tmp_path / "in.csv")
    assert run_graph(run, data)["probabilities"].shape == (200, centers)
    assert agreement(run, data) < TOL


def test_non_finite_numbers_give_nan_rows(tmp_path):
    run = blobs_run(tmp_path, {"hidden": [4]})
    x = np.array([[0.5], [np.inf], [-np.inf], [np.nan]], dtype=np.float32)
    out = run_graph(run, None, {"x0": x, "x1": np.zeros_like(x)})
    assert np.isfinite(out["probabilities"][0]).all() and out["label"][0] != ""
    assert np.isnan(out["probabilities"][1:]).all() and (out["label"][1:] == "").all()


def test_an_output_predict_calls_not_finite_gives_a_nan_row(tmp_path):
    """Finite inputs, but logits that overflow float32 (predict: 'the model's output is not finite')."""
    from nnctl.files import write_npz

    run = blobs_run(tmp_path, {"hidden": [4], "activation": "linear"})
    weights = load_run(run).model.state_arrays()
    weights["W2"] = weights["W2"] * np.float32(1e30)
    write_npz(run / "weights.npz", weights)
    x = np.array([[0.5], [1e12]], dtype=np.float32)
    with pytest.raises(DataError, match="not finite"):
        load_run(run).logits(np.hstack([x, np.zeros_like(x)]).astype(np.float64))
    out = run_graph(run, None, {"x0": x, "x1": np.zeros_like(x)})
    assert np.isfinite(out["probabilities"][0]).all() and out["label"][0] != ""
    assert np.isnan(out["probabilities"][1]).all() and out["label"][1] == ""


@pytest.mark.parametrize("config,loss,second", [("moons", "bce", False), ("moons", "perceptron", True),
                                                ("moons", "hinge", True)])
def test_a_score_of_exactly_zero_gives_predicts_class(tmp_path, config, loss, second):
    """bce: the second class when p > 0.5 (Z > 0); hinge and perceptron: when Z >= 0."""
    from nnctl.files import write_npz

    run = train(tmp_path, ROOT / "configs" / f"{config}.yaml", "train.epochs=1", f"train.loss={loss}",
                "model.hidden=[]", "optimizer.name=sgd", *(["train.gd=stochastic"] if loss == "perceptron" else []))
    write_npz(run / "weights.npz", {k: np.zeros_like(v) for k, v in load_run(run).model.state_arrays().items()})
    data = builtin_csv(run, tmp_path / "in.csv", rows=5)
    header, rows, _ = predict_csv(run, data)
    classes = load_run(run).classes
    assert {r[header.index("prediction")] for r in rows} == {classes[int(second)]}
    assert set(run_graph(run, data)["label"]) == {classes[int(second)]}


# ------------------------------------------------------------------------------------ the command
def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_cli_writes_the_graph_and_prints_its_path(tmp_path):
    run = blobs_run(tmp_path, {"hidden": [4]})
    out = cli("export", run)
    assert out.exit_code == 0, out.stderr
    assert out.stdout.strip() == str(run / "model.onnx")
    onnx.checker.check_model(onnx.load(str(run / "model.onnx")))
    target = tmp_path / "m.onnx"
    out = cli("export", run, "--format", "onnx", "-o", target)
    assert out.exit_code == 0 and out.stdout.strip() == str(target) and target.stat().st_size > 0
    assert not list(tmp_path.glob(".m.onnx.*.tmp"))  # written whole, no temp file left


def test_cli_bad_input_exits_2(tmp_path, monkeypatch):
    run = blobs_run(tmp_path, {"hidden": [4]})
    out = cli("export", tmp_path / "nope")
    assert out.exit_code == 2 and "no such run directory" in out.stderr
    out = cli("export", run, "--format", "tflite")
    assert out.exit_code == 2 and "'tflite' is not one of 'onnx'" in out.stderr
    out = cli("export", run, "-o", tmp_path)
    assert out.exit_code == 2 and "is a directory" in out.stderr
    out = cli("export", run, "-o", "-")  # binary: not for stdout, and no file named '-'
    assert out.exit_code == 2 and "binary" in out.stderr and not Path("-").exists()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    out = cli("export", run)
    assert out.exit_code == 2 and "pip install 'nnctl[onnx]'" in out.stderr
