"""compare --plot: the loss axis turns logarithmic when the curves span more than 100x (a diverged
run among them), and says so in its title; --log-y / --linear-y force it."""

from __future__ import annotations

from pathlib import Path

import pytest

import nnctl.plot
from nnctl.config.load import load_spec
from nnctl.errors import TrainingFailed
from nnctl.runs import read_run
from nnctl.training.session import train_run

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "regression.yaml"


def _run(tmp_path, lr, epochs=10):
    spec = load_spec(CONFIG, [f"optimizer.lr={lr}", f"train.epochs={epochs}", "optimizer.name=sgd",
                              "train.diagnostics=false"], name=f"lr{lr}")
    try:
        return read_run(train_run(spec, tmp_path).run.path)
    except TrainingFailed as exc:  # diverged: still a run to compare
        return read_run(exc.run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    return _run(tmp, 0.01), _run(tmp, 3.0)


def _axis(runs, monkeypatch, tmp_path, log_y=None):
    seen = {}
    monkeypatch.setattr(nnctl.plot, "save_figure", lambda fig, out: seen.update(
        scale=fig.axes[0].get_yscale(), title=fig.axes[0].get_title()))
    nnctl.plot.plot_curves(list(runs), tmp_path / "c.png", log_y=log_y)
    return seen["scale"], seen["title"]


def test_a_diverging_run_switches_the_loss_axis_to_log(runs, monkeypatch, tmp_path):
    calm, wild = runs
    losses = [r["val_loss"] for r in wild.rows if r.get("val_loss") is not None]
    assert max(losses) > 1e4 * min(r["val_loss"] for r in calm.rows)  # the divergence this test needs
    assert _axis(runs, monkeypatch, tmp_path) == ("log", "validation loss (log scale)")
    assert _axis(runs[:1], monkeypatch, tmp_path) == ("linear", "validation loss")  # one calm run: linear
    assert _axis(runs, monkeypatch, tmp_path, log_y=False)[0] == "linear"
    assert _axis(runs[:1], monkeypatch, tmp_path, log_y=True)[0] == "log"


def test_compare_cli_plot_log_flags(runs, tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app

    paths = [str(r.path) for r in runs]
    for flag in ([], ["--log-y"], ["--linear-y"]):
        out = CliRunner().invoke(app, ["compare", *paths, "--plot", str(tmp_path / "c.png"), *flag])
        assert out.exit_code == 0, out.output
        assert (tmp_path / "c.png").stat().st_size > 1000
