"""Terminal output with rich: progress, findings, and the tables each command prints.

Every function takes plain results from the library and writes them; nothing here computes a
result. Messages and progress go to stderr, results to stdout. Piped output is never wrapped.
rich's tables are imported by the functions that draw one: `nnctl train` never needs them.
"""

from __future__ import annotations

from rich.console import Console as RichConsole
from rich.markup import escape

from nnctl.metrics import task_metric

STATUS_STYLES = {"completed": "green", "early_stopped": "green", "stopped_at_loss": "green", "running": "cyan",
                 "diverged": "red", "failed": "red", "damaged": "red", "interrupted": "yellow"}

QUIET = 0  # the running command's -q count (app.handle_errors sets it): 1 hides progress and notes, 2 findings too


class Console(RichConsole):
    """rich's Console, except that a closed pipe is a BrokenPipeError for the command to end
    quietly on (app.handle_errors), not rich's own exit 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def stderr() -> Console:
    """A console on stderr (messages, progress)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout() -> Console:
    """A console on stdout (results)."""
    return Console(highlight=False)


def error(message: str) -> None:
    """`error: message` on stderr."""
    from rich.text import Text

    stderr().print(Text("error: ", style="bold red") + Text(message))


def note(message: str) -> None:
    """`note: message` on stderr (not with -q)."""
    if not QUIET:
        stderr().print(f"[yellow]note:[/] {escape(message)}")


def warning(message: str) -> None:
    """`warning: message` on stderr (also with -q)."""
    stderr().print(f"[yellow]warning:[/] {escape(message)}")


def info(message: str) -> None:
    """A plain line on stderr: progress, what was written, what to do next (not with -q)."""
    if not QUIET:
        stderr().print(message, markup=False, highlight=False)


def wrote(path) -> None:
    """`wrote PATH` on stderr (not with -q)."""
    info(f"wrote {path}")


def data_notes(info: dict) -> None:
    """What loading the data decided: the task and why, dropped rows, date and id columns (not with -q)."""
    if QUIET:
        return
    data = info.get("data") or {}
    if data.get("task_reason"):
        stderr().print(f"data: {info['task']} ({data['task_reason']})", markup=False, highlight=False)
    for note in data.get("notes") or []:
        stderr().print(f"data: {note}", markup=False, highlight=False)


def finding(f: dict, console: Console, explain_hint: bool = True) -> None:
    """One finding: code, epoch, what was seen, why it matters, what to try."""
    epoch = f.get("epoch")
    when = "" if epoch is None else " (before training)" if epoch == 0 else f" (epoch {epoch})"
    hint = f"  ·  nnctl explain {f['code']}" if explain_hint else ""
    message = str(f.get("message") or f.get("detail") or "")  # runs of earlier versions say "detail"
    console.print(f"[bold yellow]{f['code']}[/]{when}: {escape(message)}. {escape(f['why'])}.\n"
                  f"  try: {escape(f['try'])}{hint}")


class Progress:
    """A rich progress bar on stderr: epoch, loss, validation metric, ETA. Silent when not a TTY."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.task = None
        self.metric = "val_loss"

    @property
    def console(self) -> Console:
        return self.bar.console if self.bar is not None else stderr()

    def start(self, info: dict) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.metric = f"val_{task_metric(info['task'])}"
        self.bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=stderr(), transient=True)
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


def _num(v) -> str:
    return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def training_result(s: dict) -> None:
    """The one-line summary of a finished run, and its message. "best" is the best epoch as
    summary.json's `best` holds it, named with its criterion (lowest val_loss by default)."""
    from nnctl.numfmt import format_column

    err = stderr()
    final, best = s["final"] or {}, s["best"] or {}
    part = "val" if final.get("val_loss") is not None or not final else "train"  # no val part: train metrics
    metric = f"{part}_{task_metric(s['task'])}"
    losses = f"train_loss {_num(final.get('train_loss'))}" + (
        f" · val_loss {_num(final.get('val_loss'))}" if part == "val" else "")
    now, then = format_column([final.get(metric), best.get(metric)])  # one format for the pair
    line = f"{s['status']}: {s['epochs_run']} epochs in {s['wall_time_s']:.2f} s · {losses} · {metric} {now or '-'}"
    if best:
        by = s.get("best_by") or {"metric": f"{part}_loss", "mode": "min"}
        crit = f"{'lowest' if by['mode'] == 'min' else 'highest'} {by['metric']}"
        line += f" · best epoch {best.get('epoch')} ({crit} {_num(best.get(by['metric']))}): {metric} {then or '-'}"
    from rich.text import Text

    text = Text(line)
    text.stylize("green", 0, len(s["status"]))
    err.print(text)
    if s["message"]:
        err.print(escape(s["message"]))
    mlflow = (s.get("tracking") or {}).get("mlflow") or {}
    if mlflow.get("run_id"):
        err.print(f"mlflow: run {mlflow['run_id']} in experiment {escape(repr(mlflow.get('experiment')))} at "
                  f"{escape(str(mlflow.get('tracking_uri')))}")


