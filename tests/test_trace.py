"""`nnctl trace`: the lecture's 2-3-3-1 sigmoid network traced through the CLI and checked against
backprop worked out by hand, element by element, in plain Python (no nnctl model, no NumPy matmul).

The network: 2 inputs, two hidden layers of 3 sigmoid units, one sigmoid output unit, mse loss
(the lecture's pairing, `train.loss: mse` on a 0/1 target), plain SGD with lr 0.5, float64. The
weights are given through `model.init_from`, the inputs through a CSV read with `preprocess: none`,
so every input to the trace is a number written below.

Conventions (DESIGN §4): rows are samples, Z = A_prev @ W + b, W of shape (fan_in, fan_out); the
loss J is the mean of (A3 - Y)^2 over the n * 1 elements.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app

TOL = dict(rtol=1e-12, atol=1e-15)
LR = 0.5

# the data file: 4 rows (2 per class: a class needs 2 training rows); val and test 0, so the training
# split is every row in file order and `--rows 2` traces the first two
ROWS = [(0.35, 0.9, 1), (-0.5, 0.2, 0), (0.1, -0.3, 1), (0.8, 0.4, 0)]
WEIGHTS = {
    "W1": [[0.1, 0.4, -0.3],
           [0.8, -0.6, 0.5]],
    "b1": [0.1, -0.2, 0.05],
    "W2": [[0.3, -0.5, 0.9],
           [0.2, 0.7, -0.1],
           [-0.4, 0.6, 0.35]],
    "b2": [0.0, 0.1, -0.1],
    "W3": [[0.3],
           [0.9],
           [-0.6]],
    "b3": [0.2],
}
CONFIG = f"""
name: lecture
seed: 0
data:
  source: data.csv
  target: y
  task: classification
  split: {{val: 0, test: 0}}
  preprocess: none
model:
  hidden: [3, 3]
  activation: sigmoid
  init_from: weights.npz
