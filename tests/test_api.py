"""The Python API (DESIGN §7): nnctl.train, nnctl.Run, rows in memory, the error classes."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnctl
from nnctl.files import read_npz

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "datasets" / "penguins.csv"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def weights(run) -> dict:
    return read_npz(Path(run) / "weights.npz", "weights")


def same_weights(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_import_is_light_and_lists_the_api():
    code = ("import sys, nnctl; print(sorted(m for m in ('numpy', 'nnctl.api', 'sklearn', 'pandas') "
            "if m in sys.modules)); print(dir(nnctl))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"  # the CLI imports nnctl on every start: nothing heavy until used
    for name in ("train", "Run", "ConfigError", "DataError", "TrainingFailed", "sklearn"):
        assert name in out[1]
    assert issubclass(nnctl.ConfigError, ValueError) and issubclass(nnctl.DataError, ValueError)


def test_train_a_config_file_like_the_cli(tmp_path):
    run = nnctl.train(ROOT / "configs" / "moons.yaml", overrides={"train.epochs": 4, "optimizer.lr": np.float64(0.02)},
                      runs_dir=tmp_path / "api")
    assert isinstance(run, nnctl.Run) and run.summary["status"] == "completed"
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3, 4]
    assert run.config["optimizer"]["lr"] == 0.02 and run.classes == ["0", "1"] and run.features == ["x0", "x1"]
    proc = cli("train", ROOT / "configs" / "moons.yaml", "--set", "train.epochs=4", "--set", "optimizer.lr=0.02",
               "--runs-dir", tmp_path / "cli", "-q")
    assert proc.returncode == 0, proc.stderr
    assert same_weights(run.path, proc.stdout.strip().splitlines()[-1])


def test_predict_matches_the_cli_on_arrays_dicts_and_frames(tmp_path):
    run = nnctl.train(ROOT / "configs" / "moons.yaml", overrides=["train.epochs=3"], runs_dir=tmp_path)
    X = np.array([[0.5, 0.2], [-1.0, 0.8], [2.0, -0.3]])
    csv = tmp_path / "rows.csv"
    csv.write_text("x0,x1\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in X))
    proc = cli("predict", run.path, csv, "--proba")
    assert proc.returncode == 0, proc.stderr
    lines = [line.split(",") for line in proc.stdout.strip().splitlines()[1:]]
    want = np.array([[float(v) for v in line[-2:]] for line in lines])
    P = run.predict_proba(X)
    assert P.shape == (3, 2) and np.abs(P - want).max() < 1e-6
    assert list(run.predict(X)) == [line[2] for line in lines]
    assert np.array_equal(run.predict_proba({"x1": X[:, 1], "x0": X[:, 0]}), P)  # columns by name, any order
    pd = pytest.importorskip("pandas")
    assert np.array_equal(run.predict_proba(pd.DataFrame(X, columns=["x0", "x1"])), P)
    with pytest.raises(nnctl.DataError, match="reshape"):
        run.predict(X[0])
    with pytest.raises(nnctl.DataError, match="missing column"):
        run.predict({"x0": [1.0]})


def test_rows_in_memory_train_a_run_that_the_cli_can_use(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(PENGUINS)  # strings, missing values (NaN and None), integers
    config = {"name": "pengs", "data": {"target": "species", "missing": "impute"}, "train": {"epochs": 5}}
    run = nnctl.train(config, data=df, runs_dir=tmp_path)
    assert run.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert run.config["data"]["source"] == "data.parquet"  # relative to the run: it survives a move
    assert (run.path / "data.parquet").is_file()
    # the run dir is self-contained: the CLI evaluates it on its test split, and re-trains it bit for bit
    proc = cli("eval", run.path, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"]["n_rows"] == run.summary["n_rows"]["test"]
    again = cli("train", run.path / "config.yaml", "--runs-dir", tmp_path / "again", "-q")
    assert again.returncode == 0, again.stderr
    assert same_weights(run.path, again.stdout.strip().splitlines()[-1])
    # and it predicts and evaluates rows in memory through the run's own data policy
    labels = run.predict(df.drop(columns=["species"]))
    assert len(labels) == len(df) and set(labels) <= set(run.classes)
    ev = run.evaluate(df)
    assert ev["metrics"]["n_rows"] == len(df) and 0 <= ev["metrics"]["accuracy"] <= 1
    with pytest.warns(nnctl.NnctlNote, match="not seen in training"):
        run.predict(df.head(3).assign(island="Atlantis"))


def test_a_dataframe_trains_the_same_model_as_its_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    over = {"train.epochs": 5, "train.early_stopping": None}
    from_csv = nnctl.train(ROOT / "configs" / "penguins.yaml", overrides=over, runs_dir=tmp_path / "csv")
    config = {k: v for k, v in from_csv.config.items()}
    config["data"] = {**config["data"]}
    config["data"].pop("source")
    in_memory = nnctl.train(config, data=pd.read_csv(PENGUINS), runs_dir=tmp_path / "mem")
    assert same_weights(from_csv.path, in_memory.path)


def test_missing_values_follow_the_runs_policy(tmp_path):
    X = np.random.default_rng(0).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    data = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}
    run = nnctl.train({"data": {"missing": "drop"}, "train": {"epochs": 2}}, data=data, runs_dir=tmp_path)
    with pytest.warns(nnctl.NnctlNote, match="1 row with missing values skipped"):
        out = run.predict({"a": [0.1, np.nan], "b": [0.2, 0.3], "c": [0.0, 0.0]})
    assert out[0] in run.classes and out[1] is None  # the dropped row keeps its place
    with pytest.raises(nnctl.DataError, match="missing values"):
        nnctl.train({"train": {"epochs": 2}}, data={**data, "a": np.where(y > 0, np.nan, X[:, 0])}, runs_dir=tmp_path)


def test_errors_are_the_documented_classes(tmp_path):
    with pytest.raises(nnctl.ConfigError, match="optimizer.lr"):
        nnctl.train(ROOT / "configs" / "moons.yaml", overrides={"optimizer.lr": -1}, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="2-D"):
        nnctl.train({}, data=np.arange(10.0), runs_dir=tmp_path)
    with pytest.raises(nnctl.RunDirError):
        nnctl.Run(tmp_path / "nothing")
    with pytest.raises(nnctl.TrainingFailed, match="diverged") as err:
        nnctl.train(ROOT / "configs" / "moons.yaml", runs_dir=tmp_path,
                    overrides={"optimizer.name": "sgd", "optimizer.lr": 1e30, "train.epochs": 3})
    assert nnctl.Run(err.value.run_dir).summary["status"] == "diverged"


def test_progress_is_silent_unless_asked(tmp_path, capsys):
    nnctl.train(ROOT / "configs" / "xor.yaml", overrides={"train.epochs": 3}, runs_dir=tmp_path)
    assert capsys.readouterr().err == ""
    seen = []
    nnctl.train(ROOT / "configs" / "xor.yaml", overrides={"train.epochs": 3}, runs_dir=tmp_path, progress=seen.append)
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    nnctl.train(ROOT / "configs" / "xor.yaml", overrides={"train.epochs": 3}, runs_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "epoch 3" in err and "train_loss" in err


def test_the_readme_example_runs(tmp_path, monkeypatch):
    import re

    pytest.importorskip("pandas")
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- readme-api-example[^>]*-->\n```python\n(.*?)```", readme, re.S).group(1)
    for name in ("configs", "datasets"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["same"].classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_an_interrupted_train_gives_the_process_its_signal_handlers_back(tmp_path):
    # a notebook must stay interruptible after a run it stopped with Ctrl-C
    code = f"""
