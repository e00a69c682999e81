"""lr-find's suggestion: the rule on synthetic loss curves (the README states it, suggest_lr codes it),
its plot, and the test that matters: training every example config at the suggested rate works about
as well as at the config's own rate, without the findings a too-large rate causes."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

import nnctl.plot
from nnctl.checks import LR_FIND_BLOWUP, LR_FIND_FALL, lr_find, suggest_lr, suggestion_reason
from nnctl.config.load import load_spec
from nnctl.errors import TrainingFailed
from nnctl.training.session import train_run

ROOT = Path(__file__).resolve().parent.parent
LRS = np.geomspace(1e-7, 10, 100)
X = np.log10(LRS)


def _u_curve():
    """Flat at 1, falls between 1e-3 and 1e-1 to 0.2, rises again beyond lr 1."""
    return 0.2 + 0.8 / (1 + np.exp(3 * (X + 2))) + 2 * np.clip(X, 0, None) ** 2


def test_the_suggestion_is_a_tenth_of_the_rate_with_the_lowest_smoothed_loss():
    sm = _u_curve()
    i_min = int(np.argmin(sm))
    got = suggest_lr(LRS, sm, sm)
    assert got["basis"] == "lowest loss" and got["lowered"] is None
    assert got["reference_lr"] == got["min_loss_lr"] == LRS[i_min]
    assert got["suggestion"] == pytest.approx(LRS[i_min] / 10)
    assert 0.05 < got["suggestion"] < 0.2  # the minimum sits near lr 1
    assert "a tenth of" in suggestion_reason({**got, "cap": None, "optimizer": "sgd"})


def test_the_first_steps_do_not_count_for_the_minimum():
    sm = _u_curve()
    sm[3] = 0.01  # a moving average of three batches can dip anywhere
    assert suggest_lr(LRS, sm, sm)["min_loss_lr"] == LRS[int(np.argmin(_u_curve()))]


def test_a_loss_that_never_falls_uses_the_rate_where_it_starts_to_blow_up():
    sm = np.where(X < -0.5, 0.2, 0.2 * (1 + 8 * (X + 0.5)))  # flat at 0.2, then up from lr 0.3
    sm = sm * (1 + 0.01 * np.sin(np.arange(len(sm))))  # a ripple: its lowest point means nothing
    got = suggest_lr(LRS, sm, sm)
    assert got["basis"] == "blow-up" and got["fall"] < LR_FIND_FALL
    i_min = 10 + int(np.argmin(sm[10:]))
    first_above = int(np.flatnonzero((sm > LR_FIND_BLOWUP * sm[i_min]) & (np.arange(len(sm)) > i_min))[0])
    assert got["reference_lr"] == LRS[first_above - 1]
    assert got["suggestion"] <= got["reference_lr"] / 10
    assert got["reference_lr"] / 10 / got["suggestion"] < 1.5  # at most a step or two down off a ripple
    assert "fell only" in suggestion_reason({**got, "cap": None, "optimizer": "adam"})


def test_a_suggestion_on_a_rising_stretch_moves_down_to_its_foot():
    sm = _u_curve() + 0.3 * np.exp(-((X + 0.7) / 0.25) ** 2)  # a bump around lr 0.2 on the way down
    got = suggest_lr(LRS, sm, sm)
    i_min = int(np.argmin(sm))
    j = int(np.searchsorted(LRS, LRS[i_min] / 10, side="right")) - 1
    assert sm[j + 1] > sm[j]  # the tenth lands where the loss rises: what this test is about
    assert got["lowered"] == "rise" and got["suggestion"] < LRS[i_min] / 10
    k = int(np.flatnonzero(LRS == got["suggestion"])[0])
    assert sm[k - 1] >= sm[k] and all(np.diff(sm[k:j + 2]) > 0)  # the foot, then rising all the way up
    assert "foot" in suggestion_reason({**got, "cap": None, "optimizer": "sgd"})


def test_adam_is_capped_below_the_rate_it_is_warned_about():
    got = suggest_lr(LRS, _u_curve(), _u_curve(), cap=0.025)
    assert got["suggestion"] == 0.025 and got["lowered"] == "cap"
    result = lr_find(load_spec(ROOT / "configs" / "iris.yaml"))
    assert result["suggestion"] <= result["cap"] == 0.025  # adam: a quarter of ADAM_HIGH_LR's 0.1
    assert "at most 0.025 for adam" in suggestion_reason(result)


def test_the_lr_find_plot_is_log_log_and_stops_before_the_blow_up(monkeypatch):
    figures = []
    monkeypatch.setattr(nnctl.plot, "save_figure", lambda fig, out: figures.append(fig))
    sm = _u_curve()
    raw = sm.copy()
    raw[-1] = 1e4  # the step that blew up
    result = {"lrs": list(LRS), "losses": list(raw), "smoothed": list(sm), "optimizer": "sgd", "batch_size": 32,
              **suggest_lr(LRS, raw, sm)}
    nnctl.plot.plot_lr_find(result, Path("lr.png"))
    (ax,) = figures[0].axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    low = sm[10:].min()
    kept = LRS[: int(np.flatnonzero((sm > 4 * low) & (LRS > result["min_loss_lr"]))[0])]
    assert ax.get_xlim()[1] < LRS[-1] and ax.get_xlim()[1] == pytest.approx(kept[-1] * 1.2)
    assert ax.get_ylim()[1] < 2 * sm[: len(kept)].max() < 10  # the spike of 1e4 is off the axes
    mark = [line for line in ax.get_lines() if line.get_label().startswith("suggested lr")]
    assert len(mark) == 1 and mark[0].get_xdata()[0] == result["suggestion"]
    nnctl.plot.pyplot().close(figures[0])


# ------------------------------------------------------------------------------------ train at the suggestion
EXAMPLES = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
MAX_EPOCHS = 30
TOLERANCE = {"accuracy": 0.05, "r2": 0.1}  # final val metric at the suggestion vs at the config's own lr
BAD = {"LR_TOO_LARGE", "DEAD_RELU", "EXPLODING_GRAD", "ADAM_HIGH_LR"}


def _final(config: str, *sets: str) -> tuple[dict, float]:
    spec = load_spec(ROOT / "configs" / config, [*sets])
    spec = load_spec(ROOT / "configs" / config, [*sets, f"train.epochs={min(spec.train.epochs, MAX_EPOCHS)}"])
    with tempfile.TemporaryDirectory() as tmp:
        try:
            summary = train_run(spec, Path(tmp)).summary
        except TrainingFailed as exc:
            pytest.fail(f"{config} {' '.join(sets)}: {exc}")
    metric = "accuracy" if summary["task"] == "classification" else "r2"
    return summary, summary["final"][f"val_{metric}"]


def test_there_are_enough_example_configs_of_both_tasks():
    assert len(EXAMPLES) >= 6 and {"diabetes.yaml", "iris.yaml", "moons.yaml", "sine.yaml"} <= set(EXAMPLES)


@pytest.mark.parametrize("config", EXAMPLES)
def test_training_at_the_suggestion_works_as_well_as_the_configs_own_rate(config):
    suggestion = lr_find(load_spec(ROOT / "configs" / config))["suggestion"]
    own, own_metric = _final(config)
    summary, metric = _final(config, f"optimizer.lr={suggestion!r}")
    tolerance = TOLERANCE["accuracy" if summary["task"] == "classification" else "r2"]
    assert math.isfinite(metric) and metric >= own_metric - tolerance, (suggestion, metric, own_metric)
    codes = {f["code"] for f in summary["findings"]}
    assert not codes & BAD, (suggestion, codes)
