"""Every lesson config in configs/lessons/ runs and shows what its comments promise (issue 17).

Each check trains the lesson (with the --set variants its comments list) in-process and asserts the
observation the comment states, with the same seeds, so a change that breaks a lesson's point fails
here. The numbers in the comments were measured with these configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnctl.config.load import load_spec
from nnctl.errors import ConfigError, TrainingFailed
from nnctl.training.session import train_run

LESSONS = Path(__file__).resolve().parents[1] / "configs" / "lessons"


def train(tmp_path, lesson: str, *sets: str) -> dict:
    """summary.json of the lesson trained with the given --set overrides (a diverged run's too)."""
    import json

    spec = load_spec(LESSONS / lesson, list(sets))
    try:
        return train_run(spec, tmp_path).summary
    except TrainingFailed as exc:
        return json.loads((Path(exc.run_dir) / "summary.json").read_text())


def acc(s: dict) -> float:
    return s["final"]["val_accuracy"]


def codes(s: dict) -> set[str]:
    return {f["code"] for f in s["findings"]}


def test_every_lesson_has_predict_run_observe_comments():
    configs = sorted(LESSONS.rglob("*.yaml"))
    assert len(configs) >= 15
    for c in configs:
        head = c.read_text().split("\n", 12)
        text = "\n".join(head)
        assert "# Run:" in text and "# Observe:" in text and "nnctl " in text, c


def test_the_perceptron_converges_on_blobs_and_never_on_xor(tmp_path):
    import csv

    blobs = train(tmp_path, "01-perceptron/blobs.yaml")
    rows = list(csv.DictReader(open(Path(blobs["run_dir"]) / "metrics.csv")))
    assert [float(r["train_accuracy"]) for r in rows[1:]] == [1.0] * (len(rows) - 1)  # no mistake from epoch 2
    xor = train(tmp_path, "01-perceptron/xor.yaml")
    rows = list(csv.DictReader(open(Path(xor["run_dir"]) / "metrics.csv")))
    assert max(float(r["train_accuracy"]) for r in rows) < 0.7 and acc(xor) < 0.6


def test_soft_and_multi_output_perceptrons(tmp_path):
    assert acc(train(tmp_path, "01-perceptron/logistic.yaml")) > 0.95
    multi = train(tmp_path, "01-perceptron/multi_output.yaml")
    assert acc(multi) > 0.95 and not codes(multi)


def test_linear_units_cannot_solve_xor_at_any_depth(tmp_path):
    linear = train(tmp_path, "02-linear-vs-nonlinear/xor_linear.yaml")
    tanh = train(tmp_path, "02-linear-vs-nonlinear/xor_tanh.yaml")
    assert acc(linear) < 0.8 and abs(linear["final"]["train_loss"] - 0.693) < 0.01
    assert acc(tanh) >= 0.95


def test_the_xor_lesson_keeps_snapshots_for_the_evolution_plot(tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app

    run_dir = train(tmp_path, "02-linear-vs-nonlinear/xor_tanh.yaml")["run_dir"]
    out = CliRunner().invoke(app, ["plot", run_dir, "--evolution", "-o", str(tmp_path / "evolution.png")])
    assert out.exit_code == 0, out.stderr
    assert (tmp_path / "evolution.png").read_bytes()[:4] == b"\x89PNG"


def test_more_hidden_units_fit_the_sine_better(tmp_path):
    r2 = [train(tmp_path, "03-universal-approximation/sine.yaml", f"model.hidden=[{h}]")["final"]["val_r2"]
          for h in (1, 2, 8, 32)]
    assert r2 == sorted(r2) and r2[0] < 0.8 and r2[-1] > 0.97


def test_deep_beats_wide_at_the_same_parameter_budget(tmp_path):
    deep, wide = train(tmp_path, "04-depth/sine3_deep.yaml"), train(tmp_path, "04-depth/sine3_wide.yaml")
    assert abs(deep["n_params"] - wide["n_params"]) <= 2
    assert deep["final"]["val_r2"] > 0.98 and wide["final"]["val_r2"] < 0.3


def test_sigmoid_saturates_on_unscaled_inputs(tmp_path):
    raw = train(tmp_path, "05-activations/sigmoid_saturation.yaml")
    scaled = train(tmp_path, "05-activations/sigmoid_saturation.yaml", "data.preprocess=standardize")
    assert "SATURATED" in codes(raw) and acc(raw) < 0.7
    assert acc(scaled) > 0.95 and not codes(scaled)


def test_dead_relus_and_their_cures(tmp_path):
    dead = train(tmp_path, "05-activations/dead_relu.yaml")
    leaky = train(tmp_path, "05-activations/dead_relu.yaml", "model.activation=leaky_relu")
    bias = train(tmp_path, "05-activations/dead_relu.yaml", "model.bias_init=0.1")
    assert codes(dead) == {"DEAD_RELU"} and acc(dead) <= 0.55
    assert "DEAD_RELU" not in codes(leaky) and acc(leaky) > 0.85
    assert acc(bias) > 0.95


def test_the_relu_family_and_sigmoid_on_the_spiral(tmp_path):
    runs = {a: train(tmp_path, "05-activations/modern.yaml", f"model.activation={a}")
            for a in ("relu", "relu6", "swish", "mish", "maxout", "sigmoid")}
    assert all(acc(s) >= 0.97 for s in runs.values())
    assert runs["sigmoid"]["final"]["train_loss"] > 3 * runs["relu"]["final"]["train_loss"]


def test_preprocessing_ranks_as_the_lesson_says(tmp_path):
    a = {p: train(tmp_path, "06-preprocessing/wine.yaml", f"data.preprocess={p}")
         for p in ("none", "center", "standardize", "pca", "whiten")}
    assert "SATURATED" in codes(a["none"]) and acc(a["none"]) < 0.5
    assert max(acc(a["center"]), acc(a["pca"])) < acc(a["standardize"]) < acc(a["whiten"])


def test_initialisation_lessons(tmp_path):
    zeros = train(tmp_path, "07-initialization/zeros.yaml")
    assert codes(zeros) == {"ZEROS_INIT", "SYMMETRY"} and acc(zeros) == 0.5
    small = train(tmp_path, "07-initialization/small_normal_deep.yaml")
    assert codes(small) == {"ACTIVATION_COLLAPSE"} and acc(small) <= 0.55
    xavier = train(tmp_path, "07-initialization/xavier_he.yaml")
    he = train(tmp_path, "07-initialization/xavier_he.yaml", "model.activation=relu", "model.init=he_normal")
    relu_small = train(tmp_path, "07-initialization/xavier_he.yaml", "model.activation=relu", "model.init=normal")
    assert acc(xavier) > 0.95 and acc(he) > 0.93 and not codes(xavier) and not codes(he)
    assert "ACTIVATION_COLLAPSE" in codes(relu_small) and acc(relu_small) <= 0.55


def test_batch_norm_trains_where_the_same_rate_diverges_without_it(tmp_path):
    bn = train(tmp_path, "08-normalization/batchnorm_lr.yaml")
    plain = train(tmp_path, "08-normalization/batchnorm_lr.yaml", "model.norm=none")
    slow = train(tmp_path, "08-normalization/batchnorm_lr.yaml", "model.norm=none", "optimizer.lr=0.05")
    assert bn["status"] == "completed" and acc(bn) > 0.95
    assert plain["status"] == "diverged" and "LR_TOO_LARGE" in codes(plain)
    assert acc(slow) > 0.95


def test_layer_and_group_norm_and_the_refused_instance_norm(tmp_path):
    assert acc(train(tmp_path, "08-normalization/layer_group.yaml")) > 0.95
    assert acc(train(tmp_path, "08-normalization/layer_group.yaml", "model.norm=group",
                     "model.norm_options={groups: 8}")) > 0.95
    with pytest.raises(ConfigError, match="instance norm"):
        load_spec(LESSONS / "08-normalization/layer_group.yaml",
                  ["model.norm=group", "model.norm_options={groups: 64}"])


def test_batch_stochastic_and_minibatch_all_learn_with_their_step_counts(tmp_path):
    import csv

    for sets, steps in (([], 320), (["train.gd=batch"], 40), (["train.gd=stochastic", "optimizer.lr=0.005"], 9600)):
        s = train(tmp_path, "09-gradient-descent/variants.yaml", *sets)
        assert acc(s) >= 0.88, sets
        logged = list(csv.DictReader(open(Path(s["run_dir"]) / "steps.csv")))
        assert len(logged) == steps, sets


def test_learning_rate_too_small_right_too_large_and_stopping(tmp_path):
    lesson = "09-gradient-descent/learning_rate.yaml"
    small = train(tmp_path, lesson, "optimizer.lr=0.0001")
    right = train(tmp_path, lesson)
    large = train(tmp_path, lesson, "optimizer.lr=5")
    stop = train(tmp_path, lesson, "train.stop_at_loss=0.3")
    assert codes(small) == {"LR_TOO_SMALL"} and acc(small) < acc(right)
    assert acc(right) > 0.9 and not codes(right)
    assert "LR_TOO_LARGE" in codes(large) and acc(large) <= 0.55
    assert stop["status"] == "stopped_at_loss" and stop["epochs_run"] < 40 and stop["final"]["train_loss"] <= 0.3
