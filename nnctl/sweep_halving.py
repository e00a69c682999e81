"""Successive halving (`nnctl sweep --halving ETA [--min-epochs E]`).

Every trial trains a few epochs (rung 0); the best 1/ETA of them, by each run's monitored metric
(train.early_stopping.monitor if set, else val_loss; higher or lower is better as
nnctl.metrics.higher_is_better says), go on to ETA times more epochs in the same run dir (`resume
--epochs`, bit-identical to training that long from the start for schedules that do not depend on
the total and no early stopping); and so on until train.epochs. 27 trials with ETA 3 and 27 epochs:
27 x 1 epoch, 9 x 3, 3 x 9, 1 x 27.

The backend is only asked to "run these trials to `trial.epochs` epochs" (`run_rungs`), one rung at
a time; local workers, or the Dask client, stay up from the first rung to the last (on Dask a
promoted trial's run dir goes back to a worker and returns extended). What has been decided is in
sweep.json (each trial's `rung`: the last rung it was promoted to, saved before that rung runs)
and what has been trained is in the run dirs (their summary's `epochs_planned` and status), so a
killed sweep's `--resume` picks up exactly where it stopped: it finishes the rung that was
running, then promotes as it would have.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from nnctl.errors import ConfigError, RunDirError
from nnctl.metrics import higher_is_better
from nnctl.runs import FINISHED
from nnctl.sweep import MANIFEST, Sweep, Trial, run_state


def plan_rungs(n_trials: int, max_epochs: int, eta: int, min_epochs: int | None = None
               ) -> tuple[list[int], list[int]]:
    """The epochs of each rung (ending at `max_epochs`) and how many trials train in each.

    With `min_epochs`: min_epochs, x eta, x eta^2, ... below max_epochs, then max_epochs; n trials,
    then n // eta, n // eta^2, ... (at least 1). Without: k halvings, as many as leave at least one
    trial (27 trials, eta 3: k = 3), the rungs max_epochs / eta^k, ..., max_epochs / eta, max_epochs
    (rounded, at least 1 epoch); halvings that round to the same epochs as the one before are one
    selection (200 trials, 10 epochs, eta 3: 200 trials x 1 epoch, 7 x 3, 2 x 10)."""
    if eta < 2:
        raise ConfigError(f"--halving {eta}: ETA must be at least 2 (keep the best 1/ETA at each rung)")
    if min_epochs is not None:
        if min_epochs >= max_epochs:
            raise ConfigError(f"--min-epochs {min_epochs} must be less than train.epochs ({max_epochs}): the rungs "
                              f"go from --min-epochs up to train.epochs")
        rungs, epochs = [], min_epochs
        while epochs < max_epochs:
            rungs.append(epochs)
            epochs *= eta
        rungs.append(max_epochs)
        return rungs, [max(1, n_trials // eta**k) for k in range(len(rungs))]
    halvings = 0
    while eta ** (halvings + 1) <= n_trials:
        halvings += 1
    rungs, counts = [], []
    for k in range(halvings + 1):
        epochs, count = max(1, round(max_epochs / eta ** (halvings - k))), max(1, n_trials // eta**k)
        if rungs and epochs <= rungs[-1]:  # no more epochs than the rung before: one selection, later
            continue
        rungs.append(epochs)
        counts.append(count)
    return rungs, counts


def halving_plan(spec, trials: list[Trial], eta: int | None, min_epochs: int | None) -> dict | None:
    """The `halving` record of sweep.json for a new sweep of `spec` (None without --halving); every
    trial starts in rung 0. ConfigError before anything is created if the options do not fit."""
    if eta is None:
        if min_epochs is not None:
            raise ConfigError("--min-epochs goes with --halving ETA (successive halving); without it every trial "
                              "trains train.epochs")
        return None
    for t in trials:
        if "train.epochs" in t.overrides:
            raise ConfigError("--halving decides how many epochs each trial trains (its rungs, up to the config's "
                              "train.epochs): do not also sweep train.epochs")
    max_epochs = spec.train.epochs
    rungs, counts = plan_rungs(len(trials), max_epochs, eta, min_epochs)
    if len(rungs) < 2:
        raise ConfigError(f"--halving {eta}: {len(trials)} trials and train.epochs {max_epochs} leave a single rung; "
                          f"give --min-epochs below train.epochs, or more trials")
    for t in trials:
        t.rung = 0
    return {"eta": eta, "rungs": rungs, "counts": counts}


def check_record(sweep: Sweep) -> tuple[list[int], list[int]]:
    """The rungs' epochs and trial counts from sweep.json, checked (it is data, like a run dir)."""
    h = sweep.halving or {}
    rungs, counts, eta = h.get("rungs"), h.get("counts"), h.get("eta")
    ints = isinstance(rungs, list) and isinstance(counts, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in [*rungs, *counts, eta])
    if not ints or eta < 2 or len(rungs) != len(counts) or len(rungs) < 2 or sorted(set(rungs)) != rungs:
        raise RunDirError(f"{sweep.path / MANIFEST}: damaged ('halving' is not {{eta, rungs, counts}} of rising "
                          f"epochs and a trial count for each)")
    return rungs, counts


