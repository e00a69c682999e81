"""Line up many runs: one row each, the hyperparameters that differ, best/final/test metrics.

`runs.collect_runs` turns command-line paths (run dirs, or folders of runs) into `RunInfo`s; a run
that is running, diverged, interrupted or damaged is reported as such, never a crash.
`compare_table` builds the rows and columns; `render_text` formats them as csv, json or markdown (the
CLI draws the rich table from the same rows).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import re
from pathlib import Path

from nnctl.errors import ConfigError, RunDirError, did_you_mean
from nnctl.files import jsonable
from nnctl.runs import RunInfo

SPARK = "▁▂▃▄▅▆▇█"
IGNORED_PARAMS = {"name", "train.log"}  # name: shown as its own column; train.log: where else it was logged


def show_value(v) -> str:
    """A compact, stable text form of a config value."""
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(", ", ": "))
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def sparkline(values: list[float], width: int = 16) -> str:
    """A unicode sparkline of the finite values, downsampled to `width` points."""
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [vals[min(int(i * step), len(vals) - 1)] for i in range(width - 1)] + [vals[-1]]
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return SPARK[3] * len(vals)
    return "".join(SPARK[min(int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in vals)


# ------------------------------------------------------------------------------------ the table
def best_criterion(run: RunInfo) -> tuple[str, str]:
    """(metric, 'min' or 'max') that picks a run's best epoch, as training picked it: summary.json's
    `best_by`, or for runs written before it, the early-stopping monitor, else val_loss (train_loss
    when the run has no validation rows)."""
    by = run.summary.get("best_by")
    if isinstance(by, dict) and isinstance(by.get("metric"), str) and by.get("mode") in ("min", "max"):
        return by["metric"], by["mode"]
    monitor, mode = run.params.get("train.early_stopping.monitor"), run.params.get("train.early_stopping.mode")
    if isinstance(monitor, str) and mode in ("min", "max"):
        return monitor, mode
    has_val = any(_finite(r.get("val_loss")) for r in run.rows)
    return ("val_loss" if has_val else "train_loss"), "min"


def criterion_text(metric: str, mode: str) -> str:
    """'lowest val_loss', 'highest val_accuracy'."""
    return f"{'lowest' if mode == 'min' else 'highest'} {metric}"


def best_row(run: RunInfo) -> dict | None:
    """The metrics row of the run's best epoch: the one summary.json names (training decided it,
    min_delta included), else the first epoch with the extreme value of the criterion."""
    best = run.summary.get("best")
    if isinstance(best, dict) and isinstance(best.get("epoch"), int):
        return next((r for r in run.rows if r.get("epoch") == best["epoch"]), best)
    metric, mode = best_criterion(run)
    scored = [r for r in run.rows if _finite(r.get(metric))]
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda r: r[metric])  # the first of equal values, as early stopping keeps it


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_values(run: RunInfo) -> dict[str, object]:
    """Epochs; the best epoch (by the run's criterion) with its validation loss and metric; the
    final validation metric; the test metric; time; the validation curve."""
    m = run.metric
    out: dict[str, object] = {"epochs": run.summary.get("epochs_run", len(run.rows) or None)}
    curve = [r.get(f"val_{m}") for r in run.rows]
    finite = [v for v in curve if _finite(v)]
    best = best_row(run) or {}
    out["best_epoch"] = best.get("epoch")
    out["best_by"] = criterion_text(*best_criterion(run))
    out["best_epoch_val_loss"] = best.get("val_loss")
    out[f"best_epoch_val_{m}"] = best.get(f"val_{m}")
    out[f"final_val_{m}"] = finite[-1] if finite else None
    if run.eval and isinstance(run.eval.get("metrics"), dict) and run.eval.get("split", "test") == "test":
        value = run.eval["metrics"].get(m)
        out[f"test_{m}"] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    out["time_s"] = run.summary.get("wall_time_s")
    out["curve"] = sparkline(curve)
    return out


def compare_table(runs: list[RunInfo], all_params: bool = False, group_seeds: bool = False
                  ) -> tuple[list[str], list[dict]]:
    """(columns, rows): name, status, differing (or all) params, metrics, time, curve."""
    keys: list[str] = []
    for r in runs:
        for k in r.params:
            if k not in keys and k not in IGNORED_PARAMS:
                keys.append(k)
    if group_seeds:
        keys = [k for k in keys if k != "seed"]
    if not all_params:  # runs without a readable config (damaged) do not make every key "differ"
        readable = [r for r in runs if r.params]
        keys = [k for k in keys if len({show_value(r.params.get(k, "<unset>")) for r in readable}) > 1]
    keys = without_parents(keys)
    rows = []
    for r in runs:
        row: dict[str, object] = {"name": r.name, "status": r.status}
        for k in keys:
            row[k] = r.params.get(k)  # raw: numbers stay numbers in json/csv and sort numerically
        row.update(metric_values(r))
        row["run"] = str(r.path)
        if r.problem:
            row["problem"] = r.problem
        rows.append(row)
    if group_seeds:
        rows = _group_by_seed(runs, rows, keys)
    columns: list[str] = []
    for row in rows:
        for k in row:
            if k not in columns:
                columns.append(k)
    return columns, rows


def swept_keys(paths: list[Path]) -> tuple[str, ...]:
    """The config keys a sweep folder's trials set (its sweep.json), for the paths that are sweep
    folders: the keys the comparison is about. Anything unreadable is simply not used."""
    from nnctl.files import read_run_text

    keys: dict[str, None] = {}
    for p in paths:
        try:
            doc = json.loads(read_run_text(Path(p) / "sweep.json"))
            for t in doc.get("trials") or []:
                keys.update(dict.fromkeys(k for k in (t.get("overrides") or {}) if isinstance(k, str)))
        except (OSError, ValueError, AttributeError, RunDirError):
            continue
    return tuple(keys)


def without_parents(keys: list[str]) -> list[str]:
    """Drop a key whose flattened children are among the keys: model.activation_options ({} in one
    run) beside model.activation_options.alpha (0.01 in another) is one difference, shown once."""
    return [k for k in keys if not any(o.startswith(k + ".") for o in keys)]


def curve_labels(runs: list[RunInfo]) -> list[str]:
    """A legend label per run: its name, and where names repeat, the hyperparameters that differ
    between the runs (e.g. "moons lr=0.01"), else the run directory's name."""
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    readable = [r for r in runs if r.params]
    keys = without_parents([k for k in dict.fromkeys(k for r in readable for k in r.params) if k not in IGNORED_PARAMS
                            and len({show_value(r.params.get(k, "<unset>")) for r in readable}) > 1])
    labels = []
    for r in runs:
        differ = ", ".join(f"{k.rsplit('.', 1)[-1]}={show_value(r.params.get(k))}" for k in keys[:3])
        labels.append(f"{r.name} {differ}" if differ else r.path.name)
    return labels


def _group_by_seed(runs, rows, keys) -> list[dict]:
    """Rows of runs whose configs differ only in seed (and name) become one row: mean and std (the
    std is None for a group of one run; an integer column the seeds agree on, such as 60 epochs,
    stays that integer)."""
    groups: dict[tuple, list[tuple[RunInfo, dict]]] = {}
    for run, row in zip(runs, rows):
        sig = tuple(sorted((k, show_value(v)) for k, v in run.params.items() if k not in ("seed", "name")))
        groups.setdefault(sig, []).append((run, row))
    out = []
    for members in groups.values():
        first = dict(members[0][1])
        first["runs"] = len(members)
        first["seeds"] = ",".join(str(m[0].params.get("seed", "?")) for m in members)
        statuses = sorted({m[1]["status"] for m in members})
        first["status"] = statuses[0] if len(statuses) == 1 else "mixed: " + "/".join(statuses)
        for col in members[0][1]:
            if col in keys or col in TEXT_COLUMNS:
                continue
            values = [m[1].get(col) for m in members]
            nums = [v for v in values if _finite(v)]
            if nums:
                mean = sum(nums) / len(nums)
                std = math.sqrt(sum((v - mean) ** 2 for v in nums) / (len(nums) - 1)) if len(nums) > 1 else None
                if all(isinstance(v, int) for v in nums) and len(set(nums)) == 1:
                    mean, std = nums[0], (0.0 if std is not None else None)
                first[col], first[f"{col}_std"] = mean, std
        first["run"] = [str(m[0].path) for m in members]
        out.append(first)
    return out


TEXT_COLUMNS = ("name", "status", "run", "curve", "problem", "best_by", "runs", "seeds")
RENAMED = re.compile(r"^best_val_(\w+)$")  # before 0.x: best_val_accuracy was the column's maximum


def select_columns(columns: list[str], patterns: list[str] | None) -> list[str]:
    """Columns matching the glob patterns, in the order of the patterns (within one pattern, the
    table's order), each with its _std column; name first unless a pattern places it."""
    if not patterns:
        return columns
    chosen: list[str] = []
    for p in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, p) and not c.endswith("_std") and c not in chosen]
        if not hits and RENAMED.match(p):
            raise ConfigError(f"--cols {p}: {_renamed(p)}")
        chosen += hits
    if not chosen:
        raise ConfigError(f"--cols {','.join(patterns)}: matches no column; columns are: "
                          f"{', '.join(c for c in columns if not c.endswith('_std'))}")
    chosen = (["name"] if "name" not in chosen else []) + chosen
    out = []
    for c in chosen:
        out.append(c)
        if f"{c}_std" in columns:
            out.append(f"{c}_std")
    return out


