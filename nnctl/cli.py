"""The `nnctl` command line: parse, call one library function, render, map errors to exit codes.

Exit codes: 0 success; 1 the work ran but failed (diverged, interrupted); 2 bad usage or bad
input. Messages go to stderr; stdout carries only results (the run dir path, or one JSON
document with --json), so scripts can rely on it. Heavy modules are imported inside commands.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from nnctl.errors import NnctlError

app = typer.Typer(
    name="nnctl",
    help="Train NumPy multilayer perceptrons from YAML experiment specs.\n\n"
    "Start with:  nnctl train configs/moons.yaml",
    no_args_is_help=True,
    add_completion=False,
    # plain help text and plain tracebacks (for bugs only: user errors never show one): typer's
    # rich help and rich tracebacks import markdown-it and friends, ~50 ms on every start-up
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    from rich.text import Text

    _stderr().print(Text("error: ", style="bold red") + Text(message))


def handle_errors(fn):
    """Turn NnctlError into one message on stderr and its exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NnctlError as exc:
            _error(str(exc))
            if exc.run_dir is not None:
                print(exc.run_dir)  # scripts still learn where the (failed) run is
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C before training started (loading data, importing)
            _error("interrupted")
            raise typer.Exit(1) from None

    return wrapper


def _version_callback(value: bool):
    if value:
        import nnctl

        print(f"nnctl {nnctl.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """Train NumPy multilayer perceptrons from YAML experiment specs."""


class _Progress:
    """A rich progress bar on stderr: epoch, loss, validation metric, ETA. Silent when not a TTY."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.task = None
        self.metric = "val_loss"

    def start(self, info: dict) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.metric = "val_accuracy" if info["task"] == "classification" else "val_r2"
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=_stderr(),
                            transient=True)
        self.bar.start()
        self.task = self.bar.add_task(f"epochs ({info['name']})", total=info["epochs_planned"], stats="")

    def update(self, row: dict) -> None:
        if self.bar is None:
            return
        stats = f"loss {row['train_loss']:.4f}"
        if row.get(self.metric) is not None:
            stats += f"  {self.metric} {row[self.metric]:.4f}"
        self.bar.update(self.task, completed=row["epoch"], stats=stats)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


@app.command()
@handle_errors
def train(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML). See configs/ for "
                                           "examples.", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", metavar="KEY=VALUE",
        help="Override a config key (dotted path, YAML value); repeatable. "
             "Example: --set optimizer.lr=0.01 --set model.hidden=[64,32]")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the config's name, else its file stem).")
                    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder that receives the run directory.")
                        ] = Path("runs"),
    seed: Annotated[int | None, typer.Option(help="Override the seed (split, init, shuffle, dropout).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout instead of the "
                                                         "run dir path.")] = False,
):
    """Train a model from CONFIG and write a run directory under --runs-dir.

    The last line of stdout is the run directory (with --json: one JSON document).
    Exit code 0 on success, 1 if training diverged or was interrupted, 2 for bad input.

    Examples:

    \b
      nnctl train configs/moons.yaml
      nnctl train configs/moons.yaml --set optimizer.lr=0.01 --set model.hidden=[32] --seed 3
      nnctl train configs/iris_csv.yaml --json | jq .best
    """
    from nnctl.config import load_spec
    from nnctl.train import train_run

    spec = load_spec(config, set_ or [], name=name, seed=seed)
    _run_training(lambda **kw: train_run(spec, runs_dir, command=["nnctl", *sys.argv[1:]], **kw), quiet, json_out)


