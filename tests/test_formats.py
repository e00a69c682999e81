"""The README's "File formats" tables are the code's: every key a run directory's files hold is in
its file's table, every row of a table is written by one of the runs trained here (rows whose
"written" cell is not "always" are the optional ones), and the NumPy-only predictor in the README
gives the probabilities `nnctl predict --proba` prints."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.config.load import load_spec
from nnctl.errors import TrainingFailed
from nnctl.evaluate import evaluate_run
from nnctl.nn.optimizers import OPTIMIZERS, Adam
from nnctl.training.session import resume_run, train_run

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PLACEHOLDERS = {"l": r"[1-9][0-9]*", "epoch": r"[0-9]+", "state": r"[a-z_]+"}


# ------------------------------------------------------------------------------------ the README
def section(title: str) -> str:
    """The text under the README heading `#### {title}`, up to the next heading."""
    m = re.search(rf"^#### {re.escape(title)}\n(.*?)(?=^#)", README, re.S | re.M)
    assert m, f"README has no '#### {title}' section"
    return m.group(1)


def table(title: str) -> dict[str, tuple[bool, str]]:
    """The table under `#### {title}`: key -> (optional, meaning). A row's first cell is the key in
    backticks; its third cell says when it is written ("always", or the condition: optional)."""
    rows = {}
    for line in section(title).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"{title}: a row needs 4 cells (key, type, written, meaning): {line}"
        key = re.fullmatch(r"`([^`]+)`", cells[0])
        assert key, f"{title}: the first cell is not one key in backticks: {line}"
        assert key.group(1) not in rows, f"{title}: {key.group(1)} is listed twice"
        rows[key.group(1)] = (cells[2] != "always", cells[3])
    assert rows, f"{title}: no table rows"
    return rows


def named(meaning: str) -> set[str]:
    """The plain names in backticks in a table cell (`task_reason`, `dropped_rows`, ...)."""
    return set(re.findall(r"`([A-Za-z_][\w-]*)`", meaning))


def pattern(key: str) -> re.Pattern:
    """A table key as a regex: {l}, {epoch} and {state} are placeholders, {key} any weights.npz key."""
    weights = "|".join(pattern(k).pattern for k in table("weights.npz")) if "{key}" in key else ""
    parts = re.split(r"\{(\w+)\}", key)
    out = "".join(re.escape(p) if i % 2 == 0 else
                  (f"(?:{weights})" if p == "key" else PLACEHOLDERS[p]) for i, p in enumerate(parts))
    return re.compile(out)


def check_keys(title: str, written: list[set[str]]) -> None:
    """Every written key is documented, every "always" row is in each file, every row in some file."""
    rows = table(title)
    patterns = {key: pattern(key) for key in rows}
    used = set()
    for keys in written:
        for k in keys:
            hits = [p for p, rx in patterns.items() if rx.fullmatch(k)]
            assert hits, f"{title}: {k!r} is written but not in the README's table"
            used.update(hits)
        for p, (optional, _) in rows.items():
            assert optional or any(patterns[p].fullmatch(k) for k in keys), \
                f"{title}: {p!r} is documented as always written but this file lacks it: {sorted(keys)}"
    assert set(rows) <= used, f"{title}: documented but written by none of the runs: {sorted(set(rows) - used)}"


# ------------------------------------------------------------------------------------ the runs
def _only(folder: Path) -> Path:
    (run,) = [p for p in folder.iterdir() if p.is_dir()]
    return run


def _dated_csv(path: Path) -> Path:
    """A regression file with a date, a numeric column with gaps and a text column with a rare level."""
    rng = np.random.default_rng(0)
    lines = ["day,temp,city,y"]
    for i in range(60):
        day = "" if i % 17 == 5 else f"2024-{1 + i % 12:02d}-{1 + i % 27:02d}"
        temp = "" if i % 11 == 3 else f"{rng.normal(10, 5):.3f}"
        city = "Quito" if i == 7 else ("Oslo", "Rome", "Lima")[i % 3]
        lines.append(f"{day},{temp},{city},{rng.normal():.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories covering every optional key: text columns with imputation, whitening, class
    weights, snapshots, steps and a checkpoint between epochs (penguins); batch norm (moons, then
    extended by one epoch with resume --epochs); a
    regression with a date and a rare level under pca (dated); a regression stopped inside an
    epoch (stopped), then resumed (resumed)."""
    tmp = tmp_path_factory.mktemp("formats")
    out = {}
    spec = load_spec(ROOT / "configs" / "penguins.yaml",
                     ["train.epochs=3", "data.missing=impute", "data.impute.indicator=true",
                      "train.class_weight=balanced", "data.preprocess=whiten", "train.snapshot_every=1",
                      "train.log_steps=true"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNCTL_CHECKPOINT_SECONDS", "0")  # a checkpoint after epochs 1 and 2: between epochs
        out["penguins"] = train_run(spec, tmp / "penguins").run.path
    spec = load_spec(ROOT / "configs" / "moons.yaml", ["train.epochs=3", "model.norm=batch"])
    out["batchnorm"] = train_run(spec, tmp / "batchnorm").run.path
    resume_run(out["batchnorm"], epochs=4)  # resume --epochs: summary.json's `extended`
    data = {"source": str(_dated_csv(tmp / "dated.csv")), "target": "y", "task": "regression",
            "missing": "impute", "impute": {"indicator": True}, "categorical": {"min_frequency": 2}}
    spec = load_spec(data={"name": "dated", "seed": 0, "data": {**data, "preprocess": "pca"},
                           "model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 8}})
    out["dated"] = train_run(spec, tmp / "dated").run.path
    config = {"name": "stopped", "seed": 0, "data": data, "model": {"hidden": [8]},
              "optimizer": {"name": "adam", "schedule": {"name": "plateau"}},
              "train": {"epochs": 5, "batch_size": 8, "log_steps": True,
                        "early_stopping": {"patience": 10, "restore_best": True}}}
    original, taken = Adam.step, []

    def step(self, theta, grad, lr):
        original(self, theta, grad, lr)
        taken.append(1)
        if len(taken) == 12:  # like a Ctrl-C during the third epoch (5 steps an epoch)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Adam, "step", step)
        with pytest.raises(TrainingFailed, match="interrupted in epoch 3"):
            train_run(load_spec(data=config), tmp / "stopped")
    stopped = _only(tmp / "stopped")
    out["stopped"] = tmp / "stopped-copy"
    _copy(stopped, out["stopped"])
    resume_run(stopped)
    out["resumed"] = stopped
    return out


def _copy(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))


def npz_keys(path: Path) -> set[str]:
    with np.load(path) as z:
        return set(z.files)


# ------------------------------------------------------------------------------------ the tables
def test_weights_npz_keys_are_the_documented_ones(runs):
    check_keys("weights.npz", [npz_keys(r / "weights.npz") for r in runs.values()])


def test_preprocess_npz_keys_are_the_documented_ones(runs):
    check_keys("preprocess.npz", [npz_keys(r / "preprocess.npz") for r in runs.values()])


def test_preprocess_columns_entry_fields_are_the_documented_ones(runs):
    encodings = []
    for r in runs.values():
        with np.load(r / "preprocess.npz") as z:
            encodings += json.loads(str(z["columns"]))
    check_keys("The `columns` entry of preprocess.npz", [set(c) for c in encodings])
    kinds = named(table("The `columns` entry of preprocess.npz")["kind"][1]) | {"numeric", "categorical", "date"}
    assert {c["kind"] for c in encodings} == {"numeric", "categorical", "date"} <= kinds


def test_split_npz_keys_are_the_documented_ones(runs):
    check_keys("split.npz", [npz_keys(r / "split.npz") for r in runs.values()])


def test_snapshots_npz_keys_are_the_documented_ones(runs):
    check_keys("snapshots.npz", [npz_keys(r / "snapshots.npz") for r in runs.values()
                                 if (r / "snapshots.npz").exists()])


def test_checkpoint_keys_and_metadata_are_the_documented_ones(runs):
    ckpts = [r / "checkpoint" / "checkpoint.npz" for r in runs.values()]
    ckpts = [c for c in ckpts if c.exists()]
    check_keys("checkpoint/checkpoint.npz", [npz_keys(c) for c in ckpts])
    metas = []
    for c in ckpts:
        with np.load(c) as z:
            metas.append(json.loads(str(z["meta"])))
    check_keys("The `meta` entry of checkpoint.npz", [set(m) for m in metas])
    rows = table("The `meta` entry of checkpoint.npz")
    stopped = json.loads(str(np.load(runs["stopped"] / "checkpoint" / "checkpoint.npz")["meta"]))
    assert set(stopped["cursor"]) == named(rows["cursor"][1])
    assert set(stopped["rng"]) == named(rows["rng"][1])
    assert set(stopped["schedule"]) <= named(rows["schedule"][1])  # plateau's state


def test_every_optimizer_state_is_documented():
    """The optimizer/{state} row names exactly the state vectors the optimizers keep (every option on)."""
    every_option = {"rmsprop": {"momentum": 0.9, "centered": True}, "adam": {"amsgrad": True},
                    "adamw": {"amsgrad": True}}
    states = {s for name in OPTIMIZERS.names() for s in OPTIMIZERS.get(name, every_option.get(name)).state_names()}
    meaning = table("checkpoint/checkpoint.npz")["optimizer/{state}"][1]
    documented = named(meaning) - set(OPTIMIZERS.names())  # the row names the optimizers too
    assert states == documented


def test_summary_json_keys_are_the_documented_ones(runs):
    summaries = {name: json.loads((r / "summary.json").read_text()) for name, r in runs.items()}
    check_keys("summary.json", [set(s) for s in summaries.values()])
    rows = table("summary.json")
    for name, s in summaries.items():
        assert set(s["data"]) == named(rows["data"][1])
        assert set(s["n_rows"]) == named(rows["n_rows"][1])
        assert set(s["versions"]) == named(rows["versions"][1])
        for entry in s["blas"]:
            assert set(entry) == named(rows["blas"][1])
        columns = set((runs[name] / "metrics.csv").read_text().splitlines()[0].split(","))
        assert set(s["final"]) <= columns and set(s["best"]) <= columns
    assert set(summaries["resumed"]["resumed_from"]) == named(rows["resumed_from"][1])


def test_summary_findings_have_the_documented_fields():
    from nnctl.diagnostics import CATALOGUE, finding

    record = finding(next(iter(CATALOGUE)), 1, 1, "message")
    assert set(record) == named(table("summary.json")["findings"][1])


def test_eval_json_keys_are_the_documented_ones(runs):
    names = ("penguins", "batchnorm", "dated")  # three classes, two classes, regression
    for name in names:
        evaluate_run(runs[name])
    files = [json.loads((runs[name] / "eval.json").read_text()) for name in names]
    check_keys("eval.json", [{*d} | {f"metrics.{k}" for k in d["metrics"]} for d in files])
    rows = table("eval.json")
    for d in files[:2]:
        for per_class in d["metrics"]["per_class"].values():
            assert set(per_class) == named(rows["metrics.per_class"][1])
        assert set(d["metrics"]["confusion_matrix"]) == named(rows["metrics.confusion_matrix"][1])


def test_csv_columns_are_the_documented_ones(runs):
    def header(path: Path) -> list[str]:
        return path.read_text().splitlines()[0].split(",")

    check_keys("metrics.csv", [set(header(r / "metrics.csv")) for r in runs.values()])
    check_keys("steps.csv", [set(header(r / "steps.csv")) for r in runs.values() if (r / "steps.csv").exists()])
    check_keys("diagnostics.csv", [set(header(r / "diagnostics.csv")) for r in runs.values()])
    assert header(runs["penguins"] / "diagnostics.csv") == list(table("diagnostics.csv"))  # in file order


# ------------------------------------------------------------------------------------ the predictor
def predictor_source() -> str:
    m = re.search(r"<!-- numpy-predictor -->\n```python\n(.*?)```", README, re.S)
    assert m, "README has no python block after <!-- numpy-predictor -->"
    return m.group(1)


def test_the_predictor_uses_numpy_only_and_is_short():
    source = predictor_source()
    imports = {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in node.names} | {node.module for node in ast.walk(ast.parse(source))
                                           if isinstance(node, ast.ImportFrom)}
    assert imports == {"numpy"}
    assert len([line for line in source.splitlines() if line.strip()]) <= 16


def _cli(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


@pytest.mark.parametrize("config, overrides", [
    ("moons", []),
    ("moons", ["model.activation=tanh"]),
    ("moons", ["data.preprocess=pca"]),
    ("moons", ["data.preprocess=whiten", "model.activation=tanh"]),
    ("moons", ["train.loss=cross_entropy", "data.preprocess=minmax"]),
    ("iris_csv", []),
    ("iris_csv", ["data.preprocess=pca", "model.activation=relu"]),
], ids=["relu", "tanh", "pca", "whiten-tanh", "softmax-minmax", "iris-tanh", "iris-pca-relu"])
def test_the_readme_predictor_matches_predict_proba(tmp_path, config, overrides):
    sets = [a for o in ["train.epochs=3", *overrides] for a in ("--set", o)]
    out = _cli("train", ROOT / "configs" / f"{config}.yaml", "--runs-dir", tmp_path / "runs", "-q", *sets)
    run = Path(out.strip().splitlines()[-1])
    with np.load(run / "preprocess.npz") as z:
        features, classes = [str(f) for f in z["feature_names"]], [str(c) for c in z["classes"]]
    if config == "iris_csv":
        rows = list(csv.DictReader((ROOT / "datasets" / "iris.csv").open()))[::5]
        X = np.array([[float(r[f]) for f in features] for r in rows])
    else:
        X = np.random.default_rng(1).normal(0.5, 1.0, size=(40, len(features)))
    data = tmp_path / "rows.csv"
    np.savetxt(data, X, delimiter=",", header=",".join(features), comments="", fmt="%.17g")
    printed = list(csv.DictReader(io.StringIO(_cli("predict", run, data, "--proba"))))
    expected = np.array([[float(r[f"p_{c}"]) for c in classes] for r in printed])

    namespace: dict = {}
    exec(compile(predictor_source(), "README.md", "exec"), namespace)
    activation = yaml.safe_load((run / "config.yaml").read_text())["model"]["activation"]
    kwargs = {} if activation == "relu" else {"act": {"tanh": np.tanh}[activation]}  # relu: the default
    P = namespace["predict_proba"](run, X, **kwargs)
    assert P.shape == expected.shape == (len(X), len(classes))
    np.testing.assert_allclose(P, expected, atol=1e-5, rtol=0)