def _renamed(key: str) -> str:
    new = RENAMED.sub(r"best_epoch_val_\1", key)
    return (f"renamed {new}: the value at the best epoch (best_epoch, by the lowest val_loss unless early "
            f"stopping monitors another metric), not the column's maximum")


def sort_rows(rows: list[dict], key: str, columns: list[str], descending: bool = False) -> list[dict]:
    """Sort by a column (numbers numerically); '-key' or descending=True reverses; blanks last."""
    if key.startswith("-"):
        key, descending = key[1:], not descending
    if key not in columns:
        if RENAMED.match(key) and RENAMED.sub(r"best_epoch_val_\1", key) in columns:
            raise ConfigError(f"--sort {key}: {_renamed(key)}")
        raise ConfigError(f"--sort {key}: no such column{did_you_mean(key, columns)}")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    nums = all(isinstance(r[key], (int, float)) and not isinstance(r[key], bool) for r in present)
    present.sort(key=(lambda r: r[key]) if nums else (lambda r: show_value(r[key])), reverse=descending)
    return present + missing


# ------------------------------------------------------------------------------------ rendering
def column_cells(rows: list[dict], column: str) -> list[str]:
    """One column's text, every row in one format: config values as written, metrics with the
    same decimals down the column (and 'mean ± std' for rows folded over seeds)."""
    from nnctl.numfmt import format_column

    values = [rows_value(r, column) for r in rows]
    if column in TEXT_COLUMNS or is_param(column):
        return ["" if v is None else show_value(v) for v in values]
    return format_column(values, [r.get(f"{column}_std") for r in rows])


