"""Terminal output with rich: progress, findings, and the tables each command prints.

Every function takes plain results from the library and writes them; nothing here computes a
result. Messages and progress go to stderr, results to stdout. Piped output is never wrapped.
rich's tables are imported by the functions that draw one: `nnctl train` never needs them.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from nnctl.metrics import task_metric

STATUS_STYLES = {"completed": "green", "early_stopped": "green", "stopped_at_loss": "green", "running": "cyan",
                 "diverged": "red", "failed": "red", "damaged": "red", "interrupted": "yellow"}


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
    """`note: message` on stderr."""
    stderr().print(f"[yellow]note:[/] {escape(message)}")


def warning(message: str) -> None:
    """`warning: message` on stderr."""
    stderr().print(f"[yellow]warning:[/] {escape(message)}")


def wrote(path) -> None:
    """`wrote PATH` on stderr."""
    stderr().print(f"wrote {escape(str(path))}")


def data_notes(info: dict) -> None:
    """What loading the data decided: the task and why, dropped rows, date and id columns."""
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
    """The one-line summary of a finished run, and its message."""
    err = stderr()
    final, best = s["final"] or {}, s["best"] or {}
    part = "val" if final.get("val_loss") is not None or not final else "train"  # no val part: train metrics
    metric = f"{part}_{task_metric(s['task'])}"
    losses = f"train_loss {_num(final.get('train_loss'))}" + (
        f" · val_loss {_num(final.get('val_loss'))}" if part == "val" else "")
    err.print(f"[green]{s['status']}[/]: {s['epochs_run']} epochs in {s['wall_time_s']:.2f} s · {losses} · "
              f"{metric} {_num(final.get(metric))}"
              + (f" (best {_num(best.get(metric))} at epoch {best.get('epoch')})" if best else ""))
    if s["message"]:
        err.print(escape(s["message"]))
    mlflow = (s.get("tracking") or {}).get("mlflow") or {}
    if mlflow.get("run_id"):
        err.print(f"mlflow: run {mlflow['run_id']} in experiment {escape(repr(mlflow.get('experiment')))} at "
                  f"{escape(str(mlflow.get('tracking_uri')))}")


def compare_table(columns: list[str], rows: list[dict]) -> None:
    """The compare rows as a rich table on stdout."""
    from pathlib import Path

    from rich.table import Table

    from nnctl.compare import fmt

    names = [r.get("name") for r in rows]
    shown = [c for c in columns if not c.endswith("_std") and c != "run"]
    if len(set(names)) < len(names) and "run" in columns:  # same names: show which run dir is which
        shown.insert(1, "run")
        rows = [{**r, "run": Path(r["run"]).name if isinstance(r["run"], str) else f"{len(r['run'])} runs"}
                for r in rows]
    table = Table(show_lines=False, header_style="bold")
    for c in shown:
        table.add_column(c, justify="right" if c not in ("name", "status", "curve", "problem") else "left",
                         no_wrap=c != "problem")
    for r in rows:
        cells = []
        for c in shown:
            text = escape(fmt(r.get(c), c, r.get(f"{c}_std")))
            if c == "status":
                text = f"[{STATUS_STYLES.get(str(r.get(c)), 'white')}]{text}[/]"
            cells.append(text)
        table.add_row(*cells)
    console = Console()
    # on a terminal: its width (rich shrinks columns); piped: never wrap a row
    (console if console.is_terminal else Console(width=100_000)).print(table)


def sweep_status(sweep):
    """The live table of a sweep: trials done, running, pending, failed, and the best so far."""
    from rich.table import Table

    from nnctl.runs import FINISHED

    counts = {s: sum(t.status == s for t in sweep.trials) for s in ("pending", "running", "failed")}
    done = sum(t.status in FINISHED for t in sweep.trials)
    scored = [t for t in sweep.trials if t.metric is not None]
    best = max(scored, key=lambda t: t.metric, default=None)
    tab = Table(show_header=True, box=None)
    for col in ("done", "running", "pending", "failed", "best so far"):
        tab.add_column(col)
    tab.add_row(str(done), str(counts["running"]), str(counts["pending"]), str(counts["failed"]),
                f"{best.metric:.4f} ({best.name}: {escape(str(best.overrides))})" if best else "-")
    return tab


def inspect_report(report: dict) -> None:
    """The per-layer health table of selected epochs (epoch 0: before training), in 80 columns: only
    the columns that apply (dead units for relu, saturation for sigmoid/tanh), then the findings."""
    import math

    from rich import box
    from rich.table import Table

    rows = report["rows"]

    def has(key: str) -> bool:
        return any(isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) for r in rows)

    cols = [("epoch", "epoch"), ("layer", "layer"), ("units", "units"), ("act_mean", "act mean"),
            ("act_std", "act std")]
    cols += [(k, h) for k, h in (("dead_frac", "dead"), ("saturated_frac", "saturated")) if has(k)]
    cols += [("grad_rms", "grad RMS"), ("update_ratio", "update")]
    term = Console()
    out = Console(highlight=False, width=min(term.width, 80) if term.is_terminal else 80)
    table = Table(title=f"layer health of {escape(report['name'])}", caption="epoch 0: the untrained network; "
                  "update: |W change| / |W| in the epoch", box=box.SIMPLE_HEAD, padding=(0, 1),
                  title_justify="left", caption_justify="left")
    for _, head in cols:
        table.add_column(head, justify="right", no_wrap=True)
    last = None
    for r in rows:
        if last is not None and r["epoch"] != last:
            table.add_section()
        last = r["epoch"]
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if not isinstance(v, (int, float)) or v != v:
                cells.append("")
            elif key in ("dead_frac", "saturated_frac"):
                cells.append(f"{v:.0%}")
            elif key in ("grad_rms", "update_ratio"):
                cells.append("0" if v == 0 else f"{v:.2e}")
            elif key in ("act_mean", "act_std"):
                cells.append(f"{v:.3g}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    out.print(table)
    all_rows = report["all_rows"]
    last = [r for r in all_rows if r["epoch"] == all_rows[-1]["epoch"]] if all_rows else []
    if last:
        out.print("gradient RMS by layer, last epoch: " + " -> ".join(
            "n/a" if not isinstance(r.get("grad_rms"), (int, float)) else f"{r['grad_rms']:.2g}" for r in last))
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
    """The lr range test: smoothed loss at some rates, and the suggestion."""
    from rich.table import Table

    table = Table(title=f"lr range test ({result['optimizer']}, batch {result['batch_size']})")
    table.add_column("lr", justify="right")
    table.add_column("smoothed loss", justify="right")
    n = len(result["lrs"])
    for i in sorted({*range(0, n, max(n // 15, 1)), n - 1}):
        table.add_row(f"{result['lrs'][i]:.2e}", f"{result['smoothed'][i]:.4f}")
    out = stdout()
    out.print(table)
    out.print(f"suggested lr: [bold]{result['suggestion']:.2g}[/] (lowest loss at {result['min_loss_lr']:.2g}, "
              f"steepest fall at {result['steepest_lr']:.2g}). Try: --set optimizer.lr={result['suggestion']:.2g}")


def evaluation(result: dict) -> None:
    """eval's metrics; for classification the per-class table and the confusion matrix."""
    from rich.table import Table

    out = Console(highlight=False, soft_wrap=True)
    for n in result["notes"]:
        note(n)
    m = result["metrics"]
    where = "the test split" if result["split"] == "test" else result["source"]
    out.print(f"[bold]{escape(result['name'])}[/] on {escape(where)} ({m['n_rows']} rows)")
    if result["task"] == "regression":
        out.print(f"loss (mse) {m['loss']:.6g} · rmse {m['rmse']:.6g} · mae {m['mae']:.6g} · r2 {m['r2']:.4g}")
        return
    line = f"loss {m['loss']:.4g} · accuracy {m['accuracy']:.4f}"
    for key, label in (("balanced_accuracy", "balanced accuracy"), ("macro_f1", "macro-F1")):
        if m.get(key) is not None:
            line += f" · {label} {m[key]:.4f}"
    out.print(line)
    ranking = [f"{label} {m[key]:.4f}" for key, label in (("roc_auc", "ROC-AUC"), ("average_precision",
                                                                                     "average precision"))
               if m.get(key) is not None]
    if ranking:  # binary tasks: how well the probabilities rank the rows (a line of its own: 80 columns)
        out.print(" · ".join(ranking))
    table = Table(title="per class")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, r in m["per_class"].items():
        table.add_row(escape(name), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                      str(r["support"]))
    out.print(table)
    cm = m["confusion_matrix"]
    table = Table(title="confusion matrix (rows: true class, columns: predicted)")
    table.add_column("true \\ pred")
    for label in cm["labels"]:
        table.add_column(escape(label), justify="right")
    for label, row in zip(cm["labels"], cm["matrix"]):
        table.add_row(escape(label), *(str(v) for v in row))
    out.print(table)


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

