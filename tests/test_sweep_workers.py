"""Local sweeps run in persistent worker processes: each trains trial after trial, with one BLAS thread.

Real processes throughout: a worker killed with SIGKILL mid-trial is replaced and the sweep finishes
the rest (then --resume finishes the killed trial once); a trial that raises (bad data, MemoryError)
fails alone; a trial trained by a worker after others equals a plain `nnctl train` bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import wait_for

LONG = ("data: {source: 'sklearn:xor', options: {n_samples: 200}}\nmodel: {hidden: [8]}\n"
        "train: {epochs: 5, batch_size: 8}\n")


def nnctl(*args, cwd=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, **kw)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def manifest(folder: Path) -> list[dict]:
    return json.loads((folder / "sweep.json").read_text())["trials"]


def summary(run) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


def weights(run) -> dict[str, np.ndarray]:
    with np.load(Path(run) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}



def test_a_worker_killed_mid_trial_is_replaced_and_the_sweep_finishes_the_rest(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(LONG)
    # t000 trains long enough to be killed; t001..t004 are short and share the other worker(s)
    env = {**os.environ, "NNCTL_CHECKPOINT_SECONDS": "0"}  # a checkpoint every epoch: resume has one to use
    sweep = subprocess.Popen([sys.executable, "-m", "nnctl", "sweep", cfg, "--grid", "train.epochs=400,5,5,5,5",
                              "--jobs", "2", "--runs-dir", tmp_path / "runs"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    long_run = wait_for(lambda: next((p for p in (tmp_path / "runs").glob("*/t000-*") if (p / "metrics.csv").exists()
                                      and summary(p).get("epochs_run", 0) >= 3), None), what="t000 training")
    worker = summary(long_run)["pid"]
    os.kill(worker, signal.SIGKILL)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 1 and "Traceback" not in err, err
    folder = Path(out.strip().splitlines()[-1])
    trials = manifest(folder)
    assert [t["status"] for t in trials] == ["interrupted"] + ["completed"] * 4, trials
    assert "the worker process died (killed by SIGKILL)" in trials[0]["error"]
    pids = [summary(t["run_dir"])["pid"] for t in trials[1:]]
    assert worker not in pids and len(set(pids)) < len(pids), pids  # the rest ran in workers that persisted
    # --resume continues the killed trial from its checkpoint, once, in its own run dir
    out = nnctl("sweep", "--resume", folder, env=env)
    assert out.returncode == 0 and "(1 to run)" in out.stderr, out.stderr
    trials = manifest(folder)
    assert [t["status"] for t in trials] == ["completed"] * 5
    assert sorted(p.name.split("-")[0] for p in folder.iterdir() if p.is_dir()) == [f"t00{i}" for i in range(5)]
    resumed = summary(trials[0]["run_dir"])
    assert resumed["resumed_from"]["epoch"] >= 3 and resumed["epochs_run"] == 400
    plain = nnctl("train", cfg, "--set", "train.epochs=400", "--runs-dir", tmp_path / "plain", "-q")
    want, got = weights(plain.stdout.strip().splitlines()[-1]), weights(trials[0]["run_dir"])
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_a_trial_that_raises_fails_alone_and_workers_train_like_nnctl_train(tmp_path):
    """Bad data for one grid point (DataError) and a MemoryError for another fail those trials only;
    the worker that hit the MemoryError is replaced. A trial trained after others in the same worker
    has the weights of a plain `nnctl train`, and one BLAS thread."""
    import resource

    good = "".join(f"{i % 7},{(i * 3) % 5},{'pq'[(i // 2) % 2]}\n" for i in range(60))
    (tmp_path / "good.csv").write_text("a,b,y\n" + good)
    (tmp_path / "bad.csv").write_text("a,b,y\n1,,p\n" + good)  # a missing value: data.missing is error
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: good.csv}\nmodel: {hidden: [4]}\ntrain: {epochs: 3}\n")

    def small_address_space():  # a model too big for it raises MemoryError (the memory check passes)
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    # one worker at a time; trials in order: [4] good, bad; [5] good, bad; [16384,16384] good, bad; [6] good, bad
    out = nnctl("sweep", cfg, "--grid", "model.hidden=[4],[5],[16384,16384],[6]", "--grid",
                "data.source=good.csv,bad.csv", "--jobs", "1", "--runs-dir", tmp_path / "runs",
                preexec_fn=small_address_space)
    assert out.returncode == 1, out.stderr
    trials = manifest(Path(out.stdout.strip().splitlines()[-1]))
    status = [t["status"] for t in trials]
    assert status == ["completed", "failed"] * 2 + ["failed", "failed"] + ["completed", "failed"], trials
    for bad in trials[1::2]:
        assert "bad.csv" in bad["error"] and "missing" in bad["error"] or "MemoryError" in bad["error"], bad
    assert "MemoryError" in trials[4]["error"], trials[4]
    pids = [summary(trials[i]["run_dir"])["pid"] for i in (0, 2, 6)]
    assert pids[0] == pids[1] != pids[2], pids  # the DataError left the worker alone; the MemoryError ended it
    last = summary(trials[6]["run_dir"])
    assert last["threads"] == 1 and last["blas"] and all(b["num_threads"] == 1 for b in last["blas"]), last["blas"]
    assert last["command"][:2] == ["nnctl", "train"] and "--set" in last["command"]
    plain = nnctl("train", cfg, "--set", "model.hidden=[6]", "--runs-dir", tmp_path / "plain", "-q")
    want, got = weights(plain.stdout.strip().splitlines()[-1]), weights(trials[6]["run_dir"])
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_workers_that_cannot_start_stop_the_sweep_with_one_message(tmp_path, monkeypatch):
    """A broken installation (here: a worker module that does not exist) is said once, not as a
    failure of every trial; the trials stay pending for a --resume once it is fixed."""
    from nnctl import sweep_local
    from nnctl.errors import TrainingFailed
    from nnctl.sweep import new_sweep, run_sweep

    cfg = tmp_path / "c.yaml"
    cfg.write_text(LONG)
    sweep = new_sweep(cfg, ["optimizer.lr=0.1,0.2,0.3"], [], 0, None, 2, tmp_path / "runs", None, None, ["test"])
    monkeypatch.setattr(sweep_local, "WORKER", "nnctl.no_such_worker")
    try:
        with pytest.raises(TrainingFailed, match="worker processes cannot start .*No module named nnctl.no_such"):
            run_sweep(sweep, list(sweep.trials), lambda trial: None)
    finally:
        sweep.lock.release()
    assert [t["status"] for t in manifest(sweep.path)] == ["pending"] * 3
