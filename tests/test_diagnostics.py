"""Health diagnostics and findings, explain, inspect, gradcheck and lr-find."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.diagnostics import CATALOGUE
from nnctl.nn.activations import ACTIVATIONS, Activation

ROOT = Path(__file__).resolve().parents[1]
MOONS = ROOT / "configs" / "moons.yaml"


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def train_json(tmp_path, *sets, config=MOONS):
    args = ["train", config, "--runs-dir", tmp_path, "-q", "--json"]
    for s in sets:
        args += ["--set", s]
    result = run(*args)
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout) if result.exit_code == 0 else None


def codes(summary):
    return {f["code"] for f in summary["findings"]}


def test_healthy_moons_run_has_no_findings(tmp_path):
    summary = train_json(tmp_path)
    assert summary["findings"] == []
    rows = list(csv.DictReader(open(Path(summary["run_dir"]) / "diagnostics.csv")))
    assert len(rows) == 61 * 3  # epochs (and epoch 0, the untrained network) x layers (2 hidden + output)
    assert list(rows[0]) == ["epoch", "layer", "units", "act_mean", "act_std", "dead_frac", "saturated_frac",
                             "grad_norm", "grad_rms", "update_ratio", "first_last_grad_ratio", "preact_std"]
    assert rows[0]["epoch"] == "0" and rows[0]["update_ratio"] == "nan"  # no update before training
    hidden = [r for r in rows if r["layer"] in ("1", "2")]
    assert all(0 <= float(r["dead_frac"]) < 0.5 for r in hidden)
    assert all(r["saturated_frac"] == "" for r in hidden)  # relu has no bounds
    assert all(float(r["update_ratio"]) > 0 for r in rows if r["epoch"] != "0")


def test_negative_bias_kills_relus(tmp_path):
    summary = train_json(tmp_path, "model.bias_init=-3", "train.epochs=5")
    dead = [f for f in summary["findings"] if f["code"] == "DEAD_RELU"]
    assert dead and all("dead" in f["message"] and f["evidence"]["dead_frac"] >= 0.5 for f in dead)
    assert "SYMMETRY" not in codes(summary)  # dead units look alike but are not symmetric


def test_deep_sigmoid_with_he_init_saturates(tmp_path):
    summary = train_json(tmp_path, "model.hidden=[32,32,32,32]", "model.activation=sigmoid",
                         "model.init=he_normal", "optimizer.lr=0.05", "train.epochs=6")
    assert {"HE_INIT_SATURATING", "SATURATED"} <= codes(summary)


def test_deep_sigmoid_gradients_vanish(tmp_path):
    summary = train_json(tmp_path, "model.hidden=[32,32,32,32,32,32]", "model.activation=sigmoid",
                         "optimizer.name=sgd", "optimizer.lr=0.01", "train.epochs=10")
    assert "VANISHING_GRAD" in codes(summary)


def test_zeros_init_reports_symmetry(tmp_path):
    summary = train_json(tmp_path, "model.init=zeros", "model.activation=tanh", "train.epochs=3")
    assert {"ZEROS_INIT", "SYMMETRY"} <= codes(summary)


def test_learning_rate_findings(tmp_path):
    assert "LR_TOO_SMALL" in codes(train_json(tmp_path, "optimizer.lr=1e-6", "train.epochs=12"))
    big = train_json(tmp_path, "optimizer.lr=0.5", "train.epochs=15")
    assert {"ADAM_HIGH_LR", "LR_TOO_LARGE"} <= codes(big)


def test_bad_initial_loss(tmp_path):
    summary = train_json(tmp_path, "model.init=normal", "model.init_std=3", "train.epochs=1")
    f = [f for f in summary["findings"] if f["code"] == "BAD_INIT_LOSS"]
    assert f and "expected about 0.693" in f[0]["message"]


def test_findings_are_printed_once_during_training(tmp_path):
    result = run("train", MOONS, "--runs-dir", tmp_path, "--set", "model.bias_init=-3", "--set", "train.epochs=5")
    assert result.exit_code == 0
    assert result.stderr.count("DEAD_RELU (epoch") == 2  # two layers, once each
    assert "nnctl explain DEAD_RELU" in result.stderr


def test_diagnostics_can_be_turned_off(tmp_path):
    summary = train_json(tmp_path, "train.diagnostics=false", "train.epochs=2")
    assert not (Path(summary["run_dir"]) / "diagnostics.csv").exists()
    out = run("inspect", summary["run_dir"])
    assert out.exit_code == 2 and "no diagnostics.csv" in out.stderr


def test_inspect_table_json_and_plot(tmp_path):
    summary = train_json(tmp_path, "model.bias_init=-3", "train.epochs=8")
    out = run("inspect", summary["run_dir"], "--plot", tmp_path / "health.png")
    assert out.exit_code == 0
    assert "DEAD_RELU" in out.stdout and "layer health" in out.stdout
    assert (tmp_path / "health.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(run("inspect", summary["run_dir"], "--json").stdout)
    epochs = {r["epoch"] for r in doc["rows"]}
    assert epochs <= set(range(0, 9)) and 0 in epochs and 8 in epochs and len(epochs) == 6


def test_explain_every_code_and_unknown():
    listing = run("explain").stdout
    for code, concept in CATALOGUE.items():
        assert code in listing
        out = run("explain", code.lower())
        assert out.exit_code == 0 and concept.title in out.stdout and "What to try" in out.stdout
    out = run("explain", "DEAD_RELUU")
    assert out.exit_code == 2 and "did you mean 'DEAD_RELU'" in out.stderr


# ------------------------------------------------------------------------------------ gradcheck
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_gradcheck_passes_on_every_example(config):
    out = run("gradcheck", config, "--json", "--rows", "6")
    assert out.exit_code == 0, out.stdout
    doc = json.loads(out.stdout)
    assert doc["passed"] and all(t["rel_error"] < 1e-5 for t in doc["tensors"])


@pytest.fixture
def broken_activation():
    @ACTIVATIONS.register("broken_tanh")
    class BrokenTanh(Activation):
        """tanh with a wrong derivative (1 - A instead of 1 - A^2): gradcheck must catch it."""

        bounds = (-1.0, 1.0)

        def forward(self, Z, out=None):
            return np.tanh(Z, out=out)

        def backward(self, Z, A, dA, out=None):
            return np.multiply(dA, 1 - A, out=out)

    yield "broken_tanh"
    del ACTIVATIONS._entries["broken_tanh"]


def test_gradcheck_fails_on_a_broken_backward(broken_activation):
    out = run("gradcheck", MOONS, "--set", f"model.activation={broken_activation}")
    assert out.exit_code == 1
    assert "FAIL" in out.stdout and "failed" in out.stdout


# ------------------------------------------------------------------------------------ lr-find
def test_lr_find_on_moons_suggests_a_sane_rate(tmp_path):
    out = run("lr-find", MOONS, "--json", "--plot", tmp_path / "lr.png")
    assert out.exit_code == 0
    doc = json.loads(out.stdout)
    assert 1e-4 <= doc["suggestion"] <= 0.1, doc["suggestion"]
    assert doc["suggestion"] < doc["min_loss_lr"]
    assert (tmp_path / "lr.png").exists()
    table = run("lr-find", MOONS, "--steps", "40").stdout
    assert "suggested lr" in table and "--set optimizer.lr=" in table
    bad = run("lr-find", MOONS, "--start", "1", "--end", "0.1")
    assert bad.exit_code == 2


@pytest.mark.parametrize("sets", [
    ["model.hidden=[12, 8, 6]", "model.activation=relu"],
    ["model.hidden=null", "model.layers=[{units: 10, activation: sigmoid}, {units: 7, activation: relu}, "
     "{units: 5, activation: tanh}]"],
    ["model.activation=maxout", "model.hidden=[6, 4]"],
    ["model.dropout=0.2", "model.norm=batch", "model.activation=tanh"],
    ["train.dtype=float32", "model.activation=elu"],
])
def test_probe_rows_equal_plain_numpy_statistics(sets):
    """Every number the probe writes equals its textbook definition computed directly with NumPy on
    the probe batch: activations in inference mode, gradients in training mode (frozen batch norm,
    the probe's fixed dropout masks)."""
    from nnctl.build import prepare
    from nnctl.config.load import load_spec
    from nnctl.probe import SATURATION_MARGIN, Probe

    spec = load_spec(MOONS, sets)
    p = prepare(spec)
    model = p.model
    probe = Probe(model, p.X["train"], p.Y["train"], np.random.default_rng(3))
    probe.epoch_start()
    model.params.theta[...] += 0.01 * np.random.default_rng(4).standard_normal(model.params.theta.shape)
    rows = probe.epoch_end(1)

    X = probe.X
    hidden = model.forward(X)[1].hidden
    model.loss_and_grad(X, probe.Y, rng=np.random.default_rng(probe.seed), update_stats=False)
    spread = X.astype(np.float64).std(axis=0).mean()
    norms = []
    assert len(rows) == len(model.layers)
    for i, (row, layer) in enumerate(zip(rows, model.layers)):
        g = model.params.grad[model.params.slices[layer.W]].astype(np.float64)
        w1 = model.params.theta[model.params.slices[layer.W]].astype(np.float64)
        w0 = probe.start[model.params.slices[layer.W]].astype(np.float64)
        norms.append(np.linalg.norm(g))
        assert row["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-12)
        assert row["grad_rms"] == pytest.approx(np.linalg.norm(g) / np.sqrt(g.size), rel=1e-12)
        assert row["update_ratio"] == pytest.approx(np.linalg.norm(w1 - w0) / np.linalg.norm(w0), rel=1e-12)
        if i == len(model.hidden):
            assert "act_mean" not in row
            continue
        H, Z = hidden[i].H.astype(np.float64), hidden[i].Z.astype(np.float64)
        assert row["act_mean"] == pytest.approx(H.mean(), rel=1e-12, abs=1e-15)
        assert row["act_std"] == pytest.approx(H.std(), rel=1e-12)
        assert row["preact_std"] == pytest.approx(Z.std(), rel=1e-12)
        assert row["_unit_std"] == pytest.approx(H.std(axis=0).mean(), rel=1e-12)
        assert row["_gain"] == pytest.approx(Z.std(axis=0).mean() / spread, rel=1e-12)
        spread = H.std(axis=0).mean()
        if layer.activation.can_die:
            assert row["dead_frac"] == np.mean(np.all(hidden[i].Z <= 0, axis=0))
        else:
            assert "dead_frac" not in row
        if layer.activation.bounds is not None:
            lo, hi = layer.activation.bounds
            assert row["saturated_frac"] == np.mean((H <= lo + SATURATION_MARGIN) | (H >= hi - SATURATION_MARGIN))
    for row in rows:
        assert row["first_last_grad_ratio"] == pytest.approx(norms[0] / norms[-1], rel=1e-12)


@pytest.mark.parametrize("sets", [[], ["model.norm=layer", "model.hidden=[8,6,4]"], ["model.activation=maxout"]])
def test_probe_weight_sums_of_all_layers_at_once_equal_one_layer_at_a_time(sets):
    """The probe sums every layer's weight block in one np.add.reduceat over the flat vector; the
    per-layer fallback (used if the blocks were not in ascending order) gives the same norms."""
    from nnctl.build import prepare
    from nnctl.config.load import load_spec
    from nnctl.probe import Probe

    p = prepare(load_spec(MOONS, sets))
    params = p.model.params
    probe = Probe(p.model, p.X["train"], p.Y["train"], np.random.default_rng(3))
    assert probe.w_bounds is not None  # nnctl's layouts ascend: the fast path is the one tested here
    probe.epoch_start()
    rng = np.random.default_rng(5)
    params.theta[...] += 0.01 * rng.standard_normal(params.theta.shape)
    params.grad[...] = rng.standard_normal(params.grad.shape)
    fast = probe._weight_sums()
    probe.w_bounds = None
    slow = probe._weight_sums()
    f64 = np.float64
    direct = [[float(np.sum(v[sl] ** 2)) for sl in probe.w_slices]
              for v in (params.grad.astype(f64), probe.start.astype(f64), params.theta.astype(f64) - probe.start)]
    for got in (fast, slow):
        for a, b in zip(got, direct):
            assert a == pytest.approx(b, rel=1e-12)
