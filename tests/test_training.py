"""Training control: batch norm, dropout, schedules, stopping rules, clipping, exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.build import prepare
from nnctl.config.load import load_spec
from nnctl.nn.activations import ACTIVATIONS
from nnctl.nn.losses import LOSSES
from nnctl.nn.model import MLP, LayerDef
from nnctl.nn.norms import NORMS
from nnctl.nn.schedules import SCHEDULES
from nnctl.training.checkpoint import capture, restore
from nnctl.training.loop import Trainer


def params(gamma, beta):
    return {"gamma": np.asarray(gamma, dtype=np.float64), "beta": np.asarray(beta, dtype=np.float64)}


# ------------------------------------------------------------------------------------ batch norm
def test_batch_norm_running_stats_follow_the_formula():
    bn = NORMS.get("batch", {"momentum": 0.3})
    rng = np.random.default_rng(0)
    state = {"running_mean": np.zeros(3), "running_var": np.ones(3)}
    assert bn.buffers() == {"running_mean": 0.0, "running_var": 1.0}  # their initial values
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(4):
        Z = rng.normal(2.0, 3.0, size=(5, 3))
        bn.forward(Z, params(np.ones(3), np.zeros(3)), state, train=True)
        # running = (1 - m) running + m batch, with the UNBIASED batch variance (ddof=1)
        mean = 0.7 * mean + 0.3 * Z.mean(axis=0)
        var = 0.7 * var + 0.3 * Z.var(axis=0, ddof=1)
    np.testing.assert_allclose(state["running_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], var, rtol=1e-12)


def test_batch_norm_train_uses_batch_stats_and_inference_uses_running_stats():
    bn = NORMS.get("batch")
    state = {"running_mean": np.array([1.0, -1.0]), "running_var": np.array([4.0, 0.25])}
    gamma, beta = np.array([2.0, 1.0]), np.array([0.5, 0.0])
    Z = np.array([[0.0, 0.0], [2.0, 1.0], [4.0, -1.0]])
    train_out, _ = bn.forward(Z.copy(), params(gamma, beta), state, train=True, update_stats=False)
    eval_out, _ = bn.forward(Z.copy(), params(gamma, beta), state, train=False)
    # training: biased batch variance; column 0 has mean 2, var 8/3
    np.testing.assert_allclose(train_out[:, 0], 2.0 * (Z[:, 0] - 2.0) / np.sqrt(8 / 3 + 1e-5) + 0.5)
    # inference: (Z - running_mean) / sqrt(running_var + eps)
    np.testing.assert_allclose(eval_out[:, 0], 2.0 * (Z[:, 0] - 1.0) / np.sqrt(4.0 + 1e-5) + 0.5)
    np.testing.assert_allclose(eval_out[:, 1], (Z[:, 1] + 1.0) / np.sqrt(0.25 + 1e-5))
    assert not np.allclose(train_out, eval_out)
    np.testing.assert_allclose(train_out.mean(axis=0), beta, atol=1e-12)  # normalised per batch


def test_batch_norm_refuses_one_row_in_training():
    bn = NORMS.get("batch")
    state = {"running_mean": np.zeros(2), "running_var": np.ones(2)}
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn.forward(np.ones((1, 2)), params(np.ones(2), np.zeros(2)), state, train=True)


def test_group_norm_normalises_each_group_of_each_row():
    gn = NORMS.get("group", {"groups": 2})
    gn.check_width(4)
    Z = np.array([[1.0, 3.0, 10.0, 30.0]])
    out, _ = gn.forward(Z, params(np.ones(4), np.zeros(4)), {}, train=True)
    np.testing.assert_allclose(out, [[-1, 1, -1, 1]], atol=1e-4)
    with pytest.raises(ValueError, match="do not divide"):
        NORMS.get("group", {"groups": 3}).check_width(4)


def test_a_norm_object_holds_no_state_so_models_can_share_it():
    """Two models built from one spec (one norm object) keep their own running statistics."""
    spec = load_spec(data={"data": {"source": "sklearn:moons", "options": {"n_samples": 60}},
                           "model": {"hidden": [4], "norm": "batch"}})
    a, b = prepare(spec), prepare(spec)
    assert a.model.layers[0].norm is b.model.layers[0].norm
    a.model.loss_and_grad(a.X["train"], a.Y["train"])
    assert not np.array_equal(a.model.buffers["running_mean1"], b.model.buffers["running_mean1"])
    np.testing.assert_array_equal(b.model.buffers["running_mean1"], 0.0)


# ------------------------------------------------------------------------------------ dropout
def _dropout_model(p):
    hidden = [LayerDef(units=2000, activation=ACTIVATIONS.get("linear"), init="normal", init_std=1.0, bias_init=1.0,
                       dropout=p)]
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
def _spec(optimizer=None, **train):
    data = {"data": {"source": "sklearn:moons", "options": {"n_samples": 300, "noise": 0.3}},
            "model": {"hidden": [8], "dropout": 0.1},
            "optimizer": optimizer or {"name": "adam", "lr": 0.02},
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
    assert spec.train.early_stopping.mode == "auto" and trainer.spec.train.early_stopping.mode == "max"
    assert result.best["val_accuracy"] == max(r["val_accuracy"] for r in result.rows)
    assert result.weights_epoch == len(result.rows)  # not restored


def test_stop_at_loss():
    result = Trainer(prepare(_spec(epochs=500, stop_at_loss=0.3))).fit()
    assert result.status == "stopped_at_loss"
    assert result.rows[-1]["train_loss"] <= 0.3 < result.rows[-2]["train_loss"]
    assert "stop_at_loss" in result.message


def test_clip_grad_norm_bounds_every_step():
    spec = _spec(epochs=1, optimizer={"name": "sgd", "clip_grad_norm": 0.01, "lr": 1.0})
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
            saved["state"] = capture(first)
            raise _Stop

    first.on_epoch = stop_at_5
    with pytest.raises(_Stop):
        first.fit()
    resumed = Trainer(prepare(load_spec(data=data)))
    restore(resumed, *saved["state"])
    meta, arrays = capture(resumed)  # the round trip loses nothing
    assert meta == saved["state"][0]
    assert arrays.keys() == saved["state"][1].keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, saved["state"][1][key], err_msg=key)
    resumed.fit()
    for key, value in straight.model.state_arrays().items():
        np.testing.assert_array_equal(resumed.model.state_arrays()[key], value, err_msg=key)
    assert [r["train_loss"] for r in resumed.rows] == [r["train_loss"] for r in straight.rows]


def test_train_run_writes_a_checkpoint_file(tmp_path, monkeypatch):
    import nnctl.training.loop as loop_mod
    from nnctl.runs import RunDir
    from nnctl.training.checkpoint import config_digest, read_checkpoint
    from nnctl.training.session import train_run

    monkeypatch.setattr(loop_mod, "CHECKPOINT_SECONDS", 0.0)
    spec = _spec(epochs=4, checkpoint_every=2)
    result = train_run(spec, tmp_path)
    meta, arrays = read_checkpoint(RunDir(result.run.path))
    assert meta["epoch"] == 4  # epoch 2 (due), then the finished state at epoch 4 (kept for resume --epochs)
    # the digest of the resolved config, which the run's config.yaml reproduces exactly
    assert meta["config_sha256"] == config_digest(load_spec(result.run.path / "config.yaml"))
    assert meta["config_sha256"] == config_digest(prepare(spec).spec) != config_digest(spec)
    assert arrays["rows"].shape[0] == 4 and "model/W1" in arrays
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


@pytest.mark.parametrize("val, test", [(0.0, 0.2), (0.0, 0.0), (0.2, 0.0)])
def test_regression_trains_without_a_val_or_test_part(val, test):
    # an empty part used to crash the target scaling and encoding (reshape of 0 rows)
    spec = load_spec(data={"data": {"source": "sklearn:regression", "split": {"val": val, "test": test}},
                           "train": {"epochs": 2}})
    prepared = prepare(spec)
    assert prepared.Y["val"].shape == (len(prepared.split["val"]), 1)
    assert prepared.Y["test"].shape == (len(prepared.split["test"]), 1)
    result = Trainer(prepared).fit()
    assert result.status == "completed" and ("val_loss" in result.rows[-1]) == (val > 0)
