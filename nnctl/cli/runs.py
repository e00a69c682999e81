"""nnctl eval, predict, export, compare, plot and inspect: the commands that read run directories."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from nnctl.cli.app import (
    Format,
    JsonOpt,
    QuietOpt,
    RunDirArg,
    WidthOpt,
    app,
    handle_errors,
    output_option,
    plot_option,
    print_json,
    show,
    write_output,
)
from nnctl.errors import NnctlError


@app.command("eval")
@handle_errors
def eval_(
    run_dir: RunDirArg,
    data: Annotated[Path | None, typer.Option(metavar="FILE", help="Evaluate on this data file (CSV-like or "
                                              "Parquet, with the feature columns and the target) instead of the "
                                              "held-out test split.")] = None,
    json_out: JsonOpt = False,
    width: WidthOpt = None,
    quiet: QuietOpt = 0,
):
    """Evaluate a trained run on its held-out test split, or on another data file; writes eval.json.

    Classification: loss, accuracy, balanced accuracy, macro-F1 (binary: also ROC-AUC and average
    precision), per-class precision/recall/F1 and the confusion matrix. Regression: loss, rmse, mae,
    r2, in the target's own units. The model is rebuilt from the run directory alone; the input is
    read and encoded as the training data was (missing values, unknown levels: see the notes).
    In a read-only run directory the results are printed and a warning says eval.json was not
    written (exit 0).

    Examples:

    \b
      nnctl eval runs/moons-20261124-101500-ab12cd
      nnctl eval runs/iris-csv-... --data new_flowers.csv --json
    """
    from nnctl.cli import render
    from nnctl.evaluate import evaluate_run

    result = evaluate_run(run_dir, data)
    show(result, json_out, lambda r: render.evaluation(r, width))
    if result.get("not_written"):  # a read-only run dir: the results above stand, exit 0
        render.warning(result["not_written"])


@app.command()
@handle_errors
def predict(
    run_dir: RunDirArg,
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Rows to predict, in any file kind train "
                                              "reads: the training feature columns (the target, the id and "
                                              "other columns may be present).", show_default=False)],
    output: output_option("Write the CSV (with --json: the JSON) here; default or '-': stdout.", "OUT.csv") = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add one p_<class> probability column per class.")
                     ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document instead of CSV: a list with an "
                                           "object per row (input columns as text, predictions and "
                                           "probabilities as numbers, null for a missing value).")] = False,
    quiet: QuietOpt = 0,
):
    """Predict new rows with a trained run, in the original label names.

    The output (CSV) repeats the input's columns, the data.id column among them, then a
    `prediction` column (and p_<class> columns with --proba). The run's encoding and preprocessing
    are applied, and its missing-value policy; columns the model does not use are ignored and
    unseen category levels counted, with a note; a missing feature column or a non-number in a
    numeric column is an error naming the column and line.

    Examples:

    \b
      nnctl predict runs/iris-csv-... datasets/iris.csv --proba -o predictions.csv
      nnctl predict runs/iris-csv-... datasets/iris.csv --json | jq '.[0].prediction'
    """
    import csv
    import io

    from nnctl.cli import render
    from nnctl.evaluate import predict_csv

    header, rows, notes = predict_csv(run_dir, input_csv, proba=proba, typed=json_out)
    for note in notes:
        render.note(note)
    if json_out:
        import json

        from nnctl.files import jsonable

        text = json.dumps(jsonable([dict(zip(header, r)) for r in rows]), allow_nan=False) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        text = buf.getvalue()
    if output is None:
        sys.stdout.write(text)
        return
    write_output(output, text)
    if str(output) != "-":
        render.info(f"wrote {len(rows)} predictions to {output}")


class ExportFormat(str, enum.Enum):
    onnx = "onnx"


@app.command()
@handle_errors
def export(
    run_dir: RunDirArg,
    form: Annotated[ExportFormat, typer.Option("--format", "-f", help="The model format (onnx is the one for "
                                               "now).")] = ExportFormat.onnx,
    output: output_option("File to write (default: RUN_DIR/model.onnx).") = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print {\"written_to\", \"format\", \"notes\"} on "
                                                          "stdout instead of the path.")] = False,
    quiet: QuietOpt = 0,
):
    """Export a trained run, its input preprocessing included, as one model file for other runtimes.

    ONNX (opset 21): one input per feature column of the training file, named after it, shape
    (N, 1): float32 for numeric columns (NaN = missing), text for categorical and date columns
    ("" = missing). The graph imputes, one-hot encodes, expands dates, scales (PCA, whitening)
    and runs the network as predict does. Outputs: `label` (N,) and `probabilities` (N, k), in the
    run's class order (hinge/perceptron runs: `scores`); regression: `value` (N, t) in the
    target's units. Rows predict would refuse (a missing value the run cannot fill, an unseen
    level under unknown: error, text that is no date) come out as NaN and an empty label.
    Prints the path written. Needs the onnx package: pip install 'nnctl[onnx]'.

    Example: nnctl export runs/penguins-... -o penguins.onnx
    """
    from nnctl.cli import render
    from nnctl.export import export_onnx

    path, notes = export_onnx(run_dir, output)
    for n in notes:
        render.note(n)
    if json_out:
        print_json({"written_to": str(path), "format": form.value, "notes": list(notes)})
    else:
        print(path)


@app.command()
@handle_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run directories, or folders of "
                                               "them (runs/* and runs both work).", show_default=False)],
    sort: Annotated[str | None, typer.Option(metavar="KEY", help="Sort by this column; prefix '-' for descending, "
                                                                 "e.g. --sort=-best_epoch_val_accuracy.")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    top: Annotated[int | None, typer.Option(min=1, metavar="N", help="Show only the first N rows (after sorting).")
                   ] = None,
    cols: Annotated[str | None, typer.Option(metavar="GLOBS", help="Comma-separated column globs to show, in this "
                                             "order, e.g. 'optimizer.*,*val_accuracy'; these columns are never "
                                             "hidden.")] = None,
    all_params: Annotated[bool, typer.Option("--all-params", help="Every config key, not just the ones that "
                                                                  "differ.")] = False,
    group_seeds: Annotated[bool, typer.Option("--group-seeds", help="One row per config across seeds: mean "
                                                                    "± std.")] = False,
    form: Annotated[Format, typer.Option("--format", "-f", help="Output format (--json is --format json).")
                    ] = Format.table,
    plot: plot_option("Also draw the runs' validation curves into this PNG.") = None,
    log_y: Annotated[bool | None, typer.Option("--log-y/--linear-y", help="The figure's loss axis: log or linear "
                                               "(default: log when the losses span more than 100x, e.g. a "
                                               "diverged run among them).", show_default=False)] = None,
    width: WidthOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = 0,
):
    """Line up runs: status, the hyperparameters that differ, best-epoch/final/test metrics, time, curve.

    The best epoch is the one with the lowest val_loss (or the early-stopping monitor's best);
    best_epoch_val_* are the values AT that epoch. The table fits the width (COLUMNS, --width)
    without cutting a value: low-priority columns are hidden first, and named below it.
    A running, diverged, interrupted or damaged run is shown as such; folders that are not runs
    are skipped with a note on stderr. A path that does not exist is named after the table of
    the others (exit 2). -o overlays the runs' validation curves in a PNG.

    Examples:

    \b
      nnctl compare runs/*
      nnctl compare runs --sort=-best_epoch_val_accuracy --top 5 --format markdown
      nnctl compare runs/lr-* --cols 'optimizer.*,*val_accuracy' -o curves.png
      nnctl compare runs --json | jq '.[] | .name'
    """
    from nnctl.cli import render
    from nnctl.compare import compare_table, render_text, select_columns, sort_rows
    from nnctl.errors import RunDirError
    from nnctl.runs import collect_runs

    if json_out:
        if form not in (Format.table, Format.json):
            raise NnctlError(f"--json and --format {form.value} ask for two formats; give one of them")
        form = Format.json
    missing = [str(p) for p in runs if not Path(p).exists()]  # reported after the table of the others
    found, notes = collect_runs([p for p in runs if str(p) not in missing])
    for n in notes:
        render.note(n)
    if not found:
        raise RunDirError("no run directories among the given paths"
                          + (f" ({', '.join(missing)}: no such file or directory)" if missing else ""))
    columns, rows = compare_table(found, all_params=all_params, group_seeds=group_seeds)
    if sort:
        rows = sort_rows(rows, sort, columns, descending=desc)
    if top:
        rows = rows[:top]
    columns = select_columns(columns, [c.strip() for c in cols.split(",")] if cols else None)
    if plot is not None:
        from nnctl.plot import plot_curves

        chosen = {p for r in rows for p in (r["run"] if isinstance(r["run"], list) else [r["run"]])}
        plot_curves([r for r in found if str(r.path) in chosen], plot, log_y=log_y)
        render.wrote(plot)
    if form is Format.table:
        from nnctl.cli.table import output_width
        from nnctl.compare import swept_keys

        render.compare_table(columns, rows, output_width(width), chosen=bool(cols), focus=swept_keys(runs))
    elif form is Format.json:
        print_json([{c: r.get(c) for c in columns} for r in rows], indent=2)
    else:
        sys.stdout.write(render_text(columns, rows, form.value))
    if missing:
        raise RunDirError(f"{', '.join(missing)}: no such file or directory (the table shows the other "
                          f"{len(found)} run{'s' * (len(found) != 1)})")


@app.command()
@handle_errors
def plot(
    run_dir: RunDirArg,
    output: output_option("PNG to write (default: RUN_DIR/plot.png, evolution.png or units.png); with "
                          "--evolution also a .gif (an animation).", "FILE.png") = None,
    evolution: Annotated[bool, typer.Option("--evolution", help="The decision boundary (2-D classification) or "
                                            "fitted curve (1-D regression) at the epochs train.snapshot_every kept: "
                                            "a grid of up to 12 evenly spaced snapshots, or with -o x.gif one frame "
                                            "per snapshot (up to 100).")] = False,
    units: Annotated[bool, typer.Option("--units", help="2-D inputs: what each first-layer hidden unit computes "
                                        "over the input plane (up to 16 units), with the trained weights.")
                     ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print {\"written_to\": FILE, \"notes\": [...]} on "
                                                          "stdout instead of the file's path.")] = False,
    quiet: QuietOpt = 0,
):
    """Plot a run's learning curves (loss, metric, lr; log axes for a wide range) and what the model
    does: the decision boundary (2-D classification) or the fitted function (1-D regression) over the
    training points, a confusion matrix (classification) or predicted against true values (other
    regression) on the test rows (val if the split has none).

    --evolution draws that boundary (or fit) as it formed during training, from snapshots.npz
    (train with train.snapshot_every: N; epoch 0 is the untrained network), each panel titled with
    its epoch and the train/val accuracy (loss for regression) of that epoch. --units draws each
    first-layer unit's activation over the input plane and the line where it switches.

    Examples:

    \b
      nnctl plot runs/moons-... -o moons.png   (try a config with activation: linear)
      nnctl train configs/moons.yaml --set train.snapshot_every=5
      nnctl plot runs/moons-... --evolution -o moons.gif
      nnctl plot runs/moons-... --units
    """
    if evolution and units:
        raise NnctlError("--evolution and --units draw different figures; give one of them")
    if evolution or units:
        from nnctl.plot_evolution import plot_evolution, plot_units

        path, notes = (plot_evolution if evolution else plot_units)(run_dir, output)
    else:
        from nnctl.plot import plot_run

        path, notes = plot_run(run_dir, output)
    if json_out:
        print_json({"written_to": str(path), "notes": list(notes or [])})
        return
    if notes:
        from nnctl.cli import render

        for n in notes:
            render.note(n)
    print(path)


@app.command()
@handle_errors
def inspect(
    run_dir: RunDirArg,
    plot: plot_option("Also draw the per-layer health curves into this PNG.") = None,
    json_out: JsonOpt = False,
    width: WidthOpt = None,
    quiet: QuietOpt = 0,
):
    """Per-layer health over training: activations, dead ReLUs, saturation, gradients, update ratios.

    Reads diagnostics.csv (written while training, unless train.diagnostics is false) and the
    findings in summary.json, with what each means and what to try. -o draws the per-layer
    curves into a PNG.

    Examples:

    \b
      nnctl inspect runs/moons-...          then: nnctl explain DEAD_RELU
      nnctl inspect runs/moons-... -o health.png
      nnctl inspect runs/moons-... --json | jq '.findings[].code'
    """
    from nnctl.cli import render
    from nnctl.inspect import inspect_run
    from nnctl.plot import plot_health

    show(inspect_run(run_dir), json_out, lambda r: render.inspect_report(r, width), plot, plot_health)


@app.command()
@handle_errors
def report(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run directories, or folders of "
                                               "them such as a sweep folder.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="REPORT.html", help="The HTML file to write "
                                         "('-': stdout).")] = Path("report.html"),
    json_out: Annotated[bool, typer.Option("--json", help="Print {\"written_to\", \"runs\", \"notes\", "
                                                          "\"missing\"} on stdout instead of the page's path.")
                        ] = False,
    quiet: QuietOpt = 0,
):
    """Write one self-contained HTML page about runs: the compare table, the learning curves, and
    per run its status, hyperparameters, metrics, plot, findings and eval.json.

    The page needs no network (figures are inline PNGs, no scripts), so it can be mailed or archived.
    Damaged runs are listed with the reason; a path that does not exist is reported after the page
    is written for the others (exit 2).

    Examples:

    \b
      nnctl report runs/sweep-lr-... -o sweep.html
      nnctl report runs/relu-* runs/tanh-*       # writes report.html
    """
    from nnctl.cli import render
    from nnctl.errors import ConfigError, RunDirError
    from nnctl.report import build_report

    if json_out and str(output) == "-":
        raise ConfigError("--json and -o - both want stdout; give -o a file name")

    def progress(i: int, n: int, name: str) -> None:
        if n >= 5:  # drawing a run's figure takes a fraction of a second: say where we are
            render.info(f"drawing run {i}/{n}: {name}")

    page = build_report(runs, on_progress=progress)
    for n in page.notes:
        render.note(n)
    write_output(output, page.html)
    if json_out:
        print_json({"written_to": str(output), "runs": page.runs, "notes": page.notes, "missing": page.missing})
    elif str(output) != "-":
        print(output)
    if page.missing:
        raise RunDirError(f"{', '.join(page.missing)}: no such file or directory (the report covers the other "
                          f"{page.runs} run{'s' * (page.runs != 1)})")