def _run_training(start, quiet: bool, json_out: bool) -> None:
    """Run train_run/resume_run with a progress bar and findings on stderr; print the result."""
    err = _stderr()
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())

    def on_finding(f: dict) -> None:
        if quiet:
            return
        console = progress.bar.console if progress.bar is not None else err
        when = f" (epoch {f['epoch']})" if f.get("epoch") else ""
        console.print(f"[bold yellow]{f['code']}[/]{when}: {_escape(f['detail'])}. {_escape(f['why'])}.\n"
                      f"  try: {_escape(f['try'])}  ·  nnctl explain {f['code']}")

    try:
        result = start(on_start=progress.start, on_epoch=progress.update, on_finding=on_finding)
    except NnctlError as exc:
        if json_out and exc.run_dir is not None:  # --json: stdout is always one JSON document
            from nnctl.runs import jsonable

            try:
                print(json.dumps(jsonable(json.loads((Path(exc.run_dir) / "summary.json").read_text()))))
                exc.run_dir = None
            except (OSError, ValueError):
                pass
        raise
    finally:
        progress.stop()
    s = result.summary
    if json_out:
        from nnctl.runs import jsonable

        print(json.dumps(jsonable(s)))
        return
    if not quiet:
        final, best = s["final"] or {}, s["best"] or {}
        metric = "val_accuracy" if s["task"] == "classification" else "val_r2"
        err.print(f"[green]{s['status']}[/]: {s['epochs_run']} epochs in {s['wall_time_s']:.2f} s · "
                  f"train_loss {_fmt(final.get('train_loss'))} · val_loss {_fmt(final.get('val_loss'))} · "
                  f"{metric} {_fmt(final.get(metric))}"
                  + (f" (best {_fmt(best.get(metric))} at epoch {best.get('epoch')})" if best else ""))
        if s["message"]:
            err.print(_escape(s["message"]))
    print(result.run.path)


@app.command()
@handle_errors
def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="An interrupted run directory.",
                                            show_default=False)],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout instead of the "
                                                         "run dir path.")] = False,
):
    """Continue an interrupted run from its last checkpoint, in the same run directory.

    The finished run is bit-identical to one that was never interrupted. Refused if the run
    finished or diverged, if its config.yaml or data file changed since the checkpoint, or
    (exit 1) while another process is training in it.

    Example: nnctl resume runs/moons-20261124-101500-ab12cd
    """
    from nnctl.train import resume_run

    _run_training(lambda **kw: resume_run(run_dir, **kw), quiet, json_out)


@app.command()
@handle_errors
def sweep(
    config: Annotated[Path | None, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML); its sweep: "
                                                  "block, if any, is the default plan.", show_default=False)] = None,
    grid: Annotated[list[str] | None, typer.Option(metavar="KEY=V1,V2,...", help="Values to try for a key; "
                                                   "repeat for a product grid. Example: --grid optimizer.lr="
                                                   "0.1,0.01 --grid model.hidden=[16],[32,32]")] = None,
    random: Annotated[int, typer.Option(min=0, help="Random points to draw from the --space distributions.")] = 0,
    space: Annotated[list[str] | None, typer.Option(metavar="KEY=DIST", help="uniform(a,b), loguniform(a,b), "
                                                    "int(a,b) or choice(a,b,...); repeatable.")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Replicates of every point (seeds seed, seed+1, ...)."
                                              )] = None,
    jobs: Annotated[int | None, typer.Option(min=1, help="Trials at once (default: the number of cores).")
                    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder that receives the sweep folder.")
                        ] = Path("runs"),
    name: Annotated[str | None, typer.Option(help="Sweep name (default: the config's name).")] = None,
    dask: Annotated[str | None, typer.Option(metavar="ADDRESS", help="Run the trials on a Dask cluster, e.g. "
                                             "tcp://127.0.0.1:8786.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", metavar="SWEEP_DIR", help="Run only the trials of "
                                                "this sweep that are missing, failed or interrupted.")] = None,
):
    """Run many trials of CONFIG: a grid, random search, seed replicates; in parallel or on Dask.

    Every trial is a separate `nnctl train` process with one BLAS thread. All of them go into
    one folder, runs/<name>-sweep-<stamp>-<hex>/, with sweep.json listing each trial's overrides,
    run dir and status. A failed trial never stops the others; the exit code is 1 if any failed.
    At the end the comparison table of the sweep is printed (mean ± std over seeds).

    Examples:

    \b
      nnctl sweep configs/moons.yaml --grid optimizer.lr=0.001,0.01,0.1 --grid model.activation=relu,tanh
      nnctl sweep configs/moons.yaml --random 20 --space optimizer.lr='loguniform(1e-4,1e-1)' --seeds 3
      nnctl sweep --resume runs/moons-sweep-20261124-101500-ab12cd
    """
    from nnctl.sweep import Sweep, create_sweep_dir, parse_grid, parse_space, plan

    if resume is not None:
        sw = Sweep.load(resume)
        todo = []
        for t in sw.trials:
            done = t.status in ("completed", "early_stopped", "stopped_at_loss")
            if done and t.run_dir and Path(t.run_dir).is_dir():
                continue
            if t.status == "diverged":  # deterministic: it would diverge again
                continue
            if t.status == "failed" and t.run_dir and Path(t.run_dir).is_dir():
                # keep the failed attempt for inspection, out of compare's way (hidden names are skipped)
                old = Path(t.run_dir)
                old.rename(old.with_name(f".failed-{old.name}"))
                t.run_dir = None
            if done:  # finished, but its run dir is gone: run it again
                t.run_dir, t.status = None, "pending"
            todo.append(t)
        if jobs:
            sw.jobs = jobs
        if dask:
            sw.dask = dask
    else:
        if config is None:
            raise NnctlError("sweep needs CONFIG (or --resume SWEEP_DIR)")
        from nnctl.config import load_spec

        spec = load_spec(config)
        block = spec.config.get("sweep") or {}
        g = {k: (v if isinstance(v, list) else [v]) for k, v in (block.get("grid") or {}).items()}
        g.update(parse_grid(grid or []))
        sp = parse_space([f"{k}={v}" for k, v in (block.get("space") or {}).items()])
        sp.update(parse_space(space or []))
        n_random = random or block.get("random") or 0
        n_seeds = seeds or block.get("seeds") or 1
        trials = plan(g, sp, n_random, n_seeds, spec.config["seed"])
        for t in trials:  # a bad value fails its trial up front, with the message; the rest still run
            try:
                load_spec(config, [a for a in t.set_args() if a != "--set"], seed=t.seed)
            except NnctlError as exc:
                t.status, t.error = "failed", str(exc)
        folder = create_sweep_dir(runs_dir, name or spec.name)
        sw = Sweep(folder, config.resolve(), ["nnctl", *sys.argv[1:]], trials, jobs or os.cpu_count() or 1, dask)
        todo = [t for t in trials if t.status == "pending"]
    sw.save()
    _run_sweep(sw, todo)