COMPARE_PRIORITY = {  # lower: hidden first; a config key is 80, the metric at the best epoch 90
    "run": 85, "problem": 65, "status": 60, "best_by": 55, "best_epoch_val_loss": 50, "runs": 45, "best_epoch": 40,
    "seed": 35, "epochs": 30, "time_s": 25, "seeds": 20, "curve": 10}
NAME_WRAP = 47  # after the curve, seeds, time and epochs are hidden, a long name wraps (whole) before more go
LEFT = {"name", "status", "run", "curve", "problem", "best_by", "seeds"}


def _compare_priority(column: str, index: int) -> float:
    if column in COMPARE_PRIORITY:
        return COMPARE_PRIORITY[column]
    for prefix, rank in (("best_epoch_val_", 90), ("test_", 75), ("final_val_", 70)):
        if column.startswith(prefix):
            return rank
    return 80 - index / 1000  # a hyperparameter: the point of comparing; rightmost hidden first


def compare_table(columns: list[str], rows: list[dict], width: int | None = None, chosen: bool = False,
                  focus: tuple[str, ...] = ()) -> None:
    """The compare rows as a text table on stdout that fits `width` without cutting a value: low-priority
    columns are hidden first (and named below the table); `chosen` (--cols) columns always show, in
    their order; `focus` keys (a sweep's swept keys) go after the best-epoch metric, before other
    config keys. A legend says what the best epoch is."""
    from pathlib import Path

    from nnctl.cli import table
    from nnctl.compare import column_cells, is_param

    names = [r.get("name") for r in rows]
    shown = [c for c in columns if not c.endswith("_std")]
    if not chosen:
        shown = [c for c in shown if c != "run"]
        if len(set(names)) < len(names) and "run" in columns:  # same names: show which run dir is which
            shown.insert(1, "run")
    criteria = sorted({str(r["best_by"]) for r in rows if r.get("best_by")})
    folded = ""
    if rows and "runs" in rows[0] and len({(r.get("runs"), r.get("seeds")) for r in rows}) == 1:
        if not chosen:  # every row folds the same seeds: say it once, below
            shown = [c for c in shown if c not in ("runs", "seeds")]
        folded = f"mean ± std over {rows[0]['runs']} runs a row (seeds {rows[0]['seeds']})"
    if not chosen and len(criteria) <= 1:
        shown = [c for c in shown if c != "best_by"]  # the same for every run: said in the legend
    cols = []
    for i, c in enumerate(shown):
        cells = column_cells(rows, c)
        if c == "run":
            cells = [Path(x).name if isinstance(r.get("run"), str) else x for x, r in zip(cells, rows)]
        numeric = is_param(c) and all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                                      for r in rows if r.get(c) is not None)
        priority = _compare_priority(c, i)
        if any(c == k or c.startswith(k + ".") for k in focus):
            priority = 88 - i / 1000
        elif focus and is_param(c):  # a key the sweep did not set, differing as a consequence (init: auto)
            priority = 48 - i / 1000
        if len(rows) > 1 and len(set(cells)) == 1 and not is_param(c):
            priority -= 30  # the same in every row ("completed", 60 epochs): it tells the least
        col = table.Column(c, cells, align="left" if c in LEFT or (is_param(c) and not numeric) else "right",
                           keep=chosen or c == "name", priority=priority, fold=c == "problem",
                           wrap_at=NAME_WRAP if c in ("name", "run") else None)
        if c == "status":
            col.styles = [STATUS_STYLES.get(str(r.get(c)).split(":")[0], "white") for r in rows]
        if c == "curve":
            col.short = [x[::2] for x in cells]
        cols.append(col)
    lines, hidden = table.render(cols, width, key=shown.index("name") if "name" in shown else 0)
    footer = [folded] if folded else []
    visible = set(shown) - set(hidden)
    if any(c.startswith("best_epoch") for c in visible):
        by = f"the epoch with the {criteria[0]}" if len(criteria) == 1 else "each run's best epoch, by its best_by"
        footer.append(f"best_epoch: {by}; best_epoch_val_*: the values at that epoch")
    if hidden:
        footer.append(f"hidden: {', '.join(hidden)} (--cols to choose, or a wider terminal, COLUMNS or --width)")
    if footer:
        lines.append([])
    for text in footer:
        lines += [table.plain(line) for line in table.wrap_text(text, width)]
    table.emit(lines)


