"""nnctl train, resume and sweep."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from nnctl.cli.app import (
    QUIET_FINDINGS,
    ConfigArg,
    JsonOpt,
    QuietOpt,
    SetOpt,
    Tracker,
    WidthOpt,
    app,
    handle_errors,
    print_json,
    runs_dir_option,
)
from nnctl.errors import NnctlError


@app.command()
@handle_errors
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="Run name (default: the config's name, else its "
                                                                  "file stem).")] = None,
    runs_dir: runs_dir_option("Folder that receives the run directory.") = Path("runs"),
    seed: Annotated[int | None, typer.Option(metavar="N", help="Override the seed (split, init, shuffle, dropout).")
                    ] = None,
    log: Annotated[Tracker | None, typer.Option(
        "--log", help="mlflow: also track the run in MLflow (params, per-epoch metrics, findings, the run dir's "
        "files), in MLFLOW_TRACKING_URI or MLflow's local default. Sets train.log.", show_default=False)] = None,
    quiet: QuietOpt = 0,
    json_out: JsonOpt = False,
):
    """Train a model from CONFIG and write a run directory under --runs-dir.

    The last line of stdout is the run directory (with --json: one JSON document).
    Exit code 0 on success, 1 if training diverged or was interrupted, 2 for bad input.

    Examples:

    \b
      nnctl train configs/moons.yaml
      nnctl train configs/moons.yaml --set optimizer.lr=0.01 --set model.hidden=[32] --seed 3
      nnctl train configs/iris_csv.yaml --json | jq .best
      nnctl train configs/moons.yaml --log mlflow       # then: mlflow ui
      NNCTL_RUNS_DIR=~/experiments nnctl train configs/moons.yaml -q
    """
    from nnctl import api

    def start(on_epoch, **kw):
        return api.train(config, set_ or [], runs_dir=runs_dir, name=name, seed=seed, log=log and log.value,
                         progress=on_epoch, command=["nnctl", *sys.argv[1:]], **kw)

    _run_training(start, quiet, json_out)


@app.command()
@handle_errors
def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="An interrupted run directory (or a finished "
                                            "one, with --epochs).",
                                            show_default=False)],
    epochs: Annotated[int | None, typer.Option(min=1, metavar="N", help="Train to N epochs in all: extends a "
                                               "finished run (or gives an interrupted one a new total).")] = None,
    quiet: QuietOpt = 0,
    json_out: JsonOpt = False,
):
    """Continue an interrupted run from its last checkpoint, in the same run directory.

    The finished run is bit-identical to one that was never interrupted. With --epochs N, a
    finished run continues to N epochs in all, from the checkpoint it kept at its end: bit-identical
    to training N epochs from the start when the schedule does not depend on the total (not cosine)
    and early stopping is off (otherwise the message says what differs). Refused if the run
    diverged, if its config.yaml or data file changed since the checkpoint, if the run directory is
    read-only, or (exit 1) while another process is training in it.

    Examples:

    \b
      nnctl resume runs/moons-20261124-101500-ab12cd
      nnctl resume runs/moons-20261124-101500-ab12cd --epochs 200
    """
    from nnctl.api import Run
    from nnctl.training.session import resume_run

    _run_training(lambda **kw: Run(resume_run(run_dir, epochs=epochs, **kw).run.path), quiet, json_out)


def _run_training(start, quiet: int, json_out: bool) -> None:
    """Run train_run/resume_run with a progress bar and findings on stderr; print the result.
    -q hides the bar, the data notes and the summary; -qq the findings too."""
    from nnctl.cli import render
    from nnctl.training.session import StopOnSignals

    StopOnSignals.ignore_after_stop = True  # this process ends once the run is reported
    progress = render.Progress(enabled=not quiet and sys.stderr.isatty())

    def on_finding(f: dict) -> None:
        if quiet < QUIET_FINDINGS:
            render.finding(f, progress.console)

    def on_start(info: dict) -> None:
        if not quiet and not info.get("resumed_from"):
            render.data_notes(info)
        progress.start(info)

    def on_notice(message: str) -> None:  # tracking (train.log) problems: shown even with --quiet
        progress.console.print(f"[yellow]warning:[/] {render.escape(message)}")

    try:
        result = start(on_start=on_start, on_epoch=progress.update, on_finding=on_finding, on_notice=on_notice)
    except NnctlError as exc:
        if json_out and exc.run_dir is not None:  # --json: stdout is always one JSON document
            from nnctl.runs import RunDir, read_summary

            try:
                summary = read_summary(RunDir(exc.run_dir))
            except NnctlError:
                summary = None
            if summary is not None:
                print_json(summary)
                exc.run_dir = None
        raise
    finally:
        progress.stop()
    summary = result.summary  # `result` is an nnctl.Run
    if json_out:
        print_json(summary)
        return
    if not quiet:
        render.training_result(summary)
    print(result.path)


@app.command()
@handle_errors
def sweep(
    config: Annotated[Path | None, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML); its sweep: "
                                                  "block, if any, is the default plan.", show_default=False)] = None,
    grid: Annotated[list[str] | None, typer.Option(metavar="KEY=V1,V2,...", help="Values to try for a key; "
                                                   "repeat for a product grid. Example: --grid optimizer.lr="
                                                   "0.1,0.01 --grid model.hidden=[16],[32,32]")] = None,
    random: Annotated[int, typer.Option(min=0, metavar="N", help="Random points to draw from the --space "
                                                                 "distributions.")] = 0,
    space: Annotated[list[str] | None, typer.Option(metavar="KEY=DIST", help="uniform(a,b), loguniform(a,b), "
                                                    "int(a,b) or choice(a,b,...); repeatable.")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, metavar="K", help="Replicates of every point (seeds seed, "
                                              "seed+1, ...).")] = None,
    jobs: Annotated[int | None, typer.Option(min=1, metavar="N", help="Worker processes, each training one "
                                                                      "trial after another (default: the number "
                                                                      "of cores).")] = None,
    runs_dir: runs_dir_option("Folder that receives the sweep folder.") = Path("runs"),
    name: Annotated[str | None, typer.Option(metavar="NAME", help="Sweep name (default: the config's name).")
                    ] = None,
    dask: Annotated[str | None, typer.Option(metavar="ADDRESS", help="Run the trials on a Dask cluster, e.g. "
                                             "tcp://127.0.0.1:8786.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", metavar="SWEEP_DIR", help="Run only the trials of "
                                                "this sweep that are missing, failed or interrupted.")] = None,
    halving: Annotated[int | None, typer.Option(min=2, metavar="ETA", help="Successive halving: every trial "
                                                "trains a few epochs, the best 1/ETA (by the monitored metric, "
                                                "val_loss unless early_stopping says) continue to ETA times more, "
                                                "up to train.epochs.")] = None,
    min_epochs: Annotated[int | None, typer.Option("--min-epochs", min=1, metavar="E", help="With --halving: "
                                                   "epochs of the first rung (default: train.epochs / ETA^k, k "
                                                   "halvings, so the rungs reach train.epochs).")] = None,
    search: Annotated[str, typer.Option(metavar="random|tpe", help="How the --random N points of the --space are "
                                        "chosen: random (all drawn up front), or tpe (Optuna's TPE proposes each "
                                        "trial from the results so far; pip install 'nnctl[tpe]').")] = "random",
    width: WidthOpt = None,
    quiet: QuietOpt = 0,
    json_out: JsonOpt = False,
):
    """Run many trials of CONFIG: a grid, random search, seed replicates; in parallel or on Dask.

    --jobs worker processes (one BLAS thread each) train the trials, each worker trial after trial
    as `nnctl train` would (a worker that dies is replaced). All of them go into
    one folder, runs/<name>-sweep-<stamp>-<hex>/, with sweep.json listing each trial's overrides,
    run dir and status. A failed trial never stops the others; the exit code is 1 if any failed.
    At the end the comparison table of the sweep is printed (mean ± std over seeds), then the
    sweep folder as the last line; with --json one document instead: {"sweep_dir", "trials",
    "runs"} (runs: the rows of compare --json).

    Examples:

    \b
      nnctl sweep configs/moons.yaml --grid optimizer.lr=0.001,0.01,0.1 --grid model.activation=relu,tanh
      nnctl sweep configs/moons.yaml --random 20 --space optimizer.lr='loguniform(1e-4,1e-1)' --seeds 3
      nnctl sweep configs/moons.yaml --random 27 --space optimizer.lr='loguniform(1e-4,1e-1)' --halving 3
      nnctl sweep configs/moons.yaml --random 30 --search tpe --space optimizer.lr='loguniform(1e-4,1e-1)'
      nnctl sweep --resume runs/moons-sweep-20261124-101500-ab12cd
    """
    from nnctl.cli import render
    from nnctl.compare import compare_table
    from nnctl.runs import FINISHED, collect_runs
    from nnctl.sweep import new_sweep, resume_sweep, run_sweep

    err = render.stderr()
    if resume is not None:
        sw, todo = resume_sweep(resume, jobs, dask, notice=render.info)
    elif config is None:
        raise NnctlError("sweep needs CONFIG (or --resume SWEEP_DIR)")
    else:
        sw = new_sweep(config, grid or [], space or [], random, seeds, jobs or os.cpu_count() or 1, runs_dir, name,
                       dask, ["nnctl", *sys.argv[1:]], halving, min_epochs, search)
        todo = [t for t in sw.trials if t.status == "pending"]
    where = f"on Dask at {sw.dask}" if sw.dask else f"{sw.jobs} at a time"
    if sw.search:
        n = sw.search.get("n")
        render.info(f"sweep: TPE search, {n} trials ({len(sw.trials)} so far, {len(todo)} to run again) in "
                    f"{sw.path}, {where}")
    else:
        render.info(f"sweep: {len(sw.trials)} trials ({len(todo)} to run) in {sw.path}, {where}")
    if sw.halving:
        h = sw.halving
        render.info(f"successive halving, ETA {h['eta']}: " + ", ".join(
            f"{n} trial{'s' * (n != 1)} x {e} epoch{'s' * (e != 1)}" for n, e in zip(h["counts"], h["rungs"])))
    live = None
    if sys.stderr.isatty() and not quiet:
        from rich.live import Live

        live = Live(render.sweep_status(sw), console=err, refresh_per_second=4, transient=True)
        live.start()

    def on_update(trial):
        if live is not None:
            live.update(render.sweep_status(sw))
        elif trial.status != "running":
            extra = f": {trial.error}" if trial.error else ""
            rung = f" (rung {trial.rung}, {trial.epochs} epochs)" if sw.halving and trial.epochs else ""
            render.info(f"{trial.name} {trial.status}{rung}{extra}")

    try:
        run_sweep(sw, todo, on_update)
    finally:
        sw.lock.release()  # every trial has ended
        if live is not None:
            live.stop()
    found, _ = collect_runs([sw.path])
    group = len({t.seed for t in sw.trials}) > 1
    failed = [t for t in sw.trials if t.status not in FINISHED]
    if json_out:
        rows = compare_table(found, group_seeds=group)[1] if found else []
        print_json({"sweep_dir": str(sw.path), "trials": [t.as_dict() for t in sw.trials], "runs": rows}, indent=2)
    elif found:
        from nnctl.cli.table import output_width

        swept = tuple(dict.fromkeys(k for t in sw.trials for k in t.overrides))  # what the sweep varies
        columns, rows = compare_table(found, group_seeds=group)
        if sw.halving:  # at which rung (epochs) each trial stopped
            from nnctl.sweep_halving import rung_column

            columns, rows = rung_column(sw, columns, rows)
        render.compare_table(columns, rows, output_width(width), focus=swept)
    for t in failed:
        err.print(f"[red]{t.name} {t.status}[/] {render.escape(str(t.overrides))}: {render.escape(t.error)}")
    if not json_out:
        print(sw.path)
    if failed:
        raise typer.Exit(1)