def _run_sweep(sw, todo) -> None:
    from nnctl.compare import collect_runs, compare_table
    from nnctl.sweep import DONE, run_dask, run_local

    err = _stderr()
    live_enabled = sys.stderr.isatty()
    err.print(f"sweep: {len(sw.trials)} trials ({len(todo)} to run) in {_escape(str(sw.path))}, "
              + (f"on Dask at {sw.dask}" if sw.dask else f"{sw.jobs} at a time"))

    def table():
        from rich.table import Table

        counts = {s: sum(t.status == s for t in sw.trials) for s in ("pending", "running", "failed")}
        done = sum(t.status in DONE for t in sw.trials)
        scored = [t for t in sw.trials if t.metric is not None]
        best = max(scored, key=lambda t: t.metric, default=None)
        tab = Table(show_header=True, box=None)
        for col in ("done", "running", "pending", "failed", "best so far"):
            tab.add_column(col)
        tab.add_row(str(done), str(counts["running"]), str(counts["pending"]), str(counts["failed"]),
                    f"{best.metric:.4f} ({best.name}: {_escape(str(best.overrides))})" if best else "-")
        return tab

    live = None
    if live_enabled:
        from rich.live import Live

        live = Live(table(), console=err, refresh_per_second=4, transient=True)
        live.start()

    def on_update(trial):
        if live is not None:
            live.update(table())
        elif trial.status != "running":
            extra = f": {trial.error}" if trial.error else ""
            err.print(f"{trial.name} {trial.status}{_escape(extra)}")

    import signal

    def on_term(signum, frame):  # SIGTERM stops the sweep like Ctrl-C: trials checkpoint, then exit 1
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if sw.dask:
            run_dask(sw, todo, sw.dask, on_update)
        else:
            run_local(sw, todo, on_update)
    except KeyboardInterrupt:
        from nnctl.errors import TrainingFailed

        raise TrainingFailed(f"sweep interrupted; running trials were checkpointed. Continue with: "
                             f"nnctl sweep --resume {sw.path}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if live is not None:
            live.stop()
        sw.save()
    found, _ = collect_runs([sw.path])
    seeds = len({t.seed for t in sw.trials})
    if found:
        columns, rows = compare_table(found, group_seeds=seeds > 1)
        _render_compare(columns, rows)
    failed = [t for t in sw.trials if t.status not in DONE]
    for t in failed:
        err.print(f"[red]{t.name} {t.status}[/] {_escape(str(t.overrides))}: {_escape(t.error)}")
    print(sw.path)
    if failed:
        raise typer.Exit(1)


@app.command("eval")
@handle_errors
def eval_(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by nnctl train.",
                                           show_default=False)],
    data: Annotated[Path | None, typer.Option(help="Evaluate on this CSV (same columns as the training data, "
                                                   "with the target) instead of the held-out test split.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
):
    """Evaluate a trained run on its held-out test split, or on another CSV; writes eval.json.

    Classification: loss, accuracy, macro-F1, per-class precision/recall/F1 and the confusion
    matrix. Regression: loss, mse, mae, r2. The model is rebuilt from the run directory alone.

    Examples:

    \b
      nnctl eval runs/moons-20261124-101500-ab12cd
      nnctl eval runs/iris-csv-... --data new_flowers.csv --json
    """
    from nnctl.evaluate import evaluate_run

    result = evaluate_run(run_dir, data)
    if json_out:
        print(json.dumps(result))
        return
    _render_eval(result)


def _render_eval(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(highlight=False, soft_wrap=True)
    err = _stderr()
    for note in result["notes"]:
        err.print(f"[yellow]note:[/] {_escape(note)}")
    m = result["metrics"]
    where = "the test split" if result["split"] == "test" else result["source"]
    out.print(f"[bold]{_escape(result['name'])}[/] on {_escape(where)} ({m['n_rows']} rows)")
    if result["task"] == "regression":
        out.print(f"loss (mse) {m['loss']:.6g} · mae {m['mae']:.6g} · r2 {m['r2']:.4g}")
        return
    out.print(f"loss {m['loss']:.4g} · accuracy {m['accuracy']:.4f} · macro-F1 {m['macro_f1']:.4f}")
    table = Table(title="per class")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, r in m["per_class"].items():
        table.add_row(_escape(name), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                      str(r["support"]))
    out.print(table)
    cm = m["confusion_matrix"]
    table = Table(title="confusion matrix (rows: true class, columns: predicted)")
    table.add_column("true \\ pred")
    for label in cm["labels"]:
        table.add_column(_escape(label), justify="right")
    for label, row in zip(cm["labels"], cm["matrix"]):
        table.add_row(_escape(label), *(str(v) for v in row))
    out.print(table)


@app.command()
@handle_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by nnctl train.",
                                           show_default=False)],
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="Rows to predict: the training "
                                              "feature columns (the target column may be present).",
                                              show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the CSV here (default: stdout).")
                      ] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add one p_<class> probability column per class.")
                     ] = False,
):
    """Predict new rows with a trained run, in the original label names.

    The output is the input CSV with a `prediction` column (and p_<class> columns with --proba).
    The run's preprocessing is applied; missing, unexpected or unseen values are errors naming
    the column and line.

    Example: nnctl predict runs/iris-csv-... datasets/iris.csv --proba -o predictions.csv
    """
    import csv
    import io

    from nnctl.evaluate import predict_csv

    header, rows = predict_csv(run_dir, input_csv, proba=proba)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        from nnctl.runs import write_atomic

        try:
            write_atomic(output, buf.getvalue())
        except OSError as exc:
            raise NnctlError(f"--output {output}: cannot write ({exc.strerror})") from None
        _stderr().print(f"wrote {len(rows)} predictions to {_escape(str(output))}")