def sweep_status(sweep):
    """The live table of a sweep: trials done, running, pending, failed, and the trial with the highest
    final validation metric so far (a trial, not an epoch: not the best epoch of compare)."""
    from rich.table import Table

    from nnctl.runs import FINISHED

    counts = {s: sum(t.status == s for t in sweep.trials) for s in ("pending", "running", "failed")}
    done = sum(t.status in FINISHED for t in sweep.trials)
    scored = [t for t in sweep.trials if t.metric is not None]
    best = max(scored, key=lambda t: t.metric, default=None)
    tab = Table(show_header=True, box=None)
    for col in ("done", "running", "pending", "failed", "top trial by final val metric"):
        tab.add_column(col, overflow="fold")  # wrapped, never cut with an ellipsis
    tab.add_row(str(done), str(counts["running"]), str(counts["pending"]), str(counts["failed"]),
                f"{best.metric:.4f} ({best.name}: {escape(str(best.overrides))})" if best else "-")
    return tab


def inspect_report(report: dict, width_option: int | None = None) -> None:
    """The per-layer health table of selected epochs (epoch 0: before training), fitted to --width
    (default: COLUMNS or the terminal's, at most 100) without cutting a number: only the columns that apply
    (dead units for relu, saturation for sigmoid/tanh), one number format per column, then the findings."""
    import math

    from nnctl.cli import table
    from nnctl.numfmt import format_column

    rows = report["rows"]
    width = table.output_width(width_option)
    if width_option is None:
        width = 100 if width is None else min(width, 100)  # prose reads best in short lines

    def has(key: str) -> bool:
        return any(isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) for r in rows)

    def values(key: str) -> list:
        return [r.get(key) if isinstance(r.get(key), (int, float)) and r.get(key) == r.get(key) else None
                for r in rows]

    cols = [table.Column("epoch", [str(r.get("epoch", "")) for r in rows], keep=True),
            table.Column("layer", [str(r.get("layer", "")) for r in rows], keep=True),
            table.Column("units", [str(r.get("units", "")) for r in rows], keep=True)]
    for key, head in (("act_mean", "act mean"), ("act_std", "act std")):
        cols.append(table.Column(key, format_column(values(key), sig=3), header=head, keep=True))
    for key, head in (("dead_frac", "dead"), ("saturated_frac", "saturated")):
        if has(key):
            cols.append(table.Column(key, ["" if v is None else f"{v:.0%}" for v in values(key)], header=head,
                                     keep=True))
    for key, head in (("grad_rms", "grad RMS"), ("update_ratio", "update")):
        cols.append(table.Column(key, format_column(values(key), sig=3), header=head, keep=True))
    sections = {i for i in range(1, len(rows)) if rows[i].get("epoch") != rows[i - 1].get("epoch")}
    lines = [[(line, "bold")] for line in table.wrap_text(f"layer health of {report['name']}", width)]
    body, _ = table.render(cols, width, sections)
    lines += body
    caption = "epoch 0: the untrained network; update: |W change| / |W| in the epoch"
    lines += [[(line, "dim")] for line in table.wrap_text(caption, width)]
    all_rows = report["all_rows"]
    last = [r for r in all_rows if r["epoch"] == all_rows[-1]["epoch"]] if all_rows else []
    if last:
        grads = format_column([r.get("grad_rms") if isinstance(r.get("grad_rms"), (int, float)) else None
                               for r in last], sig=2)
        text = "gradient RMS by layer, last epoch: " + " -> ".join(g or "n/a" for g in grads)
        lines += [table.plain(line) for line in table.wrap_text(text, width)]
    table.emit(lines)
    out = Console(highlight=False, width=width) if width else Console(highlight=False, soft_wrap=True)
    if not report["findings"]:
        out.print("[green]no findings[/]: nothing looks wrong inside the network.")
    for f in report["findings"]:
        finding(f, out, explain_hint=False)