optimizer: {{name: sgd, lr: {LR}}}
train: {{loss: mse, dtype: float64, epochs: 1, gd: batch, shuffle: false}}
"""


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def lecture(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_text("x1,x2,y\n" + "".join(f"{a},{b},{y}\n" for a, b, y in ROWS))
    np.savez(tmp_path / "weights.npz", **{k: np.array(v, dtype=np.float64) for k, v in WEIGHTS.items()})
    cfg = tmp_path / "lecture.yaml"
    cfg.write_text(CONFIG)
    return cfg


# ------------------------------------------------------------------------------------ by hand
def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def dense(A_prev: list[list[float]], W: list[list[float]], b: list[float]) -> list[list[float]]:
    """Z[r][j] = sum_i A_prev[r][i] W[i][j] + b[j]."""
    return [[sum(row[i] * W[i][j] for i in range(len(W))) + b[j] for j in range(len(b))] for row in A_prev]


def hand_step(X, y, P):
    """One forward pass, backward pass and SGD step of the 2-3-3-1 sigmoid net, written out."""
    n = len(X)
    Z1 = dense(X, P["W1"], P["b1"])
    A1 = [[sigmoid(z) for z in row] for row in Z1]
    Z2 = dense(A1, P["W2"], P["b2"])
    A2 = [[sigmoid(z) for z in row] for row in Z2]
    Z3 = dense(A2, P["W3"], P["b3"])
    A3 = [[sigmoid(z) for z in row] for row in Z3]  # the probability of class 1
    J = sum((A3[r][0] - y[r]) ** 2 for r in range(n)) / (n * 1)  # mean over n rows x 1 unit
    # output: dJ/dA3 = 2 (A3 - y) / (n k); the sigmoid's derivative is A3 (1 - A3)
    dZ3 = [[2.0 * (A3[r][0] - y[r]) / (n * 1) * A3[r][0] * (1.0 - A3[r][0])] for r in range(n)]

    def back(dZ, W, A):
        """dZ of the layer below: (dZ @ W.T) * A (1 - A), element by element."""
        return [[sum(dZ[r][k] * W[j][k] for k in range(len(W[j]))) * A[r][j] * (1.0 - A[r][j])
                 for j in range(len(W))] for r in range(len(dZ))]

    def grad_W(A_prev, dZ):
        """dW[i][j] = sum over rows of A_prev[r][i] dZ[r][j] (A_prev.T @ dZ)."""
        return [[sum(A_prev[r][i] * dZ[r][j] for r in range(n)) for j in range(len(dZ[0]))]
                for i in range(len(A_prev[0]))]

    def grad_b(dZ):
        return [sum(dZ[r][j] for r in range(n)) for j in range(len(dZ[0]))]

    dZ2 = back(dZ3, P["W3"], A2)  # uses W3 before the update
    dZ1 = back(dZ2, P["W2"], A1)
    grads = {"W3": grad_W(A2, dZ3), "b3": grad_b(dZ3), "W2": grad_W(A1, dZ2), "b2": grad_b(dZ2),
             "W1": grad_W(X, dZ1), "b1": grad_b(dZ1)}
    after = {}
    for key, value in P.items():  # SGD: P <- P - lr dP
        g = grads[key]
        after[key] = ([[w - LR * d for w, d in zip(wr, dr)] for wr, dr in zip(value, g)] if key[0] == "W"
                      else [w - LR * d for w, d in zip(value, g)])
    return {"forward": [(Z1, A1), (Z2, A2), (Z3, A3)], "loss": J,
            "backward": [(dZ3, grads["W3"], grads["b3"]), (dZ2, grads["W2"], grads["b2"]),
                         (dZ1, grads["W1"], grads["b1"])], "params_after": after}


def check_step(got: dict, want: dict) -> None:
    for f, (Z, A) in zip(got["forward"], want["forward"]):
        np.testing.assert_allclose(f["Z"], Z, **TOL, err_msg=f"Z{f['layer']}")
        np.testing.assert_allclose(f["A"], A, **TOL, err_msg=f"A{f['layer']}")
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-12)
    for b, (dZ, dW, db) in zip(got["backward"], want["backward"]):
        np.testing.assert_allclose(b["dZ"], dZ, **TOL, err_msg=f"dZ{b['layer']}")
        np.testing.assert_allclose(b["dW"], dW, **TOL, err_msg=f"dW{b['layer']}")
        np.testing.assert_allclose(b["db"], db, **TOL, err_msg=f"db{b['layer']}")
    assert list(got["params_after"]) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for key, value in want["params_after"].items():
        np.testing.assert_allclose(got["params_after"][key], value, **TOL, err_msg=key)


def trace_json(cfg: Path, *args) -> dict:
    out = run("trace", cfg, "--json", *args)
    assert out.exit_code == 0, (out.stdout, out.stderr)

    def refuse(token):
        raise AssertionError(f"not strict JSON: {token}")

    return json.loads(out.stdout, parse_constant=refuse)


# ------------------------------------------------------------------------------------ the tests
def test_lecture_network_matches_backprop_by_hand(lecture):
    doc = trace_json(lecture, "--rows", "2", "--steps", "2")
    X = [list(r[:2]) for r in ROWS[:2]]
    y = [r[2] for r in ROWS[:2]]
    first = hand_step(X, y, WEIGHTS)
    second = hand_step(X, y, first["params_after"])  # step 2: the same batch, the updated weights
    check_step(doc["steps"][0], first)
    check_step(doc["steps"][1], second)
    assert second["loss"] < first["loss"]
    # a few of the numbers, to re-derive with a calculator: Z1 row 1 = 0.35 * W1[0] + 0.9 * W1[1] + b1
    assert first["forward"][0][0][0] == pytest.approx([0.855, -0.6, 0.395], rel=1e-12)
    # A1 row 1 = sigmoid(Z1) = (0.701615, 0.354344, 0.597486), ..., A3 = (0.617933, 0.625739) for y = (1, 0):
    # J = ((0.617933 - 1)^2 + (0.625739 - 0)^2) / 2 = 0.268762
    np.testing.assert_allclose(first["forward"][2][1], [[0.6179332949824], [0.6257385340564]], rtol=1e-12)
    assert first["loss"] == pytest.approx(0.268761840043, rel=1e-11)


def test_the_check_fails_when_backprop_is_wrong(lecture, monkeypatch):
    """Drop the sigmoid's derivative from the output gradient: the hand check must notice."""
    from nnctl.nn.losses import ProbabilityMSE

    def wrong(self, Z, Y):
        P = self.output(Z)
        return float(np.mean((P - Y) ** 2)), 2.0 * (P - Y) / Z.size

    monkeypatch.setattr(ProbabilityMSE, "value_and_grad", wrong)
    doc = trace_json(lecture)
    want = hand_step([list(r[:2]) for r in ROWS[:2]], [r[2] for r in ROWS[:2]], WEIGHTS)
    with pytest.raises(AssertionError, match="dZ3"):
        check_step(doc["steps"][0], want)


