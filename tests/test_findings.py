"""Findings against the lecture pitfalls (issue 16): each pitfall's config yields its finding and only
it, healthy networks yield none, and the inspect views show the evidence.

The scenarios live in benchmarks/findings_matrix.py: SCENARIOS (what the detectors were written
against) and variants() (set 1: the same pitfalls on other data, widths, depths, activations,
optimizers and seeds). `python -m benchmarks.findings_matrix` measures a further set written after
these (the closing note's confusion table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.findings_matrix import SCENARIOS, judge, run_scenario, variants
from nnctl.cli import app


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_lecture_pitfall_yields_its_finding_and_only_it(tmp_path, sc):
    codes = run_scenario(sc, tmp_path)
    assert judge(sc, codes), f"{sc.name}: expected {sc.expect or 'nothing'}, got {sorted(codes)}"


def test_the_detectors_on_varied_settings(tmp_path):
    results = [(sc, run_scenario(sc, tmp_path)) for sc in variants()]
    wrong = [f"{sc.name}: expected {sc.expect or 'nothing'}, got {sorted(codes)}" for sc, codes in results
             if not judge(sc, codes)]
    assert not wrong, wrong
    assert {sc.expect for sc, _ in results} >= {None, "VANISHING_GRAD", "ACTIVATION_COLLAPSE", "SYMMETRY",
                                                "DEAD_RELU", "SATURATED", "LR_TOO_LARGE", "LR_TOO_SMALL"}


def _train(tmp_path, sc):
    from nnctl.config.load import load_spec
    from nnctl.training.session import train_run

    return train_run(load_spec(data={"name": "f", **sc.config}, base_dir=tmp_path), tmp_path)


def test_findings_carry_their_evidence_per_layer(tmp_path):
    collapse = next(s for s in SCENARIOS if s.expect == "ACTIVATION_COLLAPSE")
    summary = _train(tmp_path, collapse).summary
    (f,) = [f for f in summary["findings"] if f["code"] == "ACTIVATION_COLLAPSE"]
    std = f["evidence"]["act_std"]
    assert len(std) == 6 and all(b < a for a, b in zip(std, std[1:])) and std[-1] < 1e-3
    assert f["epoch"] == 0 and "init normal with std 0.01" in f["message"] and f["why"] and f["try"]
    vanish = next(s for s in SCENARIOS if s.expect == "VANISHING_GRAD")
    (v,) = [f for f in _train(tmp_path, vanish).summary["findings"] if f["code"] == "VANISHING_GRAD"]
    rms = v["evidence"]["grad_rms"]
    assert len(rms) == 6 and rms[0] / rms[-1] < 0.05


def test_leaky_relu_units_are_never_called_dead(tmp_path):
    leaky = next(s for s in SCENARIOS if "leaky" in s.name)
    run = _train(tmp_path, leaky)
    import csv

    rows = list(csv.DictReader(open(run.run.file("diagnostics.csv"))))
    assert all(r["dead_frac"] == "" for r in rows)  # a leaky unit always has a gradient: not measured
    assert run.summary["final"]["val_accuracy"] > 0.8  # and it did recover


def test_group_norm_with_one_feature_per_group_is_refused_with_the_reason(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: 'sklearn:moons'}\nmodel: {hidden: [8], norm: group, norm_options: {groups: 8}}\n")
    out = CliRunner().invoke(app, ["train", str(cfg), "--runs-dir", str(tmp_path / "r")])
    assert out.exit_code == 2
    assert "always be beta" in out.stderr and "instance norm" in out.stderr and "Traceback" not in out.stderr
    cfg.write_text("data: {source: 'sklearn:moons'}\nmodel: {hidden: [8], norm: group, norm_options: {groups: 4}}\n"
                   "train: {epochs: 1}\n")
    assert CliRunner().invoke(app, ["train", str(cfg), "--runs-dir", str(tmp_path / "r"), "-q"]).exit_code == 0


def test_inspect_fits_80_columns_starts_at_epoch_0_and_shows_only_what_applies(tmp_path):
    dead = next(s for s in SCENARIOS if s.expect == "DEAD_RELU")
    run = _train(tmp_path, dead)
    out = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["inspect", str(run.run.path)])
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, out.stdout
    assert "…" not in out.stdout  # nothing cut
    header = next(line for line in lines if "epoch" in line and "layer" in line)
    assert "dead" in header and "saturated" not in header  # relu: dead units apply, saturation does not
    assert any(line.split()[:1] == ["0"] for line in lines)  # epoch 0, the untrained network
    doc = json.loads(CliRunner().invoke(app, ["inspect", str(run.run.path), "--json"]).stdout)
    assert min(r["epoch"] for r in doc["all_rows"]) == 0


def test_inspect_plot_draws_zero_gradients_instead_of_dropping_them(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from nnctl.inspect import inspect_run
    from nnctl.plot import plot_health

    dead = next(s for s in SCENARIOS if s.expect == "DEAD_RELU")
    run = _train(tmp_path, dead)
    report = inspect_run(run.run.path)
    assert any(r["grad_rms"] == 0 for r in report["all_rows"])  # the evidence: exactly zero gradients
    captured = {}
    import matplotlib.figure

    original = matplotlib.figure.Figure.savefig

    def spy(fig, *args, **kwargs):
        captured["axes"] = fig.axes
        return original(fig, *args, **kwargs)

    matplotlib.figure.Figure.savefig = spy
    try:
        plot_health(report, Path(tmp_path) / "h.png")
    finally:
        matplotlib.figure.Figure.savefig = original
    titles = [ax.get_title() for ax in captured["axes"] if ax.get_visible()]
    assert titles[0].startswith("activation std") and not any("saturated" in t for t in titles)
    grad = next(ax for ax in captured["axes"] if ax.get_title().startswith("gradient RMS"))
    assert "exactly 0" in grad.get_title()
    assert sum(len(line.get_xdata()) for line in grad.lines) >= 3 * 40  # every epoch of every layer drawn
