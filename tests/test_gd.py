"""nnctl gd: exact gradients, the course notes' three learning rates, exact facts on x^2, linreg's three
variants, the JSON document, 80 columns, the plot, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.gd import FUNCTIONS, LINREG_X, LINREG_Y, gd

X_STAR = -1.1105105  # 2x + 5 cos x = 0


def invoke(*args):
    return CliRunner().invoke(app, ["gd", *args])


@pytest.mark.parametrize("name", FUNCTIONS.names())
def test_gradient_matches_central_differences(name):
    fn, h = FUNCTIONS.entry(name), 1e-6
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = np.array(fn.x0) + rng.normal(0, 1, fn.dim)
        numeric = np.array([(fn.f(x + h * e) - fn.f(x - h * e)) / (2 * h) for e in np.eye(fn.dim)])
        np.testing.assert_allclose(fn.grad(x), numeric, rtol=1e-6, atol=1e-6, err_msg=f"{name} at {x}")
    if fn.grad_rows is not None:  # the row gradient used by stochastic steps, on a few rows
        rows = np.array([3, 7])

        def f_rows(v):
            return np.mean((v[0] * LINREG_X[rows] + v[1] - LINREG_Y[rows]) ** 2)

        numeric = np.array([(f_rows(x + h * e) - f_rows(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(fn.grad_rows(x, rows), numeric, rtol=1e-6, atol=1e-6)


def test_the_notes_example_small_right_and_large_rate():
    result = gd("x^2+5sin(x)")
    small, good, large = result["runs"]
    assert [r["lr"] for r in result["runs"]] == [0.01, 0.1, 0.35]
    # too small: still crawling after the default 50 steps, less than a third of the way to x*
    assert small["stopped"] == "max_steps" and small["steps"] == 50
    assert np.all(np.diff(np.ravel(small["x"])) < 0)  # every step the same way
    assert abs(small["x"][-1][0] - small["x"][0][0]) < abs(X_STAR - small["x"][0][0]) / 3
    # right: converges to the minimum with |f'| below tol
    assert good["stopped"] == "converged" and good["steps"] < 50
    assert abs(good["x"][-1][0] - X_STAR) < 1e-5 and abs(good["grad"][-1][0]) < 1e-6
    # too large: x_k lands on alternate sides of x* from step 2 on, and never gets close
    side = np.sign(np.ravel(large["x"])[2:] - X_STAR)
    assert np.all(side[1:] == -side[:-1])
    assert large["stopped"] == "max_steps" and np.min(np.abs(np.ravel(large["x"])[10:] - X_STAR)) > 0.5


def test_x_squared_exact_facts():
    lr1, lr11 = gd("x^2", lrs=[1.0, 1.1], x0=[3.0], steps=60)["runs"]
    assert [x[0] for x in lr1["x"]] == [3.0 * (-1) ** k for k in range(61)]  # x <- -x, exactly
    assert lr1["stopped"] == "max_steps"
    assert lr11["stopped"] == "diverged"
    xs = np.ravel(lr11["x"])
    np.testing.assert_allclose(xs[1:] / xs[:-1], -1.2)  # x <- (1 - 2 lr) x = -1.2 x
    assert gd("x^2", lrs=[0.5], x0=[3.0])["runs"][0]["steps"] == 1  # one step to 0 exactly


def test_linreg_stochastic_is_noisier_and_all_reach_least_squares():
    result = gd("linreg", steps=400)
    A = np.column_stack([LINREG_X, np.ones_like(LINREG_X)])
    best = np.linalg.lstsq(A, LINREG_Y, rcond=None)[0]
    np.testing.assert_allclose(result["minimum"], best)
    runs = {r["gd"]: r for r in result["runs"]}
    assert [runs[v]["batch_size"] for v in ("batch", "stochastic", "minibatch")] == [20, 1, 5]
    for r in runs.values():
        assert np.linalg.norm(np.array(r["x"][-1]) - best) < 0.25, (r["gd"], r["x"][-1])

    def ups(r):  # times the full loss went up: batch descent never goes up at this rate
        return int(np.sum(np.diff(r["f"]) > 0))

    assert ups(runs["batch"]) == 0
    assert ups(runs["stochastic"]) > ups(runs["minibatch"]) > 20
    assert np.linalg.norm(np.array(runs["batch"]["x"][-1]) - best) < 1e-5


def test_seed_fixes_the_stochastic_path():
    a, b, c = (gd("linreg", variants=("stochastic",), seed=s)["runs"][0]["x"] for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_json_document_is_strict_and_has_design_shape():
    r = invoke("x^2", "--lr", "0.1,1.1", "--steps", "200", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-strict token {c}"))
    assert set(doc) == {"function", "runs"} and doc["function"] == "x^2"
    for run in doc["runs"]:
        assert set(run) == {"lr", "x", "f", "grad", "stopped"}
        assert len(run["x"]) == len(run["f"]) == len(run["grad"])
        assert all(isinstance(v, float) for v in run["x"])
    assert [run["stopped"] for run in doc["runs"]] == ["converged", "diverged"]
    two = json.loads(invoke("bowl", "--steps", "3", "--json").stdout)
    assert all(len(x) == 2 for x in two["runs"][0]["x"])
    lin = json.loads(invoke("linreg", "--gd", "stochastic", "--steps", "3", "--json").stdout)["runs"]
    assert [(run["gd"], run["batch_size"]) for run in lin] == [("stochastic", 1)]


def test_json_overflow_is_null_not_infinity():
    r = invoke("x^2", "--lr", "1e200", "--json")
    assert r.exit_code == 0 and "Infinity" not in r.stdout and "NaN" not in r.stdout
    run = json.loads(r.stdout)["runs"][0]
    assert run["stopped"] == "diverged" and run["f"][-1] is None


@pytest.mark.parametrize("args", [["x^2+5*sin(x)"], ["bowl"], ["linreg"], ["rosenbrock"], ["x2", "--every", "7"]])
def test_human_output_fits_80_columns(args):
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert max(map(len, r.stdout.splitlines())) <= 80
    assert "converged" in invoke("x^2+5sin(x)").stdout


def test_long_run_is_cut_with_a_note_and_every_shows_steps():
    out = invoke("x^2+5sin(x)", "--lr", "0.01").stdout
    assert "steps not shown" in out and "\n    49 " in out and "\n    20 " not in out
    out = invoke("x^2+5sin(x)", "--lr", "0.01", "--every", "10").stdout
    assert "\n    20 " in out and "\n    21 " not in out and "\n    50 " in out


def test_plot_is_a_png(tmp_path):
    for name in ("x^2+5sin(x)", "linreg"):
        out = tmp_path / "p.png"
        r = invoke(name, "--plot", str(out), "--steps", "30")
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["x^3"], "unknown function 'x^3' (did you mean 'x^2'?)"),
    (["x^2", "--lr", "0"], "--lr: every learning rate must be a finite number > 0; got 0"),
    (["x^2", "--lr", "-0.1"], "got -0.1"),
    (["x^2", "--lr", "fast"], "--lr: expected numbers separated by commas"),
    (["x^2", "--lr", ",".join(["0.1"] * 9)], "give 1 to 8 learning rates; got 9"),
    (["x^2", "--steps", "0"], "--steps must be an integer from 1 to 100000; got 0"),
    (["x^2", "--steps", "100001"], "got 100001"),
    (["x^2", "--x0", "1,2"], "--x0: x^2 is a function of 1 variable; give one number; got 2 numbers"),
    (["bowl", "--x0", "1"], "bowl is a function of 2 variables; give 2 numbers (x, y)"),
    (["bowl", "--x0", "nan,1"], "--x0: every coordinate must be a finite number"),
    (["bowl", "--gd", "stochastic"], "--gd: bowl has no data rows"),
    (["linreg", "--gd", "stochastik"], "unknown variant 'stochastik' (did you mean 'stochastic'?)"),
    (["linreg", "--batch-size", "21"], "--batch-size must be from 1 to 20"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert r.stdout == ""


def test_negative_x0_and_aliases():
    r = invoke("X^2 + 5 sin(x)", "--x0", "-4", "--json")
    doc = json.loads(r.stdout)
    assert doc["function"] == "x^2+5sin(x)" and doc["runs"][0]["x"][0] == -4.0
