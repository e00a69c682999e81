"""Reliability with real processes: kills, signals, exact resume, parallel runs, disk full, hostile files.

Every test here starts `python -m nnctl` as a separate process. The datasets are nnctl's own
generators (spiral, xor), so no process pays scikit-learn's start-up time. Checkpoints are
forced every epoch (NNCTL_CHECKPOINT_SECONDS=0) so kills land before, during and after writes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import wait_for

KILLS_PER_CONFIG = int(os.environ.get("NNCTL_KILLS", "5"))

BASE = "data: {source: 'sklearn:spiral', options: {n_samples: 300}}\n"
CONFIGS = {
    "sgd": BASE + "model: {hidden: [16]}\noptimizer: {name: sgd, lr: 0.1}\ntrain: {epochs: 60, batch_size: 8}\n",
    "momentum": BASE + "model: {hidden: [16, 8]}\noptimizer: {name: momentum, lr: 0.05}\n"
                       "train: {epochs: 60, batch_size: 8}\n",
    "adam_cosine_warmup": BASE + "model: {hidden: [16]}\noptimizer: {name: adam, lr: 0.01, schedule: "
                                 "{name: cosine, warmup_epochs: 5}}\ntrain: {epochs: 60, batch_size: 8}\n",
    "batchnorm_dropout_es": BASE + "model: {hidden: [16, 16], norm: batch, dropout: 0.2}\n"
                                   "optimizer: {name: adam, lr: 0.01}\n"
                                   "train: {epochs: 60, batch_size: 8, early_stopping: {patience: 25}}\n",
    "plateau": BASE + "model: {hidden: [16], activation: tanh}\noptimizer: {name: rmsprop, lr: 0.01, schedule: "
                      "{name: plateau, patience: 2, factor: 0.5}}\ntrain: {epochs: 60, batch_size: 8}\n",
}


def env():
    e = dict(os.environ)
    e["NNCTL_CHECKPOINT_SECONDS"] = "0"
    e.pop("NNCTL_FAULT_ENOSPC", None)
    return e


def nnctl(*args, check=None, extra_env=None, timeout=120):
    e = env()
    e.update(extra_env or {})
    proc = subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def wait_until_training(runs: Path, timeout: float = 90.0) -> None:
    """Until a run in `runs` has trained an epoch (a fixed sleep is too short on a loaded machine)."""
    wait_for(lambda: any(len((r / "metrics.csv").read_text().splitlines()) > 1 for r in
                         (runs.iterdir() if runs.exists() else []) if (r / "metrics.csv").exists()),
             timeout, f"a run in {runs} to train an epoch")


def wait_until_locked(run: Path, timeout: float = 90.0) -> None:
    """Until a process holds the run's lock (a resume is at work)."""
    from nnctl.runs import lock_is_held

    wait_for(lambda: lock_is_held(run), timeout, f"a process to take the lock of {run}")


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "nnctl", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(Path(run_dir) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def assert_identical(a: Path, b: Path):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert np.array_equal(wa[key], wb[key]), f"{key} differs between {a.name} and {b.name}"
    assert (a / "metrics.csv").read_text().count("\n") == (b / "metrics.csv").read_text().count("\n")


def only_run(folder: Path) -> Path:
    runs = [p for p in folder.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Each config trained once without interruption."""
    root = tmp_path_factory.mktemp("ref")
    out = {}
    for name, text in CONFIGS.items():
        cfg = root / f"{name}.yaml"
        cfg.write_text(text)
        proc = nnctl("train", cfg, "--runs-dir", root / name, "-q", check=0)
        out[name] = (cfg, Path(proc.stdout.strip()))
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_sigkill_at_random_points_then_resume_is_bit_identical(reference, tmp_path, name):
    cfg, ref = reference[name]
    rng = random.Random(sum(map(ord, name)))
    duration = json.loads((ref / "summary.json").read_text())["wall_time_s"]
    survived = 0
    for k in range(KILLS_PER_CONFIG):
        folder = tmp_path / f"kill{k}"
        proc = start("train", cfg, "--runs-dir", folder, "-q")
        # wait for the run dir, then kill somewhere in the run (start-up, mid-epoch, mid-checkpoint)
        deadline = time.monotonic() + 30
        while not (folder.exists() and any(folder.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.9 * duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run = only_run(folder)
        if not (run / "config.yaml").exists():  # killed within the first milliseconds: nothing to resume
            assert "nothing to resume" in nnctl("resume", run, check=2).stderr
            continue
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else None
        if summary is None or summary["status"] == "running":
            if summary is not None:
                listed = json.loads(nnctl("compare", run, "--format", "json", check=0).stdout)
                assert listed[0]["status"] == "interrupted"
            nnctl("resume", run, "-q", check=0)
            survived += 1
        assert_identical(ref, run)
    print(f"{name}: {survived} of {KILLS_PER_CONFIG} kills landed mid-run and resumed bit-identically")
    assert survived >= 1, "no kill landed while the run was training"


def test_sigint_checkpoints_and_resume_is_bit_identical(reference, tmp_path):
    cfg, ref = reference["batchnorm_dropout_es"]
    proc = start("train", cfg, "--runs-dir", tmp_path, "-q")
    while not (tmp_path.exists() and any(p.is_dir() for p in tmp_path.iterdir())):
        time.sleep(0.01)
    run = only_run(tmp_path)
    while not (run / "metrics.csv").exists():  # well into training
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 1, err
    assert "nnctl resume" in err and "Traceback" not in err
    assert out.strip().splitlines()[-1] == str(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (run / "checkpoint" / "checkpoint.npz").exists()
    nnctl("resume", run, "-q", check=0)
    assert_identical(ref, run)
    assert json.loads((run / "summary.json").read_text())["status"] in ("completed", "early_stopped")
    refused = nnctl("resume", run, check=2)
    assert "already finished" in refused.stderr


def test_resume_refuses_changed_config_or_data(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5},{'xy'[(i // 3) % 2]}\n" for i in range(60)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: d.csv}\nmodel: {hidden: [4]}\ntrain: {epochs: 2000, batch_size: 4}\n")
    proc = start("train", cfg, "--runs-dir", tmp_path / "runs", "-q")
    wait_until_training(tmp_path / "runs")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    run = only_run(tmp_path / "runs")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("epochs: 2000", "epochs: 3000"))
    out = nnctl("resume", run, check=2)
    assert "config.yaml: changed since the checkpoint" in out.stderr
    (run / "config.yaml").write_text(config)
    with data.open("a") as f:
        f.write("1,1,x\n")
    out = nnctl("resume", run, check=2)
    assert "changed since the run started" in out.stderr and "d.csv" in out.stderr


def test_two_resumes_one_proceeds_the_other_names_the_holder(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIGS["sgd"].replace("epochs: 60", "epochs: 3000"))
    proc = start("train", cfg, "--runs-dir", tmp_path / "runs", "-q")
    wait_until_training(tmp_path / "runs")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(tmp_path / "runs")
    first = start("resume", run, "-q")
    wait_until_locked(run)
    second = nnctl("resume", run)
    first.send_signal(signal.SIGINT)  # no need to wait for 3000 epochs
    first.communicate(timeout=60)
    assert first.returncode == 1  # it was running (and is now interrupted, resumable)
    assert second.returncode == 1 and "in use by another nnctl process (pid" in second.stderr


def test_parallel_trains_into_one_runs_dir_while_compare_reads(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: 'sklearn:xor', options: {n_samples: 200}}\nmodel: {hidden: [4]}\n"
                   "train: {epochs: 30}\n")
    runs = tmp_path / "runs"
    procs = [start("train", cfg, "--runs-dir", runs, "-q", "--name", name)
             for name in ["same"] * 28 + ["../../escape", "a/b", "..", "/etc/passwd"]]
    reads = 0
    while any(p.poll() is None for p in procs):
        if runs.exists():
            doc = json.loads(nnctl("compare", runs, "--format", "json").stdout or "[]")
            assert all(r["status"] in ("running", "completed", "interrupted") for r in doc)
            reads += 1
    assert all(p.wait() == 0 for p in procs)
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(dirs) == 32 and len({d.name for d in dirs}) == 32
    assert all((d / "weights.npz").exists() and (d / "summary.json").exists() for d in dirs)
    # every hostile --name became one plain folder name inside --runs-dir, and nothing was made elsewhere
    prefixes = sorted(d.name.rsplit("-", 3)[0] for d in dirs)
    assert prefixes == sorted(["same"] * 28 + ["escape", "a-b", "run", "etc-passwd"]), prefixes
    assert not any(tmp_path.parent.glob("escape-*")) and not any(tmp_path.glob("escape-*"))
    assert not [p for p in Path("/etc").glob("passwd-2*") if p.is_dir()]  # /etc/passwd-<stamp>-<hex>
    assert reads >= 1


def test_disk_full_keeps_the_previous_checkpoint(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIGS["sgd"])
    out = nnctl("train", cfg, "--runs-dir", tmp_path / "runs", "-q", check=1,
                extra_env={"NNCTL_FAULT_ENOSPC": "checkpoint.npz@4"})
    assert "checkpoint.npz: cannot write (No space left on device)" in out.stderr
    assert out.stderr.count("\n") == 1
    run = only_run(tmp_path / "runs")
    with np.load(run / "checkpoint" / "checkpoint.npz", allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["epoch"] == 3  # the third checkpoint, intact
    assert not list((run / "checkpoint").glob("*.tmp"))
    nnctl("resume", run, "-q", check=0)


def _hostile(path: Path, kind: str, good: dict[str, np.ndarray]):
    arrays = dict(good)
    if kind == "object":
        arrays["W1"] = np.array([{"x": 1}], dtype=object)
        np.savez(path, **arrays)
        return
    if kind == "truncated":
        np.savez(path, **arrays)
        path.write_bytes(path.read_bytes()[:200])
        return
    if kind == "shape":
        arrays["W1"] = arrays["W1"][:, :-1]
    elif kind == "missing":
        del arrays["b2"]
    elif kind == "extra":
        arrays["W9"] = np.zeros(3)
    elif kind == "nan":
        arrays["W1"] = arrays["W1"].copy()
        arrays["W1"][0, 0] = np.nan
    np.savez(path, **arrays)


@pytest.mark.parametrize("kind,message", [
    ("object", "without pickles"), ("truncated", "not a readable .npz"), ("shape", "has shape"),
    ("missing", "missing key 'b2'"), ("extra", "unexpected key 'W9'"), ("nan", "non-finite"),
])
def test_hostile_weights_are_refused_by_init_from_and_eval(tmp_path, kind, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: 'sklearn:xor'}\nmodel: {hidden: [4]}\ntrain: {epochs: 1}\n")
    run = Path(nnctl("train", cfg, "--runs-dir", tmp_path / "runs", "-q", check=0).stdout.strip())
    bad = tmp_path / "bad.npz"
    _hostile(bad, kind, weights(run))
    out = nnctl("train", cfg, "--runs-dir", tmp_path / "runs2", "--set", f"model.init_from={bad}", check=2)
    assert message in out.stderr and "bad.npz" in out.stderr and out.stderr.count("\n") == 1
    bad.replace(run / "weights.npz")
    out = nnctl("eval", run, check=2)
    assert message in out.stderr and "weights.npz" in out.stderr


def test_two_quick_signals_still_leave_consistent_files(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIGS["sgd"].replace("epochs: 60", "epochs: 3000"))
    for gap in (0.003, 0.02):
        folder = tmp_path / f"gap{gap}"
        proc = start("train", cfg, "--runs-dir", folder, "-q")
        while not list(folder.glob("*/metrics.csv")):
            time.sleep(0.01)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(gap)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1, (gap, proc.returncode, err)
        run = only_run(folder)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert (run / "weights.npz").exists() or (run / "checkpoint" / "checkpoint.npz").exists()
        assert not list(run.rglob(".*.tmp"))


def test_resume_of_a_stray_folder_leaves_nothing_behind(tmp_path):
    out = nnctl("resume", tmp_path, check=2)
    assert "nothing to resume" in out.stderr
    assert not (tmp_path / ".lock").exists()
