"""The `nnctl` command line: parse, call one library function, render, map errors to exit codes.

Exit codes: 0 success; 1 the work ran but failed (diverged, interrupted); 2 bad usage or bad
input. Messages go to stderr; stdout carries only results (the run dir path, or one JSON
document with --json), so scripts can rely on it. Heavy modules are imported inside commands:
sweeps start nnctl hundreds of times.
"""

from __future__ import annotations

import enum
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

# ------------------------------------------------------------------------------------ shared options
ConfigArg = Annotated[Path, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML). See configs/ for "
                                           "examples.", show_default=False)]
RunDirArg = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by nnctl train.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE",
    help="Override a config key (dotted path, YAML value); repeatable. "
         "Example: --set optimizer.lr=0.01 --set model.hidden=[64,32]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, and nothing else there.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help="Also draw the result into this "
                                                                                 "PNG.")]


def output_option(help: str):
    """-o/--output FILE, with the command's own help."""
    return Annotated[Path | None, typer.Option("--output", "-o", help=help)]


class Format(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def handle_errors(fn):
    """Turn NnctlError into one message on stderr and its exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nnctl.cli import render

        try:
            return fn(*args, **kwargs)
        except NnctlError as exc:
            render.error(str(exc))
            if exc.run_dir is not None:
                print(exc.run_dir)  # scripts still learn where the (failed) run is
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C before training started (loading data, importing)
            render.error("interrupted")
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


def _print_json(doc) -> None:
    from nnctl.runs import jsonable

    print(json.dumps(jsonable(doc)))


def _write_output(output: Path, text: str) -> None:
    from nnctl.runs import write_atomic

    try:
        write_atomic(output, text)
    except OSError as exc:
        raise NnctlError(f"--output {output}: cannot write ({exc.strerror})") from None


# ------------------------------------------------------------------------------------ training
@app.command()
@handle_errors
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the config's name, else its file stem).")
                    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder that receives the run directory.")
                        ] = Path("runs"),
    seed: Annotated[int | None, typer.Option(help="Override the seed (split, init, shuffle, dropout).")] = None,
    quiet: QuietOpt = False,
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
    """
    from nnctl.config.load import load_spec
    from nnctl.training.session import train_run

    spec = load_spec(config, set_ or [], name=name, seed=seed)
    _run_training(lambda **kw: train_run(spec, runs_dir, command=["nnctl", *sys.argv[1:]], **kw), quiet, json_out)


@app.command()
@handle_errors
def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="An interrupted run directory.",
                                            show_default=False)],
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """Continue an interrupted run from its last checkpoint, in the same run directory.

    The finished run is bit-identical to one that was never interrupted. Refused if the run
    finished or diverged, if its config.yaml or data file changed since the checkpoint, or
    (exit 1) while another process is training in it.

    Example: nnctl resume runs/moons-20261124-101500-ab12cd
    """
    from nnctl.training.session import resume_run

    _run_training(lambda **kw: resume_run(run_dir, **kw), quiet, json_out)


def _run_training(start, quiet: bool, json_out: bool) -> None:
    """Run train_run/resume_run with a progress bar and findings on stderr; print the result."""
    from nnctl.cli import render

    progress = render.Progress(enabled=not quiet and sys.stderr.isatty())

    def on_finding(f: dict) -> None:
        if not quiet:
            render.finding(f, progress.console)

    try:
        result = start(on_start=progress.start, on_epoch=progress.update, on_finding=on_finding)
    except NnctlError as exc:
        if json_out and exc.run_dir is not None:  # --json: stdout is always one JSON document
            try:
                _print_json(json.loads((Path(exc.run_dir) / "summary.json").read_text()))
                exc.run_dir = None
            except (OSError, ValueError):
                pass
        raise
    finally:
        progress.stop()
    if json_out:
        _print_json(result.summary)
        return
    if not quiet:
        render.training_result(result.summary)
    print(result.run.path)


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
    from nnctl.cli import render
    from nnctl.compare import compare_table
    from nnctl.runs import FINISHED, collect_runs
    from nnctl.sweep import new_sweep, resume_sweep, run_sweep

    if resume is not None:
        sw, todo = resume_sweep(resume, jobs, dask)
    elif config is None:
        raise NnctlError("sweep needs CONFIG (or --resume SWEEP_DIR)")
    else:
        sw = new_sweep(config, grid or [], space or [], random, seeds, jobs or os.cpu_count() or 1, runs_dir, name,
                       dask, ["nnctl", *sys.argv[1:]])
        todo = [t for t in sw.trials if t.status == "pending"]
    err = render.stderr()
    err.print(f"sweep: {len(sw.trials)} trials ({len(todo)} to run) in {render.escape(str(sw.path))}, "
              + (f"on Dask at {sw.dask}" if sw.dask else f"{sw.jobs} at a time"))
    live = None
    if sys.stderr.isatty():
        from rich.live import Live

        live = Live(render.sweep_status(sw), console=err, refresh_per_second=4, transient=True)
        live.start()

    def on_update(trial):
        if live is not None:
            live.update(render.sweep_status(sw))
        elif trial.status != "running":
            extra = f": {trial.error}" if trial.error else ""
            err.print(f"{trial.name} {trial.status}{render.escape(extra)}")

    try:
        run_sweep(sw, todo, on_update)
    finally:
        if live is not None:
            live.stop()
    found, _ = collect_runs([sw.path])
    if found:
        render.compare_table(*compare_table(found, group_seeds=len({t.seed for t in sw.trials}) > 1))
    failed = [t for t in sw.trials if t.status not in FINISHED]
    for t in failed:
        err.print(f"[red]{t.name} {t.status}[/] {render.escape(str(t.overrides))}: {render.escape(t.error)}")
    print(sw.path)
    if failed:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------ reading runs