def test_json_has_the_design_shape(lecture):
    doc = trace_json(lecture, "--steps", "3")
    assert list(doc) == ["steps"] and [s["step"] for s in doc["steps"]] == [1, 2, 3]
    widths = {1: 3, 2: 3, 3: 1}
    fan_in = {1: 2, 2: 3, 3: 3}
    for s in doc["steps"]:
        assert list(s) == ["step", "forward", "loss", "backward", "params_after"]
        assert [f["layer"] for f in s["forward"]] == [1, 2, 3]
        assert [b["layer"] for b in s["backward"]] == [3, 2, 1]
        assert isinstance(s["loss"], float)
        for f in s["forward"]:
            assert list(f) == ["layer", "Z", "A"]
            assert np.shape(f["Z"]) == np.shape(f["A"]) == (2, widths[f["layer"]])  # rows are samples
        for b in s["backward"]:
            assert list(b) == ["layer", "dZ", "dW", "db"]
            assert np.shape(b["dZ"]) == (2, widths[b["layer"]])
            assert np.shape(b["dW"]) == (fan_in[b["layer"]], widths[b["layer"]])  # (fan_in, fan_out)
            assert np.shape(b["db"]) == (widths[b["layer"]],)
        assert {k: np.shape(v) for k, v in s["params_after"].items()} == {
            "W1": (2, 3), "b1": (3,), "W2": (3, 3), "b2": (3,), "W3": (3, 1), "b3": (1,)}


def test_human_output_fits_80_columns_and_shows_the_numbers(lecture):
    out = run("trace", lecture)
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    text = out.stdout
    for header in ("Z1 (2, 3) = X @ W1 + b1", "A2 (2, 3) = sigmoid(Z2)", "Z3 (2, 1) = A2 @ W3 + b3",
                   "dZ3 (2, 1) = 2 (A3 - Y) * A3 (1 - A3) / (n k)", "dW2 (3, 3) = A1.T @ dZ2",
                   "db1 (3,) = dZ1 summed over the rows", "W3 (3, 1)", "rows 0, 1 of the data",
                   "from model.init_from"):
        assert header in text, header
    want = hand_step([list(r[:2]) for r in ROWS[:2]], [r[2] for r in ROWS[:2]], WEIGHTS)
    A3 = want["forward"][2][1]
    i = lines.index(next(line for line in lines if line.startswith("A3 (2, 1)")))
    assert [float(v) for v in lines[i + 1].split() + lines[i + 2].split()] == \
        [float(f"{A3[0][0]:.6g}"), float(f"{A3[1][0]:.6g}")]  # 6 significant digits, one row a line
    assert f"J = {want['loss']:.10g}" in text
    # the mse-for-classification note goes to stderr, never into the trace
    assert "MSE_CLASSIFICATION" in out.stderr and "MSE_CLASSIFICATION" not in out.stdout