def trained_to(t: Trial) -> int | None:
    """The epochs the trial's run was last set to train (summary.json `epochs_planned`), if it
    finished them (completed, or stopped by its own rule); None if it has not."""
    from pathlib import Path

    if not t.run_dir or t.status not in FINISHED:
        return None
    planned = run_state(Path(t.run_dir))[1].get("epochs_planned")
    return planned if isinstance(planned, int) and not isinstance(planned, bool) else None


def score(t: Trial) -> tuple[str, float] | None:
    """(the monitored metric, its best value) of a finished trial's run, or None."""
    from pathlib import Path

    if not t.run_dir or t.status not in FINISHED:
        return None
    _, summary = run_state(Path(t.run_dir))
    metric = (summary.get("best_by") or {}).get("metric") or "val_loss"
    value = (summary.get("best") or {}).get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return metric, float(value)


def promote(trials: list[Trial], count: int, rung: int) -> list[Trial]:
    """The `count` best of `trials` by their monitored metric (ties: the lower trial id), moved to
    `rung`. Trials that failed, diverged or have no metric are never promoted."""
    scored = [(s, t) for t in trials if (s := score(t)) is not None]
    ranked = sorted(scored, key=lambda st: (-st[0][1] if higher_is_better(st[0][0]) else st[0][1], st[1].id))
    best = [t for _, t in ranked[:count]]
    for t in best:
        t.rung = rung
    return best


def run_halving(sweep: Sweep, on_update: Callable[[Trial], None]) -> None:
    """Run the rungs of `sweep.halving` on local workers, or on the Dask cluster of `sweep.dask`;
    either is kept from the first rung to the last."""
    from nnctl.sweep_local import Pool

    if sweep.dask:
        from nnctl.sweep_dask import DaskSweep

        with DaskSweep(sweep, sweep.dask, on_update) as cluster:
            run_rungs(sweep, cluster.run)
        return
    pool = Pool(sweep, on_update)
    try:
        run_rungs(sweep, lambda todo: pool.run(list(todo), close=False))
    finally:
        pool.close()


def run_rungs(sweep: Sweep, run_trials: Callable[[list[Trial]], None]) -> None:
    """Run the rungs of `sweep.halving`, from wherever an earlier run of this sweep stopped;
    `run_trials(trials)` is the backend: it runs each trial to `trial.epochs` epochs."""
    rungs, counts = check_record(sweep)
    for t in sweep.trials:
        t.rung = t.rung or 0
    for k, epochs in enumerate(rungs):
        members = [t for t in sweep.trials if t.rung >= k]
        todo = [t for t in members if t.rung == k and t.status not in ("failed", "diverged")
                and (trained_to(t) or 0) < epochs]
        for t in todo:
            t.epochs = epochs
        sweep.save()
        if todo:
            run_trials(todo)
        if k + 1 == len(rungs) or any(t.rung > k for t in members):  # the last rung, or promoted already
            continue
        promote(members, counts[k + 1], k + 1)
        sweep.save()


def rung_column(sweep: Sweep, columns: list[str], rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The sweep's comparison table with a `rung` column (the last rung each trial reached, beside
    the table's `epochs`), the furthest rungs first."""
    from pathlib import Path

    by_run = {Path(t.run_dir).name: t.rung or 0 for t in sweep.trials if t.run_dir}
    for row in rows:  # (a row folded over seeds names each seed's run: they stopped at the same rung)
        runs = row.get("run") if isinstance(row.get("run"), list) else [row.get("run")]
        row["rung"] = max((by_run.get(Path(str(r)).name, -1) for r in runs), default=-1)
        row["rung"] = None if row["rung"] < 0 else row["rung"]
    at = columns.index("status") + 1 if "status" in columns else 0
    columns = [*columns[:at], "rung", *[c for c in columns[at:] if c != "rung"]]
    rows = sorted(rows, key=lambda r: -1 if r["rung"] is None else -r["rung"])
    return columns, rows
