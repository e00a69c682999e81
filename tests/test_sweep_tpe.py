"""`nnctl sweep --search tpe`: Optuna's TPE proposes each trial from the results so far."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import wait_for
from typer.testing import CliRunner

pytest.importorskip("optuna")

from nnctl.cli import app  # noqa: E402

CONFIG = ("data: {source: 'sklearn:xor', options: {n_samples: 160}}\nmodel: {hidden: [6]}\n"
          "optimizer: {name: sgd, lr: 0.1}\ntrain: {epochs: 3, batch_size: 16}\n")
SPACE = ("--space", "optimizer.lr=loguniform(0.001,1)", "--space", "model.hidden=choice([4],[8, 8],[16])")


def nnctl(*args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_a_tpe_sweep_runs_n_trials_each_once_from_the_space(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG)
    out = nnctl("sweep", tmp_path / "c.yaml", "--random", 7, "--search", "tpe", *SPACE, "--jobs", 2,
                "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    assert "TPE search, 7 trials" in out.stderr
    folder = Path(out.stdout.split()[-1])
    doc = json.loads((folder / "sweep.json").read_text())
    assert doc["search"] == {"method": "tpe", "n": 7, "seed": 0, "space": {
        "optimizer.lr": ["loguniform", [0.001, 1]], "model.hidden": ["choice", [[4], [8, 8], [16]]]}}
    trials = doc["trials"]
    assert [t["name"] for t in trials] == [f"t{i:03d}" for i in range(7)]
    assert all(t["status"] == "completed" for t in trials)
    for t in trials:
        assert 0.001 <= t["overrides"]["optimizer.lr"] <= 1
        assert t["overrides"]["model.hidden"] in ([4], [8, 8], [16])
        assert list(folder.glob(f"{t['name']}-*")) == [Path(t["run_dir"])]
        config = (Path(t["run_dir"]) / "config.yaml").read_text()
        assert f"hidden: {t['overrides']['model.hidden']}".replace("'", "") in config
    assert len({t["overrides"]["optimizer.lr"] for t in trials}) == 7  # constant liar: no point twice


def test_tpe_learns_from_what_it_is_told(tmp_path, monkeypatch):
    """With a score that is best at lr = 0.01, TPE proposes near it far more often than random
    search would: 12% of log-uniform draws over 5 decades fall within 0.3 decades of 0.01, at least
    25% of TPE's proposals after its start-up do. What tell() passes on is used (with tell() broken,
    or the sign of a higher-is-better metric wrong, they do not)."""
    from nnctl import sweep_tpe
    from nnctl.sweep import Sweep

    (tmp_path / "c.yaml").write_text(CONFIG)
    sweep = Sweep(tmp_path, tmp_path / "c.yaml", [], [], 1,
                  search={"method": "tpe", "n": 40, "space": {"optimizer.lr": ["loguniform", [1e-5, 1.0]]}, "seed": 3})
    # the run's monitored metric: val_accuracy (higher is better), best at lr = 0.01
    monkeypatch.setattr("nnctl.sweep_halving.score", lambda t: (
        "val_accuracy", 1 - abs(math.log10(t.overrides["optimizer.lr"]) + 2)))
    search = sweep_tpe.Search(sweep)
    while search.room:
        t = search.propose()
        t.status = "completed"
        search.tell(t)
    distance = [abs(math.log10(t.overrides["optimizer.lr"]) + 2) for t in sweep.trials]
    late = distance[sweep_tpe.STARTUP:]
    assert sum(d < 0.3 for d in late) / len(late) >= 0.25
    assert min(distance) < 0.02


def test_a_killed_tpe_sweep_resumes_to_exactly_n_trials(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG.replace("epochs: 3", "epochs: 300"))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "sweep", str(tmp_path / "c.yaml"), "--random", "6",
                             "--search", "tpe", *SPACE, "--jobs", "2", "--runs-dir", str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finished() -> int:
        doc = next(runs.glob("*/sweep.json"), None)
        return sum(t["status"] == "completed" for t in json.loads(doc.read_text())["trials"]) if doc else 0

    wait_for(lambda: finished() >= 2, 120, "two finished trials")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    folder = next(runs.glob("*/sweep.json")).parent
    before = {t["name"]: t["overrides"] for t in json.loads((folder / "sweep.json").read_text())["trials"]}
    out = nnctl("sweep", "--resume", folder)
    assert out.returncode == 0, out.stderr
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    assert [t["name"] for t in trials] == [f"t{i:03d}" for i in range(6)]
    assert all(t["status"] == "completed" for t in trials)
    for t in trials:
        assert list(folder.glob(f"{t['name']}-*")) == [Path(t["run_dir"])]
        if t["name"] in before:  # proposed before the kill: the same point
            assert t["overrides"] == before[t["name"]]


@pytest.mark.parametrize("args, message", [
    (["--random", "5", "--search", "tpe", "--grid", "model.activation=relu,tanh", *SPACE], "as a choice"),
    (["--random", "5", "--search", "tpe", "--seeds", "2", *SPACE], "--seeds replicates"),
    (["--random", "9", "--search", "tpe", "--halving", "3", *SPACE], "use one of them"),
    (["--search", "tpe", *SPACE], "needs --random N"),
    (["--random", "5", "--search", "bayes", *SPACE], "use random"),
    (["--random", "5", "--search", "tpe", "--space", "optimizer.lrr=uniform(0.1,1)"], "optimizer.lrr"),
    (["--random", "5", "--search", "tpe", "--space", "model.activation=choice(relu,bogus)"], "'bogus'"),
    (["--random", "100000", "--search", "tpe", *SPACE], "surely a mistake"),
])
def test_what_does_not_fit_a_tpe_search_exits_2_before_anything_runs(tmp_path, args, message):
    (tmp_path / "c.yaml").write_text(CONFIG)
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "c.yaml"), *args, "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_without_optuna_the_message_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "c.yaml").write_text(CONFIG)
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "c.yaml"), "--random", "5", "--search", "tpe",
                                      *SPACE, "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "pip install 'nnctl[tpe]'" in result.stderr


@pytest.mark.parametrize("search", [
    {},
    {"method": "tpe", "n": 3, "seed": 0, "space": {"optimizer.lr": ["uniform", [0.5, 0.1]]}},
    {"method": "tpe", "n": 3, "seed": 0, "space": {"optimizer.lr": ["uniform", [1]]}},
    {"method": "tpe", "n": 3, "seed": 0, "space": {"optimizer.lr": ["loguniform", [0, 1]]}},
    {"method": "tpe", "n": 3, "seed": 0, "space": {"model.hidden": ["int", [1.5, 4]]}},
    {"method": "tpe", "n": True, "seed": 0, "space": {"optimizer.lr": ["uniform", [0.1, 0.5]]}},
])
def test_a_damaged_search_record_exits_2_on_resume(tmp_path, search):
    from nnctl.sweep import Sweep, Trial

    (tmp_path / "c.yaml").write_text(CONFIG)
    folder = tmp_path / "s"
    folder.mkdir()
    Sweep(folder, tmp_path / "c.yaml", ["nnctl"], [Trial(0, {"optimizer.lr": 0.2}, 0)], 1, search=search).save()
    result = CliRunner().invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 2, result.output
    assert "damaged ('search'" in result.stderr
