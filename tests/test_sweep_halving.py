"""Successive halving: the rungs, who survives each, bit-identical extension, and --resume mid-halving.

A real 27-trial sweep with ETA 3 and train.epochs 27 (rungs of 1, 3, 9 and 27 epochs; 27, 9, 3 and 1
trials) on a small XOR set, run by the CLI with two workers, serves as the reference; a second one
is stopped with SIGTERM while its second rung runs and resumed.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnctl.errors import ConfigError
from nnctl.sweep_halving import plan_rungs

CONFIG = ("data: {source: 'sklearn:xor', options: {n_samples: 120}}\nmodel: {hidden: [6]}\n"
          "optimizer: {name: sgd, lr: 0.05}\ntrain: {epochs: 27, batch_size: 16}\n")
PLAN = ("--grid", "optimizer.lr=0.01,0.02,0.05,0.1,0.2,0.3,0.5,0.8,1.2", "--seeds", "3", "--halving", "3",
        "--jobs", "2")


def start(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnctl", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    return out, err


def manifest(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


def summary(run) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


def weights(run) -> dict[str, np.ndarray]:
    with np.load(Path(run) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def val_losses(run) -> list[float]:
    with open(Path(run) / "metrics.csv", newline="") as f:
        return [float(r["val_loss"]) for r in csv.DictReader(f)]


def test_rung_plans():
    assert plan_rungs(27, 27, 3) == ([1, 3, 9, 27], [27, 9, 3, 1])
    assert plan_rungs(27, 60, 3) == ([2, 7, 20, 60], [27, 9, 3, 1])  # 60/27, 60/9, 60/3, rounded
    assert plan_rungs(8, 100, 2) == ([12, 25, 50, 100], [8, 4, 2, 1])
    assert plan_rungs(30, 100, 3) == ([4, 11, 33, 100], [30, 10, 3, 1])  # 3 halvings leave one of 30
    assert plan_rungs(10, 100, 3, min_epochs=5) == ([5, 15, 45, 100], [10, 3, 1, 1])
    # 10/81, 10/27 and 10/9 epochs all round to 1: one selection after it, straight to 200 // 27 trials
    assert plan_rungs(200, 10, 3) == ([1, 3, 10], [200, 7, 2])
    with pytest.raises(ConfigError, match="at least 2"):
        plan_rungs(9, 9, 1)
    with pytest.raises(ConfigError, match="must be less than train.epochs"):
        plan_rungs(9, 9, 3, min_epochs=9)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("halving")
    cfg = root / "c.yaml"
    cfg.write_text(CONFIG)
    out, err = finish(proc := start("sweep", cfg, *PLAN, "--runs-dir", root / "runs"))
    assert proc.returncode == 0, err
    return cfg, Path(out.strip().splitlines()[-1]), out


def test_halving_rungs_survivors_and_a_bit_identical_winner(reference, tmp_path):
    cfg, folder, out = reference
    doc = manifest(folder)
    assert doc["halving"] == {"eta": 3, "rungs": [1, 3, 9, 27], "counts": [27, 9, 3, 1]}
    trials = doc["trials"]
    assert len(trials) == 27 and all(t["status"] == "completed" for t in trials)
    rungs, counts = doc["halving"]["rungs"], doc["halving"]["counts"]
    assert [sum(t["rung"] >= k for t in trials) for k in range(4)] == counts
    for t in trials:  # each trial trained exactly its last rung's epochs, in one run dir
        s = summary(t["run_dir"])
        assert t["epochs"] == rungs[t["rung"]] == s["epochs_run"] == s["epochs_planned"], (t, s["epochs_run"])
        assert s["best_by"]["metric"] == "val_loss"
    dirs = sorted(p.name.split("-")[0] for p in folder.iterdir() if p.is_dir())
    assert dirs == sorted(t["name"] for t in trials)
    for k in range(3):  # the survivors of rung k are its best by val_loss over its first rungs[k] epochs
        members = [t for t in trials if t["rung"] >= k]
        ranked = sorted(members, key=lambda t: (min(val_losses(t["run_dir"])[:rungs[k]]), t["id"]))
        assert {t["name"] for t in ranked[:counts[k + 1]]} == {t["name"] for t in members if t["rung"] > k}
    winner = next(t for t in trials if t["rung"] == 3)
    assert "rung" in out  # the final table says at which rung each trial stopped
    # extended 1 -> 3 -> 9 -> 27 epochs in place: the weights of a plain 27-epoch run of its config
    plain = subprocess.run([sys.executable, "-m", "nnctl", "train", cfg, "--set",
                            f"optimizer.lr={winner['overrides']['optimizer.lr']}", "--seed", str(winner["seed"]),
                            "--runs-dir", tmp_path / "plain", "-q"], capture_output=True, text=True, timeout=120)
    want, got = weights(plain.stdout.strip().splitlines()[-1]), weights(winner["run_dir"])
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    assert len(summary(winner["run_dir"])["extended"]) == 3  # 1 -> 3, 3 -> 9, 9 -> 27


def test_resume_mid_halving_finishes_each_trial_once(reference, tmp_path):
    cfg, ref_folder, _ = reference
    ref = {t["name"]: t for t in manifest(ref_folder)["trials"]}
    sweep = start("sweep", cfg, *PLAN, "--runs-dir", tmp_path / "runs")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # stop it once the second rung (3 epochs) has begun
        docs = [summary(p) for p in (tmp_path / "runs").glob("*/t*/") if (p / "summary.json").exists()]
        if any(d.get("epochs_planned") == 3 for d in docs):
            break
        time.sleep(0.02)
    sweep.send_signal(signal.SIGTERM)
    out, err = finish(sweep)
    folder = next((tmp_path / "runs").iterdir())
    if sweep.returncode == 0:  # it finished before the signal landed: nothing to resume, still a fine result
        pytest.skip("the sweep finished before SIGTERM")
    assert sweep.returncode == 1 and "nnctl sweep --resume" in err, err
    out, err = finish(resume := start("sweep", "--resume", folder))
    assert resume.returncode == 0, err
    trials = manifest(folder)["trials"]
    for t in trials:  # the same decisions and results as the sweep nothing interrupted
        r = ref[t["name"]]
        assert (t["rung"], t["epochs"], t["status"]) == (r["rung"], r["epochs"], r["status"]), (t, r)
        got, want = weights(t["run_dir"]), weights(r["run_dir"])
        assert all(np.array_equal(got[k], want[k]) for k in want), t["name"]
    dirs = sorted(p.name.split("-")[0] for p in folder.iterdir() if p.is_dir())
    assert dirs == sorted(ref)  # one run dir per trial, none renamed .failed-*


def test_halving_refuses_a_swept_epoch_count(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    for extra, message in [(("--grid", "train.epochs=5,10"), "do not also sweep train.epochs")]:
        out = subprocess.run([sys.executable, "-m", "nnctl", "sweep", cfg, *extra, "--halving", "2", "--runs-dir",
                              tmp_path / "runs"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()  # refused before a sweep folder was made


def test_a_damaged_halving_record_is_bad_input(reference, tmp_path):
    import shutil

    _, ref_folder, _ = reference
    folder = tmp_path / "copy"
    shutil.copytree(ref_folder, folder)
    doc = manifest(folder)
    doc["halving"] = {"eta": 3, "rungs": [9, 3], "counts": [27, 9]}  # falling epochs
    (folder / "sweep.json").write_text(json.dumps(doc))
    out = subprocess.run([sys.executable, "-m", "nnctl", "sweep", "--resume", folder], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "sweep.json: damaged ('halving'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
