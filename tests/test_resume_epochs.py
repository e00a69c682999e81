"""resume --epochs N (DESIGN §1, §3): a finished run keeps its checkpoint and continues to N epochs,
bit-identical to training N epochs from the start where the schedule and stopping rules allow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnctl.files import read_npz

ROOT = Path(__file__).resolve().parents[1]
MOONS = ROOT / "configs" / "moons.yaml"


def nnctl(*args):
    return subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True)


def train(tmp, *sets):
    args = [x for s in sets for x in ("--set", s)]
    proc = nnctl("train", MOONS, *args, "--runs-dir", tmp, "-q")
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


def same_npz(a: Path, b: Path) -> bool:
    x, y = read_npz(a, "a"), read_npz(b, "b")
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def metrics(run: Path) -> list[list[str]]:  # every column but the epoch time
    return [line.split(",")[:-1] for line in (run / "metrics.csv").read_text().splitlines()]


@pytest.mark.parametrize("sets", [["optimizer.schedule={name: step, step_size: 2, gamma: 0.5}"],
                                  ["train.snapshot_every=2", "train.log_steps=true", "model.dropout=0.2"]],
                         ids=["step-schedule", "snapshots-steps-dropout"])
def test_extending_a_finished_run_equals_training_that_long(tmp_path, sets):
    run = train(tmp_path / "a", "train.epochs=5", *sets)
    assert (run / "checkpoint" / "checkpoint.npz").is_file()  # kept at the end, for this
    proc = nnctl("resume", run, "--epochs", 9, "-q")
    assert proc.returncode == 0, proc.stderr
    whole = train(tmp_path / "b", "train.epochs=9", *sets)
    for name in ("weights.npz", "snapshots.npz"):
        if (whole / name).exists():
            assert same_npz(run / name, whole / name), name
    assert metrics(run) == metrics(whole)
    if (whole / "steps.csv").exists():
        assert (run / "steps.csv").read_text() == (whole / "steps.csv").read_text()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 9 and summary["epochs_planned"] == 9
    assert "bit-identical" in summary["extended"][0]["note"]
    assert "epochs: 9" in (run / "config.yaml").read_text()


def test_what_differs_is_said(tmp_path):
    cosine = train(tmp_path, "train.epochs=4", "optimizer.schedule=cosine")
    assert nnctl("resume", cosine, "--epochs", 6, "-q").returncode == 0
    note = json.loads((cosine / "summary.json").read_text())["extended"][0]["note"]
    assert "cosine schedule is re-planned" in note
    stopping = train(tmp_path, "train.epochs=4", "train.early_stopping={patience: 1}")
    assert nnctl("resume", stopping, "--epochs", 30, "-q").returncode == 0
    note = json.loads((stopping / "summary.json").read_text())["extended"][0]["note"]
    assert "patience restarts" in note


def test_refusals_say_what_to_do(tmp_path):
    run = train(tmp_path, "train.epochs=3")
    proc = nnctl("resume", run)
    assert proc.returncode == 2 and "--epochs N" in proc.stderr
    proc = nnctl("resume", run, "--epochs", 3)
    assert proc.returncode == 2 and "not more than the 3 epochs" in proc.stderr
    proc = nnctl("resume", run, "--epochs", 0)
    assert proc.returncode == 2


def test_an_extended_run_extends_again(tmp_path):
    run = train(tmp_path / "a", "train.epochs=2")
    for total in (4, 7):
        assert nnctl("resume", run, "--epochs", total, "-q").returncode == 0
    whole = train(tmp_path / "b", "train.epochs=7")
    assert same_npz(run / "weights.npz", whole / "weights.npz")
    assert len(json.loads((run / "summary.json").read_text())["extended"]) == 2


def test_extending_removes_the_results_of_the_earlier_model(tmp_path):
    run = train(tmp_path, "train.epochs=3")
    assert nnctl("eval", run, "-q").returncode == 0 and (run / "eval.json").exists()
    proc = nnctl("resume", run, "--epochs", 5, "-q")
    assert proc.returncode == 0, proc.stderr
    assert not (run / "eval.json").exists()  # compare must not show the 3-epoch model's test metrics
    note = json.loads((run / "summary.json").read_text())["extended"][0]["note"]
    assert "removed eval.json" in note