def rows_value(row: dict, column: str):
    v = row.get(column)
    if column == "run" and isinstance(v, list):
        return f"{len(v)} runs"
    return v


RESULT_COLUMNS = re.compile(r"^(epochs|best_epoch|time_s|runs|seeds|(best_epoch_val|final_val|test)_\w+)$")


def is_param(column: str) -> bool:
    """A config key's column (optimizer.lr, seed), not a result of the run."""
    return column not in TEXT_COLUMNS and not RESULT_COLUMNS.match(column) and not column.endswith("_std")


def render_text(columns: list[str], rows: list[dict], form: str) -> str:
    """csv, json or markdown text (the rich table is drawn by the CLI from the same rows)."""
    if form == "json":
        return json.dumps(jsonable([{c: r.get(c) for c in columns} for r in rows]), indent=2) + "\n"
    if form == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else show_value(r.get(c)) if isinstance(r.get(c), (bool, list, dict))
                        else r.get(c) for c in columns])
        return buf.getvalue()
    if form == "markdown":
        names = [r.get("name") for r in rows]
        shown = [c for c in columns if not c.endswith("_std") and (c != "run" or len(set(names)) < len(names))]
        lines = ["| " + " | ".join(shown) + " |", "|" + "|".join(" --- " for _ in shown) + "|"]
        cells = [column_cells(rows, c) for c in shown]
        for i in range(len(rows)):
            lines.append("| " + " | ".join(col[i].strip().replace("|", "\\|") for col in cells) + " |")
        return "\n".join(lines) + "\n"
    raise ConfigError(f"--format {form}: expected table, csv, json or markdown")
