"""A sweep runs every trial exactly once, whatever is killed when, and however often --resume runs.

Real processes: a sweep of three short trials (two at a time) is killed with SIGKILL or SIGTERM at
chosen moments, then resumed, once or by two resumes at once. Afterwards every trial has exactly
one run dir, the manifest names it, and its weights equal those of an uninterrupted sweep.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import wait_for

CONFIG = ("data: {source: 'sklearn:xor', options: {n_samples: 200}}\nmodel: {hidden: [8]}\n"
          "train: {epochs: 1000, batch_size: 8}\n")
GRID = ("--grid", "optimizer.lr=0.05,0.1,0.2", "--jobs", "2")  # three trials, two at a time
TRIALS = ["t000", "t001", "t002"]


def start(*args, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnctl", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in (err or ""), err
    return out, err



def sweep_folder(runs: Path) -> Path | None:
    found = list(runs.glob("*/sweep.json")) if runs.exists() else []
    return found[0].parent if found else None


def trainers(folder: Path) -> set[int]:
    """The pids of the live worker processes of the sweep in `folder` (from /proc: no psutil)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if "nnctl.sweep_worker" in args and str(folder) in args:
            pids.add(int(proc.name))
    return pids


def status(run: Path) -> str | None:
    try:
        return json.loads((run / "summary.json").read_text())["status"]
    except (OSError, ValueError):
        return None


def weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """The config, and each trial's weights from a sweep that nothing interrupted."""
    root = tmp_path_factory.mktemp("reference")
    cfg = root / "c.yaml"
    cfg.write_text(CONFIG)
    out, err = finish(start("sweep", cfg, *GRID, "--runs-dir", root / "runs"))
    folder = Path(out.strip().splitlines()[-1])
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["completed"] * 3, err
    return cfg, {t["name"]: weights(Path(t["run_dir"])) for t in trials}


def assert_each_trial_ran_once(folder: Path, reference_weights: dict) -> list[dict]:
    """Every trial completed in exactly one run dir, the one the manifest names, with the weights of
    an uninterrupted run. Nothing failed, so there is no hidden `.failed-*` dir either."""
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["completed"] * len(TRIALS), trials
    dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    assert [d.name.split("-")[0] for d in dirs] == TRIALS, dirs  # one each, none renamed .failed-*
    assert [Path(t["run_dir"]) for t in trials] == dirs
    for t in trials:
        run = Path(t["run_dir"])
        assert status(run) == "completed"
        got, want = weights(run), reference_weights[t["name"]]
        assert got.keys() == want.keys()
        assert all(np.array_equal(got[k], want[k]) for k in want), f"{t['name']}: weights differ"
    return trials


def test_sigkill_of_the_sweep_stops_its_trials_and_resume_runs_each_once(reference, tmp_path):
    cfg, ref = reference
    sweep = start("sweep", cfg, *GRID, "--runs-dir", tmp_path / "runs")
    folder = wait_for(lambda: sweep_folder(tmp_path / "runs"), what="the sweep folder")
    wait_for(lambda: len(list(folder.glob("t00*/metrics.csv"))) == 2, what="two trials training")
    pids = wait_for(lambda: len(trainers(folder)) == 2 and trainers(folder), what="two trial processes")
    held, other = sorted(pids)
    os.kill(held, signal.SIGSTOP)  # this trial cannot stop yet: a resume must wait for it
    try:
        sweep.kill()
        sweep.wait()
        # the other trial notices its sweep is gone (stdin closed) and checkpoints: it does not run on
        wait_for(lambda: other not in trainers(folder), timeout=10, what="the orphaned trial to stop")
        stopped = [p for p in folder.glob("t00*") if status(p) == "interrupted"]
        assert len(stopped) == 1, [(p.name, status(p)) for p in folder.iterdir()]
        log = tmp_path / "resume.err"
        with log.open("w") as f:
            resume = start("sweep", "--resume", folder, stderr=f)
        wait_for(lambda: "waiting" in log.read_text(), timeout=20, what="the resume to wait for the orphan")
        before = sorted(folder.iterdir())
        time.sleep(0.5)
        assert resume.poll() is None and sorted(folder.iterdir()) == before  # nothing started meanwhile
    finally:
        os.kill(held, signal.SIGCONT)
    wait_for(lambda: held not in trainers(folder), timeout=10, what="the second orphan to stop")
    out, _ = finish(resume)
    assert resume.returncode == 0, log.read_text()
    trials = assert_each_trial_ran_once(folder, ref)
    for t in trials[:2]:  # the two killed mid-run continued from their checkpoints
        assert json.loads((Path(t["run_dir"]) / "summary.json").read_text())["resumed_from"] is not None


