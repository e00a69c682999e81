"""compare and plot: differing hyperparameters, formats, sorting, damaged runs, PNGs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnctl.cli import app

MOONS = """
data: {source: 'sklearn:moons', options: {n_samples: 200, noise: 0.2}}
model: {hidden: [6]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 4}
"""


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four runs differing in lr and activation only."""
    tmp = tmp_path_factory.mktemp("cmp")
    cfg = tmp / "moons.yaml"
    cfg.write_text(MOONS)
    paths = []
    for lr in ("0.001", "0.05"):
        for act in ("relu", "sigmoid"):
            out = run("train", cfg, "--runs-dir", tmp / "runs", "-q", "--set", f"optimizer.lr={lr}",
                      "--set", f"model.activation={act}", "--set", "model.init=xavier_uniform",
                      "--name", f"{act}-{lr}")
            assert out.exit_code == 0, out.stderr
            paths.append(Path(out.stdout.strip()))
    return tmp / "runs", paths


def test_compare_shows_exactly_the_differing_params(runs):
    folder, paths = runs
    doc = json.loads(run("compare", *paths, "--format", "json").stdout)
    assert len(doc) == 4
    params = [k for k in doc[0] if "." in k]
    assert params == ["model.activation", "optimizer.lr"]
    for key in ("name", "status", "epochs", "best_epoch", "best_epoch_val_accuracy", "final_val_accuracy", "time_s"):
        assert key in doc[0]
    assert {r["status"] for r in doc} == {"completed"}
    all_params = json.loads(run("compare", folder, "--format", "json", "--all-params").stdout)
    assert "train.batch_size" in all_params[0] and "seed" in all_params[0]


def test_formats_parse(runs):
    folder, _ = runs
    rows = list(csv.DictReader(io.StringIO(run("compare", folder, "--format", "csv").stdout)))
    assert len(rows) == 4 and "optimizer.lr" in rows[0]
    md = run("compare", folder, "--format", "markdown").stdout.strip().splitlines()
    assert len(md) == 2 + 4
    assert md[1].startswith("| ---") or md[1].startswith("|---") or set(md[1]) <= set("|- ")
    widths = {line.count(" | ") for line in md}
    assert len(widths) == 1  # every line has the same number of cells
    table = run("compare", folder).stdout
    assert "optimizer.lr" in table and "sigmoid-0.05" in table


def test_sort_top_and_cols(runs):
    folder, _ = runs
    doc = json.loads(run("compare", folder, "--format", "json", "--sort=-optimizer.lr").stdout)
    assert [r["optimizer.lr"] for r in doc] == [0.05, 0.05, 0.001, 0.001]  # raw numbers in json
    doc = json.loads(run("compare", folder, "--format", "json", "--sort", "best_epoch_val_loss", "--top", "2").stdout)
    assert len(doc) == 2 and doc[0]["best_epoch_val_loss"] <= doc[1]["best_epoch_val_loss"]
    doc = json.loads(run("compare", folder, "--format", "json", "--cols", "*val_accuracy").stdout)
    assert list(doc[0]) == ["name", "best_epoch_val_accuracy", "final_val_accuracy"]
    bad = run("compare", folder, "--sort", "best_epoch_val_acc")
    assert bad.exit_code == 2 and "did you mean" in bad.stderr
    old = run("compare", folder, "--sort", "best_val_accuracy")  # the old name: what it became, and why
    assert old.exit_code == 2 and "renamed best_epoch_val_accuracy" in old.stderr


def test_damaged_and_non_run_folders(runs, tmp_path):
    folder, paths = runs
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(paths[0], broken)
    (broken / "summary.json").write_text('{"status": "compl')  # truncated
    stray = tmp_path / "notes"
    stray.mkdir()
    out = run("compare", broken, stray, paths[1], "--format", "json")
    assert out.exit_code == 0
    doc = json.loads(out.stdout)
    assert [r["status"] for r in doc] == ["damaged", "completed"]
    assert "summary.json unreadable" in doc[0]["problem"]
    assert "notes: not a run directory" in out.stderr
    (broken / "config.yaml").unlink()  # a run without a config must not make every key "differ"
    doc = json.loads(run("compare", broken, paths[1], paths[3], "--format", "json").stdout)
    assert [k for k in doc[0] if "." in k] == ["optimizer.lr"]


def test_same_names_show_the_run_dir(runs, tmp_path):
    _, paths = runs
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(paths[0], twin)
    table = run("compare", paths[0], twin).stdout
    assert "twin" in table and paths[0].name in table


def test_group_seeds(tmp_path):
    cfg = tmp_path / "m.yaml"
    cfg.write_text(MOONS)
    for seed in (0, 1, 2):
        for lr in ("0.01", "0.02"):
            run("train", cfg, "--runs-dir", tmp_path / "runs", "-q", "--seed", str(seed), "--set",
                f"optimizer.lr={lr}")
    doc = json.loads(run("compare", tmp_path / "runs", "--group-seeds", "--format", "json").stdout)
    assert len(doc) == 2 and all(r["runs"] == 3 for r in doc)
    assert all("best_epoch_val_accuracy_std" in r for r in doc)
    table = run("compare", tmp_path / "runs", "--group-seeds").stdout
    assert "±" in table


def test_compare_plot_and_run_plot(runs, tmp_path):
    folder, paths = runs
    out = run("compare", folder, "--plot", tmp_path / "curves.png", "--format", "csv")
    assert out.exit_code == 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = run("plot", paths[0], "-o", tmp_path / "run.png")
    assert out.exit_code == 0 and out.stdout.strip() == str(tmp_path / "run.png")
    png = (tmp_path / "run.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # two rows: loss (over the lr strip) and metric, then the decision boundary and the confusion matrix
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1265, 1045)


def test_plot_default_location_and_non_2d(tmp_path):
    out = run("train", Path(__file__).resolve().parents[1] / "configs" / "wine.yaml", "--runs-dir", tmp_path, "-q",
              "--set", "train.epochs=2")
    rd = Path(out.stdout.strip())
    out = run("plot", rd)
    assert out.exit_code == 0 and (rd / "plot.png").stat().st_size > 5000
    assert int.from_bytes((rd / "plot.png").read_bytes()[16:20], "big") == 1650  # 13-D input: curves, confusion
    assert run("plot", tmp_path / "nope").exit_code == 2


def test_plot_names_must_end_in_png(runs, tmp_path):
    _, paths = runs
    out = run("plot", paths[0], "-o", tmp_path / "x.txt")
    assert out.exit_code == 2 and "ending in .png" in out.stderr
    assert not (tmp_path / "x.txt").exists()


def test_plot_legend_tells_runs_of_one_name_apart():
    from nnctl.compare import curve_labels
    from nnctl.runs import RunInfo

    def info(folder, lr, act="relu"):
        params = {"name": "moons", "optimizer.lr": lr, "model.activation": act, "seed": 0}
        return RunInfo(Path(folder), "moons", "completed", params)

    labels = curve_labels([info("a", 0.1), info("b", 0.01), info("c", 0.01, "tanh")])
    assert labels == ["moons lr=0.1, activation=relu", "moons lr=0.01, activation=relu",
                      "moons lr=0.01, activation=tanh"]
    assert curve_labels([info("a", 0.1), info("b", 0.1)]) == ["a", "b"]  # nothing differs: the run dirs
    assert curve_labels([RunInfo(Path("x"), "one", "completed"), RunInfo(Path("y"), "two", "completed")]) == \
        ["one", "two"]  # distinct names are enough