def test_trace_step_is_the_training_step(lecture, tmp_path):
    """One epoch of `nnctl train` on the 4 rows (gd: batch) ends where a 1-step trace of them does."""
    doc = trace_json(lecture, "--rows", "4")
    out = run("train", lecture, "--runs-dir", tmp_path / "runs", "--quiet")
    assert out.exit_code == 0, out.stderr
    with np.load(Path(out.stdout.strip().splitlines()[-1]) / "weights.npz") as w:
        for key, value in doc["steps"][0]["params_after"].items():
            np.testing.assert_allclose(w[key], value, rtol=1e-12, atol=1e-15, err_msg=key)


def test_dropout_and_batch_norm_are_traced_in_training_mode(tmp_path):
    """With norms and dropout the backprop identities still hold for what is printed:
    dW = A_prev.T @ dZ, db = sum of dZ (Z is shown before the norm)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: 'sklearn:xor'}\nmodel: {hidden: [4, 3], norm: batch, dropout: 0.3}\n"
                   "train: {dtype: float64}\noptimizer: {name: sgd, lr: 0.1}\n")
    doc = trace_json(cfg, "--rows", "4")
    s = doc["steps"][0]
    A = {f["layer"]: np.array(f["A"]) for f in s["forward"]}
    assert (A[1] == 0).any()  # some units dropped: a training step, dropout on
    for b in s["backward"]:
        l = b["layer"]
        A_prev = A[l - 1] if l > 1 else None
        if A_prev is not None:
            np.testing.assert_allclose(b["dW"], A_prev.T @ np.array(b["dZ"]), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(b["db"], np.sum(b["dZ"], axis=0), rtol=1e-10, atol=1e-14)
    text = run("trace", cfg, "--rows", "4").stdout
    assert "(before batch norm)" in text and "dropout" in text and "dgamma1" in text


@pytest.mark.parametrize("args,message", [
    (["--rows", "0"], "--rows must be 1 to 16"),
    (["--steps", "21"], "--steps must be 1 to 20"),
    (["--set", "model.hidden=[64]"], "model layer 1 has 64 units"),
    (["--set", "model.norm=batch", "--rows", "1"], "batch norm needs at least 2 rows"),
    (["--set", "optimizer.lr=-1"], "optimizer.lr must be a number > 0"),
])
def test_bad_input_is_one_line_exit_2(lecture, args, message):
    out = run("trace", lecture, *args)
    assert out.exit_code == 2, (out.stdout, out.stderr)
    assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stdout + out.stderr and out.stdout == ""


def test_wrong_weights_file_and_too_many_inputs(lecture, tmp_path):
    np.savez(tmp_path / "weights.npz", **{**{k: np.array(v) for k, v in WEIGHTS.items()}, "W2": np.zeros((3, 2))})
    out = run("trace", lecture)
    assert out.exit_code == 2 and "key 'W2' has shape (3, 2); this model needs (3, 3)" in out.stderr
    out = run("trace", Path(__file__).resolve().parents[1] / "configs" / "digits.yaml", "--set", "model.hidden=[4]")
    assert out.exit_code == 2 and "64 inputs after preprocessing" in out.stderr


def test_a_diverging_trace_stops_like_training_and_exits_1():
    sine = Path(__file__).resolve().parents[1] / "configs" / "sine.yaml"
    out = run("trace", sine, "--json", "--steps", "5", "--set", "model.hidden=[3]", "--set", "optimizer.name=sgd",
              "--set", "optimizer.lr=1e30")
    assert out.exit_code == 1 and "not finite" in out.stderr and "Traceback" not in out.stderr
    doc = json.loads(out.stdout, parse_constant=lambda token: pytest.fail(f"not strict JSON: {token}"))
    last = doc["steps"][-1]
    assert len(doc["steps"]) < 5
    assert last["loss"] is None or None in np.ravel(last["params_after"]["W1"]).tolist() \
        or None in np.ravel(last["backward"][-1]["dW"]).tolist()
