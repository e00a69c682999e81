"""train.log: mlflow, against a real MLflow store (SQLite, in tmp_path): what is logged and in how
many calls, the MLflow run's status for each way a run ends, resume continuing the same MLflow run
(or a new one, saying so), a store that breaks mid-run, the default store of the current directory,
and MLflow being imported only when a run asks for it.

A new MLflow database takes seconds to create (its migrations), so one empty database is made per
test module and copied for each test."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from nnctl.config.load import config_schema, load_spec
from nnctl.errors import TrainingFailed
from nnctl.nn.optimizers import Adam
from nnctl.training.session import resume_run, train_run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"name": "tracked", "seed": 0, "data": {"source": "sklearn:moons", "options": {"n_samples": 200}},
          "model": {"hidden": [8]}, "optimizer": {"name": "adam", "lr": 0.05},
          "train": {"epochs": 8, "batch_size": 32, "log": "mlflow"}}


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its tables and nothing else."""
    mlflow = pytest.importorskip("mlflow")
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    with warnings.catch_warnings():  # SQLAlchemy's deprecation warnings about MLflow's code
        warnings.simplefilter("ignore")
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_db, tmp_path, monkeypatch) -> str:
    """MLFLOW_TRACKING_URI of a fresh store in tmp_path, for this test."""
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(empty_db, path)
    uri = f"sqlite:///{path}"
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return uri


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


# ------------------------------------------------------------------------------------ the CLI
def test_train_log_mlflow_logs_params_metrics_files_into_the_default_store(empty_db, tmp_path):
    """`nnctl train --log mlflow` without MLFLOW_TRACKING_URI: MLflow's default store in the current
    directory (MLflow 3: ./mlflow.db, artifacts in ./mlruns/), everything a run should carry."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(empty_db, work / "mlflow.db")  # (a new one would take seconds to create; where it is is the point)
    config = {k: v for k, v in CONFIG.items() if k != "train"} | {"train": {"epochs": 8, "batch_size": 32}}
    (work / "c.yaml").write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, "-m", "nnctl", "train", "c.yaml", "--log", "mlflow", "--runs-dir", "runs"],
                          cwd=work, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr  # MLflow kept quiet
    run_dir = work / proc.stdout.strip().splitlines()[-1]
    summary = _summary(run_dir)
    tracked = summary["tracking"]["mlflow"]
    assert tracked["tracking_uri"] == f"sqlite:///{work / 'mlflow.db'}" and tracked["notes"] == []
    assert f"mlflow: run {tracked['run_id']}" in proc.stderr

    client = _client(tracked["tracking_uri"])
    run = client.get_run(tracked["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "tracked"
    assert run.info.run_name == run_dir.name
    params = run.data.params
    assert params["optimizer.lr"] == "0.05" and params["model.hidden"] == "[8]" and params["train.log"] == "mlflow"
    assert params["data.options.n_samples"] == "200" and params["seed"] == "0"
    assert params["n_params"] == str(summary["n_params"]) and params["task"] == "classification"
    tags = run.data.tags
    assert tags["nnctl.status"] == "completed" and tags["nnctl.run_dir"] == str(run_dir.resolve())
    assert tags["nnctl.version"] == summary["versions"]["nnctl"]

    rows = _rows(run_dir)
    assert len(rows) == 8
    for column in rows[0]:  # every numeric column, one value per epoch, step = epoch, the CSV's values
        if column != "epoch":
            assert _history(client, run.info.run_id, column) == [(int(r["epoch"]), float(r[column])) for r in rows]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.csv", "summary.json", "weights.npz", "preprocess.npz", "diagnostics.csv",
            "findings.json"} <= artifacts
    assert ".lock" not in artifacts
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(work / "mlruns")
    local = Path(client.download_artifacts(run.info.run_id, "findings.json", str(tmp_path)))
    assert json.loads(local.read_text())["findings"] == summary["findings"]


def test_mlflow_is_imported_only_when_a_run_asks_for_it(tmp_path):
    """`nnctl --help` and a plain `nnctl train` never import MLflow (it takes about a second)."""
    code = f"""
import json, sys
from nnctl.cli import app
codes = []
for args in (["--help"], ["train", {str(ROOT / "configs" / "xor.yaml")!r}, "--set", "train.epochs=1", "-q",
                          "--runs-dir", {str(tmp_path / "runs")!r}]):
    try:
        app(args)
    except SystemExit as exc:
        codes.append(exc.code)