@app.command()
@handle_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run directories, or folders of "
                                               "them (runs/* and runs both work).", show_default=False)],
    sort: Annotated[str | None, typer.Option(help="Sort by this column; prefix '-' for descending, e.g. "
                                                  "--sort=-best_val_accuracy.")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the first N rows (after sorting).")] = None,
    cols: Annotated[str | None, typer.Option(help="Comma-separated column globs to show, e.g. 'val_*,lr'.")
                    ] = None,
    all_params: Annotated[bool, typer.Option("--all-params", help="Every config key, not just the ones that "
                                                                  "differ.")] = False,
    group_seeds: Annotated[bool, typer.Option("--group-seeds", help="One row per config across seeds: mean "
                                                                    "± std.")] = False,
    form: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or markdown.")] = "table",
    plot: Annotated[Path | None, typer.Option(help="Also write the runs' validation curves to this PNG.")
                    ] = None,
):
    """Line up runs: status, the hyperparameters that differ, best/final/test metrics, time, curve.

    A running, diverged, interrupted or damaged run is shown as such; folders that are not runs
    are skipped with a note on stderr.

    Examples:

    \b
      nnctl compare runs/*
      nnctl compare runs --sort=-best_val_accuracy --top 5 --format markdown
      nnctl compare runs/lr-* --cols 'optimizer.*,*val_accuracy' --plot curves.png
    """
    from nnctl.compare import collect_runs, compare_table, plot_curves, render, select_columns, sort_rows

    if form not in ("table", "csv", "json", "markdown"):
        raise NnctlError(f"--format {form}: expected table, csv, json or markdown")
    found, notes = collect_runs(runs)
    err = _stderr()
    for note in notes:
        err.print(f"[yellow]note:[/] {_escape(note)}")
    if not found:
        raise NnctlError("no run directories among the given paths")
    columns, rows = compare_table(found, all_params=all_params, group_seeds=group_seeds)
    if sort:
        rows = sort_rows(rows, sort, columns, descending=desc)
    if top:
        rows = rows[:top]
    columns = select_columns(columns, [c.strip() for c in cols.split(",")] if cols else None)
    if plot is not None:
        chosen = {p for r in rows for p in (r["run"] if isinstance(r["run"], list) else [r["run"]])}
        plot_curves([r for r in found if str(r.path) in chosen], plot)
        err.print(f"wrote {_escape(str(plot))}")
    if form != "table":
        sys.stdout.write(render(columns, rows, form))
        return
    _render_compare(columns, rows)


