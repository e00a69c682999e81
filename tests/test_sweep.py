"""Sweeps: planning, local parallel trials, failures, resume (Dask clusters: test_dask_cluster.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnctl.errors import ConfigError
from nnctl.sweep import draw, parse_grid, parse_space, plan, split_values

CONFIG = "data: {source: 'sklearn:xor', options: {n_samples: 120}}\nmodel: {hidden: [4]}\ntrain: {epochs: 5}\n"


def nnctl(*args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_grid_times_seeds():
    grid = parse_grid(["optimizer.lr=0.1,0.01,1e-3", "model.hidden=[16,16],[32]"])
    assert grid == {"optimizer.lr": [0.1, 0.01, 0.001], "model.hidden": [[16, 16], [32]]}
    trials = plan(grid, {}, 0, 3, 7)
    assert len(trials) == 3 * 2 * 3
    assert sorted({t.seed for t in trials}) == [7, 8, 9]
    assert len({(json.dumps(t.overrides), t.seed) for t in trials}) == 18
    assert trials[0].set_args() == ["--set", "optimizer.lr=0.1", "--set", "model.hidden=[16, 16]"]


def test_random_search_is_reproducible_and_in_range():
    space = parse_space(["optimizer.lr=loguniform(1e-4,1e-1)", "model.dropout=uniform(0,0.5)",
                         "train.batch_size=int(8,64)", "model.activation=choice(relu,tanh)"])
    a, b, c = draw(space, 20, 0), draw(space, 20, 0), draw(space, 20, 1)
    assert a == b and a != c
    for p in a:
        assert 1e-4 <= p["optimizer.lr"] <= 0.1 and 0 <= p["model.dropout"] <= 0.5
        assert isinstance(p["train.batch_size"], int) and 8 <= p["train.batch_size"] <= 64
        assert p["model.activation"] in ("relu", "tanh")
    assert len(plan({"optimizer.name": ["sgd", "adam"]}, space, 5, 2, 0)) == 2 * 5 * 2


@pytest.mark.parametrize("items,message", [
    (["optimizer.lr"], "expected KEY=V1,V2"),
    (["optimizer.lr=loguniform(0,1)"], "loguniform needs a > 0"),
    (["optimizer.lr=normal(0,1)"], "is not uniform(a,b)"),
    (["optimizer.lr=uniform(1,0)"], "needs a < b"),
])
def test_bad_sweep_specs(items, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        if "=" in items[0] and "(" in items[0]:
            parse_space(items)
        else:
            parse_grid(items)


def test_split_values_respects_brackets():
    assert split_values("[16,16],[32], {a: 1, b: 2},x") == ["[16,16]", "[32]", "{a: 1, b: 2}", "x"]


def test_local_sweep_failure_manifest_and_resume(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    out = nnctl("sweep", cfg, "--grid", "optimizer.lr=0.01,-1,0.05", "--grid", "model.activation=relu,tanh",
                "--jobs", "2", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 1
    folder = Path(out.stdout.strip().splitlines()[-1])
    manifest = json.loads((folder / "sweep.json").read_text())
    statuses = [t["status"] for t in manifest["trials"]]
    assert statuses.count("completed") == 4 and statuses.count("failed") == 2
    bad = [t for t in manifest["trials"] if t["status"] == "failed"]
    assert all(t["overrides"]["optimizer.lr"] == -1 and "optimizer.lr must be a number > 0" in t["error"]
               for t in bad)
    good = [t for t in manifest["trials"] if t["status"] == "completed"]
    assert all(Path(t["run_dir"]).parent == folder and (Path(t["run_dir"]) / "weights.npz").exists() for t in good)
    assert manifest["command"][:2] == ["nnctl", "sweep"]
    # the comparison table (at COLUMNS=80 its header wraps to "optimizer." over "lr")
    assert "optimizer." in out.stdout and "t000" in out.stdout and "0.05" in out.stdout
    # resume: only the two failed trials run again
    out = nnctl("sweep", "--resume", folder)
    assert "(2 to run)" in out.stderr and out.returncode == 1
    # a completed trial whose run dir was deleted is missing: resume runs exactly that one again
    manifest = json.loads((folder / "sweep.json").read_text())
    manifest["trials"] = [t for t in manifest["trials"] if t["status"] != "failed"]
    (folder / "sweep.json").write_text(json.dumps(manifest))
    shutil.rmtree(manifest["trials"][0]["run_dir"])
    out = nnctl("sweep", "--resume", folder)
    assert out.returncode == 0 and "(1 to run)" in out.stderr
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert all(t["status"] == "completed" and Path(t["run_dir"]).is_dir() for t in trials)


def test_sweep_block_in_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG + "sweep: {grid: {optimizer.lr: [0.01, 0.02]}, seeds: 2}\n")
    out = nnctl("sweep", cfg, "--runs-dir", tmp_path / "runs", "--jobs", "2")
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1])
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert len(trials) == 4 and {t["seed"] for t in trials} == {0, 1}
    assert "±" in out.stdout  # grouped over seeds
    # nnctl train ignores the sweep block
    assert nnctl("train", cfg, "--runs-dir", tmp_path / "single", "-q").returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_unreachable_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    out = nnctl("sweep", cfg, "--grid", "optimizer.lr=0.01", "--dask", f"tcp://127.0.0.1:{_free_port()}",
                "--runs-dir", tmp_path / "runs", timeout=120)
    assert out.returncode == 2 and "cannot reach the Dask scheduler" in out.stderr


def test_sigterm_checkpoints_running_trials_and_resume_finishes_them(tmp_path):
    import signal

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: 'sklearn:spiral', options: {n_samples: 300}}\nmodel: {hidden: [16]}\n"
                   "train: {epochs: 1500, batch_size: 8}\n")
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "sweep", "c.yaml", "--grid", "optimizer.lr=0.01,0.02",
                             "--jobs", "2", "--runs-dir", "runs"],  # relative paths: resume runs from elsewhere
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until both trials have started training
        runs = list((tmp_path / "runs").glob("*/t00*/metrics.csv"))
        if len(runs) == 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "nnctl sweep --resume" in err and "Traceback" not in err, (proc.returncode, err)
    folder = next((tmp_path / "runs").iterdir())
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["interrupted", "interrupted"], (trials, err)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-m", "nnctl", "sweep", "--resume", str(folder)], capture_output=True,
                         text=True, cwd=elsewhere, timeout=120)
    assert out.returncode == 0, out.stderr
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["completed", "completed"]
    for t in trials:  # continued from the checkpoint the SIGTERM left, not retrained from scratch
        summary = json.loads((Path(t["run_dir"]) / "summary.json").read_text())
        resumed = summary["resumed_from"]
        assert resumed is not None and (resumed["epoch"], resumed["step"]) > (0, 0), summary
        assert summary["epochs_run"] == 1500
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 2  # resumed in place, not retrained elsewhere


GOOD_TRIAL = {"id": 0, "overrides": {"optimizer.lr": 0.1}, "seed": 0, "status": "completed", "run_dir": None}


@pytest.mark.parametrize("doc,message", [
    ([], "not a JSON object"),
    ({"config": "c.yaml", "command": [], "trials": [1, 2]}, "trial 0 is int, not an object"),
    ({"config": "c.yaml", "command": [], "trials": {"id": 0}}, "'trials' is missing or not of the right type"),
    ({"config": "c.yaml", "command": [], "trials": [{**GOOD_TRIAL, "seed": "0"}]}, "trial 0: 'seed'"),
    ({"config": "c.yaml", "command": [], "trials": [{**GOOD_TRIAL, "run_dir": 7}]}, "'run_dir'"),
    ({"config": "c.yaml", "command": [], "trials": [{**GOOD_TRIAL, "overrides": []}]}, "'overrides'"),
    ({"config": "c.yaml", "command": [], "trials": [GOOD_TRIAL, GOOD_TRIAL]}, "the same id"),
    ({"config": 3, "command": [], "trials": []}, "'config'"),
])
def test_a_damaged_manifest_is_bad_input_naming_the_file(tmp_path, doc, message):
    from nnctl.errors import RunDirError
    from nnctl.sweep import Sweep

    (tmp_path / "sweep.json").write_text(json.dumps(doc))
    with pytest.raises(RunDirError, match="sweep.json: damaged") as caught:
        Sweep.load(tmp_path)
    assert message in str(caught.value)


def test_a_manifest_that_is_a_link_or_not_json_is_refused_by_resume(tmp_path):
    (tmp_path / "elsewhere.json").write_text("{}")
    (tmp_path / "sweep.json").symlink_to(tmp_path / "elsewhere.json")
    out = nnctl("sweep", "--resume", tmp_path)
    assert out.returncode == 2 and "sweep.json: damaged (a symbolic link" in out.stderr, out.stderr
    (tmp_path / "sweep.json").unlink()
    (tmp_path / "sweep.json").write_text('{"trials": [')
    out = nnctl("sweep", "--resume", tmp_path)
    assert out.returncode == 2 and "sweep.json: damaged" in out.stderr and out.stderr.count("\n") == 1
    assert not (tmp_path / ".lock").exists()  # not a sweep: nothing was written into the folder