@pytest.mark.parametrize("moment", ["random", "random", "as a trial completes"])
def test_sigterm_at_any_moment_then_resume_runs_each_trial_once(reference, tmp_path, moment):
    cfg, ref = reference
    rng = random.Random(f"{moment}-{tmp_path.name}")
    sweep = start("sweep", cfg, *GRID, "--runs-dir", tmp_path / "runs")
    folder = wait_for(lambda: sweep_folder(tmp_path / "runs"), what="the sweep folder")
    if moment == "random":
        time.sleep(rng.uniform(0.0, 3.0))  # start-up, mid-trial, between trials, or after the end
    else:  # the moment a trial has written its final summary, before its process has exited
        wait_for(lambda: any(status(p) == "completed" for p in folder.glob("t00*")), what="a completed trial")
    sweep.send_signal(signal.SIGTERM)
    finish(sweep)
    assert sweep.returncode in (0, 1, -signal.SIGTERM)  # -SIGTERM: hit before its handler was set
    for t in json.loads((folder / "sweep.json").read_text())["trials"]:  # the manifest tells the truth
        if t["run_dir"]:
            assert t["status"] == status(Path(t["run_dir"])), t
    out, err = finish(start("sweep", "--resume", folder))
    assert out.strip().splitlines()[-1] == str(folder), err
    assert_each_trial_ran_once(folder, ref)
    assert trainers(folder) == set()


def test_two_concurrent_resumes_one_is_refused(reference, tmp_path):
    cfg, ref = reference
    sweep = start("sweep", cfg, *GRID, "--runs-dir", tmp_path / "runs")
    folder = wait_for(lambda: sweep_folder(tmp_path / "runs"), what="the sweep folder")
    wait_for(lambda: len(list(folder.glob("t00*/metrics.csv"))) == 2, what="two trials training")
    sweep.send_signal(signal.SIGTERM)
    finish(sweep)
    assert sweep.returncode == 1
    resumes = [start("sweep", "--resume", folder) for _ in range(2)]
    outputs = [finish(p) for p in resumes]
    results = [(p.returncode, out, err) for p, (out, err) in zip(resumes, outputs)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, _, err in results if code == 1)
    assert "in use by another nnctl process (pid" in refused and refused.count("\n") == 1, refused
    assert_each_trial_ran_once(folder, ref)


def test_resume_trusts_run_dirs_over_the_manifest(reference, tmp_path):
    """What a killed sweep or an older nnctl left in sweep.json: a trial still "running" with no run
    dir, and one "failed" although it completed. Resume records both, reruns and renames nothing."""
    cfg, ref = reference
    folder = tmp_path / "moved"  # a sweep folder moved elsewhere: its run dirs are found by name
    shutil.copytree(sweep_folder(cfg.parent / "runs"), folder)
    manifest = json.loads((folder / "sweep.json").read_text())
    manifest["trials"][0].update(status="running", run_dir=None, metric=None)
    manifest["trials"][1].update(status="failed", error="killed")
    (folder / "sweep.json").write_text(json.dumps(manifest))
    out, err = finish(start("sweep", "--resume", folder))
    assert "(0 to run)" in err, err
    trials = assert_each_trial_ran_once(folder, ref)
    assert trials[0]["metric"] is not None and trials[1]["error"] == ""