def _render_compare(columns: list[str], rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    from nnctl.compare import fmt

    names = [r.get("name") for r in rows]
    shown = [c for c in columns if not c.endswith("_std") and c != "run"]
    if len(set(names)) < len(names) and "run" in columns:  # same names: show which run dir is which
        shown.insert(1, "run")
        rows = [{**r, "run": Path(r["run"]).name if isinstance(r["run"], str) else f"{len(r['run'])} runs"}
                for r in rows]
    table = Table(show_lines=False, header_style="bold")
    styles = {"completed": "green", "early_stopped": "green", "stopped_at_loss": "green", "running": "cyan",
              "diverged": "red", "failed": "red", "damaged": "red", "interrupted": "yellow"}
    for c in shown:
        table.add_column(c, justify="right" if c not in ("name", "status", "curve", "problem") else "left",
                         no_wrap=c != "problem")
    for r in rows:
        cells = []
        for c in shown:
            text = _escape(fmt(r.get(c), c, r.get(f"{c}_std")))
            if c == "status":
                text = f"[{styles.get(str(r.get(c)), 'white')}]{text}[/]"
            cells.append(text)
        table.add_row(*cells)
    console = Console()
    # on a terminal: its width (rich shrinks columns); piped: never wrap a row
    (console if console.is_terminal else Console(width=100_000)).print(table)


@app.command()
@handle_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by nnctl train.",
                                            show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PNG to write (default: "
                                                                        "RUN_DIR/plot.png).")] = None,
):
    """Plot a run's learning curves (loss, metric, lr); for 2-D classification also the decision
    boundary over the training points, for 1-D regression the fitted function.

    Example: nnctl plot runs/moons-... -o moons.png   (try a config with activation: linear)
    """
    from nnctl.plot import plot_run

    path, notes = plot_run(run_dir, output)
    for note in notes:
        _stderr().print(f"[yellow]note:[/] {_escape(note)}")
    print(path)


@app.command()
@handle_errors
def inspect(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by nnctl train.",
                                            show_default=False)],
    plot: Annotated[Path | None, typer.Option(help="Also write per-layer health curves to this PNG.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the findings and the per-layer table as "
                                                          "JSON.")] = False,
):
    """Per-layer health over training: activations, dead ReLUs, saturation, gradients, update ratios.

    Reads diagnostics.csv (written while training, unless train.diagnostics is false) and the
    findings in summary.json, with what each means and what to try.

    Example: nnctl inspect runs/moons-...  then  nnctl explain DEAD_RELU
    """
    from nnctl.inspect import inspect_run, plot_health

    report = inspect_run(run_dir)
    if plot is not None:
        plot_health(report, plot)
        _stderr().print(f"wrote {_escape(str(plot))}")
    if json_out:
        print(json.dumps(report))
        return
    _render_inspect(report)