@app.command("eval")
@handle_errors
def eval_(
    run_dir: RunDirArg,
    data: Annotated[Path | None, typer.Option(help="Evaluate on this CSV (same columns as the training data, "
                                                   "with the target) instead of the held-out test split.")] = None,
    json_out: JsonOpt = False,
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
    from nnctl.cli import render

    render.evaluation(result)


@app.command()
@handle_errors
def predict(
    run_dir: RunDirArg,
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="Rows to predict: the training "
                                              "feature columns (the target column may be present).",
                                              show_default=False)],
    output: output_option("Write the CSV here (default: stdout).") = None,
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
        return
    from nnctl.cli import render

    _write_output(output, buf.getvalue())
    render.stderr().print(f"wrote {len(rows)} predictions to {render.escape(str(output))}")


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
    form: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    plot: PlotOpt = None,
):
    """Line up runs: status, the hyperparameters that differ, best/final/test metrics, time, curve.

    A running, diverged, interrupted or damaged run is shown as such; folders that are not runs
    are skipped with a note on stderr. --plot overlays the runs' validation curves.

    Examples:

    \b
      nnctl compare runs/*
      nnctl compare runs --sort=-best_val_accuracy --top 5 --format markdown
      nnctl compare runs/lr-* --cols 'optimizer.*,*val_accuracy' --plot curves.png
    """
    from nnctl.cli import render
    from nnctl.compare import compare_table, render_text, select_columns, sort_rows
    from nnctl.runs import collect_runs

    found, notes = collect_runs(runs)
    for n in notes:
        render.note(n)
    if not found:
        raise NnctlError("no run directories among the given paths")
    columns, rows = compare_table(found, all_params=all_params, group_seeds=group_seeds)
    if sort:
        rows = sort_rows(rows, sort, columns, descending=desc)
    if top:
        rows = rows[:top]
    columns = select_columns(columns, [c.strip() for c in cols.split(",")] if cols else None)
    if plot is not None:
        from nnctl.plot import plot_curves

        chosen = {p for r in rows for p in (r["run"] if isinstance(r["run"], list) else [r["run"]])}
        plot_curves([r for r in found if str(r.path) in chosen], plot)
        render.wrote(plot)
    if form is Format.table:
        render.compare_table(columns, rows)
    else:
        sys.stdout.write(render_text(columns, rows, form.value))


@app.command()
@handle_errors
def plot(
    run_dir: RunDirArg,
    output: output_option("PNG to write (default: RUN_DIR/plot.png).") = None,
):
    """Plot a run's learning curves (loss, metric, lr); for 2-D classification also the decision
    boundary over the training points, for 1-D regression the fitted function.

    Example: nnctl plot runs/moons-... -o moons.png   (try a config with activation: linear)
    """
    from nnctl.plot import plot_run

    path, notes = plot_run(run_dir, output)
    if notes:
        from nnctl.cli import render

        for n in notes:
            render.note(n)
    print(path)