import os, signal, threading, nnctl
before = signal.getsignal(signal.SIGINT)
threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    nnctl.train({str(ROOT / "configs" / "moons.yaml")!r}, overrides={{"train.epochs": 10**6}},
                runs_dir={str(tmp_path)!r})
except nnctl.TrainingFailed as exc:
    print("stopped", "interrupted" in str(exc))
print(signal.getsignal(signal.SIGINT) is before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["stopped", "True", "True"], out.stderr


def test_a_moved_run_still_finds_its_rows_and_arrays_use_the_training_layout(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = X[:, 0] + 2 * X[:, 1]
    A = np.c_[y, X]  # the target first
    run = nnctl.train({"data": {"target": 0, "split": {"val": 0.2, "test": 0.2}}, "model": {"hidden": [8]},
                       "train": {"epochs": 60}}, data=A, runs_dir=tmp_path / "a")
    (tmp_path / "a").rename(tmp_path / "b")
    moved = nnctl.Run(tmp_path / "b" / run.path.name)
    assert moved.evaluate()["metrics"]["n_rows"] == 60  # its test split, re-created from data.parquet
    by_name = moved.evaluate({"x0": y, "x1": X[:, 0], "x2": X[:, 1]})["metrics"]
    assert moved.evaluate(A)["metrics"] == by_name and by_name["r2"] > 0.5  # the array as training had it
    assert np.allclose(moved.predict(A), moved.predict(A[:, 1:]))  # or the features alone


def test_true_false_columns_mean_the_same_in_a_csv_and_a_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    b = rng.random(200) > 0.5
    frame = pd.DataFrame({"b": b, "x": rng.normal(size=200), "y": np.where(b, "yes", "no")})
    frame.to_csv(tmp_path / "b.csv", index=False)  # True/False as text
    from_csv = nnctl.train({"data": {"source": str(tmp_path / "b.csv"), "target": "y"}, "train": {"epochs": 30}},
                           runs_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "value not seen in training" for the bools
        assert list(from_csv.predict(frame.drop(columns="y"))) == list(frame["y"])
    in_memory = nnctl.train({"data": {"target": "y"}, "train": {"epochs": 30}}, data=frame, runs_dir=tmp_path)
    proc = cli("predict", in_memory.path, tmp_path / "b.csv")
    assert proc.returncode == 0, proc.stderr
    assert [line.split(",")[-1] for line in proc.stdout.strip().splitlines()[1:]] == list(frame["y"])
