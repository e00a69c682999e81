"""`nnctl train` end to end through the CLI: run-dir files, overrides, JSON, exit codes, bad input."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnctl.cli import app

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def train(tmp_path: Path, config, *args: str, expect: int = 0):
    result = run("train", config, "--runs-dir", tmp_path / "runs", "--quiet", *args)
    assert result.exit_code == expect, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def run_dir(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


MOONS = """
data:
  source: sklearn:moons
  options: {n_samples: 200, noise: 0.2}
model: {hidden: [8]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 3}
"""


def load_weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------------------------ happy paths
@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_example_config_trains(tmp_path, config):
    result = train(tmp_path, config, "--set", "train.epochs=2")
    summary = json.loads((run_dir(result) / "summary.json").read_text())
    assert summary["status"] in ("completed", "early_stopped")
    assert summary["epochs_run"] == 2


def test_run_dir_files_and_columns(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    path = run_dir(train(tmp_path, cfg))
    assert path.parent == tmp_path / "runs"
    assert path.name.startswith("moons-")
    for name in ("config.yaml", "metrics.csv", "summary.json", "weights.npz", "preprocess.npz", "split.npz"):
        assert (path / name).is_file(), name
    rows = list(csv.DictReader((path / "metrics.csv").open()))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr",
                             "epoch_time_s"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    summary = json.loads((path / "summary.json").read_text())
    for key in ("status", "best", "final", "epochs_run", "wall_time_s", "n_params", "seed", "versions", "command"):
        assert key in summary, key
    assert summary["status"] == "completed"
    assert summary["n_params"] == 2 * 8 + 8 + 8 + 1  # binary: ONE output unit
    assert {"python", "numpy", "nnctl"} <= set(summary["versions"])
    w = load_weights(path)
    assert sorted(w) == ["W1", "W2", "b1", "b2"]
    assert w["W1"].shape == (2, 8) and w["W2"].shape == (8, 1) and w["b2"].shape == (1,)
    assert w["W1"].dtype == np.float32
    with np.load(path / "split.npz", allow_pickle=False) as z:
        parts = [z["train"], z["val"], z["test"]]
        assert sum(len(p) for p in parts) == 200
        assert len(np.unique(np.concatenate(parts))) == 200
        assert len(z["test"]) == 40 and len(z["val"]) == 40
        assert len(str(z["fingerprint"])) == 64
    with np.load(path / "preprocess.npz", allow_pickle=False) as z:
        assert list(z["classes"]) == ["0", "1"]
        assert str(z["method"]) == "standardize"


def test_regression_columns(tmp_path):
    cfg = write(tmp_path, "sine.yaml", "data: {source: 'sklearn:sine'}\ntrain: {epochs: 2}\n")
    path = run_dir(train(tmp_path, cfg))
    header = (path / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,train_r2,val_r2,train_mae,val_mae,lr,epoch_time_s"
    assert yaml.safe_load((path / "config.yaml").read_text())["train"]["loss"] == "mse"


def test_resolved_config_has_everything_and_reruns_identically(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    first = run_dir(train(tmp_path, cfg, "--set", "model.dropout=0.2"))
    resolved = yaml.safe_load((first / "config.yaml").read_text())
    assert resolved["model"]["init"] == "he_normal"  # auto resolved for relu
    assert resolved["optimizer"]["options"]["betas"] == [0.9, 0.999]
    assert resolved["train"]["loss"] == "bce"
    assert resolved["data"]["task"] == "classification"
    assert resolved["model"]["dropout"] == 0.2
    second = run_dir(train(tmp_path, first / "config.yaml"))
    a, b = load_weights(first), load_weights(second)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_same_seed_same_weights_and_seed_changes_them(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    runs = [run_dir(train(tmp_path, cfg, *args)) for args in ([], [], ["--seed", "1"])]
    w = [load_weights(r) for r in runs]
    for key in w[0]:
        np.testing.assert_array_equal(w[0][key], w[1][key])
    assert not np.array_equal(w[0]["W1"], w[2]["W1"])


def test_dropout_does_not_change_split_or_init(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    a = run_dir(train(tmp_path, cfg, "--set", "train.epochs=1", "--set", "optimizer.lr=1e-12"))
    b = run_dir(train(tmp_path, cfg, "--set", "train.epochs=1", "--set", "optimizer.lr=1e-12",
                      "--set", "model.dropout=0.5"))
    for part in ("train", "val", "test"):
        with np.load(a / "split.npz") as za, np.load(b / "split.npz") as zb:
            np.testing.assert_array_equal(za[part], zb[part])
    np.testing.assert_allclose(load_weights(a)["W1"], load_weights(b)["W1"], atol=1e-6)


def test_set_overrides_and_name(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    path = run_dir(train(tmp_path, cfg, "--set", "model.hidden=[5, 4]", "--set", "optimizer.lr=1e-3",
                         "--name", "tiny"))
    resolved = yaml.safe_load((path / "config.yaml").read_text())
    assert resolved["model"]["hidden"] == [5, 4]
    assert resolved["optimizer"]["lr"] == 0.001
    assert resolved["name"] == "tiny" and path.name.startswith("tiny-")
    assert load_weights(path)["W2"].shape == (5, 4)


def test_name_cannot_escape_runs_dir(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    path = run_dir(train(tmp_path, cfg, "--name", "../../etc/evil"))
    assert path.parent == tmp_path / "runs"


def test_json_output_is_one_document(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    result = train(tmp_path, cfg, "--json")
    doc = json.loads(result.stdout)
    assert doc["status"] == "completed"
    assert Path(doc["run_dir"]).is_dir()
    assert doc["final"]["epoch"] == 3


def test_layers_form_and_no_hidden_layers(tmp_path):
    cfg = write(tmp_path, "deep.yaml", MOONS.replace(
        "model: {hidden: [8]}",
        "model:\n  layers:\n    - {units: 6, activation: tanh, norm: batch}\n"
        "    - {units: 4, activation: maxout, activation_options: {pieces: 3}, dropout: 0.1}\n"))
    path = run_dir(train(tmp_path, cfg))
    w = load_weights(path)
    assert w["W2"].shape == (6, 12)  # maxout: units * pieces columns
    assert {"gamma1", "beta1", "running_mean1", "running_var1"} <= set(w)
    cfg = write(tmp_path, "logreg.yaml", MOONS.replace("model: {hidden: [8]}", "model: {hidden: []}"))
    w = load_weights(run_dir(train(tmp_path, cfg)))
    assert sorted(w) == ["W1", "b1"] and w["W1"].shape == (2, 1)


@pytest.mark.parametrize("gd,batch_size,steps", [("batch", 32, 1), ("stochastic", 32, 120),
                                                  ("minibatch", 32, 4), ("minibatch", 7, 18)])
def test_gd_variants_step_counts(tmp_path, gd, batch_size, steps):
    """Optimizer steps per epoch: batch 1, stochastic one per training row (120 of 200 rows with
    val and test 0.2), minibatch ceil(120 / batch_size); and float64 is honoured."""
    from nnctl.build import prepare
    from nnctl.config.load import load_spec
    from nnctl.training.loop import Trainer

    spec = load_spec(write(tmp_path, "moons.yaml", MOONS), ["train.epochs=2", f"train.gd={gd}",
                                                              f"train.batch_size={batch_size}", "train.dtype=float64"])
    trainer = Trainer(prepare(spec))
    counted = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda theta, grad, lr: (counted.append(theta.dtype), step(theta, grad, lr))
    trainer.fit()
    assert len(counted) == 2 * steps and trainer.optimizer.t == 2 * steps
    assert set(counted) == {np.dtype(np.float64)} and trainer.model.params.theta.dtype == np.float64


def test_init_from_warm_start(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    first = run_dir(train(tmp_path, cfg))
    second = run_dir(train(tmp_path, cfg, "--set", f"model.init_from={first / 'weights.npz'}",
                           "--set", "optimizer.lr=1e-12", "--set", "train.epochs=1"))
    np.testing.assert_allclose(load_weights(first)["W1"], load_weights(second)["W1"], atol=1e-6)


def test_diverged_run_exits_1_and_is_marked(tmp_path):
    cfg = write(tmp_path, "reg.yaml", "data: {source: 'sklearn:regression', options: {n_samples: 200}}\n"
                                      "optimizer: {name: sgd, lr: 1.0e+6}\ntrain: {epochs: 20}\n")
    result = train(tmp_path, cfg, expect=1)
    assert "diverged at epoch 1, step" in result.stderr and "Lower optimizer.lr" in result.stderr
    path = run_dir(result)
    text = (path / "summary.json").read_text()
    assert json.loads(text)["status"] == "diverged"
    def refuse(constant):
        raise AssertionError(f"summary.json holds the non-JSON literal {constant}")

    json.loads(text, parse_constant=refuse)  # strict JSON: no NaN or Infinity literals
    assert all(np.isfinite(v).all() for v in load_weights(path).values())  # the last finite weights


def test_help_teaches():
    result = run("train", "--help")
    assert result.exit_code == 0
    for word in ("--set", "--seed", "--runs-dir", "--json", "Example"):
        assert word in result.stdout


# ------------------------------------------------------------------------------------ bad input
BAD_CONFIGS = [
    ("data: {source: 'sklearn:moons'}\noptimzer: {lr: 0.1}\n", "line 2", "unknown key 'optimzer' (did you mean "
     "'optimizer'?)"),
    ("data: {source: 'sklearn:moons'}\nmodel:\n  hidden: [4]\n  hiden: [3]\n", "line 4", "did you mean 'hidden'"),
    ("data: {source: 'sklearn:moons'}\ntrain: {epochs: 3}\ntrain: {epochs: 4}\n", "line 3", "duplicate key"),
    ("data: {source: 'sklearn:moons'}\nmodel: {activation: no}\n", "line 2",
     "model.activation must be one of"),
    ("data: {source: 'sklearn:moons'}\noptimizer: {lr: -0.1}\n", "line 2", "optimizer.lr must be a number > 0"),
    ("data: {source: 'sklearn:moons'}\noptimizer: {lr: abc}\n", "line 2", "optimizer.lr must be a number"),
    ("data: {source: 'sklearn:mons'}\n", "line 1", "did you mean 'moons'"),
    ("data: {source: 'sklearn:moons', options: {n_sample: 3}}\n", "line 1", "did you mean 'n_samples'"),
    ("data: {source: 'sklearn:moons'}\nmodel: {hidden: [4], layers: [{units: 3}]}\n", "line 2",
     "sets both hidden and layers"),
    ("data: {source: 'sklearn:moons'}\nmodel: {layers: [{activation: tanh}]}\n", "line 2",
     "model.layers[0] needs the key 'units'"),
    ("data: {source: 'sklearn:moons'}\nmodel: {activation: leaky_relu, activation_options: {alpah: 0.1}}\n",
     "line 2", "did you mean 'alpha'"),
    ("data: {source: 'sklearn:moons'}\nmodel: {hidden: [6], norm: group}\n", "line 2",
     "4 groups do not divide 6 units"),
    ("data: {source: 'sklearn:moons'}\nmodel: {dropout: 1.0}\n", "line 2", "model.dropout must be a number >= 0 "
     "and < 1"),
    ("data: {source: 'sklearn:moons'}\noptimizer: {name: adam, options: {betas: [0.9]}}\n", "line 2",
     "betas must be a list of 2 numbers"),
    ("data: {source: 'sklearn:moons'}\noptimizer: {schedule: {name: step, step_sise: 3}}\n", "line 2",
     "did you mean 'step_size'"),
    ("data: {source: 'sklearn:moons'}\ntrain: {gd: stochastic}\nmodel: {norm: batch}\n", "line 2",
     "batch norm needs at least 2 rows"),
    ("data: {source: 'sklearn:moons'}\ntrain: {loss: mae}\n", "", "train.loss is mae, a regression loss"),
    ("data: {source: missing.csv}\n", "line 1", "file not found"),
    ("data: [1, 2]\n", "line 1", "data must be a mapping"),
    ("- just a list\n", "", "the config must be a mapping"),
    ("", "", "the config is empty"),
    ("data: {source: 'sklearn:moons'\n", "line", "expected ',' or '}'"),
    ("data: !!python/object:os.system {source: x}\n", "line 1", "unsupported tag"),
    ("seed: -1\ndata: {source: 'sklearn:moons'}\n", "line 1", "seed must be an integer >= 0"),
    ("data: {source: 'sklearn:moons'}\ntrain: {early_stopping: {monitor: val_r2}}\n", "",
     "val_r2, but this is a classification task"),
]


@pytest.mark.parametrize("text,where,message", BAD_CONFIGS, ids=[m for _, _, m in BAD_CONFIGS])
def test_bad_config_exits_2_with_a_clear_message(tmp_path, text, where, message):
    cfg = write(tmp_path, "bad.yaml", text)
    result = train(tmp_path, cfg, expect=2)
    err = result.stderr
    assert message in err, err
    assert where in err, err
    assert err.count("\n") == 1, f"one message, one line: {err!r}"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "no run dir for bad input"


def test_exponent_floats_are_numbers(tmp_path):
    cfg = write(tmp_path, "c.yaml", MOONS.replace("lr: 0.01", "lr: 1e-3"))
    path = run_dir(train(tmp_path, cfg))
    assert yaml.safe_load((path / "config.yaml").read_text())["optimizer"]["lr"] == 0.001


@pytest.mark.parametrize("override,message", [
    ("optimizer.lr", "expected KEY=VALUE"),
    ("optimizer.lr=-5", "--set optimizer.lr=-5: optimizer.lr must be a number > 0"),
    ("model.hiden=[3]", "unknown key 'model.hiden' (did you mean 'hidden'?)"),
    ("model.hidden=[3, x]", "model.hidden[1] must be an integer from 1 to 65536"),
    ("optimizer.lr=[1", "cannot parse value"),
    ("model..x=1", "not a dotted key path"),
])
def test_bad_set_exits_2(tmp_path, override, message):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    result = train(tmp_path, cfg, "--set", override, expect=2)
    assert message in result.stderr


def test_missing_config_file(tmp_path):
    result = train(tmp_path, tmp_path / "nope.yaml", expect=2)
    assert "nope.yaml: no such config file" in result.stderr


def test_bad_init_from_names_the_key(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    first = run_dir(train(tmp_path, cfg))
    result = train(tmp_path, cfg, "--set", "model.hidden=[5]", "--set", f"model.init_from={first}/weights.npz",
                   expect=2)
    assert "key 'W1' has shape (2, 8); this model needs (2, 5)" in result.stderr
    junk = write(tmp_path, "junk.npz", "not a zip")
    result = train(tmp_path, cfg, "--set", f"model.init_from={junk}", expect=2)
    assert "junk.npz: not a readable .npz" in result.stderr


# ------------------------------------------------------------------------------------ CSV input
IRIS_LIKE = "a,b,color,label\n" + "".join(
    f"{i % 7},{(i * 3) % 5},{['red', 'blue'][i % 2]},{['cat', 'dog', 'emu'][i % 3]}\n" for i in range(30))


def csv_config(tmp_path, csv_text, extra=""):
    write(tmp_path, "data.csv", csv_text)
    return write(tmp_path, "c.yaml", f"data: {{source: data.csv{extra}}}\ntrain: {{epochs: 2}}\n")


def test_csv_string_labels_and_one_hot(tmp_path):
    path = run_dir(train(tmp_path, csv_config(tmp_path, IRIS_LIKE)))
    with np.load(path / "preprocess.npz", allow_pickle=False) as z:
        assert list(z["classes"]) == ["cat", "dog", "emu"]
        assert list(z["feature_names"]) == ["a", "b", "color=blue", "color=red"]
    assert load_weights(path)["W1"].shape == (4, 16)


def test_csv_target_by_index_and_features(tmp_path):
    cfg = csv_config(tmp_path, IRIS_LIKE, ", target: 3, features: [a, 1]")
    path = run_dir(train(tmp_path, cfg))
    assert load_weights(path)["W1"].shape == (2, 16)


@pytest.mark.parametrize("csv_text,extra,message", [
    (IRIS_LIKE.replace("\n1,", "\n,", 1), "", "'a': 1 missing (first at line 3)"),
    (IRIS_LIKE.replace("\n2,1,red,emu", "\n2,1,red", 1), "", "line 4: expected 4 fields (as in the header), found 3"),
    (IRIS_LIKE, ", target: species", "no column 'species' for data.target"),
    (IRIS_LIKE.replace("\n2,1,", "\n2,x1,", 1), "", "line 4, column 'b': expected a number, found 'x1'"),
    ("a,b\n" + "".join(f"{i},1\n" for i in range(20)), "", "target column 'b' has the same value (1) in every row"),
    ("a,b\n1,0\n2,1\n3,0\n", "", "too few for data.split"),
    ("", "", "empty"),
])
def test_bad_csv_exits_2_naming_line_and_column(tmp_path, csv_text, extra, message):
    result = train(tmp_path, csv_config(tmp_path, csv_text, extra), expect=2)
    assert message in result.stderr, result.stderr
    assert "data.csv" in result.stderr


# ------------------------------------------------------------------------------------ schema, datasets
def test_schema_validates_every_example_config_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")
    from nnctl.config.yamlio import load_yaml

    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for config in CONFIGS:
        data, _ = load_yaml(config.read_text(), str(config))
        errors = [e.message for e in validator.iter_errors(data)]
        assert not errors, (config.name, errors)
    bad, _ = load_yaml("data: {source: 'sklearn:moons'}\noptimizer: {lr: -1, nmae: sgd}\n")
    assert len(list(validator.iter_errors(bad))) == 2


def test_datasets_lists_every_builtin():
    from nnctl.data.builtins import BUILTINS

    result = run("datasets", "--json")
    assert result.exit_code == 0
    assert set(json.loads(result.stdout)) == set(BUILTINS)
    table = run("datasets").stdout
    for name in BUILTINS:
        assert name in table


# ------------------------------------------------------------------------------------ review findings
def test_json_is_json_even_when_the_run_fails(tmp_path):
    cfg = write(tmp_path, "reg.yaml", "data: {source: 'sklearn:regression', options: {n_samples: 200}}\n"
                                      "optimizer: {name: sgd, lr: 1.0e+6}\ntrain: {epochs: 5}\n")
    result = train(tmp_path, cfg, "--json", expect=1)
    assert json.loads(result.stdout)["status"] == "diverged"


def test_filesystem_errors_exit_2_without_traceback(tmp_path):
    assert "cannot write" in run("schema", "-o", tmp_path / "no" / "dir" / "s.json").stderr
    cfg = write(tmp_path, "moons.yaml", MOONS)
    result = run("train", cfg, "--runs-dir", "/proc/nope", "-q")
    assert result.exit_code == 2 and "--runs-dir /proc/nope" in result.stderr
    f = write(tmp_path, "f", "hi")
    result = run("plot", f)
    assert result.exit_code == 2 and "no such run directory" in result.stderr


def test_yaml_octal_and_base60_are_not_silently_converted(tmp_path):
    cfg = write(tmp_path, "c.yaml", MOONS.replace("train: {epochs: 3}", "train: {epochs: 3, batch_size: 010}"))
    path = run_dir(train(tmp_path, cfg))
    assert yaml.safe_load((path / "config.yaml").read_text())["train"]["batch_size"] == 10
    result = train(tmp_path, cfg, "--set", "train.batch_size=1:30", expect=2)
    assert "string '1:30'" in result.stderr


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_follow_the_umask_at_the_time_of_writing(tmp_path, umask, mode):
    """In this one process the umask changes between runs: each run's files must follow the umask in
    force when they are written, not one read when nnctl was imported."""
    old = os.umask(umask)
    try:
        path = run_dir(train(tmp_path, write(tmp_path, "moons.yaml", MOONS)))
    finally:
        os.umask(old)
    for name in ("weights.npz", "summary.json", "config.yaml", "metrics.csv", "split.npz"):
        assert (path / name).stat().st_mode & 0o777 == mode, name


def test_set_typo_is_blamed_on_set(tmp_path):
    result = train(tmp_path, write(tmp_path, "moons.yaml", MOONS), "--set", "optimzer.lr=0.1", expect=2)
    assert result.stderr.startswith("error: --set optimzer.lr=0.1: unknown key 'optimzer'")


def test_null_hidden_and_multiclass_bce_are_errors(tmp_path):
    cfg = write(tmp_path, "moons.yaml", MOONS)
    assert "model.hidden is null" in train(tmp_path, cfg, "--set", "model.hidden=", expect=2).stderr
    iris = write(tmp_path, "iris.yaml", "data: {source: 'sklearn:iris'}\ntrain: {loss: bce, epochs: 1}\n")
    assert "bce is for binary tasks" in train(tmp_path, iris, expect=2).stderr
