"""train.log_steps: steps.csv holds one row per gradient step (epoch, global step, loss, lr), the
losses the trainer computed, and after kills and resumes it equals an uninterrupted run's byte for byte."""

from __future__ import annotations

import csv
import json
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from test_reliability import BASE, nnctl, only_run, start

from nnctl.config.load import load_spec
from nnctl.training.session import train_run

STEPS_CONFIG = BASE + ("model: {hidden: [16]}\noptimizer: {name: sgd, lr: 0.1, schedule: {name: step, step_size: 7}}\n"
                       "train: {epochs: 40, batch_size: 8, log_steps: true}\n")


def _rows(run: Path) -> list[dict]:
    with open(run / "steps.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_steps_csv_rows_are_the_trainers_losses(tmp_path, monkeypatch):
    from nnctl.nn.losses import CrossEntropy

    seen = []
    original = CrossEntropy.value_and_grad

    def recording(self, Z, Y):
        loss, dZ = original(self, Z, Y)
        seen.append(loss)
        return loss, dZ

    monkeypatch.setattr(CrossEntropy, "value_and_grad", recording)
    spec = load_spec(data={"data": {"source": "sklearn:spiral", "options": {"n_samples": 150}}, "seed": 3,
                           "model": {"hidden": [8]}, "optimizer": {"name": "sgd", "lr": 0.1,
                                                                   "schedule": {"name": "step", "step_size": 2}},
                           "train": {"epochs": 5, "batch_size": 16, "log_steps": True, "diagnostics": False}})
    result = train_run(spec, tmp_path)
    rows = _rows(result.run.path)
    assert list(rows[0]) == ["epoch", "step", "loss", "lr"]
    n_train = result.summary["n_rows"]["train"]
    per_epoch = -(-n_train // 16)
    assert len(rows) == 5 * per_epoch == len(seen)
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))  # global, from 1
    assert [int(r["epoch"]) for r in rows] == [e for e in range(1, 6) for _ in range(per_epoch)]
    assert [float(r["loss"]) for r in rows] == seen  # exactly, repr round-trips
    metrics = list(csv.DictReader(open(result.run.path / "metrics.csv")))
    assert [float(r["lr"]) for r in rows] == [float(m["lr"]) for m in metrics for _ in range(per_epoch)]
    assert len({r["lr"] for r in rows}) == 3  # the schedule stepped: 0.1, 0.01, 0.001
    # the epoch's train_loss is the row-weighted mean of its steps' losses
    sizes = [16] * (per_epoch - 1) + [n_train - 16 * (per_epoch - 1)]
    first = [float(r["loss"]) for r in rows[:per_epoch]]
    assert float(metrics[0]["train_loss"]) == pytest.approx(np.dot(first, sizes) / n_train, rel=1e-6)

    import nnctl.plot

    drawn = []
    monkeypatch.setattr(nnctl.plot, "save_figure", lambda fig, out: drawn.extend(
        line.get_label() for line in fig.axes[0].get_lines()))
    nnctl.plot.plot_run(result.run.path, tmp_path / "p.png")
    assert "train loss per step" in drawn


def test_no_steps_csv_unless_asked(tmp_path):
    spec = load_spec(data={"data": {"source": "sklearn:xor", "options": {"n_samples": 60}}, "model": {"hidden": []},
                           "train": {"epochs": 2, "diagnostics": False}})
    run = train_run(spec, tmp_path).run.path
    assert not (run / "steps.csv").exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps_ref")
    cfg = root / "steps.yaml"
    cfg.write_text(STEPS_CONFIG)
    return cfg, Path(nnctl("train", cfg, "--runs-dir", root / "ref", "-q", check=0).stdout.strip())


def test_steps_csv_after_kills_and_resumes_is_bit_identical(reference, tmp_path):
    cfg, ref = reference
    want = (ref / "steps.csv").read_bytes()
    assert want.count(b"\n") == 1 + 40 * 23  # 180 training rows in batches of 8
    duration = json.loads((ref / "summary.json").read_text())["wall_time_s"]
    rng = random.Random(7)
    resumed = 0
    for k, sig in enumerate([signal.SIGINT, signal.SIGKILL, signal.SIGKILL, signal.SIGKILL]):
        folder = tmp_path / f"kill{k}"
        proc = start("train", cfg, "--runs-dir", folder, "-q")
        while not (folder.exists() and any(folder.iterdir())):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.1, 0.8) * duration)
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        run = only_run(folder)
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        if summary.get("status") in ("running", "interrupted"):
            nnctl("resume", run, "-q", check=0)
            resumed += 1
        elif not summary:
            continue
        assert (run / "steps.csv").read_bytes() == want, f"kill {k} ({sig.name})"
    assert resumed >= 2


def test_steps_csv_after_a_stop_mid_epoch_is_bit_identical(reference, tmp_path, monkeypatch):
    """A stop after step 50 (epoch 3, step 4 of 23): the checkpoint holds the 50 rows logged so far."""
    import os

    from nnctl.errors import TrainingFailed
    from nnctl.nn.optimizers import SGD
    from nnctl.training.session import resume_run

    cfg, ref = reference
    original, taken = SGD.step, []

    def step(self, theta, grad, lr):
        original(self, theta, grad, lr)
        taken.append(1)
        if len(taken) == 50:  # like a Ctrl-C arriving during this step
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(SGD, "step", step)
    with pytest.raises(TrainingFailed, match="interrupted in epoch 3, after step 4"):
        train_run(load_spec(cfg), tmp_path)
    run = only_run(tmp_path)
    assert len(_rows(run)) == 50
    monkeypatch.setattr(SGD, "step", original)
    resume_run(run)
    assert json.loads((run / "summary.json").read_text())["resumed_from"] == {"epoch": 2, "step": 4}
    assert (run / "steps.csv").read_bytes() == (ref / "steps.csv").read_bytes()