print(json.dumps({{"codes": codes, "mlflow": sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"codes": [0, 0], "mlflow": []}, proc.stderr


@pytest.mark.parametrize("how", [["--log", "mlflow"], ["--set", "train.log=mlflow"]])
def test_without_mlflow_installed_train_exits_2_before_anything_is_written(tmp_path, how):
    code = f"""
import sys
sys.modules["mlflow"] = None  # as if it were not installed
from nnctl.cli import app
app(["train", {str(ROOT / "configs" / "xor.yaml")!r}, *{how!r}, "--runs-dir", {str(tmp_path / "runs")!r}])
"""
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'nnctl[mlflow]'" in proc.stderr and "Traceback" not in proc.stderr
    assert f"{how[0]} {how[1].replace('=', ' ') if how[0] == '--log' else how[1]}" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_sqlite_store_without_sqlalchemy_says_what_to_install(tmp_path):
    """mlflow-skinny alone cannot open MLflow 3's default store; MLflow's own error calls the URI unsupported."""
    pytest.importorskip("mlflow")
    code = f"""
import sys
sys.modules["sqlalchemy"] = None  # as with mlflow-skinny alone
from nnctl.cli import app
app(["train", {str(ROOT / "configs" / "xor.yaml")!r}, "--log", "mlflow", "--runs-dir", "runs"])
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(MLFLOW_TRACKING_URI="sqlite:///m.db"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "sqlalchemy, not installed: pip install 'nnctl[mlflow]'" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_train_log_is_a_config_key_in_the_schema():
    log = config_schema()["properties"]["train"]["properties"]["log"]
    assert set(json.dumps(log).split('"')) >= {"none", "mlflow"}
    assert load_spec(data={"data": {"source": "sklearn:moons"}}).train.log == "none"


# ------------------------------------------------------------------------------------ the library
def test_the_config_key_logs_metrics_in_batches_and_the_experiment_name_can_be_set(store, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    calls = []
    original = MlflowClient.log_batch

    def counting(self, run_id, metrics=(), params=(), tags=(), **kw):
        calls.append(len(metrics))
        return original(self, run_id, metrics=metrics, params=params, tags=tags, **kw)

    def one_value(*args, **kwargs):
        raise AssertionError("a metric was logged on its own")

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    monkeypatch.setattr(MlflowClient, "log_metric", one_value)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "my-experiment")
    config = {**CONFIG, "train": {**CONFIG["train"], "epochs": 10}}
    result = train_run(load_spec(data=config), tmp_path / "runs")
    tracked = result.summary["tracking"]["mlflow"]
    client = _client(store)
    run = client.get_run(tracked["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == tracked["experiment"] == "my-experiment"
    assert run.info.status == "FINISHED"
    per_epoch = len(_rows(result.run.path)[0]) - 1
    best = per_epoch  # the best epoch's metrics, once at the end
    assert sum(calls) == 10 * per_epoch + best
    assert len(calls) <= 6, calls  # params and tags, a flush or two, the end: not one call per value


def test_a_diverging_run_is_failed_in_mlflow(store, tmp_path):
    config = {**CONFIG, "optimizer": {"name": "sgd", "lr": 1e6}}
    with pytest.raises(TrainingFailed, match="diverged"):
        train_run(load_spec(data=config), tmp_path / "runs")
    (run_dir,) = (tmp_path / "runs").iterdir()
    tracked = _summary(run_dir)["tracking"]["mlflow"]
    run = _client(store).get_run(tracked["run_id"])
    assert run.info.status == "FAILED" and run.data.tags["nnctl.status"] == "diverged"
    assert "summary.json" in {a.path for a in _client(store).list_artifacts(tracked["run_id"])}


def _interrupted(config: dict, step: int, folder: Path, monkeypatch) -> Path:
    """A run stopped by a SIGINT during its `step`-th optimizer step."""
    original, taken = Adam.step, []

    def stopping(self, theta, grad, lr):
        original(self, theta, grad, lr)
        taken.append(1)
        if len(taken) == step:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Adam, "step", stopping)
    with pytest.raises(TrainingFailed, match="interrupted"):
        train_run(load_spec(data=config), folder)
    monkeypatch.setattr(Adam, "step", original)
    (run_dir,) = folder.iterdir()
    return run_dir


def test_an_interrupted_run_is_killed_in_mlflow_and_resume_continues_the_same_mlflow_run(store, tmp_path,
                                                                                         monkeypatch):
    run_dir = _interrupted(CONFIG, 14, tmp_path / "runs", monkeypatch)  # 4 steps an epoch: in epoch 4
    tracked = _summary(run_dir)["tracking"]["mlflow"]
    client = _client(store)
    assert client.get_run(tracked["run_id"]).info.status == "KILLED"
    assert [s for s, _ in _history(client, tracked["run_id"], "train_loss")] == [1, 2, 3]

    notices = []
    result = resume_run(run_dir, on_notice=notices.append)
    assert notices == []
    assert result.summary["tracking"]["mlflow"]["run_id"] == tracked["run_id"]
    run = client.get_run(tracked["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["nnctl.status"] == "completed"
    rows = _rows(run_dir)
    # every epoch once (none logged twice across the two sessions), the values of metrics.csv
    assert _history(client, tracked["run_id"], "train_loss") == [(int(r["epoch"]), float(r["train_loss"]))
                                                                 for r in rows]
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_resume_against_another_store_logs_to_a_new_mlflow_run_and_says_so(store, empty_db, tmp_path,
                                                                          monkeypatch):
    run_dir = _interrupted(CONFIG, 14, tmp_path / "runs", monkeypatch)
    first = _summary(run_dir)["tracking"]["mlflow"]
    other = tmp_path / "other.db"
    shutil.copy(empty_db, other)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    notices = []
    result = resume_run(run_dir, on_notice=notices.append)
    tracked = result.summary["tracking"]["mlflow"]
    assert tracked["run_id"] != first["run_id"] and tracked["tracking_uri"] == f"sqlite:///{other}"
    assert len(notices) == 1 and first["run_id"] in notices[0] and f"MLFLOW_TRACKING_URI={store}" in notices[0]
    assert tracked["notes"] == notices
    client = _client(tracked["tracking_uri"])
    run = client.get_run(tracked["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["optimizer.lr"] == "0.05"
    assert [s for s, _ in _history(client, tracked["run_id"], "train_loss")] == list(range(1, 9))


def test_a_store_that_breaks_mid_run_costs_a_warning_not_the_run(store, tmp_path):
    database = Path(store.removeprefix("sqlite:///"))

    def break_the_store(row):
        if row["epoch"] == 3:
            with open(database, "r+b") as f:
                f.write(b"not a database" * 64)

    notices = []
    result = train_run(load_spec(data=CONFIG), tmp_path / "runs", on_epoch=break_the_store,
                       on_notice=notices.append)
    assert result.summary["status"] == "completed" and result.summary["epochs_run"] == 8
    assert len(notices) == 1 and "MLflow" in notices[0] and "not a database" in notices[0]
    assert _summary(result.run.path)["tracking"]["mlflow"]["notes"] == notices
    assert (result.run.path / "weights.npz").exists() and len(_rows(result.run.path)) == 8


def test_run_params_are_dotted_keys_mlflow_accepts():
    from nnctl.tracking import PARAM_CHARS, run_params

    spec = load_spec(data={**CONFIG, "model": {"layers": [{"units": 4, "activation": "tanh"}] * 40},
                           "train": {"class_weight": {"a/b:c": 2.0}}})
    params = run_params(spec, {"n_params": 10, "task": "classification"})
    assert params["train.class_weight.a_b_c"] == "2.0"  # '/' and ':' are not in every MLflow's keys
    assert len(params["model.layers"]) == PARAM_CHARS and params["model.layers"].endswith("…")
    assert not any(k.startswith("sweep") for k in params)
    assert params["train.shuffle"] == "true" and params["train.stop_at_loss"] == "null"  # as config.yaml spells them


def test_compare_does_not_count_train_log_as_a_hyperparameter():
    from nnctl.compare import compare_table
    from nnctl.runs import RunInfo

    runs = [RunInfo(Path(f"r{i}"), "moons", "completed", {"optimizer.lr": lr, "train.log": log})
            for i, (lr, log) in enumerate([(0.1, "none"), (0.01, "mlflow")])]
    columns, _ = compare_table(runs)
    assert "optimizer.lr" in columns and "train.log" not in columns


def test_a_sweeps_trials_share_one_experiment_named_after_the_sweep(store, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\ndata: {source: 'sklearn:xor', options: {n_samples: 100}}\nmodel: {hidden: [4]}\n"
                      "train: {epochs: 2, log: mlflow}\n")
    proc = subprocess.run([sys.executable, "-m", "nnctl", "sweep", str(config), "--grid", "optimizer.lr=0.1,0.01",
                           "--jobs", "2", "--runs-dir", str(tmp_path / "runs"), "-q"], capture_output=True, text=True,
                          env=_env(MLFLOW_TRACKING_URI=store), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    client = _client(store)
    names = sorted(e.name for e in client.search_experiments())
    assert "tiny" in names and not any(n.startswith("t00") for n in names)
    experiment = client.get_experiment_by_name("tiny")
    assert len(client.search_runs([experiment.experiment_id])) == 2
