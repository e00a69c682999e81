"""The figures nnctl plot, inspect --plot and lr-find --plot draw, checked as matplotlib objects (not
pixels): every line has a legend entry, the loss axis turns logarithmic only for a wide range, each
kind of run gets the model panel that fits it (decision boundary, fitted function, predicted-vs-true,
confusion matrix), and inspect draws only the panels that apply to the network."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import nnctl.plot
from nnctl.config.load import load_spec
from nnctl.runs import read_run, read_split
from nnctl.training.session import train_run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _train(root: Path, config: str, name: str, *sets: str) -> Path:
    spec = load_spec(CONFIGS / config, list(sets), name=name)
    return train_run(spec, root).run.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Small runs of each kind: 2-D and 3-class classification, 1-D and 10-feature regression, a
    regression whose loss climbs past 1e5 and falls back to 1e-3, and a tanh net."""
    root = tmp_path_factory.mktemp("plots")
    return {
        "moons": _train(root, "moons.yaml", "moons", "train.epochs=5"),
        "iris": _train(root, "iris.yaml", "iris", "train.epochs=20"),
        "sine": _train(root, "sine.yaml", "sine", "train.epochs=5"),
        "diabetes": _train(root, "diabetes.yaml", "diabetes", "train.epochs=10"),
        # sgd at lr 3 diverges for a few epochs until the exponential schedule (x0.8 an epoch) tames it
        "wild": _train(root, "regression.yaml", "wild", "optimizer.lr=3", "optimizer.schedule.gamma=0.8",
                       "train.epochs=25"),
        "tanh": _train(root, "moons.yaml", "tanh", "model.activation=tanh", "train.epochs=3"),
    }


@pytest.fixture
def drawn(monkeypatch):
    """The figures save_figure is given, kept open for inspection instead of written."""
    figures = []
    monkeypatch.setattr(nnctl.plot, "save_figure", lambda fig, out: figures.append(fig))
    yield figures
    plt = nnctl.plot.pyplot()
    for fig in figures:
        plt.close(fig)


def _plot(run: Path, drawn: list):
    nnctl.plot.plot_run(run, run / "plot.png")
    return drawn[-1]


def _axes(fig, title_start: str):
    found = [ax for ax in fig.axes if ax.get_title().startswith(title_start)]
    assert len(found) == 1, [ax.get_title() for ax in fig.axes]
    return found[0]


def _unlabelled_lines(fig) -> list[str]:
    """Lines with data that have no legend entry, as 'axes title: label'."""
    missing = []
    for ax in fig.axes:
        legend = ax.get_legend()
        entries = {t.get_text() for t in legend.get_texts()} if legend else set()
        for line in ax.get_lines():
            if len(line.get_xdata()) and line.get_label() not in entries:
                missing.append(f"{ax.get_title()}: {line.get_label()}")
    return missing


def test_every_line_of_every_figure_has_a_legend_entry(runs, drawn):
    from nnctl.checks import lr_find
    from nnctl.inspect import inspect_run

    for run in runs.values():
        fig = _plot(run, drawn)
        assert fig.get_axes() and not _unlabelled_lines(fig), (run.name, _unlabelled_lines(fig))
        nnctl.plot.plot_health(inspect_run(run), run / "health.png")
        assert not _unlabelled_lines(drawn[-1]), (run.name, _unlabelled_lines(drawn[-1]))
    nnctl.plot.plot_lr_find(lr_find(load_spec(CONFIGS / "iris.yaml")), Path("lr.png"))
    assert not _unlabelled_lines(drawn[-1])
    strip = [ax for ax in _plot(runs["moons"], drawn).axes if ax.get_ylabel() == "lr"]  # the lr's own panel
    assert len(strip) == 1 and [line.get_label() for line in strip[0].get_lines()] == ["lr"]


def test_the_loss_axis_is_logarithmic_only_for_a_wide_range(runs, drawn):
    wild = read_run(runs["wild"])
    losses = [r[k] for r in wild.rows for k in ("train_loss", "val_loss")]
    assert max(losses) > 1e7 * min(losses)  # the range this test is about
    ax = _axes(_plot(runs["wild"], drawn), "wild: loss")
    assert ax.get_yscale() == "log" and ax.get_title() == "wild: loss (log scale)"
    r2 = _axes(drawn[-1], "r2")
    assert r2.get_ylim()[0] == pytest.approx(-1.05)  # r2 of -1e6 would flatten the recovery
    for name in ("moons", "sine", "diabetes"):
        ax = _axes(_plot(runs[name], drawn), f"{name}: loss")
        assert ax.get_yscale() == "linear" and "log" not in ax.get_title()