def gradcheck(result: dict) -> None:
    """The gradient check per tensor, and the verdict."""
    from rich.table import Table

    table = Table(title=f"gradient check: {result['n_params']} parameters, {result['rows']} rows, float64")
    for c in ("tensor", "shape", "max relative error", ""):
        table.add_column(c, justify="left" if c in ("tensor", "") else "right")
    for t in result["tensors"]:
        mark = "[green]ok[/]" if t["passed"] else "[bold red]FAIL[/]"
        table.add_row(t["key"], "x".join(map(str, t["shape"])), f"{t['rel_error']:.2e}", mark)
    out = stdout()
    out.print(table)
    out.print("[green]passed[/]: backprop matches finite differences" if result["passed"] else
              f"[bold red]failed[/]: some gradients differ by more than {result['tol']:g}")


def lr_find(result: dict) -> None:
    """The lr range test: smoothed loss at some rates, and the suggestion with the reason for it."""
    from rich.table import Table

    from nnctl.checks import suggestion_reason

    table = Table(title=f"lr range test ({result['optimizer']}, batch {result['batch_size']})")
    table.add_column("lr", justify="right")
    table.add_column("smoothed loss", justify="right")
    n = len(result["lrs"])
    for i in sorted({*range(0, n, max(n // 15, 1)), n - 1}):
        table.add_row(f"{result['lrs'][i]:.2e}", f"{result['smoothed'][i]:.4f}")
    out = stdout()
    out.print(table)
    out.print(f"suggested lr: [bold]{result['suggestion']:.2g}[/] ({suggestion_reason(result)}).")
    out.print(f"Try: --set optimizer.lr={result['suggestion']:.2g}")


def evaluation(result: dict, width_option: int | None = None) -> None:
    """eval's metrics; for classification the per-class table and the confusion matrix, fitted to
    --width (COLUMNS or the terminal's by default) without cutting a class name or a count: a
    confusion matrix wider than that continues below, its true-class column repeated."""
    from nnctl.cli import table

    width = table.output_width(width_option)
    for n in result["notes"]:
        note(n)
    m = result["metrics"]
    where = "the test split" if result["split"] == "test" else result["source"]
    lines = [table.plain(x) for x in table.wrap_text(f"{result['name']} on {where} ({m['n_rows']} rows)", width)]
    if result["task"] == "regression":
        text = f"loss (mse) {m['loss']:.6g} · rmse {m['rmse']:.6g} · mae {m['mae']:.6g} · r2 {m['r2']:.4g}"
        table.emit(lines + [table.plain(x) for x in table.wrap_text(text, width)])
        return
    line = f"loss {m['loss']:.4g} · accuracy {m['accuracy']:.4f}"
    for key, label in (("balanced_accuracy", "balanced accuracy"), ("macro_f1", "macro-F1")):
        if m.get(key) is not None:
            line += f" · {label} {m[key]:.4f}"
    lines += [table.plain(x) for x in table.wrap_text(line, width)]
    ranking = [f"{label} {m[key]:.4f}" for key, label in (("roc_auc", "ROC-AUC"), ("average_precision",
                                                                                     "average precision"))
               if m.get(key) is not None]
    if ranking:  # binary tasks: how well the probabilities rank the rows (a line of its own: 80 columns)
        lines += [table.plain(x) for x in table.wrap_text(" · ".join(ranking), width)]
    per_class = m["per_class"]
    cols = [table.Column("class", list(per_class), align="left", keep=True)]
    for key in ("precision", "recall", "f1"):
        cols.append(table.Column(key, [f"{r[key]:.3f}" for r in per_class.values()], keep=True))
    cols.append(table.Column("support", [str(r["support"]) for r in per_class.values()], keep=True))
    body, _ = table.render(cols, width)
    lines += [[], [("per class", "bold")], *body]
    cm = m["confusion_matrix"]
    cols = [table.Column("true \\ pred", list(cm["labels"]), align="left", keep=True)]
    for j, label in enumerate(cm["labels"]):
        cols.append(table.Column(f"c{j}", [str(row[j]) for row in cm["matrix"]], header=label, keep=True))
    body, _ = table.render(cols, width)
    lines += [[]] + [[(x, "bold")] for x in table.wrap_text(
        "confusion matrix (rows: true class, columns: predicted)", width)] + body
    table.emit(lines)


def datasets(builtins: dict) -> None:
    """The built-in datasets with their options and shapes."""
    from rich.table import Table

    table = Table(title="built-in datasets (data.source: sklearn:<name>)", show_lines=True)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("task", no_wrap=True)
    table.add_column("default shape")
    table.add_column("what it is; data.options with their defaults")
    for name, b in builtins.items():
        opts = ", ".join(f"{k}={v}" for k, v in b.options.items()) or "none"
        table.add_row(name, b.task, b.shape, f"{escape(b.summary)}\n[dim]options: {escape(opts)}[/]")
    Console(width=max(Console().width, 100)).print(table)

