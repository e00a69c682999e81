"""Resume keeps the findings and accepts older checkpoints (review of issues 15-17).

A run stopped inside its first epoch and resumed must report the same findings as one that never
stopped (the detectors' memory of the untrained loss and of the last measurement is restored); a
checkpoint taken at epoch 0 is not measured twice; a checkpoint written before train.snapshot_every,
train.log_steps and train.log existed (its config digest lacks them) still resumes; the sweep lock does not
clean the trials' run dirs, whose own locks guard them."""

from __future__ import annotations

import hashlib
import json
import os
import signal

import numpy as np
import pytest

from nnctl.config.load import load_spec
from nnctl.errors import TrainingFailed
from nnctl.nn.optimizers import SGD
from nnctl.training.session import resume_run, train_run

LR_HUGE = {"seed": 0, "data": {"source": "sklearn:digits"},
           "model": {"hidden": [128, 64], "activation": "relu"},
           "optimizer": {"name": "sgd", "lr": 10.0, "schedule": {"name": "cosine", "warmup_epochs": 2}},
           "train": {"epochs": 5, "batch_size": 64}}
DEAD = {"seed": 0, "data": {"source": "sklearn:digits"},
        "model": {"hidden": [128, 64], "activation": "relu", "bias_init": -3},
        "optimizer": {"name": "sgd", "lr": 0.05}, "train": {"epochs": 8, "batch_size": 64}}


def _only(folder):
    (run,) = [p for p in folder.iterdir() if p.is_dir()]
    return run


def _findings(run) -> list[tuple]:
    return [(f["code"], f["epoch"], f["layer"]) for f in json.loads((run / "summary.json").read_text())["findings"]]


def _stopped_at(config: dict, step: int, folder, monkeypatch):
    original, taken = SGD.step, []

    def stopping(self, theta, grad, lr):
        original(self, theta, grad, lr)
        taken.append(1)
        if len(taken) == step:  # like a Ctrl-C during this step
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(SGD, "step", stopping)
    with pytest.raises(TrainingFailed):
        train_run(load_spec(data={"name": "r", **config}), folder)
    monkeypatch.setattr(SGD, "step", original)
    return _only(folder)


@pytest.mark.parametrize("config", [LR_HUGE, DEAD], ids=["LR_TOO_LARGE at epoch 1", "DEAD_RELU at epoch 1"])
def test_a_run_resumed_in_its_first_epoch_reports_the_same_findings(tmp_path, monkeypatch, config):
    reference = train_run(load_spec(data={"name": "r", **config}), tmp_path / "ref").run.path
    expected = _findings(reference)
    assert any(epoch == 1 for _, epoch, _ in expected)  # the finding depends on what epoch 0 measured
    run = _stopped_at(config, 5, tmp_path / "stopped", monkeypatch)
    resume_run(run)
    assert _findings(run) == expected


def test_a_checkpoint_at_epoch_0_is_not_measured_twice(tmp_path, monkeypatch):
    from nnctl.probe import Probe

    original, calls = Probe.initial, []

    def interrupted_once(self):
        original(self)
        calls.append(1)
        if len(calls) == 1:  # a Ctrl-C while the untrained network is measured
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Probe, "initial", interrupted_once)
    config = {**DEAD, "train": {"epochs": 2, "batch_size": 64}}
    try:
        train_run(load_spec(data={"name": "r", **config}), tmp_path / "a")
    except TrainingFailed:
        pass
    run = _only(tmp_path / "a")
    monkeypatch.setattr(Probe, "initial", original)
    if (run / "checkpoint" / "checkpoint.npz").exists():
        resume_run(run)
    rows = (run / "diagnostics.csv").read_text().splitlines()
    epochs = [line.split(",")[0] for line in rows[1:]]
    assert epochs.count("0") == 3  # two hidden layers and the output, once


@pytest.mark.parametrize("absent", [("snapshot_every", "log_steps", "log"), ("log",)],
                         ids=["before snapshot_every, log_steps and log", "before train.log"])
def test_a_checkpoint_from_before_the_snapshot_and_step_keys_still_resumes(tmp_path, monkeypatch, absent):
    from nnctl.config.load import HEADER
    from nnctl.config.yamlio import dump_yaml

    config = {**DEAD, "model": {"hidden": [16], "activation": "relu"}, "train": {"epochs": 4, "batch_size": 64}}
    run = _stopped_at(config, 40, tmp_path, monkeypatch)
    ckpt = run / "checkpoint" / "checkpoint.npz"
    with np.load(ckpt) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    old = load_spec(run / "config.yaml").to_config()
    for key in absent:  # what a previous version hashed
        del old["train"][key]
    meta["config_sha256"] = hashlib.sha256((HEADER + dump_yaml(old)).encode()).hexdigest()
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(ckpt, **arrays)
    resume_run(run)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_the_sweep_lock_leaves_the_trials_temp_files_alone(tmp_path):
    from nnctl.runs import RunDir, RunLock
    from nnctl.sweep import lock_sweep

    trial = tmp_path / "t000-20260101-000000-abcdef"
    trial.mkdir()
    live = trial / ".metrics.csv.0123abcd.tmp"  # a trial's writer may be mid-write
    live.write_text("x")
    stale = tmp_path / ".sweep.json.0123abcd.tmp"
    stale.write_text("x")
    lock = lock_sweep(tmp_path)
    try:
        assert live.exists() and not stale.exists()
    finally:
        lock.release()
    RunLock.acquire(RunDir(trial)).release()  # the trial's own lock holder cleans it
    assert not live.exists()