def test_diabetes_gets_predicted_against_true_on_the_test_rows(runs, drawn):
    from nnctl.evaluate import evaluate_run

    ax = _axes(_plot(runs["diabetes"], drawn), "predicted vs true")
    n_test = len(read_split(nnctl.evaluate.load_run(runs["diabetes"]).run)["test"])
    (points,) = ax.collections
    assert len(points.get_offsets()) == n_test and f"(test, {n_test} rows)" in ax.get_title()
    r2 = float(re.search(r"r2 (-?[\d.]+)", ax.get_title()).group(1))
    assert r2 == pytest.approx(evaluate_run(runs["diabetes"])["metrics"]["r2"], abs=1e-3)  # eval's number
    (diagonal,) = ax.get_lines()
    assert np.allclose(diagonal.get_xdata(), diagonal.get_ydata())  # the y = x line
    assert not any(a.get_title().startswith(("confusion", "fitted", "decision")) for a in drawn[-1].axes)


def test_iris_gets_a_confusion_matrix_with_its_class_names(runs, drawn):
    ax = _axes(_plot(runs["iris"], drawn), "confusion matrix")
    (image,) = ax.get_images()
    assert image.get_array().shape == (3, 3)
    assert np.allclose(image.get_array().sum(axis=1), 1.0)  # colours: the share of each true class
    counts = np.array([int(t.get_text()) for t in ax.texts]).reshape(3, 3)
    n_test = len(read_split(nnctl.evaluate.load_run(runs["iris"]).run)["test"])
    assert counts.sum() == n_test
    names = ["setosa", "versicolor", "virginica"]
    assert [t.get_text() for t in ax.get_xticklabels()] == names == [t.get_text() for t in ax.get_yticklabels()]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    accuracy = float(re.search(r"accuracy ([\d.]+)", ax.get_title()).group(1))
    assert accuracy == pytest.approx(np.trace(counts) / n_test, abs=1e-3)


def test_each_kind_of_run_gets_the_panels_that_fit_it(runs, drawn):
    def model_panels(name):
        titles = [ax.get_title() for ax in _plot(runs[name], drawn).axes]
        return sorted(t.split(" (")[0].split("\n")[0] for t in titles
                      if t.startswith(("decision", "fitted", "predicted", "confusion")))

    assert model_panels("moons") == ["confusion matrix", "decision boundary"]
    assert model_panels("iris") == ["confusion matrix"]
    assert model_panels("sine") == ["fitted function"]
    assert model_panels("diabetes") == ["predicted vs true"]


def test_a_split_without_test_rows_draws_the_confusion_matrix_on_val(tmp_path, drawn):
    run = _train(tmp_path, "iris.yaml", "noval", "train.epochs=3", "data.split.test=0")
    ax = _axes(_plot(run, drawn), "confusion matrix")
    assert "(val, 30 rows)" in ax.get_title()


def test_inspect_draws_only_the_panels_that_apply(runs, drawn):
    from nnctl.inspect import inspect_run

    def titles(name):
        nnctl.plot.plot_health(inspect_run(runs[name]), Path("h.png"))
        return [ax.get_title().split(" (")[0] for ax in drawn[-1].axes if ax.get_visible()]

    assert titles("moons") == ["activation std", "dead ReLU fraction", "gradient RMS", "update / weight ratio"]
    assert titles("tanh") == ["activation std", "saturated fraction", "gradient RMS", "update / weight ratio"]
    assert titles("wild") == ["gradient RMS", "update / weight ratio"]  # no hidden layer: nothing to die or saturate


def test_without_its_data_a_run_still_gets_its_curves_and_a_note(tmp_path, drawn):
    import shutil

    shutil.copy(CONFIGS.parent / "datasets" / "iris.csv", tmp_path / "iris.csv")
    spec = load_spec(data={"name": "moved", "data": {"source": str(tmp_path / "iris.csv"), "target": "species"},
                           "model": {"hidden": [4]}, "train": {"epochs": 2}})
    run = train_run(spec, tmp_path).run.path
    (tmp_path / "iris.csv").unlink()
    _, notes = nnctl.plot.plot_run(run, run / "plot.png")
    assert [ax.get_title() for ax in drawn[-1].axes] == ["moved: loss", "", "accuracy"]  # loss, lr strip, metric
    assert len(notes) == 1 and notes[0].startswith("no confusion matrix panel: ") and "iris.csv" in notes[0]
