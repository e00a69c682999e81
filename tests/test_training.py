"""Training control: batch norm, dropout, schedules, stopping rules, clipping, exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.config import load_spec
from nnctl.nn.losses import LOSSES
from nnctl.nn.model import MLP, LayerDef
from nnctl.nn.norms import NORMS
from nnctl.nn.schedules import SCHEDULES
from nnctl.train import Trainer, prepare


# ------------------------------------------------------------------------------------ batch norm
def test_batch_norm_running_stats_follow_the_formula():
    bn = NORMS.get("batch", {"momentum": 0.3})
    bn.setup(3, np.float64, "test")
    rng = np.random.default_rng(0)
    gamma, beta = np.ones(3), np.zeros(3)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(4):
        Z = rng.normal(2.0, 3.0, size=(5, 3))
        bn.forward(Z, gamma, beta, train=True)
        # running = (1 - m) running + m batch, with the UNBIASED batch variance (ddof=1)
        mean = 0.7 * mean + 0.3 * Z.mean(axis=0)
        var = 0.7 * var + 0.3 * Z.var(axis=0, ddof=1)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)


def test_batch_norm_train_uses_batch_stats_and_inference_uses_running_stats():
    bn = NORMS.get("batch")
    bn.setup(2, np.float64, "test")
    bn.running_mean[...] = [1.0, -1.0]
    bn.running_var[...] = [4.0, 0.25]
    gamma, beta = np.array([2.0, 1.0]), np.array([0.5, 0.0])
    Z = np.array([[0.0, 0.0], [2.0, 1.0], [4.0, -1.0]])
    train_out, _ = bn.forward(Z.copy(), gamma, beta, train=True, update_stats=False)
    eval_out, _ = bn.forward(Z.copy(), gamma, beta, train=False)
    # training: biased batch variance; column 0 has mean 2, var 8/3
    np.testing.assert_allclose(train_out[:, 0], 2.0 * (Z[:, 0] - 2.0) / np.sqrt(8 / 3 + 1e-5) + 0.5)
    # inference: (Z - running_mean) / sqrt(running_var + eps)
    np.testing.assert_allclose(eval_out[:, 0], 2.0 * (Z[:, 0] - 1.0) / np.sqrt(4.0 + 1e-5) + 0.5)
    np.testing.assert_allclose(eval_out[:, 1], (Z[:, 1] + 1.0) / np.sqrt(0.25 + 1e-5))
    assert not np.allclose(train_out, eval_out)
    np.testing.assert_allclose(train_out.mean(axis=0), beta, atol=1e-12)  # normalised per batch


def test_batch_norm_refuses_one_row_in_training():
    bn = NORMS.get("batch")
    bn.setup(2, np.float64, "test")
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn.forward(np.ones((1, 2)), np.ones(2), np.zeros(2), train=True)


def test_group_norm_normalises_each_group_of_each_row():
    gn = NORMS.get("group", {"groups": 2})
    gn.setup(4, np.float64, "test")
    Z = np.array([[1.0, 3.0, 10.0, 30.0]])
    out, _ = gn.forward(Z, np.ones(4), np.zeros(4), train=True)
    np.testing.assert_allclose(out, [[-1, 1, -1, 1]], atol=1e-4)
    with pytest.raises(ValueError, match="do not divide"):
        NORMS.get("group", {"groups": 3}).setup(4, np.float64, "layer 1")


# ------------------------------------------------------------------------------------ dropout
def _dropout_model(p):
    hidden = [LayerDef(units=2000, activation="linear", init="normal", init_std=1.0, bias_init=1.0, dropout=p)]
    model = MLP(1, hidden, LayerDef(units=1, init="zeros"), LOSSES.get("mse"), dtype=np.float64)
    model.initialize(np.random.default_rng(0))
    model.params.views["W1"][...] = 0.0  # hidden activations are exactly 1
    return model


def test_dropout_preserves_the_mean_and_is_identity_at_inference():
    model = _dropout_model(0.3)
    X = np.zeros((50, 1))
    _, (caches, A) = model.forward(X, train=True, rng=np.random.default_rng(1))
    kept = A != 0
    assert abs(kept.mean() - 0.7) < 0.01  # keep probability 1 - p
    np.testing.assert_allclose(A[kept], 1 / 0.7)  # inverted: scaled at training time
    assert abs(A.mean() - 1.0) < 0.01  # so the mean is preserved
    _, (_, A_eval) = model.forward(X, train=False)
    np.testing.assert_array_equal(A_eval, 1.0)


def test_dropout_masks_come_from_the_seed():
    model = _dropout_model(0.5)
    X = np.zeros((4, 1))
    masks = [model.forward(X, train=True, rng=np.random.default_rng(s))[1][1] for s in (7, 7, 8)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])


# ------------------------------------------------------------------------------------ schedules
# Expected rates written out from the torch.optim.lr_scheduler formulas, base lr 0.1.
SCHEDULE_CASES = [
    ("constant", {}, 0, [0.1] * 5),
    ("step", {"step_size": 2, "gamma": 0.5}, 0, [0.1, 0.1, 0.05, 0.05, 0.025]),
    ("exponential", {"gamma": 0.9}, 0, [0.1, 0.09, 0.081, 0.0729, 0.06561]),
    # T = 4 epochs: min + (base - min)(1 + cos(pi e / 4)) / 2 with min 0.02
    ("cosine", {"min_lr": 0.02}, 0, [0.1, 0.02 + 0.08 * (1 + math.sqrt(0.5)) / 2, 0.06,
                                     0.02 + 0.08 * (1 - math.sqrt(0.5)) / 2, 0.02]),
    # warmup 2: 0.1 * 1/2, 0.1 * 2/2, then step restarts its own count at epoch 2
    ("step", {"step_size": 1, "gamma": 0.5}, 2, [0.05, 0.1, 0.1, 0.05, 0.025]),
    # cosine over the 4 epochs after a 1-epoch warmup
    ("cosine", {}, 1, [0.1, 0.1, 0.05 * (1 + math.sqrt(0.5)), 0.05, 0.05 * (1 - math.sqrt(0.5))]),
]


@pytest.mark.parametrize("name,options,warmup,expected", SCHEDULE_CASES)
def test_schedule_rates(name, options, warmup, expected):
    epochs = 5 if name != "cosine" or warmup else 4
    sched = SCHEDULES.get(name, options).setup(0.1, epochs, warmup)
    got = [sched.lr(e) for e in range(len(expected))]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_plateau_schedule_matches_reduce_lr_on_plateau():
    sched = SCHEDULES.get("plateau", {"factor": 0.5, "patience": 1, "threshold": 0.0}).setup(0.1, 20)
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85]
    lrs = []
    for e, loss in enumerate(losses):
        lrs.append(sched.lr(e))
        sched.observe(e, loss)
    # bad epochs: 0.95 (1), 0.95 (2 > patience -> halve, reset), 0.95 (1), 0.8 best, 0.85 (1), 0.85 (2 -> halve)
    assert lrs == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    assert sched.lr(len(losses)) == 0.025


def test_every_schedule_has_a_rate_test():
    assert {c[0] for c in SCHEDULE_CASES} | {"plateau"} == set(SCHEDULES.names())


# ------------------------------------------------------------------------------------ the trainer
def _spec(**train):
    data = {"data": {"source": "sklearn:moons", "options": {"n_samples": 300, "noise": 0.3}},
            "model": {"hidden": [8], "dropout": 0.1},
            "optimizer": {"name": "adam", "lr": 0.02},
            "train": {"epochs": 30, "batch_size": 16, **train}}
    return load_spec(data=data)


def test_lr_column_is_the_rate_used():
    spec = load_spec(data={"data": {"source": "sklearn:moons"}, "optimizer": {
        "lr": 0.1, "schedule": {"name": "step", "step_size": 2, "gamma": 0.5, "warmup_epochs": 1}},
        "train": {"epochs": 5}})
    rows = Trainer(prepare(spec)).fit().rows
    assert [r["lr"] for r in rows] == [0.1, 0.1, 0.1, 0.05, 0.05]


def test_early_stopping_restores_the_best_weights():
    spec = _spec(epochs=200, early_stopping={"patience": 5})
    trainer = Trainer(prepare(spec))
    snapshots = {}
    trainer.on_epoch = lambda row: snapshots.__setitem__(row["epoch"], trainer.model.state_arrays())
    result = trainer.fit()
    assert result.status == "early_stopped"
    best = min(result.rows, key=lambda r: r["val_loss"])
    assert result.best["epoch"] == best["epoch"] == result.weights_epoch
    assert len(result.rows) == best["epoch"] + 5  # exactly `patience` epochs without improvement
    assert "did not improve" in result.message and f"epoch {best['epoch']}" in result.message
    for key, value in trainer.model.state_arrays().items():
        np.testing.assert_array_equal(value, snapshots[best["epoch"]][key])


def test_early_stopping_on_a_metric_to_maximise():
    spec = _spec(epochs=200, early_stopping={"monitor": "val_accuracy", "patience": 3, "restore_best": False})
    trainer = Trainer(prepare(spec))
    result = trainer.fit()
    assert spec.config["train"]["early_stopping"]["mode"] == "max"
    assert result.best["val_accuracy"] == max(r["val_accuracy"] for r in result.rows)
    assert result.weights_epoch == len(result.rows)  # not restored


def test_stop_at_loss():
    result = Trainer(prepare(_spec(epochs=500, stop_at_loss=0.3))).fit()
    assert result.status == "stopped_at_loss"
    assert result.rows[-1]["train_loss"] <= 0.3 < result.rows[-2]["train_loss"]
    assert "stop_at_loss" in result.message


def test_clip_grad_norm_bounds_every_step():
    spec = _spec(epochs=1)
    spec.config["optimizer"].update(name="sgd", clip_grad_norm=0.01, lr=1.0)
    spec.config["optimizer"]["options"] = {}
    trainer = Trainer(prepare(spec))
    theta = trainer.model.params.theta
    steps = []
    real_step = trainer.optimizer.step

    def step(th, grad, lr):
        steps.append(float(np.linalg.norm(grad)))
        real_step(th, grad, lr)

    trainer.optimizer.step = step
    before = theta.copy()
    trainer.fit()
    assert max(steps) <= 0.01 * (1 + 1e-5)
    assert np.linalg.norm(theta - before) <= 0.01 * len(steps) * (1 + 1e-5)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("extra", [
    {"model": {"hidden": [8, 6], "norm": "batch", "dropout": 0.2},
     "optimizer": {"name": "adam", "lr": 0.01, "schedule": {"name": "plateau", "patience": 2}},
     "train": {"early_stopping": {"patience": 50}}},
    {"model": {"hidden": [6], "norm": "layer"},
     "optimizer": {"name": "rmsprop", "options": {"momentum": 0.5, "centered": True},
                   "schedule": {"name": "cosine", "warmup_epochs": 3}}},
])
def test_resuming_from_a_checkpoint_state_is_bit_identical(extra):
    data = {"data": {"source": "sklearn:moons", "options": {"n_samples": 200, "noise": 0.3}},
            "train": {"epochs": 12, "batch_size": 16}}
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    straight = Trainer(prepare(load_spec(data=data)))
    straight.fit()

    first = Trainer(prepare(load_spec(data=data)))
    saved = {}

    def stop_at_5(row):
        if row["epoch"] == 5:
            saved["state"] = first.state()
            raise _Stop

    first.on_epoch = stop_at_5
    with pytest.raises(_Stop):
        first.fit()
    resumed = Trainer(prepare(load_spec(data=data)))
    resumed.load_state(*saved["state"])
    meta, arrays = resumed.state()  # the round trip loses nothing
    assert meta == saved["state"][0]
    assert arrays.keys() == saved["state"][1].keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, saved["state"][1][key], err_msg=key)
    resumed.fit()
    for key, value in straight.model.state_arrays().items():
        np.testing.assert_array_equal(resumed.model.state_arrays()[key], value, err_msg=key)
    assert [r["train_loss"] for r in resumed.rows] == [r["train_loss"] for r in straight.rows]


def test_train_run_writes_a_checkpoint_file(tmp_path, monkeypatch):
    import nnctl.train as train_mod
    from nnctl.runs import RunDir

    monkeypatch.setattr(train_mod, "CHECKPOINT_SECONDS", 0.0)
    spec = _spec(epochs=4, checkpoint_every=2)
    result = train_mod.train_run(spec, tmp_path)
    meta, arrays = train_mod.read_checkpoint(RunDir(result.run.path))
    assert meta["epoch"] == 2  # epochs 2 (due) and 4 (final: the weights file is the result)
    assert meta["config_sha256"] == train_mod.config_digest(spec)
    assert arrays["rows"].shape[0] == 2 and "model/W1" in arrays
    assert "optimizer/exp_avg_scaled" in arrays and "optimizer/exp_avg_sq" in arrays
    assert not list((tmp_path / result.run.path.name / "checkpoint").glob("*.tmp"))


def test_float32_reaches_the_float64_metric_on_every_example_config():
    """benchmarks/float32_accuracy.py: each configs/*.yaml trained in float32 and in float64 (same
    seed) ends within one validation row of accuracy (0.01 of r2) of each other."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "benchmarks.float32_accuracy"], cwd=repo, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    same, _, total = proc.stdout.strip().splitlines()[-1].split()[:3]
    assert same == total == str(len(list((repo / "configs").glob("*.yaml")))), proc.stdout
