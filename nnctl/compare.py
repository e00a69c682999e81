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

from nnctl.errors import ConfigError, did_you_mean
from nnctl.files import jsonable
from nnctl.metrics import higher_is_better
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
def metric_values(run: RunInfo) -> dict[str, object]:
    """Best/final validation metrics, test metric, epochs, time for one run."""
    m = run.metric
    higher = higher_is_better(m)
    out: dict[str, object] = {"epochs": run.summary.get("epochs_run", len(run.rows) or None)}
    curve = [r.get(f"val_{m}") for r in run.rows]
    finite = [v for v in curve if isinstance(v, (int, float)) and math.isfinite(v)]
    losses = [r.get("val_loss") for r in run.rows
              if isinstance(r.get("val_loss"), (int, float)) and math.isfinite(r.get("val_loss"))]
    out["best_val_loss"] = min(losses) if losses else None
    out[f"best_val_{m}"] = (max(finite) if higher else min(finite)) if finite else None
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


def curve_labels(runs: list[RunInfo]) -> list[str]:
    """A legend label per run: its name, and where names repeat, the hyperparameters that differ
    between the runs (e.g. "moons lr=0.01"), else the run directory's name."""
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    readable = [r for r in runs if r.params]
    keys = [k for k in dict.fromkeys(k for r in readable for k in r.params) if k not in IGNORED_PARAMS
            and len({show_value(r.params.get(k, "<unset>")) for r in readable}) > 1]
    labels = []
    for r in runs:
        differ = ", ".join(f"{k.rsplit('.', 1)[-1]}={show_value(r.params.get(k))}" for k in keys[:3])
        labels.append(f"{r.name} {differ}" if differ else r.path.name)
    return labels


def _group_by_seed(runs, rows, keys) -> list[dict]:
    """Rows of runs whose configs differ only in seed (and name) become one row: mean and std."""
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
            if col in keys or col in ("name", "status", "run", "curve", "problem"):
                continue
            values = [m[1].get(col) for m in members]
            nums = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            if nums:
                mean = sum(nums) / len(nums)
                std = math.sqrt(sum((v - mean) ** 2 for v in nums) / (len(nums) - 1)) if len(nums) > 1 else 0.0
                first[col], first[f"{col}_std"] = mean, std
        first["run"] = [str(m[0].path) for m in members]
        out.append(first)
    return out


def select_columns(columns: list[str], patterns: list[str] | None) -> list[str]:
    """Columns matching any glob pattern (in the given order of columns); name always first."""
    if not patterns:
        return columns
    chosen = [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    std = [c for c in columns if c.endswith("_std") and c[:-4] in chosen and c not in chosen]
    chosen = [c for c in columns if c in chosen or c in std]
    if not chosen:
        raise ConfigError(f"--cols {','.join(patterns)}: matches no column; columns are: {', '.join(columns)}")
    return (["name"] if "name" not in chosen else []) + chosen


def sort_rows(rows: list[dict], key: str, columns: list[str], descending: bool = False) -> list[dict]:
    """Sort by a column (numbers numerically); '-key' or descending=True reverses; blanks last."""
    if key.startswith("-"):
        key, descending = key[1:], not descending
    if key not in columns:
        raise ConfigError(f"--sort {key}: no such column{did_you_mean(key, columns)}")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    nums = all(isinstance(r[key], (int, float)) and not isinstance(r[key], bool) for r in present)
    present.sort(key=(lambda r: r[key]) if nums else (lambda r: show_value(r[key])), reverse=descending)
    return present + missing


# ------------------------------------------------------------------------------------ rendering
def fmt(value, column: str = "", std=None) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return show_value(value)
    if isinstance(value, float):
        text = f"{value:.2f}" if column == "time_s" else f"{value:.4g}"
        if std is not None:
            text += f" ± {std:.2g}"
        return text
    return str(value)


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
        for r in rows:
            cells = [fmt(r.get(c), c, r.get(f"{c}_std")).replace("|", "\\|") for c in shown]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    raise ConfigError(f"--format {form}: expected table, csv, json or markdown")