@app.command()
@handle_errors
def inspect(
    run_dir: RunDirArg,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
):
    """Per-layer health over training: activations, dead ReLUs, saturation, gradients, update ratios.

    Reads diagnostics.csv (written while training, unless train.diagnostics is false) and the
    findings in summary.json, with what each means and what to try. --plot draws the per-layer
    curves.

    Example: nnctl inspect runs/moons-...  then  nnctl explain DEAD_RELU
    """
    from nnctl.cli import render
    from nnctl.inspect import inspect_run

    report = inspect_run(run_dir)
    if plot is not None:
        from nnctl.plot import plot_health

        plot_health(report, plot)
        render.wrote(plot)
    if json_out:
        print(json.dumps(report))
        return
    render.inspect_report(report)


@app.command()
@handle_errors
def explain(
    code: Annotated[str | None, typer.Argument(metavar="CODE", help="A finding code, e.g. DEAD_RELU. Omit to "
                                               "list them.", show_default=False)] = None,
):
    """Explain a finding's concept in plain words (DEAD_RELU, SATURATED, VANISHING_GRAD, ...)."""
    from nnctl.cli import render
    from nnctl.diagnostics import CATALOGUE
    from nnctl.errors import did_you_mean

    if code is None:
        render.explain_list(CATALOGUE)
        return
    key = code.strip().upper().replace("-", "_")
    if key not in CATALOGUE:
        raise NnctlError(f"unknown finding code {code!r}{did_you_mean(key, CATALOGUE)}; `nnctl explain` lists them")
    render.explain(CATALOGUE[key])


# ------------------------------------------------------------------------------------ checks
@app.command()
@handle_errors
def gradcheck(
    config: ConfigArg,
    set_: SetOpt = None,
    rows: Annotated[int, typer.Option(min=1, max=256, help="Training rows in the check batch.")] = 8,
    json_out: JsonOpt = False,
):
    """Check backprop against finite differences on the model CONFIG builds (float64).

    Every parameter is nudged by ±1e-6 and the loss difference compared with the analytic
    gradient, per tensor (W1, b1, gamma1, ...). Exit code 0 if all agree to 1e-5, 1 if not.

    Example: nnctl gradcheck configs/moons.yaml
    """
    from nnctl.checks import gradcheck_spec
    from nnctl.config.load import load_spec

    result = gradcheck_spec(load_spec(config, set_ or []), rows=rows)
    if json_out:
        print(json.dumps(result))
    else:
        from nnctl.cli import render

        render.gradcheck(result)
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("lr-find")
@handle_errors
def lr_find(
    config: ConfigArg,
    set_: SetOpt = None,
    start: Annotated[float, typer.Option(help="First learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(min=10, max=10_000, help="Optimizer steps in the ramp.")] = 100,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
):
    """Learning-rate range test: raise the lr exponentially each step, watch the loss, suggest a rate.

    Uses the config's model, optimizer and batch size on its training split; no run is written.
    The suggestion is a tenth of the rate with the lowest (smoothed) loss, and never above the
    rate where the loss falls fastest.

    Example: nnctl lr-find configs/moons.yaml --plot lr.png
    """
    from nnctl.checks import lr_find as find
    from nnctl.cli import render
    from nnctl.config.load import load_spec

    result = find(load_spec(config, set_ or []), start=start, end=end, steps=steps)
    if plot is not None:
        from nnctl.plot import plot_lr_find

        plot_lr_find(result, plot)
        render.wrote(plot)
    if json_out:
        print(json.dumps(result))
        return
    render.lr_find(result)


# ------------------------------------------------------------------------------------ reference
@app.command()
@handle_errors
def schema(
    output: output_option("Write to this file instead of stdout.") = None,
):
    """Print the JSON Schema of the config format, for editor validation of YAML.

    Generated from the same field table that validates configs, so it never drifts.
    Example (VS Code + the YAML extension): nnctl schema -o nnctl.schema.json, then put
    `# yaml-language-server: $schema=nnctl.schema.json` on the first line of a config.
    """
    from nnctl.config.load import config_schema

    text = json.dumps(config_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        _write_output(output, text)


@app.command()
@handle_errors
def datasets(
    json_out: JsonOpt = False,
):
    """List the built-in datasets (data.source: sklearn:<name>) with their options and shapes.

    Nothing is downloaded: scikit-learn's toy data ships with it, and xor, spiral and sine are
    generated by nnctl. Options go in data.options; random_state defaults to 0 so the data is fixed.
    """
    from nnctl.data.builtins import BUILTINS

    if json_out:
        print(json.dumps({name: {"task": b.task, "summary": b.summary, "shape": b.shape, "options": b.options,
                                 "option_help": b.option_help} for name, b in BUILTINS.items()}, indent=2))
        return
    from nnctl.cli import render

    render.datasets(BUILTINS)


def main() -> None:
    """Console-script entry point."""
    app()