def _render_inspect(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from nnctl.compare import fmt

    out = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"layer health of {_escape(report['name'])} (probe batch, selected epochs)")
    cols = ["epoch", "layer", "units", "act_mean", "act_std", "dead_frac", "saturated_frac", "grad_rms",
            "update_ratio"]
    for c in cols:
        table.add_column(c.replace("_frac", "").replace("_", " "), justify="right")
    last = None
    for r in report["rows"]:
        if last is not None and r["epoch"] != last:
            table.add_section()
        last = r["epoch"]
        cells = []
        for c in cols:
            v = r.get(c)
            if not isinstance(v, (int, float)) or v != v:
                cells.append("")
            elif c in ("dead_frac", "saturated_frac"):
                cells.append(f"{v:.0%}")
            elif c in ("grad_rms", "update_ratio"):
                cells.append(f"{v:.2e}")
            elif c in ("act_mean", "act_std"):
                cells.append(f"{v:.3f}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    (out if out.is_terminal else Console(highlight=False, width=200)).print(table)
    out.print(f"first/last layer gradient norm ratio (last epoch): {fmt(report['first_last_grad_ratio'])}")
    if not report["findings"]:
        out.print("[green]no findings[/]: nothing looks wrong inside the network.")
    for f in report["findings"]:
        when = f" (epoch {f['epoch']})" if f.get("epoch") else ""
        out.print(f"[bold yellow]{f['code']}[/]{when}: {_escape(f['detail'])}. {_escape(f['why'])}.\n"
                  f"  try: {_escape(f['try'])}")


@app.command()
@handle_errors
def explain(
    code: Annotated[str | None, typer.Argument(metavar="CODE", help="A finding code, e.g. DEAD_RELU. Omit to "
                                               "list them.", show_default=False)] = None,
):
    """Explain a finding's concept in plain words (DEAD_RELU, SATURATED, VANISHING_GRAD, ...)."""
    from nnctl.diagnostics import CATALOGUE
    from nnctl.errors import did_you_mean

    out = _stdout()
    if code is None:
        for c in CATALOGUE.values():
            out.print(f"[bold]{c.code:22s}[/] {_escape(c.title)}")
        return
    key = code.strip().upper().replace("-", "_")
    if key not in CATALOGUE:
        raise NnctlError(f"unknown finding code {code!r}{did_you_mean(key, CATALOGUE)}; `nnctl explain` lists them")
    c = CATALOGUE[key]
    out.print(f"[bold]{c.code}[/]: {_escape(c.title)}\n")
    out.print(_escape(c.explain) + "\n")
    out.print(f"[bold]Why it matters:[/] {_escape(c.why)}.")
    out.print(f"[bold]What to try:[/] {_escape(c.try_)}.")


def _stdout():
    from rich.console import Console

    return Console(highlight=False)


@app.command()
@handle_errors
def gradcheck(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML).", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                   help="Override a config key; repeatable.")] = None,
    rows: Annotated[int, typer.Option(min=1, max=256, help="Training rows in the check batch.")] = 8,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
):
    """Check backprop against finite differences on the model CONFIG builds (float64).

    Every parameter is nudged by ±1e-6 and the loss difference compared with the analytic
    gradient, per tensor (W1, b1, gamma1, ...). Exit code 0 if all agree to 1e-5, 1 if not.

    Example: nnctl gradcheck configs/moons.yaml
    """
    from nnctl.checks import gradcheck_spec
    from nnctl.config import load_spec

    result = gradcheck_spec(load_spec(config, set_ or []), rows=rows)
    if json_out:
        print(json.dumps(result))
    else:
        from rich.table import Table

        table = Table(title=f"gradient check: {result['n_params']} parameters, {result['rows']} rows, float64")
        for c in ("tensor", "shape", "max relative error", ""):
            table.add_column(c, justify="left" if c in ("tensor", "") else "right")
        for t in result["tensors"]:
            mark = "[green]ok[/]" if t["passed"] else "[bold red]FAIL[/]"
            table.add_row(t["key"], "x".join(map(str, t["shape"])), f"{t['rel_error']:.2e}", mark)
        out = _stdout()
        out.print(table)
        out.print("[green]passed[/]: backprop matches finite differences" if result["passed"] else
                  f"[bold red]failed[/]: some gradients differ by more than {result['tol']:g}")
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("lr-find")
@handle_errors
def lr_find(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML).", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                   help="Override a config key; repeatable.")] = None,
    start: Annotated[float, typer.Option(help="First learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(min=10, max=10_000, help="Optimizer steps in the ramp.")] = 100,
    plot: Annotated[Path | None, typer.Option(help="Also write loss against lr to this PNG.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
):
    """Learning-rate range test: raise the lr exponentially each step, watch the loss, suggest a rate.

    Uses the config's model, optimizer and batch size on its training split; no run is written.
    The suggestion is where the (smoothed) loss falls fastest, before it blows up.

    Example: nnctl lr-find configs/moons.yaml --plot lr.png
    """
    from nnctl.checks import lr_find as find
    from nnctl.config import load_spec

    result = find(load_spec(config, set_ or []), start=start, end=end, steps=steps)
    if plot is not None:
        from nnctl.plot import pyplot, save_figure

        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(result["lrs"], result["losses"], alpha=0.3, label="loss")
        ax.plot(result["lrs"], result["smoothed"], label="smoothed")
        ax.axvline(result["suggestion"], color="C3", ls="--", label=f"suggested {result['suggestion']:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, plot)
        _stderr().print(f"wrote {_escape(str(plot))}")
    if json_out:
        print(json.dumps(result))
        return
    from rich.table import Table

    table = Table(title=f"lr range test ({result['optimizer']}, batch {result['batch_size']})")
    table.add_column("lr", justify="right")
    table.add_column("smoothed loss", justify="right")
    n = len(result["lrs"])
    for i in sorted({*range(0, n, max(n // 15, 1)), n - 1}):
        table.add_row(f"{result['lrs'][i]:.2e}", f"{result['smoothed'][i]:.4f}")
    out = _stdout()
    out.print(table)
    out.print(f"suggested lr: [bold]{result['suggestion']:.2g}[/] (lowest loss at {result['min_loss_lr']:.2g}, "
              f"steepest fall at {result['steepest_lr']:.2g}). Try: --set optimizer.lr={result['suggestion']:.2g}")


@app.command()
@handle_errors
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
                      ] = None,
):
    """Print the JSON Schema of the config format, for editor validation of YAML.

    Generated from the same field table that validates configs, so it never drifts.
    Example (VS Code + the YAML extension): nnctl schema -o nnctl.schema.json, then put
    `# yaml-language-server: $schema=nnctl.schema.json` on the first line of a config.
    """
    from nnctl.config import config_schema

    text = json.dumps(config_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        from nnctl.runs import write_atomic

        try:
            write_atomic(output, text)
        except OSError as exc:
            raise NnctlError(f"--output {output}: cannot write ({exc.strerror})") from None


@app.command()
@handle_errors
def datasets(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
):
    """List the built-in datasets (data.source: sklearn:<name>) with their options and shapes.

    Nothing is downloaded: scikit-learn's toy data ships with it, and xor, spiral and sine are
    generated by nnctl. Options go in data.options; random_state defaults to 0 so the data is fixed.
    """
    from nnctl.datasets import BUILTINS

    if json_out:
        print(json.dumps({name: {"task": b.task, "summary": b.summary, "shape": b.shape, "options": b.options,
                                 "option_help": b.option_help} for name, b in BUILTINS.items()}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="built-in datasets (data.source: sklearn:<name>)", show_lines=True)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("task", no_wrap=True)
    table.add_column("default shape")
    table.add_column("what it is; data.options with their defaults")
    for name, b in BUILTINS.items():
        opts = ", ".join(f"{k}={v}" for k, v in b.options.items()) or "none"
        table.add_row(name, b.task, b.shape, f"{_escape(b.summary)}\n[dim]options: {_escape(opts)}[/]")
    Console(width=max(Console().width, 100)).print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
